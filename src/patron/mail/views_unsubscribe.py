"""The unsubscribe link of every campaign, open to anyone holding it (no login).

GET shows whose mail it stops and a button; nothing changes on GET, so link
scanners and previews unsubscribe nobody. POST from that button (with the
page's CSRF token) unsubscribes and redirects to the page, which says so. A POST whose body is
``List-Unsubscribe=One-Click`` is RFC 8058's one-click unsubscribe, sent by
mail providers from the ``List-Unsubscribe-Post`` header without any page or
cookie: it alone is exempt from the CSRF check, and is answered with a short
plain-text 200. A link that is not ours (tampered, truncated) shows "not
valid" with a 404 and changes nothing.

The preference centre (``/u/<token>/preferences/``) takes the same token: it
shows the contact's lists to tick and a button to unsubscribe from all (a
form posting to the unsubscribe page, one click). Saving is a POST with the
page's CSRF token, answered by a redirect to the page, which says so.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from patron.audience.models import SuppressionReason
from patron.core.signals import request_info
from patron.mail import preferences as preference_centre
from patron.mail import unsubscribe as service

ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


def _protected(request: HttpRequest) -> HttpResponse:
    """A stand-in view that is not CSRF-exempt, for the check below (never called)."""
    return HttpResponse(status=204)


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check, run by hand for the POSTs that are not one-click.

    The middleware has read the CSRF cookie already (process_request runs for
    every request); its view check is asked about a view that is not exempt.
    """
    check = CsrfViewMiddleware(lambda _request: HttpResponse())
    return check.process_view(request, _protected, (), {})  # type: ignore[return-value]


def _private(response: HttpResponse) -> HttpResponse:
    # The link is the key to the page: never in a Referer, a search index or a shared cache.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Cache-Control"] = "no-store"
    return response


def _link_problem(
    request: HttpRequest, exc: service.UnsubscribeInvalid, template: str
) -> HttpResponse:
    """The page of a link that names nobody: "not valid", or "no longer on file"."""
    language = exc.workspace.language if exc.workspace else translation.get_language()
    with translation.override(language):
        context: dict[str, Any] = {
            "state": exc.reason,
            "workspace": exc.workspace,
            "LANGUAGE_CODE": language,
        }
        return _private(render(request, template, context, status=404))


def _confirm_sentence(workspace_name: str) -> str:
    return _("Stop all email from %(workspace)s to this address.") % {"workspace": workspace_name}


@csrf_exempt
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD", "POST"):
        return _private(HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"}))
    one_click = request.method == "POST" and request.POST.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    if request.method == "POST" and not one_click:
        failure = _csrf_failure(request)
        if failure is not None:
            return failure
    try:
        target = service.target_for_token(token)
    except service.UnsubscribeInvalid as exc:
        if one_click:
            return _private(
                HttpResponse(
                    _("This unsubscribe link is not valid.") + "\n",
                    status=404,
                    content_type="text/plain; charset=utf-8",
                )
            )
        return _link_problem(request, exc, "mail/unsubscribe.html")

    workspace, contact = target.workspace, target.contact
    with translation.override(workspace.language):
        if request.method == "POST":
            service.unsubscribe_from_all(
                workspace=workspace,
                contact=contact,
                campaign_id=target.campaign_id,
                method=service.ONE_CLICK if one_click else service.PAGE,
                request_info=request_info(request),
                consent_text="" if one_click else _confirm_sentence(workspace.name),
            )
            if one_click:
                return _private(
                    HttpResponse(
                        _("You are unsubscribed from all email of %(workspace)s.")
                        % {"workspace": workspace.name}
                        + "\n",
                        content_type="text/plain; charset=utf-8",
                    )
                )
            # Post/redirect/get: reloading the answer does not post again.
            return _private(HttpResponseRedirect(request.path + "?done=1", status=303))
        if service.is_unsubscribed(contact):
            state = "done" if request.GET.get("done") else "already"
        else:
            state = "ask"
        context = {
            "state": state,
            "workspace": workspace,
            "address": service.mask_address(contact.email),
            "sentence": _confirm_sentence(workspace.name),
            "preferences_path": reverse("unsubscribe:preferences", args=[token]),
            "LANGUAGE_CODE": workspace.language,
        }
        return _private(render(request, "mail/unsubscribe.html", context))


# Not CSRF-exempt, unlike ``unsubscribe``: every POST here comes from this page's own
# form (no mail provider posts to it), so Django's check applies as on any form. It
# needs no login or session: the CSRF token is kept in its cookie, set by the GET that
# showed the form. A request without it gets the 403 of a failed CSRF check and
# changes nothing, as a POST to the unsubscribe page without one-click does.
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD", "POST"):
        return _private(HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"}))
    try:
        target = service.target_for_token(token)
    except service.UnsubscribeInvalid as exc:
        return _link_problem(request, exc, "mail/preferences.html")

    workspace, contact = target.workspace, target.contact
    with translation.override(workspace.language):
        context: dict[str, Any] = {"workspace": workspace, "LANGUAGE_CODE": workspace.language}
        if not contact.email:
            context["state"] = "no_address"
            return _private(render(request, "mail/preferences.html", context))
        sentence = preference_centre.consent_sentence(workspace.name)
        error, status = "", 200
        if request.method == "POST":
            try:
                chosen = [int(value) for value in request.POST.getlist("lists")]
            except ValueError:
                error = _("The form was changed on its way here. Reload the page and try again.")
            else:
                try:
                    preference_centre.save_preferences(
                        workspace=workspace,
                        contact=contact,
                        chosen=chosen,
                        campaign_id=target.campaign_id,
                        request_info=request_info(request),
                        consent_text=sentence,
                    )
                except preference_centre.PreferencesInvalid as exc:
                    error = str(exc)
                else:
                    # Post/redirect/get: reloading the answer does not post again.
                    return _private(HttpResponseRedirect(request.path + "?saved=1", status=303))
            status = 400
        current = preference_centre.preferences_of(workspace=workspace, contact=contact)
        context.update(
            {
                "state": "show",
                "address": service.mask_address(contact.email),
                "preferences": current,
                "reason": (
                    SuppressionReason(current.suppression_reason).label
                    if current.suppression_reason
                    else ""
                ),
                "saved": not error and bool(request.GET.get("saved")),
                "error": error,
                "sentence": sentence,
                "unsubscribed": current.unsubscribed,
                "unsubscribe_path": reverse("unsubscribe:page", args=[token]),
                "unsubscribe_sentence": _confirm_sentence(workspace.name),
            }
        )
        return _private(render(request, "mail/preferences.html", context, status=status))
