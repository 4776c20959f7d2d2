"""Settings → Websites: the sites that run the web tracker (workspace admins)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import SETTINGS_MANAGE
from patron.core.signals import request_info
from patron.tracking import sites
from patron.tracking.models import Site


class SiteForm(forms.Form):
    """The service checks again (``sites.SiteInvalid``), shown on the field at fault."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=sites.NAME_LIMIT)
    allowed_origins = forms.CharField(
        label=gettext_lazy("Site addresses"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "One per line, e.g. https://www.example.com. Only pages served from these "
            "addresses may send events."
        ),
    )
    consent_required = forms.BooleanField(
        label=gettext_lazy("Track only after consent"),
        required=False,
        help_text=gettext_lazy(
            "Nothing is stored or sent until the page calls patron.consent(true), e.g. from "
            "your cookie banner."
        ),
    )
    honour_dnt = forms.BooleanField(
        label=gettext_lazy("Honour Do Not Track"),
        required=False,
        initial=True,
        help_text=gettext_lazy("Browsers that ask not to be tracked are not tracked."),
    )
    allow_identify = forms.BooleanField(
        label=gettext_lazy("Allow identify(email) from the page"),
        required=False,
        help_text=gettext_lazy(
            "Lets the page link its visitor to a contact you already have, e.g. after a login."
        ),
    )

    def clean_allowed_origins(self) -> list[str]:
        try:
            return sites.clean_origins(self.cleaned_data["allowed_origins"].splitlines())
        except sites.SiteInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc


def _site(request: WorkspaceRequest, site_id: int) -> Site:
    return get_object_or_404(sites.sites_of(request.workspace), pk=site_id)


def _context(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    return {"tab": "sites", "tracker": sites.tracker_sizes(), **extra}


@workspace_view(SETTINGS_MANAGE)
def site_list(request: WorkspaceRequest) -> HttpResponse:
    form = SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            site = sites.create_site(
                workspace=request.workspace,
                actor=request.user,
                request_info=request_info(request),
                **form.cleaned_data,
            )
        except sites.SiteInvalid as exc:
            form.add_error(exc.field, str(exc))
        else:
            messages.success(
                request,
                _("Site %(name)s added. Paste its snippet into every page.") % {"name": site.name},
            )
            return redirect("sites:edit", site_id=site.pk)
    listed = [(site, sites.snippet(site)) for site in sites.sites_of(request.workspace)]
    return render(request, "tracking/site_list.html", _context(request, form=form, sites=listed))


@workspace_view(SETTINGS_MANAGE)
def site_edit(request: WorkspaceRequest, site_id: int) -> HttpResponse:
    site = _site(request, site_id)
    initial = {
        "name": site.name,
        "allowed_origins": "\n".join(site.allowed_origins),
        "consent_required": site.consent_required,
        "honour_dnt": site.honour_dnt,
        "allow_identify": site.allow_identify,
    }
    form = SiteForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            sites.update_site(
                site=site,
                actor=request.user,
                request_info=request_info(request),
                **form.cleaned_data,
            )
        except sites.SiteInvalid as exc:
            form.add_error(exc.field, str(exc))
        else:
            messages.success(request, _("Site %(name)s saved.") % {"name": site.name})
            return redirect("sites:edit", site_id=site.pk)
    return render(
        request,
        "tracking/site_form.html",
        _context(request, form=form, site=site, snippet=sites.snippet(site)),
    )


@workspace_view(SETTINGS_MANAGE)
@require_POST
def site_delete(request: WorkspaceRequest, site_id: int) -> HttpResponse:
    site = _site(request, site_id)
    name = site.name
    sites.delete_site(site=site, actor=request.user, request_info=request_info(request))
    messages.success(request, _("Site %(name)s deleted.") % {"name": name})
    return redirect("sites:list")
