"""Reads for contacts, companies, deals, tasks and tickets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from patron.core.models import User, Workspace
from patron.crm.custom_fields import Condition, filter_q
from patron.crm.models import (
    Company,
    Contact,
    Deal,
    Pipeline,
    Quote,
    QuoteStatus,
    Stage,
    Tag,
    Task,
    Ticket,
    TicketStatus,
    workspace_today,
)
from patron.crm.quotes import Totals
from patron.crm.quotes import totals as quote_totals

CONTACT_SORTS = {
    "-created": ("-created_at", "-id"),
    "-last_activity": (F("last_activity_at").desc(nulls_last=True), "-id"),
    "name": ("last_name", "first_name", "id"),
    "email": ("email", "id"),
    "-score": ("-score", "-id"),
}


def search_contacts(
    workspace: Workspace,
    *,
    query: str = "",
    lifecycle_stage: str = "",
    tag: str = "",
    owner: User | str | None = "",
    custom: Sequence[Condition] = (),
    sort: str = "-created",
) -> QuerySet[Contact]:
    """Contacts matching the filters; custom field conditions compile to SQL.

    ``owner`` is a member, None for contacts without an owner, or "" for any.
    """
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
    if tag:
        contacts = contacts.filter(
            Exists(
                Contact.tags.through.objects.filter(
                    contact_id=OuterRef("pk"), tag__workspace=workspace, tag__name__iexact=tag
                )
            )
        )
    if owner != "":
        # A member, or None for "without owner"; "" means any owner.
        contacts = contacts.filter(owner=owner)
    for condition in custom:
        contacts = contacts.filter(filter_q(condition))
    return contacts.order_by(*CONTACT_SORTS.get(sort, CONTACT_SORTS["-created"]))


def tags(workspace: Workspace) -> QuerySet[Tag]:
    return Tag.objects.for_workspace(workspace).order_by("name")


COMPANY_SORTS = {
    "name": ("name", "id"),
    "-created": ("-created_at", "-id"),
    "-size": (F("size").desc(nulls_last=True), "name", "id"),
}


def search_companies(
    workspace: Workspace,
    *,
    query: str = "",
    tag: str = "",
    owner: User | str | None = "",
    custom: Sequence[Condition] = (),
    sort: str = "name",
) -> QuerySet[Company]:
    """Companies matching the filters; ``owner`` "" means any, None means without owner."""
    companies = Company.objects.for_workspace(workspace).select_related("owner")
    query = query.strip()
    if query:
        companies = companies.filter(Q(name__istartswith=query) | Q(domain__istartswith=query))
    if tag:
        companies = companies.filter(
            Exists(
                Company.tags.through.objects.filter(
                    company_id=OuterRef("pk"), tag__workspace=workspace, tag__name__iexact=tag
                )
            )
        )
    if owner != "":
        companies = companies.filter(owner=owner)
    for condition in custom:
        companies = companies.filter(filter_q(condition))
    return companies.annotate(contact_count=Count("contacts")).order_by(
        *COMPANY_SORTS.get(sort, COMPANY_SORTS["name"])
    )


def company_contacts(company: Company) -> QuerySet[Contact]:
    """People of the company: those with it as primary company, and the others linked to it."""
    return (
        Contact.objects.for_workspace(company.workspace_id)
        .filter(Q(company=company) | Q(other_companies=company))
        .distinct()
        .order_by("last_name", "first_name")
    )


# --- Deals --------------------------------------------------------------------------


@dataclass
class BoardColumn:
    stage: Stage
    deals: list[Deal]
    amount: Decimal
    weighted: Decimal


def pipelines(workspace: Workspace) -> QuerySet[Pipeline]:
    return Pipeline.objects.for_workspace(workspace).order_by("position", "id")


def board(workspace: Workspace, pipeline: Pipeline) -> list[BoardColumn]:
    """The pipeline's stages in order, each with its deals (card order) and totals."""
    stages = list(Stage.objects.for_workspace(workspace).filter(pipeline=pipeline))
    deals = (
        Deal.objects.for_workspace(workspace)
        .filter(pipeline=pipeline)
        .select_related("company", "owner", "stage")
        .order_by("position", "-id")
    )
    by_stage: dict[int, list[Deal]] = {stage.pk: [] for stage in stages}
    for deal in deals:
        by_stage[deal.stage_id].append(deal)
    columns = []
    for stage in stages:
        stage_deals = by_stage[stage.pk]
        amount = sum((d.amount for d in stage_deals), Decimal(0))
        weighted = (amount * stage.probability / Decimal(100)).quantize(Decimal("0.01"))
        columns.append(BoardColumn(stage, stage_deals, amount, weighted))
    return columns


