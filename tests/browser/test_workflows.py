"""A marketer builds a workflow in the browser, publishes it, tests it on a contact,
and installs a template in one click."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.automation.models import Workflow
from patron.capture import services as capture
from patron.core.services import create_workspace
from patron.crm import services as crm
from patron.mail.models import EmailTemplate, OutboxMessage
from tests.automation.workflow_helpers import BODY
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, UserFactory
from tests.mail.campaign_setup import verified_sender

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_panel_link(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("link", name=name, exact=True).first.click()


def test_build_publish_and_test_a_workflow(page):
    user = UserFactory(email="maria@example.es", name="María")
    workspace = create_workspace(name="Tienda Sol", owner=user)
    verified_sender(workspace)
    capture.create_form(
        workspace=workspace,
        name="Newsletter sign-up",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email", "required": True}],
    )
    EmailTemplate.objects.create(
        workspace=workspace,
        name="Welcome",
        format="html",
        subject="Hola {{ contact.first_name }}",
        body=BODY,
    )
    crm.create_contact(workspace=workspace, first_name="Bo", email="bo@example.com", city="Porto")

    log_in(page, user.email, PASSWORD)
    page.locator("nav.navbar").get_by_role("button", name="Marketing").click()
    page.locator("nav.navbar").get_by_role("link", name="Workflows").click()
    page.get_by_label("New workflow").fill("Welcome series")
    page.get_by_role("button", name="Create").click()

    # Trigger: the form was submitted.
    panel = page.locator("#side-panel")
    panel.get_by_role("link", name="Form submitted").click()
    panel.get_by_label("Form", exact=True).select_option(label="Newsletter sign-up")
    panel.get_by_role("button", name="Save trigger").click()
    expect(page.locator("#trigger-text")).to_have_text("Form submitted: Newsletter sign-up")

    # Wait 1 day.
    page.locator("#add-first").click()
    panel.get_by_role("link", name="Wait", exact=True).click()
    panel.get_by_label("Days").fill("0")
    panel.get_by_role("button", name="Save step").click()
    expect(page.locator("#step-error")).to_contain_text("Step 1 (Wait): enter how long to wait.")
    panel.get_by_label("Days").fill("1")
    panel.get_by_role("button", name="Save step").click()
    expect(page.locator(".workflow-step").first).to_contain_text("Wait 1 day")

    # If/else on behaviour: opened the last email of this workflow?
    page.get_by_role("link", name="Add a step after: Wait").click()
    panel.get_by_role("link", name="If / else").click()
    panel.get_by_label("Condition").select_option(label="Opened the last email of this workflow")
    panel.get_by_role("button", name="Save step").click()
    expect(page.locator("[data-type=if]")).to_contain_text("Opened the last email")

    # No: send the email. Then, after the branches, add a tag.
    page.get_by_role("link", name="+ Add step to “No”").click()
    panel.get_by_role("link", name="Send email").click()
    panel.get_by_label("Email template").select_option(label="Welcome")
    panel.get_by_role("button", name="Save step").click()
    expect(page.locator("[data-branch$='-no']")).to_contain_text("Send “Welcome”")
    page.get_by_role("link", name="Add a step after: If / else").click()
    panel.get_by_role("link", name="Add tag").click()
    panel.get_by_label("Tag").fill("welcomed")
    panel.get_by_role("button", name="Save step").click()
    expect(page.locator("#flow > ol > li")).to_have_count(3)

    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".alert-success")).to_contain_text("Version 1 published")
    expect(page.locator("#workflow-status")).to_have_text("Active")
    workflow = Workflow.objects.for_workspace(workspace).get()
    steps = workflow.published.graph["steps"]
    assert [s["type"] for s in steps] == ["wait", "if", "add_tag"]
    assert steps[1]["no"][0]["type"] == "send_email"
    assert workflow.published.graph["trigger"]["type"] == "form_submitted"

    # Test mode for Bo: the wait is skipped, he did not open, the email goes to the Outbox.
    page.get_by_role("link", name="Test mode").click()
    panel.get_by_label("Contact's email address").fill("bo@example.com")
    panel.get_by_role("button", name="Run test").click()
    path = page.locator("#test-path li")
    expect(path).to_have_count(4)
    expect(path.nth(0)).to_contain_text("Wait skipped")
    expect(path.nth(1)).to_contain_text("No")
    expect(path.nth(2)).to_contain_text("kept in the Outbox")
    expect(path.nth(3)).to_contain_text("Would run: Add tag: welcomed")
    assert OutboxMessage.objects.filter(subject="[Workflow test] Hola Bo").exists()

    # Pause and resume.
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#workflow-status")).to_have_text("Paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#workflow-status")).to_have_text("Active")


def test_install_a_template_in_one_click(page):
    user = UserFactory(email="ana@example.pt", name="Ana")
    workspace = create_workspace(name="Livraria", owner=user)
    log_in(page, user.email, PASSWORD)
    page.goto("/workflows/")
    page.get_by_role("button", name="Install “Yearly birthday”").click()
    expect(page.locator(".alert-success")).to_contain_text("is installed as a draft")
    expect(page.locator("#trigger-text")).to_contain_text("Date (yearly)")
    expect(page.locator("[data-type=send_email]")).to_contain_text("Birthday · A gift for you")
    template = EmailTemplate.objects.for_workspace(workspace).get(name="Birthday · A gift for you")
    assert "birthday_coupon" in template.body
    # Editable like any workflow: change the tag and publish.
    page.locator("[data-type=add_tag]").get_by_role("link", name="Edit").click()
    page.locator("#side-panel").get_by_label("Tag").fill("birthday 2026")
    page.locator("#side-panel").get_by_role("button", name="Save step").click()
    expect(page.locator("[data-type=add_tag]")).to_contain_text("birthday 2026")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#workflow-status")).to_have_text("Active")
