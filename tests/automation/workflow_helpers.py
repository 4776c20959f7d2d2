"""Set-up shared by the workflow tests: a published workflow from a list of steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from patron.automation import engine, workflows
from patron.automation.models import Enrolment, StepRun, Workflow
from patron.core.models import Workspace
from patron.mail.models import EmailTemplate

BODY = (
    '<html><body><p>Hello {{ contact.first_name | default: "there" }},</p>'
    '<p><a href="https://example.com/guide">Read the guide</a></p>'
    '<p>{{ postal_address }} · <a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


def published(
    workspace: Workspace,
    steps: list[dict[str, Any]],
    *,
    trigger: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    name: str = "Welcome",
) -> Workflow:
    graph = {
        "schema": 1,
        "trigger": trigger or {"type": "manual"},
        "settings": {"reenrol": "never", "goal": None, "window": None, **(settings or {})},
        "steps": steps,
    }
    workflow = workflows.create_workflow(workspace=workspace, name=name, graph=graph)
    workflows.publish_workflow(workflow=workflow)
    return workflow


def template(workspace: Workspace, name: str = "Welcome email") -> EmailTemplate:
    return EmailTemplate.objects.create(
        workspace=workspace,
        name=name,
        format="html",
        subject="Welcome, {{ contact.first_name }}",
        body=BODY,
    )


def run(workspace: Workspace, now: datetime | None = None, rounds: int = 10) -> int:
    """Run rounds until nothing is due; returns the steps run."""
    steps = 0
    for _ in range(rounds):
        result = engine.run_due(workspace, now=now)
        steps += result.steps
        if not result.claimed:
            break
    return steps


def history(enrolment: Enrolment) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.step_id, r.result)
        for r in StepRun.objects.for_workspace(enrolment.workspace_id)
        .filter(enrolment=enrolment)
        .order_by("iteration")
    ]
