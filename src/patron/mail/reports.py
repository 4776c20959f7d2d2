"""The campaign report: what became of a campaign's messages (reads only).

Every number comes from two tables: the campaign's deliveries (sent, bounced,
unsubscribed, complained) and the tracking hits (opens and clicks). Each is
read with one aggregate query (``Count(..., filter=Q(...))``), so a report
costs the same few queries for ten recipients or a million.

How the numbers are counted:

* **sent**: deliveries the receiving server accepted (``status = sent``);
  **delivered**: those of them that did not bounce afterwards. **bounced**
  counts every delivery marked with a bounce, a hard one refused at sending
  time (a failed delivery) included.
* A hit is a **person's** when tracking found no machine behind it
  (``machine`` blank). Hits not yet processed (``processed_at`` empty, seconds
  old) count as a person's until processing says otherwise; machine hits
  (privacy proxies, link scanners) are counted apart and never in the rates.
* **opened** (unique) counts recipients with a person's open *or* click: a
  click proves the message was opened even when its images (the open pixel)
  were blocked. **opens** (total) counts the open hits themselves.
* Rates: **open rate** = unique openers / delivered; **click-through rate** =
  unique clickers / delivered; **click-to-open rate** = unique clickers /
  unique openers; bounce rate = bounced / (sent + failed), of the messages
  handed to a server; unsubscribe and complaint rates are per delivered
  message. A rate whose denominator is 0 is ``None``.

Over time, opens and clicks are counted per hour for the first 48 hours after
the campaign started and per day after that, in the time zone given
(``Trunc`` with ``tzinfo``, which SQLite and PostgreSQL both support).

The per-recipient list annotates each delivery with ``Exists`` subqueries
(opened?, clicked?) and filters on them; the comparison across campaigns
aggregates all of a workspace's deliveries and hits grouped by campaign (two
queries) and sorts the rows in Python, since the sort keys are rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.models import Workspace
from patron.mail.models import BounceType, Campaign, CampaignStatus, Delivery, DeliveryStatus
from patron.tracking.models import Hit, HitKind, TrackedLink

# Hourly buckets cover this long after the start; daily buckets follow.
HOURLY_SPAN = timedelta(hours=48)
# Daily buckets are drawn up to the last day with a hit, and at least this far
# (or until today, when sooner), so that a quiet report still shows its days.
DAILY_MINIMUM = timedelta(days=14)
# Never more daily buckets than this (a campaign read years after it went out).
DAILY_LIMIT = 366

# Campaign states whose messages went out (at least some of them).
REPORTED_STATUSES = (
    CampaignStatus.SENDING,
    CampaignStatus.PAUSED,
    CampaignStatus.SENT,
    CampaignStatus.CANCELLED,
)

HUMAN = Q(machine="")
MACHINE = ~Q(machine="")
OPEN = Q(kind=HitKind.OPEN)
CLICK = Q(kind=HitKind.CLICK)


# --- The numbers -----------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class Numbers:
    """One campaign's totals and rates (rates are fractions, 0.25 is 25 %)."""

    recipients: int = 0
    sent: int = 0
    failed: int = 0
    delivered: int = 0
    bounced: int = 0
    hard_bounced: int = 0
    soft_bounced: int = 0
    opened: int = 0
    opens: int = 0
    machine_opens: int = 0
    clicked: int = 0
    clicks: int = 0
    machine_clicks: int = 0
    unsubscribed: int = 0
    complained: int = 0

    @property
    def not_opened(self) -> int:
        return max(self.delivered - self.opened, 0)

    @property
    def open_rate(self) -> float | None:
        return _rate(self.opened, self.delivered)

    @property
    def click_rate(self) -> float | None:
        """Click-through rate: unique people who clicked, of those delivered to."""
        return _rate(self.clicked, self.delivered)

    @property
    def click_to_open_rate(self) -> float | None:
        return _rate(self.clicked, self.opened)

    @property
    def bounce_rate(self) -> float | None:
        """Bounced, of the messages handed to a server (accepted or refused)."""
        return _rate(self.bounced, self.sent + self.failed)

    @property
    def unsubscribe_rate(self) -> float | None:
        return _rate(self.unsubscribed, self.delivered)

    @property
    def complaint_rate(self) -> float | None:
        return _rate(self.complained, self.delivered)

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
            "not_opened": self.not_opened,
            "open_rate": self.open_rate,
            "click_rate": self.click_rate,
            "click_to_open_rate": self.click_to_open_rate,
            "bounce_rate": self.bounce_rate,
            "unsubscribe_rate": self.unsubscribe_rate,
            "complaint_rate": self.complaint_rate,
        }