DEAL_SORTS = {
    "close": (F("expected_close_date").asc(nulls_last=True), "-id"),
    "-amount": ("-amount", "-id"),
    "-created": ("-created_at", "-id"),
    "-stage_changed": ("-stage_changed_at", "-id"),
    "name": ("name", "id"),
}


def search_deals(
    workspace: Workspace,
    *,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    outcome: str = "",
    query: str = "",
    owner: User | str | None = "",
    closing_between: tuple[Any, Any] | None = None,
    custom: Sequence[Condition] = (),
    sort: str = "close",
) -> QuerySet[Deal]:
    """Deals matching the filters; ``owner`` "" means any, None means without owner."""
    deals = Deal.objects.for_workspace(workspace).select_related(
        "stage", "pipeline", "company", "owner"
    )
    if owner != "":
        deals = deals.filter(owner=owner)
    if closing_between is not None:
        deals = deals.filter(expected_close_date__range=closing_between)
    for condition in custom:
        deals = deals.filter(filter_q(condition))
    if pipeline is not None:
        deals = deals.filter(pipeline=pipeline)
    if stage is not None:
        deals = deals.filter(stage=stage)
    if outcome:
        deals = deals.filter(stage__outcome=outcome)
    if query.strip():
        deals = deals.filter(name__icontains=query.strip())
    return deals.annotate(weighted_amount=F("amount") * F("stage__probability") / 100).order_by(
        *DEAL_SORTS.get(sort, DEAL_SORTS["close"])
    )


# --- Tasks --------------------------------------------------------------------------


def _day_bounds() -> tuple[datetime, datetime]:
    """Start of today and of tomorrow in the active time zone."""
    today = timezone.localdate()
    start = timezone.make_aware(datetime.combine(today, time.min))
    return start, start + timedelta(days=1)


TASK_DUE = ("overdue", "today", "upcoming", "someday", "open", "done")
TASK_PRIORITY_ORDER = Case(
    When(priority="high", then=Value(0)),
    When(priority="normal", then=Value(1)),
    default=Value(2),
)
TASK_SORTS: dict[str, tuple[Any, ...]] = {
    "due": (F("due_at").asc(nulls_last=True), "-created_at", "-id"),
    "-priority": (TASK_PRIORITY_ORDER, F("due_at").asc(nulls_last=True), "-id"),
    "-created": ("-created_at", "-id"),
    "title": ("title", "id"),
}


def filter_tasks_due(tasks: QuerySet[Task], due: str) -> QuerySet[Task]:
    """Tasks by when they are due: "overdue", "today", "upcoming", "someday" (no due
    time), "open" (any not done) or "done"; anything else leaves ``tasks`` as they are."""
    start, end = _day_bounds()
    open_tasks = tasks.filter(completed_at__isnull=True)
    if due == "done":
        return tasks.filter(completed_at__isnull=False)
    if due == "open":
        return open_tasks
    if due == "overdue":
        return open_tasks.filter(due_at__lt=timezone.now())
    if due == "today":
        return open_tasks.filter(due_at__gte=start, due_at__lt=end)
    if due == "upcoming":
        return open_tasks.filter(due_at__gte=end)
    if due == "someday":
        return open_tasks.filter(due_at__isnull=True)
    return tasks


def search_tasks(
    workspace: Workspace,
    *,
    assignee: User | str | None = "",
    due: str = "",
    priority: str = "",
    query: str = "",
    sort: str = "due",
) -> QuerySet[Task]:
    """Tasks matching the filters; ``assignee`` "" means anyone, None nobody.

    Sorted "by due date", done tasks come most recently completed first and
    tasks without a due time newest first, as "my tasks" always showed them.
    """
    tasks = Task.objects.for_workspace(workspace).select_related(
        "contact", "company", "assignee", "deal", "ticket", "created_by"
    )
    if assignee != "":
        tasks = tasks.filter(assignee=assignee)
    tasks = filter_tasks_due(tasks, due)
    if priority:
        tasks = tasks.filter(priority=priority)
    query = query.strip()
    if query:
        tasks = tasks.filter(title__icontains=query)
    if sort == "due" and due == "done":
        return tasks.order_by("-completed_at", "-id")
    if sort == "due" and due == "someday":
        return tasks.order_by("-created_at", "-id")
    return tasks.order_by(*TASK_SORTS.get(sort, TASK_SORTS["due"]))


