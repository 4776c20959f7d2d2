"""A marketer creates a double opt-in list, adds a contact, and the contact confirms by email;
then people are added to a list in bulk from the contact list."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from patron.audience import lists
from patron.core.services import create_workspace
from patron.crm import services
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_double_opt_in_from_adding_to_confirming(page, tmp_path: Path):
    user = UserFactory(email="ines@example.pt", name="Inês")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    ann = services.create_contact(
        workspace=workspace, first_name="Ann", last_name="Lee", email="ann@x.test"
    )

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("button", name="Audience").click()
    page.locator("nav.navbar").get_by_role("link", name="Lists").click()
    page.get_by_role("link", name="New list").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Book club")
    page.get_by_label("Public name").fill("The Lumiar book club")
    page.get_by_label("Double opt-in").check()
    page.get_by_label("Confirmation message").fill("Hi {{ contact.first_name }\n{{ confirm_url }}")
    page.get_by_role("button", name="Save list").click()
    expect(page.locator(".invalid-feedback")).to_contain_text("Message, line 1")
    page.get_by_label("Confirmation message").fill(
        "Hi {{ contact.first_name }}, confirm here: {{ confirm_url }}"
    )
    page.get_by_role("button", name="Save list").click()
    expect(page.locator(".alert-success")).to_contain_text("List “Book club” created.")

    # Add Ann by searching her email: she is pending, and the confirmation email goes out.
    page.get_by_label("Email or name of the contact").press_sequentially("ann@")
    page.get_by_role("button", name="Add ann@x.test").click()
    expect(page.locator(".alert-success")).to_contain_text("was sent the confirmation email")
    expect(page.locator('tr[data-contact="ann@x.test"]')).to_contain_text("Pending confirmation")
    expect(page.locator('#status-tabs [data-status="pending"]')).to_contain_text("1")

    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role(
        "link", name=re.compile("Please confirm your subscription|The Lumiar")
    ).first.click()
    expect(page.locator("#message-to")).to_have_text("ann@x.test")
    page.get_by_role("tab", name="Text").click()
    text = page.locator("#message-text").inner_text()
    assert text.startswith("Hi Ann, confirm here: ")
    link = re.search(r"https?://\S+/subscribe/confirm/\S+/", text)
    assert link is not None
    page.goto(urlsplit(link.group(0)).path)

    # Opening the link confirms nothing until the button is pressed.
    expect(page.get_by_role("heading", name="The Lumiar book club")).to_be_visible()
    assert lists.members(ann.subscriptions.get().mailing_list).get().status == "pending"
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.locator(".alert-success")).to_contain_text("your subscription is confirmed")
    page.screenshot(path=str(tmp_path / "confirmed.png"), full_page=True)

    page.goto(f"/contacts/{ann.pk}/")
    panel = page.locator("#contact-lists")
    expect(panel.locator('[data-list="Book club"] .subscription-status')).to_have_text("Subscribed")
    panel.get_by_text("Consent history").click()
    history = panel.locator(".consent-history li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("Subscribed · Confirmation link")
    expect(history.nth(0)).to_contain_text("Yes, subscribe me to The Lumiar book club")
    expect(history.nth(1)).to_contain_text("Pending confirmation · Added by a user")
    expect(history.nth(1)).to_contain_text("by Inês")


def test_add_ticked_contacts_to_a_list_from_the_contact_list(page):
    user = UserFactory(email="ines@example.pt", name="Inês")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    for name in ("Ann", "Bob", "Cy"):
        services.create_contact(workspace=workspace, first_name=name, email=f"{name}@x.test")

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Contacts").click()
    page.get_by_label("Tick Ann").check()
    page.get_by_label("Tick Bob").check()
    page.get_by_label("With the ticked contacts").select_option(label="Add to list")
    page.get_by_label("List", exact=True).select_option(label="Newsletter")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".alert-success")).to_contain_text("2 contacts subscribed to Newsletter.")

    page.locator("nav.navbar").get_by_role("button", name="Audience").click()
    page.locator("nav.navbar").get_by_role("link", name="Lists").click()
    expect(page.locator('#lists [data-status="subscribed"]')).to_have_text("2")
    page.get_by_role("link", name="Newsletter").click()
    expect(page.locator("#members")).to_contain_text("ann@x.test")
    expect(page.locator("#members")).to_contain_text("bob@x.test")
    expect(page.locator("#members")).not_to_contain_text("cy@x.test")
    assert newsletter.subscriptions.count() == 2
