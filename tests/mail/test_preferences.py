"""The preference centre: the service (choices, resubscribe rules, the record of a
campaign's unsubscribes), the page behind the signed link, and the links of messages."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from patron.activity.models import Event
from patron.audience import lists, suppression
from patron.audience.models import (
    ConsentRecord,
    ConsentSource,
    MailingList,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from patron.core.models import AuditEntry
from patron.core.services import RequestInfo, set_suppress_role_addresses
from patron.mail import campaigns, links, pipeline, preferences, tokens, unsubscribe
from patron.mail.models import Campaign, Delivery, OutboxMessage, SendChunk
from tests.factories import ContactFactory, WorkspaceFactory
from tests.mail.campaign_helpers import BODY, draft, verified_sender

pytestmark = pytest.mark.django_db

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def contact(workspace):
    return ContactFactory(workspace=workspace, first_name="Ann", email="Ann.Lee@Example.org")


@pytest.fixture
def newsletter(workspace, owner):
    return lists.create_list(
        workspace=workspace,
        name="Newsletter",
        public_name="The Monthly",
        description="Our news, once a month.",
        actor=owner,
    )


@pytest.fixture
def offers(workspace, owner):
    return lists.create_list(workspace=workspace, name="Offers", actor=owner)


@pytest.fixture
def internal(workspace, owner):
    """A list the contact was never on: not offered on its page."""
    return lists.create_list(workspace=workspace, name="Churn risk", actor=owner)


@pytest.fixture
def subscribed(contact, newsletter, offers, internal):
    manual = lists.Consent(source=ConsentSource.MANUAL)
    lists.subscribe(mailing_list=newsletter, contact=contact, consent=manual)
    lists.subscribe(mailing_list=offers, contact=contact, consent=manual)
    return contact


@pytest.fixture
def campaign(workspace, owner, newsletter) -> Campaign:
    verified_sender(workspace)
    return draft(workspace, owner, newsletter)


def statuses(contact) -> dict[str, str]:
    rows = Subscription.objects.for_workspace(contact.workspace_id).filter(contact=contact)
    return {row.mailing_list.name: row.status for row in rows.select_related("mailing_list")}


def events(contact, kind="email.preferences_changed"):
    return list(
        Event.objects.for_workspace(contact.workspace_id).filter(kind=kind, contact_id=contact.pk)
    )


def save(contact, chosen, **values):
    return preferences.save_preferences(
        workspace=contact.workspace, contact=contact, chosen=chosen, **values
    )


def delivery_for(campaign, contact) -> Delivery:
    return Delivery.objects.create(
        workspace=campaign.workspace,
        campaign=campaign,
        contact_id=contact.pk,
        email=contact.email.lower(),
        status="sent",
    )


def unsubscribe_from_list(mailing_list: MailingList, contact) -> None:
    lists.unsubscribe(
        mailing_list=mailing_list,
        contact=contact,
        consent=lists.Consent(source=ConsentSource.MANUAL),
    )


# --- What the page offers ------------------------------------------------------------------


def test_the_contact_sees_the_lists_it_is_or_was_on_by_their_public_names(
    workspace, subscribed, offers
):
    unsubscribe_from_list(offers, subscribed)
    shown = preferences.preferences_of(workspace=workspace, contact=subscribed)
    assert [(c.name, c.status) for c in shown.choices] == [
        ("The Monthly", "subscribed"),
        ("Offers", "unsubscribed"),
    ]
    assert shown.choices[0].description == "Our news, once a month."
    assert shown.may_join and not shown.unsubscribed_from_all and not shown.unsubscribed


# --- Saving ----------------------------------------------------------------------------------


def test_unticking_a_list_unsubscribes_it_with_a_consent_record_and_an_event(
    workspace, subscribed, newsletter, offers
):
    saved = save(
        subscribed,
        [newsletter.pk],
        campaign_id=12,
        request_info=RequestInfo(ip_address="203.0.113.9", user_agent="Firefox"),
        consent_text="Send me what I ticked",
    )
    assert saved.unsubscribed == ["Offers"] and saved.subscribed == []
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "unsubscribed"}
    record = ConsentRecord.objects.for_workspace(workspace).get(
        contact=subscribed, status=SubscriptionStatus.UNSUBSCRIBED
    )
    assert record.source == ConsentSource.PREFERENCES
    assert record.mailing_list_id == offers.pk
    assert (record.ip_address, record.user_agent) == ("203.0.113.9", "Firefox")
    assert record.consent_text == "Send me what I ticked"
    assert record.details == {"campaign_id": 12}
    assert len(events(subscribed, "list.unsubscribed")) == 1
    (event,) = events(subscribed)
    assert event.properties["unsubscribed"] == ["Offers"]
    assert event.properties["subscribed"] == []
    assert event.properties["campaign"] == 12
    assert (event.source_type, event.source_id) == ("mail.campaign", "12")
    # Leaving one list is not leaving everything: the address is not suppressed.
    assert not Suppression.objects.for_workspace(workspace).exists()


def test_a_save_without_changes_records_nothing(workspace, subscribed, newsletter, offers):
    saved = save(subscribed, [newsletter.pk, offers.pk])
    assert not saved.changed
    assert not events(subscribed)
    assert ConsentRecord.objects.for_workspace(workspace).filter(contact=subscribed).count() == 2


def test_ticking_a_list_the_contact_left_subscribes_it_again(workspace, subscribed, offers):
    unsubscribe_from_list(offers, subscribed)
    saved = save(subscribed, [offers.pk] + [c.list_id for c in _subscribed_choices(subscribed)])
    assert saved.subscribed == ["Offers"]
    assert statuses(subscribed)["Offers"] == "subscribed"
    record = (
        ConsentRecord.objects.for_workspace(workspace)
        .filter(contact=subscribed, mailing_list=offers)
        .order_by("-occurred_at", "-id")
        .first()
    )
    assert (record.status, record.source) == ("subscribed", ConsentSource.PREFERENCES)


def _subscribed_choices(contact):
    shown = preferences.preferences_of(workspace=contact.workspace, contact=contact)
    return [choice for choice in shown.choices if choice.subscribed]


def test_a_pending_list_is_confirmed_when_ticked_and_left_pending_when_not(
    workspace, owner, contact
):
    confirm_first = lists.create_list(
        workspace=workspace, name="Events", double_opt_in=True, actor=owner
    )
    other = lists.create_list(workspace=workspace, name="Tips", double_opt_in=True, actor=owner)
    form = lists.Consent(source=ConsentSource.FORM)
    lists.subscribe(mailing_list=confirm_first, contact=contact, consent=form)
    lists.subscribe(mailing_list=other, contact=contact, consent=form)
    assert statuses(contact) == {"Events": "pending", "Tips": "pending"}
    saved = save(contact, [confirm_first.pk])
    assert saved.subscribed == ["Events"] and saved.unsubscribed == []
    assert statuses(contact) == {"Events": "subscribed", "Tips": "pending"}


def test_a_list_not_on_the_page_is_refused_and_nothing_changes(
    workspace, subscribed, newsletter, internal
):
    other_workspace = WorkspaceFactory()
    theirs = MailingList.objects.create(workspace=other_workspace, name="Theirs")
    for forged in ([internal.pk], [theirs.pk], [999_999]):
        with pytest.raises(preferences.PreferencesInvalid, match="not on this page"):
            save(subscribed, [newsletter.pk, *forged])
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}
    assert not events(subscribed)


def test_a_contact_without_an_address_cannot_save(workspace, newsletter):
    nobody = ContactFactory(workspace=workspace, email="")
    with pytest.raises(preferences.PreferencesInvalid, match="no email address"):
        save(nobody, [newsletter.pk])


# --- Suppressed addresses --------------------------------------------------------------------


def test_after_unsubscribing_from_all_choosing_a_list_lifts_the_suppression(
    workspace, subscribed, newsletter
):
    unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    shown = preferences.preferences_of(workspace=workspace, contact=subscribed)
    assert shown.unsubscribed_from_all and shown.may_join and shown.unsubscribed
    saved = save(subscribed, [newsletter.pk], request_info=RequestInfo(ip_address="198.51.100.7"))
    assert saved.unsuppressed and saved.subscribed == ["The Monthly"]
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "unsubscribed"}
    assert not Suppression.objects.for_workspace(workspace).exists()
    assert len(events(subscribed, "contact.unsuppressed")) == 1
    audit = AuditEntry.objects.filter(workspace=workspace, action="suppression.removed").get()
    assert audit.actor is None and audit.ip_address == "198.51.100.7"
    (event,) = events(subscribed)
    assert event.properties["unsuppressed"] is True


def test_after_unsubscribing_from_all_a_save_with_nothing_ticked_keeps_the_suppression(
    workspace, subscribed
):
    unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    saved = save(subscribed, [])
    assert not saved.changed
    assert Suppression.objects.for_workspace(workspace).get().reason == "unsubscribed"


@pytest.mark.parametrize(
    "reason",
    [
        SuppressionReason.HARD_BOUNCE,
        SuppressionReason.SOFT_BOUNCE,
        SuppressionReason.COMPLAINT,
        SuppressionReason.MANUAL,
    ],
)
def test_an_address_suppressed_for_another_reason_joins_no_list_but_may_leave(
    workspace, subscribed, newsletter, offers, reason
):
    unsubscribe_from_list(offers, subscribed)
    suppression.suppress_address(workspace=workspace, email=subscribed.email, reason=reason)
    shown = preferences.preferences_of(workspace=workspace, contact=subscribed)
    assert not shown.may_join and shown.suppression_reason == reason
    with pytest.raises(preferences.PreferencesInvalid, match="cannot join a list"):
        save(subscribed, [newsletter.pk, offers.pk])
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "unsubscribed"}
    assert Suppression.objects.for_workspace(workspace).get().reason == reason
    saved = save(subscribed, [])
    assert saved.unsubscribed == ["The Monthly"]
    assert Suppression.objects.for_workspace(workspace).get().reason == reason


def test_a_role_address_joins_no_list_while_the_setting_is_on(workspace, owner, newsletter):
    role = ContactFactory(workspace=workspace, email="postmaster@example.org")
    lists.subscribe(
        mailing_list=newsletter, contact=role, consent=lists.Consent(source=ConsentSource.MANUAL)
    )
    unsubscribe_from_list(newsletter, role)
    set_suppress_role_addresses(workspace=workspace, enabled=True, actor=owner)
    with pytest.raises(preferences.PreferencesInvalid, match="cannot join a list"):
        save(role, [newsletter.pk])
    assert statuses(role) == {"Newsletter": "unsubscribed"}


# --- Honoured at once ---------------------------------------------------------------------------


def test_the_next_send_leaves_out_a_list_unticked_in_the_preference_centre(
    workspace, owner, subscribed, newsletter, offers
):
    verified_sender(workspace)
    reader = ContactFactory(workspace=workspace, email="reader@example.net")
    lists.subscribe(
        mailing_list=newsletter, contact=reader, consent=lists.Consent(source=ConsentSource.MANUAL)
    )
    save(subscribed, [offers.pk])  # leaves the newsletter
    campaign = draft(workspace, owner, newsletter)
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)
    rows = Delivery.objects.for_workspace(workspace).filter(campaign=campaign)
    assert list(rows.values_list("email", flat=True)) == ["reader@example.net"]

    # Back on the newsletter from the preference centre: the next send includes them.
    save(subscribed, [offers.pk, newsletter.pk])
    again = draft(workspace, owner, newsletter, name="January news")
    campaigns.schedule_campaign(again, user=owner)
    pipeline.start_campaign(again.pk)
    emails = Delivery.objects.for_workspace(workspace).filter(campaign=again)
    assert sorted(emails.values_list("email", flat=True)) == [
        "ann.lee@example.org",
        "reader@example.net",
    ]


def test_resubscribing_after_unsubscribing_from_all_is_honoured_by_the_next_send(
    workspace, owner, subscribed, newsletter
):
    verified_sender(workspace)
    unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    save(subscribed, [newsletter.pk])
    campaign = draft(workspace, owner, newsletter)
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)
    rows = Delivery.objects.for_workspace(workspace).filter(campaign=campaign)
    assert list(rows.values_list("contact_id", flat=True)) == [subscribed.pk]


# --- The campaign's record of unsubscribes ------------------------------------------------------


def test_leaving_a_list_from_a_campaign_marks_its_delivery_once(
    workspace, subscribed, newsletter, offers, campaign
):
    delivery = delivery_for(campaign, subscribed)
    other = ContactFactory(workspace=workspace, email="other@example.net")
    bystander = delivery_for(campaign, other)
    save(subscribed, [newsletter.pk], campaign_id=campaign.pk)
    delivery.refresh_from_db()
    first = delivery.unsubscribed_at
    assert first is not None
    save(subscribed, [], campaign_id=campaign.pk)  # leaves the other list too
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at == first
    bystander.refresh_from_db()
    assert bystander.unsubscribed_at is None


def test_joining_a_list_does_not_mark_the_delivery(workspace, subscribed, offers, campaign):
    unsubscribe_from_list(offers, subscribed)
    delivery = delivery_for(campaign, subscribed)
    keep = [choice.list_id for choice in _subscribed_choices(subscribed)]
    save(subscribed, [*keep, offers.pk], campaign_id=campaign.pk)
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is None


def test_unsubscribing_from_all_marks_the_campaigns_delivery(workspace, subscribed, campaign):
    delivery = delivery_for(campaign, subscribed)
    unsubscribe.unsubscribe_from_all(
        workspace=workspace, contact=subscribed, campaign_id=campaign.pk
    )
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is not None


def test_an_unsubscribe_without_a_campaign_marks_no_delivery(workspace, subscribed, campaign):
    delivery = delivery_for(campaign, subscribed)
    unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    save(subscribed, [])
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is None


# --- The links of messages -------------------------------------------------------------------


def test_the_preferences_link_carries_the_unsubscribe_token(contact):
    url = links.preferences_url(contact.workspace_id, contact.pk, 42)
    assert url.startswith(settings.BASE_URL + "/u/") and url.endswith("/preferences/")
    token = urlsplit(url).path.split("/")[2]
    assert tokens.unsign("unsub", token) == (contact.workspace_id, contact.pk, 42)
    assert links.unsubscribe_url(contact.workspace_id, contact.pk, 42) == links.unsubscribe_page(
        token
    )


@pytest.mark.parametrize("base_url", ["https://mail.example.com", "http://127.0.0.1:8000"])
def test_the_page_addresses_are_those_django_reverses(contact, settings, base_url):
    settings.BASE_URL = base_url
    token = links.unsubscribe_token(contact.workspace_id, contact.pk, 7)
    assert links.unsubscribe_page(token) == base_url + reverse("unsubscribe:page", args=[token])
    assert links.preferences_page(token) == base_url + reverse(
        "unsubscribe:preferences", args=[token]
    )


def test_messages_and_previews_link_preferences_url_to_the_preference_centre(
    workspace, contact, campaign
):
    row = pipeline.recipient_links(workspace.pk, contact.pk, campaign.pk, 7)
    assert row.preferences == links.preferences_url(workspace.pk, contact.pk, campaign.pk)
    assert row.unsubscribe == links.unsubscribe_url(workspace.pk, contact.pk, campaign.pk)
    context = pipeline.recipient_context(campaign, contact, delivery_id=0)
    assert context["preferences_url"] == row.preferences
    assert context["unsubscribe_url"] == row.unsubscribe


def test_a_sent_message_links_to_the_recipients_preference_centre(
    workspace, owner, subscribed, newsletter, settings
):
    settings.EMAIL_TRANSPORT = "capture"
    verified_sender(workspace)
    manage = '<a href="{{ preferences_url }}">Manage preferences</a></p></body>'
    body = BODY.replace("</p></body>", manage)
    campaign = draft(workspace, owner, newsletter, body=body)
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)
    for chunk_id in SendChunk.objects.for_workspace(workspace).values_list("pk", flat=True):
        pipeline.run_chunk(chunk_id)
    message = OutboxMessage.objects.get(workspace=workspace)
    expected = links.preferences_url(workspace.pk, subscribed.pk, campaign.pk)
    assert f'href="{expected}"' in message.html_body
    unsubscribe_link = links.unsubscribe_url(workspace.pk, subscribed.pk, campaign.pk)
    assert f'href="{unsubscribe_link}"' in message.html_body


# --- The page ------------------------------------------------------------------------------


def page_path(contact, campaign_id=0) -> str:
    return urlsplit(links.preferences_url(contact.workspace_id, contact.pk, campaign_id)).path


def unsubscribe_path(contact, campaign_id=0) -> str:
    return urlsplit(links.unsubscribe_url(contact.workspace_id, contact.pk, campaign_id)).path


def csrf_client(path: str) -> tuple[Client, str]:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(path)
    assert page.status_code == 200
    return browser, str(page.context["csrf_token"])


def test_the_page_shows_the_workspace_the_lists_and_changes_nothing(
    client: Client, workspace, subscribed, offers, newsletter
):
    unsubscribe_from_list(offers, subscribed)
    response = client.get(page_path(subscribed, 3))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Robots-Tag"] == "noindex"
    body = response.content.decode()
    assert "Acme" in body and "a•••@example.org" in body and "Ann.Lee" not in body
    assert "The Monthly" in body and "Our news, once a month." in body
    assert "Churn risk" not in body
    assert f'value="{newsletter.pk}" id="list-{newsletter.pk}" checked' in body
    assert f'value="{offers.pk}" id="list-{offers.pk}">' in body
    assert "Save my choices" in body and "Unsubscribe from all" in body
    assert f'action="{unsubscribe_path(subscribed, 3)}"' in body
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "unsubscribed"}


def test_saving_from_the_page(workspace, subscribed, newsletter, offers, campaign):
    delivery = delivery_for(campaign, subscribed)
    path = page_path(subscribed, campaign.pk)
    browser, csrf = csrf_client(path)
    response = browser.post(
        path,
        {"csrfmiddlewaretoken": csrf, "lists": [str(offers.pk)]},
        HTTP_USER_AGENT="Mozilla/5.0 test",
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 303
    assert response.headers["Location"] == path + "?saved=1"
    answer = browser.get(response.headers["Location"]).content.decode()
    assert "Your choices are saved." in answer
    assert f'value="{newsletter.pk}" id="list-{newsletter.pk}">' in answer  # unticked now
    assert statuses(subscribed) == {"Newsletter": "unsubscribed", "Offers": "subscribed"}
    record = ConsentRecord.objects.for_workspace(workspace).get(status="unsubscribed")
    assert record.source == ConsentSource.PREFERENCES
    assert (record.ip_address, record.user_agent) == ("198.51.100.4", "Mozilla/5.0 test")
    assert record.details == {"campaign_id": campaign.pk}
    assert "Send me the mailings of Acme that I ticked" in record.consent_text
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is not None


def test_a_post_without_the_csrf_token_is_refused(workspace, subscribed):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(page_path(subscribed), {"lists": []})
    assert response.status_code == 403
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}


def test_a_mangled_form_says_so_and_changes_nothing(workspace, subscribed, internal):
    path = page_path(subscribed)
    browser, csrf = csrf_client(path)
    response = browser.post(path, {"csrfmiddlewaretoken": csrf, "lists": ["one"]})
    assert response.status_code == 400
    assert "Reload the page" in response.content.decode()
    response = browser.post(path, {"csrfmiddlewaretoken": csrf, "lists": [str(internal.pk)]})
    assert response.status_code == 400
    assert "not on this page" in response.content.decode()
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}


def test_the_page_of_an_address_suppressed_for_a_bounce_offers_no_joining(
    workspace, subscribed, newsletter, offers
):
    unsubscribe_from_list(offers, subscribed)
    suppression.suppress_address(
        workspace=workspace, email=subscribed.email, reason=SuppressionReason.HARD_BOUNCE
    )
    path = page_path(subscribed)
    browser, csrf = csrf_client(path)
    body = browser.get(path).content.decode()
    assert "You can leave lists here, but not join them." in body
    assert "Hard bounce" in body
    assert f'id="list-{offers.pk}" disabled' in body
    assert f'id="list-{newsletter.pk}" checked' in body
    # A forged form that ticks the disabled list is refused.
    response = browser.post(
        path, {"csrfmiddlewaretoken": csrf, "lists": [str(newsletter.pk), str(offers.pk)]}
    )
    assert response.status_code == 400
    assert "cannot join a list" in response.content.decode()
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "unsubscribed"}


def test_resubscribing_from_the_page_after_unsubscribing_from_all(
    workspace, subscribed, newsletter
):
    unsubscribe.unsubscribe_from_all(workspace=workspace, contact=subscribed)
    path = page_path(subscribed)
    browser, csrf = csrf_client(path)
    body = browser.get(path).content.decode()
    assert "You unsubscribed from all mailings of Acme" in body
    assert "This address gets no mailings from Acme." in body
    response = browser.post(path, {"csrfmiddlewaretoken": csrf, "lists": [str(newsletter.pk)]})
    assert response.status_code == 303
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "unsubscribed"}
    assert not Suppression.objects.for_workspace(workspace).exists()


def test_unsubscribing_from_all_is_one_click_from_the_page(workspace, subscribed, campaign):
    delivery = delivery_for(campaign, subscribed)
    browser, csrf = csrf_client(page_path(subscribed, campaign.pk))
    response = browser.post(
        unsubscribe_path(subscribed, campaign.pk), {"csrfmiddlewaretoken": csrf}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == unsubscribe_path(subscribed, campaign.pk) + "?done=1"
    assert statuses(subscribed) == {"Newsletter": "unsubscribed", "Offers": "unsubscribed"}
    assert Suppression.objects.for_workspace(workspace).get().reason == "unsubscribed"
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is not None


def test_the_unsubscribe_page_links_to_the_preference_centre(client: Client, subscribed):
    body = client.get(unsubscribe_path(subscribed, 5)).content.decode()
    assert "Manage your preferences instead" in body
    assert f'href="{page_path(subscribed, 5)}"' in body


def test_one_click_still_answers_without_a_page(workspace, subscribed, campaign):
    delivery = delivery_for(campaign, subscribed)
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(unsubscribe_path(subscribed, campaign.pk), ONE_CLICK)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "preferences" not in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: token[:10],
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_token_shows_not_valid_and_changes_nothing(
    client: Client, workspace, subscribed, newsletter, mangle
):
    token = links.unsubscribe_token(workspace.pk, subscribed.pk)
    path = f"/u/{mangle(token)}/preferences/"
    page = client.get(path)
    assert page.status_code == 404
    assert "This link is not valid" in page.content.decode()
    assert client.post(path, {"lists": []}).status_code == 404
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}


def test_a_token_of_another_kind_or_workspace_is_not_valid(client: Client, subscribed):
    reply = tokens.sign("reply", subscribed.workspace_id, subscribed.pk)
    assert client.get(f"/u/{reply}/preferences/").status_code == 404
    other = WorkspaceFactory(name="Other", slug="other")
    stranger = ContactFactory(workspace=other, email="zed@example.net")
    mixed = tokens.sign("unsub", subscribed.workspace_id, stranger.pk, 0)
    response = client.post(f"/u/{mixed}/preferences/", {"lists": []})
    assert response.status_code == 404
    assert statuses(subscribed) == {"Newsletter": "subscribed", "Offers": "subscribed"}


def test_a_deleted_contact_says_so(client: Client, contact):
    path = page_path(contact)
    contact.delete()
    response = client.get(path)
    assert response.status_code == 404
    assert "no longer on file" in response.content.decode()


def test_a_contact_without_an_address_is_told(client: Client, workspace):
    nobody = ContactFactory(workspace=workspace, email="")
    response = client.get(page_path(nobody))
    assert response.status_code == 200
    assert "no email address on file" in response.content.decode()
    assert "Save my choices" not in response.content.decode()


def test_other_methods_are_refused(client: Client, subscribed):
    assert client.put(page_path(subscribed)).status_code == 405
