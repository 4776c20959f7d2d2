"""Writes for contacts and companies. Each records its activity event."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nh3
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape, linebreaks, strip_tags
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.core.models import AuditAction, User, Workspace
from patron.core.services import notify, record_audit, send_workspace_mail
from patron.crm import custom_fields
from patron.crm.assignment import assign_owner
from patron.crm.custom_fields import CustomFieldInvalid
from patron.crm.models import (
    SELECT_TYPES,
    Company,
    Contact,
    ContactEmail,
    CustomField,
    CustomFieldObject,
    Deal,
    FieldType,
    LifecycleStage,
    Note,
    Pipeline,
    SavedView,
    Stage,
    StageOutcome,
    Tag,
    Task,
    Ticket,
)

CONTACT_FIELDS = {
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile_phone",
    "job_title",
    "company",
    "lifecycle_stage",
    "owner",
    "source",
    "street",
    "postal_code",
    "city",
    "region",
    "country",
    "time_zone",
    "language",
    "birthday",
}
COMPANY_FIELDS = {
    "name",
    "domain",
    "industry",
    "size",
    "annual_revenue",
    "phone",
    "street",
    "postal_code",
    "city",
    "region",
    "country",
    "owner",
}


class DuplicateContact(Exception):
    """Another contact of the workspace has this email address."""

    def __init__(self, existing: Contact) -> None:
        super().__init__(_("A contact with this email already exists."))
        self.existing = existing


class InvalidField(ValueError):
    """A standard field's value is not acceptable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_contact_values(values: dict[str, Any]) -> None:
    import zoneinfo

    from django.conf.locale import LANG_INFO

    time_zone = values.get("time_zone")
    if time_zone and time_zone not in zoneinfo.available_timezones():
        raise InvalidField("time_zone", _("Choose a time zone such as Europe/Berlin."))
    language = values.get("language")
    if language and language not in LANG_INFO:
        raise InvalidField("language", _("Use a language code such as en, de or pt-br."))


class CrossWorkspaceReference(ValueError):
    """A related record (company, owner) does not belong to the workspace."""


# A bulk delete's audit entry names this many of the records it deleted (and counts all).
AUDIT_NAMED = 50
_LABELS = {
    "contact": "email",
    "company": "name",
    "deal": "name",
    "task": "title",
    "ticket": "subject",
}


def delete_audited(
    *, workspace: Workspace, actor: User | None, rows: QuerySet[Any, Any], object_type: str
) -> int:
    """Delete ``rows`` (with what cascades from them) and say so in the audit log: who
    deleted how many of what, naming the first ``AUDIT_NAMED``. Returns how many."""
    named = [
        f"#{pk} {label}"
        for pk, label in rows.order_by("pk").values_list("pk", _LABELS[object_type])[:AUDIT_NAMED]
    ]
    _total, by_model = rows.delete()
    deleted = by_model.get(rows.model._meta.label, 0)
    if deleted:
        record_audit(
            action=AuditAction.RECORDS_DELETED,
            workspace=workspace,
            actor=actor,
            target=f"{object_type}: {deleted}",
            data={"type": object_type, "count": deleted, "named": named},
        )
    return int(deleted)


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
    """The contact with this address, as its primary or one of its other emails."""
    if not email:
        return None
    email = email.strip().lower()
    contact = Contact.objects.for_workspace(workspace).filter(email=email).first()
    if contact is None:
        other = (
            ContactEmail.objects.for_workspace(workspace)
            .filter(email=email)
            .select_related("contact")
            .first()
        )
        contact = other.contact if other else None
    return contact


def _clean_other_emails(
    workspace: Workspace, emails: list[str], primary: str, contact: Contact | None
) -> list[str]:
    cleaned: list[str] = []
    for raw in emails:
        email = raw.strip().lower()
        if not email or email == primary or email in cleaned:
            continue
        existing = find_contact_by_email(workspace, email)
        if existing is not None and (contact is None or existing.pk != contact.pk):
            raise DuplicateContact(existing)
        cleaned.append(email)
    return cleaned


def _set_other_emails(contact: Contact, emails: list[str]) -> None:
    ContactEmail.objects.for_workspace(contact.workspace_id).filter(contact=contact).exclude(
        email__in=emails
    ).delete()
    present = set(contact.other_emails.values_list("email", flat=True))
    ContactEmail.objects.bulk_create(
        ContactEmail(workspace_id=contact.workspace_id, contact=contact, email=email)
        for email in emails
        if email not in present
    )


def _check_companies(workspace: Workspace, companies: list[Company]) -> None:
    for company in companies:
        if company.workspace_id != workspace.pk:
            raise CrossWorkspaceReference(_("A company is not part of this workspace."))


