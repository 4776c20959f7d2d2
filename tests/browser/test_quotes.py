"""A salesperson sends a quote; the customer accepts it from the emailed link."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.core.services import create_workspace
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, ContactFactory, DealFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_quote_and_accept_it_from_the_emailed_link(page, browser, live_server, settings):
    settings.BASE_URL = live_server.url
    user = UserFactory(email="marco@example.it", name="Marco")
    workspace = create_workspace(name="Caffè Milano", owner=user)
    deal = DealFactory(workspace=workspace, name="Espresso bar fit-out", owner=user, currency="EUR")
    deal.contacts.add(
        ContactFactory(workspace=workspace, first_name="Giulia", email="giulia@bar.example")
    )

    log_in(page, user.email, PASSWORD)
    page.goto(f"/deals/{deal.pk}/")
    page.get_by_role("link", name="New quote").click()
    page.get_by_label("Line 1 Description").fill("Espresso machine, two groups")
    page.get_by_label("Line 1 Quantity").fill("1")
    page.get_by_label("Line 1 Unit price").fill("4800")
    page.get_by_label("Line 1 Tax %").fill("22")
    page.get_by_role("button", name="Add a line").click()
    page.get_by_label("Line 2 Description").fill("Installation")
    page.get_by_label("Line 2 Quantity").fill("6")
    page.get_by_label("Line 2 Unit price").fill("55")
    page.get_by_role("button", name="Add a line").click()
    page.get_by_label("Line 3 Description").fill("Delivery by mistake")
    page.get_by_label("Line 3 Quantity").fill("1")
    page.get_by_label("Line 3 Unit price").fill("90")
    page.get_by_text("Remove line 3").click()  # changed her mind: that line goes
    page.get_by_role("button", name="Save quote").click()
    expect(page.locator("#quote-lines tbody tr")).to_have_count(2)
    expect(page.locator("#quote-total")).to_have_text("€6,186.00")  # 4800 + 1056 tax + 330

    page.get_by_role("button", name="Send to the contact").click()
    expect(page.locator("#quote-status")).to_contain_text("Sent")
    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Quote").first.click()
    expect(page.locator("#message-to")).to_have_text("giulia@bar.example")
    link = page.frame_locator("iframe").get_by_role("link", name="View the quote")
    href = link.get_attribute("href")
    assert href and "/q/" in href

    # The customer, in a browser of her own.
    customer = browser.new_context(base_url=live_server.url).new_page()
    customer.goto(href)
    expect(customer.locator("#quote-total")).to_have_text("€6,186.00")
    customer.get_by_label("Your full name").fill("Giulia Bianchi")
    customer.get_by_role("button", name="Accept this quote").click()
    expect(customer.locator("#quote-answer")).to_contain_text("Accepted by Giulia Bianchi")
    customer.context.close()

    page.goto(f"/deals/{deal.pk}/")
    expect(page.locator("#deal-quotes")).to_contain_text("Accepted")
    expect(page.locator("#deal-quotes")).to_contain_text("€6,186.00")
    history = page.locator("#deal-history")
    expect(history).to_contain_text("Quote accepted")
    expect(history).to_contain_text("accepted by Giulia Bianchi")
    expect(history).to_contain_text("Quote opened by the customer")
    expect(history).to_contain_text("Quote sent")
    expect(history).to_contain_text("Quote created")
    page.locator("#notifications-link").click()  # the deal's owner was told
    expect(page.locator("#main")).to_contain_text("Giulia Bianchi accepted quote Q-")
