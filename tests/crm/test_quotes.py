"""Quotes: totals, numbering, the life of a quote, tokens and expiry (crm/quotes.py)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from hypothesis import given
from hypothesis import strategies as st

from patron.activity.models import Event
from patron.core.models import Notification
from patron.crm import quotes
from patron.crm.models import Quote, QuoteCounter, QuoteLine, QuoteStatus, workspace_today
from patron.crm.services import CrossWorkspaceReference
from patron.mail.models import OutboxMessage
from tests.factories import (
    ContactFactory,
    DealFactory,
    WorkspaceFactory,
    make_quote,
)


def line(quantity, price, discount="0", tax="0"):
    return QuoteLine(
        quantity=Decimal(quantity),
        unit_price=Decimal(price),
        discount_percent=Decimal(discount),
        tax_percent=Decimal(tax),
    )


# --- Totals --------------------------------------------------------------------------------


def test_totals_round_each_line_half_up_to_cents():
    amounts = quotes.line_amounts(line("3", "19.99", discount="10", tax="19"))
    assert amounts.gross == Decimal("59.97")
    assert amounts.discount == Decimal("6.00")  # 5.997 -> 6.00
    assert amounts.net == Decimal("53.97")
    assert amounts.tax == Decimal("10.25")  # 10.2543 -> 10.25
    assert amounts.total == Decimal("64.22")
    half = quotes.line_amounts(line("1", "0.05", tax="50"))
    assert half.tax == Decimal("0.03")  # 0.025 rounds half up, not to the even 0.02
    gross = quotes.line_amounts(line("0.5", "0.25"))
    assert gross.gross == Decimal("0.13")  # 0.125 -> 0.13
    total = quotes.totals([line("3", "19.99", "10", "19"), line("2", "100", tax="7")])
    assert (total.subtotal, total.discount, total.tax, total.total) == (
        Decimal("259.97"),
        Decimal("6.00"),
        Decimal("24.25"),
        Decimal("278.22"),
    )


def test_totals_add_up_line_by_line_not_from_the_unrounded_sum():
    # Three lines of 0.333... tax each: rounded per line 3 x 0.33, not 1.00 on the sum.
    lines = [line("1", "3.33", tax="10")] * 3
    assert quotes.totals(lines).tax == Decimal("0.99")
    assert quotes.totals([]).total == Decimal("0.00")


money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
percent = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False)
quantity = st.decimals(min_value=Decimal("0.01"), max_value=10**6, places=2, allow_nan=False)


@given(st.lists(st.tuples(quantity, money, percent, percent), min_size=1, max_size=8))
def test_totals_are_cents_and_consistent(rows):
    lines = [line(q, p, d, t) for q, p, d, t in rows]
    total = quotes.totals(lines)
    for value in (total.subtotal, total.discount, total.tax, total.total):
        assert value == value.quantize(Decimal("0.01"))
    assert total.total == total.subtotal - total.discount + total.tax
    assert total.total == sum((quotes.line_amounts(each).total for each in lines), Decimal(0))
    assert Decimal(0) <= total.discount <= total.subtotal


# --- Numbering -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_numbers_count_up_per_workspace_and_year(workspace):
    assert quotes.next_number(workspace, 2026) == "Q-2026-0001"
    assert quotes.next_number(workspace, 2026) == "Q-2026-0002"
    assert quotes.next_number(workspace, 2027) == "Q-2027-0001"
    assert quotes.next_number(WorkspaceFactory(), 2026) == "Q-2026-0001"
    counter = QuoteCounter.objects.for_workspace(workspace).get(year=2026)
    assert counter.last_number == 2


@pytest.mark.django_db
def test_the_year_of_a_number_is_the_workspaces(workspace):
    """At 11:00 UTC on New Year's Eve it is already the new year in Kiritimati (UTC+14)."""
    workspace.time_zone = "Pacific/Kiritimati"
    workspace.save()
    deal = DealFactory(workspace=workspace)
    eve = datetime(2026, 12, 31, 11, 0, tzinfo=UTC)
    with mock.patch("django.utils.timezone.now", return_value=eve):
        quote = make_quote(deal, valid_until=date(2027, 1, 31))
    assert quote.number == "Q-2027-0001"


