"""The reports a person can open, put on a dashboard, export or ask the API for.

Each ``ReportSpec`` names one report function and says how its rows show:
their columns (and how each is formatted), what a row is called on a chart,
which columns a chart or a number may show (``measures``), how a stacked
chart splits a row into series, and the list of records behind a row (the
link a bar or a table cell opens, made of the record lists' own query
parameters). The permission is the one that guards the records it is read from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from patron.core.models import Workspace
from patron.core.roles import (
    CAMPAIGNS_VIEW,
    CONTACTS_VIEW,
    DEALS_VIEW,
    MARKETING_EDIT,
    TICKETS_VIEW,
)
from patron.insights import (
    attribution,
    reports_funnel,
    reports_marketing,
    reports_sales,
    reports_support,
)
from patron.insights.periods import Filters, Period

AREAS: dict[str, Any] = {
    "sales": _("Sales"),
    "support": _("Support"),
    "marketing": _("Marketing"),
    "funnel": _("Funnel"),
    "attribution": _("Attribution"),
}

# How a widget shows its report.
DISPLAYS: dict[str, Any] = {
    "number": _("Number"),
    "bar": _("Bar chart"),
    "stacked_bar": _("Stacked bar chart"),
    "line": _("Line chart"),
    "funnel": _("Funnel"),
    "pie": _("Pie chart"),
    "table": _("Table"),
}
CHARTS = ("bar", "stacked_bar", "line", "funnel", "pie")


class UnknownReport(KeyError):
    pass


@dataclass(frozen=True)
class Column:
    key: str
    label: Any
    # text, count, money, percent, hours, days, date, month, year, moment
    kind: str = "text"


Link = Callable[[Any], str]


@dataclass(frozen=True)
class ReportSpec:
    key: str
    label: Any
    area: str
    permission: str
    run: Callable[[Workspace, Period, Filters], list[Any]]
    columns: tuple[Column, ...]
    category: Callable[[Any], str]
    measures: tuple[str, ...]
    displays: tuple[str, ...]
    default_display: str
    default_range: str = "last_30_days"
    # For stacked charts: the series a row belongs to (None: the measures are the series).
    series: Callable[[Any], str] | None = None
    link: Link | None = None
    filters: tuple[str, ...] = ("owner",)
    description: Any = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    @property
    def chartable(self) -> bool:
        return any(display in CHARTS for display in self.displays)


def _url(name: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse(name) + (f"?{query}" if query else "")


def _month(value: date | None) -> str:
    return date_format(value, "M Y") if value else str(_("No close date"))


def _year(value: date | None) -> str:
    return str(value.year) if value else str(_("No close date"))


# Columns used by several reports.
CURRENCY = Column("currency", _("Currency"))
DEALS = Column("deals", _("Deals"), "count")
AMOUNT = Column("amount", _("Amount"), "money")
WEIGHTED = Column("weighted_amount", _("Weighted amount"), "money")
ATTRIBUTION_COLUMNS = (
    CURRENCY,
    DEALS,
    Column("first_touch", _("First touch"), "money"),
    Column("last_touch", _("Last touch"), "money"),
    Column("linear", _("Linear"), "money"),
    Column("position_based", _("Position-based (40/20/40)"), "money"),
)
TICKET_COLUMNS = (
    Column("opened", _("Opened"), "count"),
    Column("solved", _("Solved"), "count"),
    Column("first_response_average_hours", _("First response, average"), "hours"),
    Column("first_response_median_hours", _("First response, median"), "hours"),
    Column("resolution_average_hours", _("Resolution, average"), "hours"),
    Column("resolution_median_hours", _("Resolution, median"), "hours"),
    Column("first_response_breaches", _("First responses late"), "count"),
    Column("resolution_breaches", _("Resolutions late"), "count"),
)
TICKET_MEASURES = (
    "opened",
    "solved",
    "first_response_breaches",
    "resolution_breaches",
    "first_response_median_hours",
    "resolution_median_hours",
)


def _ticket_link(by: str) -> Link:
    def link(row: reports_support.TicketRow) -> str:
        if by == "priority":
            return _url("crm:ticket_list", status="all", priority=row.key)
        if by == "agent":
            return _url("crm:ticket_list", status="all", assignee=row.key or "none")
        return _url("crm:ticket_list", status="all")

    return link


def _tickets(by: str) -> Callable[[Workspace, Period, Filters], list[Any]]:
    return lambda ws, period, filters: reports_support.ticket_report(ws, period, filters, by=by)


def _path(row: attribution.DealPath) -> str:
    if not row.touches:
        return attribution.NO_TOUCH
    return " → ".join(
        f"{touch.channel}{f' ({touch.campaign})' if touch.campaign else ''}"
        for touch in row.touches
    )


@dataclass(frozen=True)
class PathRow:
    deal_id: int
    deal: str
    amount: Decimal
    currency: str
    closed_at: datetime | None
    touches: int
    path: str


def _paths(ws: Workspace, period: Period, filters: Filters) -> list[PathRow]:
    return [
        PathRow(
            deal_id=p.deal_id,
            deal=p.deal,
            amount=p.amount,
            currency=p.currency,
            closed_at=p.closed_at,
            touches=len(p.touches),
            path=_path(p),
        )
        for p in attribution.paths(ws, period, filters)
    ]


SPECS: list[ReportSpec] = [
    ReportSpec(
        key="pipeline_by_stage",
        label=_("Pipeline by stage"),
        area="sales",
        permission=DEALS_VIEW,
        run=reports_sales.pipeline_by_stage,
        columns=(
            Column("pipeline", _("Pipeline")),
            Column("stage", _("Stage")),
            CURRENCY,
            DEALS,
            AMOUNT,
            WEIGHTED,
        ),
        category=lambda r: r.stage,
        measures=("weighted_amount", "amount", "deals"),
        displays=("bar", "funnel", "pie", "table", "number"),
        default_display="bar",
        default_range="all_time",
        link=lambda r: _url("crm:deal_list", stage=r.stage_id),
        filters=("owner", "pipeline", "outcome", "source"),
        description=_("Deals created in the period, by the stage they are in now."),
    ),
    ReportSpec(
        key="expected_revenue",
        label=_("Expected revenue by month"),
        area="sales",
        permission=DEALS_VIEW,
        run=reports_sales.expected_revenue,
        columns=(Column("period_start", _("Month"), "month"), CURRENCY, DEALS, AMOUNT, WEIGHTED),
        category=lambda r: _month(r.period_start),
        measures=("weighted_amount", "amount", "deals"),
        displays=("bar", "line", "table", "number"),
        default_display="bar",
        default_range="next_12_months",
        link=lambda r: _url("crm:deal_list", outcome="open", sort="close"),
        filters=("owner", "pipeline", "source"),
        description=_(
            "Open deals by expected close date: amount, and amount times the stage's "
            "win probability."
        ),
    ),
    ReportSpec(
        key="expected_revenue_yearly",
        label=_("Expected revenue by year"),
        area="sales",
        permission=DEALS_VIEW,
        run=lambda ws, period, filters: reports_sales.expected_revenue(
            ws, period, filters, by="year"
        ),
        columns=(Column("period_start", _("Year"), "year"), CURRENCY, DEALS, AMOUNT, WEIGHTED),
        category=lambda r: _year(r.period_start),
        measures=("weighted_amount", "amount", "deals"),
        displays=("bar", "table", "number"),
        default_display="bar",
        default_range="all_time",
        link=lambda r: _url("crm:deal_list", outcome="open", sort="close"),
        filters=("owner", "pipeline", "source"),
    ),
    ReportSpec(
        key="won_lost",
        label=_("Won and lost deals"),
        area="sales",
        permission=DEALS_VIEW,
        run=reports_sales.won_lost,
        columns=(
            Column("outcome", _("Outcome")),
            Column("reason", _("Reason lost")),
            CURRENCY,
            DEALS,
            AMOUNT,
        ),
        category=lambda r: f"{r.outcome.title()}{f': {r.reason}' if r.reason else ''}",
        measures=("amount", "deals"),
        displays=("bar", "pie", "table", "number"),
        default_display="bar",
        link=lambda r: _url("crm:deal_list", outcome=r.outcome),
        filters=("owner", "pipeline", "outcome", "source"),
        description=_("Deals closed in the period, with the reasons deals were lost."),
    ),
    ReportSpec(
        key="activities",
        label=_("Activities per salesperson"),
        area="sales",
        permission=DEALS_VIEW,
        run=reports_sales.activities_per_salesperson,
        columns=(
            Column("name", _("Person")),
            Column("calls", _("Calls"), "count"),
            Column("calls_connected", _("Calls connected"), "count"),
            Column("meetings", _("Meetings"), "count"),
            Column("meetings_completed", _("Meetings held"), "count"),
            Column("emails", _("Emails"), "count"),
            Column("tasks_done", _("Tasks done"), "count"),
            Column("deals_won", _("Deals won"), "count"),
            Column("deals_lost", _("Deals lost"), "count"),
        ),
        category=lambda r: r.name,
        measures=("calls", "meetings", "emails", "tasks_done", "deals_won", "deals_lost"),
        displays=("stacked_bar", "bar", "table", "number"),
        default_display="table",
        default_range="this_month",
        link=lambda r: _url("crm:deal_list", owner=r.user_id),
    ),
    ReportSpec(
        key="deal_velocity",
        label=_("Deal velocity"),
        area="sales",
        permission=DEALS_VIEW,
        run=reports_sales.deal_velocity,
        columns=(
            Column("pipeline", _("Pipeline")),
            Column("outcome", _("Outcome")),
            DEALS,
            Column("average_days", _("Days to close, average"), "days"),
            Column("median_days", _("Days to close, median"), "days"),
        ),
        category=lambda r: f"{r.pipeline} · {r.outcome}",
        measures=("median_days", "average_days", "deals"),
        displays=("bar", "table"),
        default_display="table",
        default_range="last_90_days",
        link=lambda r: _url("crm:deal_list", pipeline=r.pipeline_id, outcome=r.outcome),
        filters=("owner", "pipeline", "source"),
    ),
    ReportSpec(
        key="workload",
        label=_("Workload"),
        area="sales",
        permission=DEALS_VIEW,
        run=reports_sales.workload,
        columns=(
            Column("name", _("Person")),
            Column("open_tasks", _("Open tasks"), "count"),
            Column("overdue_tasks", _("Overdue tasks"), "count"),
            Column("open_tickets", _("Open tickets"), "count"),
            Column("open_deals", _("Open deals"), "count"),
        ),
        category=lambda r: r.name or str(_("Nobody")),
        measures=("open_tasks", "open_tickets", "open_deals", "overdue_tasks"),
        displays=("stacked_bar", "bar", "table", "number"),
        default_display="stacked_bar",
        default_range="all_time",
        link=lambda r: _url("crm:task_list", who=r.user_id or "none", due="open"),
        filters=("owner", "pipeline"),
        description=_("Open work per person now (the date range does not apply)."),
    ),
    ReportSpec(
        key="tickets_by_priority",
        label=_("Tickets by priority"),
        area="support",
        permission=TICKETS_VIEW,
        run=_tickets("priority"),
        columns=(Column("label", _("Priority")), *TICKET_COLUMNS),
        category=lambda r: r.label,
        measures=TICKET_MEASURES,
        displays=("bar", "stacked_bar", "pie", "table", "number"),
        default_display="table",
        link=_ticket_link("priority"),
        filters=("owner", "priority"),
        description=_(
            "Tickets opened and solved, first response and resolution times (in hours, as "
            "the SLA counts them) and SLA breaches."
        ),
    ),
    ReportSpec(
        key="tickets_by_agent",
        label=_("Tickets by agent"),
        area="support",
        permission=TICKETS_VIEW,
        run=_tickets("agent"),
        columns=(Column("label", _("Agent")), *TICKET_COLUMNS),
        category=lambda r: r.label,
        measures=TICKET_MEASURES,
        displays=("bar", "stacked_bar", "table", "number"),
        default_display="table",
        link=_ticket_link("agent"),
        filters=("owner", "priority"),
    ),
    ReportSpec(
        key="tickets_by_month",
        label=_("Tickets by month"),
        area="support",
        permission=TICKETS_VIEW,
        run=_tickets("month"),
        columns=(Column("label", _("Month")), *TICKET_COLUMNS),
        category=lambda r: r.label,
        measures=TICKET_MEASURES,
        displays=("line", "bar", "stacked_bar", "table", "number"),
        default_display="line",
        default_range="last_12_months",
        link=_ticket_link("month"),
        filters=("owner", "priority"),
    ),
    ReportSpec(
        key="campaigns",
        label=_("Campaigns compared"),
        area="marketing",
        permission=CAMPAIGNS_VIEW,
        run=reports_marketing.campaigns_compared,
        columns=(
            Column("name", _("Campaign")),
            Column("started_at", _("Started"), "moment"),
            Column("sent", _("Sent"), "count"),
            Column("delivered", _("Delivered"), "count"),
            Column("opened", _("Opened"), "count"),
            Column("clicked", _("Clicked"), "count"),
            Column("open_rate", _("Open rate"), "percent"),
            Column("click_rate", _("Click-through rate"), "percent"),
            Column("click_to_open_rate", _("Click-to-open rate"), "percent"),
            Column("bounce_rate", _("Bounce rate"), "percent"),
            Column("unsubscribe_rate", _("Unsubscribe rate"), "percent"),
        ),
        category=lambda r: r.name,
        measures=("open_rate", "click_rate", "sent", "delivered", "opened", "clicked"),
        displays=("bar", "table", "number"),
        default_display="table",
        default_range="last_90_days",
        link=lambda r: reverse("campaigns:report", args=[r.campaign_id]),
        filters=("campaign",),
        description=_("The campaigns that started in the period, with their report's numbers."),
    ),
    ReportSpec(
        key="form_conversion",
        label=_("Form conversion"),
        area="marketing",
        permission=MARKETING_EDIT,
        run=reports_marketing.form_conversion,
        columns=(
            Column("form", _("Form")),
            Column("submissions", _("Submissions"), "count"),
            Column("people", _("People"), "count"),
            Column("customers", _("Customers now"), "count"),
            Column("conversion_rate", _("Became customers"), "percent"),
        ),
        category=lambda r: r.form,
        measures=("submissions", "people", "customers", "conversion_rate"),
        displays=("bar", "table", "number"),
        default_display="table",
        link=lambda r: reverse("capture:form_submissions", args=[r.form_id]),
        filters=(),
        description=_(
            "Submissions in the period per form, and how many of the people are customers now."
        ),
    ),
    ReportSpec(
        key="list_growth",
        label=_("List growth and churn"),
        area="marketing",
        permission=CONTACTS_VIEW,
        run=reports_marketing.list_growth,
        columns=(
            Column("name", _("List")),
            Column("subscribed", _("Joined"), "count"),
            Column("unsubscribed", _("Left"), "count"),
            Column("net", _("Net change"), "count"),
            Column("subscribers", _("Subscribers now"), "count"),
            Column("churn_rate", _("Churn rate"), "percent"),
        ),
        category=lambda r: r.name,
        measures=("net", "subscribed", "unsubscribed", "subscribers", "churn_rate"),
        displays=("bar", "table", "number"),
        default_display="table",
        link=lambda r: reverse("audience:list_detail", args=[r.list_id]),
        filters=(),
    ),
    ReportSpec(
        key="engagement_by_hour",
        label=_("Email engagement by hour"),
        area="marketing",
        permission=CAMPAIGNS_VIEW,
        run=reports_marketing.email_engagement,
        columns=(
            Column("label", _("Hour")),
            Column("opens", _("Opens"), "count"),
            Column("clicks", _("Clicks"), "count"),
        ),
        category=lambda r: r.label,
        measures=("opens", "clicks"),
        displays=("bar", "line", "stacked_bar", "table"),
        default_display="bar",
        filters=("campaign",),
    ),
    ReportSpec(
        key="engagement_by_weekday",
        label=_("Email engagement by weekday"),
        area="marketing",
        permission=CAMPAIGNS_VIEW,
        run=lambda ws, period, filters: reports_marketing.email_engagement(
            ws, period, filters, by="weekday"
        ),
        columns=(
            Column("label", _("Day")),
            Column("opens", _("Opens"), "count"),
            Column("clicks", _("Clicks"), "count"),
        ),
        category=lambda r: r.label,
        measures=("opens", "clicks"),
        displays=("bar", "stacked_bar", "table"),
        default_display="bar",
        filters=("campaign",),
    ),
    ReportSpec(
        key="funnel",
        label=_("Lifecycle funnel"),
        area="funnel",
        permission=CONTACTS_VIEW,
        run=reports_funnel.funnel,
        columns=(
            Column("label", _("Stage")),
            Column("contacts_now", _("Contacts now"), "count"),
            Column("reached", _("Reached in the period"), "count"),
            Column("converted", _("Moved further"), "count"),
            Column("conversion_rate", _("Conversion rate"), "percent"),
            Column("median_days_to_next", _("Median days to the next stage"), "days"),
        ),
        category=lambda r: r.label,
        measures=("reached", "contacts_now", "converted", "conversion_rate"),
        displays=("funnel", "bar", "table"),
        default_display="funnel",
        default_range="last_12_months",
        link=lambda r: _url("crm:contact_list", stage=r.stage),
        filters=("source", "campaign", "owner"),
        description=_(
            "Contacts who moved into each lifecycle stage in the period, how many moved "
            "further down the funnel, and how long that took."
        ),
    ),
    ReportSpec(
        key="lifecycle_over_time",
        label=_("Lifecycle stages over time"),
        area="funnel",
        permission=CONTACTS_VIEW,
        run=reports_funnel.lifecycle_over_time,
        columns=(
            Column("month", _("Month"), "month"),
            Column("label", _("Stage")),
            Column("contacts", _("Contacts"), "count"),
        ),
        category=lambda r: date_format(r.month, "M Y"),
        series=lambda r: r.label,
        measures=("contacts",),
        displays=("stacked_bar", "table"),
        default_display="stacked_bar",
        default_range="last_12_months",
        link=lambda r: _url("crm:contact_list", stage=r.stage),
        filters=("source", "campaign", "owner"),
    ),
    ReportSpec(
        key="funnel_by_source",
        label=_("Funnel by source"),
        area="funnel",
        permission=CONTACTS_VIEW,
        run=reports_funnel.funnel_by_source,
        columns=(
            Column("source", _("Source")),
            Column("label", _("Stage")),
            Column("reached", _("Reached in the period"), "count"),
        ),
        category=lambda r: r.source or str(_("(no source)")),
        series=lambda r: r.label,
        measures=("reached",),
        displays=("stacked_bar", "table"),
        default_display="stacked_bar",
        default_range="last_12_months",
        link=lambda r: _url("crm:contact_list", stage=r.stage),
        filters=("campaign", "owner"),
    ),
    ReportSpec(
        key="attribution_channels",
        label=_("Revenue by channel"),
        area="attribution",
        permission=DEALS_VIEW,
        run=lambda ws, period, filters: attribution.credits(ws, period, filters, by="channel"),
        columns=(Column("key", _("Channel")), *ATTRIBUTION_COLUMNS),
        category=lambda r: r.key,
        measures=("linear", "position_based", "first_touch", "last_touch"),
        displays=("bar", "pie", "table"),
        default_display="bar",
        default_range="last_90_days",
        filters=("owner", "pipeline", "source"),
        description=_(
            "Revenue of the deals won in the period credited to the touches before the win: "
            "first touch, last touch, linear and position-based (40/20/40)."
        ),
    ),
    ReportSpec(
        key="attribution_campaigns",
        label=_("Revenue by campaign"),
        area="attribution",
        permission=DEALS_VIEW,
        run=lambda ws, period, filters: attribution.credits(ws, period, filters, by="campaign"),
        columns=(Column("key", _("Campaign")), *ATTRIBUTION_COLUMNS),
        category=lambda r: r.key or str(_("(no campaign)")),
        measures=("linear", "position_based", "first_touch", "last_touch"),
        displays=("bar", "pie", "table"),
        default_display="table",
        default_range="last_90_days",
        filters=("owner", "pipeline", "source"),
    ),
    ReportSpec(
        key="attribution_paths",
        label=_("Paths to won deals"),
        area="attribution",
        permission=DEALS_VIEW,
        run=_paths,
        columns=(
            Column("deal", _("Deal")),
            CURRENCY,
            AMOUNT,
            Column("closed_at", _("Won"), "moment"),
            Column("touches", _("Touches"), "count"),
            Column("path", _("Path")),
        ),
        category=lambda r: r.deal,
        measures=("amount", "touches"),
        displays=("table", "number"),
        default_display="table",
        default_range="last_90_days",
        link=lambda r: reverse("crm:deal_detail", args=[r.deal_id]),
        filters=("owner", "pipeline", "source"),
    ),
]
REPORTS: dict[str, ReportSpec] = {spec.key: spec for spec in SPECS}


def get_report(key: str) -> ReportSpec:
    try:
        return REPORTS[key]
    except KeyError:
        raise UnknownReport(key) from None


def available_reports(membership: Any) -> list[ReportSpec]:
    """The reports a member may read (their permission guards the records behind them)."""
    return [spec for spec in SPECS if membership.can(spec.permission)]
