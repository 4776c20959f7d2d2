"""The campaign report pages: the numbers with opens and clicks over time and the
click map, the recipients by what they did (and a filter turned into a segment),
and the comparison of a workspace's campaigns.

The numbers come from ``patron.mail.reports``; these views only shape them for
the page. The charts are drawn here as SVG geometry (bars as rectangles) that
the template writes inline, so the page needs no script and no chart library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from math import ceil

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from patron.audience import segment_services, segments
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.paging import SeekPage
from patron.core.roles import CAMPAIGNS_VIEW, MARKETING_EDIT
from patron.mail import ab_tests, campaigns, recipient_segments, reports
from patron.mail.models import Campaign

RECIPIENTS_PER_PAGE = 100
CAMPAIGNS_PER_PAGE = 50

# The chart's drawing area, in SVG user units (it scales to the page's width).
CHART_WIDTH = 960
CHART_HEIGHT = 220
CHART_LEFT = 44
CHART_RIGHT = 8
CHART_TOP = 12
CHART_BOTTOM = 28
CHART_TICKS = 8


def _campaign(request: WorkspaceRequest, campaign_id: int) -> Campaign:
    found: Campaign = get_object_or_404(campaigns.campaigns_for(request.workspace), pk=campaign_id)
    return found


# --- The chart -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Bars of opens and clicks per bucket, ready for an inline ``<svg>``."""

    width: int
    height: int
    left: int
    baseline: float
    top: int
    peak: int
    open_bars: list[Bar]
    click_bars: list[Bar]
    ticks: list[Tick]
    rows: list[tuple[str, int, int]]  # the same numbers as a table, for screen readers


