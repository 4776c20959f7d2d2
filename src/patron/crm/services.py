"""Writes for contacts and companies. Each records its activity event."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.core.models import User, Workspace
from patron.crm.models import Company, Contact

CONTACT_FIELDS = {
    "first_name",
    "last_name",
    "email",
    "phone",
    "job_title",
    "company",
    "lifecycle_stage",
    "owner",
    "source",
}
COMPANY_FIELDS = {
    "name",
    "domain",
    "industry",
    "size",
    "annual_revenue",
    "phone",
    "city",
    "country",
    "owner",
}


class DuplicateContact(Exception):
    """Another contact of the workspace has this email address."""

    def __init__(self, existing: Contact) -> None:
        super().__init__(_("A contact with this email already exists."))
        self.existing = existing


class CrossWorkspaceReference(ValueError):
    """A related record (company, owner) does not belong to the workspace."""


def _check_references(workspace: Workspace, values: dict[str, Any]) -> None:
    company = values.get("company")
    if company is not None and company.workspace_id != workspace.pk:
        raise CrossWorkspaceReference(_("The company is not part of this workspace."))
    owner = values.get("owner")
    if (
        owner is not None
        and not owner.memberships.filter(workspace=workspace, is_active=True).exists()
    ):
        raise CrossWorkspaceReference(_("The owner is not a member of this workspace."))


def _normalise_email(values: dict[str, Any]) -> None:
    if values.get("email"):
        values["email"] = values["email"].strip().lower()


def find_contact_by_email(workspace: Workspace, email: str) -> Contact | None:
    if not email:
        return None
    return Contact.objects.for_workspace(workspace).filter(email=email.strip().lower()).first()


@transaction.atomic
def create_contact(*, workspace: Workspace, actor: User | None = None, **values: Any) -> Contact:
    unknown = set(values) - CONTACT_FIELDS
    if unknown:
        raise TypeError(f"Unknown contact fields: {', '.join(sorted(unknown))}")
    _normalise_email(values)
    _check_references(workspace, values)
    existing = find_contact_by_email(workspace, values.get("email", ""))
    if existing is not None:
        raise DuplicateContact(existing)
    try:
        with transaction.atomic():
            contact = Contact.objects.create(workspace=workspace, **values)
    except IntegrityError:
        # Another request created the same address between our check and insert.
        existing = find_contact_by_email(workspace, values["email"])
        if existing is None:
            raise
        raise DuplicateContact(existing) from None
    record(
        workspace=workspace,
        kind="contact.created",
        contact_id=contact.pk,
        actor=actor,
        source=("crm.contact", contact.pk),
        properties={"source": contact.source},
    )
    return contact


@transaction.atomic
def update_contact(*, contact: Contact, actor: User | None = None, **values: Any) -> Contact:
    unknown = set(values) - CONTACT_FIELDS
    if unknown:
        raise TypeError(f"Unknown contact fields: {', '.join(sorted(unknown))}")
    _normalise_email(values)
    _check_references(contact.workspace, values)
    new_email = values.get("email")
    if new_email and new_email != contact.email:
        existing = find_contact_by_email(contact.workspace, new_email)
        if existing is not None and existing.pk != contact.pk:
            raise DuplicateContact(existing)
    changes = {}
    for field, value in values.items():
        old = getattr(contact, field)
        if old != value:
            changes[field] = [_plain(old), _plain(value)]
            setattr(contact, field, value)
    if changes:
        contact.updated_at = timezone.now()
        contact.save()
        record(
            workspace=contact.workspace_id,
            kind="contact.field_changed",
            contact_id=contact.pk,
            actor=actor,
            source=("crm.contact", contact.pk),
            properties={"changes": changes},
        )
    return contact


def _plain(value: Any) -> Any:
    if hasattr(value, "pk"):
        return value.pk
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@transaction.atomic
def delete_contact(*, contact: Contact, actor: User | None = None) -> None:
    contact.delete()


@transaction.atomic
def create_company(*, workspace: Workspace, actor: User | None = None, **values: Any) -> Company:
    unknown = set(values) - COMPANY_FIELDS
    if unknown:
        raise TypeError(f"Unknown company fields: {', '.join(sorted(unknown))}")
    if values.get("domain"):
        values["domain"] = values["domain"].strip().lower()
    _check_references(workspace, values)
    company = Company.objects.create(workspace=workspace, **values)
    record(
        workspace=workspace,
        kind="company.created",
        actor=actor,
        source=("crm.company", company.pk),
        properties={"name": company.name},
    )
    return company


@transaction.atomic
def update_company(*, company: Company, actor: User | None = None, **values: Any) -> Company:
    unknown = set(values) - COMPANY_FIELDS
    if unknown:
        raise TypeError(f"Unknown company fields: {', '.join(sorted(unknown))}")
    if values.get("domain"):
        values["domain"] = values["domain"].strip().lower()
    _check_references(company.workspace, values)
    for field, value in values.items():
        setattr(company, field, value)
    company.updated_at = timezone.now()
    company.save()
    return company


@transaction.atomic
def delete_company(*, company: Company, actor: User | None = None) -> None:
    company.delete()
