"""A marketer writes a campaign, sends it to a segment and reads it in the Outbox;
then pauses, resumes and cancels a send held for the recipients' own clocks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.mail.models import Campaign, CampaignStatus, OutboxMessage
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory
from tests.mail.campaign_setup import GOOD_BODY, make_audience

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

NO_FOOTER = (
    "<html><body>\n<p>Hello {{ contact.first_name }},</p>\n<p>Spring is here.</p>\n</body></html>"
)


@pytest.fixture
def marketer():
    user = UserFactory(email="ines@lumiar.example", name="Inês Albuquerque Sampaio")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    return user, workspace, make_audience(workspace)


def test_write_check_preview_test_and_send_a_campaign(page, marketer, settings, tmp_path: Path):
    user, workspace, _people = marketer
    log_in(page, user.email, PASSWORD)

    # The menu still fits a 1280-pixel window on one line with its new entry, even
    # for a long name (cut, with the whole name as its title).
    nav = page.locator("nav.navbar")
    brand = nav.locator(".navbar-brand").bounding_box()
    account = page.locator("#user-menu").bounding_box()
    assert brand is not None and account is not None
    assert abs(account["y"] - brand["y"]) < 20
    assert account["x"] + account["width"] <= 1280

    nav.get_by_role("button", name="Marketing").click()
    nav.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", name="No campaigns yet")).to_be_visible()
    page.get_by_role("link", name="New campaign").first.click()

    # Name first: the form says what is missing.
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator("#id_name_error")).to_contain_text("required")
    page.get_by_label("Name").fill("Spring news")
    page.get_by_label("Start from").select_option(label="Blank HTML")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator(".alert-success")).to_contain_text("Campaign “Spring news” created.")

    # The content, and the audience: a segment, with its live count.
    page.get_by_label("Subject", exact=True).fill("Spring at Lumiar, {{ contact.first_name }}")
    page.get_by_label("Source", exact=True).fill(NO_FOOTER)
    expect(page.locator("#audience-count")).to_contain_text("Tick at least one list or segment")
    page.locator("#audience-include").get_by_label("Readers").check()
    expect(page.locator("#audience-total")).to_have_text("2")
    page.locator("#audience-include").get_by_label("Newsletter").check()
    expect(page.locator("#audience-total")).to_have_text("3")
    page.locator("#audience-include").get_by_label("Newsletter").uncheck()
    expect(page.locator("#audience-total")).to_have_text("2")
    page.get_by_role("button", name="Save campaign").click()
    expect(page.locator(".alert-success")).to_contain_text("Campaign “Spring news” saved.")

    # A failing check, with where it is; the send waits for it.
    problems = page.locator("#campaign-problems")
    expect(problems.locator('[data-code="unsubscribe"]')).to_contain_text("Add an unsubscribe")
    expect(problems.locator('[data-code="postal_address"]')).to_be_visible()
    expect(page.get_by_role("button", name="Review and send…")).to_be_disabled()
    page.get_by_label("Source", exact=True).fill(GOOD_BODY)
    page.get_by_role("button", name="Save campaign").click()
    expect(page.locator("#checks-passed")).to_have_text("All checks pass: it is ready to send.")

    # Preview as a chosen contact, at mobile width.
    # (The saved campaign's preview, below the editor's live one.)
    saved_preview = page.locator("#preview")
    saved_preview.get_by_label("Preview as contact").fill("ann@lumiar.example")
    saved_preview.get_by_text("Mobile", exact=True).click()
    expect(page.locator("#preview-as")).to_contain_text("Ann Reis")
    expect(page.locator("#preview-subject")).to_have_text("Spring at Lumiar, Ann")
    expect(page.locator(".campaign-preview-mobile iframe")).to_be_visible()
    expect(
        page.frame_locator(".campaign-preview-mobile iframe").get_by_text("Hello Ann,")
    ).to_be_visible()
    page.screenshot(path=str(tmp_path / "campaign-editor.png"), full_page=True)

    # A test to an address of one's own, personalised as Cy.
    page.get_by_label("Send a test to").fill("me@lumiar.example")
    page.get_by_label("Merge tags as contact").fill("Cy")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".alert-success")).to_contain_text("Test sent to me@lumiar.example.")
    test_message = OutboxMessage.objects.get(workspace=workspace, to=["me@lumiar.example"])
    assert "[Test]" in test_message.subject and "Cy" in test_message.subject

    # Send now: the confirmation says how many people it goes to. The work goes to the
    # database queue, as in the embedded mode, and a worker run from here sends it.
    settings.TASKS = DATABASE_QUEUE
    held: list = []
    holding = {"on": False}

    def hold_polls(route):  # type: ignore[no-untyped-def]
        # While the worker runs in this thread, the page's polls wait in the browser: the
        # test's and the server's threads share one in-memory database connection.
        if holding["on"]:
            held.append(route)
        else:
            route.continue_()

    page.route("**/progress/", hold_polls)
    page.get_by_role("button", name="Review and send…").click()
    expect(page.locator("#confirm-text")).to_contain_text("It goes now to 2 recipients.")
    page.get_by_role("button", name="Send now to 2 recipients").click()
    expect(page.locator(".alert-success")).to_contain_text("“Spring news” is on its way.")
    expect(page.locator("#campaign-starting")).to_be_visible()
    expect(page.locator("#campaign-status")).to_have_text("Scheduled")
    holding["on"] = True
    with page.expect_request("**/progress/"):
        pass  # the next poll is issued, and held
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "default")
    holding["on"] = False
    for route in held:
        route.continue_()
    # The page follows on its own, without a reload.
    expect(page.locator("#campaign-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#campaign-progress-text")).to_contain_text("2 of 2 sent")
    expect(page.locator("#campaign-status")).to_have_text("Sent")
    expect(page.locator("#total-sent")).to_have_text("2")
    page.screenshot(path=str(tmp_path / "campaign-sent.png"), full_page=True)

    # Who got it, and the personalised message in the Outbox.
    page.locator("#recipients-link").click()
    expect(page.locator('tr[data-recipient="ann@lumiar.example"] .delivery-status')).to_have_text(
        "Sent"
    )
    expect(page.locator('tr[data-recipient="cy@lumiar.example"]')).to_be_visible()
    expect(page.locator('tr[data-recipient="bob@elsewhere.example"]')).to_have_count(0)
    page.go_back()
    page.locator("#outbox-link").click()
    page.get_by_role("link", name="Spring at Lumiar, Ann", exact=True).click()
    expect(page.locator("#message-to")).to_have_text("ann@lumiar.example")
    expect(page.frame_locator("iframe.iframe-mail").get_by_text("Hello Ann,")).to_be_visible()

    # The list shows where it stands.
    nav.get_by_role("button", name="Marketing").click()
    nav.get_by_role("link", name="Campaigns").click()
    row = page.locator('tr[data-campaign="Spring news"]')
    expect(row.locator(".campaign-status")).to_have_text("Sent")
    expect(row.locator(".campaign-counts")).to_have_text("2 / 2")
    expect(row).to_contain_text("Readers")


def test_duplicate_then_pause_resume_and_cancel_a_local_time_send(page, marketer):
    user, workspace, people = marketer
    from patron.mail import campaigns

    sent = campaigns.create_campaign(
        workspace,
        user=user,
        values={
            "name": "Spring news",
            "subject": "Spring at Lumiar, {{ contact.first_name }}",
            "format": "html",
            "body": GOOD_BODY,
            "audience": {"include": {"segments": [people.readers.pk]}},
        },
    )
    log_in(page, user.email, PASSWORD)
    page.goto(f"/campaigns/{sent.pk}/")
    page.get_by_role("button", name="Duplicate").click()
    expect(page.locator(".alert-success")).to_contain_text("“Copy of Spring news” created")
    expect(page.get_by_label("Name")).to_have_value("Copy of Spring news")
    expect(page.locator("#audience-include").get_by_label("Readers")).to_be_checked()

    # At a local time two hours ahead: it starts now, and holds each message until
    # that time comes on its recipient's clock.
    later = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("At a time in each recipient's time zone").check()
    page.get_by_label("Date and time").fill(later)
    page.get_by_role("button", name="Review and send…").click()
    expect(page.locator("#confirm-text")).to_contain_text("own clock")
    page.get_by_role("button", name="Schedule it").click()
    expect(page.locator("#campaign-status")).to_have_text("Sending")
    expect(page.locator("#campaign-progress-text")).to_contain_text("0 of 2 sent")

    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".alert-success")).to_contain_text("is paused")
    expect(page.locator("#campaign-status")).to_have_text("Paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#campaign-status")).to_have_text("Sending")
    page.get_by_role("button", name="Cancel sending").click()  # the dialog is accepted
    expect(page.locator("#campaign-status")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)
    copy = Campaign.objects.for_workspace(workspace).get(name="Copy of Spring news")
    assert copy.status == CampaignStatus.CANCELLED and copy.local_time
    assert not OutboxMessage.objects.filter(workspace=workspace).exists()
