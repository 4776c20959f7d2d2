"""Quote pages: the editor, the team's page, sending, and the customer's public page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import quotes
from patron.crm.models import Quote, QuoteStatus, workspace_today
from patron.mail.models import OutboxMessage
from tests.conftest import member
from tests.factories import ContactFactory, DealFactory, WorkspaceFactory, make_quote

pytestmark = pytest.mark.django_db


@pytest.fixture
def deal(workspace, owner):
    deal = DealFactory(workspace=workspace, name="Espresso machines", owner=owner)
    deal.contacts.add(
        ContactFactory(workspace=workspace, first_name="Rosa", email="rosa@cafe.example")
    )
    return deal


def editor_data(deal, lines, **fields):
    data = {
        "title": "Machines",
        "contact": deal.contacts.get().pk,
        "valid_until": (workspace_today(deal.workspace) + timedelta(days=10)).isoformat(),
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        **fields,
    }
    for index, values in enumerate(lines):
        for name, value in values.items():
            data[f"lines-{index}-{name}"] = value
    return data


TWO_LINES = [
    {"description": "Machine", "quantity": "2", "unit_price": "1200", "tax_percent": "19"},
    {"description": "Training", "quantity": "1", "unit_price": "300", "discount_percent": "50"},
]


def customer() -> Client:
    return Client(enforce_csrf_checks=True)


def answer(client: Client, token: str, **data):
    client.get(f"/q/{token}/")  # sets the CSRF cookie, as a browser would
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    return client.post(f"/q/{token}/", data)


def test_the_deal_page_offers_a_new_quote(logged_in, deal):
    page = logged_in.get(f"/deals/{deal.pk}/").content.decode()
    assert f'href="/deals/{deal.pk}/quotes/new/"' in page and "No quotes yet." in page


def test_create_a_quote_with_lines_and_see_its_totals(logged_in, workspace, deal):
    form = logged_in.get(f"/deals/{deal.pk}/quotes/new/").content.decode()
    assert 'name="lines-TOTAL_FORMS" value="1"' in form
    assert "lines-__prefix__-description" in form  # the template "Add a line" copies
    assert "patron/quotes.js" in form and "<script>" not in form
    response = logged_in.post(f"/deals/{deal.pk}/quotes/new/", editor_data(deal, TWO_LINES))
    quote = Quote.objects.for_workspace(workspace).get()
    assert response.status_code == 302 and response.url == f"/quotes/{quote.pk}/"
    assert [line.description for line in quote.lines.all()] == ["Machine", "Training"]
    page = logged_in.get(f"/quotes/{quote.pk}/").content.decode()
    assert "$2,700.00" in page  # subtotal 2,400 + 300
    assert "\N{MINUS SIGN}$150.00" in page  # the training's 50 %
    assert "$456.00" in page  # 19 % of 2,400
    assert '<td class="text-end fw-bold" id="quote-total">$3,006.00</td>' in page
    deal_page = logged_in.get(f"/deals/{deal.pk}/").content.decode()
    assert quote.number in deal_page and "$3,006.00" in deal_page
    assert "Quote created" in deal_page


def test_the_deal_page_lists_quotes_in_a_fixed_number_of_queries(
    logged_in, deal, django_assert_num_queries
):
    make_quote(deal)
    logged_in.get(f"/deals/{deal.pk}/")  # the session and caches are warm from here on
    with CaptureQueriesContext(connection) as one_quote:
        logged_in.get(f"/deals/{deal.pk}/")
    for _ in range(3):
        make_quote(deal)
    with django_assert_num_queries(len(one_quote)):
        page = logged_in.get(f"/deals/{deal.pk}/").content.decode()
    assert page.count("$3,006.00") == 4


def test_remove_and_add_lines_while_editing_a_draft(logged_in, workspace, deal):
    quote = make_quote(deal)
    form = logged_in.get(f"/quotes/{quote.pk}/edit/").content.decode()
    assert 'value="Machine"' in form and 'value="Training"' in form
    data = editor_data(
        deal,
        [
            {**TWO_LINES[0], "DELETE": "on"},
            TWO_LINES[1],
            {"description": "Grinder", "quantity": "1", "unit_price": "450"},
        ],
        title="Training and a grinder",
    )
    data["lines-INITIAL_FORMS"] = "2"
    response = logged_in.post(f"/quotes/{quote.pk}/edit/", data)
    assert response.status_code == 302
    quote.refresh_from_db()
    assert quote.title == "Training and a grinder"
    assert [line.description for line in quote.lines.all()] == ["Training", "Grinder"]
    assert quotes.totals(list(quote.lines.all())).total == 600  # 150 + 450


def test_the_editor_explains_what_is_wrong(logged_in, workspace, deal):
    missing_price = logged_in.post(
        f"/deals/{deal.pk}/quotes/new/",
        editor_data(deal, [{"description": "Machine"}]),
    )
    assert "A line needs a quantity and a unit price." in missing_price.content.decode()
    no_description = logged_in.post(
        f"/deals/{deal.pk}/quotes/new/", editor_data(deal, [{"quantity": "1", "unit_price": "5"}])
    )
    assert "A line needs a description." in no_description.content.decode()
    no_lines = logged_in.post(f"/deals/{deal.pk}/quotes/new/", editor_data(deal, [{}]))
    assert "Add at least one line." in no_lines.content.decode()
    past = logged_in.post(
        f"/deals/{deal.pk}/quotes/new/",
        editor_data(deal, TWO_LINES, valid_until="2020-01-01"),
    )
    assert "The validity date cannot be in the past." in past.content.decode()
    too_precise = logged_in.post(
        f"/deals/{deal.pk}/quotes/new/",
        editor_data(deal, [{"description": "X", "quantity": "1", "unit_price": "1.005"}]),
    )
    assert too_precise.status_code == 200 and "decimal" in too_precise.content.decode()
    escaped = logged_in.post(
        f"/deals/{deal.pk}/quotes/new/",
        editor_data(deal, [{"description": "<b>x</b>"}], title="<script>alert(1)</script>"),
    )
    assert "<script>alert(1)</script>" not in escaped.content.decode()
    assert not Quote.objects.for_workspace(workspace).exists()


def test_a_sent_quote_cannot_be_edited_but_can_be_copied(logged_in, workspace, deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    edit = logged_in.get(f"/quotes/{quote.pk}/edit/", follow=True)
    assert "can no longer change" in edit.content.decode()
    post = logged_in.post(f"/quotes/{quote.pk}/edit/", editor_data(deal, TWO_LINES, title="X"))
    assert post.status_code == 302
    quote.refresh_from_db()
    assert quote.title != "X"
    detail = logged_in.get(f"/quotes/{quote.pk}/").content.decode()
    assert f'action="/quotes/{quote.pk}/copy/"' in detail
    assert f'href="/quotes/{quote.pk}/edit/"' not in detail
    copied = logged_in.post(f"/quotes/{quote.pk}/copy/")
    copy = Quote.objects.for_workspace(workspace).exclude(pk=quote.pk).get()
    assert copied.url == f"/quotes/{copy.pk}/edit/" and copy.status == QuoteStatus.DRAFT
    assert copy.lines.count() == 2


def test_delete_a_draft_but_not_a_sent_quote(logged_in, workspace, deal):
    draft = make_quote(deal)
    sent = quotes.send_quote(quote=make_quote(deal))
    assert logged_in.get(f"/quotes/{draft.pk}/delete/").status_code == 405
    response = logged_in.post(f"/quotes/{draft.pk}/delete/")
    assert response.url == f"/deals/{deal.pk}/"
    refused = logged_in.post(f"/quotes/{sent.pk}/delete/", follow=True)
    assert "Only a draft quote can be deleted." in refused.content.decode()
    remaining = Quote.objects.for_workspace(workspace).values_list("pk", flat=True)
    assert list(remaining) == [sent.pk]


def test_send_emails_the_link_and_records_it(logged_in, workspace, owner, deal):
    quote = make_quote(deal)
    response = logged_in.post(f"/quotes/{quote.pk}/send/", follow=True)
    assert "Quote sent to rosa@cafe.example." in response.content.decode()
    message = OutboxMessage.objects.filter(workspace=workspace).get()
    # The signed link carries the moment it was signed: compare what it opens.
    prefix = re.escape(settings.BASE_URL + "/q/")
    text_links = re.findall(prefix + r"([^/\s]+)/", message.text_body)
    html_links = re.findall(prefix + r"([^/\s\"]+)/", message.html_body)
    assert text_links and html_links
    assert {quotes.quote_for_token(token) for token in text_links + html_links} == {quote}
    sent = Event.objects.for_workspace(workspace).get(kind="quote.sent")
    assert sent.actor == owner and sent.properties["to"] == "rosa@cafe.example"
    detail = logged_in.get(f"/quotes/{quote.pk}/").content.decode()
    assert "Send again" in detail
    shown = re.findall(r"href=\"[^\"]*/q/([^/\"]+)/\"", detail)
    assert shown and {quotes.quote_for_token(token) for token in shown} == {quote}


def test_sending_without_an_email_says_so(logged_in, workspace, deal):
    quote = make_quote(deal, contact=ContactFactory(workspace=workspace, email=""))
    response = logged_in.post(f"/quotes/{quote.pk}/send/", follow=True)
    assert "Address the quote to a contact with an email address." in response.content.decode()
    assert not OutboxMessage.objects.exists()


def test_who_may_see_and_change_quotes(client, workspace, deal):
    quote = make_quote(deal)
    for role in (Role.AGENCY, Role.SUPPORT):  # no access to deals
        client.force_login(member(workspace, role))
        assert client.get(f"/quotes/{quote.pk}/").status_code == 403
        assert client.get(f"/deals/{deal.pk}/quotes/new/").status_code == 403
    client.force_login(member(workspace, Role.MARKETING))  # sees deals, changes none
    page = client.get(f"/quotes/{quote.pk}/").content.decode()
    assert quote.number in page and "Send to the contact" not in page
    for action in ("send", "copy", "delete", "edit"):
        assert client.post(f"/quotes/{quote.pk}/{action}/").status_code == 403
    client.force_login(member(workspace, Role.SALES))
    assert client.post(f"/quotes/{quote.pk}/send/").status_code == 302
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.SENT


def test_quotes_of_another_workspace_are_out_of_reach(logged_in, deal):
    other = make_quote(DealFactory(workspace=WorkspaceFactory()))
    assert logged_in.get(f"/quotes/{other.pk}/").status_code == 404
    assert logged_in.post(f"/quotes/{other.pk}/send/").status_code == 404
    assert logged_in.post(f"/quotes/{other.pk}/copy/").status_code == 404
    assert logged_in.post(f"/quotes/{other.pk}/delete/").status_code == 404


# --- The customer's page -------------------------------------------------------------------


def test_the_public_page_is_a_numbered_document(workspace, deal):
    quote = quotes.send_quote(quote=make_quote(deal, terms="Payable within 30 days."))
    response = customer().get(f"/q/{quotes.token_for(quote)}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert workspace.name in page and quote.number in page and "Payable within 30 days." in page
    assert "$3,006.00" in page and "Machine" in page and "Training" in page
    assert "Accept this quote" in page and "Decline" in page
    assert 'name="csrfmiddlewaretoken"' in page and "<script>" not in page
    assert response.headers["Cache-Control"].startswith("max-age=0")
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_first_view_is_recorded_once_and_not_for_the_team(logged_in, workspace, deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    token = quotes.token_for(quote)
    logged_in.get(f"/q/{token}/")  # the salesperson checks the link
    assert not Event.objects.for_workspace(workspace).filter(kind="quote.viewed").exists()
    visitor = customer()
    visitor.get(f"/q/{token}/")
    visitor.get(f"/q/{token}/")
    assert Event.objects.for_workspace(workspace).filter(kind="quote.viewed").count() == 1


def test_accept_from_the_public_page(workspace, owner, deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    token = quotes.token_for(quote)
    visitor = customer()
    nameless = answer(visitor, token, answer="accept", name=" ")
    assert nameless.status_code == 400 and "Type your name to accept." in nameless.content.decode()
    accepted = answer(visitor, token, answer="accept", name="Rosa Diaz")
    assert accepted.status_code == 302
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.ACCEPTED and quote.answered_by_name == "Rosa Diaz"
    assert quote.answered_from_ip == "127.0.0.1"
    page = visitor.get(f"/q/{token}/").content.decode()
    assert "Accepted by Rosa Diaz" in page and "Accept this quote" not in page
    again = answer(visitor, token, answer="decline")
    assert again.status_code == 400 and "Accepted by Rosa Diaz" in again.content.decode()
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.ACCEPTED


def test_decline_with_a_reason(workspace, deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    token = quotes.token_for(quote)
    answer(customer(), token, answer="decline", reason="Too pricey")
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DECLINED and quote.decline_reason == "Too pricey"
    assert "Declined on" in customer().get(f"/q/{token}/").content.decode()


def test_an_unknown_answer_changes_nothing(deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    response = answer(customer(), quotes.token_for(quote), answer="maybe", name="Rosa")
    assert response.status_code == 400
    assert "Choose to accept or to decline the quote." in response.content.decode()
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.SENT


def test_answers_need_the_csrf_token(deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    refused = customer().post(f"/q/{quotes.token_for(quote)}/", {"answer": "accept", "name": "R"})
    assert refused.status_code == 403
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.SENT


def test_an_expired_quote_says_so_and_cannot_be_accepted(workspace, deal):
    quote = quotes.send_quote(quote=make_quote(deal))
    token = quotes.token_for(quote)
    visitor = customer()
    visitor.get(f"/q/{token}/")  # opened while it was still valid
    csrf = visitor.cookies["csrftoken"].value
    Quote.objects.for_workspace(workspace).filter(pk=quote.pk).update(
        valid_until=workspace_today(workspace) - timedelta(days=1)
    )
    page = customer().get(f"/q/{token}/").content.decode()
    assert "This quote expired on" in page and "Accept this quote" not in page
    refused = visitor.post(
        f"/q/{token}/",
        {"answer": "accept", "name": "Rosa", "csrfmiddlewaretoken": csrf},
    )
    assert refused.status_code == 400 and "This quote expired on" in refused.content.decode()
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.SENT and quote.answered_at is None


def test_tampered_tokens_and_drafts_are_not_found(deal):
    draft = make_quote(deal)
    assert customer().get(f"/q/{quotes.token_for(draft)}/").status_code == 404  # not sent yet
    sent = quotes.send_quote(quote=make_quote(deal))
    token = quotes.token_for(sent)
    assert customer().get(f"/q/{token}x/").status_code == 404
    assert customer().get(f"/q/{token[:-3]}abc/").status_code == 404
    assert customer().get(f"/q/{sent.pk}/").status_code == 404
    visitor = customer()
    visitor.get(f"/q/{token}/")
    csrf = visitor.cookies["csrftoken"].value
    forged = visitor.post(
        f"/q/{token}x/",
        {"answer": "accept", "name": "M", "csrfmiddlewaretoken": csrf},
    )
    assert forged.status_code == 404


def test_the_public_page_speaks_the_workspaces_language(workspace, deal):
    other = "id"  # one of settings.LANGUAGES besides English
    quote = quotes.send_quote(quote=make_quote(deal))
    workspace.language = other
    workspace.save()
    response = customer().get(f"/q/{quotes.token_for(quote)}/", HTTP_ACCEPT_LANGUAGE="en")
    assert f'lang="{other}"' in response.content.decode()


def test_the_editor_keeps_a_contact_from_outside_the_deal(logged_in, workspace, deal):
    outsider = ContactFactory(workspace=workspace, first_name="Ana", email="ana@other.example")
    stranger = ContactFactory(workspace=WorkspaceFactory(), first_name="Zed")
    quote = make_quote(deal, contact=outsider)
    form = logged_in.get(f"/quotes/{quote.pk}/edit/").content.decode()
    assert f'<option value="{outsider.pk}" selected>' in form
    assert f'<option value="{stranger.pk}"' not in form
    data = editor_data(deal, TWO_LINES, contact=str(outsider.pk))
    assert logged_in.post(f"/quotes/{quote.pk}/edit/", data).status_code == 302
    refused = logged_in.post(
        f"/quotes/{quote.pk}/edit/", editor_data(deal, TWO_LINES, contact=str(stranger.pk))
    )
    assert "Select a valid choice" in refused.content.decode()
    quote.refresh_from_db()
    assert quote.contact == outsider
