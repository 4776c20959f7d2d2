"""A marketer builds a form and publishes it; a visitor sends it (once with a mistake)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from patron.capture.models import FormSubmission
from patron.core.services import create_workspace
from patron.crm.models import Contact
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_publish_and_receive_a_submission(page, settings):
    settings.FORMS_MIN_FILL_SECONDS = 0
    cache.clear()
    user = UserFactory(email="maria@example.es", name="María")
    workspace = create_workspace(name="Tienda Sol", owner=user)

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Forms").click()
    page.get_by_role("link", name="New form").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Contact us")
    page.get_by_label("Heading").fill("Talk to Tienda Sol")
    # The starter rows are email and first name; the empty row adds a message field.
    row = page.locator(".field-row").nth(2)
    row.get_by_label("Label").fill("Message")
    row.get_by_label("Key").fill("message")
    page.get_by_label("Notify").select_option(label="María")
    page.get_by_role("button", name="Save form").click()
    expect(page.locator(".alert-success")).to_contain_text("Form “Contact us” created.")

    page.get_by_role("link", name="Publish").click()
    hosted = page.locator("#hosted-link").get_attribute("href")
    assert hosted is not None
    expect(page.locator("#snippet-code")).to_contain_text("data-patron-form")
    page.goto(urlsplit(hosted).path + "?utm_source=ads")

    expect(page.get_by_role("heading", name="Talk to Tienda Sol")).to_be_visible()
    page.get_by_label("Email").fill("bo@example")
    page.get_by_label("First name").fill("Bo")
    page.get_by_label("Message").fill("Do you ship to Porto?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pf-email-error")).to_have_text(
        "Enter a valid email address, like name@example.com."
    )
    expect(page.get_by_label("First name")).to_have_value("Bo")
    assert not Contact.objects.for_workspace(workspace).exists()

    page.get_by_label("Email").fill("bo@example.com")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#form-sent")).to_contain_text("Thank you")

    submission = FormSubmission.objects.for_workspace(workspace).get()
    assert submission.values["message"] == "Do you ship to Porto?"
    assert submission.page_url.endswith("?utm_source=ads")

    # The owner was notified (the visitor's page shared the marketer's browser session).
    page.goto("/")
    expect(page.locator("#unread-count")).to_contain_text("1")
    page.goto("/forms/")
    page.get_by_role("link", name="Contact us").click()
    page.get_by_role("link", name="Submissions").click()
    table = page.locator("#submissions")
    expect(table).to_contain_text("Do you ship to Porto?")
    table.get_by_role("link", name="Bo").click()
    expect(page.locator("body")).to_contain_text("bo@example.com")
