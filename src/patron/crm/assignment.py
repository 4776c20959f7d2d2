"""Assignment rules: who owns a new contact or deal that arrives without an owner.

``Assigner`` evaluates a workspace's active rules in order; the first rule
whose conditions all hold picks the owner, either one person or the next
member of a team in turn (round robin). Members who left the workspace or were
deactivated are skipped. The round robin's position is kept on the rule row,
locked while a batch assigns, so turns stay fair across requests, workers and
restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from patron.core.models import Membership, User, Workspace
from patron.crm import custom_fields
from patron.crm.models import AssignmentRule, AssignmentStrategy, CustomFieldObject

CONDITION_FIELDS = {
    "lifecycle_stage": gettext_lazy("Lifecycle stage"),
    "source": gettext_lazy("Source"),
    "country": gettext_lazy("Country"),
    "tag": gettext_lazy("Tag"),
    "priority": gettext_lazy("Priority (tickets)"),
    "channel": gettext_lazy("Channel (tickets)"),
}
MAX_CONDITIONS = 5


class RuleInvalid(ValueError):
    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(self.errors.values()))


def _value_of(values: Mapping[str, Any], tags: Iterable[str], field: str) -> list[str]:
    """The record's value(s) for a condition field, lower-cased, as a list."""
    if field == "tag":
        return [t.lower() for t in tags]
    if field.startswith(custom_fields.FORM_PREFIX):
        value = (values.get("custom") or {}).get(field.removeprefix(custom_fields.FORM_PREFIX))
    else:
        value = values.get(field)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).lower() for v in value]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    return [str(value).lower()]


def matches(rule: AssignmentRule, values: Mapping[str, Any], tags: Iterable[str] = ()) -> bool:
    tags = list(tags)
    for condition in rule.conditions:
        wanted = str(condition.get("value", "")).strip().lower()
        if wanted not in _value_of(values, tags, str(condition.get("field", ""))):
            return False
    return True


class Assigner:
    """Assigns owners for one transaction; ``finish()`` stores the round-robin turns."""

    def __init__(self, workspace: Workspace | int, object_type: str) -> None:
        workspace_id = workspace if isinstance(workspace, int) else workspace.pk
        self.rules = list(
            AssignmentRule.objects.for_workspace(workspace_id)
            .filter(object_type=object_type, is_active=True)
            .select_for_update()
            .order_by("position", "id")
        )
        self.active = set(
            Membership.objects.for_workspace(workspace_id)
            .filter(is_active=True, user__is_active=True)
            .values_list("user_id", flat=True)
        )
        self.users = {user.pk: user for user in User.objects.filter(pk__in=self.active)}
        self.moved: set[AssignmentRule] = set()

    def owner_for(self, values: Mapping[str, Any], tags: Iterable[str] = ()) -> User | None:
        tags = list(tags)
        for rule in self.rules:
            if not matches(rule, values, tags):
                continue
            owner = self._pick(rule)
            if owner is not None:
                return owner
        return None

    def _pick(self, rule: AssignmentRule) -> User | None:
        if rule.strategy == AssignmentStrategy.USER:
            return self.users.get(rule.user_id) if rule.user_id else None
        team = [int(pk) for pk in rule.team]
        for step in range(len(team)):
            index = (rule.next_index + step) % len(team)
            if team[index] in self.active:
                rule.next_index = (index + 1) % len(team)
                self.moved.add(rule)
                return self.users.get(team[index])
        return None

    def finish(self) -> None:
        if self.moved:
            AssignmentRule.objects.for_workspace(next(iter(self.moved)).workspace_id).bulk_update(
                list(self.moved), ["next_index"]
            )
            self.moved.clear()


def assign_owner(
    *,
    workspace: Workspace | int,
    object_type: str,
    values: Mapping[str, Any],
    tags: Iterable[str] = (),
) -> User | None:
    """The owner the rules give one new record (None when no rule applies)."""
    with transaction.atomic():
        assigner = Assigner(workspace, object_type)
        owner = assigner.owner_for(values, tags)
        assigner.finish()
    return owner


# --- Defining rules --------------------------------------------------------------------


def _clean(
    workspace: Workspace,
    *,
    object_type: str,
    name: str,
    conditions: list[dict[str, str]],
    strategy: str,
    user: User | None,
    team: list[User],
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    if object_type not in {
        CustomFieldObject.CONTACT,
        CustomFieldObject.DEAL,
        CustomFieldObject.TICKET,
    }:
        errors["object_type"] = _("Rules apply to contacts, deals or tickets.")
    if not name.strip():
        errors["name"] = _("Give the rule a name.")
    members = set(
        Membership.objects.for_workspace(workspace)
        .filter(is_active=True)
        .values_list("user_id", flat=True)
    )
    custom = {
        custom_fields.FORM_PREFIX + key for key in workspace_custom_keys(workspace, object_type)
    }
    cleaned_conditions = []
    for condition in conditions[:MAX_CONDITIONS]:
        field = condition.get("field", "")
        value = str(condition.get("value", "")).strip()
        if not field and not value:
            continue
        if field not in CONDITION_FIELDS and field not in custom:
            errors["conditions"] = _("Choose a field for every condition.")
        elif not value:
            errors["conditions"] = _("Give every condition a value.")
        cleaned_conditions.append({"field": field, "value": value[:200]})
    if strategy == AssignmentStrategy.USER:
        if user is None or user.pk not in members:
            errors["user"] = _("Choose a member of the workspace.")
        team_ids: list[int] = []
    elif strategy == AssignmentStrategy.ROUND_ROBIN:
        team_ids = [member.pk for member in team if member.pk in members]
        if not team_ids or len(team_ids) != len(team):
            errors["team"] = _("Choose the members of the team (at least one).")
        user = None
    else:
        errors["strategy"] = _("Choose how to assign.")
        team_ids = []
    if errors:
        raise RuleInvalid(errors)
    return {
        "object_type": object_type,
        "name": name.strip()[:100],
        "conditions": cleaned_conditions,
        "strategy": strategy,
        "user": user,
        "team": team_ids,
    }


def workspace_custom_keys(workspace: Workspace, object_type: str) -> list[str]:
    from patron.crm.models import CustomField

    return list(
        CustomField.objects.for_workspace(workspace)
        .filter(object_type=object_type)
        .values_list("key", flat=True)
    )


@transaction.atomic
def save_rule(
    *,
    workspace: Workspace,
    rule: AssignmentRule | None = None,
    object_type: str,
    name: str,
    conditions: list[dict[str, str]],
    strategy: str,
    user: User | None = None,
    team: list[User] | None = None,
    position: int | None = None,
    is_active: bool = True,
) -> AssignmentRule:
    values = _clean(
        workspace,
        object_type=object_type,
        name=name,
        conditions=conditions,
        strategy=strategy,
        user=user,
        team=team or [],
    )
    if rule is None:
        rule = AssignmentRule(workspace=workspace)
        if position is None:
            position = AssignmentRule.objects.for_workspace(workspace).count()
    for field, value in values.items():
        setattr(rule, field, value)
    if position is not None:
        rule.position = position
    rule.is_active = is_active
    if rule.strategy == AssignmentStrategy.ROUND_ROBIN and rule.team:
        rule.next_index %= len(rule.team)
    rule.save()
    return rule
