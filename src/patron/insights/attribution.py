"""Attribution: the path each won deal took, and its revenue credited to the touches.

A **touch** is something a contact of the deal did before the deal was won,
within ``WINDOW`` of the win: clicked a campaign's email (``email.clicked``),
viewed a page (``page.viewed``), sent a form (``form.submitted``) or downloaded
a file (``file.downloaded``). Each touch has a **channel** and a **campaign**:

* an email click: channel ``email``, campaign the email campaign's name;
* anything else: channel the ``utm_medium`` it carried (else its ``utm_source``,
  else ``direct``), campaign its ``utm_campaign`` (else none).

Models, for a path of n touches (first to last):

* **first touch**: all to the first; **last touch**: all to the last;
* **linear**: 1/n to each;
* **position-based** (40/20/40): 40 % to the first, 40 % to the last, 20 %
  shared by those between; with two touches 50/50, with one all to it.

A deal with no touch credits its whole amount to "no touch", so that in every
model the credits of a deal add up to its amount, to the cent: shares are
cut in cents by the largest remainder. Credits are summed per currency; a
deal in another currency than the workspace's is never added to the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import lcm
from typing import Any

from django.utils.translation import gettext as _

from patron.activity.models import Event
from patron.core.models import Workspace
from patron.crm.models import Deal, StageOutcome
from patron.insights.periods import Filters, Period
from patron.insights.reports_sales import deals_for, money

WINDOW = timedelta(days=180)
TOUCH_KINDS = ("email.clicked", "page.viewed", "form.submitted", "file.downloaded")
MODELS = ("first_touch", "last_touch", "linear", "position_based")
NO_TOUCH = "(no touch)"
# Many deals' contacts are read per query, in slices, to keep the IN lists short.
CONTACT_BATCH = 500


@dataclass(frozen=True)
class Touch:
    kind: str
    occurred_at: datetime | None
    channel: str
    campaign: str
    detail: str = ""  # the page, the form, the link


@dataclass(frozen=True)
class DealPath:
    deal_id: int
    deal: str
    amount: Decimal
    currency: str
    closed_at: datetime | None
    touches: list[Touch] = field(default_factory=list)


def weights(model: str, count: int) -> list[Fraction]:
    """Each touch's share of the credit under ``model`` (they add up to 1)."""
    if count <= 0:
        return []
    if model == "first_touch":
        return [Fraction(1)] + [Fraction(0)] * (count - 1)
    if model == "last_touch":
        return [Fraction(0)] * (count - 1) + [Fraction(1)]
    if model == "linear":
        return [Fraction(1, count)] * count
    if model == "position_based":
        if count == 1:
            return [Fraction(1)]
        if count == 2:
            return [Fraction(1, 2), Fraction(1, 2)]
        middle = Fraction(1, 5) / (count - 2)
        return [Fraction(2, 5)] + [middle] * (count - 2) + [Fraction(2, 5)]
    raise ValueError(f"Unknown attribution model {model!r}")


