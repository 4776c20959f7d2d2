"""Workflow services: validation with clear errors, publishing, builder edits, test mode, stats."""

from __future__ import annotations

import pytest

from patron.activity.services import record
from patron.automation import workflow_schema as schema
from patron.automation import workflows
from patron.automation.models import Workflow, WorkflowVersion
from patron.crm import services as crm
from patron.mail.models import Delivery, OutboxMessage
from tests.automation.workflow_helpers import published, run, template
from tests.mail.campaign_setup import verified_sender

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"schema": 7, "steps": []}, "Unknown workflow schema version 7"),
        ({"trigger": {"type": "nope"}}, "Trigger: choose one of"),
        ({"trigger": {"type": "segment_entered", "segment": 999}}, "Trigger: choose a segment."),
        ({"steps": [{"type": "wait"}]}, "Step 1 (Wait): enter how long to wait."),
        ({"steps": [{"type": "send_email"}]}, "Step 1 (Send email): choose an email template."),
        (
            {
                "steps": [
                    {
                        "type": "if",
                        "condition": {"type": "opened_last_email"},
                        "yes": [{"type": "add_tag", "tag": ""}],
                    }
                ]
            },
            "Step 1.yes.1 (Add tag): enter a tag",
        ),
        (
            {"steps": [{"id": "a", "type": "exit"}, {"id": "a", "type": "exit"}]},
            "Step 2 (Exit the workflow): the id a is used twice.",
        ),
        (
            {"steps": [{"type": "webhook", "url": "ftp://x", "secret": "s" * 20}]},
            "Step 1 (Call a webhook): enter the address to call",
        ),
        (
            {"settings": {"reenrol": "after", "reenrol_days": 0}},
            "Re-enrolment: after 1 to 3660 days.",
        ),
        (
            {"settings": {"window": {"days": [0], "start_hour": 17, "end_hour": 9}}},
            "Schedule window: the end must come after the start.",
        ),
    ],
)
def test_invalid_graphs_are_refused_with_a_message_naming_the_step(workspace, graph, message):
    with pytest.raises(schema.WorkflowInvalid) as error:
        workflows.create_workflow(workspace=workspace, name="X", graph=graph)
    assert message in str(error.value)
    assert not Workflow.objects.for_workspace(workspace).exists()


def test_publishing_freezes_versions_and_edits_do_not_touch_them(workspace):
    workflow = workflows.create_workflow(workspace=workspace, name="Welcome")
    with pytest.raises(schema.WorkflowInvalid, match="at least one step"):
        workflows.publish_workflow(workflow=workflow)
    step = workflows.add_step(workflow=workflow, step={"type": "wait", "days": 2})
    workflows.add_step(workflow=workflow, step={"type": "add_tag", "tag": "a"}, after=step["id"])
    first = workflows.publish_workflow(workflow=workflow)
    assert workflow.status == "active" and first.number == 1
    workflows.update_step(workflow=workflow, step_id=step["id"], values={"days": 5})
    assert workflow.has_unpublished_changes
    assert (
        WorkflowVersion.objects.for_workspace(workspace).get(pk=first.pk).graph["steps"][0]["days"]
        == 2
    )
    second = workflows.publish_workflow(workflow=workflow)
    assert second.number == 2 and second.graph["steps"][0]["days"] == 5
    with pytest.raises(schema.WorkflowInvalid, match="Step 1 \\(Wait\\)"):
        workflows.update_step(workflow=workflow, step_id=step["id"], values={"days": 0})
    workflow.refresh_from_db()
    assert workflow.draft["steps"][0]["days"] == 5  # nothing half-saved


def test_builder_edits_branches(workspace):
    workflow = workflows.create_workflow(workspace=workspace, name="Branches")
    branch = workflows.add_step(
        workflow=workflow, step={"type": "if", **workflows.default_settings("if")}
    )
    yes = workflows.add_step(
        workflow=workflow,
        step={"type": "add_tag", "tag": "y"},
        branch_of=branch["id"],
        branch="yes",
    )
    workflows.add_step(workflow=workflow, step={"type": "add_tag", "tag": "y2"}, after=yes["id"])
    workflows.add_step(
        workflow=workflow, step={"type": "add_tag", "tag": "n"}, branch_of=branch["id"], branch="no"
    )
    steps = workflow.draft["steps"]
    assert [s["tag"] for s in steps[0]["yes"]] == ["y", "y2"] and steps[0]["no"][0]["tag"] == "n"
    workflows.delete_step(workflow=workflow, step_id=branch["id"])
    assert workflow.draft["steps"] == []


