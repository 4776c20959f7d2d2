"""A recipient opens "View in your browser" from a campaign email, and a link cut short
when it was copied leads to a page that says so."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from patron.mail import campaigns, pipeline
from patron.mail.models import OutboxMessage, SendChunk
from tests.factories import UserFactory, WorkspaceFactory
from tests.mail.campaign_helpers import draft, mailing_list, subscribers, verified_sender

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_recipient_views_the_campaign_in_the_browser(page, settings):
    settings.EMAIL_TRANSPORT = "capture"
    workspace = WorkspaceFactory(name="Livraria Lumiar")
    owner = UserFactory()
    verified_sender(workspace)
    news = mailing_list(workspace)
    (reader,) = subscribers(workspace, news, 1)
    campaign = draft(workspace, owner, news, preheader="Novidades de dezembro")
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)
    for chunk_id in SendChunk.objects.for_workspace(workspace).values_list("pk", flat=True):
        pipeline.run_chunk(chunk_id)

    message = OutboxMessage.objects.get(workspace=workspace)
    assert message.to == [reader.email]
    link = re.search(r"\(https?://\S+/m/\S+/\)", message.text_body)
    assert link is not None, message.text_body
    path = urlsplit(link.group(0).strip("()")).path

    page.goto(path)
    expect(page.get_by_text("Hello R0,")).to_be_visible()
    expect(page.get_by_role("link", name="Unsubscribe")).to_be_visible()
    expect(page.get_by_text("Acme Ltd")).to_be_visible()

    page.goto(path[:-6] + "/")  # the link cut short
    expect(page.get_by_role("heading", name="Message not found")).to_be_visible()