@transaction.atomic
def create_contact(
    *,
    workspace: Workspace,
    actor: User | None = None,
    custom: dict[str, Any] | None = None,
    other_emails: list[str] | None = None,
    other_companies: list[Company] | None = None,
    **values: Any,
) -> Contact:
    """Create a contact; ``custom`` maps custom field keys to values (validated)."""
    unknown = set(values) - CONTACT_FIELDS
    if unknown:
        raise TypeError(f"Unknown contact fields: {', '.join(sorted(unknown))}")
    _normalise_email(values)
    _check_contact_values(values)
    _check_references(workspace, values)
    _check_companies(workspace, other_companies or [])
    values["custom"] = custom_fields.clean_values(
        field_definitions(workspace, CustomFieldObject.CONTACT), custom or {}
    )
    existing = find_contact_by_email(workspace, values.get("email", ""))
    if existing is not None:
        raise DuplicateContact(existing)
    emails = _clean_other_emails(workspace, other_emails or [], values.get("email", ""), None)
    if values.get("owner") is None:
        values["owner"] = assign_owner(
            workspace=workspace,
            object_type=CustomFieldObject.CONTACT,
            values={"lifecycle_stage": LifecycleStage.SUBSCRIBER, "source": "", **values},
        )
    try:
        with transaction.atomic():
            contact = Contact.objects.create(workspace=workspace, **values)
            _set_other_emails(contact, emails)
    except IntegrityError:
        # Another request created the same address between our check and insert.
        existing = find_contact_by_email(workspace, values["email"])
        if existing is None:
            raise
        raise DuplicateContact(existing) from None
    if other_companies:
        contact.other_companies.set(other_companies)
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
def update_contact(
    *,
    contact: Contact,
    actor: User | None = None,
    custom: dict[str, Any] | None = None,
    other_emails: list[str] | None = None,
    other_companies: list[Company] | None = None,
    **values: Any,
) -> Contact:
    """Change the given fields; ``custom`` changes only the keys it names.

    ``other_emails`` and ``other_companies``, when given, replace the lists.
    Every change is recorded in one ``contact.field_changed`` event.
    """
    unknown = set(values) - CONTACT_FIELDS
    if unknown:
        raise TypeError(f"Unknown contact fields: {', '.join(sorted(unknown))}")
    workspace = contact.workspace
    _normalise_email(values)
    _check_contact_values(values)
    _check_references(workspace, values)
    _check_companies(workspace, other_companies or [])
    new_email = values.get("email")
    if new_email and new_email != contact.email:
        existing = find_contact_by_email(workspace, new_email)
        if existing is not None and existing.pk != contact.pk:
            raise DuplicateContact(existing)
    if custom is not None:
        values["custom"] = custom_fields.clean_values(
            field_definitions(workspace, CustomFieldObject.CONTACT),
            custom,
            current=contact.custom,
            partial=True,
        )
    changes = _apply_changes(contact, values)
    if other_emails is not None:
        emails = _clean_other_emails(
            workspace, other_emails, values.get("email", contact.email), contact
        )
        before = sorted(contact.other_emails.values_list("email", flat=True))
        if sorted(emails) != before:
            _set_other_emails(contact, emails)
            changes["other_emails"] = [before, sorted(emails)]
    if other_companies is not None:
        before_ids = sorted(contact.other_companies.values_list("pk", flat=True))
        after_ids = sorted(company.pk for company in other_companies)
        if before_ids != after_ids:
            contact.other_companies.set(other_companies)
            changes["other_companies"] = [before_ids, after_ids]
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
        if "lifecycle_stage" in changes:
            old_stage, new_stage = changes["lifecycle_stage"]
            _record_lifecycle_change(contact, old_stage, new_stage, actor=actor, reason="")
    return contact


def _record_lifecycle_change(
    contact: Contact, old_stage: str, new_stage: str, *, actor: User | None, reason: str
) -> None:
    """The funnel's own event: one ``contact.lifecycle_changed`` per move between stages."""
    record(
        workspace=contact.workspace_id,
        kind="contact.lifecycle_changed",
        contact_id=contact.pk,
        actor=actor,
        source=("crm.contact", contact.pk),
        properties={"from": old_stage, "to": new_stage, "reason": reason},
    )


@transaction.atomic
def set_lifecycle_stage(
    *, contact: Contact, stage: str, actor: User | None = None, reason: str = ""
) -> bool:
    """Move the contact to ``stage`` (a ``LifecycleStage`` value); False if already there.

    ``reason`` says what moved them ("score reached 100", "form: Request a demo",
    "deal won"), shown on the timeline and kept for the funnel. Records a
    ``contact.field_changed`` like any edit and a ``contact.lifecycle_changed``.
    """
    if stage not in LifecycleStage.values:
        raise InvalidField("lifecycle_stage", _("Choose one of the lifecycle stages."))
    rows = Contact.objects.for_workspace(contact.workspace_id).filter(pk=contact.pk)
    old_stage = rows.select_for_update().values_list("lifecycle_stage", flat=True).get()
    if old_stage == stage:
        return False
    now = timezone.now()
    rows.update(lifecycle_stage=stage, updated_at=now)
    contact.lifecycle_stage, contact.updated_at = stage, now
    record(
        workspace=contact.workspace_id,
        kind="contact.field_changed",
        contact_id=contact.pk,
        actor=actor,
        source=("crm.contact", contact.pk),
        properties={"changes": {"lifecycle_stage": [old_stage, stage]}},
    )
    _record_lifecycle_change(contact, old_stage, stage, actor=actor, reason=reason)
    return True


