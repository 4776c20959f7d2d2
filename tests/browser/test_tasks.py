"""A salesperson sets a task with a reminder on a contact and gets reminded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patron.core.services import create_workspace
from patron.crm.services import send_task_reminders
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, ContactFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_task_reminder_is_delivered_in_the_app_and_by_email(page):
    user = UserFactory(email="rina@example.com", name="Rina")
    workspace = create_workspace(name="Batik House", owner=user, time_zone="Asia/Jakarta")
    contact = ContactFactory(workspace=workspace, first_name="Agus", last_name="Santoso")
    log_in(page, user.email, PASSWORD)
    page.goto(f"/contacts/{contact.pk}/")
    page.get_by_role("link", name="Add task").click()
    page.get_by_label("Title").fill("Call Agus about the wholesale order")
    soon = timezone.localtime(
        timezone.now() + timedelta(minutes=1), timezone.get_fixed_timezone(7 * 60)
    )
    page.get_by_label("Remind me at").fill(soon.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Assigned to").select_option(label="Rina")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#tasks")).to_contain_text("Call Agus about the wholesale order")

    # The scheduler's next tick once the reminder time has come.
    assert send_task_reminders(now=timezone.now() + timedelta(minutes=2)) == 1

    page.reload()
    expect(page.locator("#unread-count")).to_contain_text("1")
    page.locator("#notifications-link").click()
    expect(page.locator("#notifications")).to_contain_text("Reminder: Call Agus")
    page.locator("nav.navbar").get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Reminder: Call Agus about the wholesale order").click()
    expect(page.locator("#message-to")).to_have_text("rina@example.com")
    page.locator("nav.navbar").get_by_role("link", name="Tasks").click()
    page.get_by_role("link", name="No due date").click()
    page.get_by_role("button", name="Mark Call Agus about the wholesale order as done").click()
    page.get_by_role("link", name="Done").click()
    expect(page.locator("#tasks")).to_contain_text("Call Agus about the wholesale order")
