"""A sales manager builds a dashboard, narrows a widget's dates, clicks a bar through to
the deals behind it, and exports a report, in a real browser."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.crm import services
from patron.crm.models import Stage
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager():
    user = UserFactory(email="manager@example.com", name="Maria")
    workspace = create_workspace(name="Kopi Trading", owner=user)
    pipeline = services.default_pipeline(workspace)
    proposal = Stage.objects.for_workspace(workspace).get(pipeline=pipeline, name="Proposal sent")
    hotel = services.create_deal(workspace=workspace, name="Hotel chain", amount=Decimal("40000"))
    services.move_deal(deal=hotel, stage=proposal)
    services.create_deal(workspace=workspace, name="Corner café", amount=Decimal("1500"))
    return user


def add_widget(page, report: str, display: str, date_range: str = "") -> None:  # type: ignore[no-untyped-def]
    form = page.locator("#add-widget")
    form.get_by_label("Report").select_option(label=report)
    form.get_by_label("Show as").select_option(label=display)
    if date_range:
        form.get_by_label("Date range").select_option(label=date_range)
    form.get_by_role("button", name="Add widget").click()
    expect(page.get_by_role("alert").filter(has_text="Widget added.")).to_be_visible()


def test_build_a_dashboard_and_follow_a_chart_to_its_deals(page, manager):
    log_in(page, manager.email, PASSWORD)
    # The home page shows the person's own dashboard, made for them.
    expect(page.locator("#home-dashboard-title")).to_have_text("My dashboard")
    expect(page.locator("#dashboard-widgets .widget").first).to_be_visible()

    page.locator("nav.navbar").get_by_role("link", name="Reports").click()
    page.get_by_label("Name of the new shared dashboard").fill("Sales review")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Sales review", level=1)).to_be_visible()

    add_widget(page, "Pipeline by stage", "Bar chart")
    add_widget(page, "Won and lost deals", "Number", "This month")
    add_widget(page, "Tickets by priority", "Table")
    widgets = page.locator("#dashboard-widgets .widget")
    expect(widgets).to_have_count(3)
    expect(widgets.nth(1)).to_contain_text("$0.00")  # nothing won yet this month

    # Rearranged from the keyboard: the table moves up one place.
    page.get_by_role("button", name="Move Tickets by priority up").focus()
    page.keyboard.press("Enter")
    expect(widgets.nth(1)).to_contain_text("Tickets by priority")

    # A narrower date range for the pipeline.
    page.get_by_role("link", name="Edit Pipeline by stage").click()
    page.get_by_label("Date range").select_option(label="Last 30 days")
    page.get_by_role("button", name="Save widget").click()
    pipeline = page.locator(".widget", has_text="Pipeline by stage")
    expect(pipeline.locator(".widget-period")).to_have_text("Last 30 days")

    # The chart is an image with its values in a table; a bar opens the stage's deals.
    chart = pipeline.get_by_role("img", name="Pipeline by stage")
    expect(chart).to_be_visible()
    pipeline.locator("summary").click()
    expect(pipeline.locator("table")).to_contain_text("$20,000.00")  # 40,000 at 50 %
    chart.locator('a[aria-label="Proposal sent"] rect').click()
    expect(page).to_have_url(re.compile(r"/deals/list/\?stage=\d+$"))
    expect(page.locator("#deal-stage-filter")).to_have_text("Stage: Proposal sent")
    expect(page.locator("#deals")).to_contain_text("Hotel chain")
    expect(page.locator("#deals")).not_to_contain_text("Corner café")


def test_export_a_report_as_csv(page, manager):
    log_in(page, manager.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Reports").click()
    page.get_by_role("link", name="Pipeline by stage").click()
    page.get_by_label("Date range").select_option(label="Last 30 days")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#report-period")).to_contain_text("Last 30 days")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("pipeline_by_stage-")
    text = Path(download.path()).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "Pipeline,Stage,Currency,Deals,Amount,Weighted amount"
    assert "Sales pipeline,Proposal sent,USD,1,40000.00,20000.00" in lines
    assert "Sales pipeline,Qualified,USD,1,1500.00,150.00" in lines
