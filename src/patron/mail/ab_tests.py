"""A/B tests of campaigns: variants, the test group, the winner and its confidence.

A campaign with ``ab_test`` on is sent in two phases:

1. **The test.** Variant A is the campaign's own subject, preheader, sender
   name, content and send time; ``ab_variants`` holds B, C and D (each value
   empty means "as A"; a variant's content is a saved marketing template's, its
   ``delay_hours`` hold its messages back for a send-time test). When
   the send starts (``split``), ``ab_share`` percent of the recipient snapshot
   is picked at random in SQL (``ROW_NUMBER() OVER (ORDER BY random())``) and
   given the variants in turn, so the groups differ by one recipient at most.
   Every other row is held back (``not_before = HELD``): the workers send the
   test rows and leave the rest waiting.
2. **The winner.** ``ab_wait_hours`` after the start (``ab_decide_at``) the
   scheduler (``decide_due``) counts each variant's unique opens or clicks by
   people per delivered message (as the report counts them), or its revenue per
   delivered message (below), picks the best
   (a tie goes to the earlier letter, A first), records it with the confidence
   of the difference, and releases the held rows, which are then sent with
   the winner's subject, preheader, sender name and content. A paused campaign is
   decided once it is resumed; a cancelled one never (its held rows were
   cancelled with the rest).

**Revenue** is that of deals won by the test's recipients: a won deal in the
workspace's currency, closed after the recipient's message was sent and before
the moment of counting, counts for every recipient of this campaign among its
contacts, its amount shared equally between them (to the cent). The groups were
drawn at random, so the difference in revenue per recipient is the variant's
doing, whether or not anyone clicked; deals in other currencies are left out, as
attribution leaves them out of its sums. Revenue needs days rather than hours,
hence a wait of up to 14 days.

The confidence is that of a two-sided test between the winner and each other
variant (the lowest of them), ``erf(|z| / sqrt 2)``, i.e. one minus the p-value:
for the rates a two-proportion z-test, for revenue Welch's test of two means
with the normal approximation (the groups are hundreds of people). Below 95 %
the difference is reported as not significant; the winner is still sent, since
the rest of the audience must get something.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.core.services import record_audit
from patron.crm.models import Deal, StageOutcome
from patron.mail.models import (
    AbMetric,
    Campaign,
    CampaignStatus,
    ChunkState,
    Delivery,
    DeliveryStatus,
    EmailTemplate,
    SendChunk,
    TemplateKind,
)

# Rows of the rest of the audience wait until this "time": the release sets it back to none.
HELD = datetime(2999, 1, 1, tzinfo=UTC)
MAX_VARIANTS = 4  # A to D
SHARE_RANGE = (10, 50)  # percent of the audience in the test, all variants together
WAIT_RANGE = (1, 336)  # hours from the start until the winner is chosen (14 days)
SIGNIFICANT = 0.95
TEXT_FIELDS = ("subject", "preheader", "from_name")
# "template": a saved marketing email template whose content (body, blocks, plain
# text) the variant sends instead of the campaign's own; None: the campaign's content.
# "delay_hours": the variant's test messages go this many hours after the start
# (a send-time test); the rest then goes at the winner's time of day.
VARIANT_FIELDS = (*TEXT_FIELDS, "template", "delay_hours")
DELAY_RANGE = (0, 72)
LIMITS = {"subject": 998, "preheader": 300, "from_name": 100}


def letter(index: int) -> str:
    return chr(ord("A") + index)


def is_on(campaign: Campaign) -> bool:
    """Whether the campaign's send is an A/B test (on, and with a variant besides A)."""
    return bool(campaign.ab_test and campaign.ab_variants)


def variant_count(campaign: Campaign) -> int:
    return 1 + len(campaign.ab_variants or [])


# --- Cleaning --------------------------------------------------------------------------------


class AbInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def clean_variants(given: Any) -> list[dict[str, str]]:
    """The variants after A as stored: a list of 1 to 3 {"subject", "preheader", "from_name",
    "template"}.

    Values are trimmed; empty means "as variant A". Raises ``AbInvalid`` naming
    ``ab_variants``.
    """
    if given in (None, ""):
        return []
    if not isinstance(given, list):
        raise AbInvalid({"ab_variants": _("Give the variants as a list.")})
    if len(given) > MAX_VARIANTS - 1:
        raise AbInvalid({"ab_variants": _("Test at most four variants (A to D).")})
    cleaned: list[dict[str, str]] = []
    for index, item in enumerate(given, start=1):
        if not isinstance(item, dict):
            raise AbInvalid({"ab_variants": _("Give each variant as an object.")})
        unknown = sorted(set(item) - set(VARIANT_FIELDS))
        if unknown:
            raise AbInvalid(
                {
                    "ab_variants": _("Variant %(letter)s: %(names)s cannot be set.")
                    % {"letter": letter(index), "names": ", ".join(unknown)}
                }
            )
        variant: dict[str, Any] = {}
        template = _template_id(item.get("template"), index)
        delay = _delay_hours(item.get("delay_hours"), index)
        for name in TEXT_FIELDS:
            value = item.get(name) or ""
            if not isinstance(value, str):
                raise AbInvalid(
                    {
                        "ab_variants": _("Variant %(letter)s: %(name)s must be text.")
                        % {"letter": letter(index), "name": name}
                    }
                )
            value = " ".join(value.split())
            if len(value) > LIMITS[name]:
                raise AbInvalid(
                    {
                        "ab_variants": _(
                            "Variant %(letter)s: keep %(name)s under %(limit)s characters."
                        )
                        % {"letter": letter(index), "name": name, "limit": LIMITS[name]}
                    }
                )
            variant[name] = value
        if template is not None:
            variant["template"] = template
        if delay:
            variant["delay_hours"] = delay
        cleaned.append(variant)
    return cleaned


def _template_id(value: Any, index: int) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise AbInvalid(
            {
                "ab_variants": _("Variant %(letter)s: choose one of the saved templates.")
                % {"letter": letter(index)}
            }
        )
    return value


def _delay_hours(value: Any, index: int) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    low, high = DELAY_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AbInvalid(
            {
                "ab_variants": _("Variant %(letter)s: send it 0 to 72 hours after the start.")
                % {"letter": letter(index)}
            }
        )
    return value