def _delivery_counts() -> dict[str, Count]:
    sent = Q(status=DeliveryStatus.SENT)
    return {
        "recipients": Count("id"),
        "sent": Count("id", filter=sent),
        "failed": Count("id", filter=Q(status=DeliveryStatus.FAILED)),
        "delivered": Count("id", filter=sent & Q(bounce="")),
        "bounced": Count("id", filter=~Q(bounce="")),
        "hard_bounced": Count("id", filter=Q(bounce=BounceType.HARD)),
        "soft_bounced": Count("id", filter=Q(bounce=BounceType.SOFT)),
        "unsubscribed": Count("id", filter=Q(unsubscribed_at__isnull=False)),
        "complained": Count("id", filter=Q(complained_at__isnull=False)),
    }


def _hit_counts() -> dict[str, Count]:
    return {
        # Opened: a person's open or click (see the module's docstring).
        "opened": Count("delivery_id", distinct=True, filter=HUMAN),
        "opens": Count("id", filter=OPEN & HUMAN),
        "machine_opens": Count("id", filter=OPEN & MACHINE),
        "clicked": Count("delivery_id", distinct=True, filter=CLICK & HUMAN),
        "clicks": Count("id", filter=CLICK & HUMAN),
        "machine_clicks": Count("id", filter=CLICK & MACHINE),
    }


def _hits(campaign: Campaign) -> QuerySet[Hit]:
    return Hit.objects.for_workspace(campaign.workspace_id).filter(campaign_id=campaign.pk)


def _deliveries(campaign: Campaign) -> QuerySet[Delivery]:
    return Delivery.objects.for_workspace(campaign.workspace_id).filter(campaign_id=campaign.pk)


def campaign_numbers(campaign: Campaign) -> Numbers:
    """The campaign's totals: two queries (deliveries, hits)."""
    delivered = _deliveries(campaign).aggregate(**_delivery_counts())
    hits = _hits(campaign).aggregate(**_hit_counts())
    return Numbers(**delivered, **hits)


def variant_numbers(campaign: Campaign) -> dict[int | None, Numbers]:
    """The totals of each A/B test variant's recipients (``Delivery.variant``; None: the
    rest of the audience, who got the winner): two queries, grouped by variant."""
    deliveries: Any = (
        _deliveries(campaign).values("variant").order_by("variant").annotate(**_delivery_counts())
    )
    variant_of = Subquery(
        Delivery.objects.for_workspace(campaign.workspace_id)
        .filter(pk=OuterRef("delivery_id"))
        .values("variant")[:1],
        output_field=IntegerField(),
    )
    hits: Any = (
        _hits(campaign)
        .annotate(variant=variant_of)
        .values("variant")
        .order_by("variant")
        .annotate(**_hit_counts())
    )
    by_delivery: dict[int | None, dict[str, int]] = {}
    for row in deliveries:
        by_delivery[row.pop("variant")] = row
    by_hits: dict[int | None, dict[str, int]] = {}
    for row in hits:
        by_hits[row.pop("variant")] = row
    return {
        key: Numbers(**by_delivery.get(key, {}), **by_hits.get(key, {}))
        for key in set(by_delivery) | set(by_hits)
    }


# --- The click map -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkClicks:
    index: int
    url: str
    clicked: int  # unique people
    clicks: int  # a person's clicks
    machine_clicks: int
    share: float  # of all of the campaign's clicks by people (0..1)

    @property
    def share_percent(self) -> int:
        return round(self.share * 100)


def click_map(campaign: Campaign) -> list[LinkClicks]:
    """Each link of the campaign with its clicks, most clicked first (two queries).

    Links nobody clicked are listed too (with zeros): knowing what was ignored
    is part of the answer.
    """
    urls: dict[int, str] = dict(
        TrackedLink.objects.for_workspace(campaign.workspace_id)
        .filter(campaign_id=campaign.pk)
        .values_list("index", "url")
    )
    counted: dict[int, dict[str, int]] = {}
    for row in (
        _hits(campaign)
        .filter(CLICK, link__isnull=False)
        .values("link")
        .order_by("link")
        .annotate(
            clicked=Count("delivery_id", distinct=True, filter=HUMAN),
            clicks=Count("id", filter=HUMAN),
            machine_clicks=Count("id", filter=MACHINE),
        )
    ):
        counted[int(row["link"] or 0)] = {
            "clicked": row["clicked"],
            "clicks": row["clicks"],
            "machine_clicks": row["machine_clicks"],
        }
    total = sum(row["clicks"] for row in counted.values())
    links = []
    for index in sorted(set(urls) | set(counted)):
        found = counted.get(index, {})
        clicks = found.get("clicks", 0)
        links.append(
            LinkClicks(
                index=index,
                url=urls.get(index, ""),
                clicked=found.get("clicked", 0),
                clicks=clicks,
                machine_clicks=found.get("machine_clicks", 0),
                share=round(clicks / total, 4) if total else 0.0,
            )
        )
    links.sort(key=lambda link: (-link.clicks, -link.machine_clicks, link.index))
    return links


