"""The public side of forms: the hosted page, the JSON description for the snippet, and the
submission endpoint for the snippet and headless sites.

These endpoints are CSRF-exempt on purpose: they receive cross-site posts from
pages Patron did not render (the snippet and plain HTML on the customer's own
site, a headless front end), which can carry no Patron CSRF token, and they
act for nobody logged in. What protects them instead is in
``patron.capture.services.check_guard``: honeypot, signed timestamp (minimum
fill time and maximum age), per-IP rate limit, the size limit below, and the
Origin check against the form's allowed sites.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from patron.api.errors import error_body
from patron.capture import services
from patron.capture.models import Form, FormSubmission
from patron.core.signals import request_info
from patron.crm.models import CustomFieldObject
from patron.crm.services import field_definitions

FOLLOW_UP_FAILED = gettext_lazy(
    "The form could not be sent just now. Please try again in a few minutes."
)
# A form sent from a hosted or landing page answers with a redirect to the page with
# ``?sent=`` (the submission's id, signed, for an hour), which shows the thank-you:
# reloading it sends nothing again.
SENT_PARAM = "sent"
SENT_SALT = "patron.capture.sent"
SENT_MAX_AGE = 3600


def _after_sending(request: HttpRequest, submission: FormSubmission) -> HttpResponse:
    token = signing.dumps(submission.pk, salt=SENT_SALT)
    response = redirect(f"{request.path}?{urlencode({SENT_PARAM: token})}")
    response.headers["X-Patron-Submission"] = str(submission.pk)
    return response


def _sent(request: HttpRequest, forms: list[Form]) -> FormSubmission | None:
    """The submission a ``?sent=`` names, if it is one of ``forms``' and still fresh."""
    token = request.GET.get(SENT_PARAM)
    if not token or not forms:
        return None
    try:
        pk = signing.loads(token, salt=SENT_SALT, max_age=SENT_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(pk, int):
        return None
    return (
        FormSubmission.objects.for_workspace(forms[0].workspace_id)
        .filter(pk=pk, form__in=forms)
        .first()
    )


def _form(form_key: str) -> Form:
    form = services.public_form(form_key)
    if form is None:
        raise Http404
    return form


def _too_large(request: HttpRequest) -> bool:
    limit = int(getattr(settings, "FORMS_MAX_BODY_BYTES", 65536))
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    return declared > limit or len(request.body) > limit


def _details(request: HttpRequest, data: Any) -> services.RequestDetails:
    info = request_info(request)
    return services.RequestDetails(
        ip_address=info.ip_address,
        user_agent=info.user_agent,
        page_url=str(data.get(services.PAGE_URL) or request.headers.get("Referer", "")),
        referrer=str(data.get("_referrer") or ""),
        visitor_id=str(data.get(services.VISITOR) or ""),
    )


def _cors(response: HttpResponse, form: Form, request: HttpRequest) -> HttpResponse:
    """Let a browser on one of the form's allowed sites read the answer; no one else."""
    origin = request.headers.get("Origin", "")
    response.headers["Vary"] = "Origin"
    if origin and services.origin_allowed(form, origin):
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


def _page_fields(
    form: Form, values: dict[str, Any], errors: dict[str, str]
) -> list[dict[str, Any]]:
    custom_defs = {
        d.key: d for d in field_definitions(form.workspace_id, CustomFieldObject.CONTACT)
    }
    fields = []
    for spec in form.fields:
        kind, options = services.input_type(spec, custom_defs)
        value = values.get(spec["key"], "")
        if isinstance(value, list):
            value = value[0] if value else ""
        fields.append(
            {
                **spec,
                "type": kind,
                "options": options,
                "value": "" if value is None else str(value),
                "error": errors.get(spec["key"], ""),
            }
        )
    return fields


def _hosted(
    request: HttpRequest,
    form: Form,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    state: str = "ask",
    status: int = 200,
    thanks: dict[str, str] | None = None,
) -> HttpResponse:
    errors = errors or {}
    if values is None:
        values = services.initial_values(form, request.GET)
    context = {
        "form": form,
        "fields": _page_fields(form, values, errors),
        "token": services.issue_token(form),
        "honeypot": services.HONEYPOT,
        "consent_checked": bool(values.get(services.CONSENT)),
        "consent_error": errors.get(services.CONSENT, ""),
        "errors": errors,
        "problem": problem,
        "state": state,
        "page_url": values.get(services.PAGE_URL, ""),
        "LANGUAGE_CODE": form.workspace.language,
        "thanks": thanks or {},
    }
    with translation.override(form.workspace.language):
        response = render(request, "capture/hosted.html", context, status=status)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


# Exempt: see the module docstring (cross-site posts, protected by check_guard instead).
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def hosted(request: HttpRequest, form_key: str) -> HttpResponse:
    """The form on its own page; also where plain HTML copies of the form post to.

    On an error the page comes back with the values kept and the errors next to
    their fields. A plain HTML copy carries no timestamp, so its first post
    lands here with the values filled in, to be sent once more.
    """
    form = _form(form_key)
    if request.method == "GET":
        sent = _sent(request, [form])
        if sent is not None:
            return _hosted(request, form, state="sent", thanks=services.thank_you(form, sent))
        return _hosted(request, form)
    if _too_large(request):
        return _hosted(
            request,
            form,
            values={},
            problem=_("The form was too large to be accepted. Shorten your answers."),
            status=413,
        )
    data = request.POST
    values = {key: data.get(key, "") for key in data}
    try:
        services.check_guard(
            form=form,
            data=data,
            ip_address=request_info(request).ip_address,
            origin=services.request_origin(request.headers),
            own_origin=f"{request.scheme}://{request.get_host()}",
        )
        submission = services.submit_form(form=form, data=data, details=_details(request, data))
    except services.SubmissionRefused as exc:
        if exc.code == "token":
            message = _("Please check your details and send the form again.")
        else:
            message = exc.message
        return _hosted(request, form, values=values, problem=message, status=exc.status)
    except services.SubmissionInvalid as exc:
        return _hosted(
            request, form, values=values, errors=exc.errors, problem=str(exc), status=400
        )
    except services.FollowUpFailed:
        return _hosted(request, form, values=values, problem=str(FOLLOW_UP_FAILED), status=503)
    if form.redirect_url:
        return redirect(form.redirect_url)
    return _after_sending(request, submission)


@never_cache
@require_GET
def embed_description(request: HttpRequest, form_key: str) -> HttpResponse:
    """The form as JSON for the snippet (``patron/forms.js``), with a fresh token."""
    form = _form(form_key)
    action = settings.BASE_URL + reverse("capture_api_submit", args=[form.key])
    response = JsonResponse(services.embed_description(form, action=action))
    return _cors(response, form, request)


def _json_error(
    form: Form | None,
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
) -> HttpResponse:
    response = JsonResponse(error_body(code, message, fields), status=status)
    return _cors(response, form, request) if form is not None else response


def _payload(request: HttpRequest) -> dict[str, Any] | QueryDict:
    if request.content_type == "application/json":
        data = json.loads(request.body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    return request.POST


# Exempt: see the module docstring.
@csrf_exempt
@never_cache
@require_http_methods(["POST", "OPTIONS"])
def api_submit(request: HttpRequest, form_key: str) -> HttpResponse:
    """``POST /api/v1/forms/<key>/submissions``: JSON (or form-encoded) in, JSON out.

    201 ``{"id", "contact_id", "message", "redirect_url", "download_url", "download_name"}``
    (the download fields empty unless the form delivers a file); errors in the API's
    format, 422 with a message per field, 400/403/413/429 for refusals.
    """
    form = services.public_form(form_key)
    if form is None:
        return _json_error(None, request, 404, "not_found", "Not found.")
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        if services.origin_allowed(form, request.headers.get("Origin", "")):
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        return _cors(response, form, request)
    if _too_large(request):
        message = _("The submission is too large to be accepted.")
        return _json_error(form, request, 413, "too_large", message)
    try:
        data = _payload(request)
    except (ValueError, UnicodeDecodeError):
        return _json_error(form, request, 400, "invalid_json", _("The body is not a JSON object."))
    try:
        services.check_guard(
            form=form,
            data=data,
            ip_address=request_info(request).ip_address,
            origin=services.request_origin(request.headers),
            own_origin=f"{request.scheme}://{request.get_host()}",
        )
        submission = services.submit_form(form=form, data=data, details=_details(request, data))
    except services.SubmissionRefused as exc:
        return _json_error(form, request, exc.status, exc.code, exc.message)
    except services.SubmissionInvalid as exc:
        fields = {key: [message] for key, message in exc.errors.items()}
        return _json_error(form, request, 422, "invalid", str(exc), fields)
    except services.FollowUpFailed:
        return _json_error(form, request, 503, "unavailable", str(FOLLOW_UP_FAILED))
    thanks = services.thank_you(form, submission)
    response = JsonResponse(
        {
            "id": submission.pk,
            "contact_id": submission.contact_id,
            "message": thanks["message"],
            "redirect_url": thanks["redirect_url"],
            "download_url": thanks["download_url"],
            "download_name": thanks["download_name"],
        },
        status=201,
    )
    return _cors(response, form, request)


# --- Downloads ----------------------------------------------------------------------------

# A file served from Patron's address must never run as a page of it.
DOWNLOAD_POLICY = "default-src 'none'; sandbox"


@never_cache
@require_GET
def download(request: HttpRequest, token: str) -> HttpResponseBase:
    """A gated file behind its signed link; an expired or wrong link gets a page saying so."""
    from django.http import FileResponse

    from patron.capture import downloads

    try:
        grant = downloads.read_token(token)
        item = downloads.record_download(grant=grant)
    except downloads.LinkInvalid as exc:
        form = (
            Form.objects.unscoped().select_related("workspace").filter(pk=exc.form_id).first()
            if exc.form_id is not None
            else None
        )
        language = form.workspace.language if form is not None else None
        context = {
            "expired": exc.expired,
            "form": form,
            "form_url": reverse("capture_public:hosted", args=[form.key]) if form else "",
            "LANGUAGE_CODE": language or translation.get_language(),
        }
        with translation.override(language or translation.get_language()):
            response = render(
                request,
                "capture/download_invalid.html",
                context,
                status=410 if exc.expired else 404,
            )
        response.headers["X-Robots-Tag"] = "noindex"
        return response
    served = FileResponse(
        item.file.open("rb"),
        as_attachment=True,
        filename=downloads.download_name(item),
        content_type=item.content_type,
    )
    served.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    served.headers["X-Content-Type-Options"] = "nosniff"
    served.headers["X-Robots-Tag"] = "noindex"
    served.headers["Referrer-Policy"] = "no-referrer"
    return served


# --- Landing pages ------------------------------------------------------------------------

# Landing pages: their own styles (MJML writes inline ones), Patron's static files, images
# from anywhere, forms posting back to Patron, and no script at all.
PAGE_POLICY = (
    "default-src 'none'; img-src * data:; style-src 'self' 'unsafe-inline'; font-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def render_landing_page(
    request: HttpRequest,
    page: Any,
    *,
    preview: bool = False,
    outcome: dict[int, dict[str, Any]] | None = None,
    status: int = 200,
) -> HttpResponse:
    """A landing page with its forms drawn (``outcome`` holds, per form id, the state of a
    form just sent: its values and errors, or its thank-you)."""
    from django.template.loader import render_to_string
    from django.utils.safestring import mark_safe

    from patron.capture import pages

    outcome = outcome or {}
    action = (
        ""
        if preview
        else reverse("capture_public:landing_page", args=[page.workspace.slug, page.slug])
    )

    def draw(form: Form) -> str:
        state = outcome.get(form.pk, {})
        values = state.get("values")
        if values is None:
            values = services.initial_values(form, request.GET)
        errors = state.get("errors", {})
        context = {
            "form": form,
            "fields": _page_fields(form, values, errors),
            "token": services.issue_token(form),
            "honeypot": services.HONEYPOT,
            "consent_checked": bool(values.get(services.CONSENT)),
            "consent_error": errors.get(services.CONSENT, ""),
            "problem": state.get("problem", ""),
            "page_url": values.get(services.PAGE_URL, ""),
            "prefix": f"lp{form.pk}-",
            "action": action,
            "form_field": True,
            "thanks": state.get("thanks", {}),
            "request": request,
        }
        template = "capture/_thank_you.html" if state.get("thanks") else "capture/_public_form.html"
        html = render_to_string(template, context)
        return f'<div class="landing-form" id="landing-form-{form.pk}">{html}</div>'

    context = {
        "page": page,
        "body": mark_safe(pages.render_forms(page, draw)),  # noqa: S308 - built from escaped blocks
        "styles": mark_safe(page.styles),  # noqa: S308 - written by MJML, not by users
        "canonical": "" if preview else request.build_absolute_uri(action),
        "LANGUAGE_CODE": page.workspace.language,
        "preview": preview,
    }
    with translation.override(page.workspace.language):
        response = render(request, "capture/landing_page.html", context, status=status)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


def _with_visitor(request: HttpRequest, response: HttpResponse, visitor: str, new: bool) -> None:
    from patron.capture import pages

    if new:
        response.set_cookie(
            pages.VISITOR_COOKIE,
            visitor,
            max_age=pages.VISITOR_COOKIE_AGE,
            secure=request.is_secure(),
            httponly=False,  # the web tracker's cookie: its script reads the same one
            samesite="Lax",
        )


# Exempt: the form on a landing page posts like a hosted form (see the module docstring);
# the same spam checks guard it.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def landing_page(request: HttpRequest, workspace_slug: str, page_slug: str) -> HttpResponse:
    """A published landing page; a view is recorded, and its forms post back here."""
    from patron.capture import pages

    page = pages.public_page(workspace_slug, page_slug)
    if page is None:
        raise Http404
    tracked = pages.tracking_allowed(request.headers)
    if tracked:
        visitor, new = pages.visitor_id(request.COOKIES.get(pages.VISITOR_COOKIE))
    else:
        visitor, new = "", False
    if request.method == "GET":
        sent = _sent(request, list(pages.page_forms(page).values()))
        if sent is not None:  # the thank-you after a post: the view was counted before
            thanks = {"thanks": services.thank_you(sent.form, sent)}
            response = render_landing_page(request, page, outcome={sent.form_id: thanks})
            _with_visitor(request, response, visitor, new)
            return response
        if tracked:
            pages.record_view(
                page=page,
                visitor=visitor,
                url=request.build_absolute_uri(),
                referrer=request.headers.get("Referer", ""),
                params=request.GET,
            )
        response = render_landing_page(request, page)
        _with_visitor(request, response, visitor, new)
        return response
    if _too_large(request):  # before the body is parsed
        response = render_landing_page(request, page, status=413)
        _with_visitor(request, response, visitor, new)
        return response
    forms = pages.page_forms(page)
    try:
        form = forms[int(request.POST.get("_form") or 0)]
    except (KeyError, ValueError):
        raise Http404 from None
    data = request.POST
    values = {key: data.get(key, "") for key in data}
    state: dict[str, Any] = {"values": values}
    status = 200
    try:
        services.check_guard(
            form=form,
            data=data,
            ip_address=request_info(request).ip_address,
            origin=services.request_origin(request.headers),
            own_origin=f"{request.scheme}://{request.get_host()}",
        )
        # The visitor id is the page's own first-party cookie, whatever the post says.
        details = dataclasses.replace(_details(request, data), visitor_id=visitor)
        submission = services.submit_form(form=form, data=data, details=details, landing_page=page)
    except services.SubmissionRefused as exc:
        message = (
            _("Please check your details and send the form again.")
            if exc.code == "token"
            else exc.message
        )
        state.update(problem=message)
        status = exc.status
    except services.SubmissionInvalid as exc:
        state.update(errors=exc.errors, problem=str(exc))
        status = 400
    except services.FollowUpFailed:
        state.update(problem=str(FOLLOW_UP_FAILED))
        status = 503
    else:
        if form.redirect_url:
            response = redirect(form.redirect_url)
        else:
            response = _after_sending(request, submission)
        _with_visitor(request, response, visitor, new)
        return response
    response = render_landing_page(request, page, outcome={form.pk: state}, status=status)
    _with_visitor(request, response, visitor, new)
    return response