def clean_settings(values: dict[str, Any]) -> dict[str, Any]:
    """``ab_test``, ``ab_variants``, ``ab_share``, ``ab_metric``, ``ab_wait_hours`` checked."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if "ab_test" in values:
        cleaned["ab_test"] = bool(values["ab_test"])
    if "ab_variants" in values:
        try:
            cleaned["ab_variants"] = clean_variants(values["ab_variants"])
        except AbInvalid as error:
            errors.update(error.errors)
    for name, (low, high), message in (
        ("ab_share", SHARE_RANGE, _("Test on 10 to 50 percent of the audience.")),
        (
            "ab_wait_hours",
            WAIT_RANGE,
            _("Wait 1 to 336 hours (14 days) before choosing the winner."),
        ),
    ):
        if name in values:
            value = values[name]
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors[name] = message
            else:
                cleaned[name] = value
    if "ab_metric" in values:
        if values["ab_metric"] not in AbMetric.values:
            errors["ab_metric"] = _(
                "Choose the open rate, the click-through rate or the revenue per recipient."
            )
        else:
            cleaned["ab_metric"] = values["ab_metric"]
    if errors:
        raise AbInvalid(errors)
    return cleaned


# --- Variants --------------------------------------------------------------------------------


def variant_values(campaign: Campaign, index: int) -> dict[str, Any]:
    """What variant ``index`` (0 is A) sends: its subject, preheader, sender name and
    content (``template``: a saved template's id, None for the campaign's own)."""
    sender = campaign.sender
    base: dict[str, Any] = {
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "from_name": sender.from_name if sender is not None else "",
        "template": None,
        "delay_hours": 0,
    }
    if index <= 0:
        return base
    variants = campaign.ab_variants or []
    if index > len(variants):
        return base
    own = variants[index - 1]
    return {name: own.get(name) or base[name] for name in VARIANT_FIELDS}


def variant_campaign(campaign: Campaign, index: int) -> Campaign:
    """A copy of ``campaign`` (not saved) that carries variant ``index``'s subject,
    preheader and content (a saved template's, when the variant names one)."""
    if index <= 0:
        return campaign
    values = variant_values(campaign, index)
    shown = copy.copy(campaign)
    shown.subject = values["subject"]
    shown.preheader = values["preheader"]
    if values["template"]:
        template = (
            EmailTemplate.objects.for_workspace(campaign.workspace_id)
            .filter(pk=values["template"], kind=TemplateKind.MARKETING)
            .values("format", "body", "blocks", "text")
            .first()
        )
        if template is None:
            raise AbInvalid(
                {
                    "ab_variants": _("Variant %(letter)s: its template no longer exists.")
                    % {"letter": letter(index)}
                }
            )
        for name, value in template.items():
            setattr(shown, name, value)
    return shown


def same_as_a(campaign: Campaign) -> list[int]:
    """The variants (indexes) that would send exactly what A sends."""
    first = variant_values(campaign, 0)
    return [
        index
        for index in range(1, variant_count(campaign))
        if variant_values(campaign, index) == first
    ]


def content_index(campaign: Campaign, variant: int | None) -> int:
    """Which variant a delivery gets: its own, else (the rest) the winner, else A."""
    if variant is not None:
        return variant
    if is_on(campaign) and campaign.ab_winner is not None:
        return campaign.ab_winner
    return 0


# --- The split at the start ------------------------------------------------------------------


def test_size(total: int, share: int, variants: int) -> int:
    """How many recipients get a variant: ``share`` percent, at least one per variant."""
    return min(total, max(variants, round(total * share / 100)))


def split(campaign: Campaign, total: int, start: datetime | None = None) -> int:
    """Pick the test group at random and hold the rest back; returns the test group's size.

    Two statements, nothing loaded into Python: every row is held, then the
    picked ones (numbered in random order) get their variant and are released;
    a variant with a delay (a send-time test) is held until ``start`` + its delay.
    """
    variants = variant_count(campaign)
    size = test_size(total, campaign.ab_share, variants)
    rows = Delivery.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)
    rows.update(not_before=HELD)
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET variant = (picked.n - 1) %% %s, not_before = NULL "  # noqa: S608
            f"FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY random()) AS n FROM {table} "
            "WHERE campaign_id = %s) AS picked "
            f"WHERE {table}.id = picked.id AND picked.n <= %s",
            [variants, campaign.pk, size],
        )
    start = start or timezone.now()
    for index in range(1, variants):
        delay = variant_values(campaign, index)["delay_hours"]
        if delay:
            rows.filter(variant=index).update(not_before=start + timedelta(hours=delay))
    return size


# --- The numbers and the confidence ----------------------------------------------------------


