"""A marketer reads a sent campaign's report, looks at who did not open it, turns
them into a segment, and compares the campaign with the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from patron.core.services import create_workspace
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory
from tests.mail.report_setup import NOW, make_story, record_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_read_a_report_and_turn_did_not_open_into_a_segment(page, tmp_path: Path):
    user = UserFactory(email="marta@lumiar.example", name="Marta Lumiar")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    story = make_story(workspace, user)
    (gus,) = [made for made in story.hits if made.delivery_id == story.deliveries["gus"].pk]
    gus.processed_at = NOW
    gus.save()
    record_events(story)

    log_in(page, user.email, PASSWORD)
    page.goto("/campaigns/")
    page.locator('tr[data-campaign="Spring news"]').get_by_role("link", name="Report").click()
    expect(page.get_by_role("heading", name="Report: Spring news")).to_be_visible()
    expect(page.locator("#card-delivered .report-number")).to_have_text("5")
    expect(page.locator("#card-opened .report-rate")).to_have_text("60.0%")
    expect(page.locator("#card-clicked .report-rate")).to_have_text("40.0%")
    expect(page.locator("#card-opened")).to_contain_text("By machines, not counted: 1")
    expect(page.locator("#chart-hourly svg rect")).to_have_count(
        4
    )  # 3 hours with opens, 1 with clicks
    expect(page.locator('#click-map tr[data-link="0"] .progress-bar')).to_have_text("67%")
    page.screenshot(path=str(tmp_path / "campaign-report.png"), full_page=True)

    # The recipients, then only those who received it and did not open it.
    page.locator("#report-tabs").get_by_role("link", name="Recipients").click()
    expect(page.locator("#report-recipients tbody tr")).to_have_count(8)
    page.locator("#recipient-filters").get_by_role("link", name="Did not open").click()
    expect(page.locator("#report-recipients tbody tr")).to_have_count(2)
    expect(page.locator('tr[data-recipient="bob@lumiar.example"]')).to_be_visible()
    expect(page.locator('tr[data-recipient="fay@lumiar.example"]')).to_be_visible()
    page.locator("#recipient-filters").get_by_role("link", name="Clicked").click()
    expect(page.locator("#report-recipients tbody tr")).to_have_count(2)
    expect(page.locator('tr[data-recipient="cy@lumiar.example"] .recipient-opened')).to_have_text(
        "Yes"
    )
    page.locator("#recipient-filters").get_by_role("link", name="Did not open").click()
    page.get_by_role("button", name="Turn “did not open” into a segment").click()

    # The segment page opens, and counts exactly those two.
    expect(page.locator(".alert-success")).to_contain_text(
        "Segment “Spring news: did not open” created"
    )
    expect(page.get_by_role("heading", name="Spring news: did not open")).to_be_visible()
    expect(page.locator("#segment-total")).to_have_text("2")

    # Back to the report, and on to the comparison.
    page.go_back()
    page.get_by_role("link", name="Compare campaigns").click()
    expect(page.get_by_role("heading", name="Compare campaigns")).to_be_visible()
    row = page.locator('#compare tr[data-campaign="Spring news"]')
    expect(row.locator(".compare-open-rate")).to_have_text("60.0%")
    page.get_by_role("link", name="Open rate", exact=True).click()
    expect(page.locator("#compare th[aria-sort]")).to_contain_text("Open rate")
    row.get_by_role("link", name="Spring news").click()
    expect(page.get_by_role("heading", name="Report: Spring news")).to_be_visible()
