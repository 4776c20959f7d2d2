"""A salesperson finds two records of the same person and merges them."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.activity.services import record
from patron.core.services import create_workspace
from patron.crm import services
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_merge_two_duplicates(page):
    user = UserFactory(email="kofi@example.gh", name="Kofi")
    workspace = create_workspace(name="Accra Prints", owner=user)
    kept = services.create_contact(
        workspace=workspace, first_name="Ama", last_name="Mensah", email="ama@work.example"
    )
    duplicate = services.create_contact(
        workspace=workspace,
        first_name="Ama",
        last_name="Mensah",
        email="ama.mensah@home.example",
        phone="+233 30 000",
    )
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=duplicate.pk,
        properties={"url": "/pricing"},
    )

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Duplicates").click()
    expect(page.locator("#duplicates")).to_contain_text("ama.mensah@home.example")
    page.get_by_role("link", name="Compare and merge").click()

    expect(page.get_by_role("heading", name="Merge Ama Mensah into Ama Mensah")).to_be_visible()
    page.get_by_label("ama.mensah@home.example (Email, merged record)").check()
    page.get_by_role("button", name="Merge").click()

    expect(page.get_by_text("Merged into Ama Mensah.")).to_be_visible()
    fields = page.locator("#contact-fields")
    expect(fields).to_contain_text("ama.mensah@home.example")
    expect(fields).to_contain_text("ama@work.example")  # kept as another address
    expect(fields).to_contain_text("+233 30 000")  # empty phone took the duplicate's
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Duplicate merged in")
    expect(timeline).to_contain_text("/pricing")  # the duplicate's history came along
    assert page.url.endswith(f"/contacts/{kept.pk}/")