def confidence(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float | None:
    """How sure the two rates differ: 1 minus the two-sided p-value of a pooled
    two-proportion z-test (0..1); None when a side has no trials."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if spread == 0:
        return 0.0
    z = (successes_a / trials_a - successes_b / trials_b) / spread
    return math.erf(abs(z) / math.sqrt(2))


def mean_confidence(
    total_a: float, squares_a: float, count_a: int, total_b: float, squares_b: float, count_b: int
) -> float | None:
    """How sure two means differ, from each group's sum, sum of squares and size: 1 minus
    the two-sided p-value of Welch's test with the normal approximation (0..1); None when
    a group has fewer than two members."""
    if count_a < 2 or count_b < 2:
        return None
    mean_a, mean_b = total_a / count_a, total_b / count_b
    variance_a = max(squares_a - count_a * mean_a**2, 0.0) / (count_a - 1)
    variance_b = max(squares_b - count_b * mean_b**2, 0.0) / (count_b - 1)
    spread = math.sqrt(variance_a / count_a + variance_b / count_b)
    if spread == 0:
        return 0.0 if mean_a == mean_b else 1.0
    return math.erf(abs(mean_a - mean_b) / spread / math.sqrt(2))


@dataclass(frozen=True)
class VariantResult:
    index: int
    subject: str
    preheader: str
    from_name: str
    recipients: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    # Revenue of the group's won deals (see the module's text), and the sum of the
    # squares of each recipient's share of it, for the spread; counted for revenue tests.
    revenue: Decimal = Decimal("0.00")
    revenue_squares: float = 0.0

    @property
    def letter(self) -> str:
        return letter(self.index)

    @property
    def open_rate(self) -> float | None:
        return round(self.opened / self.delivered, 4) if self.delivered else None

    @property
    def click_rate(self) -> float | None:
        return round(self.clicked / self.delivered, 4) if self.delivered else None

    @property
    def revenue_per_recipient(self) -> Decimal | None:
        if not self.delivered:
            return None
        return (self.revenue / self.delivered).quantize(Decimal("0.01"))

    def successes(self, metric: str) -> int:
        return self.clicked if metric == AbMetric.CLICK_RATE else self.opened

    def rate(self, metric: str) -> float | None:
        if metric == AbMetric.REVENUE:
            return float(self.revenue) / self.delivered if self.delivered else None
        return self.click_rate if metric == AbMetric.CLICK_RATE else self.open_rate

    def confidence_against(self, other: VariantResult, metric: str) -> float | None:
        if metric == AbMetric.REVENUE:
            return mean_confidence(
                float(self.revenue),
                self.revenue_squares,
                self.delivered,
                float(other.revenue),
                other.revenue_squares,
                other.delivered,
            )
        return confidence(
            self.successes(metric), self.delivered, other.successes(metric), other.delivered
        )


@dataclass(frozen=True)
class Outcome:
    """Who leads (or won) and how sure that is."""

    leader: int
    confidence: float | None

    @property
    def significant(self) -> bool:
        return self.confidence is not None and self.confidence >= SIGNIFICANT


def results(
    campaign: Campaign,
    numbers: dict[int | None, Any] | None = None,
    revenue: dict[int | None, tuple[Decimal, float]] | None = None,
) -> list[VariantResult]:
    """Each variant's test group with what its people did (two queries; two more for the
    revenue of a test decided by revenue)."""
    from patron.mail import reports

    if numbers is None:
        numbers = reports.variant_numbers(campaign)
    if revenue is None:
        revenue = judged_revenue(campaign)
    found = []
    for index in range(variant_count(campaign)):
        counted = numbers.get(index, reports.Numbers())
        values = variant_values(campaign, index)
        earned, squares = revenue.get(index, (Decimal("0.00"), 0.0))
        found.append(
            VariantResult(
                index=index,
                subject=values["subject"],
                preheader=values["preheader"],
                from_name=values["from_name"],
                recipients=counted.recipients,
                sent=counted.sent,
                delivered=counted.delivered,
                opened=counted.opened,
                clicked=counted.clicked,
                revenue=earned,
                revenue_squares=squares,
            )
        )
    return found


def judged_revenue(
    campaign: Campaign, until: datetime | None = None
) -> dict[int | None, tuple[Decimal, float]]:
    """``variant_revenue`` for a test decided by revenue; nothing (no query) for the others."""
    return variant_revenue(campaign, until) if campaign.ab_metric == AbMetric.REVENUE else {}


def variant_revenue(
    campaign: Campaign, until: datetime | None = None
) -> dict[int | None, tuple[Decimal, float]]:
    """Each variant's revenue (None: the rest of the audience) and the sum of the squares
    of its recipients' shares, from the deals won by ``until`` (two queries).

    A won deal in the workspace's currency counts for each recipient among its contacts
    whose message was sent before the deal closed; its amount is shared equally between
    them, in cents by the largest remainder, so the shares add up to the amount.
    """
    from patron.insights.attribution import split

    until = until or timezone.now()
    sent = Delivery.objects.for_workspace(campaign.workspace_id).filter(
        campaign=campaign, sent_at__isnull=False
    )
    links = list(
        Deal.contacts.through.objects.filter(
            deal__workspace_id=campaign.workspace_id,
            deal__stage__outcome=StageOutcome.WON,
            deal__currency=campaign.workspace.currency,
            deal__closed_at__lte=until,
            contact_id__in=sent.values("contact_id"),
        ).values_list("deal_id", "deal__amount", "deal__closed_at", "contact_id")
    )
    if not links:
        return {}
    recipients = {
        contact_id: (variant, sent_at)
        for contact_id, variant, sent_at in sent.filter(
            contact_id__in={link[3] for link in links}
        ).values_list("contact_id", "variant", "sent_at")
    }
    deals: dict[int, tuple[Decimal, list[int]]] = {}
    for deal_id, amount, closed_at, contact_id in links:
        variant_sent = recipients.get(contact_id)
        if variant_sent is None or closed_at is None or closed_at < variant_sent[1]:
            continue
        deals.setdefault(deal_id, (amount, []))[1].append(contact_id)
    earned: dict[int, Decimal] = defaultdict(Decimal)
    for amount, contact_ids in deals.values():
        shares = split(amount, [Fraction(1, len(contact_ids))] * len(contact_ids))
        for contact_id, share in zip(sorted(contact_ids), shares, strict=True):
            earned[contact_id] += share
    totals: dict[int | None, tuple[Decimal, float]] = {}
    for contact_id, amount in earned.items():
        variant = recipients[contact_id][0]
        total, squares = totals.get(variant, (Decimal("0.00"), 0.0))
        totals[variant] = (total + amount, squares + float(amount) ** 2)
    return totals


def judge(found: list[VariantResult], metric: str) -> Outcome:
    """The best variant by ``metric`` (ties: the earlier letter) and the confidence that it
    beats every other one (the lowest of its pairwise confidences)."""
    leader = min(found, key=lambda result: (-(result.rate(metric) or 0.0), result.index))
    sureness: float | None = None
    for other in found:
        if other.index == leader.index:
            continue
        value = leader.confidence_against(other, metric)
        if value is None:
            return Outcome(leader=leader.index, confidence=None)
        sureness = value if sureness is None else min(sureness, value)
    return Outcome(leader=leader.index, confidence=sureness)


# --- Choosing the winner ---------------------------------------------------------------------


def pick_winner(campaign_id: int, *, now: datetime | None = None) -> Campaign | None:
    """Choose the winner of a test that is due, record it, and release the rest (idempotent).

    A campaign that is paused waits (it is decided once resumed); one that
    finished already (everyone was in the test) is decided for the report.
    """
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.unscoped()
            .select_for_update(of=("self",))
            .select_related("workspace", "sender")
            .filter(
                pk=campaign_id,
                status__in=[CampaignStatus.SENDING, CampaignStatus.SENT],
                ab_decide_at__lte=now,
                ab_decided_at__isnull=True,
            )
            .first()
        )
        if campaign is None:
            return None
        outcome = judge(
            results(campaign, revenue=judged_revenue(campaign, until=now)), campaign.ab_metric
        )
        Campaign.objects.for_workspace(campaign.workspace_id).filter(pk=campaign.pk).update(
            ab_winner=outcome.leader, ab_confidence=outcome.confidence, ab_decided_at=now
        )
        campaign.ab_winner = outcome.leader
        campaign.ab_confidence = outcome.confidence
        campaign.ab_decided_at = now
        when = release_at(campaign, outcome.leader, now)
        released = (
            Delivery.objects.for_workspace(campaign.workspace_id)
            .filter(
                campaign=campaign,
                variant__isnull=True,
                status=DeliveryStatus.QUEUED,
                not_before=HELD,
            )
            .update(not_before=when)
        )
        # The chunks waiting for the held rows: the scheduler wakes them then.
        SendChunk.objects.for_workspace(campaign.workspace_id).filter(
            campaign=campaign, state=ChunkState.WAITING
        ).update(wake_at=when or now)
        record_audit(
            workspace=campaign.workspace,
            actor=None,
            action="campaign.ab_decided",
            target=campaign.name,
            data={
                "campaign": campaign.pk,
                "winner": letter(outcome.leader),
                "confidence": outcome.confidence,
                "released": released,
            },
        )
    return campaign


def decide_due(now: datetime | None = None) -> int:
    """The scheduler's step: choose the winners of the tests whose wait is over."""
    now = now or timezone.now()
    due = Campaign.objects.unscoped().filter(
        status__in=[CampaignStatus.SENDING, CampaignStatus.SENT],
        ab_decide_at__lte=now,
        ab_decided_at__isnull=True,
    )
    decided = 0
    for campaign_id in list(due.values_list("pk", flat=True)[:100]):
        if pick_winner(campaign_id, now=now) is not None:
            decided += 1
    return decided


