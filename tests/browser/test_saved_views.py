"""A salesperson narrows the contact list, saves it as a view, and opens it again later."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.crm import services
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_save_a_view_and_reopen_it(page):
    user = UserFactory(email="mai@example.vn", name="Mai")
    workspace = create_workspace(name="Sai Gon Tea", owner=user)
    services.create_custom_field(
        workspace=workspace,
        object_type="contact",
        label="Tier",
        field_type="single_select",
        options=["Bronze", "Gold"],
    )
    services.create_contact(workspace=workspace, first_name="Lan", custom={"tier": "Gold"})
    services.create_contact(workspace=workspace, first_name="Huy", custom={"tier": "Bronze"})
    services.create_contact(workspace=workspace, first_name="Minh", owner=user)

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Contacts").click()
    expect(page.locator("#contact-count")).to_have_text("3 contacts")
    page.get_by_label("Filter by Tier").select_option("Gold")
    expect(page.locator("#contacts")).not_to_contain_text("Huy")
    expect(page.locator("#contact-count")).to_have_text("1 contact")
    page.get_by_role("button", name="Columns").click()
    page.get_by_label("Tier", exact=True).check()
    page.get_by_role("button", name="Show columns").click()
    expect(page.locator("#contacts thead")).to_contain_text("Tier")

    page.get_by_role("button", name="Save view").click()
    page.get_by_label("View name").fill("Gold customers")
    page.get_by_label("Share with the workspace").check()
    page.get_by_role("button", name="Save this view").click()
    expect(page.locator("#contact-views")).to_contain_text("Gold customers")

    page.get_by_role("link", name="All contacts").click()
    expect(page.locator("#contacts")).to_contain_text("Huy")
    page.get_by_role("link", name="Gold customers").click()
    expect(page.locator("#contacts")).to_contain_text("Lan")
    expect(page.locator("#contacts")).not_to_contain_text("Huy")
    expect(page.locator("#contacts thead")).to_contain_text("Tier")

    # Bulk: tick the contacts without an owner and assign them.
    page.get_by_role("link", name="Without owner").click()
    page.get_by_label("Tick every contact on this page").check()
    expect(page.get_by_label("Tick Huy")).to_be_checked()
    page.get_by_label("With the ticked contacts").select_option(label="Assign to")
    page.get_by_label("Member").select_option(label="Mai")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("2 records changed.")).to_be_visible()
    expect(page.locator("#contact-rows")).to_contain_text("No contact matches")
