"""Automation → Lead scoring (rules, lifecycle rules, decay, re-apply), hand-offs, score history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.activity.kinds import EVENT_KINDS
from patron.activity.models import Event
from patron.audience import segments
from patron.automation import handoff as handoffs
from patron.automation import lifecycle, scoring
from patron.automation.models import (
    CapPeriod,
    Handoff,
    HandoffStatus,
    LifecycleRule,
    LifecycleTrigger,
    ScoreRecompute,
    ScoringRule,
    ScoringRuleKind,
)
from patron.capture.models import Form
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import Workspace
from patron.core.roles import CONTACTS_VIEW, DEALS_EDIT, MARKETING_EDIT
from patron.crm.models import Contact, LifecycleStage

FILTER_ROWS = 3
FILTER_OPS = list(segments.PROPERTY_OPS.items())
HISTORY_LENGTH = 20


# --- Forms -----------------------------------------------------------------------------------


class ScoringRuleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    points = forms.IntegerField(
        label=gettext_lazy("Points"),
        help_text=gettext_lazy("Negative to take points away."),
        min_value=-10_000,
        max_value=10_000,
    )
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, workspace: Workspace, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == ScoringRuleKind.BEHAVIOUR:
            kinds = sorted(
                ((k.name, str(k.label)) for k in EVENT_KINDS.values() if k.about_contact),
                key=lambda item: item[1],
            )
            self.fields["event_kind"] = forms.ChoiceField(
                label=gettext_lazy("When someone"), choices=[("", "—"), *kinds]
            )
            for index in range(FILTER_ROWS):
                self.fields[f"filter_property_{index}"] = forms.CharField(
                    label=_("Filter %(n)d: property") % {"n": index + 1},
                    required=False,
                    max_length=40,
                    help_text=gettext_lazy("e.g. url, form, file, campaign_id"),
                )
                self.fields[f"filter_op_{index}"] = forms.ChoiceField(
                    label=_("Filter %(n)d: test") % {"n": index + 1},
                    choices=FILTER_OPS,
                    required=False,
                )
                self.fields[f"filter_value_{index}"] = forms.CharField(
                    label=_("Filter %(n)d: value") % {"n": index + 1},
                    required=False,
                    max_length=500,
                )
            self.fields["cap_points"] = forms.IntegerField(
                label=gettext_lazy("At most (points)"), min_value=1, required=False
            )
            self.fields["cap_period"] = forms.ChoiceField(
                label=gettext_lazy("Cap"), choices=CapPeriod.choices, required=False
            )
        else:
            vocab = segments.vocabulary(workspace)
            choices = [("", "—")]
            choices += [
                (f"contact:{key}", _("Contact: %(f)s") % {"f": spec.label})
                for key, spec in vocab.contact_fields.items()
                if spec.kind in {segments.TEXT, segments.NUMBER, segments.CHOICE}
            ]
            choices += [
                (f"company:{key}", _("Company: %(f)s") % {"f": spec.label})
                for key, spec in vocab.company_fields.items()
                if spec.kind in {segments.TEXT, segments.NUMBER, segments.CHOICE}
            ]
            self.fields["field"] = forms.ChoiceField(label=gettext_lazy("Field"), choices=choices)
            ops = ["eq", "ne", "contains", "starts", "gt", "gte", "lt", "lte", "between", "in"]
            ops += ["not_in", "empty", "not_empty"]
            self.fields["op"] = forms.ChoiceField(
                label=gettext_lazy("Test"),
                choices=[(op, segments.OPERATOR_LABELS[op]) for op in ops],
            )
            self.fields["value"] = forms.CharField(
                label=gettext_lazy("Value"),
                required=False,
                max_length=500,
                help_text=gettext_lazy("Several options separated by commas."),
            )
            self.fields["value_to"] = forms.CharField(
                label=gettext_lazy("and (for “is between”)"), required=False, max_length=100
            )

    def filters(self) -> list[dict[str, str]]:
        return [
            {
                "property": self.cleaned_data.get(f"filter_property_{i}", "").strip(),
                "op": self.cleaned_data.get(f"filter_op_{i}") or "contains",
                "value": self.cleaned_data.get(f"filter_value_{i}", "").strip(),
            }
            for i in range(FILTER_ROWS)
            if self.cleaned_data.get(f"filter_property_{i}", "").strip()
        ]

    def condition(self) -> dict[str, Any]:
        target, _sep, key = self.cleaned_data["field"].partition(":")
        op = self.cleaned_data["op"]
        raw = self.cleaned_data.get("value", "").strip()
        value: Any = raw
        if op == "between":
            value = [raw, self.cleaned_data.get("value_to", "").strip()]
        elif op in {"in", "not_in"}:
            value = [part.strip() for part in raw.split(",") if part.strip()]
        node = {"type": "company" if target == "company" else "field", "field": key, "op": op}
        node["value"] = value
        return {"match": "all", "conditions": [node]}

    @staticmethod
    def initial_for(rule: ScoringRule) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": rule.name,
            "points": rule.points,
            "is_active": rule.is_active,
            "event_kind": rule.event_kind,
            "cap_points": rule.cap_points,
            "cap_period": rule.cap_period,
        }
        for index, item in enumerate(rule.filters[:FILTER_ROWS]):
            initial[f"filter_property_{index}"] = item["property"]
            initial[f"filter_op_{index}"] = item["op"]
            initial[f"filter_value_{index}"] = item["value"]
        conditions = (rule.condition or {}).get("conditions") or []
        if conditions:
            node = conditions[0]
            target = "company" if node["type"] == "company" else "contact"
            initial["field"] = f"{target}:{node['field']}"
            initial["op"] = node["op"]
            value = node.get("value")
            if node["op"] == "between" and isinstance(value, list):
                initial["value"], initial["value_to"] = value
            elif isinstance(value, list):
                initial["value"] = ", ".join(str(v) for v in value)
            elif value is not None:
                initial["value"] = value
        return initial


class SettingsForm(forms.Form):
    decay_percent = forms.IntegerField(
        label=gettext_lazy("Decay (percent of the score)"), min_value=0, max_value=100
    )
    decay_days = forms.IntegerField(
        label=gettext_lazy("after this many days without activity"), min_value=1, max_value=3650
    )
    handoff_due_hours = forms.IntegerField(
        label=gettext_lazy("Hand-off task due within (hours)"), min_value=1, max_value=720
    )
    handoff_business_hours = forms.BooleanField(
        label=gettext_lazy("Count business hours only"),
        required=False,
        help_text=gettext_lazy("The opening hours set under Settings → SLAs."),
    )


class LifecycleRuleForm(forms.Form):
    trigger = forms.ChoiceField(label=gettext_lazy("When"), choices=LifecycleTrigger.choices)
    threshold = forms.IntegerField(label=gettext_lazy("Score"), required=False)
    form = forms.ModelChoiceField(
        label=gettext_lazy("Form"), queryset=Form.objects.none(), required=False
    )
    stage = forms.ChoiceField(
        label=gettext_lazy("Move to"),
        choices=[(stage.value, stage.label) for stage in lifecycle.FUNNEL],
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["form"].queryset = Form.objects.for_workspace(workspace).order_by("name")  # type: ignore[attr-defined]


# --- Scoring ---------------------------------------------------------------------------------


def _home_context(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    workspace = request.workspace
    rules = ScoringRule.objects.for_workspace(workspace).order_by("kind", "name")
    settings_row = scoring.settings_for(workspace)
    lifecycle_rules = (
        LifecycleRule.objects.for_workspace(workspace).select_related("form").order_by("id")
    )
    return {
        "rules": rules,
        "event_labels": {name: kind.label for name, kind in EVENT_KINDS.items()},
        "settings_form": extra.pop("settings_form", None)
        or SettingsForm(
            initial={
                "decay_percent": settings_row.decay_percent,
                "decay_days": settings_row.decay_days,
                "handoff_due_hours": settings_row.handoff_due_hours,
                "handoff_business_hours": settings_row.handoff_business_hours,
            }
        ),
        "lifecycle_rows": [(rule, lifecycle.describe(rule)) for rule in lifecycle_rules],
        "lifecycle_form": extra.pop("lifecycle_form", None)
        or LifecycleRuleForm(workspace=workspace, initial={"stage": LifecycleStage.MQL}),
        "job": ScoreRecompute.objects.for_workspace(workspace).order_by("-created_at").first(),
        **extra,
    }


@workspace_view(MARKETING_EDIT)
def scoring_home(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "automation/scoring/home.html", _home_context(request))


def _rule(request: WorkspaceRequest, scoring_rule_id: int) -> ScoringRule:
    return get_object_or_404(
        ScoringRule.objects.for_workspace(request.workspace), pk=scoring_rule_id
    )


def _rule_form(request: WorkspaceRequest, rule: ScoringRule | None) -> HttpResponse:
    kind = rule.kind if rule else request.GET.get("kind", ScoringRuleKind.BEHAVIOUR)
    if kind not in ScoringRuleKind.values:
        kind = ScoringRuleKind.BEHAVIOUR
    initial = ScoringRuleForm.initial_for(rule) if rule else None
    form = ScoringRuleForm(
        request.POST or None, workspace=request.workspace, kind=kind, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            scoring.save_scoring_rule(
                workspace=request.workspace,
                rule=rule,
                name=data["name"],
                kind=kind,
                points=data["points"],
                event_kind=data.get("event_kind", ""),
                filters=form.filters() if kind == ScoringRuleKind.BEHAVIOUR else None,
                condition=form.condition() if kind == ScoringRuleKind.FIRMOGRAPHIC else None,
                cap_points=data.get("cap_points"),
                cap_period=data.get("cap_period") or "",
                is_active=data["is_active"],
                actor=request.user,
            )
        except scoring.ScoringRuleInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, _("Scoring rule saved."))
            return redirect("automation_scoring:home")
    return render(
        request,
        "automation/scoring/rule_form.html",
        {"form": form, "rule": rule, "kind": kind, "filter_rows": range(FILTER_ROWS)},
    )


@workspace_view(MARKETING_EDIT)
def rule_create(request: WorkspaceRequest) -> HttpResponse:
    return _rule_form(request, None)


@workspace_view(MARKETING_EDIT)
def rule_edit(request: WorkspaceRequest, scoring_rule_id: int) -> HttpResponse:
    return _rule_form(request, _rule(request, scoring_rule_id))


@require_POST
@workspace_view(MARKETING_EDIT)
def rule_delete(request: WorkspaceRequest, scoring_rule_id: int) -> HttpResponse:
    rule = _rule(request, scoring_rule_id)
    count = scoring.delete_scoring_rule(rule=rule, actor=request.user)
    messages.success(
        request, _("Rule deleted; its points were taken back from %(n)d contacts.") % {"n": count}
    )
    return redirect("automation_scoring:home")


@require_POST
@workspace_view(MARKETING_EDIT)
def settings_update(request: WorkspaceRequest) -> HttpResponse:
    form = SettingsForm(request.POST)
    if form.is_valid():
        scoring.update_scoring_settings(
            workspace=request.workspace, actor=request.user, **form.cleaned_data
        )
        messages.success(request, _("Scoring settings saved."))
        return redirect("automation_scoring:home")
    return render(
        request, "automation/scoring/home.html", _home_context(request, settings_form=form)
    )


@require_POST
@workspace_view(MARKETING_EDIT)
def lifecycle_rule_create(request: WorkspaceRequest) -> HttpResponse:
    form = LifecycleRuleForm(request.POST, workspace=request.workspace)
    if form.is_valid():
        try:
            lifecycle.save_lifecycle_rule(
                workspace=request.workspace, actor=request.user, **form.cleaned_data
            )
        except lifecycle.LifecycleRuleInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, _("Lifecycle rule added."))
            return redirect("automation_scoring:home")
    return render(
        request, "automation/scoring/home.html", _home_context(request, lifecycle_form=form)
    )


@require_POST
@workspace_view(MARKETING_EDIT)
def lifecycle_rule_delete(request: WorkspaceRequest, lifecycle_rule_id: int) -> HttpResponse:
    rule = get_object_or_404(
        LifecycleRule.objects.for_workspace(request.workspace), pk=lifecycle_rule_id
    )
    lifecycle.delete_lifecycle_rule(rule=rule, actor=request.user)
    messages.success(request, _("Lifecycle rule deleted."))
    return redirect("automation_scoring:home")


@require_POST
@workspace_view(MARKETING_EDIT)
def reapply(request: WorkspaceRequest) -> HttpResponse:
    scoring.request_reapply(workspace=request.workspace, actor=request.user)
    messages.success(request, _("Re-applying the rules to everyone in the background."))
    return redirect("automation_scoring:home")


@workspace_view(MARKETING_EDIT)
def reapply_progress(request: WorkspaceRequest, recompute_id: int) -> HttpResponse:
    job = get_object_or_404(
        ScoreRecompute.objects.for_workspace(request.workspace), pk=recompute_id
    )
    return render(request, "automation/scoring/_reapply_progress.html", {"job": job})


# --- Score history on the contact page ------------------------------------------------------


@workspace_view(CONTACTS_VIEW)
def score_history(request: WorkspaceRequest, contact_id: int) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.for_workspace(request.workspace), pk=contact_id)
    changes = (
        Event.objects.for_workspace(request.workspace)
        .filter(contact_id=contact.pk, kind="contact.score_changed")
        .order_by("-occurred_at", "-id")[:HISTORY_LENGTH]
    )
    return render(
        request,
        "automation/scoring/_score_history.html",
        {"contact": contact, "changes": changes},
    )


# --- Hand-offs -------------------------------------------------------------------------------


@workspace_view(CONTACTS_VIEW)
def handoff_list(request: WorkspaceRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in HandoffStatus.values:
        status = ""
    rows = list(handoffs.handoffs(request.workspace, status or None)[:200])
    return render(
        request,
        "automation/scoring/handoff_list.html",
        {
            "handoffs": rows,
            "status": status,
            "statuses": HandoffStatus.choices,
            "median": handoffs.median_time_to_touch(request.workspace),
            "may_decide": request.membership.can(DEALS_EDIT),
        },
    )


def _handoff(request: WorkspaceRequest, handoff_id: int) -> Handoff:
    if not request.membership.can(DEALS_EDIT):
        raise PermissionDenied
    return get_object_or_404(Handoff.objects.for_workspace(request.workspace), pk=handoff_id)


@require_POST
@workspace_view(CONTACTS_VIEW)
def handoff_accept(request: WorkspaceRequest, handoff_id: int) -> HttpResponse:
    handoff = _handoff(request, handoff_id)
    try:
        handoffs.accept_handoff(handoff=handoff, actor=request.user)
    except handoffs.HandoffClosed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("%(name)s is now a sales-qualified lead.") % {"name": handoff.contact}
        )
    return redirect("automation_scoring:handoff_list")


@require_POST
@workspace_view(CONTACTS_VIEW)
def handoff_reject(request: WorkspaceRequest, handoff_id: int) -> HttpResponse:
    handoff = _handoff(request, handoff_id)
    try:
        handoffs.reject_handoff(
            handoff=handoff, actor=request.user, reason=request.POST.get("reason", "")
        )
    except handoffs.HandoffClosed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("%(name)s went back to marketing as a lead.") % {"name": handoff.contact}
        )
    return redirect("automation_scoring:handoff_list")
