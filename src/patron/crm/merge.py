"""Duplicates: finding likely pairs, and merging two records into one.

A merge keeps one record (the primary), takes the field values the person
chose from either side, moves everything that points at the other record to
the primary (history, notes, tasks, deals, tags, emails, companies, custom
values) and deletes the other one. It is recorded on the primary's timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.activity.services import move_contact_events, record
from patron.core import bulk
from patron.core.models import User, Workspace
from patron.crm import custom_fields
from patron.crm.models import (
    Company,
    Contact,
    ContactEmail,
    CustomField,
    CustomFieldObject,
    Deal,
    Note,
    Task,
)
from patron.crm.touches import take_touches

# The fields a person chooses between, in the order the merge screen shows them.
# Apps above the CRM that keep rows of a contact (a web visitor's identity, form
# submissions) register how to move them here, from their AppConfig.ready(): the
# merge calls each with (workspace id, merged-away contact id, kept contact id)
# inside its transaction, before the merged-away contact is deleted.
ContactMergeHook = Callable[[int, int, int], None]
CONTACT_MERGE_HOOKS: list[ContactMergeHook] = []


def on_contact_merge(hook: ContactMergeHook) -> ContactMergeHook:
    """Register ``hook`` to move an app's rows from a merged-away contact to the kept one."""
    if hook not in CONTACT_MERGE_HOOKS:
        CONTACT_MERGE_HOOKS.append(hook)
    return hook


CONTACT_MERGE_FIELDS = {
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "email": gettext_lazy("Email"),
    "phone": gettext_lazy("Phone"),
    "mobile_phone": gettext_lazy("Mobile phone"),
    "job_title": gettext_lazy("Job title"),
    "company": gettext_lazy("Company"),
    "lifecycle_stage": gettext_lazy("Lifecycle stage"),
    "owner": gettext_lazy("Owner"),
    "source": gettext_lazy("Source"),
    "street": gettext_lazy("Street address"),
    "postal_code": gettext_lazy("Postal code"),
    "city": gettext_lazy("City"),
    "region": gettext_lazy("State / region"),
    "country": gettext_lazy("Country"),
    "time_zone": gettext_lazy("Time zone"),
    "language": gettext_lazy("Language"),
    "birthday": gettext_lazy("Birthday"),
}
COMPANY_MERGE_FIELDS = {
    "name": gettext_lazy("Name"),
    "domain": gettext_lazy("Domain"),
    "industry": gettext_lazy("Industry"),
    "size": gettext_lazy("Employees"),
    "annual_revenue": gettext_lazy("Annual revenue"),
    "phone": gettext_lazy("Phone"),
    "street": gettext_lazy("Street address"),
    "postal_code": gettext_lazy("Postal code"),
    "city": gettext_lazy("City"),
    "region": gettext_lazy("State / region"),
    "country": gettext_lazy("Country"),
    "owner": gettext_lazy("Owner"),
}


class MergeInvalid(ValueError):
    pass


@dataclass
class MergeRow:
    """One line of the merge screen: a field with both values and the default pick."""

    name: str
    label: str
    primary: Any
    other: Any
    pick: str  # "primary" or "other"

    @property
    def differs(self) -> bool:
        return self.primary != self.other


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _custom(workspace_id: int, object_type: str) -> list[CustomField]:
    return list(
        CustomField.objects.for_workspace(workspace_id)
        .filter(object_type=object_type)
        .order_by("position", "id")
    )


def merge_rows(primary: Contact | Company, other: Contact | Company) -> list[MergeRow]:
    """Every field with both values; the default keeps the primary's unless it is empty."""
    is_contact = isinstance(primary, Contact)
    fields = CONTACT_MERGE_FIELDS if is_contact else COMPANY_MERGE_FIELDS
    rows = []
    for name, label in fields.items():
        mine, theirs = getattr(primary, name), getattr(other, name)
        pick = "other" if _empty(mine) and not _empty(theirs) else "primary"
        rows.append(MergeRow(name, str(label), mine, theirs, pick))
    object_type = CustomFieldObject.CONTACT if is_contact else CustomFieldObject.COMPANY
    for field in _custom(primary.workspace_id, object_type):
        mine = primary.custom.get(field.key)
        theirs = other.custom.get(field.key)
        pick = "other" if _empty(mine) and not _empty(theirs) else "primary"
        rows.append(
            MergeRow(
                f"{custom_fields.FORM_PREFIX}{field.key}",
                field.label,
                custom_fields.display(field, mine) if mine is not None else None,
                custom_fields.display(field, theirs) if theirs is not None else None,
                pick,
            )
        )
    return rows


