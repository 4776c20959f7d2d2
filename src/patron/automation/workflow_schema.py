"""The workflow graph: its JSON schema (version 1), validated on every save.

A graph is::

    {"schema": 1,
     "trigger": {"type": "form_submitted", "form": 12},
     "settings": {"reenrol": "never" | "always" | "after", "reenrol_days": 30,
                  "goal": <segment definition or null>,
                  "window": {"days": [0, 1, 2, 3, 4], "start_hour": 9, "end_hour": 17} | null},
     "steps": [<step>, ...]}

Steps run top to bottom. ``if`` and ``split`` steps carry two lists of steps
(``yes``/``no``, ``a``/``b``), shown side by side; once a branch's steps are
done the contact goes on with the step after the ``if``/``split``. Every step
has an ``id`` unique in the graph (kept across versions, so statistics of a
step follow it through edits). Step types and their settings are listed in
``STEP_TYPES``; triggers in ``TRIGGER_TYPES``.

``validate_graph`` normalises a graph and raises ``WorkflowInvalid`` naming the
first problem ("Step 3 (Send email): choose a template.").
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.activity.kinds import EVENT_KINDS
from patron.audience import segments
from patron.audience.models import MailingList, Segment
from patron.capture.models import Form
from patron.core.models import Workspace
from patron.crm.models import LifecycleStage, Pipeline, TicketPriority
from patron.mail.models import EmailTemplate

SCHEMA_VERSION = 1
MAX_STEPS = 100
MAX_DEPTH = 6
STEP_ID = re.compile(r"^[a-z0-9_-]{1,40}$")
PROPERTY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CONTACT_FIELDS = {
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "job_title": gettext_lazy("Job title"),
    "phone": gettext_lazy("Phone"),
    "city": gettext_lazy("City"),
    "country": gettext_lazy("Country"),
    "source": gettext_lazy("Source"),
    "language": gettext_lazy("Language"),
}

TRIGGER_TYPES: dict[str, Promise] = {
    "form_submitted": gettext_lazy("Form submitted"),
    "segment_entered": gettext_lazy("Entered a segment"),
    "segment_left": gettext_lazy("Left a segment"),
    "list_joined": gettext_lazy("Joined a list"),
    "event": gettext_lazy("Event happened"),
    "field_changed": gettext_lazy("Field changed"),
    "date": gettext_lazy("Date (yearly)"),
    "deal_stage": gettext_lazy("Deal stage changed"),
    "score_crossed": gettext_lazy("Score crossed a threshold"),
    "manual": gettext_lazy("Manually or by API only"),
}

STEP_TYPES: dict[str, Promise] = {
    "wait": gettext_lazy("Wait"),
    "wait_until": gettext_lazy("Wait until"),
    "if": gettext_lazy("If / else"),
    "split": gettext_lazy("A/B split"),
    "send_email": gettext_lazy("Send email"),
    "notify": gettext_lazy("Notify a team member"),
    "add_tag": gettext_lazy("Add tag"),
    "remove_tag": gettext_lazy("Remove tag"),
    "subscribe": gettext_lazy("Subscribe to list"),
    "unsubscribe": gettext_lazy("Unsubscribe from list"),
    "update_field": gettext_lazy("Update field"),
    "change_score": gettext_lazy("Change score"),
    "set_lifecycle": gettext_lazy("Set lifecycle stage"),
    "assign_owner": gettext_lazy("Assign owner"),
    "create_task": gettext_lazy("Create task"),
    "create_deal": gettext_lazy("Create deal"),
    "create_ticket": gettext_lazy("Create ticket"),
    "webhook": gettext_lazy("Call a webhook"),
    "enrol": gettext_lazy("Enrol in another workflow"),
    "exit": gettext_lazy("Exit the workflow"),
}
BRANCHES = {"if": ("yes", "no"), "split": ("a", "b")}
CONDITION_TYPES = {
    "segment": gettext_lazy("Matches segment conditions"),
    "in_segment": gettext_lazy("Is in a segment"),
    "opened_last_email": gettext_lazy("Opened the last email of this workflow"),
    "clicked_last_email": gettext_lazy("Clicked in the last email of this workflow"),
    "clicked_link": gettext_lazy("Clicked a link (since entering)"),
    "event_since": gettext_lazy("Did something since entering"),
}
WAIT_UNTIL_MODES = {"datetime", "weekday", "event"}
PROPERTY_OPS = {"eq", "contains", "starts"}


class WorkflowInvalid(ValueError):
    """A graph that cannot run; the message names the step."""


def new_step_id() -> str:
    return "s" + secrets.token_hex(4)


def empty_graph() -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "trigger": {"type": "manual"},
        "settings": {"reenrol": "never", "reenrol_days": 0, "goal": None, "window": None},
        "steps": [],
    }


def walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step of a list, depth first in reading order."""
    for step in steps:
        yield step
        for branch in BRANCHES.get(step.get("type", ""), ()):
            yield from walk(step.get(branch) or [])