# --- Opens and clicks over time ----------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    start: datetime  # aware, in the zone asked for
    opens: int
    clicks: int


@dataclass(frozen=True)
class Timeline:
    """Hourly buckets for the first 48 hours after the start, daily ones after."""

    started_at: datetime | None
    hourly: list[Bucket] = field(default_factory=list)
    daily: list[Bucket] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(bucket.opens or bucket.clicks for bucket in [*self.hourly, *self.daily])


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """A bucket's key: its wall-clock start in ``zone`` (naive), comparable across backends."""
    if timezone.is_naive(moment):
        return moment
    return moment.astimezone(zone).replace(tzinfo=None)


def _series(hits: QuerySet[Hit], kind: str, zone: ZoneInfo) -> dict[datetime, tuple[int, int]]:
    rows = (
        hits.filter(HUMAN)
        .annotate(bucket=Trunc("occurred_at", kind, tzinfo=zone))
        .values("bucket")
        .order_by("bucket")
        .annotate(opens=Count("id", filter=OPEN), clicks=Count("id", filter=CLICK))
    )
    return {_wall(row["bucket"], zone): (row["opens"], row["clicks"]) for row in rows}


def timeline(
    campaign: Campaign, *, zone: ZoneInfo | None = None, now: datetime | None = None
) -> Timeline:
    """People's opens and clicks over time (two queries; none before the campaign started).

    The start is the campaign's ``started_at``. Hourly buckets run from the hour
    it started in to 48 hours later (or now, when sooner); daily buckets from
    there to the last day with a hit, and at least two weeks (or until today).
    Empty buckets are included, so a chart has no gaps.
    """
    start = campaign.started_at
    if start is None:
        return Timeline(started_at=None)
    zone = zone or ZoneInfo("UTC")
    now = now or timezone.now()
    switch = start + HOURLY_SPAN
    hits = _hits(campaign)
    hourly_counts = _series(hits.filter(occurred_at__lt=switch), "hour", zone)
    daily_counts = _series(hits.filter(occurred_at__gte=switch), "day", zone)

    hourly = []
    first_hour = _wall(start, zone).replace(minute=0, second=0, microsecond=0)
    if hourly_counts:
        first_hour = min(first_hour, min(hourly_counts))  # hits stamped before the start
    moment = first_hour.replace(tzinfo=zone)
    hourly_end = min(switch, max(now, start))
    while moment < hourly_end:
        key = _wall(moment, zone)
        opens, clicks = hourly_counts.get(key, (0, 0))
        hourly.append(Bucket(start=moment, opens=opens, clicks=clicks))
        moment = (moment.astimezone(ZoneInfo("UTC")) + timedelta(hours=1)).astimezone(zone)

    daily = []
    if now > switch or daily_counts:
        first_day = _wall(switch, zone).date()
        last_day = _wall(min(now, switch + DAILY_MINIMUM), zone).date()
        if daily_counts:
            last_day = max(last_day, max(daily_counts).date())
        last_day = min(last_day, first_day + timedelta(days=DAILY_LIMIT - 1))
        day = first_day
        while day <= last_day:
            key = datetime.combine(day, time.min)
            opens, clicks = daily_counts.get(key, (0, 0))
            daily.append(Bucket(start=key.replace(tzinfo=zone), opens=opens, clicks=clicks))
            day += timedelta(days=1)
    return Timeline(started_at=start, hourly=hourly, daily=daily)


# --- The recipients ----------------------------------------------------------------------------

RECIPIENT_FILTERS: dict[str, Any] = {
    "opened": _("Opened"),
    "not_opened": _("Did not open"),
    "clicked": _("Clicked"),
    "not_clicked": _("Did not click"),
    "bounced": _("Bounced"),
    "unsubscribed": _("Unsubscribed"),
}


