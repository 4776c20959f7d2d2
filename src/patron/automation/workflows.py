"""Workflow services: drafts, publishing, pausing, enrolling by hand, test runs, statistics.

A workflow's ``draft`` is edited freely (each save is validated, so a draft
always runs); ``publish_workflow`` freezes it as the next ``WorkflowVersion``
and makes it the one new contacts enter. Contacts inside keep the version they
entered (see ``patron.automation.engine``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from patron.activity.models import Event
from patron.automation import engine
from patron.automation import workflow_schema as schema
from patron.automation.models import (
    Enrolment,
    EnrolmentStatus,
    StepRun,
    Workflow,
    WorkflowEmail,
    WorkflowStatus,
    WorkflowVersion,
)
from patron.core.models import User, Workspace
from patron.core.services import record_audit
from patron.crm.models import Contact

WorkflowInvalid = schema.WorkflowInvalid


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise WorkflowInvalid(_("Give the workflow a name."))
    if len(name) > 150:
        raise WorkflowInvalid(_("Keep the name under 150 characters."))
    return name


@transaction.atomic
def create_workflow(
    *,
    workspace: Workspace,
    name: str,
    graph: Any = None,
    description: str = "",
    actor: User | None = None,
    template_key: str = "",
) -> Workflow:
    """A new draft workflow (validated)."""
    clean = schema.validate_graph(workspace, graph if graph is not None else schema.empty_graph())
    workflow = Workflow.objects.create(
        workspace=workspace,
        name=_clean_name(name),
        description=(description or "").strip()[:300],
        draft=clean,
        created_by=actor,
        template_key=template_key,
    )
    record_audit(workspace=workspace, actor=actor, action="workflow.created", target=workflow.name)
    return workflow


@transaction.atomic
def update_workflow(
    *,
    workflow: Workflow,
    name: str | None = None,
    description: str | None = None,
    graph: Any = None,
    actor: User | None = None,
) -> Workflow:
    """Change the name, description or draft graph; nothing is saved when the graph is invalid."""
    if name is not None:
        workflow.name = _clean_name(name)
    if description is not None:
        workflow.description = description.strip()[:300]
    if graph is not None:
        workflow.draft = schema.validate_graph(workflow.workspace, graph, workflow_id=workflow.pk)
    workflow.updated_at = timezone.now()
    workflow.save()
    return workflow


@transaction.atomic
def publish_workflow(*, workflow: Workflow, actor: User | None = None) -> WorkflowVersion:
    """Freeze the draft as the next version and make the workflow active on it.

    Running enrolments keep their version; new ones enter this one.
    """
    locked = (
        Workflow.objects.for_workspace(workflow.workspace_id)
        .select_for_update()
        .get(pk=workflow.pk)
    )
    graph = schema.validate_graph(locked.workspace, locked.draft, workflow_id=locked.pk)
    if not graph["steps"]:
        raise WorkflowInvalid(_("Add at least one step before publishing."))
    number = (locked.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = WorkflowVersion.objects.create(
        workspace_id=locked.workspace_id,
        workflow=locked,
        number=number,
        graph=graph,
        published_by=actor,
    )
    locked.published = version
    locked.draft = graph
    locked.trigger_type = graph["trigger"]["type"]
    if locked.status == WorkflowStatus.DRAFT:
        locked.status = WorkflowStatus.ACTIVE
    locked.updated_at = timezone.now()
    locked.save()
    record_audit(
        workspace=locked.workspace,
        actor=actor,
        action="workflow.published",
        target=locked.name,
        data={"workflow": locked.pk, "version": number},
    )
    _refresh(workflow, locked)
    return version


def _refresh(target: Workflow, source: Workflow) -> None:
    for name in ("status", "published_id", "draft", "trigger_type", "updated_at", "paused_at"):
        setattr(target, name, getattr(source, name))
    target.published = source.published


@transaction.atomic
def pause_workflow(*, workflow: Workflow, actor: User | None = None) -> Workflow:
    """Stop the timers and the triggers; running enrolments wait where they are."""
    if workflow.status != WorkflowStatus.ACTIVE:
        raise WorkflowInvalid(_("Only an active workflow can be paused."))
    now = timezone.now()
    Workflow.objects.for_workspace(workflow.workspace_id).filter(pk=workflow.pk).update(
        status=WorkflowStatus.PAUSED, paused_at=now, updated_at=now
    )
    workflow.status, workflow.paused_at = WorkflowStatus.PAUSED, now
    record_audit(
        workspace=workflow.workspace, actor=actor, action="workflow.paused", target=workflow.name
    )
    return workflow


@transaction.atomic
def resume_workflow(*, workflow: Workflow, actor: User | None = None) -> Workflow:
    """Start again: timers that came due while paused fire at the next round (late)."""
    if workflow.status != WorkflowStatus.PAUSED:
        raise WorkflowInvalid(_("Only a paused workflow can be resumed."))
    Workflow.objects.for_workspace(workflow.workspace_id).filter(pk=workflow.pk).update(
        status=WorkflowStatus.ACTIVE, paused_at=None, updated_at=timezone.now()
    )
    workflow.status, workflow.paused_at = WorkflowStatus.ACTIVE, None
    record_audit(
        workspace=workflow.workspace, actor=actor, action="workflow.resumed", target=workflow.name
    )
    return workflow


@transaction.atomic
def delete_workflow(*, workflow: Workflow, actor: User | None = None) -> None:
    record_audit(
        workspace=workflow.workspace, actor=actor, action="workflow.deleted", target=workflow.name
    )
    Enrolment.objects.for_workspace(workflow.workspace_id).filter(workflow=workflow).delete()
    Workflow.objects.for_workspace(workflow.workspace_id).filter(pk=workflow.pk).update(
        published=None
    )
    workflow.delete()


def enrol_contact(*, workflow: Workflow, contact: Contact, source: str = "manual") -> Enrolment:
    """Put one contact into an active workflow (manual or API enrolment)."""
    try:
        return engine.enrol_contact(workflow=workflow, contact=contact, source=source)
    except engine.EnrolmentRefused as error:
        raise WorkflowInvalid(str(error)) from None


@transaction.atomic
def remove_enrolment(*, enrolment: Enrolment, actor: User | None = None) -> Enrolment:
    """Take a contact out of a workflow: its pending steps will not run."""
    changed = (
        Enrolment.objects.for_workspace(enrolment.workspace_id)
        .filter(pk=enrolment.pk, status=EnrolmentStatus.ACTIVE)
        .update(
            status=EnrolmentStatus.REMOVED,
            finished_at=timezone.now(),
            next_wake_at=None,
            lease_until=None,
            waiting_for="",
        )
    )
    if not changed:
        raise WorkflowInvalid(_("The contact is not in the workflow any more."))
    enrolment.refresh_from_db()
    return enrolment


# --- Editing the draft step by step (the builder) ---------------------------------------------


def _locate(steps: list[dict[str, Any]], step_id: str) -> tuple[list[dict[str, Any]], int] | None:
    for index, step in enumerate(steps):
        if step["id"] == step_id:
            return steps, index
        for branch in schema.BRANCHES.get(step["type"], ()):
            found = _locate(step.setdefault(branch, []), step_id)
            if found is not None:
                return found
    return None


def default_settings(step_type: str) -> dict[str, Any]:
    defaults: dict[str, dict[str, Any]] = {
        "wait": {"days": 1, "hours": 0, "minutes": 0},
        "wait_until": {"mode": "weekday", "weekday": 0, "hour": 9},
        "if": {"condition": {"type": "opened_last_email"}, "yes": [], "no": []},
        "split": {"percent_a": 50, "a": [], "b": []},
        "exit": {},
    }
    return copy.deepcopy(defaults.get(step_type, {}))


def add_step(
    *,
    workflow: Workflow,
    step: dict[str, Any],
    after: str = "",
    branch_of: str = "",
    branch: str = "",
) -> dict[str, Any]:
    """Insert ``step`` after the step ``after`` (or first in ``branch`` of ``branch_of``, or
    first of all); validated with the whole draft. Returns the step as saved."""
    graph = copy.deepcopy(workflow.draft)
    new = {**step, "id": step.get("id") or schema.new_step_id()}
    if after:
        found = _locate(graph["steps"], after)
        if found is None:
            raise WorkflowInvalid(_("That step is no longer in the workflow."))
        steps, index = found
        steps.insert(index + 1, new)
    elif branch_of:
        found = _locate(graph["steps"], branch_of)
        if found is None or branch not in schema.BRANCHES.get(found[0][found[1]]["type"], ()):
            raise WorkflowInvalid(_("That branch is no longer in the workflow."))
        owner = found[0][found[1]]
        owner.setdefault(branch, []).insert(0, new)
    else:
        graph["steps"].insert(0, new)
    update_workflow(workflow=workflow, graph=graph)
    return schema.step_index(workflow.draft["steps"])[new["id"]]


def update_step(*, workflow: Workflow, step_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """Change a step's settings (its type, id and branches stay)."""
    graph = copy.deepcopy(workflow.draft)
    found = _locate(graph["steps"], step_id)
    if found is None:
        raise WorkflowInvalid(_("That step is no longer in the workflow."))
    steps, index = found
    current = steps[index]
    kept = {
        key: current[key]
        for key in ("id", "type", *schema.BRANCHES.get(current["type"], ()))
        if key in current
    }
    steps[index] = {**values, **kept}
    update_workflow(workflow=workflow, graph=graph)
    return schema.step_index(workflow.draft["steps"])[step_id]