def step_label(step: dict[str, Any]) -> str:
    return str(STEP_TYPES.get(str(step.get("type")), _("Step")))


class _Context:
    def __init__(self, workspace: Workspace, workflow_id: int | None) -> None:
        self.workspace = workspace
        self.workflow_id = workflow_id
        self.ids: set[str] = set()
        self.count = 0
        self._vocab: segments.Vocabulary | None = None

    @property
    def vocab(self) -> segments.Vocabulary:
        if self._vocab is None:
            self._vocab = segments.vocabulary(self.workspace)
        return self._vocab


def validate_graph(
    workspace: Workspace, graph: Any, *, workflow_id: int | None = None
) -> dict[str, Any]:
    """The graph, normalised; raises ``WorkflowInvalid`` with a message naming the problem."""
    if not isinstance(graph, dict):
        raise WorkflowInvalid(_("A workflow must be an object with a trigger and steps."))
    schema = graph.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise WorkflowInvalid(
            _("Unknown workflow schema version %(version)r (this Patron reads version 1).")
            % {"version": schema}
        )
    context = _Context(workspace, workflow_id)
    trigger = _validate_trigger(context, graph.get("trigger") or {"type": "manual"})
    settings = _validate_settings(context, graph.get("settings") or {})
    steps = _validate_steps(context, graph.get("steps") or [], "", 0)
    return {"schema": SCHEMA_VERSION, "trigger": trigger, "settings": settings, "steps": steps}


