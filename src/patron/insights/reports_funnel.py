"""The funnel: contacts by lifecycle stage, how they move, and how fast.

Moves are the ``contact.lifecycle_changed`` events (``{"from", "to", "reason"}``)
the CRM records whenever a stage changes, read through their rollup
(``StageEntry``: the first time each contact entered each stage, kept by
``patron.insights.rollups`` every minute). For each stage of the funnel
(subscriber → lead → MQL → SQL → opportunity → customer):

* **now**: contacts at that stage today;
* **reached**: contacts who first entered it during the period;
* **converted**: of those, the ones who then (by the end of the period)
  entered any stage further down the funnel — skipping a stage counts;
* **conversion rate** = converted / reached, and the **median days** from first
  entering the stage to first entering a later one.

``filters.source`` keeps contacts of one source; ``filters.campaign_id`` keeps
the contacts who opened or clicked that campaign.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from statistics import median
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from patron.activity.models import Event
from patron.core.models import Workspace
from patron.crm.models import Contact, LifecycleStage
from patron.insights.models import StageEntry
from patron.insights.periods import Filters, Period

FUNNEL = [
    LifecycleStage.SUBSCRIBER,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.OPPORTUNITY,
    LifecycleStage.CUSTOMER,
]
ORDER = {stage.value: index for index, stage in enumerate(FUNNEL)}
LABELS = {stage.value: str(stage.label) for stage in FUNNEL}
# An unbounded period's chart shows at most this many months (the latest).
MAX_MONTHS = 120


def _contacts(workspace: Workspace, filters: Filters) -> QuerySet[Contact] | None:
    """The contacts the filters keep, as a subquery (None: every contact)."""
    if not filters.source and filters.campaign_id is None and filters.owner_id is None:
        return None
    contacts = Contact.objects.for_workspace(workspace)
    if filters.source:
        contacts = contacts.filter(source=filters.source)
    if filters.owner_id is not None:
        contacts = contacts.filter(owner_id=filters.owner_id)
    if filters.campaign_id is not None:
        engaged = Event.objects.for_workspace(workspace).filter(
            kind__in=["email.opened", "email.clicked"],
            properties__campaign=filters.campaign_id,
            contact_id__isnull=False,
        )
        contacts = contacts.filter(pk__in=engaged.values("contact_id"))
    return contacts


@dataclass(frozen=True)
class FunnelRow:
    stage: str
    label: str
    contacts_now: int
    reached: int
    converted: int
    conversion_rate: float | None
    median_days_to_next: float | None


def _entries(workspace: Workspace, period: Period, filters: Filters) -> QuerySet[StageEntry]:
    entries = StageEntry.objects.for_workspace(workspace).filter(
        **period.moment_filter("entered_at")
    )
    contacts = _contacts(workspace, filters)
    if contacts is not None:
        entries = entries.filter(contact_id__in=contacts.values("id"))
    return entries


def funnel(workspace: Workspace, period: Period, filters: Filters) -> list[FunnelRow]:
    """One row per funnel stage (see the module's docstring): three queries.

    Counts are grouped in SQL; the medians read the converted entries' seconds
    (one narrow column) and are taken in Python, since SQLite has no percentile.
    """
    now_counts: dict[str, int] = {}
    contacts = _contacts(workspace, filters) or Contact.objects.for_workspace(workspace)
    for row in contacts.values("lifecycle_stage").order_by().annotate(n=Count("id")):
        now_counts[row["lifecycle_stage"]] = row["n"]
    entries = _entries(workspace, period, filters)
    converted_q = Q(next_entered_at__isnull=False)
    if period.until is not None:
        converted_q &= Q(next_entered_at__lt=period.until)
    counted: dict[int, Any] = {
        row["rank"]: row
        for row in entries.values("rank")
        .order_by()
        .annotate(reached=Count("id"), converted=Count("id", filter=converted_q))
    }
    waits: dict[int, list[int]] = {}
    for rank, seconds in entries.filter(converted_q).values_list("rank", "seconds_to_next"):
        waits.setdefault(rank, []).append(seconds or 0)
    rows = []
    for index, stage in enumerate(FUNNEL):
        reached = counted.get(index, {}).get("reached", 0)
        converted = counted.get(index, {}).get("converted", 0)
        rows.append(
            FunnelRow(
                stage=stage.value,
                label=LABELS[stage.value],
                contacts_now=now_counts.get(stage.value, 0),
                reached=reached,
                converted=converted,
                conversion_rate=round(converted / reached, 4) if reached else None,
                median_days_to_next=(
                    round(median(waits[index]) / 86400, 1) if waits.get(index) else None
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class StageMonthRow:
    month: date
    stage: str
    label: str
    contacts: int  # moves into the stage that month


def lifecycle_over_time(
    workspace: Workspace, period: Period, filters: Filters
) -> list[StageMonthRow]:
    """Contacts first entering each stage, per month of the period; every month of the
    period is present, with zeros, for every stage.

    One count per month (a range of the rollup's index each), rather than one
    grouped query truncating every row to its month in the workspace's zone:
    SQLite does that truncation in Python, row by row. An unbounded period runs
    from the first entry's month to the last's.
    """
    entries = _entries(workspace, period, filters)
    months = period.months()
    if not months:
        bounds = entries.aggregate(first=Min("entered_at"), last=Max("entered_at"))
        if bounds["first"] is None:
            return []
        start = timezone.localtime(bounds["first"], period.zone).date()
        end = timezone.localtime(bounds["last"], period.zone).date()
        months = replace(period, start=start, end=end).months()[-MAX_MONTHS:]
    rows = []
    for month in months:
        following = (month + timedelta(days=32)).replace(day=1)
        counted = {
            row["rank"]: row["n"]
            for row in entries.filter(
                entered_at__gte=datetime.combine(month, time.min, period.zone),
                entered_at__lt=datetime.combine(following, time.min, period.zone),
            )
            .values("rank")
            .order_by()
            .annotate(n=Count("id"))
        }
        rows += [
            StageMonthRow(
                month=month,
                stage=stage.value,
                label=LABELS[stage.value],
                contacts=counted.get(index, 0),
            )
            for index, stage in enumerate(FUNNEL)
        ]
    return rows


@dataclass(frozen=True)
class SourceStageRow:
    source: str
    stage: str
    label: str
    reached: int


def funnel_by_source(
    workspace: Workspace, period: Period, filters: Filters
) -> list[SourceStageRow]:
    """Contacts who first entered each stage in the period, per contact source.

    One query joining the rollup to the contacts (``StageEntry.contact_id`` is
    a plain column, as in the activity log, so the join is written out).
    """
    entries = _entries(workspace, period, filters)
    inner, params = entries.values("contact_id", "rank").query.sql_with_params()
    contact = Contact._meta.db_table
    sql = (
        f"SELECT c.source, e.rank, COUNT(*) FROM ({inner}) e "  # noqa: S608 - built by the ORM
        f"JOIN {connection.ops.quote_name(contact)} c ON c.id = e.contact_id "
        "WHERE c.workspace_id = %s GROUP BY c.source, e.rank"
    )
    counted: dict[tuple[str, int], int] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, workspace.pk])
        for source, rank, n in cursor.fetchall():
            counted[(source or "", rank)] = n
    sources = sorted({source for source, _rank in counted})
    return [
        SourceStageRow(
            source=name,
            stage=stage.value,
            label=LABELS[stage.value],
            reached=counted.get((name, index), 0),
        )
        for name in sources
        for index, stage in enumerate(FUNNEL)
    ]
