"""The workflow pages: list and templates, the builder's side panel, publish, pause, test mode."""

from __future__ import annotations

import pytest
from django.urls import reverse

from patron.automation import workflows
from patron.automation.models import Workflow
from patron.crm import services as crm
from tests.automation.workflow_helpers import published, template
from tests.mail.campaign_setup import verified_sender

pytestmark = pytest.mark.django_db


def test_list_shows_workflows_and_templates(logged_in, workspace):
    published(workspace, [{"id": "w", "type": "wait", "days": 1}], name="Nurture")
    page = logged_in.get(reverse("workflows:list")).content.decode()
    assert "Nurture" in page and "Abandoned cart" in page and "Install" in page


def test_install_a_template_in_one_click(logged_in, workspace):
    response = logged_in.post(reverse("workflows:install"), {"template": "abandoned_cart"})
    workflow = Workflow.objects.for_workspace(workspace).get()
    assert response.status_code == 302 and response["Location"].endswith(
        f"/workflows/{workflow.pk}/"
    )
    page = logged_in.get(response["Location"]).content.decode()
    assert "Cart · You left something behind" in page and "cart_abandoned" in page


def test_build_step_by_step_with_errors_shown(logged_in, workspace):
    workflow = workflows.create_workflow(workspace=workspace, name="Built")
    builder = reverse("workflows:builder", args=[workflow.pk])
    chooser = logged_in.get(builder + "?add_after=").content.decode()
    assert 'data-type="wait"' in chooser
    form = logged_in.get(builder + "?add_after=&type=wait").content.decode()
    assert 'name="days"' in form
    bad = logged_in.post(builder + "?add_after=&type=wait", {"step_type": "wait", "days": "0"})
    assert (
        bad.status_code == 200 and "Step 1 (Wait): enter how long to wait." in bad.content.decode()
    )
    workflow.refresh_from_db()
    assert workflow.draft["steps"] == []
    good = logged_in.post(builder + "?add_after=&type=wait", {"step_type": "wait", "days": "2"})
    assert good.status_code == 302
    workflow.refresh_from_db()
    wait_id = workflow.draft["steps"][0]["id"]
    logged_in.post(
        builder + f"?add_after={wait_id}&type=if",
        {"step_type": "if", "condition": "opened_last_email"},
    )
    workflow.refresh_from_db()
    if_id = workflow.draft["steps"][1]["id"]
    logged_in.post(
        builder + f"?branch_of={if_id}&branch=yes&type=add_tag",
        {"step_type": "add_tag", "tag": "opened"},
    )
    workflow.refresh_from_db()
    assert workflow.draft["steps"][1]["yes"][0]["tag"] == "opened"
    page = logged_in.get(builder).content.decode()
    assert "Wait 2 days" in page and "Add tag: opened" in page
    # Edit keeps the id; delete removes.
    logged_in.post(builder + f"?edit={wait_id}", {"step_type": "wait", "days": "3"})
    workflow.refresh_from_db()
    assert workflow.draft["steps"][0] == {
        "id": wait_id,
        "type": "wait",
        "days": 3,
        "hours": 0,
        "minutes": 0,
    }
    logged_in.post(reverse("workflows:step_delete", args=[workflow.pk]), {"step": if_id})
    workflow.refresh_from_db()
    assert [s["id"] for s in workflow.draft["steps"]] == [wait_id]


def test_trigger_publish_pause_resume(logged_in, workspace):
    workflow = workflows.create_workflow(workspace=workspace, name="Flow")
    builder = reverse("workflows:builder", args=[workflow.pk])
    logged_in.post(builder + "?add_after=&type=exit", {"step_type": "exit"})
    response = logged_in.post(
        builder + "?trigger=1&type=event",
        {
            "trigger_type": "event",
            "event_kind": "custom.event",
            "event_property": "name",
            "event_value": "cart_abandoned",
            "reenrol": "after",
            "reenrol_days": "7",
        },
    )
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.draft["trigger"]["filters"] == [
        {"property": "name", "op": "eq", "value": "cart_abandoned"}
    ]
    assert workflow.draft["settings"]["reenrol_days"] == 7
    logged_in.post(reverse("workflows:publish", args=[workflow.pk]))
    workflow.refresh_from_db()
    assert workflow.status == "active" and workflow.published.number == 1
    logged_in.post(reverse("workflows:pause", args=[workflow.pk]))
    workflow.refresh_from_db()
    assert workflow.status == "paused"
    logged_in.post(reverse("workflows:pause", args=[workflow.pk]))
    workflow.refresh_from_db()
    assert workflow.status == "active"