def test_test_mode_shows_the_path_and_keeps_mail_in_the_outbox(workspace):
    verified_sender(workspace)
    ann = crm.create_contact(
        workspace=workspace, first_name="Ann", email="ann@example.net", city="Porto"
    )
    email = template(workspace)
    workflow = workflows.create_workflow(
        workspace=workspace,
        name="Test me",
        graph={
            "steps": [
                {"id": "w", "type": "wait", "days": 2},
                {
                    "id": "if",
                    "type": "if",
                    "condition": {
                        "type": "segment",
                        "definition": {
                            "match": "all",
                            "conditions": [
                                {"type": "field", "field": "city", "op": "eq", "value": "Porto"}
                            ],
                        },
                    },
                    "yes": [{"id": "m", "type": "send_email", "template": email.pk}],
                    "no": [{"id": "n", "type": "add_tag", "tag": "elsewhere"}],
                },
                {"id": "t", "type": "add_tag", "tag": "done"},
            ]
        },
    )
    result = workflows.test_run(workflow=workflow, contact=ann)
    assert [(s.step_id, s.depth) for s in result.path] == [("w", 0), ("if", 0), ("m", 1), ("t", 0)]
    assert result.path[1].outcome == "Yes"
    assert "Outbox" in result.path[2].outcome
    message = OutboxMessage.objects.get()
    assert message.subject == "[Workflow test] Welcome, Ann" and message.to == ["ann@example.net"]
    assert not ann.tags.exists() and not Delivery.objects.for_workspace(workspace).exists()


def test_statistics_per_step_and_workflow(workspace):
    verified_sender(workspace)
    email = template(workspace)
    people = [crm.create_contact(workspace=workspace, email=f"p{n}@example.net") for n in range(3)]
    workflow = published(
        workspace,
        [
            {"id": "m", "type": "send_email", "template": email.pk},
            {"id": "w", "type": "wait", "days": 1},
        ],
    )
    for person in people:
        workflows.enrol_contact(workflow=workflow, contact=person)
    run(workspace)
    campaign_id = Delivery.objects.for_workspace(workspace).first().campaign_id
    record(
        workspace=workspace,
        kind="email.opened",
        contact_id=people[0].pk,
        source=("mail.campaign", campaign_id),
        properties={"campaign": campaign_id},
    )
    stats = workflows.step_stats(workflow)
    assert (stats["m"].entered, stats["m"].completed, stats["m"].opens, stats["m"].clicks) == (
        3,
        3,
        1,
        0,
    )
    assert (stats["w"].entered, stats["w"].waiting) == (3, 3)
    assert workflows.workflow_stats(workflow) == {
        "enrolled": 3,
        "active": 3,
        "completed": 0,
        "goal": 0,
        "exited": 0,
        "failed": 0,
    }


@pytest.mark.parametrize(
    "key",
    sorted(__import__("patron.automation.workflow_templates", fromlist=["TEMPLATES"]).TEMPLATES),
)
def test_every_template_installs_as_a_valid_draft_and_publishes(workspace, key):
    from patron.automation.workflow_templates import TEMPLATES, install_template
    from patron.mail.models import EmailTemplate
    from patron.mail.templates_service import check_content

    workflow = install_template(workspace=workspace, key=key)
    assert workflow.status == "draft" and workflow.draft["steps"]
    assert workflow.name == str(TEMPLATES[key].name)
    for email in EmailTemplate.objects.for_workspace(workspace):
        problems = [p for p in check_content(workspace, email) if p.blocking]
        assert problems == [], (email.name, problems)
        assert "lorem" not in email.body.lower()
    workflows.publish_workflow(workflow=workflow)
    again = install_template(workspace=workspace, key=key)
    assert again.name == f"{workflow.name} (2)"
