"""The quotes API: /api/v1/quotes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.crm import quotes
from patron.crm.models import Quote, QuoteStatus, workspace_today
from patron.mail.models import OutboxMessage
from tests.factories import ContactFactory, DealFactory, WorkspaceFactory, make_quote

pytestmark = pytest.mark.django_db


@pytest.fixture
def deal(workspace):
    deal = DealFactory(workspace=workspace, currency="EUR")
    deal.contacts.add(ContactFactory(workspace=workspace, email="buyer@example.com"))
    return deal


def later(workspace, days=30) -> str:
    return (workspace_today(workspace) + timedelta(days=days)).isoformat()


LINES = [
    {"description": "Seats", "quantity": "3", "unit_price": "10.00", "tax_percent": "10"},
    {"description": "Setup", "quantity": "1", "unit_price": "99.99", "discount_percent": "15"},
]


def test_create_with_lines_and_read_the_totals(api, workspace, deal):
    created = api.post(
        "/api/v1/quotes",
        {"deal_id": deal.pk, "title": "Offer", "valid_until": later(workspace), "lines": LINES},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["number"].startswith("Q-") and body["status"] == "draft"
    assert body["currency"] == "EUR" and body["contact_id"] == deal.contacts.get().pk
    # 30.00 + 3.00 tax; 99.99 - 15.00 (14.9985 rounded) = 84.99
    assert [line["amount"] for line in body["lines"]] == ["30.00", "84.99"]
    assert body["subtotal"] == "129.99" and body["discount_total"] == "15.00"
    assert body["tax_total"] == "3.00" and body["total"] == "117.99"
    fetched = api.get(f"/api/v1/quotes/{body['id']}").json()
    assert fetched == body


def test_list_filters_by_deal_contact_and_status(api, workspace, deal, django_assert_num_queries):
    first = make_quote(deal)
    sent = quotes.send_quote(quote=make_quote(deal))
    other_deal = DealFactory(workspace=workspace)
    elsewhere = make_quote(other_deal, contact=ContactFactory(workspace=workspace))
    make_quote(DealFactory(workspace=WorkspaceFactory()))  # another workspace's

    def ids(**params):
        return [quote["id"] for quote in api.get("/api/v1/quotes", **params).json()["items"]]

    assert ids() == [elsewhere.pk, sent.pk, first.pk]
    assert ids(deal_id=deal.pk) == [sent.pk, first.pk]
    assert ids(contact_id=elsewhere.contact_id) == [elsewhere.pk]
    assert ids(status="sent") == [sent.pk]
    assert ids(status="draft", deal_id=deal.pk) == [first.pk]
    assert api.get("/api/v1/quotes", status="maybe").status_code == 422
    page = api.get("/api/v1/quotes", limit=2).json()
    rest = api.get("/api/v1/quotes", limit=2, cursor=page["next_cursor"]).json()
    assert [q["id"] for q in page["items"] + rest["items"]] == [elsewhere.pk, sent.pk, first.pk]
    api.get("/api/v1/quotes")  # the key's last use is written on the first request
    with django_assert_num_queries(3):  # the key, the quotes, their lines
        assert len(api.get("/api/v1/quotes").json()["items"]) == 3


def test_a_sent_quote_past_its_date_is_listed_as_expired(api, workspace, deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    Quote.objects.for_workspace(workspace).filter(pk=quote.pk).update(
        valid_until=workspace_today(workspace) - timedelta(days=1)
    )
    assert api.get(f"/api/v1/quotes/{quote.pk}").json()["status"] == "expired"
    assert [q["id"] for q in api.get("/api/v1/quotes", status="expired").json()["items"]] == [
        quote.pk
    ]
    assert api.get("/api/v1/quotes", status="sent").json()["items"] == []


def test_update_a_draft_only(api, workspace, deal):
    quote = make_quote(deal)
    other = ContactFactory(workspace=workspace, email="other@example.com")
    changed = api.patch(
        f"/api/v1/quotes/{quote.pk}",
        {"title": "New title", "contact_id": other.pk, "lines": LINES[:1]},
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["title"] == "New title" and body["contact_id"] == other.pk
    assert [line["description"] for line in body["lines"]] == ["Seats"]
    assert body["valid_until"] == quote.valid_until.isoformat()  # left alone
    assert body["total"] == "33.00"
    null = api.patch(f"/api/v1/quotes/{quote.pk}", {"title": None})
    assert null.status_code == 422 and "title" in null.json()["error"]["fields"]
    past = api.patch(f"/api/v1/quotes/{quote.pk}", {"valid_until": "2020-01-01"})
    assert past.status_code == 422 and "valid_until" in past.json()["error"]["fields"]
    api.post(f"/api/v1/quotes/{quote.pk}/send")
    refused = api.patch(f"/api/v1/quotes/{quote.pk}", {"title": "Sneaky"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    assert "copy it as a new draft" in refused.json()["error"]["message"]
    quote.refresh_from_db()
    assert quote.title == "New title"


def test_bad_input_gets_field_errors(api, workspace, deal):
    def create(**values):
        payload = {
            "deal_id": deal.pk,
            "title": "Offer",
            "valid_until": later(workspace),
            "lines": LINES,
            **values,
        }
        response = api.post("/api/v1/quotes", payload)
        assert response.status_code == 422, response.content
        return response.json()["error"]

    assert "lines" in create(lines=[])["fields"]
    assert create(lines=[{**LINES[0], "quantity": "0"}])
    assert create(lines=[{**LINES[0], "unit_price": "1.001"}])
    assert create(lines=[{**LINES[0], "tax_percent": "120"}])
    assert "valid_until" in create(valid_until="2020-01-01")["fields"]
    foreign_deal = DealFactory(workspace=WorkspaceFactory())
    assert "deal_id" in create(deal_id=foreign_deal.pk)["fields"]
    foreign_contact = ContactFactory(workspace=WorkspaceFactory())
    assert "contact_id" in create(contact_id=foreign_contact.pk)["fields"]
    assert not Quote.objects.for_workspace(workspace).exists()


def test_send_copy_and_delete(api, workspace, deal):
    quote = make_quote(deal)
    sent = api.post(f"/api/v1/quotes/{quote.pk}/send")
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    assert OutboxMessage.objects.filter(workspace=workspace, to=["buyer@example.com"]).exists()
    assert api.delete(f"/api/v1/quotes/{quote.pk}").status_code == 409
    copied = api.post(f"/api/v1/quotes/{quote.pk}/copy")
    assert copied.status_code == 201
    copy = copied.json()
    assert copy["status"] == "draft" and copy["number"] != sent.json()["number"]
    assert copy["total"] == sent.json()["total"]
    assert api.delete(f"/api/v1/quotes/{copy['id']}").status_code == 204
    assert api.get(f"/api/v1/quotes/{copy['id']}").status_code == 404
    quotes.answer_quote(quote=quote, accept=True, name="Buyer")
    again = api.post(f"/api/v1/quotes/{quote.pk}/send")
    assert again.status_code == 409 and "cannot be sent again" in again.json()["error"]["message"]


def test_sending_without_an_email_is_refused(api, workspace):
    deal = DealFactory(workspace=workspace)
    quote = make_quote(deal, contact=ContactFactory(workspace=workspace, email=""))
    refused = api.post(f"/api/v1/quotes/{quote.pk}/send")
    assert refused.status_code == 422 and "contact" in refused.json()["error"]["fields"]
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DRAFT


def test_another_workspaces_quotes_are_not_found(api):
    foreign = make_quote(DealFactory(workspace=WorkspaceFactory()))
    assert api.get(f"/api/v1/quotes/{foreign.pk}").status_code == 404
    assert api.patch(f"/api/v1/quotes/{foreign.pk}", {"title": "X"}).status_code == 404
    assert api.post(f"/api/v1/quotes/{foreign.pk}/send").status_code == 404
    assert api.post(f"/api/v1/quotes/{foreign.pk}/copy").status_code == 404
    assert api.delete(f"/api/v1/quotes/{foreign.pk}").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == QuoteStatus.DRAFT and foreign.title != "X"