# --- For the pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TestState:
    """An A/B test as the campaign page and the report show it."""

    variants: list[VariantResult]
    metric: str
    metric_label: str
    share: int
    decide_at: datetime | None
    decided: bool
    winner: int | None
    # The recorded confidence once decided, else the current one.
    confidence: float | None
    leader: int
    waiting: int  # rows of the rest still held for the winner
    rest: VariantResult  # the rest of the audience (index: the winner's, or -1 before)

    @property
    def winner_letter(self) -> str:
        return letter(self.winner) if self.winner is not None else ""

    @property
    def leader_letter(self) -> str:
        return letter(self.leader)

    @property
    def confidence_percent(self) -> int | None:
        return None if self.confidence is None else math.floor(self.confidence * 100)

    @property
    def significant(self) -> bool:
        return self.confidence is not None and self.confidence >= SIGNIFICANT


def state(campaign: Campaign) -> TestState | None:
    """The test of a campaign that started one (``ab_decide_at`` set), else None."""
    from patron.mail import reports

    if campaign.ab_decide_at is None:
        return None
    numbers = reports.variant_numbers(campaign)
    revenue = judged_revenue(campaign)
    found = results(campaign, numbers, revenue)
    decided = campaign.ab_decided_at is not None
    outcome = judge(found, campaign.ab_metric)
    waiting = (
        0
        if decided
        else Delivery.objects.for_workspace(campaign.workspace_id)
        .filter(campaign=campaign, variant__isnull=True, status=DeliveryStatus.QUEUED)
        .count()
    )
    return TestState(
        variants=found,
        metric=campaign.ab_metric,
        metric_label=str(AbMetric(campaign.ab_metric).label),
        share=campaign.ab_share,
        decide_at=campaign.ab_decide_at,
        decided=decided,
        winner=campaign.ab_winner,
        confidence=campaign.ab_confidence if decided else outcome.confidence,
        leader=campaign.ab_winner if decided and campaign.ab_winner is not None else outcome.leader,
        waiting=waiting,
        rest=_rest(
            campaign,
            numbers.get(None) or reports.Numbers(),
            revenue.get(None, (Decimal("0.00"), 0.0)),
        ),
    )