def delete_step(*, workflow: Workflow, step_id: str) -> None:
    """Remove a step (an if/else or split with its branches)."""
    graph = copy.deepcopy(workflow.draft)
    found = _locate(graph["steps"], step_id)
    if found is None:
        raise WorkflowInvalid(_("That step is no longer in the workflow."))
    steps, index = found
    del steps[index]
    update_workflow(workflow=workflow, graph=graph)


def set_trigger(
    *, workflow: Workflow, trigger: dict[str, Any], settings: dict[str, Any] | None = None
) -> None:
    graph = copy.deepcopy(workflow.draft)
    graph["trigger"] = trigger
    if settings is not None:
        graph["settings"] = settings
    update_workflow(workflow=workflow, graph=graph)


# --- Test mode -----------------------------------------------------------------------------------


@dataclass
class TestStep:
    step_id: str
    label: str
    outcome: str
    depth: int = 0


@dataclass
class TestRun:
    contact: Contact
    path: list[TestStep] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)


def test_run(*, workflow: Workflow, contact: Contact) -> TestRun:
    """Run the draft for one contact without waiting and without changing anything.

    Waits are skipped; conditions are evaluated for real (behaviour "since
    entering" counts from now, so it is "no"); emails are rendered for the
    contact and kept in the Outbox, never sent; other actions are described,
    not performed. Returns the path taken.
    """
    from patron.mail.automated import capture_test_email
    from patron.mail.models import EmailTemplate

    graph = schema.validate_graph(workflow.workspace, workflow.draft, workflow_id=workflow.pk)
    run = TestRun(contact=contact)
    now = timezone.now()
    fake = engine.Claimed(
        id=0,
        workflow_id=workflow.pk,
        version_id=0,
        contact_id=contact.pk,
        step="",
        runs=0,
        round=1,
        attempts=0,
        waiting_for="",
        entered_at=now,
    )

    def walk(steps: list[dict[str, Any]], depth: int) -> bool:
        for step in steps:
            label = schema.step_label(step)
            kind = step["type"]
            if kind == "wait":
                outcome = _("Wait skipped (%(days)s d %(hours)s h %(minutes)s min)") % step
            elif kind == "wait_until":
                outcome = _("Wait skipped")
            elif kind == "if":
                holds = engine.condition_holds(
                    workflow.workspace, workflow, step["condition"], [fake], now
                )
                branch = "yes" if holds else "no"
                run.path.append(TestStep(step["id"], label, _("Yes") if holds else _("No"), depth))
                if not walk(step.get(branch) or [], depth + 1):
                    return False
                continue
            elif kind == "split":
                bucket = engine.split_bucket(contact.pk, step["id"])
                branch = "a" if bucket < step["percent_a"] else "b"
                run.path.append(
                    TestStep(
                        step["id"], label, _("Path %(path)s") % {"path": branch.upper()}, depth
                    )
                )
                if not walk(step.get(branch) or [], depth + 1):
                    return False
                continue
            elif kind == "send_email":
                template = EmailTemplate.objects.for_workspace(workflow.workspace).get(
                    pk=step["template"]
                )
                subject = capture_test_email(template=template, contact=contact)
                run.emails.append(subject)
                outcome = _("“%(subject)s” kept in the Outbox (test mode sends nothing)") % {
                    "subject": subject
                }
            elif kind == "exit":
                run.path.append(TestStep(step["id"], label, _("Leaves the workflow"), depth))
                return False
            else:
                outcome = _("Would run: %(what)s") % {
                    "what": describe_step(workflow.workspace, step)
                }
            run.path.append(TestStep(step["id"], label, outcome, depth))
        return True

    walk(graph["steps"], 0)
    return run