@transaction.atomic
def change_score(
    *,
    contact: Contact,
    points: int,
    reason: str,
    rule: str = "",
    actor: User | None = None,
    occurred_at: datetime | None = None,
) -> int:
    """Add ``points`` (negative to take away) to the contact's score; returns the new score.

    One change of ``change_scores``: the row is updated with one ``UPDATE ...
    SET score = score + n`` so that concurrent changes add up. Each change is a
    ``contact.score_changed`` event carrying ``from``, ``to``, ``points``,
    ``reason`` and the ``rule`` that gave them: the contact's score history
    ("why is this person at 85?") and what score-threshold rules and workflows
    react to.
    """
    change = ScoreChange(contact.pk, points, reason, rule, occurred_at)
    moved = change_scores(workspace=contact.workspace_id, changes=[change], actor=actor)
    if contact.pk in moved:
        contact.score = moved[contact.pk][1]
    return contact.score


@dataclass(frozen=True)
class ScoreChange:
    """One change of ``change_scores``: like the arguments of ``change_score``."""

    contact_id: int
    points: int
    reason: str
    rule: str = ""
    occurred_at: datetime | None = None


@transaction.atomic
def change_scores(
    *, workspace: Workspace | int, changes: list[ScoreChange], actor: User | None = None
) -> dict[int, tuple[int, int]]:
    """Many score changes at once (a scoring batch); returns {contact_id: (before, after)}.

    The bulk form of ``change_score``, with the same events: one
    ``contact.score_changed`` per change, carrying ``from``/``to``/``points``/
    ``reason``/``rule``. The scores move in one ``UPDATE ... SET score = score +
    n`` per statement (PostgreSQL: one for all contacts; SQLite: one per
    contact), so that concurrent changes add up; several changes of one contact
    follow each other in the order given. Contacts that no longer exist are
    skipped.
    """
    from django.db import connection

    from patron.activity.services import record_per_contact

    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    totals: dict[int, int] = {}
    for change in changes:
        if change.points:
            totals[change.contact_id] = totals.get(change.contact_id, 0) + change.points
    totals = {contact_id: points for contact_id, points in totals.items() if points}
    if not totals:
        return {}
    table = connection.ops.quote_name(Contact._meta.db_table)
    ids = sorted(totals)
    new_scores: dict[int, int] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS c SET score = c.score + d.points "  # noqa: S608 - fixed names
                "FROM unnest(%s::bigint[], %s::int[]) AS d(id, points) "
                "WHERE c.id = d.id AND c.workspace_id = %s RETURNING c.id, c.score",
                [ids, [totals[i] for i in ids], workspace_id],
            )
            new_scores = dict(cursor.fetchall())
        else:
            for contact_id in ids:
                cursor.execute(
                    f"UPDATE {table} SET score = score + %s "  # noqa: S608 - fixed names
                    "WHERE id = %s AND workspace_id = %s RETURNING score",
                    [totals[contact_id], contact_id, workspace_id],
                )
                row = cursor.fetchone()
                if row is not None:
                    new_scores[contact_id] = row[0]
    running = {cid: new_scores[cid] - totals[cid] for cid in new_scores}
    rows: list[tuple[int, dict[str, Any], datetime | None]] = []
    for change in changes:
        if not change.points or change.contact_id not in running:
            continue
        before = running[change.contact_id]
        after = before + change.points
        running[change.contact_id] = after
        properties = {
            "from": before,
            "to": after,
            "points": change.points,
            "reason": change.reason,
            "rule": change.rule,
        }
        rows.append((change.contact_id, properties, change.occurred_at))
    record_per_contact(
        workspace=workspace_id,
        kind="contact.score_changed",
        rows=rows,
        source_type="crm.contact",
        actor_id=actor.pk if actor is not None else None,
    )
    return {cid: (new_scores[cid] - totals[cid], new_scores[cid]) for cid in new_scores}


def _apply_changes(record_: Contact | Company | Deal, values: dict[str, Any]) -> dict[str, Any]:
    """Set the changed values on the row; return {field: [old, new]} for the event.

    Custom values are reported per key as ``custom.<key>``.
    """
    changes: dict[str, Any] = {}
    for field, value in values.items():
        old = getattr(record_, field)
        if old == value:
            continue
        if field == "custom":
            for key in sorted(set(old) | set(value)):
                if old.get(key) != value.get(key):
                    changes[f"custom.{key}"] = [old.get(key), value.get(key)]
        else:
            changes[field] = [_plain(old), _plain(value)]
        setattr(record_, field, value)
    return changes


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
def create_company(
    *,
    workspace: Workspace,
    actor: User | None = None,
    custom: dict[str, Any] | None = None,
    **values: Any,
) -> Company:
    unknown = set(values) - COMPANY_FIELDS
    if unknown:
        raise TypeError(f"Unknown company fields: {', '.join(sorted(unknown))}")
    if values.get("domain"):
        values["domain"] = values["domain"].strip().lower()
    _check_references(workspace, values)
    values["custom"] = custom_fields.clean_values(
        field_definitions(workspace, CustomFieldObject.COMPANY), custom or {}
    )
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
def update_company(
    *,
    company: Company,
    actor: User | None = None,
    custom: dict[str, Any] | None = None,
    **values: Any,
) -> Company:
    unknown = set(values) - COMPANY_FIELDS
    if unknown:
        raise TypeError(f"Unknown company fields: {', '.join(sorted(unknown))}")
    if values.get("domain"):
        values["domain"] = values["domain"].strip().lower()
    _check_references(company.workspace, values)
    if custom is not None:
        values["custom"] = custom_fields.clean_values(
            field_definitions(company.workspace, CustomFieldObject.COMPANY),
            custom,
            current=company.custom,
            partial=True,
        )
    changes = _apply_changes(company, values)
    if changes:
        company.updated_at = timezone.now()
        company.save()
        record(
            workspace=company.workspace_id,
            kind="company.field_changed",
            actor=actor,
            source=("crm.company", company.pk),
            properties={"name": company.name, "changes": changes},
        )
    return company