def _chosen_values(
    primary: Contact | Company, other: Contact | Company, picks: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(standard field values, custom dict) after applying the person's picks."""
    rows = merge_rows(primary, other)
    values: dict[str, Any] = {}
    custom = dict(primary.custom)
    for row in rows:
        pick = picks.get(row.name, row.pick)
        if pick not in {"primary", "other"}:
            raise MergeInvalid(_("Choose a value for %(field)s.") % {"field": row.label})
        source = other if pick == "other" else primary
        if row.name.startswith(custom_fields.FORM_PREFIX):
            key = row.name.removeprefix(custom_fields.FORM_PREFIX)
            value = source.custom.get(key)
            if value is None:
                custom.pop(key, None)
            else:
                custom[key] = value
        else:
            values[row.name] = getattr(source, row.name)
    # Values only the other record had, for fields removed since: keep them.
    for key, value in other.custom.items():
        custom.setdefault(key, value)
    return values, custom


@transaction.atomic
def merge_contacts(
    *,
    primary: Contact,
    other: Contact,
    picks: dict[str, str] | None = None,
    actor: User | None = None,
) -> Contact:
    """Merge ``other`` into ``primary``; ``picks`` maps a field to "primary" or "other"."""
    if primary.pk == other.pk or primary.workspace_id != other.workspace_id:
        raise MergeInvalid(_("Choose two different contacts of this workspace."))
    workspace_id = primary.workspace_id
    values, custom = _chosen_values(primary, other, picks or {})
    # Every address either had stays reachable: the chosen one as primary,
    # the rest as other emails.
    addresses = [primary.email, other.email]
    addresses += list(
        ContactEmail.objects.for_workspace(workspace_id)
        .filter(contact__in=[primary, other])
        .values_list("email", flat=True)
    )
    ContactEmail.objects.for_workspace(workspace_id).filter(contact=other).delete()
    other_email, other_name = other.email, str(other)
    # Free the other's address before the primary may take it (unique per workspace).
    Contact.objects.for_workspace(workspace_id).filter(pk=other.pk).update(email="")
    for name, value in values.items():
        setattr(primary, name, value)
    primary.custom = custom
    primary.updated_at = timezone.now()
    take_touches(primary=primary, other=other)
    primary.save()
    remaining = [a for a in dict.fromkeys(addresses) if a and a != primary.email]
    ContactEmail.objects.for_workspace(workspace_id).filter(contact=primary).delete()
    ContactEmail.objects.bulk_create(
        ContactEmail(workspace_id=workspace_id, contact=primary, email=email) for email in remaining
    )

    _move_links(workspace_id, other.pk, primary.pk)
    from patron.audience.lists import move_subscriptions

    move_subscriptions(workspace=workspace_id, from_contact_id=other.pk, to_contact_id=primary.pk)
    moved = move_contact_events(
        workspace=workspace_id, from_contact_id=other.pk, to_contact_id=primary.pk
    )
    for hook in CONTACT_MERGE_HOOKS:
        hook(workspace_id, other.pk, primary.pk)
    primary.other_companies.add(*other.other_companies.all())
    if other.company_id and other.company_id != primary.company_id:
        primary.other_companies.add(other.company_id)
    primary.other_companies.remove(*([primary.company_id] if primary.company_id else []))
    if other.last_activity_at and (
        primary.last_activity_at is None or other.last_activity_at > primary.last_activity_at
    ):
        primary.last_activity_at = other.last_activity_at
        primary.save(update_fields=["last_activity_at"])
    other.delete()
    record(
        workspace=workspace_id,
        kind="contact.merged",
        contact_id=primary.pk,
        actor=actor,
        source=("crm.contact", primary.pk),
        properties={"name": other_name, "email": other_email, "events_moved": moved},
    )
    return primary


def _move_links(workspace_id: int, from_id: int, to_id: int) -> None:
    """Point notes, tasks, deal participations and tags of one contact at another."""
    Note.objects.for_workspace(workspace_id).filter(contact_id=from_id).update(contact_id=to_id)
    Task.objects.for_workspace(workspace_id).filter(contact_id=from_id).update(contact_id=to_id)
    for through, column in ((Deal.contacts.through, "deal_id"), (Contact.tags.through, "tag_id")):
        linked = list(through.objects.filter(contact_id=from_id).values_list(column, flat=True))
        bulk.insert_rows(
            through, ["contact_id", column], [[to_id, pk] for pk in linked], ignore_conflicts=True
        )
        through.objects.filter(contact_id=from_id).delete()


@transaction.atomic
def merge_companies(
    *,
    primary: Company,
    other: Company,
    picks: dict[str, str] | None = None,
    actor: User | None = None,
) -> Company:
    """Merge ``other`` into ``primary``: its people, deals, notes, tasks and tags move."""
    if primary.pk == other.pk or primary.workspace_id != other.workspace_id:
        raise MergeInvalid(_("Choose two different companies of this workspace."))
    workspace_id = primary.workspace_id
    values, custom = _chosen_values(primary, other, picks or {})
    for name, value in values.items():
        setattr(primary, name, value)
    primary.custom = custom
    primary.updated_at = timezone.now()
    primary.save()
    Contact.objects.for_workspace(workspace_id).filter(company=other).update(company=primary)
    Deal.objects.for_workspace(workspace_id).filter(company=other).update(company=primary)
    Note.objects.for_workspace(workspace_id).filter(company=other).update(company=primary)
    Task.objects.for_workspace(workspace_id).filter(company=other).update(company=primary)
    for through, column in (
        (Company.tags.through, "tag_id"),
        (Contact.other_companies.through, "contact_id"),
    ):
        linked = list(through.objects.filter(company_id=other.pk).values_list(column, flat=True))
        bulk.insert_rows(
            through,
            ["company_id", column],
            [[primary.pk, pk] for pk in linked],
            ignore_conflicts=True,
        )
        through.objects.filter(company_id=other.pk).delete()
    name = other.name
    other.delete()
    record(
        workspace=workspace_id,
        kind="company.merged",
        actor=actor,
        source=("crm.company", primary.pk),
        properties={"name": primary.name, "merged": name},
    )
    return primary


# --- Finding duplicates ------------------------------------------------------------------


def duplicate_contacts(workspace: Workspace, limit: int = 50) -> list[tuple[Contact, Contact]]:
    """Pairs of contacts that look like the same person: same full name, or same phone.

    (Same email cannot happen: addresses are unique in a workspace.)
    """
    contacts = Contact.objects.for_workspace(workspace)
    pairs: list[tuple[Contact, Contact]] = []
    by_name = (
        contacts.exclude(Q(first_name="") | Q(last_name=""))
        .annotate(first=Lower("first_name"), last=Lower("last_name"))
        .values("first", "last")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("-n", "last", "first")[:limit]
    )
    for group in by_name:
        people = list(
            contacts.annotate(first=Lower("first_name"), last=Lower("last_name"))
            .filter(first=group["first"], last=group["last"])
            .select_related("company")
            .order_by("created_at", "id")[:2]
        )
        pairs.append((people[0], people[1]))
    by_phone = (
        contacts.exclude(phone="")
        .values("phone")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("-n", "phone")[:limit]
    )
    seen = {frozenset((a.pk, b.pk)) for a, b in pairs}
    for group in by_phone:
        people = list(
            contacts.filter(phone=group["phone"]).select_related("company").order_by("id")[:2]
        )
        if frozenset(p.pk for p in people) not in seen:
            pairs.append((people[0], people[1]))
    return pairs[:limit]


def duplicate_companies(workspace: Workspace, limit: int = 50) -> list[tuple[Company, Company]]:
    """Pairs of companies with the same domain or the same name."""
    companies = Company.objects.for_workspace(workspace)
    pairs: list[tuple[Company, Company]] = []
    seen: set[frozenset[int]] = set()
    groups = [
        (
            "domain",
            companies.exclude(domain="")
            .values("domain")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .order_by("-n", "domain")[:limit],
        ),
        (
            "lower_name",
            companies.annotate(lower_name=Lower("name"))
            .values("lower_name")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .order_by("-n", "lower_name")[:limit],
        ),
    ]
    for column, found in groups:
        for group in found:
            members = list(
                companies.annotate(lower_name=Lower("name"))
                .filter(**{column: group[column]})
                .order_by("created_at", "id")[:2]
            )
            key = frozenset(c.pk for c in members)
            if key not in seen:
                seen.add(key)
                pairs.append((members[0], members[1]))
    return pairs[:limit]