def describe_step(workspace: Workspace, step: dict[str, Any]) -> str:
    """One line saying what a step does, for the builder and test mode."""
    kind = step["type"]
    if kind == "wait":
        parts = []
        if step.get("days"):
            parts.append(ngettext("%(n)d day", "%(n)d days", step["days"]) % {"n": step["days"]})
        if step.get("hours"):
            parts.append(
                ngettext("%(n)d hour", "%(n)d hours", step["hours"]) % {"n": step["hours"]}
            )
        if step.get("minutes"):
            parts.append(
                ngettext("%(n)d minute", "%(n)d minutes", step["minutes"]) % {"n": step["minutes"]}
            )
        return _("Wait %(time)s") % {"time": ", ".join(parts)}
    if kind == "wait_until":
        if step["mode"] == "datetime":
            return _("Wait until %(at)s (contact's time)") % {"at": step["at"].replace("T", " ")}
        if step["mode"] == "weekday":
            day = [
                _("Monday"),
                _("Tuesday"),
                _("Wednesday"),
                _("Thursday"),
                _("Friday"),
                _("Saturday"),
                _("Sunday"),
            ][step["weekday"]]
            return _("Wait until %(day)s at %(hour)s:00 (contact's time)") % {
                "day": day,
                "hour": step["hour"],
            }
        from patron.activity.kinds import EVENT_KINDS

        return _("Wait until: %(event)s, at most %(days)s d %(hours)s h") % {
            "event": EVENT_KINDS[step["kind"]].label,
            "days": step["timeout_days"],
            "hours": step["timeout_hours"],
        }
    if kind == "if":
        condition = step["condition"]
        label = str(schema.CONDITION_TYPES[condition["type"]])
        if condition["type"] == "segment":
            from patron.audience import segments

            return _("If: %(text)s") % {
                "text": segments.describe(segments.vocabulary(workspace), condition["definition"])
            }
        if condition["type"] == "clicked_link":
            return _("If: clicked a link containing “%(text)s”") % {
                "text": condition["url_contains"]
            }
        return _("If: %(text)s") % {"text": label}
    if kind == "split":
        return _("A/B split: %(a)s%% path A, %(b)s%% path B") % {
            "a": step["percent_a"],
            "b": 100 - step["percent_a"],
        }
    if kind == "send_email":
        from patron.mail.models import EmailTemplate

        template = (
            EmailTemplate.objects.for_workspace(workspace).filter(pk=step["template"]).first()
        )
        return _("Send “%(name)s”") % {"name": template.name if template else "?"}
    if kind in {"add_tag", "remove_tag"}:
        return f"{schema.STEP_TYPES[kind]}: {step['tag']}"
    if kind in {"subscribe", "unsubscribe"}:
        from patron.audience.models import MailingList

        mailing_list = MailingList.objects.for_workspace(workspace).filter(pk=step["list"]).first()
        return f"{schema.STEP_TYPES[kind]}: {mailing_list.name if mailing_list else '?'}"
    if kind == "update_field":
        return _("Set %(field)s to “%(value)s”") % {"field": step["field"], "value": step["value"]}
    if kind == "change_score":
        return _("Score %(points)+d") % {"points": step["points"]}
    if kind == "set_lifecycle":
        from patron.crm.models import LifecycleStage

        return _("Lifecycle stage: %(stage)s") % {"stage": LifecycleStage(step["stage"]).label}
    if kind in {"notify", "assign_owner"}:
        target = _user_name(step.get("user"))
        if kind == "notify":
            return _("Notify %(who)s: %(text)s") % {"who": target, "text": step["text"]}
        return _("Assign to %(who)s") % {"who": target}
    if kind == "create_task":
        return _("Task “%(title)s” for %(who)s, due in %(days)s days") % {
            "title": step["title"],
            "who": _user_name(step.get("assignee")),
            "days": step["due_days"],
        }
    if kind == "create_deal":
        return _("Deal “%(name)s”") % {"name": step["name"]}
    if kind == "create_ticket":
        return _("Ticket “%(subject)s”") % {"subject": step["subject"]}
    if kind == "webhook":
        return _("POST to %(url)s") % {"url": step["url"]}
    if kind == "enrol":
        target = Workflow.objects.for_workspace(workspace).filter(pk=step["workflow"]).first()
        return _("Enrol in “%(name)s”") % {"name": target.name if target else "?"}
    return str(schema.STEP_TYPES.get(kind, kind))


