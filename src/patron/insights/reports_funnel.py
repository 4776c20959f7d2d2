"""The funnel: contacts by lifecycle stage, how they move, and how fast.

Moves are the ``contact.lifecycle_changed`` events (``{"from", "to", "reason"}``)
the CRM records whenever a stage changes. For each stage of the funnel
(subscriber → lead → MQL → SQL → opportunity → customer):

* **now**: contacts at that stage today;
* **reached**: contacts who moved into it during the period;
* **converted**: of those, the ones who later (by the end of the period)
  moved into any stage further down the funnel — skipping a stage counts;
* **conversion rate** = converted / reached, and the **median days** from first
  entering the stage to first entering a later one.

``filters.source`` keeps contacts of one source; ``filters.campaign_id`` keeps
the contacts who opened or clicked that campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from statistics import median
from typing import Any

from django.db.models import Count, Min, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncMonth

from patron.activity.models import Event
from patron.core.models import Workspace
from patron.crm.models import Contact, LifecycleStage
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


def _moves(workspace: Workspace, period: Period, filters: Filters) -> Any:
    moves = Event.objects.for_workspace(workspace).filter(
        kind="contact.lifecycle_changed",
        contact_id__isnull=False,
        **period.moment_filter("occurred_at"),
    )
    contacts = _contacts(workspace, filters)
    if contacts is not None:
        moves = moves.filter(contact_id__in=contacts.values("id"))
    return moves.annotate(to_stage=KeyTextTransform("to", "properties"))


@dataclass(frozen=True)
class FunnelRow:
    stage: str
    label: str
    contacts_now: int
    reached: int
    converted: int
    conversion_rate: float | None
    median_days_to_next: float | None


def funnel(workspace: Workspace, period: Period, filters: Filters) -> list[FunnelRow]:
    """One row per funnel stage (see the module's docstring): two queries.

    The moves are read as one row per (contact, stage) with the first time the
    contact entered it (``MIN`` in SQL); conversions are followed in Python.
    """
    now_counts: dict[str, int] = {}
    contacts = _contacts(workspace, filters) or Contact.objects.for_workspace(workspace)
    for row in contacts.values("lifecycle_stage").order_by().annotate(n=Count("id")):
        now_counts[row["lifecycle_stage"]] = row["n"]

    first_entered: dict[int, dict[int, datetime]] = {}
    rows: Any = (
        _moves(workspace, period, filters)
        .filter(properties__to__in=list(ORDER))
        .values("contact_id", "to_stage")
        .order_by()
        .annotate(entered=Min("occurred_at"))
        .values_list("contact_id", "to_stage", "entered")
    )
    for contact_id, stage, entered in rows:
        first_entered.setdefault(contact_id, {})[ORDER[stage]] = entered

    reached = [0] * len(FUNNEL)
    converted = [0] * len(FUNNEL)
    waits: list[list[float]] = [[] for _ in FUNNEL]
    for stages in first_entered.values():
        for index, entered in stages.items():
            reached[index] += 1
            later = [moment for i, moment in stages.items() if i > index and moment >= entered]
            if later:
                converted[index] += 1
                waits[index].append((min(later) - entered).total_seconds() / 86400)
    return [
        FunnelRow(
            stage=stage.value,
            label=LABELS[stage.value],
            contacts_now=now_counts.get(stage.value, 0),
            reached=reached[index],
            converted=converted[index],
            conversion_rate=round(converted[index] / reached[index], 4) if reached[index] else None,
            median_days_to_next=round(median(waits[index]), 1) if waits[index] else None,
        )
        for index, stage in enumerate(FUNNEL)
    ]


@dataclass(frozen=True)
class StageMonthRow:
    month: date
    stage: str
    label: str
    contacts: int  # moves into the stage that month


def lifecycle_over_time(
    workspace: Workspace, period: Period, filters: Filters
) -> list[StageMonthRow]:
    """Moves into each stage per month of the period (one query); every month of a
    bounded period is present, with zeros, for every stage."""
    counted: dict[tuple[date, str], int] = {}
    for row in (
        _moves(workspace, period, filters)
        .filter(properties__to__in=list(ORDER))
        .annotate(month=TruncMonth("occurred_at", tzinfo=period.zone))
        .values("month", "to_stage")
        .order_by()
        .annotate(n=Count("id"))
    ):
        month = row["month"]
        month = month.date() if isinstance(month, datetime) else month
        counted[(month, row["to_stage"])] = row["n"]
    months = sorted(set(period.months()) | {month for month, _stage in counted})
    return [
        StageMonthRow(
            month=month,
            stage=stage.value,
            label=LABELS[stage.value],
            contacts=counted.get((month, stage.value), 0),
        )
        for month in months
        for stage in FUNNEL
    ]


@dataclass(frozen=True)
class SourceStageRow:
    source: str
    stage: str
    label: str
    reached: int


def funnel_by_source(
    workspace: Workspace, period: Period, filters: Filters
) -> list[SourceStageRow]:
    """Contacts who moved into each stage in the period, per contact source (one query)."""
    source = Subquery(
        Contact.objects.for_workspace(workspace)
        .filter(pk=OuterRef("contact_id"))
        .values("source")[:1]
    )
    counted: dict[tuple[str, str], int] = {}
    for row in (
        _moves(workspace, period, filters)
        .filter(properties__to__in=list(ORDER))
        .annotate(source=source)
        .values("source", "to_stage")
        .order_by()
        .annotate(n=Count("contact_id", distinct=True))
    ):
        counted[(row["source"] or "", row["to_stage"])] = row["n"]
    sources = sorted({source for source, _stage in counted})
    return [
        SourceStageRow(
            source=name,
            stage=stage.value,
            label=LABELS[stage.value],
            reached=counted.get((name, stage.value), 0),
        )
        for name in sources
        for stage in FUNNEL
    ]