def _rest(campaign: Campaign, counted: Any, revenue: tuple[Decimal, float]) -> VariantResult:
    index = campaign.ab_winner if campaign.ab_winner is not None else -1
    values = (
        variant_values(campaign, max(index, 0)) if index >= 0 else dict.fromkeys(VARIANT_FIELDS, "")
    )
    return VariantResult(
        index=index,
        subject=values["subject"],
        preheader=values["preheader"],
        from_name=values["from_name"],
        recipients=counted.recipients,
        sent=counted.sent,
        delivered=counted.delivered,
        opened=counted.opened,
        clicked=counted.clicked,
        revenue=revenue[0],
        revenue_squares=revenue[1],
    )


def longest_delay(campaign: Campaign) -> int:
    indexes = range(variant_count(campaign))
    return max((variant_values(campaign, i)["delay_hours"] for i in indexes), default=0)


def decide_at(start: datetime, campaign: Campaign) -> datetime:
    """The wait runs from the last variant's send: each has had the same time to be read."""
    return start + timedelta(hours=longest_delay(campaign) + campaign.ab_wait_hours)


def release_at(campaign: Campaign, winner: int, now: datetime) -> datetime | None:
    """When the rest goes: now (None), or in a send-time test at the winner's time of day,
    the first such moment from now."""
    start = campaign.started_at
    if not longest_delay(campaign) or start is None:
        return None
    moment = start + timedelta(hours=variant_values(campaign, winner)["delay_hours"])
    while moment < now:
        moment += timedelta(days=1)
    return moment
