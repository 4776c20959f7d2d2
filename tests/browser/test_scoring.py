"""A marketer adds a scoring rule; a page view raises a contact's score and the panel says why."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.activity.services import record
from patron.automation import scoring
from patron.core.services import create_workspace
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, ContactFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_scoring_rule_raises_the_score_and_the_history_explains_it(page):
    user = UserFactory(email="mia@example.com", name="Mia")
    workspace = create_workspace(name="Acme", owner=user)
    contact = ContactFactory(workspace=workspace, first_name="Ann", last_name="Lee")
    log_in(page, user.email, PASSWORD)

    page.locator("#marketing-menu").click()
    page.get_by_role("link", name="Lead scoring").click()
    page.get_by_role("link", name="Add behaviour rule").click()
    page.get_by_label("Name").fill("Pricing page")
    page.locator("#id_points").fill("20")
    page.get_by_label("When someone").select_option(label="Page viewed")
    page.get_by_label("Filter 1: property").fill("url")
    page.get_by_label("Filter 1: test").select_option(label="contains")
    page.get_by_label("Filter 1: value").fill("/pricing")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#scoring-rules")).to_contain_text("Pricing page")
    expect(page.locator("#scoring-rules")).to_contain_text("+20")

    # The visitor looks at the pricing page; the scoring loop's next round applies it.
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        properties={"url": "https://acme.example/pricing"},
    )
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        properties={"url": "https://acme.example/blog"},
    )
    scoring.follow_activity()

    page.goto(f"/contacts/{contact.pk}/")
    history = page.locator("#score-history")
    expect(history).to_contain_text("Why the score is 20")
    expect(history).to_contain_text("+20")
    expect(history).to_contain_text("Page viewed")
    expect(history).to_contain_text("rule: Pricing page")
