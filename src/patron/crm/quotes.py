"""Quotes on deals: numbered offers with line items, sent by email and answered online.

Amounts are Decimal. Per line: gross = quantity * unit price, rounded half-up
to cents; the discount and then the tax are each rounded half-up to cents
(discount = gross * percent / 100, tax = (gross - discount) * percent / 100).
The quote's subtotal, discount, tax and total are the sums of the rounded line
amounts, so the document adds up line by line and matches what a customer
re-computes from the printed lines.

The life of a quote: draft -> sent -> accepted | declined | expired. Only a
draft can be edited or deleted: a sent quote is what the customer saw, so
editing it is refused with a message, and ``copy_quote`` makes a new draft
(with a new number) from it for a new offer. A quote is valid through its
"valid until" date in the workspace's time zone; the hourly
``expire_quotes`` job then marks it expired, and until it does the answer is
refused all the same.

The public page is reached through a signed token (``django.core.signing``,
salted), never an id; it records the first view, and an acceptance or a
decline once, with the name typed, the IP address and the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
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
from patron.crm.models import (
    Contact,
    Deal,
    Quote,
    QuoteCounter,
    QuoteLine,
    QuoteStatus,
    workspace_today,
)
from patron.crm.services import CrossWorkspaceReference

CENT = Decimal("0.01")
TOKEN_SALT = "patron.crm.quote"  # noqa: S105 - a signing namespace, not a secret
MAX_LINES = 100
# The largest values the line columns hold (12 and 14 digits, two after the point).
MAX_QUANTITY = Decimal("9999999999.99")
MAX_UNIT_PRICE = Decimal("999999999999.99")
DEFAULT_VALIDITY = timedelta(days=30)


class QuoteInvalid(ValueError):
    """Bad input or a change the quote's status does not allow; ``field`` says where."""

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
    """``Q-2026-0001``: the workspace's next number for the year, safe under concurrency.

    The year's counter row is locked (``SELECT ... FOR UPDATE``) until the
    caller's transaction ends, so two quotes created at once wait for each
    other instead of taking the same number. The first quote of a year creates
    the row; if another transaction creates it first, the unique constraint
    stops the second insert and it locks the winner's row instead.
    """
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


def _decimal(value: Any, default: str) -> Decimal:
    if value is None or value == "":
        return Decimal(default)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise QuoteInvalid("lines", _("%(value)s is not a number.") % {"value": value}) from None
    if not number.is_finite():
        raise QuoteInvalid("lines", _("%(value)s is not a number.") % {"value": value})
    if number != number.quantize(CENT):
        raise QuoteInvalid("lines", _("Use at most two decimals in a line."))
    return number


def _clean_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines without a description are left out; the rest are checked and kept in order."""
    cleaned = []
    for line in lines:
        description = str(line.get("description") or "").strip()
        if not description:
            continue
        quantity = _decimal(line.get("quantity"), "1")
        unit_price = _decimal(line.get("unit_price"), "0")
        discount = _decimal(line.get("discount_percent"), "0")
        tax = _decimal(line.get("tax_percent"), "0")
        if not (0 < quantity <= MAX_QUANTITY):
            raise QuoteInvalid("lines", _("A line's quantity is more than zero."))
        if unit_price < 0:
            raise QuoteInvalid("lines", _("A unit price cannot be negative."))
        if unit_price > MAX_UNIT_PRICE:
            raise QuoteInvalid("lines", _("A unit price is too large."))
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


def _clean_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise QuoteInvalid("title", _("Give the quote a title."))
    return title[:200]


def _check_valid_until(workspace: Workspace, valid_until: date) -> None:
    if valid_until < workspace_today(workspace):
        raise QuoteInvalid("valid_until", _("The validity date cannot be in the past."))


def _check_contact(contact: Contact | None, workspace_id: int) -> None:
    if contact is not None and contact.workspace_id != workspace_id:
        raise CrossWorkspaceReference(_("The contact is not part of this workspace."))


def _set_lines(quote: Quote, lines: list[dict[str, Any]]) -> None:
    QuoteLine.objects.for_workspace(quote.workspace_id).filter(quote=quote).delete()
    QuoteLine.objects.bulk_create(
        QuoteLine(workspace_id=quote.workspace_id, quote=quote, position=index, **line)
        for index, line in enumerate(lines)
    )


def _event(quote: Quote, kind: str, actor: User | None = None, **extra: Any) -> None:
    # Recorded against the deal, so the deal's history shows the quote's life;
    # with the contact, so their timeline does too.
    record(
        workspace=quote.workspace_id,
        kind=kind,
        contact_id=quote.contact_id,
        actor=actor,
        source=("crm.deal", quote.deal_id),
        properties={"quote": quote.number, "quote_id": quote.pk, "title": quote.title, **extra},
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
    """A draft quote on ``deal`` in the deal's currency, addressed to ``contact``.

    Without a contact it goes to the deal's first contact. The number is
    allocated last, after the input is checked, so bad input uses no number.
    """
    _check_contact(contact, deal.workspace_id)
    workspace = deal.workspace
    title = _clean_title(title)
    _check_valid_until(workspace, valid_until)
    cleaned = _clean_lines(lines)
    quote = Quote.objects.create(
        workspace_id=deal.workspace_id,
        deal=deal,
        number=next_number(deal.workspace_id, workspace_today(workspace).year),
        title=title,
        contact=contact or deal.contacts.order_by("pk").first(),
        currency=deal.currency,
        valid_until=valid_until,
        terms=terms.strip(),
        created_by=actor,
    )
    _set_lines(quote, cleaned)
    _event(quote, "quote.created", actor)
    return quote


def _refuse_unless_draft(quote: Quote) -> None:
    if quote.status != QuoteStatus.DRAFT:
        raise QuoteInvalid(
            "status",
            _(
                "Quote %(number)s was sent and can no longer change: "
                "copy it as a new draft to make a new offer."
            )
            % {"number": quote.number},
        )


@transaction.atomic
def update_quote(
    *,
    quote: Quote,
    title: str | None = None,
    valid_until: date | None = None,
    lines: list[dict[str, Any]] | None = None,
    contact: Contact | None = None,
    terms: str | None = None,
) -> Quote:
    """Change a draft; arguments left at ``None`` keep their value. A sent quote is refused."""
    _refuse_unless_draft(quote)
    _check_contact(contact, quote.workspace_id)
    if title is not None:
        quote.title = _clean_title(title)
    if valid_until is not None:
        _check_valid_until(quote.workspace, valid_until)
        quote.valid_until = valid_until
    cleaned = _clean_lines(lines) if lines is not None else None
    if terms is not None:
        quote.terms = terms.strip()
    if contact is not None:
        quote.contact = contact
    quote.save()
    if cleaned is not None:
        _set_lines(quote, cleaned)
    return quote


@transaction.atomic
def delete_quote(*, quote: Quote) -> None:
    """Only a draft can be deleted: a sent quote is part of the deal's record."""
    if quote.status != QuoteStatus.DRAFT:
        raise QuoteInvalid("status", _("Only a draft quote can be deleted."))
    quote.delete()


@transaction.atomic
def copy_quote(*, quote: Quote, actor: User | None = None) -> Quote:
    """A new draft with the same title, contact, terms and lines, for a new offer."""
    today = workspace_today(quote.workspace)
    valid_until = quote.valid_until if quote.valid_until >= today else today + DEFAULT_VALIDITY
    copy = create_quote(
        deal=quote.deal,
        title=quote.title,
        valid_until=valid_until,
        contact=quote.contact,
        terms=quote.terms,
        lines=[
            dict(line)
            for line in quote.lines.values(
                "description", "quantity", "unit_price", "discount_percent", "tax_percent"
            )
        ],
        actor=actor,
    )
    return copy


def token_for(quote: Quote) -> str:
    return signing.dumps({"q": quote.pk, "w": quote.workspace_id}, salt=TOKEN_SALT, compress=True)


def quote_for_token(token: str) -> Quote | None:
    """The quote a signed token names, or None when the token was altered or is foreign."""
    try:
        data = signing.loads(token, salt=TOKEN_SALT)
        workspace_id, quote_id = int(data["w"]), int(data["q"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return (
        Quote.objects.for_workspace(workspace_id)
        .select_related("workspace", "deal", "contact__company")
        .filter(pk=quote_id)
        .first()
    )


def public_url(quote: Quote) -> str:
    return settings.BASE_URL + reverse("crm:quote_public", args=[token_for(quote)])


@transaction.atomic
def send_quote(*, quote: Quote, actor: User | None = None) -> Quote:
    """Email the quote's contact the link to its public page; a sent quote can be sent again."""
    if quote.status not in {QuoteStatus.DRAFT, QuoteStatus.SENT}:
        raise QuoteInvalid(
            "status",
            _("This quote is %(status)s and cannot be sent again.")
            % {"status": quote.get_status_display().lower()},
        )
    workspace = quote.workspace
    if quote.valid_until < workspace_today(workspace):
        raise QuoteInvalid(
            "valid_until",
            _("The quote was valid until %(date)s; give it a later date before sending it.")
            % {"date": quote.valid_until.isoformat()}
            if quote.status == QuoteStatus.DRAFT
            else _("The quote expired on %(date)s; copy it as a new draft to offer it again.")
            % {"date": quote.valid_until.isoformat()},
        )
    if quote.contact is None or not quote.contact.email:
        raise QuoteInvalid("contact", _("Address the quote to a contact with an email address."))
    quote.status = QuoteStatus.SENT
    quote.sent_at = timezone.now()
    quote.save(update_fields=["status", "sent_at"])
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


def mark_viewed(*, quote: Quote) -> bool:
    """The first time the customer opens the page (later views are not recorded)."""
    claimed = (
        Quote.objects.for_workspace(quote.workspace_id)
        .filter(pk=quote.pk, viewed_at__isnull=True)
        .update(viewed_at=timezone.now())
    )
    if claimed:
        _event(quote, "quote.viewed")
    return bool(claimed)


def _expired_message(quote: Quote) -> str:
    return _("This quote expired on %(date)s.") % {"date": quote.valid_until.isoformat()}


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
    locked = (
        Quote.objects.for_workspace(quote.workspace_id)
        .select_for_update(of=("self",))
        .select_related("workspace", "deal__owner", "contact")
        .get(pk=quote.pk)
    )
    if locked.status == QuoteStatus.DRAFT:
        raise QuoteInvalid("status", _("This quote has not been sent yet."))
    if locked.is_expired:
        raise QuoteInvalid("status", _expired_message(locked))
    if locked.status != QuoteStatus.SENT:
        raise QuoteInvalid("status", _("This quote has already been answered."))
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
        who = locked.answered_by_name or str(locked.contact or _("The customer"))
        with translation.override(owner.language or locked.workspace.language):
            text = (
                _("%(name)s accepted quote %(number)s")
                if accept
                else _("%(name)s declined quote %(number)s")
            ) % {"name": who, "number": locked.number}
        notify(
            workspace=locked.workspace,
            user=owner,
            text=text,
            url=reverse("crm:quote_detail", args=[locked.pk]),
        )
    return locked


def expire_quotes() -> int:
    """Mark sent quotes expired once their last valid day has passed where the workspace is.

    Returns how many were marked. Each is claimed with a conditional update, so
    a quote answered at the same moment is either answered or expired, never both.
    """
    # No time zone is more than a day ahead of UTC: nothing later can have expired.
    horizon = timezone.now().date() + timedelta(days=1)
    candidates = (
        Quote.objects.unscoped()
        .filter(status=QuoteStatus.SENT, valid_until__lt=horizon)
        .select_related("workspace")
        .order_by("pk")
    )
    expired = 0
    for quote in candidates:
        if quote.valid_until >= workspace_today(quote.workspace):
            continue
        with transaction.atomic():
            claimed = (
                Quote.objects.for_workspace(quote.workspace_id)
                .filter(pk=quote.pk, status=QuoteStatus.SENT)
                .update(status=QuoteStatus.EXPIRED)
            )
            if claimed:
                _event(quote, "quote.expired", valid_until=quote.valid_until.isoformat())
                expired += 1
    return expired