def describe_trigger(workspace: Workspace, trigger: dict[str, Any]) -> str:
    """One line saying who enters, with the names of what the trigger points at."""
    from patron.activity.kinds import EVENT_KINDS
    from patron.audience.models import MailingList, Segment
    from patron.capture.models import Form
    from patron.crm.models import Pipeline

    kind = trigger["type"]
    label = str(schema.TRIGGER_TYPES[kind])

    def name_of(model: Any, pk: Any) -> str:
        row = model.objects.for_workspace(workspace).filter(pk=pk).first() if pk else None
        return str(row) if row is not None else "?"

    if kind == "form_submitted":
        which = name_of(Form, trigger["form"]) if trigger.get("form") else _("any form")
        return f"{label}: {which}"
    if kind in {"segment_entered", "segment_left"}:
        return f"{label}: {name_of(Segment, trigger['segment'])}"
    if kind == "list_joined":
        return f"{label}: {name_of(MailingList, trigger['list'])}"
    if kind == "event":
        text = str(EVENT_KINDS[trigger["kind"]].label)
        filters = ", ".join(f"{f['property']} = {f['value']}" for f in trigger.get("filters") or [])
        return f"{label}: {text}" + (f" ({filters})" if filters else "")
    if kind == "field_changed":
        to = _(" to “%(value)s”") % {"value": trigger["to"]} if trigger.get("to") else ""
        return f"{label}: {trigger['field']}{to}"
    if kind == "date":
        return _("%(label)s: %(field)s, every year at %(hour)s:00 (contact's time)") % {
            "label": label,
            "field": trigger["field"],
            "hour": trigger["hour"],
        }
    if kind == "deal_stage":
        pipeline = name_of(Pipeline, trigger["pipeline"]) if trigger.get("pipeline") else ""
        stage = trigger.get("stage") or _("any stage")
        return f"{label}: {pipeline + ' → ' if pipeline else ''}{stage}"
    if kind == "score_crossed":
        arrow = "↑" if trigger["direction"] == "up" else "↓"
        return f"{label}: {arrow} {trigger['threshold']}"
    return label


