"""Tracking in a sent campaign: the pixel and rewritten links in each message, one
recipient's open and click followed through to the timeline, UTM parameters."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from patron.activity.models import Event
from patron.mail import campaigns, pipeline
from patron.mail.models import Campaign, OutboxMessage, SendChunk
from patron.tracking import ingest, links, services
from patron.tracking.models import Hit, TrackedLink
from tests.mail.campaign_helpers import draft, mailing_list, subscribers, verified_sender

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131 Safari/537.36"


@pytest.fixture(autouse=True)
def fresh_link_cache():
    ingest.links.clear()
    yield
    ingest.links.clear()


def send(campaign: Campaign, user) -> Campaign:
    campaigns.schedule_campaign(campaign, user=user)
    pipeline.start_campaign(campaign.pk)
    for chunk_id in (
        SendChunk.objects.for_workspace(campaign.workspace_id)
        .filter(campaign=campaign)
        .values_list("pk", flat=True)
    ):
        pipeline.run_chunk(chunk_id)
    campaign.refresh_from_db()
    return campaign


def message_to(address: str) -> OutboxMessage:
    return next(m for m in OutboxMessage.objects.order_by("pk") if address in m.to)


def local(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_recipients_open_and_click_reach_their_timeline(client, workspace, owner, settings):
    settings.TRACKING_MACHINE_SECONDS = 0  # the test clicks at once; people take longer
    verified_sender(workspace)
    news = mailing_list(workspace)
    people = subscribers(workspace, news, 3)
    campaign = send(draft(workspace, owner, news), owner)
    assert campaign.sent == 3

    assert list(
        TrackedLink.objects.for_workspace(workspace)
        .filter(campaign_id=campaign.pk)
        .order_by("index")
        .values_list("url", flat=True)
    ) == ["https://acme.example/a", "https://acme.example/b"]
    message = message_to(people[1].email)
    prefix = re.escape(settings.TRACKING_BASE_URL)
    pixels = re.findall(rf'<img src="({prefix}/t/o/[\w-]+)"', message.html_body)
    clicks = re.findall(rf'href="({prefix}/t/c/[\w-]+)"', message.html_body)
    assert len(pixels) == 1 and len(clicks) == 2
    # The text part's links are tracked too, with the same addresses.
    assert all(url in message.text_body for url in clicks)
    # Merge-tag links are the recipient's own, not redirected.
    assert "/m/" in message.html_body and "/u/" in message.html_body
    assert "acme.example/a" not in message.html_body

    assert client.get(local(pixels[0]), HTTP_USER_AGENT=BROWSER).status_code == 200
    response = client.get(local(clicks[1]), HTTP_USER_AGENT=BROWSER)
    assert response["Location"] == "https://acme.example/b"
    hits = Hit.objects.for_workspace(workspace)
    assert {(h.contact_id, h.campaign_id) for h in hits} == {(people[1].pk, campaign.pk)}

    services.process_hits(now=timezone.now() + timedelta(minutes=1))
    events = Event.objects.for_workspace(workspace).filter(kind__in=["email.opened",
                                                                     "email.clicked"])  # fmt: skip
    assert {(e.kind, e.contact_id) for e in events} == {
        ("email.opened", people[1].pk),
        ("email.clicked", people[1].pk),
    }
    click = events.get(kind="email.clicked")
    assert click.properties["url"] == "https://acme.example/b"
    assert click.properties["campaign"] == campaign.pk


def test_a_click_seconds_after_sending_is_a_scanners(client, workspace, owner):
    verified_sender(workspace)
    news = mailing_list(workspace)
    subscribers(workspace, news, 1)
    send(draft(workspace, owner, news), owner)
    click = re.findall(r'href="[^"]*(/t/c/[\w-]+)"', OutboxMessage.objects.get().html_body)[0]
    client.get(click, HTTP_USER_AGENT=BROWSER)
    services.process_hits(now=timezone.now() + timedelta(minutes=1))
    assert Hit.objects.for_workspace(workspace).get().machine == "too_soon"
    assert not Event.objects.for_workspace(workspace).filter(kind="email.clicked").exists()


def test_utm_parameters_and_tracking_switched_off(workspace, owner):
    verified_sender(workspace)
    news = mailing_list(workspace)
    people = subscribers(workspace, news, 1)
    campaign = draft(
        workspace, owner, news, name="Spring Sale 2027", track_opens=False, track_clicks=False,
        utm=True,
    )  # fmt: skip
    send(campaign, owner)
    html = message_to(people[0].email).html_body
    assert "/t/o/" not in html and "/t/c/" not in html
    assert (
        'href="https://acme.example/a?utm_source=patron&amp;utm_medium=email'
        '&amp;utm_campaign=spring-sale-2027"'
    ) in html
    assert not TrackedLink.objects.for_workspace(workspace).exists()


def test_tracked_links_carry_utm_parameters_to_their_destination(workspace, owner):
    verified_sender(workspace)
    news = mailing_list(workspace)
    subscribers(workspace, news, 1)
    campaign = draft(workspace, owner, news, utm=True, utm_source="newsletter",
                     utm_campaign="dec")  # fmt: skip
    send(campaign, owner)
    assert set(TrackedLink.objects.for_workspace(workspace).values_list("url", flat=True)) == {
        "https://acme.example/a?utm_source=newsletter&utm_medium=email&utm_campaign=dec",
        "https://acme.example/b?utm_source=newsletter&utm_medium=email&utm_campaign=dec",
    }


def test_utm_values_are_checked(workspace, owner):
    with pytest.raises(campaigns.CampaignInvalid) as caught:
        draft(workspace, owner, utm_source="two words")
    assert "utm_source" in caught.value.errors


def test_a_duplicate_keeps_the_tracking_choices(workspace, owner):
    original = draft(workspace, owner, track_opens=False, utm=True, utm_medium="mail")
    copy = campaigns.duplicate_campaign(original, user=owner)
    assert (copy.track_opens, copy.track_clicks, copy.utm, copy.utm_medium) == (
        False, True, True, "mail",
    )  # fmt: skip


def test_the_tokens_name_the_delivery_and_contact(workspace, owner):
    verified_sender(workspace)
    news = mailing_list(workspace)
    people = subscribers(workspace, news, 1)
    campaign = send(draft(workspace, owner, news), owner)
    html = OutboxMessage.objects.get().html_body
    token = re.findall(r"/t/o/([\w-]+)", html)[0]
    values = links.read_open_token(token)
    from patron.mail.models import Delivery

    delivery = Delivery.objects.for_workspace(workspace).get(campaign=campaign)
    assert (values.workspace_id, values.campaign_id, values.delivery_id, values.contact_id) == (
        workspace.pk, campaign.pk, delivery.pk, people[0].pk,
    )  # fmt: skip


def test_emptied_utm_values_fall_back_to_their_defaults(workspace, owner):
    campaign = draft(workspace, owner, utm_source="", utm_medium="", utm_campaign="")
    assert (campaign.utm_source, campaign.utm_medium, campaign.utm_campaign) == (
        "patron", "email", "",
    )  # fmt: skip
