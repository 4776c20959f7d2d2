"""A new user's first steps, clicked through in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from patron.core.models import ApiKey, Membership
from patron.core.roles import Role
from patron.core.services import bootstrap_installation, create_workspace
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin():
    installation = bootstrap_installation(admin_email="admin@example.com", admin_password=PASSWORD)
    assert installation is not None
    create_workspace(name="Bravo Bikes", owner=installation.admin)
    return installation


def test_log_in_and_switch_workspace(page, admin):
    log_in(page, "admin@example.com", PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("My business")
    # Styles and scripts load: the switcher is a Bootstrap dropdown.
    expect(page.locator("nav.navbar")).to_have_css("display", "flex")
    page.get_by_role("button", name=re.compile("My business")).click()
    page.get_by_role("button", name=re.compile("Bravo Bikes")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bravo Bikes")
    expect(page.get_by_role("status")).to_contain_text("Switched to Bravo Bikes")


def test_outbox_shows_the_welcome_mail(page, admin):
    log_in(page, "admin@example.com", PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Welcome to Patron").click()
    expect(page.locator("#message-to")).to_have_text("admin@example.com")
    frame = page.frame_locator("iframe.iframe-mail")
    expect(frame.get_by_text("is ready")).to_be_visible()
    page.get_by_role("tab", name="Text").click()
    expect(page.locator("#message-text")).to_contain_text("Welcome to Patron!")
    page.get_by_role("tab", name="Source").click()
    expect(page.locator("#pane-raw")).to_contain_text("Content-Type: multipart/alternative")


def test_create_and_revoke_an_api_key(page, admin):
    log_in(page, "admin@example.com", PASSWORD)
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("link", name="Workspace settings").click()
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Website form")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-api-key-secret").inner_text().strip()
    assert secret.startswith("ptn_")
    row = page.locator("#api-keys tr", has_text="Website form")
    expect(row).to_contain_text(secret[:12])
    # Shown once: a fresh visit no longer shows it.
    page.reload()
    expect(page.locator("#new-api-key-secret")).to_have_count(0)
    assert secret not in page.content()
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#api-keys tr", has_text="Website form")).to_contain_text("revoked")
    assert ApiKey.objects.unscoped().get(name="Website form").revoked_at is not None


def test_invite_a_colleague_who_joins_from_the_emailed_link(page, admin, browser, live_server):
    log_in(page, "admin@example.com", PASSWORD)
    page.goto("/settings/members/")
    page.get_by_label("Email").fill("colleague@example.com")
    page.get_by_label("Role").select_option("sales")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#invitations")).to_contain_text("colleague@example.com")

    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name=re.compile("You are invited to My business")).click()
    page.get_by_role("tab", name="Text").click()
    text = page.locator("#message-text").inner_text()
    link = re.search(r"https?://\S+/invitations/\S+/", text).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]

    guest = browser.new_context(base_url=live_server.url).new_page()
    guest.goto("/" + path)
    expect(guest.get_by_role("heading", level=1)).to_have_text("Join My business")
    guest.get_by_label("Your name").fill("Chris Colleague")
    guest.get_by_label("Password").fill("a long enough passphrase 42")
    guest.get_by_role("button", name="Create account and join").click()
    expect(guest.get_by_role("heading", level=1)).to_have_text("My business")
    membership = Membership.objects.unscoped().get(user__email="colleague@example.com")
    assert membership.role == Role.SALES
    guest.context.close()


def test_a_contact_is_created_and_shows_on_its_company(page, admin):
    user = UserFactory(email="seller@example.com")
    Membership.objects.create(workspace=admin.workspace, user=user, role=Role.SALES)
    log_in(page, "seller@example.com", PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Companies").click()
    page.get_by_role("link", name="Add company").first.click()
    page.get_by_label("Name").fill("Harbour Coffee")
    page.get_by_label("Domain").fill("https://www.harbour-coffee.example/")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#company-fields")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour Coffee")
    page.locator("nav.navbar").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Add contact").first.click()
    page.get_by_label("First name").fill("Lan")
    page.get_by_label("Last name").fill("Nguyễn")
    page.get_by_label("Email", exact=True).fill("lan@harbour-coffee.example")
    page.get_by_label("Company").select_option(label="Harbour Coffee")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lan Nguyễn")
    expect(page.locator("#timeline")).to_contain_text("Contact created")
    page.get_by_role("link", name="Harbour Coffee").first.click()
    expect(page.locator("#company-contacts")).to_contain_text("Lan Nguyễn")
    # Live search on the contact list narrows the table while typing.
    page.locator("nav.navbar").get_by_role("link", name="Contacts").click()
    page.get_by_label("Search contacts").fill("ngu")
    expect(page.locator("#contacts")).to_contain_text("lan@harbour-coffee.example")
    page.get_by_label("Search contacts").fill("zzz")
    expect(page.locator("#contact-rows")).to_contain_text("No contact matches")
