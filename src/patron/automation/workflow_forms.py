"""The builder's forms: a step's settings and the trigger's, turned into graph JSON.

The forms only collect values; ``workflow_schema.validate_graph`` decides what
is valid, so the builder and the API refuse the same things with the same words.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patron.activity.kinds import EVENT_KINDS
from patron.audience.models import MailingList, Segment
from patron.automation import workflow_schema as schema
from patron.automation.models import Workflow
from patron.capture.models import Form as CaptureForm
from patron.core.models import Workspace
from patron.core.selectors import active_users
from patron.crm.models import (
    CustomField,
    CustomFieldObject,
    LifecycleStage,
    Pipeline,
    TicketPriority,
)
from patron.mail.models import EmailTemplate

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]

# Which form fields each step type shows, in order.
STEP_FIELDS: dict[str, list[str]] = {
    "wait": ["days", "hours", "minutes"],
    "wait_until": [
        "mode",
        "at",
        "weekday",
        "hour",
        "event_kind",
        "event_property",
        "event_value",
        "of_workflow",
        "timeout_days",
        "timeout_hours",
    ],
    "if": ["condition", "segment", "url_contains", "event_kind", "event_property", "event_value"],
    "split": ["percent_a"],
    "send_email": ["template"],
    "notify": ["user", "text"],
    "add_tag": ["tag"],
    "remove_tag": ["tag"],
    "subscribe": ["mailing_list"],
    "unsubscribe": ["mailing_list"],
    "update_field": ["field", "value"],
    "change_score": ["points"],
    "set_lifecycle": ["stage"],
    "assign_owner": ["user"],
    "create_task": ["title", "due_days", "user"],
    "create_deal": ["name", "pipeline"],
    "create_ticket": ["subject", "description", "priority"],
    "webhook": ["url", "secret"],
    "enrol": ["workflow"],
    "exit": [],
}

TRIGGER_FIELDS: dict[str, list[str]] = {
    "manual": [],
    "form_submitted": ["form"],
    "segment_entered": ["segment"],
    "segment_left": ["segment"],
    "list_joined": ["mailing_list"],
    "event": ["event_kind", "event_property", "event_value"],
    "field_changed": ["field", "to"],
    "date": ["date_field", "hour", "offset_days"],
    "deal_stage": ["pipeline", "stage_name"],
    "score_crossed": ["threshold", "direction"],
}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class StepForm(forms.Form):
    step_type = forms.ChoiceField(label=_("Step"), choices=[])
    days = forms.IntegerField(label=_("Days"), required=False, min_value=0)
    hours = forms.IntegerField(label=_("Hours"), required=False, min_value=0)
    minutes = forms.IntegerField(label=_("Minutes"), required=False, min_value=0)
    mode = forms.ChoiceField(
        label=_("Wait until"),
        required=False,
        choices=[
            ("weekday", _("A weekday and hour (contact's time)")),
            ("datetime", _("A date and time (contact's time)")),
            ("event", _("The contact does something, at most…")),
        ],
    )
    at = forms.CharField(label=_("Date and time (YYYY-MM-DD HH:MM)"), required=False)
    weekday = forms.TypedChoiceField(
        label=_("Weekday"), required=False, choices=WEEKDAYS, coerce=int
    )
    hour = forms.IntegerField(label=_("Hour (0-23)"), required=False, min_value=0, max_value=23)
    event_kind = forms.ChoiceField(label=_("What they do"), required=False, choices=[])
    event_property = forms.CharField(label=_("Where the property"), required=False, max_length=40)
    event_value = forms.CharField(label=_("is"), required=False, max_length=500)
    of_workflow = forms.BooleanField(label=_("Only this workflow's emails"), required=False)
    timeout_days = forms.IntegerField(label=_("At most days"), required=False, min_value=0)
    timeout_hours = forms.IntegerField(label=_("and hours"), required=False, min_value=0)
    condition = forms.ChoiceField(
        label=_("Condition"), required=False, choices=list(schema.CONDITION_TYPES.items())
    )
    segment = forms.TypedChoiceField(label=_("Segment"), required=False, choices=[], coerce=int)
    url_contains = forms.CharField(label=_("Link address contains"), required=False, max_length=500)
    percent_a = forms.IntegerField(
        label=_("Share of path A (%)"), required=False, min_value=1, max_value=99
    )
    template = forms.TypedChoiceField(
        label=_("Email template"), required=False, choices=[], coerce=int
    )
    user = forms.ChoiceField(label=_("Team member"), required=False, choices=[])
    text = forms.CharField(label=_("Notification text"), required=False, max_length=300)
    tag = forms.CharField(label=_("Tag"), required=False, max_length=50)
    mailing_list = forms.TypedChoiceField(label=_("List"), required=False, choices=[], coerce=int)
    field = forms.ChoiceField(label=_("Field"), required=False, choices=[])
    value = forms.CharField(label=_("New value"), required=False, max_length=500)
    points = forms.IntegerField(label=_("Points (negative to take away)"), required=False)
    stage = forms.ChoiceField(
        label=_("Lifecycle stage"), required=False, choices=LifecycleStage.choices
    )
    title = forms.CharField(label=_("Task title"), required=False, max_length=200)
    due_days = forms.IntegerField(label=_("Due in days"), required=False, min_value=0)
    name = forms.CharField(label=_("Deal name"), required=False, max_length=200)
    pipeline = forms.ChoiceField(label=_("Pipeline"), required=False, choices=[])
    subject = forms.CharField(label=_("Ticket subject"), required=False, max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    priority = forms.ChoiceField(
        label=_("Priority"), required=False, choices=TicketPriority.choices
    )
    url = forms.CharField(label=_("Address to call"), required=False, max_length=2000)
    secret = forms.CharField(label=_("Signing secret"), required=False, max_length=200)
    workflow = forms.TypedChoiceField(label=_("Workflow"), required=False, choices=[], coerce=int)

    def __init__(
        self,
        *args: Any,
        workspace: Workspace,
        exclude_workflow: int | None = None,
        current: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        fill_choices(self, workspace, exclude_workflow)
        self.fields["step_type"].choices = list(schema.STEP_TYPES.items())  # type: ignore[attr-defined]
        # Conditions written as a segment tree (templates, the API) are kept as they are;
        # the builder offers saved segments for new ones.
        self.current_condition = (current or {}).get("condition") or {}
        if self.current_condition.get("type") != "segment":
            self.fields["condition"].choices = [  # type: ignore[attr-defined]
                (key, label) for key, label in schema.CONDITION_TYPES.items() if key != "segment"
            ]

    def fields_for(self, step_type: str) -> list[forms.BoundField]:
        return [self[name] for name in STEP_FIELDS.get(step_type, [])]

    def step_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        kind = data["step_type"]
        values: dict[str, Any] = {"type": kind}
        if kind == "wait":
            values.update({unit: data.get(unit) or 0 for unit in ("days", "hours", "minutes")})
        elif kind == "wait_until":
            values["mode"] = data.get("mode")
            values.update(
                {
                    "at": (data.get("at") or "").strip().replace(" ", "T"),
                    "weekday": data.get("weekday"),
                    "hour": data.get("hour") if data.get("hour") is not None else 9,
                    "kind": data.get("event_kind"),
                    "filters": _filters(data),
                    "of_workflow": data.get("of_workflow"),
                    "timeout_days": data.get("timeout_days") or 0,
                    "timeout_hours": data.get("timeout_hours") or 0,
                }
            )
        elif kind == "if":
            condition: dict[str, Any] = {"type": data.get("condition")}
            if data.get("condition") == "segment":
                condition["definition"] = self.current_condition.get("definition")
            elif data.get("condition") == "in_segment":
                condition["segment"] = data.get("segment")
            elif data.get("condition") == "clicked_link":
                condition["url_contains"] = data.get("url_contains")
            elif data.get("condition") == "event_since":
                condition.update({"kind": data.get("event_kind"), "filters": _filters(data)})
            values["condition"] = condition
        elif kind == "split":
            values["percent_a"] = data.get("percent_a") or 50
        elif kind == "send_email":
            values["template"] = data.get("template")
        elif kind == "notify":
            values.update({"user": data.get("user") or "owner", "text": data.get("text")})
        elif kind in {"add_tag", "remove_tag"}:
            values["tag"] = data.get("tag")
        elif kind in {"subscribe", "unsubscribe"}:
            values["list"] = data.get("mailing_list")
        elif kind == "update_field":
            values.update({"field": data.get("field"), "value": data.get("value")})
        elif kind == "change_score":
            values["points"] = data.get("points")
        elif kind == "set_lifecycle":
            values["stage"] = data.get("stage")
        elif kind == "assign_owner":
            values["user"] = data.get("user")
        elif kind == "create_task":
            values.update(
                {
                    "title": data.get("title"),
                    "due_days": data.get("due_days") or 0,
                    "assignee": data.get("user") or "owner",
                }
            )
        elif kind == "create_deal":
            values.update({"name": data.get("name"), "pipeline": data.get("pipeline") or None})
        elif kind == "create_ticket":
            values.update(
                {
                    "subject": data.get("subject"),
                    "description": data.get("description"),
                    "priority": data.get("priority"),
                }
            )
        elif kind == "webhook":
            values.update({"url": data.get("url"), "secret": data.get("secret")})
        elif kind == "enrol":
            values["workflow"] = data.get("workflow")
        return values


def step_initial(step: dict[str, Any]) -> dict[str, Any]:
    """The form's values for a saved step."""
    initial: dict[str, Any] = {"step_type": step["type"], **step}
    if step["type"] == "wait_until":
        initial["event_kind"] = step.get("kind")
        initial["at"] = (step.get("at") or "").replace("T", " ")
    if step["type"] == "if":
        condition = step.get("condition") or {}
        initial.update(
            {
                "condition": condition.get("type"),
                "segment": condition.get("segment"),
                "url_contains": condition.get("url_contains"),
                "event_kind": condition.get("kind"),
            }
        )
        filters = condition.get("filters") or []
    else:
        filters = step.get("filters") or []
    if filters:
        initial.update(
            {"event_property": filters[0]["property"], "event_value": filters[0]["value"]}
        )
    if step["type"] in {"subscribe", "unsubscribe"}:
        initial["mailing_list"] = step.get("list")
    if step["type"] == "create_task":
        initial["user"] = step.get("assignee")
    return initial


