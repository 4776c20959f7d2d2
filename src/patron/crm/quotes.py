"""Quotes on deals: numbered offers with line items, sent by email and answered online.

Amounts are Decimal. Per line: gross = quantity * unit price; the discount and
then the tax are each rounded half-up to cents; the quote's totals are the
sums of the rounded line amounts, so the document adds up line by line.

Only a draft can be edited: a sent quote is what the customer saw, and a new
quote is made for a new offer. The public page is reached through a signed
token, never an id; it records the first view, and an acceptance or a
decline once, with the name typed, the IP address and the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.core.models import User, Workspace
from patron.core.services import notify, send_workspace_mail
from patron.crm.models import Contact, Deal, Quote, QuoteCounter, QuoteLine, QuoteStatus
from patron.crm.services import CrossWorkspaceReference

CENT = Decimal("0.01")
TOKEN_SALT = "patron.crm.quote"  # noqa: S105 - a signing namespace, not a secret
MAX_LINES = 100


class QuoteInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LineAmounts:
    gross: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_amounts(line: QuoteLine) -> LineAmounts:
    gross = _cents(line.quantity * line.unit_price)
    discount = _cents(gross * line.discount_percent / 100)
    net = gross - discount
    tax = _cents(net * line.tax_percent / 100)
    return LineAmounts(gross, discount, net, tax, net + tax)


def totals(lines: list[QuoteLine]) -> Totals:
    amounts = [line_amounts(line) for line in lines]
    subtotal = sum((a.gross for a in amounts), Decimal("0.00"))
    discount = sum((a.discount for a in amounts), Decimal("0.00"))
    tax = sum((a.tax for a in amounts), Decimal("0.00"))
    return Totals(subtotal, discount, subtotal - discount, tax, subtotal - discount + tax)


def next_number(workspace: Workspace | int, year: int) -> str:
    """``Q-2026-0001``: the workspace's next number for the year, safe under concurrency."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    counters = QuoteCounter.objects.for_workspace(workspace_id)
    with transaction.atomic():
        counter = counters.select_for_update().filter(year=year).first()
        if counter is None:
            try:
                with transaction.atomic():
                    counter = QuoteCounter.objects.create(workspace_id=workspace_id, year=year)
            except IntegrityError:  # another request created it first
                pass
            counter = counters.select_for_update().get(year=year)
        counter.last_number += 1
        counter.save(update_fields=["last_number"])
    return f"Q-{year}-{counter.last_number:04d}"


def _clean_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for line in lines:
        description = str(line.get("description", "")).strip()
        if not description:
            continue
        quantity = Decimal(str(line.get("quantity", 1)))
        unit_price = Decimal(str(line.get("unit_price", 0)))
        discount = Decimal(str(line.get("discount_percent", 0) or 0))
        tax = Decimal(str(line.get("tax_percent", 0) or 0))
        if quantity <= 0:
            raise QuoteInvalid("lines", _("A line's quantity is more than zero."))
        if unit_price < 0:
            raise QuoteInvalid("lines", _("A unit price cannot be negative."))
        if not (0 <= discount <= 100) or not (0 <= tax <= 100):
            raise QuoteInvalid("lines", _("Discounts and taxes are between 0 and 100 %."))
        cleaned.append(
            {
                "description": description[:300],
                "quantity": quantity,
                "unit_price": unit_price,
                "discount_percent": discount,
                "tax_percent": tax,
            }
        )
    if not cleaned:
        raise QuoteInvalid("lines", _("Add at least one line."))
    if len(cleaned) > MAX_LINES:
        raise QuoteInvalid("lines", _("Keep a quote to %(n)d lines.") % {"n": MAX_LINES})
    return cleaned


def _set_lines(quote: Quote, lines: list[dict[str, Any]]) -> None:
    QuoteLine.objects.for_workspace(quote.workspace_id).filter(quote=quote).delete()
    QuoteLine.objects.bulk_create(
        QuoteLine(workspace_id=quote.workspace_id, quote=quote, position=index, **line)
        for index, line in enumerate(lines)
    )


def _event(quote: Quote, kind: str, actor: User | None = None, **extra: Any) -> None:
    # Recorded against the deal, so the deal's history shows the quote's life.
    record(
        workspace=quote.workspace_id,
        kind=kind,
        contact_id=quote.contact_id,
        actor=actor,
        source=("crm.deal", quote.deal_id),
        properties={"quote": quote.number, "title": quote.title, **extra},
    )


@transaction.atomic
def create_quote(
    *,
    deal: Deal,
    title: str,
    valid_until: date,
    lines: list[dict[str, Any]],
    contact: Contact | None = None,
    terms: str = "",
    actor: User | None = None,
) -> Quote:
    if contact is not None and contact.workspace_id != deal.workspace_id:
        raise CrossWorkspaceReference(_("The contact is not part of this workspace."))
    cleaned = _clean_lines(lines)
    if not title.strip():
        raise QuoteInvalid("title", _("Give the quote a title."))
    quote = Quote.objects.create(
        workspace_id=deal.workspace_id,
        deal=deal,
        number=next_number(deal.workspace_id, timezone.localdate().year),
        title=title.strip(),
        contact=contact or deal.contacts.order_by("pk").first(),
        currency=deal.currency,
        valid_until=valid_until,
        terms=terms.strip(),
        created_by=actor,
    )
    _set_lines(quote, cleaned)
    _event(quote, "quote.created", actor)
    return quote


@transaction.atomic
def update_quote(
    *,
    quote: Quote,
    title: str,
    valid_until: date,
    lines: list[dict[str, Any]],
    contact: Contact | None = None,
    terms: str = "",
) -> Quote:
    if quote.status != QuoteStatus.DRAFT:
        raise QuoteInvalid(
            "status", _("A sent quote cannot change; make a new quote for a new offer.")
        )
    if contact is not None and contact.workspace_id != quote.workspace_id:
        raise CrossWorkspaceReference(_("The contact is not part of this workspace."))
    cleaned = _clean_lines(lines)
    quote.title, quote.valid_until, quote.terms = title.strip(), valid_until, terms.strip()
    quote.contact = contact or quote.contact
    quote.save()
    _set_lines(quote, cleaned)
    return quote


def token_for(quote: Quote) -> str:
    return signing.dumps({"q": quote.pk, "w": quote.workspace_id}, salt=TOKEN_SALT, compress=True)


def quote_for_token(token: str) -> Quote | None:
    try:
        data = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        return None
    return (
        Quote.objects.for_workspace(int(data["w"]))
        .select_related("workspace", "deal", "contact")
        .filter(pk=int(data["q"]))
        .first()
    )


def public_url(quote: Quote) -> str:
    return settings.BASE_URL + reverse("crm:quote_public", args=[token_for(quote)])


@transaction.atomic
def send_quote(*, quote: Quote, actor: User | None = None) -> Quote:
    if quote.status not in {QuoteStatus.DRAFT, QuoteStatus.SENT}:
        raise QuoteInvalid("status", _("This quote was already answered."))
    if quote.contact is None or not quote.contact.email:
        raise QuoteInvalid("contact", _("Address the quote to a contact with an email address."))
    quote.status = QuoteStatus.SENT
    quote.sent_at = timezone.now()
    quote.save(update_fields=["status", "sent_at"])
    workspace = quote.workspace
    with translation.override(workspace.language):
        subject = _("Quote %(number)s from %(company)s") % {
            "number": quote.number,
            "company": workspace.name,
        }
    send_workspace_mail(
        workspace=workspace,
        to=quote.contact.email,
        subject=subject,
        template="crm/email/quote",
        context={
            "quote": quote,
            "workspace": workspace,
            "link": public_url(quote),
            "totals": totals(list(quote.lines.all())),
        },
    )
    _event(quote, "quote.sent", actor, to=quote.contact.email)
    return quote


def mark_viewed(*, quote: Quote) -> None:
    """The first time the customer opens the page (later views are not recorded)."""
    claimed = (
        Quote.objects.for_workspace(quote.workspace_id)
        .filter(pk=quote.pk, viewed_at__isnull=True)
        .update(viewed_at=timezone.now())
    )
    if claimed:
        _event(quote, "quote.viewed")


@transaction.atomic
def answer_quote(
    *,
    quote: Quote,
    accept: bool,
    name: str,
    ip_address: str | None = None,
    user_agent: str = "",
    reason: str = "",
) -> Quote:
    """The customer accepts (typing their name) or declines; once, and not after expiry."""
    locked = Quote.objects.for_workspace(quote.workspace_id).select_for_update().get(pk=quote.pk)
    if locked.status != QuoteStatus.SENT:
        raise QuoteInvalid("status", _("This quote has already been answered."))
    if locked.valid_until < timezone.localdate():
        raise QuoteInvalid(
            "status", _("This quote expired on %(date)s.") % {"date": locked.valid_until}
        )
    if accept and not name.strip():
        raise QuoteInvalid("name", _("Type your name to accept."))
    locked.status = QuoteStatus.ACCEPTED if accept else QuoteStatus.DECLINED
    locked.answered_at = timezone.now()
    locked.answered_by_name = name.strip()[:200]
    locked.answered_from_ip = ip_address
    locked.answered_user_agent = user_agent[:300]
    locked.decline_reason = "" if accept else reason.strip()[:2000]
    locked.save()
    kind = "quote.accepted" if accept else "quote.declined"
    _event(locked, kind, name=locked.answered_by_name, reason=locked.decline_reason)
    owner = locked.deal.owner
    if owner is not None:
        text = (
            _("%(name)s accepted quote %(number)s")
            if accept
            else _("%(name)s declined quote %(number)s")
        ) % {"name": locked.answered_by_name or str(locked.contact), "number": locked.number}
        notify(
            workspace=locked.workspace,
            user=owner,
            text=text,
            url=reverse("crm:quote_detail", args=[locked.pk]),
        )
    return locked
