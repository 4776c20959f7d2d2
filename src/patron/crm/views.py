"""Contact and company pages: lists with search, detail with the timeline, forms."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from patron.activity import selectors as activity
from patron.activity.kinds import EVENT_KINDS
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import ACTIVITY_VIEW, CONTACTS_EDIT, CONTACTS_VIEW
from patron.crm import selectors, services
from patron.crm.forms import CompanyForm, ContactForm
from patron.crm.models import Company, Contact, LifecycleStage

PAGE_SIZE = 50


def _timeline(request: WorkspaceRequest, contact_ids: Any) -> dict[str, Any]:
    if not request.membership.can(ACTIVITY_VIEW):
        return {"events": None}
    kind = request.GET.get("kind") or ""
    if kind not in EVENT_KINDS:
        kind = ""
    events = activity.timeline_for_contacts(
        request.workspace,
        contact_ids,
        kind=kind or None,
    )
    page = Paginator(events, 25).get_page(request.GET.get("page"))
    return {
        "events": page,
        "kind": kind,
        "kinds": activity.kind_choices(),
        "query_string": urlencode({"kind": kind}) if kind else "",
    }


# --- Contacts ---------------------------------------------------------------------


@workspace_view(CONTACTS_VIEW)
def contact_list(request: WorkspaceRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    stage = request.GET.get("stage", "")
    if stage not in LifecycleStage.values:
        stage = ""
    contacts = selectors.search_contacts(
        request.workspace,
        query=query,
        lifecycle_stage=stage,
    )
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page,
        "query": query,
        "stage": stage,
        "stages": LifecycleStage.choices,
        "query_string": urlencode({k: v for k, v in {"q": query, "stage": stage}.items() if v}),
    }
    template = "crm/_contact_rows.html" if request.htmx else "crm/contact_list.html"
    return render(request, template, context)


def _contact(request: WorkspaceRequest, contact_id: int) -> Contact:
    return get_object_or_404(
        Contact.objects.for_workspace(request.workspace).select_related("company", "owner"),
        pk=contact_id,
    )


@workspace_view(CONTACTS_VIEW)
def contact_detail(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    context = {"contact": contact, **_timeline(request, [contact.pk])}
    return render(request, "crm/contact_detail.html", context)


def _duplicate_error(form: ContactForm, exc: services.DuplicateContact) -> None:
    link = reverse("crm:contact_detail", args=[exc.existing.pk])
    form.add_error(
        "email",
        format_html(
            '{} <a href="{}">{}</a>',
            _("A contact with this email already exists:"),
            link,
            str(exc.existing),
        ),
    )


@workspace_view(CONTACTS_EDIT)
def contact_create(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = ContactForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.create_contact(
                workspace=workspace, actor=request.user, **form.cleaned_data
            )
        except services.DuplicateContact as exc:
            _duplicate_error(form, exc)
        else:
            messages.success(request, _("Contact %(name)s created.") % {"name": contact})
            return redirect("crm:contact_detail", contact_id=contact.pk)
    return render(request, "crm/contact_form.html", {"form": form, "contact": None})


@workspace_view(CONTACTS_EDIT)
def contact_edit(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    form = ContactForm(
        request.POST or None,
        workspace=request.workspace,
        initial=ContactForm.initial_for(contact),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_contact(contact=contact, actor=request.user, **form.cleaned_data)
        except services.DuplicateContact as exc:
            _duplicate_error(form, exc)
        else:
            messages.success(request, _("Contact saved."))
            return redirect("crm:contact_detail", contact_id=contact.pk)
    return render(request, "crm/contact_form.html", {"form": form, "contact": contact})


@workspace_view(CONTACTS_EDIT)
@require_POST
def contact_delete(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    name = str(contact)
    services.delete_contact(contact=contact, actor=request.user)
    messages.success(request, _("Contact %(name)s deleted.") % {"name": name})
    return redirect("crm:contact_list")


# --- Companies --------------------------------------------------------------------


@workspace_view(CONTACTS_VIEW)
def company_list(request: WorkspaceRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    companies = selectors.search_companies(request.workspace, query=query)
    page = Paginator(companies, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page,
        "query": query,
        "query_string": urlencode({"q": query}) if query else "",
    }
    template = "crm/_company_rows.html" if request.htmx else "crm/company_list.html"
    return render(request, template, context)


def _company(request: WorkspaceRequest, company_id: int) -> Company:
    return get_object_or_404(
        Company.objects.for_workspace(request.workspace).select_related("owner"),
        pk=company_id,
    )


@workspace_view(CONTACTS_VIEW)
def company_detail(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    company = _company(request, company_id)
    contacts = list(selectors.company_contacts(company)[:200])
    context = {
        "company": company,
        "contacts": contacts,
        **_timeline(request, selectors.company_contacts(company).values_list("pk", flat=True)),
    }
    return render(request, "crm/company_detail.html", context)


@workspace_view(CONTACTS_EDIT)
def company_create(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = CompanyForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        company = services.create_company(
            workspace=workspace, actor=request.user, **form.cleaned_data
        )
        messages.success(request, _("Company %(name)s created.") % {"name": company})
        return redirect("crm:company_detail", company_id=company.pk)
    return render(request, "crm/company_form.html", {"form": form, "company": None})


@workspace_view(CONTACTS_EDIT)
def company_edit(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    company = _company(request, company_id)
    form = CompanyForm(
        request.POST or None,
        workspace=request.workspace,
        initial=CompanyForm.initial_for(company),
    )
    if request.method == "POST" and form.is_valid():
        services.update_company(company=company, actor=request.user, **form.cleaned_data)
        messages.success(request, _("Company saved."))
        return redirect("crm:company_detail", company_id=company.pk)
    return render(request, "crm/company_form.html", {"form": form, "company": company})


@workspace_view(CONTACTS_EDIT)
@require_POST
def company_delete(request: WorkspaceRequest, company_id: int) -> HttpResponse:
    company = _company(request, company_id)
    name = str(company)
    services.delete_company(company=company, actor=request.user)
    messages.success(request, _("Company %(name)s deleted.") % {"name": name})
    return redirect("crm:company_list")