@transaction.atomic
def delete_company(*, company: Company, actor: User | None = None) -> None:
    company.delete()


# --- Pipelines and deals -------------------------------------------------------------

DEFAULT_STAGES: list[tuple[str, int, str]] = [
    ("Qualified", 10, StageOutcome.OPEN),
    ("Meeting booked", 25, StageOutcome.OPEN),
    ("Proposal sent", 50, StageOutcome.OPEN),
    ("Negotiation", 75, StageOutcome.OPEN),
    ("Won", 100, StageOutcome.WON),
    ("Lost", 0, StageOutcome.LOST),
]
DEAL_FIELDS = {
    "name",
    "amount",
    "currency",
    "expected_close_date",
    "owner",
    "company",
    "source",
    "lost_reason",
}


class InvalidStage(ValueError):
    """The stage does not belong to the deal's pipeline."""


@transaction.atomic
def create_pipeline(
    *, workspace: Workspace, name: str, stages: list[tuple[str, int, str]] | None = None
) -> Pipeline:
    position = Pipeline.objects.for_workspace(workspace).count()
    pipeline = Pipeline.objects.create(workspace=workspace, name=name, position=position)
    Stage.objects.bulk_create(
        Stage(
            workspace=workspace,
            pipeline=pipeline,
            name=stage_name,
            probability=probability,
            outcome=outcome,
            position=index,
        )
        for index, (stage_name, probability, outcome) in enumerate(stages or DEFAULT_STAGES)
    )
    return pipeline


def default_pipeline(workspace: Workspace) -> Pipeline:
    """The workspace's first pipeline, created with the usual stages when there is none."""
    pipeline = Pipeline.objects.for_workspace(workspace).order_by("position", "id").first()
    if pipeline is None:
        pipeline = create_pipeline(workspace=workspace, name=_("Sales pipeline"))
    return pipeline


def _record_deal_event(
    deal: Deal, kind: str, actor: User | None, properties: dict[str, Any]
) -> None:
    contact_ids = list(deal.contacts.values_list("pk", flat=True)) or [None]
    for contact_id in contact_ids:
        record(
            workspace=deal.workspace_id,
            kind=kind,
            contact_id=contact_id,
            actor=actor,
            source=("crm.deal", deal.pk),
            properties={
                "deal": deal.name,
                "amount": str(deal.amount),
                "currency": deal.currency,
                **properties,
            },
        )


def _check_deal_references(workspace: Workspace, values: dict[str, Any]) -> None:
    _check_references(workspace, values)
    for contact in values.get("contacts") or []:
        if contact.workspace_id != workspace.pk:
            raise CrossWorkspaceReference(_("A contact is not part of this workspace."))


def _top_position(stage: Stage) -> int:
    lowest = (
        Deal.objects.for_workspace(stage.workspace_id)
        .filter(stage=stage)
        .order_by("position")
        .values_list("position", flat=True)
        .first()
    )
    return (lowest if lowest is not None else 1) - 1


@transaction.atomic
def create_deal(
    *,
    workspace: Workspace,
    name: str,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    contacts: list[Contact] | None = None,
    actor: User | None = None,
    custom: dict[str, Any] | None = None,
    **values: Any,
) -> Deal:
    unknown = set(values) - DEAL_FIELDS
    if unknown:
        raise TypeError(f"Unknown deal fields: {', '.join(sorted(unknown))}")
    values["custom"] = custom_fields.clean_values(
        field_definitions(workspace, CustomFieldObject.DEAL), custom or {}
    )
    pipeline = pipeline or (stage.pipeline if stage else default_pipeline(workspace))
    if pipeline.workspace_id != workspace.pk:
        raise CrossWorkspaceReference(_("The pipeline is not part of this workspace."))
    if stage is None:
        stage = pipeline.stages.order_by("position").first()
    if stage is None or stage.pipeline_id != pipeline.pk:
        raise InvalidStage(_("The stage is not part of the pipeline."))
    _check_deal_references(workspace, {**values, "contacts": contacts})
    values.setdefault("currency", workspace.currency)
    if values.get("owner") is None:
        values["owner"] = assign_owner(
            workspace=workspace,
            object_type=CustomFieldObject.DEAL,
            values={"source": "", **values},
        )
    now = timezone.now()
    deal = Deal.objects.create(
        workspace=workspace,
        name=name,
        pipeline=pipeline,
        stage=stage,
        position=_top_position(stage),
        stage_changed_at=now,
        closed_at=now if stage.outcome != StageOutcome.OPEN else None,
        **values,
    )
    if contacts:
        deal.contacts.set(contacts)
    _record_deal_event(
        deal, "deal.created", actor, {"stage": stage.name, "pipeline": pipeline.name}
    )
    return deal