class UnknownFilter(ValueError):
    pass


def recipients(campaign: Campaign, filter_name: str = "") -> QuerySet[Delivery]:
    """The campaign's deliveries with ``opened`` and ``clicked`` (booleans), by id.

    ``filter_name`` (see ``RECIPIENT_FILTERS``; empty: everyone): ``opened`` and
    ``clicked`` by a person; ``not_opened`` and ``not_clicked`` among those
    delivered to (sent, not bounced); ``bounced``; ``unsubscribed`` through
    this campaign. One query per page; raises ``UnknownFilter``.
    """
    person = _hits(campaign).filter(HUMAN, delivery_id=OuterRef("pk"))
    rows = _deliveries(campaign).annotate(
        opened=Exists(person.filter(kind__in=[HitKind.OPEN, HitKind.CLICK])),
        clicked=Exists(person.filter(CLICK)),
    )
    delivered = Q(status=DeliveryStatus.SENT, bounce="")
    if not filter_name:
        pass
    elif filter_name == "opened":
        rows = rows.filter(opened=True)
    elif filter_name == "not_opened":
        rows = rows.filter(delivered, opened=False)
    elif filter_name == "clicked":
        rows = rows.filter(clicked=True)
    elif filter_name == "not_clicked":
        rows = rows.filter(delivered, clicked=False)
    elif filter_name == "bounced":
        rows = rows.exclude(bounce="")
    elif filter_name == "unsubscribed":
        rows = rows.filter(unsubscribed_at__isnull=False)
    else:
        raise UnknownFilter(filter_name)
    return rows.order_by("id")


# --- Comparing campaigns -----------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    numbers: Numbers


def _sort_value(row: CampaignRow, key: str) -> Any:
    if key == "name":
        return row.campaign.name.casefold()
    if key == "started_at":
        return row.campaign.started_at
    return getattr(row.numbers, key)


COMPARE_SORTS: dict[str, Any] = {
    "started_at": _("Started"),
    "name": _("Campaign"),
    "sent": _("Sent"),
    "delivered": _("Delivered"),
    "open_rate": _("Open rate"),
    "click_rate": _("Click-through rate"),
    "click_to_open_rate": _("Click-to-open rate"),
    "bounce_rate": _("Bounce rate"),
    "unsubscribe_rate": _("Unsubscribe rate"),
    "complaint_rate": _("Complaint rate"),
}


def reported_campaigns(workspace: Workspace | int) -> QuerySet[Campaign]:
    """The campaigns that went out (or are going out): the ones a report is about."""
    return Campaign.objects.for_workspace(workspace).filter(
        status__in=REPORTED_STATUSES, started_at__isnull=False
    )


def compare_campaigns(
    workspace: Workspace | int, *, sort: str = "started_at", descending: bool = True
) -> list[CampaignRow]:
    """One row per reported campaign with its numbers, sorted (three queries).

    ``sort`` is a key of ``COMPARE_SORTS``; rows without a value (a rate of
    nothing) come last in either direction. Raises ``UnknownFilter`` for an
    unknown key.
    """
    if sort not in COMPARE_SORTS:
        raise UnknownFilter(sort)
    found = list(reported_campaigns(workspace).defer("body", "blocks", "text", "audience"))
    ids = [campaign.pk for campaign in found]
    by_delivery = {
        row.pop("campaign_id"): row
        for row in Delivery.objects.for_workspace(workspace)
        .filter(campaign_id__in=ids)
        .values("campaign_id")
        .order_by("campaign_id")
        .annotate(**_delivery_counts())
    }
    by_hits = {
        row.pop("campaign_id"): row
        for row in Hit.objects.for_workspace(workspace)
        .filter(campaign_id__in=ids)
        .values("campaign_id")
        .order_by("campaign_id")
        .annotate(**_hit_counts())
    }
    rows = [
        CampaignRow(
            campaign=campaign,
            numbers=Numbers(**by_delivery.get(campaign.pk, {}), **by_hits.get(campaign.pk, {})),
        )
        for campaign in found
    ]
    present = [row for row in rows if _sort_value(row, sort) is not None]
    absent = [row for row in rows if _sort_value(row, sort) is None]
    # The id breaks ties, so that pages stay stable.
    present.sort(key=lambda row: (_sort_value(row, sort), row.campaign.pk), reverse=descending)
    absent.sort(key=lambda row: row.campaign.pk, reverse=descending)
    return present + absent
