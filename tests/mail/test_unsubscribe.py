"""Unsubscribing from all mail of a workspace: the service, the page, RFC 8058 one-click."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from patron.activity.models import Event
from patron.audience import lists, suppression
from patron.audience.models import (
    ConsentRecord,
    ConsentSource,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from patron.core.services import RequestInfo
from patron.mail import links, tokens, unsubscribe
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def contact(workspace):
    return ContactFactory(workspace=workspace, first_name="Ann", email="Ann.Lee@Example.org")


@pytest.fixture
def newsletter(workspace, owner):
    return lists.create_list(workspace=workspace, name="Newsletter", actor=owner)


@pytest.fixture
def offers(workspace, owner):
    return lists.create_list(workspace=workspace, name="Offers", actor=owner)


@pytest.fixture
def subscribed(contact, newsletter, offers):
    manual = lists.Consent(source=ConsentSource.MANUAL)
    lists.subscribe(mailing_list=newsletter, contact=contact, consent=manual)
    lists.subscribe(mailing_list=offers, contact=contact, consent=manual)
    return contact


def path_of(contact, campaign_id=0) -> str:
    return urlsplit(links.unsubscribe_url(contact.workspace_id, contact.pk, campaign_id)).path


def statuses(contact) -> dict[str, str]:
    rows = Subscription.objects.for_workspace(contact.workspace_id).filter(contact=contact)
    return {row.mailing_list.name: row.status for row in rows.select_related("mailing_list")}


def unsubscribe_events(contact):
    return list(
        Event.objects.for_workspace(contact.workspace_id).filter(
            kind="email.unsubscribed", contact_id=contact.pk
        )
    )


def test_the_url_is_absolute_and_signed_for_workspace_contact_and_campaign(contact):
    url = links.unsubscribe_url(contact.workspace_id, contact.pk, 42)
    assert url.startswith(settings.BASE_URL + "/u/")
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert tokens.unsign("unsub", token) == (contact.workspace_id, contact.pk, 42)
    mailto = links.unsubscribe_mailto(contact.workspace_id, contact.pk, 42)
    assert mailto == f"unsubscribe+{token}@{settings.RETURN_PATH_DOMAIN}"


def test_unsubscribing_leaves_every_list_suppresses_and_records(workspace, subscribed, newsletter):
    result = unsubscribe.unsubscribe_from_all(
        workspace=workspace,
        contact=subscribed,
        campaign_id=7,
        method=unsubscribe.PAGE,
        request_info=RequestInfo(ip_address="203.0.113.9", user_agent="Firefox"),
        consent_text="Stop all email",
    )
    assert result.changed and sorted(result.lists) == ["Newsletter", "Offers"]
    assert statuses(subscribed) == {"Newsletter": "unsubscribed", "Offers": "unsubscribed"}
    records = ConsentRecord.objects.for_workspace(workspace).filter(
        contact=subscribed, status=SubscriptionStatus.UNSUBSCRIBED
    )
    assert records.count() == 2
    for record in records:
        assert record.source == ConsentSource.UNSUBSCRIBE_LINK
        assert record.ip_address == "203.0.113.9"
        assert record.user_agent == "Firefox"
        assert record.consent_text == "Stop all email"
        assert record.details == {"method": "page", "campaign_id": 7}
    row = Suppression.objects.for_workspace(workspace).get()
    assert row.email == "ann.lee@example.org"
    assert row.reason == SuppressionReason.UNSUBSCRIBED
    assert row.details["campaign_id"] == 7
    (event,) = unsubscribe_events(subscribed)
    assert event.properties["campaign"] == 7
    assert event.properties["method"] == "page"
    assert sorted(event.properties["lists"]) == ["Newsletter", "Offers"]
    assert (event.source_type, event.source_id) == ("mail.campaign", "7")


def test_a_second_unsubscribe_changes_and_records_nothing(workspace, subscribed):
    unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    again = unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    assert not again.changed
    assert len(unsubscribe_events(subscribed)) == 1
    assert ConsentRecord.objects.for_workspace(workspace).filter(contact=subscribed).count() == 4
    assert Suppression.objects.for_workspace(workspace).count() == 1


def test_an_earlier_suppression_keeps_its_reason(workspace, contact):
    suppression.suppress_address(
        workspace=workspace, email=contact.email, reason=SuppressionReason.COMPLAINT
    )
    result = unsubscribe.unsubscribe_from_all(workspace=workspace, contact=contact)
    assert not result.changed  # on no list, suppressed already: nothing to do
    assert Suppression.objects.for_workspace(workspace).get().reason == "complaint"


def test_cleaned_subscriptions_stay_cleaned(workspace, subscribed, newsletter):
    lists.clean(
        mailing_list=newsletter,
        contact=subscribed,
        consent=lists.Consent(source=ConsentSource.BOUNCE),
    )
    unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    assert statuses(subscribed) == {"Newsletter": "cleaned", "Offers": "unsubscribed"}


def test_masked_address():
    assert unsubscribe.mask_address("ann.lee@example.org") == "a•••@example.org"
    assert unsubscribe.mask_address("") == ""


# --- The page ------------------------------------------------------------------------------


def test_get_asks_and_changes_nothing(client: Client, workspace, subscribed):
    response = client.get(path_of(subscribed, 3))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Acme" in body
    assert "a•••@example.org" in body
    assert "Ann.Lee@Example.org" not in body
    assert 'method="post"' in body and "csrfmiddlewaretoken" in body
    assert response.headers["Cache-Control"] == "no-store"
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}
    assert not Suppression.objects.for_workspace(workspace).exists()


def test_post_from_the_page_unsubscribes(workspace, subscribed):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(path_of(subscribed, 3))
    token = page.context["csrf_token"]
    response = browser.post(
        path_of(subscribed, 3),
        {"csrfmiddlewaretoken": str(token)},
        HTTP_USER_AGENT="Mozilla/5.0 test",
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 303
    assert response.headers["Location"] == path_of(subscribed, 3) + "?done=1"
    assert "You are unsubscribed" in browser.get(response.headers["Location"]).content.decode()
    assert statuses(subscribed) == {"Newsletter": "unsubscribed", "Offers": "unsubscribed"}
    record = ConsentRecord.objects.for_workspace(workspace).filter(status="unsubscribed").first()
    assert record.ip_address == "198.51.100.4"
    assert record.user_agent == "Mozilla/5.0 test"
    assert record.details == {"method": "page", "campaign_id": 3}
    assert "Stop all email from Acme" in record.consent_text
    # Opening the link again says so, without a button.
    again = browser.get(path_of(subscribed, 3))
    assert "unsubscribed already" in again.content.decode()
    assert "csrfmiddlewaretoken" not in again.content.decode()


def test_a_plain_post_without_the_csrf_token_is_refused(workspace, subscribed):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(path_of(subscribed), {"anything": "else"})
    assert response.status_code == 403
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}
    assert not unsubscribe_events(subscribed)


def test_one_click_post_needs_no_csrf_token(workspace, subscribed):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(path_of(subscribed, 9), ONE_CLICK)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "unsubscribed" in response.content.decode()
    assert statuses(subscribed) == {"Newsletter": "unsubscribed", "Offers": "unsubscribed"}
    (event,) = unsubscribe_events(subscribed)
    assert event.properties["method"] == "one_click"
    assert event.properties["campaign"] == 9
    # Mail providers may send it more than once.
    assert browser.post(path_of(subscribed, 9), ONE_CLICK).status_code == 200
    assert len(unsubscribe_events(subscribed)) == 1


def test_one_click_as_multipart_form_data(workspace, subscribed):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(path_of(subscribed), ONE_CLICK)  # the test client sends multipart
    assert response.status_code == 200
    response = browser.post(
        path_of(subscribed),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Suppression.objects.for_workspace(workspace).count() == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: token[:10],
        lambda token: "x" + token,
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_token_shows_not_valid_and_unsubscribes_nobody(
    client: Client, workspace, subscribed, mangle
):
    token = links.unsubscribe_token(workspace.pk, subscribed.pk)
    path = f"/u/{mangle(token)}/"
    page = client.get(path)
    assert page.status_code == 404
    assert "This link is not valid" in page.content.decode()
    assert client.post(path, ONE_CLICK).status_code == 404
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}
    assert not Suppression.objects.for_workspace(workspace).exists()


def test_a_token_of_another_kind_is_not_valid(client: Client, workspace, subscribed):
    token = tokens.sign("reply", workspace.pk, subscribed.pk)
    assert client.post(f"/u/{token}/", ONE_CLICK).status_code == 404
    assert not unsubscribe_events(subscribed)


def test_tenant_safety_a_token_names_its_own_workspace_only(client: Client, subscribed):
    other = WorkspaceFactory(name="Other", slug="other")
    stranger = ContactFactory(workspace=other, email="zed@example.net")
    # Workspace of the first, contact id of the second: no such contact in that workspace.
    token = tokens.sign("unsub", subscribed.workspace_id, stranger.pk, 0)
    assert client.post(f"/u/{token}/", ONE_CLICK).status_code == 404
    assert not Suppression.objects.for_workspace(other).exists()
    assert not Suppression.objects.for_workspace(subscribed.workspace).exists()
    # The stranger's own link touches only the stranger's workspace.
    assert client.post(path_of(stranger), ONE_CLICK).status_code == 200
    assert Suppression.objects.for_workspace(other).get().email == "zed@example.net"
    assert not Suppression.objects.for_workspace(subscribed.workspace).exists()
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}


def test_a_deleted_contact_says_so(client: Client, workspace, contact):
    path = path_of(contact)
    contact.delete()
    response = client.get(path)
    assert response.status_code == 404
    assert "no longer on file" in response.content.decode()


def test_other_methods_are_refused(client: Client, subscribed):
    assert client.put(path_of(subscribed)).status_code == 405
    assert statuses(subscribed)["Newsletter"] == "subscribed"