@transaction.atomic
def update_deal(
    *,
    deal: Deal,
    actor: User | None = None,
    contacts: list[Contact] | None = None,
    custom: dict[str, Any] | None = None,
    **values: Any,
) -> Deal:
    unknown = set(values) - DEAL_FIELDS
    if unknown:
        raise TypeError(f"Unknown deal fields: {', '.join(sorted(unknown))}")
    _check_deal_references(deal.workspace, {**values, "contacts": contacts})
    if custom is not None:
        values["custom"] = custom_fields.clean_values(
            field_definitions(deal.workspace, CustomFieldObject.DEAL),
            custom,
            current=deal.custom,
            partial=True,
        )
    for field, value in values.items():
        setattr(deal, field, value)
    deal.updated_at = timezone.now()
    deal.save()
    if contacts is not None:
        deal.contacts.set(contacts)
    return deal


@transaction.atomic
def move_deal(
    *,
    deal: Deal,
    stage: Stage,
    actor: User | None = None,
    position: int | None = None,
    lost_reason: str = "",
) -> Deal:
    """Put the deal in ``stage`` (of its pipeline); recorded as ``deal.stage_changed``."""
    if stage.pipeline_id != deal.pipeline_id:
        raise InvalidStage(_("The stage is not part of the deal's pipeline."))
    previous = deal.stage
    now = timezone.now()
    deal.position = position if position is not None else _top_position(stage)
    if stage.outcome == StageOutcome.LOST and lost_reason:
        deal.lost_reason = lost_reason
    if previous.pk == stage.pk:
        deal.save(update_fields=["position", "lost_reason"])
        return deal
    deal.stage = stage
    deal.stage_changed_at = now
    deal.updated_at = now
    deal.closed_at = now if stage.outcome != StageOutcome.OPEN else None
    if stage.outcome != StageOutcome.LOST:
        deal.lost_reason = ""
    deal.save()
    _record_deal_event(
        deal,
        "deal.stage_changed",
        actor,
        {
            "from_stage": previous.name,
            "to_stage": stage.name,
            "outcome": stage.outcome,
            "pipeline": deal.pipeline.name,
        },
    )
    return deal


@transaction.atomic
def delete_deal(*, deal: Deal, actor: User | None = None) -> None:
    deal.delete()


# --- Tags and notes ------------------------------------------------------------------

NOTE_TAGS = {
    "p",
    "br",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "a",
    "ul",
    "ol",
    "li",
    "blockquote",
    "code",
    "pre",
    "h3",
    "h4",
}
MAX_TAG_LENGTH = 60


class InvalidTag(ValueError):
    """A tag name that is empty or too long."""


def find_or_create_tags(*, workspace: Workspace, names: list[str]) -> list[Tag]:
    """Tags by name (case-insensitive), created when missing, in the order given."""
    tags: list[Tag] = []
    for raw in names:
        name = " ".join(raw.split())
        if not name or len(name) > MAX_TAG_LENGTH:
            raise InvalidTag(_("A tag needs 1 to %(max)d characters.") % {"max": MAX_TAG_LENGTH})
        tag = Tag.objects.for_workspace(workspace).filter(name__iexact=name).first()
        if tag is None:
            try:
                with transaction.atomic():
                    tag = Tag.objects.create(workspace=workspace, name=name)
            except IntegrityError:  # created meanwhile by another request
                tag = Tag.objects.for_workspace(workspace).get(name__iexact=name)
        if tag not in tags:
            tags.append(tag)
    return tags


@transaction.atomic
def add_tags(
    *, record_: Contact | Company, names: list[str], actor: User | None = None
) -> list[Tag]:
    tags = find_or_create_tags(workspace=record_.workspace, names=names)
    record_.tags.add(*tags)
    return tags


@transaction.atomic
def remove_tag(*, record_: Contact | Company, tag: Tag, actor: User | None = None) -> None:
    record_.tags.remove(tag)


def sanitise_note(body: str) -> str:
    """Plain text becomes paragraphs; HTML keeps only formatting tags and safe links."""
    body = body.strip()
    if "<" not in body:
        body = linebreaks(escape(body))
    return nh3.clean(
        body,
        tags=NOTE_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    ).strip()


@transaction.atomic
def add_note(
    *,
    workspace: Workspace,
    author: User | None,
    body: str,
    contact: Contact | None = None,
    company: Company | None = None,
) -> Note:
    if (contact is None) == (company is None):
        raise ValueError("A note belongs to one contact or one company")
    subject = contact or company
    assert subject is not None
    if subject.workspace_id != workspace.pk:
        raise CrossWorkspaceReference(_("The record is not part of this workspace."))
    clean = sanitise_note(body)
    if not clean:
        raise ValueError(_("The note is empty."))
    note = Note.objects.create(
        workspace=workspace, author=author, body=clean, contact=contact, company=company
    )
    record(
        workspace=workspace,
        kind="contact.note_added",
        contact_id=contact.pk if contact else None,
        actor=author,
        source=("crm.note", note.pk),
        properties={
            "note": strip_tags(clean)[:120],
            **({"company": company.name} if company else {}),
        },
    )
    return note


