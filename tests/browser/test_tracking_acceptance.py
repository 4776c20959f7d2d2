"""Issue 6, end to end: a campaign goes out, a reader opens it (the Outbox shows it
with its images, the open pixel among them), clicks a link, leaves through the
preference centre, and the marketer sees each of these in the campaign report."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.mail import campaigns, pipeline
from patron.mail.models import SendChunk
from patron.tracking.models import Hit
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory
from tests.mail.campaign_setup import make_audience

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_for_hits(count: int) -> None:
    """The pixel and the redirect answer after their hit is committed; the browser's
    image load is not something the page waits for, so wait for the rows."""
    deadline = time.monotonic() + 10
    while Hit.objects.unscoped().count() < count:
        assert time.monotonic() < deadline, "the hit was not recorded"
        time.sleep(0.1)


def test_open_click_and_unsubscribe_show_in_the_report(page, live_server, settings, tmp_path: Path):
    settings.TRACKING_BASE_URL = live_server.url
    settings.BASE_URL = live_server.url
    settings.TRACKING_MACHINE_SECONDS = 0  # a test reads its mail sooner than people do
    user = UserFactory(email="ines@lumiar.example", name="Inês")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    audience = make_audience(workspace)  # Ann and Bob on the newsletter
    # A web address with a dot in its host, as the checks before sending want.
    site = live_server.url.replace("localhost", "127.0.0.1")
    body = (
        "<html><body><p>Hello {{ contact.first_name }},</p>"
        f'<p><a href="{site}/login/?next=/spring/">Read the spring picks</a></p>'
        '<p><a href="{{ preferences_url }}">Manage your preferences</a> · '
        "{{ postal_address }}</p></body></html>"
    )
    campaign = campaigns.create_campaign(
        workspace,
        user=user,
        values={
            "name": "Spring picks",
            "subject": "Spring picks for {{ contact.first_name }}",
            "format": "html",
            "body": body,
            "audience": {"include": {"lists": [audience.newsletter.pk]}},
        },
    )
    campaigns.schedule_campaign(campaign, user=user)
    pipeline.start_campaign(campaign.pk)
    for chunk_id in SendChunk.objects.for_workspace(workspace).values_list("pk", flat=True):
        pipeline.run_chunk(chunk_id)

    # Ann's message in the Outbox: showing it loads its images, the open pixel too.
    log_in(page, user.email, PASSWORD)
    page.goto("/outbox/")
    page.get_by_role("link", name="Spring picks for Ann", exact=True).click()
    message = page.frame_locator("iframe.iframe-mail")
    expect(message.get_by_text("Hello Ann,")).to_be_visible()
    wait_for_hits(1)

    # She clicks the link (it opens in a new tab) and lands where it said.
    link = message.get_by_role("link", name="Read the spring picks")
    tracked = link.get_attribute("href")
    assert tracked.startswith(f"{live_server.url}/t/c/")
    reader = page.context.new_page()
    reader.goto(tracked)
    expect(reader).to_have_url(f"{site}/login/?next=/spring/")
    wait_for_hits(2)

    # Then she leaves, through the preference centre.
    preferences = message.get_by_role("link", name="Manage your preferences").get_attribute("href")
    reader.goto(preferences)
    expect(reader.get_by_role("checkbox", name="Newsletter")).to_be_checked()
    reader.get_by_role("button", name="Unsubscribe from all").click()
    expect(reader.locator("body")).to_contain_text("unsubscribed")
    reader.close()

    # The report shows all three.
    page.goto("/campaigns/")
    page.locator('tr[data-campaign="Spring picks"]').get_by_role("link", name="Report").click()
    expect(page.get_by_role("heading", name="Report: Spring picks")).to_be_visible()
    expect(page.locator("#card-delivered .report-number")).to_have_text("2")
    expect(page.locator("#card-opened .report-rate")).to_have_text("50.0%")
    expect(page.locator("#card-clicked .report-rate")).to_have_text("50.0%")
    expect(page.locator("#card-unsubscribed .report-number")).to_have_text("1")
    expect(page.locator('#click-map tr[data-link="0"]')).to_contain_text("/login/?next=/spring/")
    page.screenshot(path=str(tmp_path / "tracking-report.png"), full_page=True)
    page.locator("#report-tabs").get_by_role("link", name="Recipients").click()
    page.locator("#recipient-filters").get_by_role("link", name="Clicked").click()
    expect(page.locator("#report-recipients tbody tr")).to_have_count(1)
    expect(page.locator('tr[data-recipient="ann@lumiar.example"]')).to_be_visible()
