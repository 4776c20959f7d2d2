"""A salesperson works the deal board in a real browser."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from patron.core.roles import Role
from patron.core.services import create_workspace
from patron.crm import services
from patron.crm.models import Deal
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def seller():
    user = UserFactory(email="seller@example.com")
    workspace = create_workspace(name="Kopi Trading", owner=user)
    pipeline = services.default_pipeline(workspace)
    services.create_deal(workspace=workspace, name="Hotel chain", amount=Decimal("40000"))
    services.create_deal(workspace=workspace, name="Corner café", amount=Decimal("1500"))
    return user, workspace, pipeline


def test_drag_a_deal_to_the_next_stage_and_move_another_with_the_menu(page, seller):
    user, workspace, _ = seller
    assert user.memberships.get().role == Role.OWNER
    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Deals").click()
    qualified = page.get_by_role("list", name="Qualified", exact=True)
    meeting = page.get_by_role("list", name="Meeting booked", exact=True)
    expect(qualified.locator(".board-card")).to_have_count(2)
    expect(page.locator("#board-totals")).to_contain_text("$41,500.00")

    qualified.locator(".board-card", has_text="Hotel chain").drag_to(meeting)
    expect(meeting.locator(".board-card", has_text="Hotel chain")).to_be_visible()
    expect(qualified.locator(".board-card")).to_have_count(1)
    deal = Deal.objects.for_workspace(workspace).get(name="Hotel chain")
    assert deal.stage.name == "Meeting booked"

    # Without a mouse: the card's "Move to" menu.
    page.get_by_label("Move Corner café to").select_option(label="Won")
    page.locator(".board-card", has_text="Corner café").get_by_role("button", name="Move").click()
    won = page.get_by_role("list", name="Won", exact=True)
    expect(won.locator(".board-card", has_text="Corner café")).to_be_visible()
    assert Deal.objects.for_workspace(workspace).get(name="Corner café").stage.outcome == "won"

    # The deal page shows who moved it where.
    won.get_by_role("link", name="Corner café").click()
    expect(page.locator("#deal-history")).to_contain_text("Qualified → Won")
