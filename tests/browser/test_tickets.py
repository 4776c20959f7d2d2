"""A support agent opens a ticket for a customer, answers it and solves it, watching the SLA."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.core.roles import Role
from patron.core.services import create_workspace
from tests.browser.conftest import log_in
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_open_a_ticket_and_resolve_it(page):
    owner = UserFactory(email="owner@example.pl")
    workspace = create_workspace(name="Kraków Bikes", owner=owner, time_zone="Europe/Warsaw")
    agent = member(workspace, Role.SUPPORT, email="ola@example.pl")
    contact = ContactFactory(workspace=workspace, first_name="Piotr", last_name="Nowak")

    log_in(page, agent.email, PASSWORD)
    page.goto(f"/contacts/{contact.pk}/")
    page.get_by_role("link", name="Open a ticket").click()
    page.get_by_label("Subject").fill("Gears slipping after service")
    page.get_by_label("Priority").select_option(label="Urgent")
    page.get_by_label("Channel").select_option(label="Phone")
    page.get_by_role("button", name="Open ticket").click()

    expect(page.locator("#ticket-summary")).to_contain_text("Piotr Nowak")
    expect(page.locator("#ticket-policy")).to_contain_text(
        "Urgent: first response within 1 h 0 min, resolution within 8 h 0 min"
    )
    expect(page.locator("#ticket-policy")).to_contain_text("around the clock")
    sla = page.locator("#ticket-sla")
    expect(sla).to_contain_text("First response")
    expect(sla).to_contain_text("due in 59 min")
    expect(sla).to_contain_text("Resolution")
    expect(sla).to_contain_text("due in 7 h 59 min")
    expect(sla).to_contain_text("On track")
    expect(sla).to_contain_text("target")

    page.get_by_label("Message").fill("Bring the bike in tomorrow, we will fix it for free.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#ticket-replies")).to_contain_text("we will fix it for free")
    expect(sla).to_contain_text("Met")
    expect(sla).to_contain_text("took 0 min")
    expect(page.locator("#ticket-status")).to_have_text("Open")

    page.get_by_label("Status").select_option(label="Solved")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#ticket-status")).to_have_text("Solved")
    resolution = sla.locator("dd").nth(1)
    expect(resolution).to_contain_text("Met")
    expect(resolution).to_contain_text("took 0 min")

    page.locator("nav.navbar").get_by_role("link", name="Tickets").click()
    expect(page.locator("body")).to_contain_text("No tickets here")
    # The list's status filter (the column menu has a "Status" checkbox too).
    page.get_by_role("combobox", name="Status").select_option("all")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#tickets")).to_contain_text("Gears slipping after service")