def test_test_mode_page(logged_in, workspace):
    verified_sender(workspace)
    crm.create_contact(workspace=workspace, first_name="Ann", email="ann@example.net")
    email = template(workspace)
    workflow = workflows.create_workflow(
        workspace=workspace,
        name="T",
        graph={
            "steps": [
                {"id": "w", "type": "wait", "days": 1},
                {"id": "m", "type": "send_email", "template": email.pk},
            ]
        },
    )
    page = logged_in.post(
        reverse("workflows:test", args=[workflow.pk]), {"email": "ann@example.net"}
    ).content.decode()
    assert "Path taken by ann@example.net" in page and "kept in the Outbox" in page
    missing = logged_in.post(
        reverse("workflows:test", args=[workflow.pk]), {"email": "x@example.net"}
    )
    assert "No contact has this email address." in missing.content.decode()


def test_enrolments_page_shows_errors_and_removes(logged_in, workspace):
    ann = crm.create_contact(workspace=workspace, email="ann@example.net")
    workflow = published(workspace, [{"id": "w", "type": "wait", "days": 1}])
    logged_in.post(reverse("workflows:enrol", args=[workflow.pk]), {"email": "ann@example.net"})
    enrolment = workflow.enrolments.get()
    enrolment.last_error = "RuntimeError: the CRM is down"
    enrolment.attempts = 2
    enrolment.save()
    page = logged_in.get(
        reverse("workflows:enrolments", args=[workflow.pk]) + "?status=errors"
    ).content.decode()
    assert "ann@example.net" in page and "Attempt 2 failed: RuntimeError: the CRM is down" in page
    logged_in.post(reverse("workflows:enrolment_remove", args=[workflow.pk, enrolment.pk]))
    enrolment.refresh_from_db()
    assert enrolment.status == "removed" and ann.pk == enrolment.contact_id


def test_delete_a_workflow_with_its_enrolments(logged_in, workspace):
    ann = crm.create_contact(workspace=workspace, email="ann@example.net")
    workflow = published(workspace, [{"id": "w", "type": "wait", "days": 1}])
    workflows.enrol_contact(workflow=workflow, contact=ann)
    response = logged_in.post(reverse("workflows:delete", args=[workflow.pk]))
    assert response.status_code == 302
    assert not Workflow.objects.for_workspace(workspace).exists()


def test_an_email_steps_campaign_shows_in_the_campaign_pages(logged_in, workspace):
    from patron.mail.models import Campaign
    from tests.automation.workflow_helpers import run

    verified_sender(workspace)
    ann = crm.create_contact(workspace=workspace, email="ann@example.net")
    email = template(workspace)
    workflow = published(workspace, [{"id": "m", "type": "send_email", "template": email.pk}])
    workflows.enrol_contact(workflow=workflow, contact=ann)
    run(workspace)
    campaign = Campaign.objects.for_workspace(workspace).get()
    assert campaign.automated
    listing = logged_in.get(reverse("campaigns:list"), {"kind": "automated"})
    assert listing.status_code == 200 and campaign.name in listing.content.decode()
    assert campaign.name not in logged_in.get(reverse("campaigns:list")).content.decode()
    detail = logged_in.get(reverse("campaigns:detail", args=[campaign.pk]))
    assert detail.status_code == 200 and "Welcome email" in detail.content.decode()


def test_editing_a_segment_tree_condition_keeps_its_tree(logged_in, workspace):
    definition = {
        "match": "all",
        "conditions": [{"type": "field", "field": "city", "op": "eq", "value": "Porto"}],
    }
    workflow = workflows.create_workflow(
        workspace=workspace,
        name="Tree",
        graph={
            "steps": [
                {
                    "id": "if",
                    "type": "if",
                    "condition": {"type": "segment", "definition": definition},
                }
            ]
        },
    )
    builder = reverse("workflows:builder", args=[workflow.pk])
    form = logged_in.get(builder + "?edit=if").content.decode()
    assert 'value="segment" selected' in form
    logged_in.post(builder + "?edit=if", {"step_type": "if", "condition": "segment"})
    workflow.refresh_from_db()
    assert (
        workflow.draft["steps"][0]["condition"]["definition"]["conditions"][0]["value"] == "Porto"
    )
    new = logged_in.get(builder + "?add_after=if&type=if").content.decode()
    assert 'value="segment"' not in new