@transaction.atomic
def delete_note(*, note: Note, actor: User | None = None) -> None:
    note.delete()


# --- Tasks ------------------------------------------------------------------------------

TASK_FIELDS = {
    "title",
    "description",
    "due_at",
    "remind_at",
    "priority",
    "assignee",
    "contact",
    "company",
    "deal",
    "ticket",
}


@transaction.atomic
def create_task(*, workspace: Workspace, created_by: User | None = None, **values: Any) -> Task:
    unknown = set(values) - TASK_FIELDS
    if unknown:
        raise TypeError(f"Unknown task fields: {', '.join(sorted(unknown))}")
    _check_references(
        workspace, {"owner": values.get("assignee"), "company": values.get("company")}
    )
    for related in ("contact", "deal", "ticket"):
        row = values.get(related)
        if row is not None and row.workspace_id != workspace.pk:
            raise CrossWorkspaceReference(_("The record is not part of this workspace."))
    task = Task.objects.create(workspace=workspace, created_by=created_by, **values)
    contact = task.contact
    record(
        workspace=workspace,
        kind="task.created",
        contact_id=contact.pk if contact else None,
        actor=created_by,
        source=("crm.task", task.pk),
        properties={
            "title": task.title,
            "due_at": task.due_at.isoformat() if task.due_at else None,
        },
    )
    return task


@transaction.atomic
def complete_task(*, task: Task, actor: User | None = None) -> Task:
    if task.completed_at is not None:
        return task
    task.completed_at = timezone.now()
    task.save(update_fields=["completed_at"])
    record(
        workspace=task.workspace_id,
        kind="task.completed",
        contact_id=task.contact_id,
        actor=actor,
        source=("crm.task", task.pk),
        properties={"title": task.title},
    )
    return task


@transaction.atomic
def reopen_task(*, task: Task, actor: User | None = None) -> Task:
    task.completed_at = None
    task.save(update_fields=["completed_at"])
    return task


def send_task_reminders(*, now: datetime | None = None, limit: int = 500) -> int:
    """Remind assignees of tasks whose reminder time has come, in the app and by email.

    Each reminder is claimed with a conditional update before it is sent, so two
    schedulers or a retried run never remind twice.
    """
    now = now or timezone.now()
    due = (
        Task.objects.unscoped()
        .filter(
            remind_at__lte=now,
            reminded_at__isnull=True,
            completed_at__isnull=True,
            assignee__isnull=False,
        )
        .select_related("workspace", "assignee", "contact")
        .order_by("remind_at")[:limit]
    )
    sent = 0
    for task in due:
        claimed = (
            Task.objects.for_workspace(task.workspace_id)
            .filter(pk=task.pk, reminded_at__isnull=True)
            .update(reminded_at=now)
        )
        if not claimed or task.assignee is None:
            continue
        link = settings.BASE_URL + reverse("crm:task_list")
        with transaction.atomic():
            notify(
                workspace=task.workspace,
                user=task.assignee,
                text=_("Reminder: %(title)s") % {"title": task.title},
                url=reverse("crm:task_list"),
            )
        with translation.override(task.workspace.language):
            subject = _("Reminder: %(title)s") % {"title": task.title}
        send_workspace_mail(
            workspace=task.workspace,
            to=task.assignee.email,
            subject=subject,
            template="crm/email/task_reminder",
            context={"task": task, "link": link},
        )
        sent += 1
    return sent


# --- Custom fields ----------------------------------------------------------------

MAX_OPTIONS = 200


def field_definitions(workspace: Workspace | int, object_type: str) -> list[CustomField]:
    """The workspace's custom fields for one record type, in display order."""
    return list(
        CustomField.objects.for_workspace(workspace)
        .filter(object_type=object_type)
        .order_by("position", "id")
    )


def _clean_options(field_type: str, options: list[str] | None) -> list[str]:
    if field_type not in SELECT_TYPES:
        return []
    cleaned: list[str] = []
    for option in options or []:
        text = option.strip()
        if not text:
            continue
        if len(text) > 100:
            raise CustomFieldInvalid({"options": _("Keep each option to 100 characters.")})
        if text.lower() in {existing.lower() for existing in cleaned}:
            raise CustomFieldInvalid(
                {"options": _("“%(option)s” is listed twice.") % {"option": text}}
            )
        cleaned.append(text)
    if not cleaned:
        raise CustomFieldInvalid({"options": _("A select field needs at least one option.")})
    if len(cleaned) > MAX_OPTIONS:
        raise CustomFieldInvalid(
            {"options": _("Keep it to %(limit)d options.") % {"limit": MAX_OPTIONS}}
        )
    return cleaned


def key_from_label(label: str) -> str:
    """A field key derived from its label: "Customer tier" -> "customer_tier"."""
    from django.utils.text import slugify

    key = slugify(label).replace("-", "_")[:50].strip("_")
    if not key or not key[0].isalpha():
        key = f"field_{key}".strip("_")[:50]
    return key