def _filters(data: dict[str, Any]) -> list[dict[str, str]]:
    prop = (data.get("event_property") or "").strip()
    value = (data.get("event_value") or "").strip()
    if not prop and not value:
        return []
    return [{"property": prop, "op": "eq", "value": value}]


def fill_choices(
    form: forms.Form, workspace: Workspace, exclude_workflow: int | None = None
) -> None:
    def choices(name: str, options: list[tuple[Any, Any]], blank: Any = None) -> None:
        if name in form.fields:
            form.fields[name].choices = ([("", blank)] if blank is not None else []) + options  # type: ignore[attr-defined]

    users = [(str(u.pk), str(u)) for u in active_users(workspace)]
    choices("user", [("owner", _("The contact's owner")), *users])
    choices(
        "template",
        list(
            EmailTemplate.objects.for_workspace(workspace)
            .filter(kind="marketing")
            .values_list("pk", "name")
        ),
        _("Choose a template"),
    )
    choices(
        "segment",
        list(Segment.objects.for_workspace(workspace).values_list("pk", "name")),
        _("Choose a segment"),
    )
    choices(
        "mailing_list",
        list(MailingList.objects.for_workspace(workspace).values_list("pk", "name")),
        _("Choose a list"),
    )
    choices(
        "pipeline",
        [
            (str(pk), name)
            for pk, name in Pipeline.objects.for_workspace(workspace).values_list("pk", "name")
        ],
        _("The default pipeline"),
    )
    choices(
        "form",
        [
            (str(pk), name)
            for pk, name in CaptureForm.objects.for_workspace(workspace).values_list("pk", "name")
        ],
        _("Any form"),
    )
    kinds = sorted(
        ((k.name, f"{k.label} ({k.name})") for k in EVENT_KINDS.values() if k.about_contact),
        key=lambda item: str(item[1]),
    )
    choices("event_kind", kinds, _("Choose what they do"))
    workflows = Workflow.objects.for_workspace(workspace)
    if exclude_workflow is not None:
        workflows = workflows.exclude(pk=exclude_workflow)
    choices("workflow", list(workflows.values_list("pk", "name")), _("Choose a workflow"))
    custom = [
        (f"custom.{key}", label)
        for key, label in CustomField.objects.for_workspace(workspace)
        .filter(object_type=CustomFieldObject.CONTACT)
        .values_list("key", "label")
    ]
    choices(
        "field",
        [
            *((k, str(v)) for k, v in schema.CONTACT_FIELDS.items()),
            ("lifecycle_stage", _("Lifecycle stage")),
            ("owner", _("Owner")),
            *custom,
        ],
    )
    date_fields = [("birthday", _("Birthday"))] + [
        (f"custom.{key}", label)
        for key, label in CustomField.objects.for_workspace(workspace)
        .filter(object_type=CustomFieldObject.CONTACT, field_type="date")
        .values_list("key", "label")
    ]
    choices("date_field", date_fields)