def _nice_peak(value: int) -> int:
    """The y axis' top: the largest count rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def build_chart(
    buckets: list[reports.Bucket],
    label: Callable[[datetime], str],
    every: int,
    tick_label: Callable[[datetime, datetime | None], str] | None = None,
) -> Chart:
    """Geometry of a bar chart: two bars (opens, clicks) per bucket, a tick every ``every``.

    ``label`` names a bucket (tooltips, the table); ``tick_label`` the axis' ticks,
    given the previous tick's moment (default: ``label``).
    """
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    baseline = float(CHART_HEIGHT - CHART_BOTTOM)
    peak = _nice_peak(max([max(b.opens, b.clicks) for b in buckets] or [0]))
    slot = plot_width / max(len(buckets), 1)
    bar_width = max(slot * 0.38, 0.5)
    open_bars: list[Bar] = []
    click_bars: list[Bar] = []
    ticks: list[Tick] = []
    rows: list[tuple[str, int, int]] = []
    previous: datetime | None = None
    for position, bucket in enumerate(buckets):
        x = CHART_LEFT + position * slot + slot * 0.1
        text = label(bucket.start)
        for count, shift, bars, noun in (
            (bucket.opens, 0.0, open_bars, _("opens")),
            (bucket.clicks, bar_width, click_bars, _("clicks")),
        ):
            height = plot_height * count / peak
            bars.append(
                Bar(
                    x=round(x + shift, 2),
                    y=round(baseline - height, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    title=f"{text}: {count} {noun}",
                )
            )
        # A tick's label reads to its right: none so near the edge that it would be cut.
        if position % every == 0 and CHART_LEFT + position * slot < CHART_WIDTH - 90:
            tick = tick_label(bucket.start, previous) if tick_label else text
            ticks.append(Tick(x=round(CHART_LEFT + position * slot, 2), label=tick))
            previous = bucket.start
        rows.append((text, bucket.opens, bucket.clicks))
    return Chart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        left=CHART_LEFT,
        baseline=baseline,
        top=CHART_TOP,
        peak=peak,
        open_bars=open_bars,
        click_bars=click_bars,
        ticks=ticks,
        rows=rows,
    )


def _hour_label(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "M j, H:i")


def _hour_tick(moment: datetime, previous: datetime | None) -> str:
    """ "15:00", with the day when it is the first tick of a day ("Mar 3 03:00")."""
    local = timezone.localtime(moment)
    if previous is None or timezone.localtime(previous).date() != local.date():
        return date_format(local, "M j H:i")
    return date_format(local, "H:i")


def _day_label(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "M j")


def _charts(timeline: reports.Timeline) -> dict[str, Chart | None]:
    hourly = build_chart(timeline.hourly, _hour_label, 6, _hour_tick) if timeline.hourly else None
    daily = None
    if timeline.daily:
        daily = build_chart(timeline.daily, _day_label, max(1, ceil(len(timeline.daily) / 10)))
    return {"hourly_chart": hourly, "daily_chart": daily}


# --- Pages -----------------------------------------------------------------------------------


@workspace_view(CAMPAIGNS_VIEW)
def campaign_report(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """The numbers as cards, opens and clicks over time, and the click map."""
    campaign = _campaign(request, campaign_id)
    timeline = reports.timeline(campaign, zone=timezone.get_current_timezone())
    return render(
        request,
        "mail/report.html",
        {
            "campaign": campaign,
            "numbers": reports.campaign_numbers(campaign),
            "links": reports.click_map(campaign),
            "timeline": timeline,
            "ab": ab_tests.state(campaign),
            "tab": "overview",
            **_charts(timeline),
        },
    )


@workspace_view(CAMPAIGNS_VIEW)
def report_recipients(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """Who opened, clicked, bounced or unsubscribed, one filter at a time."""
    campaign = _campaign(request, campaign_id)
    chosen = request.GET.get("filter", "")
    unknown = ""
    if chosen and chosen not in reports.RECIPIENT_FILTERS:
        unknown, chosen = chosen, ""
    rows = reports.recipients(campaign, chosen)
    page = SeekPage(rows, request.GET.get("page"), RECIPIENTS_PER_PAGE)
    return render(
        request,
        "mail/report_recipients.html",
        {
            "campaign": campaign,
            "page_obj": page,
            "filter": chosen,
            "filter_label": reports.RECIPIENT_FILTERS.get(chosen, ""),
            "filters": list(reports.RECIPIENT_FILTERS.items()),
            "unknown_filter": unknown,
            "query_string": urlencode({"filter": chosen}) if chosen else "",
            "can_make_segment": request.membership.can(MARKETING_EDIT),
            "tab": "recipients",
        },
        status=400 if unknown else 200,
    )


@workspace_view(CAMPAIGNS_VIEW)
@require_POST
def report_segment(request: WorkspaceRequest, campaign_id: int) -> HttpResponse:
    """Turn the recipient filter into a segment, then open it."""
    if not request.membership.can(MARKETING_EDIT):
        raise PermissionDenied
    campaign = _campaign(request, campaign_id)
    chosen = request.POST.get("filter", "")
    try:
        segment = recipient_segments.create_recipient_segment(
            campaign=campaign, filter_name=chosen, actor=request.user
        )
    except reports.UnknownFilter:
        messages.error(request, _("Choose which recipients the segment is made of."))
        return redirect("campaigns:report_recipients", campaign_id=campaign.pk)
    except (segments.SegmentInvalid, segment_services.SegmentNameTaken) as exc:
        messages.error(request, str(exc))
        return redirect(_recipients_url(campaign, chosen))
    messages.success(
        request,
        _("Segment “%(name)s” created: it keeps following what these recipients do.")
        % {"name": segment.name},
    )
    return redirect("audience:segment_detail", segment_id=segment.pk)


def _recipients_url(campaign: Campaign, chosen: str) -> str:
    url = reverse("campaigns:report_recipients", args=[campaign.pk])
    return f"{url}?{urlencode({'filter': chosen})}" if chosen else url


# The comparison's columns, in order: (sort key, is a rate).
COMPARE_COLUMNS = [
    ("name", False),
    ("started_at", False),
    ("sent", False),
    ("delivered", False),
    ("open_rate", True),
    ("click_rate", True),
    ("click_to_open_rate", True),
    ("bounce_rate", True),
    ("unsubscribe_rate", True),
    ("complaint_rate", True),
]


@workspace_view(CAMPAIGNS_VIEW)
def compare_campaigns(request: WorkspaceRequest) -> HttpResponse:
    """The workspace's sent campaigns side by side, sorted by any column."""
    sort = request.GET.get("sort", "started_at")
    order = request.GET.get("order", "desc")
    if sort not in reports.COMPARE_SORTS:
        sort = "started_at"
    if order not in ("asc", "desc"):
        order = "desc"
    rows = reports.compare_campaigns(request.workspace, sort=sort, descending=order == "desc")
    page = Paginator(rows, CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    columns = []
    for key, is_rate in COMPARE_COLUMNS:
        # A click on the sorted column turns it around; another column starts
        # with the largest (a name with A).
        if key == sort:
            next_order = "asc" if order == "desc" else "desc"
        else:
            next_order = "asc" if key == "name" else "desc"
        columns.append(
            {
                "key": key,
                "label": reports.COMPARE_SORTS[key],
                "rate": is_rate,
                "sorted": key == sort,
                "order": order if key == sort else "",
                "url": "?" + urlencode({"sort": key, "order": next_order}),
            }
        )
    return render(
        request,
        "mail/report_compare.html",
        {
            "page_obj": page,
            "columns": columns,
            "sort": sort,
            "order": order,
            "query_string": urlencode({"sort": sort, "order": order}),
        },
    )
