"""API: campaign reports — the numbers, the click map and opens and clicks over time;
the recipients by what they did; and the workspace's campaigns compared.

Rates are fractions (``0.25`` is 25 %) or ``null`` when there is nothing to
divide by; how each number is counted is described in ``patron.mail.reports``
(people only: machine opens and clicks are counted apart). Time buckets are in
the workspace's time zone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core import signing
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from patron.api.errors import ApiError
from patron.api.pagination import MAX_LIMIT, paginate
from patron.core.http import ApiRequest
from patron.mail import ab_tests, campaigns, reports
from patron.mail.models import Campaign

router = Router(tags=["campaign reports"])

_COMPARE_SALT = "patron.api.compare-cursor"


class NumbersOut(Schema):
    recipients: int
    sent: int
    failed: int
    delivered: int
    bounced: int
    hard_bounced: int
    soft_bounced: int
    opened: int = Field(description="Unique people who opened or clicked")
    opens: int = Field(description="Opens by people")
    machine_opens: int
    not_opened: int
    clicked: int = Field(description="Unique people who clicked")
    clicks: int = Field(description="Clicks by people")
    machine_clicks: int
    unsubscribed: int
    complained: int
    open_rate: float | None
    click_rate: float | None = Field(description="Unique clickers / delivered")
    click_to_open_rate: float | None = Field(description="Unique clickers / unique openers")
    bounce_rate: float | None
    unsubscribe_rate: float | None
    complaint_rate: float | None


class LinkOut(Schema):
    index: int
    url: str
    clicked: int = Field(description="Unique people")
    clicks: int = Field(description="Clicks by people")
    machine_clicks: int
    share: float = Field(description="Of all the campaign's clicks by people")


class BucketOut(Schema):
    start: datetime
    opens: int
    clicks: int


class TimelineOut(Schema):
    started_at: datetime | None
    hourly: list[BucketOut] = Field(description="The first 48 hours after the start")
    daily: list[BucketOut] = Field(description="Days after the first 48 hours")


class CampaignRef(Schema):
    id: int
    name: str
    subject: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None


class VariantOut(Schema):
    variant: str = Field(description='The letter ("A" is the campaign itself); "rest" for the rest')
    subject: str
    preheader: str
    from_name: str
    recipients: int
    sent: int
    delivered: int
    opened: int = Field(description="Unique people who opened or clicked")
    clicked: int = Field(description="Unique people who clicked")
    open_rate: float | None
    click_rate: float | None
    revenue: Decimal = Field(
        description="Won deals of the group's recipients after their message, in the "
        "workspace's currency (counted when the test is decided by revenue, else 0)"
    )
    revenue_per_recipient: Decimal | None = Field(description="Revenue / delivered")


class AbTestOut(Schema):
    metric: str = Field(description="open_rate, click_rate or revenue")
    share: int = Field(description="Percent of the audience in the test")
    decide_at: datetime | None
    decided: bool
    winner: str | None = Field(description="The winner's letter, once chosen")
    leader: str = Field(description="The best variant now (the winner, once chosen)")
    confidence: float | None = Field(
        description="0 to 1, z-test of the leader against the others (the lowest); "
        "recorded when the winner was chosen, else as of now; below 0.95 not significant"
    )
    significant: bool
    waiting: int = Field(description="Recipients of the rest still waiting for the winner")
    variants: list[VariantOut]
    rest: VariantOut


class ReportOut(Schema):
    campaign: CampaignRef
    numbers: NumbersOut
    links: list[LinkOut]
    timeline: TimelineOut
    ab_test: AbTestOut | None = Field(description="The A/B test, when the campaign ran one")


class RecipientOut(Schema):
    id: int = Field(description="The delivery (one message to one recipient)")
    contact_id: int
    email: str
    status: str
    sent_at: datetime | None
    opened: bool
    clicked: bool
    bounce: str = Field(description='"hard", "soft" or ""')
    bounced_at: datetime | None
    unsubscribed_at: datetime | None
    complained_at: datetime | None


class RecipientPage(Schema):
    items: list[RecipientOut]
    next_cursor: str | None


class RecipientFilters(Schema):
    filter: str | None = Field(
        None, description="opened, not_opened, clicked, not_clicked, bounced or unsubscribed"
    )
    cursor: str | None = None
    limit: int = 50


class CompareRow(Schema):
    campaign: CampaignRef
    numbers: NumbersOut


class ComparePage(Schema):
    items: list[CompareRow]
    next_cursor: str | None


class CompareFilters(Schema):
    sort: str = Field("started_at", description=", ".join(reports.COMPARE_SORTS))
    order: str = Field("desc", description="asc or desc")
    cursor: str | None = None
    limit: int = 50


def _campaign(request: ApiRequest, campaign_id: int) -> Campaign:
    found: Campaign = get_object_or_404(campaigns.campaigns_for(request.workspace), pk=campaign_id)
    return found


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, {field: [message]})


# Registered before the campaigns' own routes, so that "compare" is not read as an id.
@router.get("/campaigns/compare", response=ComparePage)
def compare_campaigns(request: ApiRequest, filters: Query[CompareFilters]) -> dict[str, Any]:
    """Every campaign that went out, one row each with its numbers, sorted by ``sort``
    (campaigns without a value for it last)."""
    if filters.sort not in reports.COMPARE_SORTS:
        raise _invalid("sort", f"sort must be one of {', '.join(reports.COMPARE_SORTS)}.")
    if filters.order not in ("asc", "desc"):
        raise _invalid("order", "order must be asc or desc.")
    if not 1 <= filters.limit <= MAX_LIMIT:
        raise _invalid("limit", f"limit must be between 1 and {MAX_LIMIT}.")
    start = 0
    if filters.cursor:
        try:
            start = int(signing.loads(filters.cursor, salt=_COMPARE_SALT))
        except (signing.BadSignature, ValueError, TypeError) as exc:
            raise _invalid("cursor", "The cursor is not valid.") from exc
    rows = reports.compare_campaigns(
        request.workspace, sort=filters.sort, descending=filters.order == "desc"
    )
    end = start + filters.limit
    page = rows[start:end]
    return {
        "items": [{"campaign": row.campaign, "numbers": row.numbers.as_dict()} for row in page],
        "next_cursor": signing.dumps(end, salt=_COMPARE_SALT) if end < len(rows) else None,
    }


@router.get("/campaigns/{campaign_id}/report", response=ReportOut)
def campaign_report(request: ApiRequest, campaign_id: int) -> dict[str, Any]:
    """The numbers, the clicks per link (most clicked first), opens and clicks over time,
    and each A/B test variant's numbers with the winner and its confidence."""
    campaign = _campaign(request, campaign_id)
    timeline = reports.timeline(campaign, zone=campaigns.workspace_zone(request.workspace))
    return {
        "campaign": campaign,
        "numbers": reports.campaign_numbers(campaign).as_dict(),
        "links": reports.click_map(campaign),
        "timeline": timeline,
        "ab_test": _ab_test(campaign),
    }


