"""A salesperson logs a call, schedules a meeting and finds it on the calendar."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patron.core.services import create_workspace
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, CompanyFactory, ContactFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
HAMBURG = ZoneInfo("Europe/Berlin")


def test_log_a_call_from_a_contact_page(page):
    user = UserFactory(email="jonas@example.de", name="Jonas")
    workspace = create_workspace(name="Hamburg Hafen", owner=user, time_zone="Europe/Berlin")
    contact = ContactFactory(workspace=workspace, first_name="Greta", last_name="Vogel")

    log_in(page, user.email, PASSWORD)
    page.goto(f"/contacts/{contact.pk}/")
    page.get_by_role("link", name="Log a call").click()
    page.get_by_label("Outcome").select_option(label="Left voicemail")
    page.get_by_label("Direction").select_option(label="Outbound")
    page.get_by_label("Duration (minutes)").fill("2")
    page.get_by_label("Notes").fill("Will try again on Friday")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Call with Greta Vogel logged.")).to_be_visible()
    first_event = page.locator("#timeline > li").first
    expect(first_event).to_contain_text("Call logged")
    expect(first_event).to_contain_text("Left voicemail")
    expect(first_event).to_contain_text("by Jonas")
    expect(page.locator("#recent-calls")).to_contain_text("Left voicemail")


def test_schedule_a_meeting_and_find_it_on_the_calendar(page):
    user = UserFactory(email="jonas@example.de", name="Jonas")
    workspace = create_workspace(name="Hamburg Hafen", owner=user, time_zone="Europe/Berlin")
    company = CompanyFactory(workspace=workspace, name="Speicher GmbH")
    ContactFactory(workspace=workspace, first_name="Greta", last_name="Vogel", company=company)
    day = (timezone.now().astimezone(HAMBURG) + timedelta(days=1)).date().isoformat()

    log_in(page, user.email, PASSWORD)
    page.goto(f"/companies/{company.pk}/")
    page.get_by_role("link", name="Schedule a meeting").click()
    page.get_by_label("Title").fill("Harbour tour and demo")
    page.get_by_label("Starts").fill(f"{day}T14:00")
    page.get_by_label("Ends").fill(f"{day}T13:00")
    page.get_by_label("With").select_option(label="Greta Vogel")
    page.get_by_label("Place or link").fill("Speicherstadt office")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("A meeting ends after it starts.")).to_be_visible()
    page.get_by_label("Ends").fill(f"{day}T15:00")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="Harbour tour and demo")).to_be_visible()
    expect(page.locator("#meeting-fields")).to_contain_text("Greta Vogel")
    expect(page.locator("#meeting-fields")).to_contain_text("Speicher GmbH")

    page.locator("nav.navbar").get_by_role("link", name="Calendar").click()
    page.goto(f"/calendar/?view=week&date={day}&user=me")
    cell = page.locator(f'td[data-day="{day}"]')
    expect(cell).to_contain_text("14:00 Harbour tour and demo")
    page.get_by_role("link", name="Month").click()
    expect(page.locator("#calendar")).to_have_class("table table-bordered calendar calendar-month")
    expect(page.locator(f'td[data-day="{day}"]')).to_contain_text("Harbour tour and demo")
    page.get_by_role("link", name="Next month").click()
    page.get_by_role("link", name="Previous month").click()
    page.locator(f'td[data-day="{day}"]').get_by_role("link", name="Harbour tour and demo").click()

    page.get_by_label("Outcome").select_option(label="Completed")
    page.get_by_role("button", name="Save outcome").click()
    expect(page.locator("#meeting-outcome")).to_have_text("Completed")
