"""A marketer suppresses an address, sees it on the contact, imports a list of bounces and
downloads what was rejected, then takes an address off the list again."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from patron.audience.models import Suppression
from patron.core.services import create_workspace
from patron.crm import services
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_suppress_import_and_remove(page, tmp_path: Path):
    user = UserFactory(email="sari@example.id", name="Sari")
    workspace = create_workspace(name="Kopi Nusantara", owner=user)
    ann = services.create_contact(
        workspace=workspace, first_name="Ann", last_name="Lee", email="Ann@Example.test"
    )

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("button", name="Audience").click()
    page.locator("nav.navbar").get_by_role("link", name="Suppression").click()
    expect(page.get_by_role("heading", name="No suppressed addresses")).to_be_visible()

    # Add one address, in another case than the contact's.
    page.get_by_role("textbox", name="Addresses", exact=True).fill("ann@EXAMPLE.test")
    page.get_by_role("combobox", name="Reason", exact=True).select_option(label="Spam complaint")
    page.get_by_label("Note", exact=True).fill("Reported by the provider")
    page.get_by_role("button", name="Suppress").click()
    expect(page.locator(".alert-success")).to_contain_text("1 address suppressed.")
    expect(page.locator("#suppressions")).to_contain_text("ann@example.test")
    expect(page.locator("#suppressions")).to_contain_text("Spam complaint")

    # The contact's page says so.
    page.goto(f"/contacts/{ann.pk}/")
    expect(page.locator("#contact-fields .suppression-badge")).to_have_text(
        "Suppressed (Spam complaint)"
    )

    # Import a file of bounces with one bad row.
    page.goto("/suppression/")
    page.get_by_role("link", name="Import CSV").click()
    upload = tmp_path / "bounces.csv"
    upload.write_text(
        "email,reason,note\nbob@example.test,hard bounce,mailbox gone\nnot an address,,\n"
        "cy@example.test,,\n",
        encoding="utf-8",
    )
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_label("Reason for rows without one").select_option(label="Unsubscribed from all")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-counts")).to_contain_text("2 addresses suppressed")
    expect(page.locator("#import-counts")).to_contain_text("1 row rejected")
    expect(page.locator("#rejected-rows")).to_contain_text("is not a valid email address")
    page.screenshot(path=str(tmp_path / "suppression-import.png"), full_page=True)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the rejected rows (CSV)").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [(row["row"], row["email"]) for row in rows] == [("3", "not an address")]
    assert "not a valid email address" in rows[0]["problem"]

    # Search the list as one types; then remove an address, confirming first.
    page.get_by_role("link", name="Back to the suppression list").click()
    page.get_by_label("Search addresses").press_sequentially("bob")
    expect(page.locator("#suppressions tbody tr")).to_have_count(1)
    expect(page.locator("#suppressions")).to_contain_text("Hard bounce")
    page.get_by_label("Search addresses").fill("")
    page.get_by_label("Filter by reason").select_option(label="Unsubscribed from all")
    expect(page.locator("#suppressions tbody tr")).to_have_count(1)
    expect(page.locator("#suppressions")).to_contain_text("cy@example.test")
    page.get_by_label("Filter by reason").select_option(label="Any reason")
    expect(page.locator("#suppressions tbody tr")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "suppression-list.png"), full_page=True)

    page.get_by_role("link", name="Remove ann@example.test").click()
    expect(page.get_by_role("heading")).to_contain_text("Remove ann@example.test from suppression?")
    page.get_by_role("button", name="Remove from suppression").click()
    expect(page.locator(".alert-success")).to_contain_text(
        "ann@example.test is no longer suppressed."
    )
    expect(page.locator("#suppressions")).not_to_contain_text("ann@example.test")
    assert sorted(Suppression.objects.for_workspace(workspace).values_list("email", flat=True)) == [
        "bob@example.test",
        "cy@example.test",
    ]

    page.goto(f"/contacts/{ann.pk}/")
    expect(page.locator("#contact-fields")).to_contain_text("ann@example.test")
    expect(page.locator(".suppression-badge")).to_have_count(0)
