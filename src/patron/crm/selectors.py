"""Reads for contacts and companies."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from patron.core.models import Workspace
from patron.crm.models import Company, Contact


def search_contacts(
    workspace: Workspace, *, query: str = "", lifecycle_stage: str = ""
) -> QuerySet[Contact]:
    contacts = Contact.objects.for_workspace(workspace).select_related("company", "owner")
    query = query.strip()
    if query:
        # Prefix matches use the (workspace, email) and (workspace, last_name) indexes.
        contacts = contacts.filter(
            Q(email__istartswith=query)
            | Q(first_name__istartswith=query)
            | Q(last_name__istartswith=query)
        )
    if lifecycle_stage:
        contacts = contacts.filter(lifecycle_stage=lifecycle_stage)
    return contacts.order_by("-created_at", "-id")


def search_companies(workspace: Workspace, *, query: str = "") -> QuerySet[Company]:
    companies = Company.objects.for_workspace(workspace).select_related("owner")
    query = query.strip()
    if query:
        companies = companies.filter(Q(name__istartswith=query) | Q(domain__istartswith=query))
    return companies.annotate(contact_count=Count("contacts")).order_by("name", "id")


def company_contacts(company: Company) -> QuerySet[Contact]:
    return (
        Contact.objects.for_workspace(company.workspace_id)
        .filter(company=company)
        .order_by("last_name", "first_name")
    )
