"""Marketing reports: campaigns compared, form conversion, list growth and churn,
and when people engage with email (hour of the day, day of the week).

Campaign figures are the campaign report's own (``patron.mail.reports``), so a
number here is the number on the campaign's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay

from patron.activity.models import Event
from patron.audience.models import ConsentRecord, MailingList, Subscription, SubscriptionStatus
from patron.capture.models import Form, FormSubmission
from patron.core.models import Workspace
from patron.crm.models import Contact, LifecycleStage
from patron.insights.periods import Filters, Period
from patron.mail import reports as campaign_reports

# --- Campaigns compared ------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: int
    name: str
    started_at: datetime | None
    sent: int
    delivered: int
    opened: int
    clicked: int
    open_rate: float | None
    click_rate: float | None
    click_to_open_rate: float | None
    bounce_rate: float | None
    unsubscribe_rate: float | None


def campaigns_compared(workspace: Workspace, period: Period, filters: Filters) -> list[CampaignRow]:
    """The campaigns that started in the period, newest first, with the campaign
    report's numbers (``patron.mail.reports.compare_campaigns``: three queries)."""
    rows = []
    for row in campaign_reports.compare_campaigns(workspace, sort="started_at", descending=True):
        started = row.campaign.started_at
        if started is None:
            continue
        if period.since is not None and started < period.since:
            continue
        if period.until is not None and started >= period.until:
            continue
        if filters.campaign_id is not None and row.campaign.pk != filters.campaign_id:
            continue
        numbers = row.numbers
        rows.append(
            CampaignRow(
                campaign_id=row.campaign.pk,
                name=row.campaign.name,
                started_at=started,
                sent=numbers.sent,
                delivered=numbers.delivered,
                opened=numbers.opened,
                clicked=numbers.clicked,
                open_rate=numbers.open_rate,
                click_rate=numbers.click_rate,
                click_to_open_rate=numbers.click_to_open_rate,
                bounce_rate=numbers.bounce_rate,
                unsubscribe_rate=numbers.unsubscribe_rate,
            )
        )
    return rows


# --- Form conversion ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FormRow:
    form_id: int
    form: str
    submissions: int
    people: int
    customers: int
    conversion_rate: float | None  # customers / people


def form_conversion(workspace: Workspace, period: Period, filters: Filters) -> list[FormRow]:
    """Per form: submissions in the period, the distinct people who sent them, and how
    many of those people are customers now (two queries; forms without submissions
    are rows of zeros)."""
    customers = Contact.objects.for_workspace(workspace).filter(
        lifecycle_stage=LifecycleStage.CUSTOMER
    )
    counted = {
        row.pop("form_id"): row
        for row in FormSubmission.objects.for_workspace(workspace)
        .filter(**period.moment_filter("submitted_at"))
        .values("form_id")
        .order_by()
        .annotate(
            submissions=Count("id"),
            people=Count("contact_id", distinct=True),
            customers=Count(
                "contact_id", distinct=True, filter=Q(contact_id__in=customers.values("id"))
            ),
        )
    }
    rows = []
    for form_id, name in Form.objects.for_workspace(workspace).values_list("id", "name"):
        found = counted.get(form_id, {})
        people = found.get("people", 0)
        converted = found.get("customers", 0)
        rows.append(
            FormRow(
                form_id=form_id,
                form=name,
                submissions=found.get("submissions", 0),
                people=people,
                customers=converted,
                conversion_rate=round(converted / people, 4) if people else None,
            )
        )
    rows.sort(key=lambda r: (-r.submissions, r.form.casefold()))
    return rows


# --- List growth and churn ---------------------------------------------------------------------


@dataclass(frozen=True)
class ListRow:
    list_id: int
    name: str
    subscribed: int  # joined in the period (confirmed subscriptions)
    unsubscribed: int  # left in the period (unsubscribed or cleaned)
    net: int
    subscribers: int  # subscribed now
    churn_rate: float | None  # left / (subscribers at the start + joined)


def list_growth(workspace: Workspace, period: Period, filters: Filters) -> list[ListRow]:
    """Per list: subscriptions and departures in the period from the consent log,
    the subscribers now, and the churn rate (two queries).

    The subscribers at the start are the ones now, less the period's net change
    (and less nothing else: changes after the period's end are counted too when
    the period lies in the past, which a log read from "now" cannot undo cheaply).
    """
    changes = {
        row.pop("mailing_list_id"): row
        for row in ConsentRecord.objects.for_workspace(workspace)
        .filter(mailing_list__isnull=False, **period.moment_filter("occurred_at"))
        .values("mailing_list_id")
        .order_by()
        .annotate(
            joined=Count("id", filter=Q(status=SubscriptionStatus.SUBSCRIBED)),
            left=Count(
                "id",
                filter=Q(status__in=[SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.CLEANED]),
            ),
        )
    }
    now = {
        row["mailing_list_id"]: row["subscribers"]
        for row in Subscription.objects.for_workspace(workspace)
        .filter(status=SubscriptionStatus.SUBSCRIBED)
        .values("mailing_list_id")
        .order_by()
        .annotate(subscribers=Count("id"))
    }
    rows = []
    for list_id, name in MailingList.objects.for_workspace(workspace).values_list("id", "name"):
        joined = changes.get(list_id, {}).get("joined", 0)
        left = changes.get(list_id, {}).get("left", 0)
        subscribers = now.get(list_id, 0)
        at_start = max(subscribers - (joined - left), 0)
        base = at_start + joined
        rows.append(
            ListRow(
                list_id=list_id,
                name=name,
                subscribed=joined,
                unsubscribed=left,
                net=joined - left,
                subscribers=subscribers,
                churn_rate=round(left / base, 4) if base else None,
            )
        )
    rows.sort(key=lambda r: r.name.casefold())
    return rows


# --- Engagement by hour and weekday ------------------------------------------------------------

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class EngagementRow:
    key: int  # the hour (0-23) or the ISO weekday (1 = Monday)
    label: str
    opens: int
    clicks: int


def email_engagement(
    workspace: Workspace, period: Period, filters: Filters, *, by: str = "hour"
) -> list[EngagementRow]:
    """Email opens and clicks (``email.opened``/``email.clicked`` events) in the period
    by hour of the day or day of the week, in the workspace's time zone (one query).
    Every hour (or weekday) is a row, with zeros when nothing happened."""
    extract = (
        ExtractIsoWeekDay("occurred_at", tzinfo=period.zone)
        if by == "weekday"
        else ExtractHour("occurred_at", tzinfo=period.zone)
    )
    events = Event.objects.for_workspace(workspace).filter(
        kind__in=["email.opened", "email.clicked"], **period.moment_filter("occurred_at")
    )
    if filters.campaign_id is not None:
        events = events.filter(properties__campaign=filters.campaign_id)
    counted = {
        row["bucket"]: row
        for row in events.annotate(bucket=extract)
        .values("bucket")
        .order_by()
        .annotate(
            opens=Count("id", filter=Q(kind="email.opened")),
            clicks=Count("id", filter=Q(kind="email.clicked")),
        )
    }
    keys = range(1, 8) if by == "weekday" else range(24)
    return [
        EngagementRow(
            key=key,
            label=WEEKDAYS[key - 1] if by == "weekday" else f"{key:02d}:00",
            opens=counted.get(key, {}).get("opens", 0),
            clicks=counted.get(key, {}).get("clicks", 0),
        )
        for key in keys
    ]
