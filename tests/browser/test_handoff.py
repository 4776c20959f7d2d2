"""A salesperson is handed a marketing-qualified lead, is told, and accepts it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.activity.services import record
from patron.automation import lifecycle, scoring
from patron.core.roles import Role
from patron.core.services import create_workspace
from patron.crm import assignment
from patron.crm.models import AssignmentStrategy, Contact
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, ContactFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_salesperson_accepts_an_mql_handoff(page):
    boss = UserFactory(email="olivia@example.com", name="Olivia")
    workspace = create_workspace(name="Acme", owner=boss)
    seller = UserFactory(email="sam@example.com", name="Sam Seller")
    MembershipFactory(workspace=workspace, user=seller, role=Role.SALES)
    assignment.save_rule(
        workspace=workspace,
        object_type="contact",
        name="Leads to Sam",
        conditions=[],
        strategy=AssignmentStrategy.USER,
        user=seller,
    )
    lifecycle.save_lifecycle_rule(workspace=workspace, trigger="score", threshold=50, stage="mql")
    scoring.save_scoring_rule(
        workspace=workspace,
        name="E-book",
        kind="behaviour",
        points=60,
        event_kind="file.downloaded",
    )
    contact = ContactFactory(
        workspace=workspace, first_name="Ann", last_name="Lee", lifecycle_stage="lead"
    )
    record(
        workspace=workspace,
        kind="file.downloaded",
        contact_id=contact.pk,
        properties={"file": "crm-guide.pdf"},
    )
    # The marketer counts the follow-up's hours in business hours.
    log_in(page, boss.email, PASSWORD)
    page.goto("/automation/scoring/")
    page.get_by_label("Hand-off task due within (hours)").fill("8")
    page.get_by_label("Count business hours only").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Scoring settings saved.")
    expect(page.get_by_label("Count business hours only")).to_be_checked()
    chosen = scoring.settings_for(workspace)
    assert (chosen.handoff_due_hours, chosen.handoff_business_hours) == (8, True)
    page.context.clear_cookies()

    scoring.follow_activity()

    log_in(page, seller.email, PASSWORD)
    expect(page.locator("#unread-count")).to_contain_text("1")
    page.locator("#notifications-link").click()
    expect(page.locator("#notifications")).to_contain_text(
        "New marketing-qualified lead for you: Ann Lee"
    )
    page.locator("nav.navbar").get_by_role("link", name="Hand-offs").click()
    rows = page.locator("#handoffs")
    expect(rows).to_contain_text("Ann Lee")
    expect(rows).to_contain_text("Score reached 50")
    expect(rows).to_contain_text("Pending")
    page.get_by_role("button", name="Accept Ann Lee").click()
    expect(page.get_by_role("alert")).to_contain_text("is now a sales-qualified lead")
    expect(rows).to_contain_text("Accepted")
    expect(page.locator("#median-touch")).not_to_contain_text("—")
    assert Contact.objects.for_workspace(workspace).get(pk=contact.pk).lifecycle_stage == "sql"

    page.get_by_role("link", name="Ann Lee").click()
    expect(page.locator("#timeline")).to_contain_text("Accepted by sales")