@pytest.mark.django_db
def test_bad_input_uses_no_number(workspace):
    deal = DealFactory(workspace=workspace)
    with pytest.raises(quotes.QuoteInvalid):
        make_quote(deal, lines=[])
    assert make_quote(deal).number.endswith("-0001")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_quotes_never_share_a_number():
    """Real concurrency: eight connections take numbers at once, the first of the year too."""
    if not settings.IS_POSTGRES:
        pytest.skip("SQLite has one writer at a time: there is nothing to race")
    workspace = WorkspaceFactory()
    start = threading.Barrier(8)
    taken: list[str] = []
    errors: list[BaseException] = []

    def take_numbers() -> None:
        try:
            start.wait(10)
            for _ in range(5):
                with transaction.atomic():
                    taken.append(quotes.next_number(workspace.pk, 2026))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=take_numbers) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(taken) == [f"Q-2026-{n:04d}" for n in range(1, 41)]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_second_quote_waits_for_the_first_to_commit():
    """The counter row stays locked until the transaction that took a number ends."""
    if not settings.IS_POSTGRES:
        pytest.skip("SQLite has one writer at a time: there is nothing to lock")
    workspace = WorkspaceFactory()
    quotes.next_number(workspace, 2026)  # the counter row exists
    holding, release, finished = threading.Event(), threading.Event(), threading.Event()
    first: list[str] = []

    def slow() -> None:
        try:
            with transaction.atomic():
                first.append(quotes.next_number(workspace.pk, 2026))
                holding.set()
                assert release.wait(10)
        finally:
            connection.close()
            finished.set()

    thread = threading.Thread(target=slow)
    thread.start()
    assert holding.wait(10)
    second: list[str] = []

    def fast() -> None:
        try:
            second.append(quotes.next_number(workspace.pk, 2026))
        finally:
            connection.close()

    waiting = threading.Thread(target=fast)
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and second == []  # blocked on the locked counter
    release.set()
    waiting.join(10)
    thread.join(10)
    assert first == ["Q-2026-0002"] and second == ["Q-2026-0003"]


# --- The life of a quote -------------------------------------------------------------------


@pytest.fixture
def deal(workspace, owner):
    deal = DealFactory(workspace=workspace, name="Espresso machines", owner=owner, currency="EUR")
    deal.contacts.add(
        ContactFactory(workspace=workspace, first_name="Rosa", email="rosa@cafe.example")
    )
    return deal


def sent_quote(deal, **values):
    quote = make_quote(deal, **values)
    return quotes.send_quote(quote=quote)


def deal_events(workspace, deal):
    return list(
        Event.objects.for_workspace(workspace)
        .filter(source_type="crm.deal", source_id=str(deal.pk))
        .order_by("id")
        .values_list("kind", flat=True)
    )


@pytest.mark.django_db
def test_create_send_view_and_accept(workspace, owner, deal):
    quote = make_quote(
        deal,
        actor=owner,
        lines=[
            {"description": "Machine", "quantity": 2, "unit_price": "1200", "tax_percent": 19},
            {"description": "", "quantity": 1, "unit_price": 1},  # empty: left out
        ],
    )
    assert quote.contact.first_name == "Rosa" and quote.lines.count() == 1
    assert quote.currency == "EUR" and quote.status == QuoteStatus.DRAFT
    quotes.send_quote(quote=quote, actor=owner)
    message = OutboxMessage.objects.filter(workspace=workspace).get()
    assert message.to == ["rosa@cafe.example"] and quote.number in message.subject
    link = re.search(r"http\S+/q/\S+/", message.text_body).group(0)
    assert link.startswith(settings.BASE_URL)
    assert f"/{quote.pk}/" not in link.removeprefix(settings.BASE_URL)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert quotes.quote_for_token(token) == quote
    assert "2,856.00" in message.text_body  # 2 x 1,200 + 19 % tax
    assert quotes.mark_viewed(quote=quote) is True
    assert quotes.mark_viewed(quote=quote) is False  # only the first view counts
    with pytest.raises(quotes.QuoteInvalid, match="Type your name"):
        quotes.answer_quote(quote=quote, accept=True, name=" ")
    accepted = quotes.answer_quote(
        quote=quote, accept=True, name="Rosa Diaz", ip_address="203.0.113.9", user_agent="Firefox"
    )
    assert accepted.status == QuoteStatus.ACCEPTED and accepted.answered_from_ip == "203.0.113.9"
    assert accepted.answered_by_name == "Rosa Diaz" and accepted.answered_user_agent == "Firefox"
    assert accepted.answered_at is not None
    assert deal_events(workspace, deal) == [
        "quote.created",
        "quote.sent",
        "quote.viewed",
        "quote.accepted",
    ]
    contact_kinds = Event.objects.for_workspace(workspace).filter(contact_id=quote.contact_id)
    assert contact_kinds.filter(kind="quote.accepted").exists()  # on the contact's timeline
    note = Notification.objects.for_workspace(workspace).get(user=owner)
    assert note.text == f"Rosa Diaz accepted quote {quote.number}"
    assert note.url == f"/quotes/{quote.pk}/"


