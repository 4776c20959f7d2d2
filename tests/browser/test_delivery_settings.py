"""Settings → Email delivery and Sending domains, clicked through in a real browser."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from playwright.sync_api import expect

from patron.core.services import bootstrap_installation
from tests.browser.conftest import log_in
from tests.factories import PASSWORD
from tests.mail.smtp_servers import MailServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin():
    installation = bootstrap_installation(admin_email="admin@example.com", admin_password=PASSWORD)
    assert installation is not None
    return installation


def open_settings(page, section: str) -> None:
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("link", name="Workspace settings").click()
    page.get_by_role("link", name="Delivery", exact=True).click()
    page.get_by_role("link", name=section).click()


def test_send_a_test_message_through_our_own_smtp_server(page, admin):
    with MailServer() as server:
        log_in(page, "admin@example.com", PASSWORD)
        open_settings(page, "Email delivery")
        expect(page.locator("#delivery-current")).to_contain_text("installation's transport")
        # Only the chosen method's fields show.
        expect(page.locator("#esp-settings")).to_be_hidden()

        form = page.locator("#smtp-server-form")
        form.get_by_label("Host").fill("127.0.0.1")
        form.get_by_label("Port").fill(str(server.port))
        form.get_by_label("Security").select_option("none")
        form.get_by_label("Username").fill("mailer")
        form.get_by_role("button", name="Add server").click()
        # The password is missing: the page says so, on the field.
        expect(page.locator("#id_password_error")).to_have_text(
            "Enter the password for this username."
        )
        form = page.locator("#smtp-server-form")
        form.get_by_label("Username").fill("")
        form.get_by_role("button", name="Add server").click()
        expect(page.get_by_role("status").first).to_contain_text(
            f"SMTP server 127.0.0.1:{server.port} added."
        )
        expect(page.locator("#smtp-servers")).to_contain_text(f"127.0.0.1:{server.port}")

        page.get_by_label("Delivery method").select_option("smtp")
        page.get_by_role("button", name="Save delivery method").click()
        expect(page.get_by_role("status").first).to_contain_text(
            "Mail is now delivered with: SMTP servers."
        )

        page.get_by_label("Send a test message to").fill("ada@example.net")
        page.get_by_role("button", name="Send test message").click()
        expect(page.locator("#test-result")).to_contain_text("Sent to ada@example.net.")
        expect(page.locator("#test-reply")).to_contain_text("250")

        (received,) = server.messages
        assert received.recipients == ["ada@example.net"]
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        assert str(parsed["Subject"]).startswith("Test message from")

        # A refusal shows the server's own words.
        page.get_by_label("Send a test message to").fill("unknown@example.net")
        page.get_by_role("button", name="Send test message").click()
        expect(page.locator("#test-result")).to_contain_text("Not sent: refused.")
        expect(page.locator("#test-reply")).to_contain_text("550 5.1.1 No such user here")


def test_choose_an_esp_and_the_key_is_not_shown_back(page, admin):
    log_in(page, "admin@example.com", PASSWORD)
    open_settings(page, "Email delivery")
    page.get_by_label("Delivery method").select_option("esp")
    expect(page.locator("#esp-settings")).to_be_visible()
    page.get_by_label("Provider").select_option("postmark")
    expect(page.locator("#esp-postmark")).to_be_visible()
    expect(page.locator("#esp-sendgrid")).to_be_hidden()
    page.locator("#esp-postmark").get_by_label("Server token").fill("not-a-token")
    page.get_by_role("button", name="Save delivery method").click()
    expect(page.locator("#id_postmark-secret_error")).to_contain_text(
        "A Postmark server token looks like"
    )
    page.locator("#esp-postmark").get_by_label("Server token").fill(
        "1a2b3c4d-0000-4000-8000-123456789abc"
    )
    page.get_by_role("button", name="Save delivery method").click()
    expect(page.locator("#delivery-current")).to_contain_text("Mail goes through Postmark.")
    expect(page.locator("#esp-postmark")).to_contain_text("Stored: ••••••••9abc.")
    assert "123456789abc" not in page.content().replace("••••••••9abc", "")


def test_add_a_sending_domain_and_see_its_dns_record(page, admin):
    log_in(page, "admin@example.com", PASSWORD)
    open_settings(page, "Sending domains")
    page.get_by_label("Domain").fill("https://acme.example")
    page.get_by_role("button", name="Create DKIM key").click()
    expect(page.locator("#id_domain_error")).to_contain_text("Enter only the domain")
    page.get_by_label("Domain").fill("acme.example")
    page.get_by_label("Selector").fill("mail1")
    page.get_by_role("button", name="Create DKIM key").click()
    expect(page.get_by_role("heading", name="DNS records for acme.example")).to_be_visible()
    expect(page.locator("#dkim-name")).to_have_text("mail1._domainkey.acme.example")
    expect(page.locator("#dkim-value")).to_have_text(re.compile(r"^v=DKIM1; k=rsa; p=MII\S{300,}$"))
    expect(page.locator("#dmarc-name")).to_have_text("_dmarc.acme.example")
    expect(page.locator("#spf-value")).to_have_text("v=spf1 mx ~all")
    page.get_by_role("link", name="Back to sending domains").click()
    row = page.locator("#sending-domains tr", has_text="acme.example")
    expect(row).to_contain_text("Not checked")


def test_settings_tabs_fit_a_1280_pixel_window(page, admin):
    log_in(page, "admin@example.com", PASSWORD)
    open_settings(page, "Email delivery")
    tabs = page.locator("ul.nav-tabs")
    box = tabs.bounding_box()
    assert box is not None and box["width"] <= 1280
    # Every tab sits on one line: the same top for the first and the last.
    first = tabs.locator("li").first.bounding_box()
    last = tabs.locator("li").last.bounding_box()
    assert first["y"] == last["y"]
    nav = page.locator("nav.navbar").bounding_box()
    assert nav["height"] < 80  # the top navigation did not wrap
