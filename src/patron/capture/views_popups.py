"""Marketing → Pop-ups (list, add, edit, delete) and the tracker's public pop-up list."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from patron.capture import popups
from patron.capture.models import Form, Popup, PopupTrigger
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import MARKETING_EDIT
from patron.tracking import web
from patron.tracking.models import Site

# --- The tracker's pop-up list --------------------------------------------------------------


def _answer(status: int, body: Any, origin: str, allowed: bool) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Vary"] = "Origin"
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


# Public and read-only, for pages Patron did not render: the site key with the browser's
# Origin is what is checked, as for the collect endpoint (no session, no CSRF token).
@csrf_exempt
@require_GET
def page_popups(request: HttpRequest) -> HttpResponse:
    """``GET /t/popups?k=<site key>&v=<visitor id>&u=<page path>``: the pop-ups for the page,
    ``{"popups": [{"id", "form", "title", "trigger", "value", "cap_days"}], "base": "<Patron's
    address>", "script": "<the forms snippet>", "ui": "<the pop-ups script>"}`` (the three
    addresses only when there are pop-ups); 404 for an unknown key, 403 for another origin or
    Do Not Track when the site honours it, 400 for a bad visitor id or path."""
    origin = request.headers.get("Origin", "")
    key = request.GET.get("k", "")
    site = web.sites.site(key) if key and len(key) <= 32 else None
    if site is None:
        return _answer(404, json.loads(web.unknown_site().body()), origin, False)
    allowed = origin.rstrip("/").lower() in site.origins
    if not allowed:
        refused = web.CollectRefused(
            403,
            "origin",
            f"This site does not send from {origin or 'an unknown origin'}: add the address "
            "to the site's allowed addresses in Patron's settings.",
        )
        return _answer(403, json.loads(refused.body()), origin, False)
    dnt = request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"
    if site.honour_dnt and dnt:
        refused = web.CollectRefused(
            403, "do_not_track", "The browser asks not to be tracked and the site honours it."
        )
        return _answer(403, json.loads(refused.body()), origin, True)
    visitor = request.GET.get("v", "")
    path = urlsplit(request.GET.get("u", "") or "/").path or "/"
    if (visitor and not web.VISITOR_PATTERN.match(visitor)) or len(path) > web.URL_LIMIT:
        refused = web.CollectRefused(400, "invalid", "The visitor id or the page is not valid.")
        return _answer(400, json.loads(refused.body()), origin, True)
    found = popups.for_page(
        site_id=site.id, workspace_id=site.workspace_id, visitor_id=visitor, path=path
    )
    body: dict[str, Any] = {"popups": [p.as_json() for p in found]}
    if found:
        body["base"] = settings.BASE_URL
        body["script"] = settings.BASE_URL + static("patron/forms.js")
        body["ui"] = settings.BASE_URL + static("patron/popups.js")
    return _answer(200, body, origin, True)


# --- Marketing → Pop-ups --------------------------------------------------------------------


class PopupForm(forms.Form):
    """The service checks again (``popups.PopupInvalid``), shown on the field at fault."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=popups.NAME_LIMIT)
    form = forms.ModelChoiceField(label=gettext_lazy("Form"), queryset=Form.objects.none())
    sites = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Websites"),
        queryset=Site.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "Shown by the tracker of these sites. The form must allow their addresses."
        ),
    )
    trigger = forms.ChoiceField(label=gettext_lazy("Show"), choices=PopupTrigger.choices)
    trigger_value = forms.IntegerField(
        label=gettext_lazy("Seconds or scroll %"),
        required=False,
        min_value=0,
        initial=5,
        help_text=gettext_lazy("Seconds after the page opened, or how far down it (1 to 100 %)."),
    )
    url_patterns = forms.CharField(
        label=gettext_lazy("Only on pages"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "One path per line, * for any characters, e.g. /pricing*. Empty: every page."
        ),
    )
    cap_days = forms.IntegerField(
        label=gettext_lazy("Show again after (days)"),
        min_value=0,
        initial=7,
        help_text=gettext_lazy(
            "After a visitor saw or closed it. Never again once they sent the form."
        ),
    )
    hide_from_contacts = forms.BooleanField(
        label=gettext_lazy("Do not show to known contacts"),
        required=False,
        initial=True,
        help_text=gettext_lazy("Visitors Patron already linked to a contact do not see it."),
    )
    active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, workspace: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["form"].queryset = Form.objects.for_workspace(workspace).order_by("name")  # type: ignore[attr-defined]
        self.fields["sites"].queryset = Site.objects.for_workspace(workspace).order_by("name")  # type: ignore[attr-defined]

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["url_patterns"] = data["url_patterns"].splitlines()
        return data


def _popup(request: WorkspaceRequest, popup_id: int) -> Popup:
    return get_object_or_404(popups.popups_of(request.workspace), pk=popup_id)


@workspace_view(MARKETING_EDIT)
def popup_list(request: WorkspaceRequest) -> HttpResponse:
    rows = popups.popups_of(request.workspace).prefetch_related("sites")
    return render(request, "capture/popup_list.html", {"rows": rows})


@workspace_view(MARKETING_EDIT)
def popup_new(request: WorkspaceRequest) -> HttpResponse:
    return _edit(request, None)


@workspace_view(MARKETING_EDIT)
def popup_edit(request: WorkspaceRequest, popup_id: int) -> HttpResponse:
    return _edit(request, _popup(request, popup_id))


def _edit(request: WorkspaceRequest, popup: Popup | None) -> HttpResponse:
    initial: dict[str, Any] = {}
    if popup is not None:
        initial = {
            "name": popup.name,
            "form": popup.form,
            "sites": list(popup.sites.all()),
            "trigger": popup.trigger,
            "trigger_value": popup.trigger_value,
            "url_patterns": "\n".join(popup.url_patterns),
            "cap_days": popup.cap_days,
            "hide_from_contacts": popup.hide_from_contacts,
            "active": popup.active,
        }
    form = PopupForm(request.POST or None, initial=initial, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        try:
            if popup is None:
                popup = popups.create_popup(
                    workspace=request.workspace, created_by=request.user, **form.values()
                )
            else:
                popups.update_popup(popup=popup, actor=request.user, **form.values())
        except popups.PopupInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, _("Pop-up “%(name)s” saved.") % {"name": popup.name})
            return redirect("capture:popup_list")
    return render(request, "capture/popup_edit.html", {"form": form, "popup": popup})


@workspace_view(MARKETING_EDIT)
@require_POST
def popup_delete(request: WorkspaceRequest, popup_id: int) -> HttpResponse:
    popup = _popup(request, popup_id)
    name = popup.name
    popups.delete_popup(popup=popup, actor=request.user)
    messages.success(request, _("Pop-up “%(name)s” deleted.") % {"name": name})
    return redirect("capture:popup_list")