def _known(model: Any, workspace: Workspace, value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if model.objects.for_workspace(workspace).filter(pk=number).exists() else None


def _filters(raw: Any, where: str) -> list[dict[str, str]]:
    clean = []
    for item in raw or []:
        if not isinstance(item, dict):
            raise WorkflowInvalid(
                _("%(where)s: each property filter needs a property and a value.")
                % {"where": where}
            )
        prop = str(item.get("property", "")).strip()
        if not PROPERTY.match(prop):
            raise WorkflowInvalid(
                _("%(where)s: property names are lower-case words such as name or url.")
                % {"where": where}
            )
        op = item.get("op", "eq")
        if op not in PROPERTY_OPS:
            raise WorkflowInvalid(
                _("%(where)s: property tests are is, contains or starts with.") % {"where": where}
            )
        value = str(item.get("value", "")).strip()
        if not value:
            raise WorkflowInvalid(
                _("%(where)s: give the property %(property)s a value.")
                % {"where": where, "property": prop}
            )
        clean.append({"property": prop, "op": op, "value": value[:500]})
    return clean


def _int(value: Any, low: int, high: int, message: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise WorkflowInvalid(message) from None
    if not low <= number <= high:
        raise WorkflowInvalid(message)
    return number


def _validate_trigger(context: _Context, trigger: Any) -> dict[str, Any]:
    where = str(_("Trigger"))
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGER_TYPES:
        raise WorkflowInvalid(
            _("%(where)s: choose one of %(types)s.")
            % {"where": where, "types": ", ".join(TRIGGER_TYPES)}
        )
    kind = trigger["type"]
    workspace = context.workspace
    if kind == "form_submitted":
        form = trigger.get("form")
        if form in (None, ""):
            return {"type": kind, "form": None}
        form_id = _known(Form, workspace, form)
        if form_id is None:
            raise WorkflowInvalid(_("Trigger: choose a form of this workspace."))
        return {"type": kind, "form": form_id}
    if kind in {"segment_entered", "segment_left"}:
        segment_id = _known(Segment, workspace, trigger.get("segment"))
        if segment_id is None:
            raise WorkflowInvalid(_("Trigger: choose a segment."))
        return {"type": kind, "segment": segment_id}
    if kind == "list_joined":
        list_id = _known(MailingList, workspace, trigger.get("list"))
        if list_id is None:
            raise WorkflowInvalid(_("Trigger: choose a list."))
        return {"type": kind, "list": list_id}
    if kind == "event":
        event_kind = trigger.get("kind")
        if event_kind not in EVENT_KINDS or not EVENT_KINDS[str(event_kind)].about_contact:
            raise WorkflowInvalid(_("Trigger: choose what the contact did."))
        return {
            "type": kind,
            "kind": event_kind,
            "filters": _filters(trigger.get("filters"), where),
        }
    if kind == "field_changed":
        field = str(trigger.get("field", "")).strip()
        if field not in context.vocab.contact_fields:
            raise WorkflowInvalid(_("Trigger: choose a contact field."))
        return {"type": kind, "field": field, "to": str(trigger.get("to") or "").strip()[:200]}
    if kind == "date":
        field = str(trigger.get("field", "birthday"))
        spec = context.vocab.contact_fields.get(field)
        if spec is None or spec.kind != "date":
            raise WorkflowInvalid(_("Trigger: choose a date field such as the birthday."))
        return {
            "type": kind,
            "field": field,
            "hour": _int(trigger.get("hour", 9), 0, 23, _("Trigger: the hour is 0 to 23.")),
            "offset_days": _int(
                trigger.get("offset_days", 0),
                -60,
                60,
                _("Trigger: days before or after: -60 to 60."),
            ),
        }
    if kind == "deal_stage":
        pipeline = trigger.get("pipeline")
        pipeline_id = None
        if pipeline not in (None, ""):
            pipeline_id = _known(Pipeline, workspace, pipeline)
            if pipeline_id is None:
                raise WorkflowInvalid(_("Trigger: choose a pipeline of this workspace."))
        return {
            "type": kind,
            "pipeline": pipeline_id,
            "stage": str(trigger.get("stage") or "").strip()[:100],
        }
    if kind == "score_crossed":
        direction = trigger.get("direction", "up")
        if direction not in {"up", "down"}:
            raise WorkflowInvalid(_("Trigger: the score crosses the threshold going up or down."))
        return {
            "type": kind,
            "threshold": _int(
                trigger.get("threshold"),
                -100_000,
                100_000,
                _("Trigger: enter the score threshold."),
            ),
            "direction": direction,
        }
    return {"type": "manual"}


def _validate_settings(context: _Context, settings: Any) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise WorkflowInvalid(_("Settings must be an object."))
    reenrol = settings.get("reenrol", "never")
    if reenrol not in {"never", "always", "after"}:
        raise WorkflowInvalid(_("Re-enrolment: never, always, or after some days."))
    days = 0
    if reenrol == "after":
        days = _int(settings.get("reenrol_days"), 1, 3660, _("Re-enrolment: after 1 to 3660 days."))
    goal = settings.get("goal")
    if goal in (None, "", {}) or (isinstance(goal, dict) and not goal.get("conditions")):
        goal = None
    else:
        try:
            goal = segments.validate(context.workspace, goal, vocab=context.vocab)
        except segments.SegmentInvalid as error:
            raise WorkflowInvalid(_("Goal: %(error)s") % {"error": error}) from None
    window = settings.get("window")
    if window in (None, "", {}):
        window = None
    else:
        if not isinstance(window, dict):
            raise WorkflowInvalid(_("Schedule window must be an object."))
        days_of_week = sorted(
            {
                _int(d, 0, 6, _("Schedule window: days are 0 (Monday) to 6."))
                for d in window.get("days") or []
            }
        )
        if not days_of_week:
            raise WorkflowInvalid(_("Schedule window: choose at least one day."))
        start = _int(window.get("start_hour", 9), 0, 23, _("Schedule window: hours are 0 to 24."))
        end = _int(window.get("end_hour", 17), 1, 24, _("Schedule window: hours are 0 to 24."))
        if end <= start:
            raise WorkflowInvalid(_("Schedule window: the end must come after the start."))
        window = {"days": days_of_week, "start_hour": start, "end_hour": end}
    return {"reenrol": reenrol, "reenrol_days": days, "goal": goal, "window": window}


def _validate_steps(context: _Context, steps: Any, path: str, depth: int) -> list[dict[str, Any]]:
    if not isinstance(steps, list):
        raise WorkflowInvalid(_("Steps must be a list."))
    if depth > MAX_DEPTH:
        raise WorkflowInvalid(_("Branches nest at most %(depth)d deep.") % {"depth": MAX_DEPTH})
    clean = []
    for index, step in enumerate(steps, start=1):
        number = f"{path}.{index}" if path else str(index)
        context.count += 1
        if context.count > MAX_STEPS:
            raise WorkflowInvalid(
                _("A workflow has at most %(count)d steps.") % {"count": MAX_STEPS}
            )
        clean.append(_validate_step(context, step, number, depth))
    return clean


def _validate_step(context: _Context, step: Any, number: str, depth: int) -> dict[str, Any]:
    if not isinstance(step, dict) or step.get("type") not in STEP_TYPES:
        raise WorkflowInvalid(
            _("Step %(number)s: choose one of %(types)s.")
            % {"number": number, "types": ", ".join(STEP_TYPES)}
        )
    kind = step["type"]
    where = _("Step %(number)s (%(label)s)") % {"number": number, "label": STEP_TYPES[kind]}
    step_id = str(step.get("id") or new_step_id())
    if not STEP_ID.match(step_id):
        raise WorkflowInvalid(
            _("%(where)s: step ids are short lower-case words.") % {"where": where}
        )
    if step_id in context.ids:
        raise WorkflowInvalid(
            _("%(where)s: the id %(id)s is used twice.") % {"where": where, "id": step_id}
        )
    context.ids.add(step_id)

    def fail(message: str) -> WorkflowInvalid:
        return WorkflowInvalid(f"{where}: {message}")

    clean: dict[str, Any] = {"id": step_id, "type": kind}
    workspace = context.workspace
    if kind == "wait":
        amounts = {
            unit: _int(
                step.get(unit, 0) or 0,
                0,
                3660,
                str(fail(_("enter whole days, hours and minutes."))),
            )
            for unit in ("days", "hours", "minutes")
        }
        if not any(amounts.values()):
            raise fail(_("enter how long to wait."))
        clean.update(amounts)
    elif kind == "wait_until":
        mode = step.get("mode")
        if mode not in WAIT_UNTIL_MODES:
            raise fail(_("wait until a date and time, a weekday and hour, or an event."))
        clean["mode"] = mode
        if mode == "datetime":
            at = parse_datetime(str(step.get("at") or ""))
            if at is None:
                raise fail(_("enter the date and time as YYYY-MM-DD HH:MM."))
            clean["at"] = at.replace(tzinfo=None).isoformat(timespec="minutes")
        elif mode == "weekday":
            clean["weekday"] = _int(step.get("weekday"), 0, 6, str(fail(_("choose a weekday."))))
            clean["hour"] = _int(step.get("hour", 9), 0, 23, str(fail(_("the hour is 0 to 23."))))
        else:
            event_kind = step.get("kind")
            if event_kind not in EVENT_KINDS or not EVENT_KINDS[str(event_kind)].about_contact:
                raise fail(_("choose the event to wait for."))
            clean["kind"] = event_kind
            clean["filters"] = _filters(step.get("filters"), str(where))
            clean["of_workflow"] = bool(step.get("of_workflow"))
            clean["timeout_days"] = _int(
                step.get("timeout_days", 0) or 0,
                0,
                365,
                str(fail(_("wait at most 0 to 365 days."))),
            )
            clean["timeout_hours"] = _int(
                step.get("timeout_hours", 0) or 0, 0, 23, str(fail(_("hours are 0 to 23.")))
            )
            if not clean["timeout_days"] and not clean["timeout_hours"]:
                raise fail(_("say how long to wait at most."))
    elif kind in BRANCHES:
        if kind == "if":
            clean["condition"] = _validate_condition(context, step.get("condition"), fail)
        else:
            clean["percent_a"] = _int(
                step.get("percent_a", 50), 1, 99, str(fail(_("path A gets 1 to 99 percent.")))
            )
        for branch in BRANCHES[kind]:
            clean[branch] = _validate_steps(
                context, step.get(branch) or [], f"{number}.{branch}", depth + 1
            )
    elif kind == "send_email":
        template = _known(EmailTemplate, workspace, step.get("template"))
        if template is None:
            raise fail(_("choose an email template."))
        clean["template"] = template
    elif kind == "notify":
        user = _member(workspace, step.get("user"))
        if user is None and step.get("user") not in (None, "", "owner"):
            raise fail(_("choose a team member, or the contact's owner."))
        text = str(step.get("text") or "").strip()
        if not text:
            raise fail(_("write the notification text."))
        clean.update({"user": user if user is not None else "owner", "text": text[:300]})
    elif kind in {"add_tag", "remove_tag"}:
        tag = " ".join(str(step.get("tag") or "").split())
        if not tag or len(tag) > 50:
            raise fail(_("enter a tag (up to 50 characters)."))
        clean["tag"] = tag
    elif kind in {"subscribe", "unsubscribe"}:
        list_id = _known(MailingList, workspace, step.get("list"))
        if list_id is None:
            raise fail(_("choose a list."))
        clean["list"] = list_id
    elif kind == "update_field":
        field = str(step.get("field") or "")
        spec = context.vocab.contact_fields.get(field)
        if field not in CONTACT_FIELDS and not (spec is not None and spec.custom is not None):
            raise fail(_("choose a field."))
        clean.update({"field": field, "value": str(step.get("value") or "")[:500]})
    elif kind == "change_score":
        points = _int(
            step.get("points"),
            -10_000,
            10_000,
            str(fail(_("enter the points (negative to take away)."))),
        )
        if points == 0:
            raise fail(_("enter the points (negative to take away)."))
        clean["points"] = points
    elif kind == "set_lifecycle":
        if step.get("stage") not in LifecycleStage.values:
            raise fail(_("choose a lifecycle stage."))
        clean["stage"] = step["stage"]
    elif kind == "assign_owner":
        user = _member(workspace, step.get("user"))
        if user is None:
            raise fail(_("choose a team member."))
        clean["user"] = user
    elif kind == "create_task":
        title = str(step.get("title") or "").strip()
        if not title:
            raise fail(_("give the task a title."))
        assignee = _member(workspace, step.get("assignee"))
        clean.update(
            {
                "title": title[:200],
                "due_days": _int(
                    step.get("due_days", 1) or 0, 0, 365, str(fail(_("due in 0 to 365 days.")))
                ),
                "assignee": assignee if assignee is not None else "owner",
            }
        )
    elif kind == "create_deal":
        name = str(step.get("name") or "").strip()
        if not name:
            raise fail(_("give the deal a name."))
        pipeline = step.get("pipeline")
        pipeline_id = None
        if pipeline not in (None, ""):
            pipeline_id = _known(Pipeline, workspace, pipeline)
            if pipeline_id is None:
                raise fail(_("choose a pipeline of this workspace."))
        clean.update({"name": name[:200], "pipeline": pipeline_id})
    elif kind == "create_ticket":
        subject = str(step.get("subject") or "").strip()
        if not subject:
            raise fail(_("give the ticket a subject."))
        priority = step.get("priority") or TicketPriority.NORMAL
        if priority not in TicketPriority.values:
            raise fail(_("choose a priority."))
        clean.update(
            {
                "subject": subject[:200],
                "description": str(step.get("description") or "")[:5000],
                "priority": priority,
            }
        )
    elif kind == "webhook":
        from django.core.exceptions import ValidationError
        from django.core.validators import URLValidator

        url = str(step.get("url") or "").strip()
        try:
            URLValidator(schemes=["https", "http"])(url)
        except ValidationError:
            raise fail(_("enter the address to call (https://...).")) from None
        from patron.core.outbound import names_private_host

        if names_private_host(url):
            raise fail(_("call a server on the internet, not a private or local address."))
        secret = str(step.get("secret") or "").strip()
        if len(secret) < 16:
            raise fail(_("enter a signing secret of at least 16 characters."))
        clean.update({"url": url[:2000], "secret": secret[:200]})
    elif kind == "enrol":
        from patron.automation.models import Workflow

        target = _known(Workflow, workspace, step.get("workflow"))
        if target is None:
            raise fail(_("choose a workflow."))
        if context.workflow_id is not None and target == context.workflow_id:
            raise fail(_("a workflow cannot enrol contacts into itself."))
        clean["workflow"] = target
    return clean


def _member(workspace: Workspace, value: Any) -> int | None:
    from patron.core.selectors import active_users

    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if any(user.pk == number for user in active_users(workspace)) else None


def _validate_condition(context: _Context, condition: Any, fail: Any) -> dict[str, Any]:
    if not isinstance(condition, dict) or condition.get("type") not in CONDITION_TYPES:
        raise fail(_("choose a condition."))
    kind = condition["type"]
    if kind == "segment":
        try:
            definition = segments.validate(
                context.workspace, condition.get("definition"), vocab=context.vocab
            )
        except segments.SegmentInvalid as error:
            raise fail(str(error)) from None
        if not definition["conditions"]:
            raise fail(_("add at least one condition."))
        return {"type": kind, "definition": definition}
    if kind == "in_segment":
        segment_id = _known(Segment, context.workspace, condition.get("segment"))
        if segment_id is None:
            raise fail(_("choose a segment."))
        return {"type": kind, "segment": segment_id}
    if kind == "clicked_link":
        text = str(condition.get("url_contains") or "").strip()
        if not text:
            raise fail(_("enter part of the link's address."))
        return {"type": kind, "url_contains": text[:500]}
    if kind == "event_since":
        event_kind = condition.get("kind")
        if event_kind not in EVENT_KINDS:
            raise fail(_("choose what the contact did."))
        return {"type": kind, "kind": event_kind, "filters": _filters(condition.get("filters"), "")}
    return {"type": kind}


def step_index(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each step by id."""
    return {step["id"]: step for step in walk(steps)}


def next_step_map(steps: list[dict[str, Any]], after: str = "") -> dict[str, str]:
    """For each step id, the id of the step a contact goes to once it is done ("" = the end).

    A branch's last step leads to the step after its ``if``/``split``.
    """
    result: dict[str, str] = {}
    for index, step in enumerate(steps):
        following = steps[index + 1]["id"] if index + 1 < len(steps) else after
        result[step["id"]] = following
        for branch in BRANCHES.get(step["type"], ()):
            result.update(next_step_map(step.get(branch) or [], following))
    return result


def first_of(steps: list[dict[str, Any]], fallback: str) -> str:
    return steps[0]["id"] if steps else fallback


def parse_local(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed
