"""Quotes: totals, numbering, sending, the public page and its answers."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from patron.activity.models import Event
from patron.core.models import Notification
from patron.crm import quotes
from patron.crm.models import Quote, QuoteLine
from patron.mail.models import OutboxMessage
from tests.factories import ContactFactory, DealFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def line(quantity, price, discount="0", tax="0"):
    return QuoteLine(
        quantity=Decimal(quantity),
        unit_price=Decimal(price),
        discount_percent=Decimal(discount),
        tax_percent=Decimal(tax),
    )


def test_totals_round_each_line_half_up_to_cents():
    amounts = quotes.line_amounts(line("3", "19.99", discount="10", tax="19"))
    assert amounts.gross == Decimal("59.97")
    assert amounts.discount == Decimal("6.00")  # 5.997 -> 6.00
    assert amounts.net == Decimal("53.97")
    assert amounts.tax == Decimal("10.25")  # 10.2543 -> 10.25
    assert amounts.total == Decimal("64.22")
    half = quotes.line_amounts(line("1", "0.05", tax="50"))
    assert half.tax == Decimal("0.03")  # 0.025 rounds half up
    total = quotes.totals([line("3", "19.99", "10", "19"), line("2", "100", tax="7")])
    assert (total.subtotal, total.discount, total.tax, total.total) == (
        Decimal("259.97"),
        Decimal("6.00"),
        Decimal("24.25"),
        Decimal("278.22"),
    )


def test_numbers_count_up_per_workspace_and_year(workspace):
    assert quotes.next_number(workspace, 2026) == "Q-2026-0001"
    assert quotes.next_number(workspace, 2026) == "Q-2026-0002"
    assert quotes.next_number(workspace, 2027) == "Q-2027-0001"
    assert quotes.next_number(WorkspaceFactory(), 2026) == "Q-2026-0001"


@pytest.fixture
def deal(workspace, owner):
    deal = DealFactory(workspace=workspace, name="Espresso machines", owner=owner)
    deal.contacts.add(
        ContactFactory(workspace=workspace, first_name="Rosa", email="rosa@cafe.example")
    )
    return deal


def make_quote(deal, **extra):
    return quotes.create_quote(
        deal=deal,
        title=extra.pop("title", "Two machines"),
        valid_until=extra.pop("valid_until", timezone.localdate() + timedelta(days=14)),
        lines=extra.pop(
            "lines",
            [
                {"description": "Machine", "quantity": 2, "unit_price": "1200", "tax_percent": 19},
                {"description": "", "quantity": 1, "unit_price": 1},  # empty: left out
            ],
        ),
        **extra,
    )


def test_create_send_view_and_accept(workspace, owner, deal):
    quote = make_quote(deal, actor=owner)
    assert quote.contact.first_name == "Rosa" and quote.lines.count() == 1
    with pytest.raises(quotes.QuoteInvalid, match="at least one line"):
        make_quote(deal, lines=[{"description": " "}])
    quotes.send_quote(quote=quote, actor=owner)
    message = OutboxMessage.objects.filter(workspace=workspace).get()
    assert message.to == ["rosa@cafe.example"] and quote.number in message.subject
    link = re.search(r"http\S+/q/\S+/", message.text_body).group(0)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert quotes.quote_for_token(token) == quote
    assert quotes.quote_for_token(token[:-2] + "xx") is None  # tampered
    with pytest.raises(quotes.QuoteInvalid, match="cannot change"):
        quotes.update_quote(quote=quote, title="X", valid_until=quote.valid_until, lines=[])
    quotes.mark_viewed(quote=quote)
    quotes.mark_viewed(quote=quote)
    with pytest.raises(quotes.QuoteInvalid, match="Type your name"):
        quotes.answer_quote(quote=quote, accept=True, name=" ")
    accepted = quotes.answer_quote(
        quote=quote, accept=True, name="Rosa Diaz", ip_address="203.0.113.9", user_agent="Firefox"
    )
    assert accepted.status == "accepted" and accepted.answered_from_ip == "203.0.113.9"
    with pytest.raises(quotes.QuoteInvalid, match="already been answered"):
        quotes.answer_quote(quote=quote, accept=False, name="")
    kinds = list(
        Event.objects.for_workspace(workspace)
        .filter(source_type="crm.deal", source_id=str(deal.pk))
        .values_list("kind", flat=True)
    )
    assert sorted(kinds) == ["quote.accepted", "quote.created", "quote.sent", "quote.viewed"]
    assert "accepted quote" in Notification.objects.for_workspace(workspace).get(user=owner).text


def test_an_expired_quote_cannot_be_accepted(workspace, deal):
    quote = make_quote(deal)
    quotes.send_quote(quote=quote)
    Quote.objects.for_workspace(workspace).filter(pk=quote.pk).update(
        valid_until=timezone.localdate() - timedelta(days=1)
    )
    quote.refresh_from_db()
    assert quote.is_expired
    with pytest.raises(quotes.QuoteInvalid, match="expired"):
        quotes.answer_quote(quote=quote, accept=True, name="Rosa")


def test_pages(logged_in, client, workspace, deal):
    from django.test import Client

    response = logged_in.post(
        f"/deals/{deal.pk}/quotes/new/",
        {
            "title": "Machines",
            "contact": deal.contacts.get().pk,
            "valid_until": (timezone.localdate() + timedelta(days=10)).isoformat(),
            "lines-TOTAL_FORMS": "3",
            "lines-INITIAL_FORMS": "0",
            "lines-0-description": "Machine",
            "lines-0-quantity": "2",
            "lines-0-unit_price": "1200",
            "lines-0-tax_percent": "19",
            "lines-1-description": "Training",
            "lines-1-quantity": "1",
            "lines-1-unit_price": "300",
            "lines-1-discount_percent": "50",
        },
    )
    quote = Quote.objects.for_workspace(workspace).get()
    assert response.url == f"/quotes/{quote.pk}/"
    page = logged_in.get(f"/quotes/{quote.pk}/").content.decode()
    assert "$3,006.00" in page  # 2400 + 456 tax + 150
    assert "Q-" in logged_in.get(f"/deals/{deal.pk}/").content.decode()
    missing_price = logged_in.post(
        f"/quotes/{quote.pk}/edit/",
        {
            "title": "Machines",
            "contact": deal.contacts.get().pk,
            "valid_until": quote.valid_until.isoformat(),
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-0-description": "Machine",
        },
    )
    assert "needs a quantity and a unit price" in missing_price.content.decode()
    logged_in.post(f"/quotes/{quote.pk}/send/")
    token = quotes.token_for(quote)
    customer = Client(enforce_csrf_checks=True)
    public = customer.get(f"/q/{token}/")
    assert public.status_code == 200 and "Accept this quote" in public.content.decode()
    assert customer.get(f"/q/{token}x/").status_code == 404
    csrf = customer.cookies["csrftoken"].value
    customer.post(
        f"/q/{token}/", {"answer": "decline", "reason": "Too pricey", "csrfmiddlewaretoken": csrf}
    )
    quote.refresh_from_db()
    assert quote.status == "declined" and quote.decline_reason == "Too pricey"
    assert "Declined on" in customer.get(f"/q/{token}/").content.decode()
    draft = make_quote(deal)
    assert customer.get(f"/q/{quotes.token_for(draft)}/").status_code == 404  # not sent yet


def test_quotes_of_another_workspace_are_out_of_reach(logged_in, deal):
    other = make_quote(DealFactory(workspace=WorkspaceFactory()))
    assert logged_in.get(f"/quotes/{other.pk}/").status_code == 404
    assert logged_in.post(f"/quotes/{other.pk}/send/").status_code == 404
