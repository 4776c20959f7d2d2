"""Issue 5, end to end as a marketer would: a newsletter built from the starter in the
block builder, previewed as a contact, tested, sent to a segment, its progress
watched to the end, and each recipient's own message read in the Outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.mail.models import Campaign, CampaignStatus, OutboxMessage
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory
from tests.mail.campaign_setup import make_audience

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
MERGE_FIRST_NAME = '{{ contact.first_name | default: "there" }}'


def test_build_preview_test_and_send_a_newsletter_to_a_segment(page, settings, tmp_path: Path):
    user = UserFactory(email="ines@lumiar.example", name="Inês")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    make_audience(workspace)  # "Readers": Ann Reis and Cy Lobo; Bob is not in it
    log_in(page, user.email, PASSWORD)

    nav = page.locator("nav.navbar")
    nav.get_by_role("button", name="Marketing").click()
    nav.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill("Spring letter")
    page.get_by_label("Start from").select_option(label="Newsletter")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator(".alert-success")).to_contain_text("Campaign “Spring letter” created.")

    # The starter opens in the block builder, with its live preview.
    preview = page.frame_locator("#preview-frame")
    expect(preview.get_by_text("The monthly letter")).to_be_visible()
    starting = page.locator("#builder-blocks > li").count()

    # A new heading, and a text block that greets each reader by name.
    heading = page.locator("#builder-blocks > li[data-type=heading]").first
    heading.get_by_role("button", name="Edit").click()
    heading.get_by_label("Heading", exact=True).fill("Spring at Lumiar")
    expect(preview.get_by_text("Spring at Lumiar")).to_be_visible()
    page.locator("#builder-add").get_by_role("button", name="Text", exact=True).click()
    text_block = page.locator("#builder-blocks > li").nth(starting - 1)  # above the footer
    expect(text_block).to_have_attribute("data-type", "text")
    text = text_block.get_by_role("textbox", name="Text")
    text.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Our spring picks for ")
    page.get_by_role("button", name="Insert merge tag").click()
    page.get_by_role("button", name="First name").click()
    expect(text).to_contain_text(f"Our spring picks for {MERGE_FIRST_NAME}")
    expect(preview.get_by_text("Our spring picks for Alex")).to_be_visible()  # example person

    page.get_by_label("Subject", exact=True).fill("Spring at Lumiar, {{ contact.first_name }}")
    page.locator("#audience-include").get_by_label("Readers").check()
    expect(page.locator("#audience-total")).to_have_text("2")
    page.get_by_role("button", name="Save campaign").click()
    expect(page.locator(".alert-success")).to_contain_text("Campaign “Spring letter” saved.")
    expect(page.locator("#checks-passed")).to_have_text("All checks pass: it is ready to send.")
    campaign = Campaign.objects.for_workspace(workspace).get()
    assert campaign.blocks["blocks"][1]["text"] == "Spring at Lumiar"
    assert f"Our spring picks for {MERGE_FIRST_NAME}" in campaign.body  # written on the server

    # Preview as Ann, in the builder's live preview.
    page.get_by_label("Search contacts to preview as").fill("Ann")
    expect(page.locator("#preview-contact option")).to_have_count(2)
    page.locator("#preview-contact").select_option(label="Ann Reis <ann@lumiar.example>")
    expect(preview.get_by_text("Our spring picks for Ann")).to_be_visible()
    expect(page.locator("#checks-subject")).to_have_text("Spring at Lumiar, Ann")
    page.screenshot(path=str(tmp_path / "acceptance-builder.png"), full_page=True)

    # A test to one's own address, personalised as Cy.
    page.get_by_label("Send a test to").fill("me@lumiar.example")
    page.get_by_label("Merge tags as contact").fill("Cy")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".alert-success")).to_contain_text("Test sent to me@lumiar.example.")
    test_message = OutboxMessage.objects.get(workspace=workspace, to=["me@lumiar.example"])
    assert test_message.subject == "[Test] Spring at Lumiar, Cy"
    assert "Our spring picks for Cy" in test_message.html_body

    # Send now, to the segment. The worker runs from here, as in embedded mode, while the
    # page's progress polls wait in the browser (the two threads share one connection).
    settings.TASKS = DATABASE_QUEUE
    held: list = []
    holding = {"on": False}

    def hold_polls(route):  # type: ignore[no-untyped-def]
        if holding["on"]:
            held.append(route)
        else:
            route.continue_()

    page.route("**/progress/", hold_polls)
    page.get_by_role("button", name="Review and send…").click()
    expect(page.locator("#confirm-text")).to_contain_text("It goes now to 2 recipients.")
    page.get_by_role("button", name="Send now to 2 recipients").click()
    expect(page.locator(".alert-success")).to_contain_text("“Spring letter” is on its way.")
    expect(page.locator("#campaign-starting")).to_be_visible()  # waiting for a worker
    holding["on"] = True
    with page.expect_request("**/progress/"):
        pass  # the next poll is issued, and held
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "default")
    holding["on"] = False
    for route in held:
        route.continue_()
    # The progress bar runs to the end on its own.
    expect(page.locator("#campaign-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#campaign-progress-text")).to_contain_text("2 of 2 sent")
    expect(page.locator("#campaign-status")).to_have_text("Sent")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT and campaign.sent == 2

    # In the Outbox: one message each, each with its reader's own name.
    page.locator("#outbox-link").click()
    for first_name, address in (("Ann", "ann@lumiar.example"), ("Cy", "cy@lumiar.example")):
        page.get_by_role("link", name=f"Spring at Lumiar, {first_name}", exact=True).click()
        expect(page.locator("#message-to")).to_have_text(address)
        message = page.frame_locator("iframe.iframe-mail")
        expect(message.get_by_text(f"Our spring picks for {first_name}")).to_be_visible()
        expect(message.get_by_text("Spring at Lumiar", exact=True)).to_be_visible()
        page.go_back()
    sent = OutboxMessage.objects.filter(workspace=workspace).exclude(to=["me@lumiar.example"])
    assert sorted(message.to[0] for message in sent) == ["ann@lumiar.example", "cy@lumiar.example"]
    assert not sent.filter(to=["bob@elsewhere.example"]).exists()
