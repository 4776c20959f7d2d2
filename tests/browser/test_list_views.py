"""The task, ticket and deal lists in a browser: saved views, bulk changes, columns."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from patron.core.roles import Role
from patron.core.services import create_workspace
from patron.crm import services
from tests.browser.conftest import log_in
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, TicketFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_save_a_task_view_and_reopen_it(page):
    user = UserFactory(email="ana@example.pt", name="Ana")
    workspace = create_workspace(name="Porto Wines", owner=user, time_zone="Europe/Lisbon")
    rui = member(workspace, Role.SALES, email="rui@example.pt")
    now = timezone.now()
    services.create_task(
        workspace=workspace,
        title="Chase the Lisbon invoice",
        assignee=rui,
        priority="high",
        due_at=now - timedelta(days=2),
    )
    services.create_task(
        workspace=workspace, title="Order new labels", assignee=rui, due_at=now - timedelta(days=1)
    )
    services.create_task(
        workspace=workspace, title="Taste the 2024 barrels", due_at=now + timedelta(days=3)
    )

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Tasks").click()
    expect(page.locator("body")).to_contain_text("Nothing here")  # none are Ana's
    page.get_by_role("link", name="Everyone's overdue tasks").click()
    expect(page.locator("#tasks")).to_contain_text("Order new labels")
    page.get_by_role("combobox", name="Priority", exact=True).select_option(label="High")
    page.get_by_role("button", name="Columns").click()
    columns = page.locator("#column-choice")
    columns.get_by_label("Due", exact=True).uncheck()
    columns.get_by_label("Created", exact=True).check()
    page.get_by_role("button", name="Show columns").click()
    expect(page.locator("#tasks")).not_to_contain_text("Order new labels")
    expect(page.locator("#tasks thead")).to_contain_text("Created")
    expect(page.locator("#tasks thead")).not_to_contain_text("Due")

    page.get_by_role("button", name="Save view").click()
    page.get_by_label("View name").fill("Urgent chasing")
    page.get_by_role("button", name="Save this view").click()
    expect(page.locator("#task-views")).to_contain_text("Urgent chasing")

    page.get_by_role("link", name="My tasks today").click()
    expect(page.locator("body")).to_contain_text("Nothing here")
    page.get_by_role("link", name="Urgent chasing").click()
    expect(page.locator("#tasks")).to_contain_text("Chase the Lisbon invoice")
    expect(page.locator("#tasks")).not_to_contain_text("Order new labels")
    expect(page.locator("#tasks thead")).to_contain_text("Created")
    expect(page.locator("#tasks thead")).not_to_contain_text("Due")
    expect(page.get_by_role("link", name="Urgent chasing")).to_have_attribute(
        "aria-current", "page"
    )

    # Done from the saved view: the task leaves it.
    page.get_by_label("Tick Chase the Lisbon invoice").check()
    page.get_by_label("With the ticked tasks").select_option(label="Mark as done")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("1 record changed.")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Nothing here")


def test_bulk_assign_tickets_and_see_the_change(page):
    owner = UserFactory(email="lead@example.cz", name="Jana")
    workspace = create_workspace(name="Brno Bikes", owner=owner, time_zone="Europe/Prague")
    agent = member(workspace, Role.SUPPORT, email="tomas@example.cz")
    agent.name = "Tomáš"
    agent.save()
    contact = ContactFactory(workspace=workspace, first_name="Petr")
    TicketFactory(workspace=workspace, subject="Chain snapped", contact=contact)
    TicketFactory(workspace=workspace, subject="Wrong saddle delivered", contact=contact)
    TicketFactory(workspace=workspace, subject="Invoice address", assignee=owner)

    log_in(page, owner.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Tickets").click()
    page.get_by_role("link", name="Unassigned").click()
    expect(page.locator("#tickets")).not_to_contain_text("Invoice address")
    page.get_by_label("Tick every ticket on this page").check()
    expect(page.get_by_label("Tick Chain snapped")).to_be_checked()
    page.get_by_label("With the ticked tickets").select_option(label="Assign to")
    page.get_by_label("Member").select_option(label="Tomáš")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("2 records changed.")).to_be_visible()
    expect(page.locator("body")).to_contain_text("No tickets here")

    page.get_by_role("link", name="Open tickets", exact=True).click()
    rows = page.locator("#tickets tbody tr")
    expect(rows.filter(has_text="Chain snapped")).to_contain_text("Tomáš")
    expect(rows.filter(has_text="Wrong saddle delivered")).to_contain_text("Tomáš")
    expect(rows.filter(has_text="Invoice address")).to_contain_text("Jana")

    # Every open ticket, not only the ticked: confirmed on a page first.
    page.get_by_label("With the ticked tickets").select_option(label="Set the priority")
    page.get_by_label("New priority").select_option(label="High")
    page.get_by_label("Every record that matches the filters").check()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("all 3 records")
    page.get_by_role("button", name="Change 3 records").click()
    expect(page.get_by_text("3 records changed.")).to_be_visible()
    expect(page.locator("#tickets tbody")).not_to_contain_text("Normal")


def test_choose_columns_on_the_deal_list(page):
    user = UserFactory(email="sara@example.se", name="Sara")
    workspace = create_workspace(name="Malmö Design", owner=user, time_zone="Europe/Stockholm")
    services.create_custom_field(
        workspace=workspace,
        object_type="deal",
        label="Region",
        field_type="single_select",
        options=["North", "South"],
    )
    services.create_deal(
        workspace=workspace, name="Office chairs", source="fair", custom={"region": "South"}
    )

    log_in(page, user.email, PASSWORD)
    page.goto("/deals/list/")
    header = page.locator("#deals thead")
    expect(header).to_contain_text("Expected close")
    page.get_by_role("button", name="Columns").click()
    columns = page.locator("#column-choice")
    columns.get_by_label("Region", exact=True).check()
    columns.get_by_label("Source", exact=True).check()
    columns.get_by_label("Expected close", exact=True).uncheck()
    page.get_by_role("button", name="Show columns").click()
    expect(header).to_contain_text("Region")
    expect(header).to_contain_text("Source")
    expect(header).not_to_contain_text("Expected close")
    row = page.locator("#deals tbody tr").filter(has_text="Office chairs")
    expect(row).to_contain_text("South")
    expect(row).to_contain_text("fair")
    # The choice is in the URL, so a reload (or a link) keeps it.
    page.reload()
    expect(header).to_contain_text("Region")
    expect(page.locator("#column-choice").get_by_label("Region", exact=True)).to_be_checked()
