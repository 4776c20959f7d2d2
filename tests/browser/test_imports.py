"""A salesperson imports a CSV with one bad row and downloads the rejected-row report."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.core.roles import Role
from patron.core.services import create_workspace
from tests.browser.conftest import log_in
from tests.conftest import member
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = (
    "Email,First name,Last name,City\n"
    "siti@example.id,Siti,Rahma,Bandung\n"
    "not an email,Dewi,Lestari,Bogor\n"
    "agus@example.id,Agus,Salim,Depok\n"
)


def test_import_a_csv_with_one_bad_row_and_download_the_report(page, tmp_path):
    owner = UserFactory(email="owner@example.id")
    workspace = create_workspace(name="Warung Digital", owner=owner)
    seller = member(workspace, Role.SALES, email="nina@example.id")
    file = tmp_path / "leads.csv"
    file.write_text(CSV)

    log_in(page, seller.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Import").click()
    page.get_by_label("CSV or Excel file").set_input_files(str(file))
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("heading", name="Map the columns of leads.csv")).to_be_visible()
    expect(page.get_by_label("City")).to_have_value("city")
    expect(page.locator("#preview")).to_contain_text("Row 3: Email: Enter a valid email address.")
    page.get_by_label("Tag every imported record with").fill("bandung-fair")
    page.get_by_role("button", name="Start import").click()

    expect(page.locator("#import-status")).to_contain_text("Done")
    expect(page.locator("#import-counts")).to_contain_text("2")
    expect(page.locator("#rejections")).to_contain_text("Row 3")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the rejected rows").click()
    report = download_info.value.path().read_text(encoding="utf-8")
    assert "not an email,Dewi,Lestari,Bogor" in report
    assert "Enter a valid email address" in report

    page.get_by_role("link", name="Go to the list").click()
    expect(page.locator("#contact-rows")).to_contain_text("Siti")
    expect(page.locator("#contact-rows")).to_contain_text("Agus")
    expect(page.locator("#contact-rows")).not_to_contain_text("Dewi")
