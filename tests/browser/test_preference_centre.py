"""A recipient follows "Manage preferences" from a campaign email, leaves one list, sees
the choice saved, then unsubscribes from everything; the unsubscribe page offers the
preference centre back."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from patron.audience import lists
from patron.audience.models import ConsentSource, Subscription, Suppression
from patron.mail import campaigns, pipeline
from patron.mail.models import Delivery, OutboxMessage, SendChunk
from tests.factories import ContactFactory, UserFactory, WorkspaceFactory
from tests.mail.campaign_helpers import BODY, draft, verified_sender

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_recipient_changes_preferences_then_unsubscribes_from_all(page, settings):
    settings.EMAIL_TRANSPORT = "capture"
    workspace = WorkspaceFactory(name="Livraria Lumiar")
    owner = UserFactory()
    verified_sender(workspace)
    news = lists.create_list(
        workspace=workspace,
        name="news-2024",
        public_name="Monthly news",
        description="New books, once a month.",
    )
    events = lists.create_list(workspace=workspace, name="Readings")
    lists.create_list(workspace=workspace, name="Internal: late payers")
    reader = ContactFactory(workspace=workspace, first_name="Rita", email="rita@example.net")
    manual = lists.Consent(source=ConsentSource.MANUAL)
    lists.subscribe(mailing_list=news, contact=reader, consent=manual)
    lists.subscribe(mailing_list=events, contact=reader, consent=manual)

    manage = '<a href="{{ preferences_url }}">Manage preferences</a></p></body>'
    campaign = draft(workspace, owner, news, body=BODY.replace("</p></body>", manage))
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)
    for chunk_id in SendChunk.objects.for_workspace(workspace).values_list("pk", flat=True):
        pipeline.run_chunk(chunk_id)
    message = OutboxMessage.objects.get(workspace=workspace)
    link = re.search(r'href="(https?://[^"]+/preferences/)"', message.html_body)
    assert link is not None, message.html_body
    path = urlsplit(link.group(1)).path

    page.goto(path)
    expect(page.get_by_role("heading", name="Email preferences")).to_be_visible()
    expect(page.locator("#preferences-workspace")).to_have_text("Livraria Lumiar")
    expect(page.locator("#preferences-address")).to_have_text("r•••@example.net")
    monthly = page.get_by_role("checkbox", name="Monthly news")
    readings = page.get_by_role("checkbox", name="Readings")
    expect(monthly).to_be_checked()
    expect(readings).to_be_checked()
    expect(page.get_by_text("New books, once a month.")).to_be_visible()
    expect(page.get_by_text("late payers")).to_have_count(0)

    readings.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.locator("#preferences-saved")).to_have_text("Your choices are saved.")
    expect(page.get_by_role("checkbox", name="Monthly news")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Readings")).not_to_be_checked()
    rows = Subscription.objects.for_workspace(workspace).filter(contact=reader)
    assert dict(rows.values_list("mailing_list__name", "status")) == {
        "news-2024": "subscribed",
        "Readings": "unsubscribed",
    }
    delivery = Delivery.objects.for_workspace(workspace).get(campaign=campaign)
    assert delivery.unsubscribed_at is not None

    page.get_by_role("button", name="Unsubscribe from all").click()
    expect(page.get_by_role("status")).to_contain_text(
        "You are unsubscribed: Livraria Lumiar will send no more mailings to this address."
    )
    assert set(rows.values_list("status", flat=True)) == {"unsubscribed"}
    assert Suppression.objects.for_workspace(workspace).get().email == "rita@example.net"

    # Changed their mind: back to the preference centre from the unsubscribe page.
    page.get_by_role("link", name="Unsubscribed by mistake?").click()
    expect(
        page.get_by_text("You unsubscribed from all mailings of Livraria Lumiar.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Unsubscribe from all")).to_have_count(0)
