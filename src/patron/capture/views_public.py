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

import json
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from patron.api.errors import error_body
from patron.capture import services
from patron.capture.models import Form
from patron.core.signals import request_info
from patron.crm.models import CustomFieldObject
from patron.crm.services import field_definitions


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
    if form.redirect_url:
        return redirect(form.redirect_url)
    response = _hosted(request, form, state="sent")
    response.headers["X-Patron-Submission"] = str(submission.pk)
    return response


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

    201 ``{"id", "contact_id", "message", "redirect_url"}``; errors in the API's
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
    response = JsonResponse(
        {
            "id": submission.pk,
            "contact_id": submission.contact_id,
            "message": form.success_message,
            "redirect_url": form.redirect_url,
        },
        status=201,
    )
    return _cors(response, form, request)
