"""A marketer adds a sender address, verifies it from the email in the Outbox, and
manages the addresses: edit (a new address needs a new link), default, delete."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.mail import senders
from patron.mail.models import SenderIdentity
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_verification_link(page, address: str) -> None:  # type: ignore[no-untyped-def]
    """Find the newest verification email to ``address`` in the Outbox and open its link."""
    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name=f"Confirm {address} as a sender").first.click()
    expect(page.locator("#message-to")).to_have_text(address)
    page.get_by_role("tab", name="Text").click()
    text = page.locator("#message-text").inner_text()
    link = re.search(r"https?://\S+/senders/verify/\S+/", text)
    assert link is not None, text
    page.goto(urlsplit(link.group(0)).path)


def test_add_verify_and_manage_sender_addresses(page, tmp_path: Path):
    user = UserFactory(email="ines@example.pt", name="Inês")
    workspace = create_workspace(name="Livraria Lumiar", owner=user)

    log_in(page, user.email, PASSWORD)
    page.goto("/settings/")
    page.get_by_role("link", name="Senders", exact=True).click()
    expect(page.get_by_role("heading", name="No sender addresses yet")).to_be_visible()

    # The form says what is missing before anything is saved or sent.
    page.get_by_label("From name").fill("Livraria Lumiar")
    page.get_by_label("From address").fill("news@lumiar")
    page.get_by_role("button", name="Add and send link").click()
    expect(page.locator("#id_from_email_error")).to_contain_text("is not a valid email address")
    expect(page.locator("#id_postal_address_error")).to_contain_text("required")
    page.get_by_label("From address").fill("News@Lumiar.PT")
    page.get_by_label("Reply-to address").fill("ola@lumiar.pt")
    page.get_by_label("Postal address").fill("Rua do Lumiar 1\n1600-001 Lisboa")
    page.get_by_role("button", name="Add and send link").click()
    expect(page.locator(".alert-success")).to_contain_text(
        "We sent a verification link to News@lumiar.pt"
    )
    row = page.locator('tr[data-sender="News@lumiar.pt"]')
    expect(row.locator(".sender-status")).to_have_text("Pending verification")

    # Opening the link verifies nothing until the button is pressed.
    open_verification_link(page, "News@lumiar.pt")
    expect(page.locator("#verified-sender")).to_have_text("Livraria Lumiar <News@lumiar.pt>")
    identity = SenderIdentity.objects.for_workspace(workspace).get()
    assert identity.verified_at is None
    page.get_by_role("button", name="Confirm this address").click()
    expect(page.locator(".alert-success")).to_contain_text("the address is verified")
    page.screenshot(path=str(tmp_path / "verified.png"), full_page=True)

    page.goto("/settings/senders/")
    row = page.locator('tr[data-sender="News@lumiar.pt"]')
    expect(row.locator(".sender-status")).to_have_text("Verified")
    expect(row.locator(".sender-default")).to_have_text("Default")
    assert [i.from_email for i in senders.verified_identities(workspace)] == ["News@lumiar.pt"]

    # A second address, verified too, becomes the default; the first is then deleted.
    page.get_by_label("From name").fill("Lumiar Events")
    page.get_by_label("From address").fill("events@lumiar.pt")
    page.get_by_label("Postal address").fill("Rua do Lumiar 1\n1600-001 Lisboa")
    page.get_by_role("button", name="Add and send link").click()
    open_verification_link(page, "events@lumiar.pt")
    page.get_by_role("button", name="Confirm this address").click()
    expect(page.locator(".alert-success")).to_contain_text("the address is verified")
    page.goto("/settings/senders/")
    page.get_by_role("button", name="Make default events@lumiar.pt").click()
    expect(page.locator(".alert-success")).to_contain_text("Campaigns now start with events@")
    expect(page.locator('tr[data-sender="events@lumiar.pt"] .sender-default')).to_have_text(
        "Default"
    )
    page.get_by_role("button", name="Delete News@lumiar.pt").click()  # the dialog is accepted
    expect(page.locator(".alert-success")).to_contain_text("News@lumiar.pt deleted.")
    expect(page.locator('tr[data-sender="News@lumiar.pt"]')).to_have_count(0)

    # Changing the address asks for a new verification.
    page.get_by_role("link", name="Edit events@lumiar.pt").click()
    page.get_by_label("From address").fill("agenda@lumiar.pt")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("agenda@lumiar.pt saved. We sent")
    row = page.locator('tr[data-sender="agenda@lumiar.pt"]')
    expect(row.locator(".sender-status")).to_have_text("Pending verification")
    expect(row.locator(".sender-default")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "senders.png"), full_page=True)
    assert not senders.verified_identities(workspace).exists()
