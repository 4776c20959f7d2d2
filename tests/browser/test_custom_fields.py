"""An admin adds a custom field; a salesperson fills it in on a new contact."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.core.roles import Role
from patron.core.services import create_workspace
from tests.browser.conftest import log_in
from tests.conftest import member
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_contact_with_a_custom_field(page):
    admin = UserFactory(email="ines@example.pt", name="Inês")
    workspace = create_workspace(name="Lisboa Lda", owner=admin)
    seller = member(workspace, Role.SALES, email="rui@example.pt")

    log_in(page, admin.email, PASSWORD)
    page.goto("/settings/")
    page.get_by_role("link", name="Custom fields").click()
    page.get_by_role("link", name="Add field").click()
    page.get_by_label("Label").fill("Customer tier")
    page.get_by_label("Type").select_option(label="Single select")
    page.get_by_label("Options").fill("Bronze\nSilver\nGold")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#custom-fields")).to_contain_text("customer_tier")
    page.context.clear_cookies()

    log_in(page, seller.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Add contact").first.click()
    page.get_by_label("First name").fill("Joana")
    page.get_by_label("Email", exact=True).fill("joana@example.pt")
    page.get_by_label("Customer tier").select_option("Gold")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="Joana")).to_be_visible()
    fields = page.locator("#contact-fields")
    expect(fields).to_contain_text("Customer tier")
    expect(fields).to_contain_text("Gold")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Customer tier")).to_have_value("Gold")
