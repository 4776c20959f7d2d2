"""A marketer builds a behavioural segment, watches its count, saves it and exports it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patron.activity.services import record
from patron.core.services import create_workspace
from patron.crm import services
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_a_behavioural_segment_and_export_it(page, tmp_path: Path):
    user = UserFactory(email="sari@example.id", name="Sari")
    workspace = create_workspace(name="Kopi Nusantara", owner=user)
    ann = services.create_contact(workspace=workspace, first_name="Ann", email="ann@x.test")
    bob = services.create_contact(workspace=workspace, first_name="Bob", email="bob@x.test")
    services.create_contact(workspace=workspace, first_name="Cy", email="cy@x.test")
    now = timezone.now()
    for contact, times in [(ann, 3), (bob, 1)]:
        for day in range(times):
            record(
                workspace=workspace,
                kind="email.opened",
                contact_id=contact.pk,
                occurred_at=now - timedelta(days=day + 1),
                properties={"campaign": 4},
            )

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("button", name="Audience").click()
    page.locator("nav.navbar").get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()

    # The first condition needs a value before it can count.
    expect(page.locator("#segment-invalid")).to_contain_text("Condition 1 (Contact field)")
    page.get_by_label("Condition on").select_option(label="Behaviour")
    expect(page.get_by_label("What happened")).to_have_value("email.opened")
    expect(page.locator("#segment-total")).to_have_text("2")
    page.get_by_label("Times", exact=True).fill("2")
    page.get_by_label("Times", exact=True).dispatch_event("change")
    expect(page.locator("#segment-total")).to_have_text("1")
    expect(page.locator("#segment-preview")).to_contain_text("Ann")
    page.get_by_label("When").select_option(label="in the last")
    expect(page.get_by_label("Days", exact=True)).to_have_value("30")
    expect(page.locator("#segment-total")).to_have_text("1")

    # A second condition in an "any of" group: typing updates the count as one goes.
    page.get_by_role("button", name="Add group").click()
    expect(page.locator("#r\\.2\\.1-field")).to_have_value("email")
    page.locator("#r\\.2\\.1-value").press_sequentially("zzz")
    expect(page.locator("#segment-total")).to_have_text("0")
    # Emptying the value makes the condition invalid while typing: the count
    # names it and the condition is marked; typing a value clears the mark.
    page.locator("#r\\.2\\.1-value").fill("")
    page.locator("#r\\.2\\.1-value").press("Backspace")
    expect(page.locator("#segment-invalid")).to_contain_text("Condition 2.1")
    expect(page.locator("#condition-r\\.2\\.1")).to_have_attribute("aria-invalid", "true")
    page.locator("#r\\.2\\.1-value").press_sequentially("ann@")
    expect(page.locator("#segment-total")).to_have_text("1")
    expect(page.locator(".segment-condition[aria-invalid]")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "segment-builder.png"), full_page=True)

    page.get_by_label("Name", exact=True).fill("Engaged openers")
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator(".alert-success")).to_contain_text("Segment “Engaged openers” saved.")
    expect(page.locator("#segment-total")).to_have_text("1")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export members (CSV)").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [row["email"] for row in rows] == ["ann@x.test"]

    page.get_by_role("link", name="Open as a contact list").click()
    expect(page.locator("#condition-chips")).to_contain_text("In segment Engaged openers")
    expect(page.locator("#contacts")).to_contain_text("Ann")
    expect(page.locator("#contacts")).not_to_contain_text("Bob")