@pytest.mark.django_db
def test_an_answered_quote_cannot_be_answered_again(workspace, owner, deal):
    quote = sent_quote(deal)
    quotes.answer_quote(quote=quote, accept=True, name="Rosa")
    with pytest.raises(quotes.QuoteInvalid, match="already been answered"):
        quotes.answer_quote(quote=quote, accept=True, name="Rosa")
    declined = sent_quote(deal)
    quotes.answer_quote(quote=declined, accept=False, name="", reason="Too pricey")
    with pytest.raises(quotes.QuoteInvalid, match="already been answered"):
        quotes.answer_quote(quote=declined, accept=True, name="Rosa")
    declined.refresh_from_db()
    assert declined.status == QuoteStatus.DECLINED and declined.decline_reason == "Too pricey"
    texts = set(Notification.objects.for_workspace(workspace).values_list("text", flat=True))
    contact = str(declined.contact)  # no name was typed: the contact's name
    assert f"{contact} declined quote {declined.number}" in texts
    with pytest.raises(quotes.QuoteInvalid, match="cannot be sent again"):
        quotes.send_quote(quote=declined)


@pytest.mark.django_db
def test_a_draft_cannot_be_answered(deal):
    with pytest.raises(quotes.QuoteInvalid, match="not been sent"):
        quotes.answer_quote(quote=make_quote(deal), accept=True, name="Rosa")


@pytest.mark.django_db
def test_an_expired_quote_cannot_be_accepted_or_sent(workspace, deal):
    quote = sent_quote(deal)
    Quote.objects.for_workspace(workspace).filter(pk=quote.pk).update(
        valid_until=workspace_today(workspace) - timedelta(days=1)
    )
    quote.refresh_from_db()
    assert quote.is_expired and quote.status == QuoteStatus.SENT  # before the hourly job
    with pytest.raises(quotes.QuoteInvalid, match="expired on"):
        quotes.answer_quote(quote=quote, accept=True, name="Rosa")
    with pytest.raises(quotes.QuoteInvalid, match="copy it as a new draft"):
        quotes.send_quote(quote=quote)
    assert quotes.expire_quotes() == 1
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.EXPIRED and quote.is_expired
    with pytest.raises(quotes.QuoteInvalid, match="expired on"):
        quotes.answer_quote(quote=quote, accept=False, name="")
    assert quotes.expire_quotes() == 0
    assert deal_events(workspace, deal)[-1] == "quote.expired"


@pytest.mark.django_db
def test_quotes_expire_after_their_last_day_where_the_workspace_is(deal):
    """Valid until the 10th: still valid on the 10th, expired on the 11th, local time."""
    valid_until = workspace_today(deal.workspace) + timedelta(days=5)
    quote = sent_quote(deal, valid_until=valid_until)
    on_the_day = datetime.combine(valid_until, datetime.min.time(), UTC) + timedelta(hours=23)
    with mock.patch("django.utils.timezone.now", return_value=on_the_day):
        assert quotes.expire_quotes() == 0
    deal.workspace.time_zone = "Pacific/Kiritimati"  # 14 hours ahead: already the next day
    deal.workspace.save()
    with mock.patch("django.utils.timezone.now", return_value=on_the_day):
        assert quotes.expire_quotes() == 1
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.EXPIRED


@pytest.mark.django_db
def test_a_sent_quote_cannot_change_or_be_deleted(workspace, deal):
    quote = sent_quote(deal)
    with pytest.raises(quotes.QuoteInvalid, match="can no longer change"):
        quotes.update_quote(quote=quote, title="Cheaper")
    with pytest.raises(quotes.QuoteInvalid, match="Only a draft"):
        quotes.delete_quote(quote=quote)
    assert Quote.objects.for_workspace(workspace).filter(pk=quote.pk).exists()


@pytest.mark.django_db
def test_a_draft_changes_and_is_deleted(workspace, deal):
    quote = make_quote(deal)
    other = ContactFactory(workspace=workspace, email="ana@cafe.example")
    quotes.update_quote(
        quote=quote,
        title="  Three machines ",
        contact=other,
        lines=[{"description": "Machine", "quantity": "3", "unit_price": "1200.00"}],
    )
    quote.refresh_from_db()
    assert quote.title == "Three machines" and quote.contact == other
    assert [(each.description, each.quantity) for each in quote.lines.all()] == [
        ("Machine", Decimal("3.00"))
    ]
    quotes.update_quote(quote=quote, terms="Payable in 30 days")  # the rest is kept
    quote.refresh_from_db()
    assert quote.terms == "Payable in 30 days" and quote.lines.count() == 1
    quotes.delete_quote(quote=quote)
    assert not Quote.objects.for_workspace(workspace).exists()
    assert not QuoteLine.objects.for_workspace(workspace).exists()


