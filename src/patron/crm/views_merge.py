"""Duplicate lists and the merge screens for contacts and companies."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import CONTACTS_EDIT
from patron.crm import merge, services
from patron.crm.models import Company, Contact


def _find(request: WorkspaceRequest, model: Any, value: str) -> Any:
    """A record of this workspace by id, or a contact by email / a company by domain."""
    value = value.strip()
    records = model.objects.for_workspace(request.workspace)
    if value.isdigit():
        return records.filter(pk=int(value)).first()
    if model is Contact:
        return services.find_contact_by_email(request.workspace, value)
    return records.filter(domain=value.lower()).order_by("id").first() if value else None


def _merge_page(request: WorkspaceRequest, model: Any) -> HttpResponse:
    kind = "contact" if model is Contact else "company"
    primary = _find(request, model, request.GET.get("a", ""))
    other = _find(request, model, request.GET.get("b", ""))
    if primary is None or other is None or primary.pk == other.pk:
        messages.error(
            request,
            _("Choose two different contacts to merge.")
            if kind == "contact"
            else _("Choose two different companies to merge."),
        )
        return redirect(f"crm:{kind}_duplicates")
    if request.method == "POST":
        picks: dict[str, str] = {
            key.removeprefix("pick_"): request.POST.get(key, "")
            for key in request.POST
            if key.startswith("pick_")
        }
        kept: Contact | Company
        try:
            if kind == "contact":
                kept = merge.merge_contacts(
                    primary=primary, other=other, picks=picks, actor=request.user
                )
            else:
                kept = merge.merge_companies(
                    primary=primary, other=other, picks=picks, actor=request.user
                )
        except merge.MergeInvalid as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Merged into %(name)s.") % {"name": kept})
            return redirect(f"crm:{kind}_detail", kept.pk)
    return render(
        request,
        "crm/merge.html",
        {
            "kind": kind,
            "primary": primary,
            "other": other,
            "rows": merge.merge_rows(primary, other),
            "swap_url": f"{reverse(f'crm:{kind}_merge')}?a={other.pk}&b={primary.pk}",
        },
    )


@workspace_view(CONTACTS_EDIT)
def contact_merge(request: WorkspaceRequest) -> HttpResponse:
    return _merge_page(request, Contact)


@workspace_view(CONTACTS_EDIT)
def company_merge(request: WorkspaceRequest) -> HttpResponse:
    return _merge_page(request, Company)


@workspace_view(CONTACTS_EDIT)
def contact_duplicates(request: WorkspaceRequest) -> HttpResponse:
    return render(
        request,
        "crm/duplicates.html",
        {"kind": "contact", "pairs": merge.duplicate_contacts(request.workspace)},
    )


@workspace_view(CONTACTS_EDIT)
def company_duplicates(request: WorkspaceRequest) -> HttpResponse:
    return render(
        request,
        "crm/duplicates.html",
        {"kind": "company", "pairs": merge.duplicate_companies(request.workspace)},
    )
