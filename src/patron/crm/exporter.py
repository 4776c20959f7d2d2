"""CSV export of contacts, companies, deals, tasks and tickets, streamed, safe to open in a
spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from patron.crm.models import (
    Company,
    Contact,
    CustomField,
    CustomFieldObject,
    Deal,
    Task,
    Ticket,
)

# A cell starting with one of these is a formula to Excel, LibreOffice and
# Google Sheets ("=HYPERLINK(...)", "@SUM(...)"); prefixing a quote keeps it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        value = "; ".join(str(item) for item in value)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write returns the line, for StreamingHttpResponse."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])


def _custom(workspace_id: int, object_type: str) -> list[CustomField]:
    return list(
        CustomField.objects.for_workspace(workspace_id)
        .filter(object_type=object_type)
        .order_by("position", "id")
    )


def contact_rows(contacts: QuerySet[Contact], workspace_id: int) -> Iterator[list[Any]]:
    fields = _custom(workspace_id, CustomFieldObject.CONTACT)
    yield [
        "id",
        "first_name",
        "last_name",
        "email",
        "other_emails",
        "phone",
        "mobile_phone",
        "job_title",
        "company",
        "lifecycle_stage",
        "owner",
        "source",
        "score",
        "street",
        "postal_code",
        "city",
        "region",
        "country",
        "time_zone",
        "language",
        "birthday",
        "tags",
        "created_at",
        "updated_at",
        *[f"custom.{field.key}" for field in fields],
    ]
    records = contacts.select_related("company", "owner").prefetch_related("tags", "other_emails")
    for contact in records.iterator(chunk_size=2000):
        yield [
            contact.pk,
            contact.first_name,
            contact.last_name,
            contact.email,
            [other.email for other in contact.other_emails.all()],
            contact.phone,
            contact.mobile_phone,
            contact.job_title,
            contact.company.name if contact.company else "",
            contact.lifecycle_stage,
            contact.owner.email if contact.owner else "",
            contact.source,
            contact.score,
            contact.street,
            contact.postal_code,
            contact.city,
            contact.region,
            contact.country,
            contact.time_zone,
            contact.language,
            contact.birthday.isoformat() if contact.birthday else "",
            [tag.name for tag in contact.tags.all()],
            contact.created_at.isoformat(),
            contact.updated_at.isoformat(),
            *[contact.custom.get(field.key) for field in fields],
        ]


def company_rows(companies: QuerySet[Company], workspace_id: int) -> Iterator[list[Any]]:
    fields = _custom(workspace_id, CustomFieldObject.COMPANY)
    yield [
        "id",
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
        "tags",
        "created_at",
        *[f"custom.{field.key}" for field in fields],
    ]
    records = companies.select_related("owner").prefetch_related("tags")
    for company in records.iterator(chunk_size=2000):
        yield [
            company.pk,
            company.name,
            company.domain,
            company.industry,
            company.size,
            str(company.annual_revenue) if company.annual_revenue is not None else "",
            company.phone,
            company.street,
            company.postal_code,
            company.city,
            company.region,
            company.country,
            company.owner.email if company.owner else "",
            [tag.name for tag in company.tags.all()],
            company.created_at.isoformat(),
            *[company.custom.get(field.key) for field in fields],
        ]


def deal_rows(deals: QuerySet[Deal], workspace_id: int) -> Iterator[list[Any]]:
    fields = _custom(workspace_id, CustomFieldObject.DEAL)
    yield [
        "id",
        "name",
        "pipeline",
        "stage",
        "outcome",
        "amount",
        "currency",
        "probability",
        "expected_close_date",
        "owner",
        "company",
        "source",
        "lost_reason",
        "created_at",
        "closed_at",
        *[f"custom.{field.key}" for field in fields],
    ]
    records = deals.select_related("pipeline", "stage", "owner", "company")
    for deal in records.iterator(chunk_size=2000):
        yield [
            deal.pk,
            deal.name,
            deal.pipeline.name,
            deal.stage.name,
            deal.stage.outcome,
            str(deal.amount),
            deal.currency,
            deal.stage.probability,
            deal.expected_close_date.isoformat() if deal.expected_close_date else "",
            deal.owner.email if deal.owner else "",
            deal.company.name if deal.company else "",
            deal.source,
            deal.lost_reason,
            deal.created_at.isoformat(),
            deal.closed_at.isoformat() if deal.closed_at else "",
            *[deal.custom.get(field.key) for field in fields],
        ]


def _moment(value: Any) -> str:
    return value.isoformat() if value else ""


def ticket_rows(tickets: QuerySet[Ticket], workspace_id: int) -> Iterator[list[Any]]:
    fields = _custom(workspace_id, CustomFieldObject.TICKET)
    yield [
        "id",
        "subject",
        "status",
        "priority",
        "channel",
        "contact_email",
        "company",
        "assignee",
        "created_at",
        "first_response_due_at",
        "first_responded_at",
        "first_response_seconds",
        "resolution_due_at",
        "solved_at",
        "resolution_seconds",
        *[f"custom.{field.key}" for field in fields],
    ]
    records = tickets.select_related("contact", "company", "assignee")
    for ticket in records.iterator(chunk_size=2000):
        yield [
            ticket.pk,
            ticket.subject,
            ticket.status,
            ticket.priority,
            ticket.channel,
            ticket.contact.email if ticket.contact else "",
            ticket.company.name if ticket.company else "",
            ticket.assignee.email if ticket.assignee else "",
            _moment(ticket.created_at),
            _moment(ticket.first_response_due_at),
            _moment(ticket.first_responded_at),
            ticket.first_response_seconds,
            _moment(ticket.resolution_due_at),
            _moment(ticket.solved_at),
            ticket.resolution_seconds,
            *[ticket.custom.get(field.key) for field in fields],
        ]


def task_rows(
    tasks: QuerySet[Task], *, deals: bool = True, tickets: bool = True
) -> Iterator[list[Any]]:
    """Tasks with what they are about; ``deals`` and ``tickets`` say whether the exporting
    member may see those (their columns are left out otherwise)."""
    yield [
        "id",
        "title",
        "description",
        "priority",
        "due_at",
        "remind_at",
        "done",
        "completed_at",
        "assignee",
        "contact_email",
        "company",
        *(["deal"] if deals else []),
        *(["ticket_id"] if tickets else []),
        "created_by",
        "created_at",
    ]
    records = tasks.select_related("assignee", "contact", "company", "deal", "created_by")
    for task in records.iterator(chunk_size=2000):
        yield [
            task.pk,
            task.title,
            task.description,
            task.priority,
            _moment(task.due_at),
            _moment(task.remind_at),
            task.completed_at is not None,
            _moment(task.completed_at),
            task.assignee.email if task.assignee else "",
            task.contact.email if task.contact else "",
            task.company.name if task.company else "",
            *([task.deal.name if task.deal else ""] if deals else []),
            *([task.ticket_id or ""] if tickets else []),
            task.created_by.email if task.created_by else "",
            _moment(task.created_at),
        ]