class TriggerForm(forms.Form):
    trigger_type = forms.ChoiceField(label=_("Trigger"), choices=list(schema.TRIGGER_TYPES.items()))
    form = forms.ChoiceField(label=_("Form"), required=False, choices=[])
    segment = forms.TypedChoiceField(label=_("Segment"), required=False, choices=[], coerce=int)
    mailing_list = forms.TypedChoiceField(label=_("List"), required=False, choices=[], coerce=int)
    event_kind = forms.ChoiceField(label=_("What they do"), required=False, choices=[])
    event_property = forms.CharField(label=_("Where the property"), required=False, max_length=40)
    event_value = forms.CharField(label=_("is"), required=False, max_length=500)
    field = forms.ChoiceField(label=_("Field"), required=False, choices=[])
    to = forms.CharField(label=_("Changed to (empty: any change)"), required=False, max_length=200)
    date_field = forms.ChoiceField(label=_("Date field"), required=False, choices=[])
    hour = forms.IntegerField(
        label=_("At hour (contact's time)"), required=False, min_value=0, max_value=23
    )
    offset_days = forms.IntegerField(
        label=_("Days after the date (negative: before)"), required=False
    )
    pipeline = forms.ChoiceField(label=_("Pipeline"), required=False, choices=[])
    stage_name = forms.CharField(label=_("To stage (empty: any)"), required=False, max_length=100)
    threshold = forms.IntegerField(label=_("Score threshold"), required=False)
    direction = forms.ChoiceField(
        label=_("Crossing"),
        required=False,
        choices=[("up", _("upwards")), ("down", _("downwards"))],
    )
    reenrol = forms.ChoiceField(
        label=_("Enrol a contact"),
        choices=[
            ("never", _("Once only")),
            ("always", _("Again whenever the trigger fires (not while inside)")),
            ("after", _("Again after some days")),
        ],
    )
    reenrol_days = forms.IntegerField(
        label=_("Days before re-enrolling"), required=False, min_value=1
    )
    goal_segment = forms.TypedChoiceField(
        label=_("Goal: leave when they match the segment"), required=False, choices=[], coerce=int
    )
    window_days = forms.TypedMultipleChoiceField(
        label=_("Send actions only on"),
        required=False,
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )
    window_start = forms.IntegerField(
        label=_("From hour"), required=False, min_value=0, max_value=23
    )
    window_end = forms.IntegerField(
        label=_("Until hour"), required=False, min_value=1, max_value=24
    )

    KEEP_GOAL = -1

    def __init__(
        self,
        *args: Any,
        workspace: Workspace,
        current_goal: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        fill_choices(self, workspace)
        self.current_goal = current_goal
        options: list[tuple[Any, Any]] = [("", _("No goal"))]
        if current_goal:
            options.append((self.KEEP_GOAL, _("Keep the current goal")))
        options += list(Segment.objects.for_workspace(workspace).values_list("pk", "name"))
        self.fields["goal_segment"].choices = options  # type: ignore[attr-defined]

    def fields_for(self, trigger_type: str) -> list[forms.BoundField]:
        return [self[name] for name in TRIGGER_FIELDS.get(trigger_type, [])]

    def graph_parts(self, workspace: Workspace) -> tuple[dict[str, Any], dict[str, Any]]:
        data = self.cleaned_data
        kind = data["trigger_type"]
        trigger: dict[str, Any] = {"type": kind}
        if kind == "form_submitted":
            trigger["form"] = _int(data.get("form"))
        elif kind in {"segment_entered", "segment_left"}:
            trigger["segment"] = data.get("segment")
        elif kind == "list_joined":
            trigger["list"] = data.get("mailing_list")
        elif kind == "event":
            trigger.update({"kind": data.get("event_kind"), "filters": _filters(data)})
        elif kind == "field_changed":
            trigger.update({"field": data.get("field"), "to": data.get("to")})
        elif kind == "date":
            trigger.update(
                {
                    "field": data.get("date_field"),
                    "hour": data.get("hour") if data.get("hour") is not None else 9,
                    "offset_days": data.get("offset_days") or 0,
                }
            )
        elif kind == "deal_stage":
            trigger.update(
                {"pipeline": _int(data.get("pipeline")), "stage": data.get("stage_name")}
            )
        elif kind == "score_crossed":
            trigger.update(
                {"threshold": data.get("threshold"), "direction": data.get("direction") or "up"}
            )
        goal = None
        if data.get("goal_segment") == self.KEEP_GOAL:
            goal = self.current_goal
        elif data.get("goal_segment"):
            segment = (
                Segment.objects.for_workspace(workspace).filter(pk=data["goal_segment"]).first()
            )
            if segment is not None:
                goal = segment.definition
        window = None
        if data.get("window_days"):
            window = {
                "days": data["window_days"],
                "start_hour": data.get("window_start")
                if data.get("window_start") is not None
                else 9,
                "end_hour": data.get("window_end") or 17,
            }
        settings = {
            "reenrol": data["reenrol"],
            "reenrol_days": data.get("reenrol_days") or 0,
            "goal": goal,
            "window": window,
        }
        return trigger, settings


def trigger_initial(graph: dict[str, Any]) -> dict[str, Any]:
    trigger, settings = graph["trigger"], graph["settings"]
    initial: dict[str, Any] = {"trigger_type": trigger["type"], **trigger}
    initial.pop("type", None)
    initial.update(
        {
            "mailing_list": trigger.get("list"),
            "event_kind": trigger.get("kind"),
            "date_field": trigger.get("field") if trigger["type"] == "date" else None,
            "stage_name": trigger.get("stage"),
            "reenrol": settings["reenrol"],
            "reenrol_days": settings["reenrol_days"] or None,
            "goal_segment": TriggerForm.KEEP_GOAL if settings.get("goal") else "",
        }
    )
    filters = trigger.get("filters") or []
    if filters:
        initial.update(
            {"event_property": filters[0]["property"], "event_value": filters[0]["value"]}
        )
    window = settings.get("window")
    if window:
        initial.update(
            {
                "window_days": window["days"],
                "window_start": window["start_hour"],
                "window_end": window["end_hour"],
            }
        )
    return initial