@transaction.atomic
def create_custom_field(
    *,
    workspace: Workspace,
    object_type: str,
    label: str,
    field_type: str,
    key: str = "",
    options: list[str] | None = None,
    required: bool = False,
    help_text: str = "",
    actor: User | None = None,
) -> CustomField:
    if object_type not in CustomFieldObject.values:
        raise CustomFieldInvalid({"object_type": _("Choose contacts, companies or deals.")})
    if field_type not in FieldType.values:
        raise CustomFieldInvalid({"field_type": _("Choose one of the field types.")})
    label = label.strip()
    if not label:
        raise CustomFieldInvalid({"label": _("Give the field a label.")})
    key = (key or key_from_label(label)).strip().lower()
    if not custom_fields.KEY_PATTERN.match(key):
        raise CustomFieldInvalid(
            {
                "key": _(
                    "Use lowercase letters, digits and underscores, starting with a letter "
                    "(at most 50)."
                )
            }
        )
    fields = CustomField.objects.for_workspace(workspace).filter(object_type=object_type)
    if fields.filter(key=key).exists():
        raise CustomFieldInvalid(
            {"key": _("Another field already uses the key “%(key)s”.") % {"key": key}}
        )
    return CustomField.objects.create(
        workspace=workspace,
        object_type=object_type,
        key=key,
        label=label,
        field_type=field_type,
        options=_clean_options(field_type, options),
        required=required,
        help_text=help_text.strip(),
        position=fields.count(),
    )


def _records_for(field: CustomField) -> Any:
    model = {
        CustomFieldObject.CONTACT: Contact,
        CustomFieldObject.COMPANY: Company,
        CustomFieldObject.DEAL: Deal,
        CustomFieldObject.TICKET: Ticket,
    }[CustomFieldObject(field.object_type)]
    return model.objects.for_workspace(field.workspace_id)  # type: ignore[attr-defined]


@transaction.atomic
def update_custom_field(
    *,
    field: CustomField,
    label: str | None = None,
    options: list[str] | None = None,
    required: bool | None = None,
    help_text: str | None = None,
    actor: User | None = None,
) -> CustomField:
    """Change a field's label, options, help or requirement; its key and type stay.

    An option still held by a record cannot be removed: the values would
    silently become invalid.
    """
    if label is not None:
        if not label.strip():
            raise CustomFieldInvalid({"label": _("Give the field a label.")})
        field.label = label.strip()
    if options is not None and field.field_type in SELECT_TYPES:
        cleaned = _clean_options(field.field_type, options)
        operator = (
            custom_fields.Operator.EQUALS
            if field.field_type == FieldType.SINGLE_SELECT
            else custom_fields.Operator.HAS_ANY
        )
        for removed in [option for option in field.options if option not in cleaned]:
            value = removed if operator == custom_fields.Operator.EQUALS else [removed]
            query = custom_fields.filter_q(custom_fields.Condition(field, operator, value))
            in_use = _records_for(field).filter(query).count()
            if in_use:
                raise CustomFieldInvalid(
                    {
                        "options": _(
                            "“%(option)s” is still used by %(count)d records; change them first."
                        )
                        % {"option": removed, "count": in_use}
                    }
                )
        field.options = cleaned
    if required is not None:
        field.required = required
    if help_text is not None:
        field.help_text = help_text.strip()
    field.save()
    return field


@transaction.atomic
def delete_custom_field(*, field: CustomField, actor: User | None = None) -> None:
    """Delete the definition and remove its values from every record, in one UPDATE."""
    from django.db import connection

    table = field.model_table
    if connection.vendor == "postgresql":
        sql = f"UPDATE {table} SET custom = custom - %s WHERE workspace_id = %s AND custom ? %s"  # noqa: S608
        params: list[Any] = [field.key, field.workspace_id, field.key]
    else:
        path = f'$."{field.key}"'
        sql = (
            f"UPDATE {table} SET custom = json_remove(custom, %s) "  # noqa: S608
            "WHERE workspace_id = %s AND json_type(custom, %s) IS NOT NULL"
        )
        params = [path, field.workspace_id, path]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    field.delete()


@transaction.atomic
def reorder_custom_fields(*, workspace: Workspace, object_type: str, keys: list[str]) -> None:
    fields = {f.key: f for f in field_definitions(workspace, object_type)}
    ordered = [fields[key] for key in keys if key in fields]
    ordered += [f for f in fields.values() if f not in ordered]
    for position, field in enumerate(ordered):
        field.position = position
    CustomField.objects.bulk_update(ordered, ["position"])


# --- Saved views and bulk actions ----------------------------------------------------

# Deals add pipeline, outcome and closing; tickets status, priority, assignee and
# sla; tasks due, who and priority; contacts a segment.
LIST_PARAMETERS = {
    "q",
    "stage",
    "tag",
    "owner",
    "sort",
    "cols",
    "pipeline",
    "outcome",
    "closing",
    "status",
    "priority",
    "assignee",
    "sla",
    "due",
    "who",
    "segment",
}


class InvalidView(ValueError):
    pass


def clean_view_query(query: dict[str, str]) -> dict[str, str]:
    """Keep only the parameters a list understands (custom filters are ``cf_<key>``)."""
    cleaned = {}
    for key, value in query.items():
        custom_key = key.removeprefix(custom_fields.FORM_PREFIX)
        is_custom = key != custom_key and custom_fields.KEY_PATTERN.match(custom_key)
        if value and (key in LIST_PARAMETERS or is_custom):
            cleaned[key] = str(value)[:500]
    return cleaned