def task_counts(workspace: Workspace, *, assignee: User | str | None = "") -> dict[str, int]:
    """Open tasks per due bucket; ``assignee`` as for ``search_tasks``."""
    tasks = Task.objects.for_workspace(workspace).filter(completed_at__isnull=True)
    if assignee != "":
        tasks = tasks.filter(assignee=assignee)
    start, end = _day_bounds()
    now = timezone.now()
    return tasks.aggregate(
        overdue=Count("pk", filter=Q(due_at__lt=now)),
        today=Count("pk", filter=Q(due_at__gte=start, due_at__lt=end)),
        upcoming=Count("pk", filter=Q(due_at__gte=end)),
        someday=Count("pk", filter=Q(due_at__isnull=True)),
    )


# --- Tickets ------------------------------------------------------------------------

OPEN_TICKET_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
TICKET_PRIORITY_ORDER = Case(
    When(priority="urgent", then=Value(0)),
    When(priority="high", then=Value(1)),
    When(priority="normal", then=Value(2)),
    default=Value(3),
)
TICKET_SORTS = {
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
    "-priority": (TICKET_PRIORITY_ORDER, "-created_at", "-id"),
    "resolution_due": (F("resolution_due_at").asc(nulls_last=True), "-id"),
    "-updated": ("-updated_at", "-id"),
}


def search_tickets(
    workspace: Workspace,
    *,
    status: str = "",
    priority: str = "",
    assignee: User | str | None = "",
    contact_id: int | None = None,
    sla: str = "",
    query: str = "",
    sort: str = "-created",
) -> QuerySet[Ticket]:
    """Tickets matching the filters, newest first.

    ``status`` is a status, "open" for any not yet solved, or "" for all;
    ``assignee`` is a member, None for unassigned tickets, or "" for anyone;
    ``sla`` is "breached", "at_risk" or "on_track" (of tickets not solved).
    """
    from patron.crm.tickets import filter_by_sla

    found = Ticket.objects.for_workspace(workspace).select_related("contact", "company", "assignee")
    if status == "open":
        found = found.filter(status__in=OPEN_TICKET_STATUSES)
    elif status:
        found = found.filter(status=status)
    if priority:
        found = found.filter(priority=priority)
    if assignee is None:
        found = found.filter(assignee__isnull=True)
    elif assignee != "":
        found = found.filter(assignee=assignee)
    if contact_id is not None:
        found = found.filter(contact_id=contact_id)
    if sla:
        found = filter_by_sla(found, sla)
    query = query.strip()
    if query:
        found = found.filter(subject__icontains=query)
    return found.order_by(*TICKET_SORTS.get(sort, TICKET_SORTS["-created"]))


def company_ticket_source_ids(company: Company) -> QuerySet[Ticket, Any]:
    """The company's ticket ids as activity-log source ids (strings), for its timeline."""
    return (
        Ticket.objects.for_workspace(company.workspace_id)
        .filter(company=company)
        .annotate(source_id=Cast("pk", CharField()))
        .values("source_id")
    )


# --- Quotes -------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteRow:
    quote: Quote
    totals: Totals


def quotes_for_deal(deal: Deal) -> list[QuoteRow]:
    """The deal's quotes, newest first, each with its totals (two queries)."""
    found = deal.quotes.select_related("workspace", "contact").prefetch_related("lines")
    return [QuoteRow(quote, quote_totals(list(quote.lines.all()))) for quote in found]


def quotes_in_status(quotes: QuerySet[Quote], workspace: Workspace, status: str) -> QuerySet[Quote]:
    """Filter by status as shown: a sent quote past its date counts as expired already."""
    today = workspace_today(workspace)
    if status == QuoteStatus.EXPIRED:
        return quotes.filter(
            Q(status=QuoteStatus.EXPIRED) | Q(status=QuoteStatus.SENT, valid_until__lt=today)
        )
    if status == QuoteStatus.SENT:
        return quotes.filter(status=QuoteStatus.SENT, valid_until__gte=today)
    return quotes.filter(status=status)