@pytest.mark.django_db
def test_copy_makes_a_new_draft_with_the_same_lines(workspace, owner, deal):
    quote = sent_quote(deal, terms="Net 30")
    quotes.answer_quote(quote=quote, accept=False, name="", reason="Too pricey")
    Quote.objects.for_workspace(workspace).filter(pk=quote.pk).update(
        valid_until=workspace_today(workspace) - timedelta(days=3)
    )
    quote.refresh_from_db()
    copy = quotes.copy_quote(quote=quote, actor=owner)
    assert copy.pk != quote.pk and copy.number != quote.number
    assert copy.status == QuoteStatus.DRAFT and copy.terms == "Net 30"
    assert copy.contact == quote.contact and copy.created_by == owner
    assert copy.valid_until == workspace_today(workspace) + quotes.DEFAULT_VALIDITY
    assert quotes.totals(list(copy.lines.all())) == quotes.totals(list(quote.lines.all()))


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"title": "  "}, "title", "title"),
        ({"valid_until": date(2020, 1, 1)}, "valid_until", "past"),
        ({"lines": [{"description": "X", "quantity": 0, "unit_price": 1}]}, "lines", "quantity"),
        ({"lines": [{"description": "X", "quantity": 1, "unit_price": -1}]}, "lines", "negative"),
        ({"lines": [{"description": "X", "unit_price": "abc"}]}, "lines", "not a number"),
        ({"lines": [{"description": "X", "unit_price": "NaN"}]}, "lines", "not a number"),
        ({"lines": [{"description": "X", "unit_price": "1.005"}]}, "lines", "two decimals"),
        ({"lines": [{"description": "X", "unit_price": 1, "tax_percent": 101}]}, "lines", "100"),
        ({"lines": [{"description": "X", "unit_price": 10**13}]}, "lines", "too large"),
        ({"lines": [{"description": "L", "unit_price": 1}] * 101}, "lines", "100 lines"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_refused_with_a_message(deal, values, field, message):
    with pytest.raises(quotes.QuoteInvalid, match=message) as refused:
        make_quote(deal, **values)
    assert refused.value.field == field
    assert not Quote.objects.for_workspace(deal.workspace).exists()


@pytest.mark.django_db
def test_a_contact_of_another_workspace_is_refused(deal):
    stranger = ContactFactory(workspace=WorkspaceFactory(), email="x@example.com")
    with pytest.raises(CrossWorkspaceReference):
        make_quote(deal, contact=stranger)
    quote = make_quote(deal)
    with pytest.raises(CrossWorkspaceReference):
        quotes.update_quote(quote=quote, contact=stranger)


@pytest.mark.django_db
def test_a_quote_needs_a_contact_with_an_email_to_be_sent(workspace):
    deal = DealFactory(workspace=workspace)
    quote = make_quote(deal, contact=ContactFactory(workspace=workspace, email=""))
    with pytest.raises(quotes.QuoteInvalid, match="email address") as refused:
        quotes.send_quote(quote=quote)
    assert refused.value.field == "contact"
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DRAFT and not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_no_notification_without_a_deal_owner(workspace):
    deal = DealFactory(workspace=workspace, owner=None)
    deal.contacts.add(ContactFactory(workspace=workspace, email="a@b.example"))
    quotes.answer_quote(quote=sent_quote(deal), accept=True, name="A")
    assert not Notification.objects.for_workspace(workspace).exists()


# --- Tokens --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tampered_or_foreign_tokens_name_no_quote(workspace, deal):
    quote = sent_quote(deal)
    token = quotes.token_for(quote)
    assert quotes.quote_for_token(token) == quote
    assert quotes.quote_for_token(token[:-2] + ("xx" if not token.endswith("xx") else "yy")) is None
    assert quotes.quote_for_token("") is None
    assert quotes.quote_for_token("not-a-token") is None
    payload = {"q": quote.pk, "w": workspace.pk}
    assert quotes.quote_for_token(signing.dumps(payload, salt="another.purpose")) is None
    assert quotes.quote_for_token(signing.dumps(payload)) is None  # no salt
    # Validly signed, but the quote is not in that workspace.
    other = WorkspaceFactory()
    foreign = signing.dumps({"q": quote.pk, "w": other.pk}, salt=quotes.TOKEN_SALT)
    assert quotes.quote_for_token(foreign) is None
    assert quotes.quote_for_token(signing.dumps({"q": "x"}, salt=quotes.TOKEN_SALT)) is None


@pytest.mark.django_db
def test_the_public_link_uses_the_base_url(settings, deal):
    settings.BASE_URL = "https://crm.example.com"
    quote = make_quote(deal)
    assert quotes.public_url(quote).startswith("https://crm.example.com/q/")