@transaction.atomic
def save_view(
    *,
    workspace: Workspace,
    owner: User,
    name: str,
    query: dict[str, str],
    shared: bool = False,
    object_type: str = "contact",
) -> SavedView:
    """Save (or overwrite) the owner's view called ``name``."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidView(_("Give the view a name of at most 100 characters."))
    view, _created = SavedView.objects.for_workspace(workspace).update_or_create(
        workspace=workspace,
        object_type=object_type,
        owner=owner,
        name=name,
        defaults={"query": clean_view_query(query), "shared": shared},
    )
    return view


def delete_view(*, view: SavedView, actor: User, may_manage: bool) -> None:
    if view.owner_id != actor.pk and not (view.shared and may_manage):
        raise InvalidView(_("Only its owner or an admin can delete this view."))
    view.delete()


class BulkAction:
    TAG = "tag"
    ASSIGN = "assign"
    STAGE = "stage"
    DELETE = "delete"


@transaction.atomic
def bulk_update_contacts(
    *,
    workspace: Workspace,
    contact_ids: Iterable[int] | QuerySet[Any, Any],
    action: str,
    value: Any = None,
    actor: User | None = None,
) -> int:
    """Apply one change to many contacts at once; returns how many were changed.

    Set-based: one UPDATE (or INSERT of tag links), one statement of events.
    """
    from patron.activity.services import record_for_contacts
    from patron.core import bulk

    contacts = Contact.objects.for_workspace(workspace).filter(pk__in=contact_ids)
    ids = list(contacts.values_list("pk", flat=True))
    if not ids:
        return 0
    source = ("crm.bulk", action)
    if action == BulkAction.TAG:
        (tag,) = find_or_create_tags(workspace=workspace, names=[str(value or "")])
        bulk.insert_rows(
            Contact.tags.through,
            ["contact_id", "tag_id"],
            [[pk, tag.pk] for pk in ids],
            ignore_conflicts=True,
        )
        return len(ids)
    if action == BulkAction.ASSIGN:
        owner = value
        if owner is not None:
            _check_references(workspace, {"owner": owner})
        contacts.update(owner=owner, updated_at=timezone.now())
        changes = {"owner": [None, owner.pk if owner else None]}
    elif action == BulkAction.STAGE:
        if value not in LifecycleStage.values:
            raise InvalidField("lifecycle_stage", _("Choose a lifecycle stage."))
        contacts.update(lifecycle_stage=value, updated_at=timezone.now())
        changes = {"lifecycle_stage": [None, value]}
    elif action == BulkAction.DELETE:
        return delete_audited(
            workspace=workspace, actor=actor, rows=contacts, object_type="contact"
        )
    else:
        raise ValueError(f"Unknown bulk action {action!r}")
    record_for_contacts(
        workspace=workspace,
        kind="contact.field_changed",
        contact_ids=ids,
        actor=actor,
        source=source,
        properties={"changes": changes, "bulk": True},
    )
    return len(ids)


@transaction.atomic
def bulk_update_companies(
    *,
    workspace: Workspace,
    company_ids: Iterable[int] | QuerySet[Any, Any],
    action: str,
    value: Any = None,
    actor: User | None = None,
) -> int:
    """Tag, assign or delete many companies at once; returns how many."""
    from patron.core import bulk

    companies = Company.objects.for_workspace(workspace).filter(pk__in=company_ids)
    ids = list(companies.values_list("pk", flat=True))
    if not ids:
        return 0
    if action == BulkAction.TAG:
        (tag,) = find_or_create_tags(workspace=workspace, names=[str(value or "")])
        bulk.insert_rows(
            Company.tags.through,
            ["company_id", "tag_id"],
            [[pk, tag.pk] for pk in ids],
            ignore_conflicts=True,
        )
    elif action == BulkAction.ASSIGN:
        if value is not None:
            _check_references(workspace, {"owner": value})
        companies.update(owner=value, updated_at=timezone.now())
    elif action == BulkAction.DELETE:
        return delete_audited(
            workspace=workspace, actor=actor, rows=companies, object_type="company"
        )
    else:
        raise ValueError(f"Unknown bulk action {action!r}")
    return len(ids)


@transaction.atomic
def bulk_update_deals(
    *,
    workspace: Workspace,
    deal_ids: Iterable[int] | QuerySet[Any, Any],
    action: str,
    value: Any = None,
    actor: User | None = None,
) -> int:
    """Assign or delete many deals at once; returns how many."""
    deals = Deal.objects.for_workspace(workspace).filter(pk__in=deal_ids)
    ids = list(deals.values_list("pk", flat=True))
    if action == BulkAction.ASSIGN:
        if value is not None:
            _check_references(workspace, {"owner": value})
        deals.update(owner=value, updated_at=timezone.now())
    elif action == BulkAction.DELETE:
        return delete_audited(workspace=workspace, actor=actor, rows=deals, object_type="deal")
    else:
        raise ValueError(f"Unknown bulk action {action!r}")
    return len(ids)
