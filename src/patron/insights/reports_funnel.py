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

Unfiltered, the funnel sums the rollup's days (``StageDay``) instead of
counting entries, and reads entries only for the hours at either end of the
period that do not make a whole UTC day, and for the one day-wide slice of
waits each median falls in. Filtered, or when a move lies at or after the
period's end (a period in the past: "converted" then depends on that end),
it counts the period's entries.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from statistics import median

from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from patron.activity.models import Event
from patron.core.models import Workspace
from patron.crm.models import Contact, LifecycleStage
from patron.insights.models import StageDay, StageEntry
from patron.insights.periods import Filters, Period
from patron.insights.rollups import DAY_SECONDS, NOT_CONVERTED

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


@dataclass
class StageFigures:
    """One stage's figures for the period (the median in seconds)."""

    reached: int = 0
    converted: int = 0
    median_seconds: float | None = None


def funnel(workspace: Workspace, period: Period, filters: Filters) -> list[FunnelRow]:
    """One row per funnel stage (see the module's docstring)."""
    now_counts: dict[str, int] = {}
    kept = _contacts(workspace, filters)
    contacts = kept or Contact.objects.for_workspace(workspace)
    # COUNT(*): read from the (workspace, lifecycle_stage) index alone, without the rows.
    for row in contacts.values("lifecycle_stage").order_by().annotate(n=Count("*")):
        now_counts[row["lifecycle_stage"]] = row["n"]
    figures = _figures_from_days(workspace, period) if kept is None else None
    if figures is None:
        figures = _figures_from_entries(workspace, period, filters)
    rows = []
    for index, stage in enumerate(FUNNEL):
        found = figures.get(index, StageFigures())
        rows.append(
            FunnelRow(
                stage=stage.value,
                label=LABELS[stage.value],
                contacts_now=now_counts.get(stage.value, 0),
                reached=found.reached,
                converted=found.converted,
                conversion_rate=(
                    round(found.converted / found.reached, 4) if found.reached else None
                ),
                median_days_to_next=(
                    round(found.median_seconds / DAY_SECONDS, 1)
                    if found.median_seconds is not None
                    else None
                ),
            )
        )
    return rows


def _figures_from_entries(
    workspace: Workspace, period: Period, filters: Filters
) -> dict[int, StageFigures]:
    """Counted from the period's entries (two queries); the medians read the converted
    entries' seconds (one narrow column) and are taken in Python, since SQLite has no
    percentile."""
    entries = _entries(workspace, period, filters)
    converted_q = Q(next_entered_at__isnull=False)
    if period.until is not None:
        converted_q &= Q(next_entered_at__lt=period.until)
    figures = {
        row["rank"]: StageFigures(reached=row["reached"], converted=row["converted"])
        for row in entries.values("rank")
        .order_by()
        .annotate(reached=Count("id"), converted=Count("id", filter=converted_q))
    }
    waits: dict[int, list[int]] = {}
    for rank, seconds in entries.filter(converted_q).values_list("rank", "seconds_to_next"):
        waits.setdefault(rank, []).append(seconds or 0)
    for rank, ranked in waits.items():
        figures[rank].median_seconds = median(ranked)
    return figures


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _figures_from_days(workspace: Workspace, period: Period) -> dict[int, StageFigures] | None:
    """The unfiltered figures from the rollup's days, or None when they cannot answer.

    The whole UTC days inside the period are summed from ``StageDay``; the
    hours before the first and after the last are read from the entries. A move
    at or after the period's end makes the days unfit: an entry converted only
    then counts as converted in its day's row.
    """
    entries = StageEntry.objects.for_workspace(workspace)
    since, until = period.since, period.until
    if until is not None and entries.filter(next_entered_at__gte=until).exists():
        return None
    first_day = last_day = None  # the whole UTC days inside the period: [first_day, last_day)
    edges: list[Q] = []
    if since is not None:
        start = since.astimezone(UTC)
        first_day = start.date() + timedelta(days=start.time() != time.min)
        edges.append(Q(entered_at__gte=since, entered_at__lt=_utc_midnight(first_day)))
    if until is not None:
        last_day = until.astimezone(UTC).date()
        edges.append(Q(entered_at__gte=_utc_midnight(last_day), entered_at__lt=until))
    if first_day is not None and last_day is not None and first_day >= last_day:
        return None  # not one whole day: the entries answer
    days = StageDay.objects.for_workspace(workspace)
    if first_day is not None:
        days = days.filter(day__gte=first_day)
    if last_day is not None:
        days = days.filter(day__lt=last_day)
    waits: dict[int, Counter[int]] = {}
    for rank, wait, n in (
        days.values("rank", "wait_days")
        .order_by()
        .annotate(n=Sum("entries"))
        .values_list("rank", "wait_days", "n")
    ):
        waits.setdefault(rank, Counter())[wait] += n
    for edge in edges:
        for rank, seconds in entries.filter(edge).values_list("rank", "seconds_to_next"):
            wait = NOT_CONVERTED if seconds is None else seconds // DAY_SECONDS
            waits.setdefault(rank, Counter())[wait] += 1
    in_period = entries.filter(**period.moment_filter("entered_at"))
    figures = {}
    for rank, counts in waits.items():
        reached = counts.total()
        converted = reached - counts[NOT_CONVERTED]
        figures[rank] = StageFigures(
            reached=reached,
            converted=converted,
            median_seconds=_median_wait(in_period.filter(rank=rank), counts, converted),
        )
    return figures


def _median_wait(
    entries: QuerySet[StageEntry], counts: Counter[int], converted: int
) -> float | None:
    """The median of the converted entries' seconds to the next stage, as
    ``statistics.median`` takes it, from the count of waits per whole day: only the
    day-wide slice holding each middle position is read."""
    if not converted:
        return None
    slices: dict[int, list[int]] = {}

    def nth(position: int) -> int:
        below = 0
        for wait in sorted(w for w in counts if w != NOT_CONVERTED):
            if position < below + counts[wait]:
                if wait not in slices:
                    slices[wait] = [
                        seconds or 0  # never None in a day of waits
                        for seconds in entries.filter(
                            seconds_to_next__gte=wait * DAY_SECONDS,
                            seconds_to_next__lt=(wait + 1) * DAY_SECONDS,
                        )
                        .order_by("seconds_to_next")
                        .values_list("seconds_to_next", flat=True)
                    ]
                return slices[wait][position - below]
            below += counts[wait]
        raise ValueError("position beyond the converted entries")

    middle = converted // 2
    if converted % 2:
        return nth(middle)
    return (nth(middle - 1) + nth(middle)) / 2


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