def split(amount: Decimal, shares: Sequence[Fraction]) -> list[Decimal]:
    """``amount`` cut by ``shares`` into cents that add up to it exactly.

    Each part is rounded down to the cent; the cents left over go to the parts
    with the largest remainders (the earlier part on a tie). Worked in integers
    over the shares' common denominator: thousands of deals make Fraction
    arithmetic the slow part of a report.
    """
    cents = int((amount * 100).to_integral_value())
    denominator = lcm(*(share.denominator for share in shares))
    # share * cents == scaled / denominator, exactly; each part rounded toward zero
    # (down, as shares and amounts are >= 0), and what it left over, over denominator.
    scaled = [share.numerator * (denominator // share.denominator) * cents for share in shares]
    parts = [abs(value) // denominator * (1 if value >= 0 else -1) for value in scaled]
    remainders = [value - part * denominator for value, part in zip(scaled, parts, strict=True)]
    left = cents - sum(parts)
    order = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
    for index in order[:left]:
        parts[index] += 1
    return [Decimal(part) / 100 for part in parts]


def credit(path: DealPath, model: str) -> list[tuple[Touch, Decimal]]:
    """The deal's amount credited to its touches under ``model`` (to "no touch" when none)."""
    nothing = Touch(kind="", occurred_at=None, channel=NO_TOUCH, campaign=NO_TOUCH)
    touches = path.touches or [nothing]
    return list(zip(touches, split(path.amount, weights(model, len(touches))), strict=True))


def _touch(
    kind: str, occurred_at: datetime, properties: dict[str, Any], names: dict[int, str]
) -> Touch:
    if kind == "email.clicked":
        campaign_id = properties.get("campaign")
        name = names.get(campaign_id, "") if isinstance(campaign_id, int) else ""
        return Touch(
            kind=kind,
            occurred_at=occurred_at,
            channel="email",
            campaign=name or _("Email campaign %(id)s") % {"id": campaign_id},
            detail=str(properties.get("url") or ""),
        )
    channel = str(properties.get("utm_medium") or properties.get("utm_source") or "direct")
    detail = str(properties.get("url") or properties.get("form") or "")
    return Touch(
        kind=kind,
        occurred_at=occurred_at,
        channel=channel,
        campaign=str(properties.get("utm_campaign") or ""),
        detail=detail,
    )


def paths(workspace: Workspace, period: Period, filters: Filters) -> list[DealPath]:
    """Each deal won in the period with its touches, oldest first.

    Queries: the won deals, their contacts, the touches of those contacts (per
    slice of ``CONTACT_BATCH`` contacts) and the names of the campaigns named.
    """
    # closed_at is filtered on: never None here.
    won: list[tuple[int, str, Decimal, str, datetime]] = list(
        deals_for(workspace, filters)  # type: ignore[arg-type]
        .filter(stage__outcome=StageOutcome.WON, closed_at__isnull=False)
        .filter(**period.moment_filter("closed_at"))
        .values_list("id", "name", "amount", "currency", "closed_at")
        .order_by("closed_at", "id")
    )
    if not won:
        return []
    deal_ids = [row[0] for row in won]
    contacts_of: dict[int, set[int]] = {}
    links = Deal.contacts.through.objects.filter(deal_id__in=deal_ids).values_list(
        "deal_id", "contact_id"
    )
    for deal_id, contact_id in links:
        contacts_of.setdefault(deal_id, set()).add(contact_id)
    # Each contact's touches lie between WINDOW before its first won deal and its last.
    wins: dict[int, tuple[datetime, datetime]] = {}
    for deal_id, _name, _amount, _currency, closed_at in won:
        for contact_id in contacts_of.get(deal_id, ()):
            first, last = wins.get(contact_id, (closed_at, closed_at))
            wins[contact_id] = (min(first, closed_at), max(last, closed_at))
    # Sliced in the order of those wins, so that each slice reads a window little
    # longer than WINDOW rather than the whole period's.
    contact_ids = sorted(wins, key=lambda c: (wins[c][0], c))
    events: dict[int, list[tuple[str, datetime, dict[str, Any]]]] = {}
    for start in range(0, len(contact_ids), CONTACT_BATCH):
        batch = contact_ids[start : start + CONTACT_BATCH]
        earliest = min(wins[c][0] for c in batch) - WINDOW
        latest = max(wins[c][1] for c in batch)
        # By contact and time only, so that the database reads the contacts' own index
        # (a filter on the kinds made PostgreSQL walk every touch of the whole window);
        # the kinds are picked here.
        for contact_id, kind, occurred_at, properties in (
            Event.objects.for_workspace(workspace)
            .filter(contact_id__in=batch, occurred_at__gte=earliest, occurred_at__lte=latest)
            .values_list("contact_id", "kind", "occurred_at", "properties")
            .order_by()
        ):
            if kind in TOUCH_KINDS:
                events.setdefault(contact_id, []).append((kind, occurred_at, properties or {}))
    campaign_ids = {
        properties.get("campaign")
        for rows in events.values()
        for kind, _at, properties in rows
        if kind == "email.clicked" and isinstance(properties.get("campaign"), int)
    }
    names: dict[int, str] = {}
    if campaign_ids:
        from patron.mail.models import Campaign

        names = dict(
            Campaign.objects.for_workspace(workspace)
            .filter(pk__in=campaign_ids)
            .values_list("id", "name")
        )
    result = []
    for deal_id, name, amount, currency, closed_at in won:
        touched = sorted(
            (
                (occurred_at, kind, properties)
                for contact_id in contacts_of.get(deal_id, ())
                for kind, occurred_at, properties in events.get(contact_id, ())
                if closed_at - WINDOW <= occurred_at <= closed_at
            ),
            key=lambda item: item[0],
        )
        result.append(
            DealPath(
                deal_id=deal_id,
                deal=name,
                amount=money(amount),
                currency=currency,
                closed_at=closed_at,
                touches=[_touch(kind, at, props, names) for at, kind, props in touched],
            )
        )
    return result


@dataclass(frozen=True)
class CreditRow:
    key: str  # the channel or the campaign ("" : no campaign)
    currency: str
    deals: int  # won deals with at least one touch here
    first_touch: Decimal
    last_touch: Decimal
    linear: Decimal
    position_based: Decimal


def credits(
    workspace: Workspace, period: Period, filters: Filters, *, by: str = "channel"
) -> list[CreditRow]:
    """Revenue of the deals won in the period credited per channel (or campaign) and
    currency, under every model; most credited (linear) first."""
    if by not in ("channel", "campaign"):
        raise ValueError(f"Unknown attribution dimension {by!r}")
    totals: dict[tuple[str, str], dict[str, Decimal]] = {}
    deals: dict[tuple[str, str], set[int]] = {}
    for path in paths(workspace, period, filters):
        for model in MODELS:
            for touch, part in credit(path, model):
                key = (getattr(touch, by), path.currency)
                sums = totals.setdefault(key, dict.fromkeys(MODELS, Decimal("0.00")))
                sums[model] += part
                deals.setdefault(key, set()).add(path.deal_id)
    rows = [
        CreditRow(
            key=key,
            currency=currency,
            deals=len(deals[(key, currency)]),
            **{model: value.quantize(Decimal("0.01")) for model, value in sums.items()},
        )
        for (key, currency), sums in totals.items()
    ]
    rows.sort(key=lambda r: (r.currency != workspace.currency, r.currency, -r.linear, r.key))
    return rows