def _user_name(value: Any) -> str:
    if value in (None, "", "owner"):
        return _("the contact's owner")
    user = User.objects.filter(pk=value).first()
    return str(user) if user else "?"


# --- Statistics -----------------------------------------------------------------------------------


@dataclass
class StepStats:
    entered: int = 0
    waiting: int = 0
    completed: int = 0
    errored: int = 0
    opens: int | None = None
    clicks: int | None = None


def workflow_stats(workflow: Workflow) -> dict[str, int]:
    """Enrolled, active, completed, goal reached, exited, failed (all versions)."""
    counts = dict(
        Enrolment.objects.for_workspace(workflow.workspace_id)
        .filter(workflow=workflow)
        .values_list("status")
        .annotate(number=Count("id"))
        .order_by()
    )
    return {
        "enrolled": sum(counts.values()),
        "active": counts.get(EnrolmentStatus.ACTIVE, 0),
        "completed": counts.get(EnrolmentStatus.COMPLETED, 0),
        "goal": counts.get(EnrolmentStatus.GOAL, 0),
        "exited": counts.get(EnrolmentStatus.EXITED, 0) + counts.get(EnrolmentStatus.REMOVED, 0),
        "failed": counts.get(EnrolmentStatus.FAILED, 0),
    }


def step_stats(workflow: Workflow) -> dict[str, StepStats]:
    """Per step id: entered, waiting there now, completed, errored; opens and clicks of emails."""
    raw = engine.count_by_step(workflow)
    stats: dict[str, StepStats] = {}
    errors = dict(
        Enrolment.objects.for_workspace(workflow.workspace_id)
        .filter(workflow=workflow, status=EnrolmentStatus.ACTIVE)
        .exclude(last_error="")
        .values_list("step")
        .annotate(number=Count("id"))
        .order_by()
    )
    for step_id, values in raw.items():
        waiting = values["waiting"]
        errored = values["failed"] + errors.get(step_id, 0)
        stats[step_id] = StepStats(
            entered=values["completed"] + values["failed"] + waiting,
            waiting=waiting,
            completed=values["completed"],
            errored=errored,
        )
    campaigns: dict[str, list[int]] = {}
    for step_id, campaign_id in (
        WorkflowEmail.objects.for_workspace(workflow.workspace_id)
        .filter(workflow=workflow)
        .values_list("step_id", "campaign_id")
    ):
        campaigns.setdefault(step_id, []).append(campaign_id)
    for step_id, ids in campaigns.items():
        counted = dict(
            Event.objects.for_workspace(workflow.workspace_id)
            .filter(
                kind__in=["email.opened", "email.clicked"],
                source_type="mail.campaign",
                source_id__in=[str(i) for i in ids],
            )
            .values_list("kind")
            .annotate(people=Count("contact_id", distinct=True))
            .order_by()
        )
        entry = stats.setdefault(step_id, StepStats())
        entry.opens = counted.get("email.opened", 0)
        entry.clicks = counted.get("email.clicked", 0)
    return stats


def enrolment_history(enrolment: Enrolment) -> list[StepRun]:
    return list(
        StepRun.objects.for_workspace(enrolment.workspace_id)
        .filter(enrolment=enrolment)
        .order_by("iteration", "id")
    )


def failed_enrolments(workflow: Workflow) -> Any:
    return (
        Enrolment.objects.for_workspace(workflow.workspace_id)
        .filter(workflow=workflow)
        .filter(Q(status=EnrolmentStatus.FAILED) | ~Q(last_error=""))
        .order_by("-id")
    )


def history_for(workspace: Workspace, enrolment_ids: list[int]) -> list[StepRun]:
    """The step runs of several enrolments, in order (one query)."""
    return list(
        StepRun.objects.for_workspace(workspace)
        .filter(enrolment_id__in=enrolment_ids)
        .order_by("enrolment_id", "iteration", "id")
    )