def _variant(result: ab_tests.VariantResult, name: str) -> dict[str, Any]:
    return {
        "variant": name,
        **{
            field: getattr(result, field)
            for field in (
                "subject", "preheader", "from_name", "recipients", "sent", "delivered",
                "opened", "clicked", "open_rate", "click_rate", "revenue",
                "revenue_per_recipient",
            )
        },
    }  # fmt: skip


def _ab_test(campaign: Campaign) -> dict[str, Any] | None:
    state = ab_tests.state(campaign)
    if state is None:
        return None
    return {
        "metric": state.metric,
        "share": state.share,
        "decide_at": state.decide_at,
        "decided": state.decided,
        "winner": state.winner_letter or None,
        "leader": state.leader_letter,
        "confidence": state.confidence,
        "significant": state.significant,
        "waiting": state.waiting,
        "variants": [_variant(result, result.letter) for result in state.variants],
        "rest": _variant(state.rest, "rest"),
    }


@router.get("/campaigns/{campaign_id}/recipients", response=RecipientPage)
def campaign_recipients(
    request: ApiRequest, campaign_id: int, filters: Query[RecipientFilters]
) -> dict[str, Any]:
    """The campaign's recipients (newest delivery first) with what each did;
    ``?filter=`` narrows them."""
    campaign = _campaign(request, campaign_id)
    chosen = filters.filter or ""
    if chosen and chosen not in reports.RECIPIENT_FILTERS:
        raise _invalid("filter", f"filter must be one of {', '.join(reports.RECIPIENT_FILTERS)}.")
    return paginate(
        reports.recipients(campaign, chosen), cursor=filters.cursor, limit=filters.limit
    )
