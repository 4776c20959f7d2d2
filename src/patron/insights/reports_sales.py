"""Sales reports: the pipeline, expected revenue, won and lost deals, what each
salesperson did, how fast deals close, and who carries how much open work.

Every function takes (workspace, period, filters) and returns typed rows. Sums
are made in SQL (``GROUP BY``), one query per table read; money is summed per
currency, so a deal in another currency than the workspace's is a row of its
own and never added to the others. Amounts are rounded to cents once, after
summing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from statistics import median
from typing import Any

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth, TruncYear
from django.utils import timezone

from patron.activity.models import Event
from patron.core.models import Workspace
from patron.core.selectors import active_users
from patron.crm.models import (
    Call,
    CallOutcome,
    Deal,
    Meeting,
    MeetingOutcome,
    Stage,
    StageOutcome,
    Task,
    Ticket,
    TicketStatus,
)
from patron.insights.periods import Filters, Period

CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    """A database sum as Decimal cents (SQLite may hand back a float or an int)."""
    if value is None:
        return Decimal("0.00")
    return Decimal(str(value)).quantize(CENT)


def _weighted() -> ExpressionWrapper:
    return ExpressionWrapper(
        F("amount") * F("stage__probability") / 100,
        output_field=DecimalField(max_digits=20, decimal_places=4),
    )


def deals_for(workspace: Workspace, filters: Filters) -> QuerySet[Deal]:
    deals = Deal.objects.for_workspace(workspace)
    if filters.owner_id is not None:
        deals = deals.filter(owner_id=filters.owner_id)
    if filters.pipeline_id is not None:
        deals = deals.filter(pipeline_id=filters.pipeline_id)
    if filters.source:
        deals = deals.filter(source=filters.source)
    return deals


# --- Pipeline by stage -------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    pipeline_id: int
    pipeline: str
    stage_id: int
    stage: str
    outcome: str
    probability: int
    currency: str
    deals: int
    amount: Decimal
    weighted_amount: Decimal


def pipeline_by_stage(workspace: Workspace, period: Period, filters: Filters) -> list[StageRow]:
    """Deals created in the period, per stage and currency (two queries).

    Every stage of the pipelines shown has a row in the workspace's currency,
    with zeros when it holds no deal; a deal in another currency adds a row of
    its own beside it. ``filters.outcome`` keeps open, won or lost stages only.
    """
    deals = deals_for(workspace, filters).filter(**period.moment_filter("created_at"))
    sums: dict[int, dict[str, tuple[int, Any, Any]]] = {}
    for row in (
        deals.values("stage_id", "currency")
        .order_by()
        .annotate(deals=Count("id"), total=Sum("amount"), weighted=Sum(_weighted()))
    ):
        sums.setdefault(row["stage_id"], {})[row["currency"]] = (
            row["deals"],
            row["total"],
            row["weighted"],
        )
    stages = Stage.objects.for_workspace(workspace).select_related("pipeline")
    if filters.pipeline_id is not None:
        stages = stages.filter(pipeline_id=filters.pipeline_id)
    if filters.outcome:
        stages = stages.filter(outcome=filters.outcome)
    rows = []
    for stage in stages.order_by("pipeline__position", "pipeline_id", "position", "id"):
        found = sums.get(stage.pk, {})
        currencies = [workspace.currency, *sorted(c for c in found if c != workspace.currency)]
        for currency in currencies:
            count, amount, weighted = found.get(currency, (0, None, None))
            rows.append(
                StageRow(
                    pipeline_id=stage.pipeline_id,
                    pipeline=stage.pipeline.name,
                    stage_id=stage.pk,
                    stage=stage.name,
                    outcome=stage.outcome,
                    probability=stage.probability,
                    currency=currency,
                    deals=count,
                    amount=money(amount),
                    weighted_amount=money(weighted),
                )
            )
    return rows


# --- Expected revenue --------------------------------------------------------------------------


@dataclass(frozen=True)
class RevenueRow:
    # The first day of the month (or year); None for open deals without a close date.
    period_start: date | None
    currency: str
    deals: int
    amount: Decimal
    weighted_amount: Decimal


def expected_revenue(
    workspace: Workspace, period: Period, filters: Filters, *, by: str = "month"
) -> list[RevenueRow]:
    """Open deals by expected close month (or year): amount and amount x probability.

    Months of the period without a deal are rows with zeros (in the workspace's
    currency), so a chart has no gaps; open deals without an expected close
    date come last, as one row per currency (``period_start`` None), whatever
    the period. One query for the dated deals, one for the undated.
    """
    truncate = TruncYear if by == "year" else TruncMonth
    open_deals = deals_for(workspace, filters).filter(stage__outcome=StageOutcome.OPEN)
    dated = (
        open_deals.filter(
            expected_close_date__isnull=False, **period.day_filter("expected_close_date")
        )
        .annotate(bucket=truncate("expected_close_date"))
        .values("bucket", "currency")
        .order_by()
        .annotate(deals=Count("id"), total=Sum("amount"), weighted=Sum(_weighted()))
    )
    found: dict[tuple[date, str], RevenueRow] = {}
    for row in dated:
        bucket = row["bucket"]
        bucket = bucket.date() if isinstance(bucket, datetime) else bucket
        found[(bucket, row["currency"])] = RevenueRow(
            period_start=bucket,
            currency=row["currency"],
            deals=row["deals"],
            amount=money(row["total"]),
            weighted_amount=money(row["weighted"]),
        )
    buckets = period.months()
    if by == "year":
        buckets = sorted({month.replace(month=1) for month in buckets})
    for bucket in buckets:
        key = (bucket, workspace.currency)
        if key not in found:
            found[key] = RevenueRow(bucket, workspace.currency, 0, money(0), money(0))
    rows = sorted(
        found.values(),
        key=lambda r: (r.period_start, r.currency != workspace.currency, r.currency),
    )
    for undated in (
        open_deals.filter(expected_close_date__isnull=True)
        .values("currency")
        .order_by("currency")
        .annotate(deals=Count("id"), total=Sum("amount"), weighted=Sum(_weighted()))
    ):
        rows.append(
            RevenueRow(
                period_start=None,
                currency=undated["currency"],
                deals=undated["deals"],
                amount=money(undated["total"]),
                weighted_amount=money(undated["weighted"]),
            )
        )
    return rows


# --- Won and lost ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeRow:
    outcome: str  # "won" or "lost"
    reason: str  # why it was lost ("" for won deals and lost ones without a reason)
    currency: str
    deals: int
    amount: Decimal


def won_lost(workspace: Workspace, period: Period, filters: Filters) -> list[OutcomeRow]:
    """Deals closed in the period, by outcome, reason lost and currency (one query).

    Won first, then lost by the number of deals (most common reason first);
    ``filters.outcome`` ("won" or "lost") keeps one of the two.
    """
    outcomes = [StageOutcome.WON, StageOutcome.LOST]
    if filters.outcome in outcomes:
        outcomes = [StageOutcome(filters.outcome)]
    rows = [
        OutcomeRow(
            outcome=row["stage__outcome"],
            reason=row["lost_reason"] if row["stage__outcome"] == StageOutcome.LOST else "",
            currency=row["currency"],
            deals=row["deals"],
            amount=money(row["amount"]),
        )
        for row in deals_for(workspace, filters)
        .filter(stage__outcome__in=outcomes, **period.moment_filter("closed_at"))
        .values("stage__outcome", "lost_reason", "currency")
        .order_by()
        .annotate(deals=Count("id"), amount=Sum("amount"))
    ]
    rows.sort(key=lambda r: (r.outcome != StageOutcome.WON, -r.deals, r.reason, r.currency))
    return rows


# --- Activities per salesperson ----------------------------------------------------------------


@dataclass(frozen=True)
class SalespersonRow:
    user_id: int
    name: str
    calls: int
    calls_connected: int
    meetings: int
    meetings_completed: int
    emails: int
    tasks_done: int
    deals_won: int
    deals_lost: int


def _by_person(queryset: QuerySet[Any], person: str, **counts: Any) -> dict[int, dict[str, int]]:
    return {
        row.pop(person): row
        for row in queryset.filter(**{f"{person}__isnull": False})
        .values(person)
        .order_by()
        .annotate(**counts)
    }


def activities_per_salesperson(
    workspace: Workspace, period: Period, filters: Filters
) -> list[SalespersonRow]:
    """What each member did in the period, and how it went (six queries).

    Calls they logged (connected ones apart), meetings they organised that
    started in the period (completed ones apart), one-to-one emails they sent
    (``email.sent`` events with them as actor), tasks assigned to them and
    completed, and their deals won and lost. Members who did nothing are rows
    of zeros; ``filters.owner_id`` keeps one person.
    """
    calls = _by_person(
        Call.objects.for_workspace(workspace).filter(**period.moment_filter("occurred_at")),
        "logged_by",
        calls=Count("id"),
        calls_connected=Count("id", filter=Q(outcome=CallOutcome.CONNECTED)),
    )
    meetings = _by_person(
        Meeting.objects.for_workspace(workspace).filter(**period.moment_filter("starts_at")),
        "organizer",
        meetings=Count("id"),
        meetings_completed=Count("id", filter=Q(outcome=MeetingOutcome.COMPLETED)),
    )
    emails = _by_person(
        Event.objects.for_workspace(workspace).filter(
            kind="email.sent", **period.moment_filter("occurred_at")
        ),
        "actor",
        emails=Count("id"),
    )
    tasks = _by_person(
        Task.objects.for_workspace(workspace).filter(**period.moment_filter("completed_at")),
        "assignee",
        tasks_done=Count("id"),
    )
    deals = _by_person(
        Deal.objects.for_workspace(workspace).filter(**period.moment_filter("closed_at")),
        "owner",
        deals_won=Count("id", filter=Q(stage__outcome=StageOutcome.WON)),
        deals_lost=Count("id", filter=Q(stage__outcome=StageOutcome.LOST)),
    )
    people = active_users(workspace)
    if filters.owner_id is not None:
        people = people.filter(pk=filters.owner_id)
    rows = []
    for user in people:
        values: dict[str, int] = {}
        for table in (calls, meetings, emails, tasks, deals):
            values.update(table.get(user.pk, {}))
        rows.append(
            SalespersonRow(
                user_id=user.pk,
                name=user.display_name,
                calls=values.get("calls", 0),
                calls_connected=values.get("calls_connected", 0),
                meetings=values.get("meetings", 0),
                meetings_completed=values.get("meetings_completed", 0),
                emails=values.get("emails", 0),
                tasks_done=values.get("tasks_done", 0),
                deals_won=values.get("deals_won", 0),
                deals_lost=values.get("deals_lost", 0),
            )
        )
    return rows


# --- Deal velocity -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VelocityRow:
    pipeline_id: int
    pipeline: str
    outcome: str
    deals: int
    average_days: float | None
    median_days: float | None


def deal_velocity(workspace: Workspace, period: Period, filters: Filters) -> list[VelocityRow]:
    """Days from a deal's creation to its close, for deals closed in the period.

    One row per pipeline and outcome (won, lost). One query reading two
    timestamps per closed deal; the median is taken in Python, since SQLite
    has no percentile function.
    """
    durations: dict[tuple[int, str], list[float]] = {}
    names: dict[int, str] = {}
    for pipeline_id, name, outcome, created_at, closed_at in (
        deals_for(workspace, filters)
        .filter(
            stage__outcome__in=[StageOutcome.WON, StageOutcome.LOST],
            closed_at__isnull=False,
            **period.moment_filter("closed_at"),
        )
        .values_list("pipeline_id", "pipeline__name", "stage__outcome", "created_at", "closed_at")
        .order_by()
    ):
        names[pipeline_id] = name
        if closed_at is None:
            continue
        days = max((closed_at - created_at).total_seconds(), 0) / 86400
        durations.setdefault((pipeline_id, outcome), []).append(days)
    rows = []
    for (pipeline_id, outcome), spans in sorted(
        durations.items(), key=lambda item: (names[item[0][0]], item[0][0], item[0][1] != "won")
    ):
        rows.append(
            VelocityRow(
                pipeline_id=pipeline_id,
                pipeline=names[pipeline_id],
                outcome=outcome,
                deals=len(spans),
                average_days=round(sum(spans) / len(spans), 1),
                median_days=round(median(spans), 1),
            )
        )
    return rows


# --- Workload ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadRow:
    user_id: int | None  # None: work nobody owns
    name: str
    open_tasks: int
    overdue_tasks: int
    open_tickets: int
    open_deals: int


def workload(workspace: Workspace, period: Period, filters: Filters) -> list[WorkloadRow]:
    """Open tasks (and overdue ones), open tickets and open deals per person, now.

    A snapshot: the period does not apply. Work without an owner is the last
    row (``user_id`` None) when there is any. Three queries and the members.
    """
    now = timezone.now()

    def grouped(queryset: QuerySet[Any], person: str, **counts: Any) -> dict[int | None, Any]:
        return {
            row.pop(person): row for row in queryset.values(person).order_by().annotate(**counts)
        }

    tasks = grouped(
        Task.objects.for_workspace(workspace).filter(completed_at__isnull=True),
        "assignee",
        open_tasks=Count("id"),
        overdue_tasks=Count("id", filter=Q(due_at__lt=now)),
    )
    tickets = grouped(
        Ticket.objects.for_workspace(workspace).exclude(
            status__in=[TicketStatus.SOLVED, TicketStatus.CLOSED]
        ),
        "assignee",
        open_tickets=Count("id"),
    )
    deals = grouped(
        deals_for(workspace, Filters(pipeline_id=filters.pipeline_id)).filter(
            stage__outcome=StageOutcome.OPEN
        ),
        "owner",
        open_deals=Count("id"),
    )

    def row(user_id: int | None, name: str) -> WorkloadRow:
        return WorkloadRow(
            user_id=user_id,
            name=name,
            open_tasks=tasks.get(user_id, {}).get("open_tasks", 0),
            overdue_tasks=tasks.get(user_id, {}).get("overdue_tasks", 0),
            open_tickets=tickets.get(user_id, {}).get("open_tickets", 0),
            open_deals=deals.get(user_id, {}).get("open_deals", 0),
        )

    people = active_users(workspace)
    if filters.owner_id is not None:
        people = people.filter(pk=filters.owner_id)
    rows = [row(user.pk, user.display_name) for user in people]
    if filters.owner_id is None:
        nobody = row(None, "")
        if nobody.open_tasks or nobody.open_tickets or nobody.open_deals:
            rows.append(nobody)
    return rows
