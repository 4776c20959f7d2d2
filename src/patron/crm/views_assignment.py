"""Settings → Assignment: the rules that give new contacts and deals an owner."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import User, Workspace
from patron.core.roles import SETTINGS_MANAGE
from patron.core.selectors import active_users
from patron.crm import assignment, custom_fields
from patron.crm.models import AssignmentRule, AssignmentStrategy, CustomField, CustomFieldObject

CONDITION_ROWS = 3


class RuleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    object_type = forms.ChoiceField(
        label=gettext_lazy("Applies to new"),
        choices=[
            (CustomFieldObject.CONTACT, gettext_lazy("Contacts")),
            (CustomFieldObject.DEAL, gettext_lazy("Deals")),
            (CustomFieldObject.TICKET, gettext_lazy("Tickets")),
        ],
    )
    strategy = forms.ChoiceField(label=gettext_lazy("Assign"), choices=AssignmentStrategy.choices)
    user = forms.ModelChoiceField(
        label=gettext_lazy("Person"), queryset=User.objects.none(), required=False
    )
    team = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Team (round robin)"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    position = forms.IntegerField(
        label=gettext_lazy("Order"),
        min_value=0,
        required=False,
        help_text=gettext_lazy("Rules are tried from the lowest number; the first that fits wins."),
    )
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = active_users(workspace)
        self.fields["user"].queryset = members  # type: ignore[attr-defined]
        self.fields["team"].queryset = members  # type: ignore[attr-defined]
        choices = [("", "—"), *[(k, str(v)) for k, v in assignment.CONDITION_FIELDS.items()]]
        for field in CustomField.objects.for_workspace(workspace).order_by(
            "object_type", "position"
        ):
            choices.append(
                (
                    custom_fields.FORM_PREFIX + field.key,
                    f"{field.label} ({field.get_object_type_display()})",
                )
            )
        for index in range(CONDITION_ROWS):
            self.fields[f"condition_field_{index}"] = forms.ChoiceField(
                label=_("Condition %(n)d: field") % {"n": index + 1},
                choices=choices,
                required=False,
            )
            self.fields[f"condition_value_{index}"] = forms.CharField(
                label=_("Condition %(n)d: is") % {"n": index + 1}, max_length=200, required=False
            )

    def conditions(self) -> list[dict[str, str]]:
        return [
            {
                "field": self.cleaned_data.get(f"condition_field_{i}", ""),
                "value": self.cleaned_data.get(f"condition_value_{i}", ""),
            }
            for i in range(CONDITION_ROWS)
        ]

    @staticmethod
    def initial_for(rule: AssignmentRule) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": rule.name,
            "object_type": rule.object_type,
            "strategy": rule.strategy,
            "user": rule.user_id,
            "team": rule.team,
            "position": rule.position,
            "is_active": rule.is_active,
        }
        for index, condition in enumerate(rule.conditions[:CONDITION_ROWS]):
            initial[f"condition_field_{index}"] = condition.get("field", "")
            initial[f"condition_value_{index}"] = condition.get("value", "")
        return initial


def _rule(request: WorkspaceRequest, rule_id: int) -> AssignmentRule:
    return get_object_or_404(AssignmentRule.objects.for_workspace(request.workspace), pk=rule_id)


@workspace_view(SETTINGS_MANAGE)
def rule_list(request: WorkspaceRequest) -> HttpResponse:
    rules = AssignmentRule.objects.for_workspace(request.workspace).select_related("user")
    names = {
        user.pk: user.display_name
        for user in User.objects.filter(memberships__workspace=request.workspace)
    }
    labels = dict(assignment.CONDITION_FIELDS)
    for field in CustomField.objects.for_workspace(request.workspace):
        labels[custom_fields.FORM_PREFIX + field.key] = field.label
    rows = [
        (
            rule,
            [(str(labels.get(c["field"], c["field"])), c["value"]) for c in rule.conditions],
            [names.get(int(pk), "?") for pk in rule.team],
        )
        for rule in rules
    ]
    return render(request, "crm/settings_assignment.html", {"tab": "assignment", "rows": rows})


def _save(request: WorkspaceRequest, rule: AssignmentRule | None) -> HttpResponse:
    initial = RuleForm.initial_for(rule) if rule else {"is_active": True}
    form = RuleForm(request.POST or None, workspace=request.workspace, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = assignment.save_rule(
                workspace=request.workspace,
                rule=rule,
                object_type=data["object_type"],
                name=data["name"],
                conditions=form.conditions(),
                strategy=data["strategy"],
                user=data["user"],
                team=list(data["team"]),
                position=data["position"],
                is_active=data["is_active"],
            )
        except assignment.RuleInvalid as exc:
            for name, message in exc.errors.items():
                form.add_error(name if name in form.fields else None, message)
        else:
            messages.success(request, _("Rule “%(name)s” saved.") % {"name": saved.name})
            return redirect("crm:assignment_rules")
    return render(
        request,
        "crm/assignment_rule_form.html",
        {"tab": "assignment", "form": form, "rule": rule},
    )


@workspace_view(SETTINGS_MANAGE)
def rule_create(request: WorkspaceRequest) -> HttpResponse:
    return _save(request, None)


@workspace_view(SETTINGS_MANAGE)
def rule_edit(request: WorkspaceRequest, rule_id: int) -> HttpResponse:
    return _save(request, _rule(request, rule_id))


@workspace_view(SETTINGS_MANAGE)
@require_POST
def rule_delete(request: WorkspaceRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    rule.delete()
    messages.success(request, _("Rule “%(name)s” deleted.") % {"name": rule.name})
    return redirect("crm:assignment_rules")
