"""Lifecycle rules: contacts move forward through the funnel when something happens.

The funnel's order is ``FUNNEL`` — subscriber, lead, marketing-qualified lead
(MQL), sales-qualified lead (SQL), opportunity, customer. A rule moves a
contact only **forward** in it: a customer who submits the demo form stays a
customer. "Other" (partners, suppliers, colleagues) is outside the funnel and
is never moved by a rule. People move contacts anywhere by hand (the contact's
edit form), and sales sends a rejected hand-off back to lead.

Triggers (each a ``LifecycleRule``):

* **score reaches N** — when a ``contact.score_changed`` crosses N upwards
  (from below N to N or more). It fires once per crossing: a score that stays
  above N does not fire again, one that drops below and climbs back does;
* **form submitted** — a ``form.submitted`` of the rule's form;
* **deal opened** — a ``deal.created`` for one of the deal's contacts;
* **deal won** — a ``deal.stage_changed`` into a won stage.

Every move goes through ``crm.services.set_lifecycle_stage`` with the reason
("Score reached 100", "Form submitted: Request a demo", "Deal won: ACME
licence"), which puts it on the timeline as a ``contact.lifecycle_changed``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from patron.activity.models import Event
from patron.automation.models import LifecycleRule, LifecycleTrigger
from patron.core.models import User, Workspace
from patron.core.services import record_audit
from patron.crm.models import Contact, LifecycleStage, StageOutcome
from patron.crm.services import set_lifecycle_stage

FUNNEL = [
    LifecycleStage.SUBSCRIBER,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.OPPORTUNITY,
    LifecycleStage.CUSTOMER,
]
RANK = {stage.value: index for index, stage in enumerate(FUNNEL)}
WATCHED_KINDS = {"contact.score_changed", "form.submitted", "deal.created", "deal.stage_changed"}


class LifecycleRuleInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors.values()))


def is_forward(current: str, stage: str) -> bool:
    """Whether a rule may move a contact from ``current`` to ``stage``."""
    if current not in RANK or stage not in RANK:
        return False
    return RANK[stage] > RANK[current]


@transaction.atomic
def save_lifecycle_rule(
    *,
    workspace: Workspace,
    trigger: str,
    stage: str,
    threshold: int | None = None,
    form: Any = None,
    actor: User | None = None,
) -> LifecycleRule:
    errors = {}
    if trigger not in LifecycleTrigger.values:
        errors["trigger"] = _("Choose when the rule applies.")
    if stage not in RANK:
        errors["stage"] = _("Choose a stage of the funnel.")
    if trigger == LifecycleTrigger.SCORE and threshold is None:
        errors["threshold"] = _("Give the score that moves the contact.")
    if trigger == LifecycleTrigger.FORM and (form is None or form.workspace_id != workspace.pk):
        errors["form"] = _("Choose the form.")
    if errors:
        raise LifecycleRuleInvalid(errors)
    rule = LifecycleRule.objects.create(
        workspace=workspace,
        trigger=trigger,
        stage=stage,
        threshold=threshold if trigger == LifecycleTrigger.SCORE else None,
        form=form if trigger == LifecycleTrigger.FORM else None,
    )
    record_audit(
        workspace=workspace, actor=actor, action="lifecycle_rule.created", target=describe(rule)
    )
    return rule


@transaction.atomic
def delete_lifecycle_rule(*, rule: LifecycleRule, actor: User | None = None) -> None:
    record_audit(
        workspace=rule.workspace,
        actor=actor,
        action="lifecycle_rule.deleted",
        target=describe(rule),
    )
    rule.delete()


def describe(rule: LifecycleRule) -> str:
    stage = LifecycleStage(rule.stage).label
    if rule.trigger == LifecycleTrigger.SCORE:
        return _("Score reaches %(n)s → %(stage)s") % {"n": rule.threshold, "stage": stage}
    if rule.trigger == LifecycleTrigger.FORM:
        name = rule.form.name if rule.form else "?"
        return _("Form “%(form)s” submitted → %(stage)s") % {"form": name, "stage": stage}
    if rule.trigger == LifecycleTrigger.DEAL_OPENED:
        return _("Deal opened → %(stage)s") % {"stage": stage}
    return _("Deal won → %(stage)s") % {"stage": stage}


def advance(*, workspace_id: int, contact_id: int, stage: str, reason: str) -> bool:
    """Move the contact forward to ``stage`` if that is forward; True if it moved."""
    current = (
        Contact.objects.for_workspace(workspace_id)
        .filter(pk=contact_id)
        .values_list("lifecycle_stage", flat=True)
        .first()
    )
    if current is None or not is_forward(current, stage):
        return False
    contact = Contact.objects.for_workspace(workspace_id).get(pk=contact_id)
    return set_lifecycle_stage(contact=contact, stage=stage, reason=reason)


def _wanted_moves(rules: list[LifecycleRule], event: Event) -> list[tuple[str, str]]:
    """(stage, reason) for each rule the event fires."""
    props = event.properties or {}
    moves = []
    for rule in rules:
        if rule.trigger == LifecycleTrigger.SCORE and event.kind == "contact.score_changed":
            before, after = props.get("from"), props.get("to")
            threshold = rule.threshold
            if (
                isinstance(before, int)
                and isinstance(after, int)
                and threshold is not None
                and before < threshold <= after
            ):
                moves.append((rule.stage, _("Score reached %(n)s") % {"n": threshold}))
        elif rule.trigger == LifecycleTrigger.FORM and event.kind == "form.submitted":
            if props.get("form_id") == rule.form_id:
                moves.append(
                    (rule.stage, _("Form submitted: %(form)s") % {"form": props.get("form", "")})
                )
        elif rule.trigger == LifecycleTrigger.DEAL_OPENED and event.kind == "deal.created":
            moves.append((rule.stage, _("Deal opened: %(deal)s") % {"deal": props.get("deal", "")}))
        elif (
            rule.trigger == LifecycleTrigger.DEAL_WON
            and event.kind == "deal.stage_changed"
            and props.get("outcome") == StageOutcome.WON
        ):
            moves.append((rule.stage, _("Deal won: %(deal)s") % {"deal": props.get("deal", "")}))
    return moves


Move = tuple[int, str, str]  # contact id, stage, reason


def _rules(workspace_id: int) -> list[LifecycleRule]:
    return list(
        LifecycleRule.objects.for_workspace(workspace_id).filter(is_active=True).order_by("id")
    )


def apply_score_changes(workspace_id: int, scores: dict[int, tuple[int, int]]) -> list[Move]:
    """Score rules for the scores a batch just changed ({contact: (before, after)}).

    The scoring consumer calls this with the result of ``change_scores`` so that
    a crossing moves the contact in the same transaction, without waiting for
    its ``contact.score_changed`` to come round; when that event is read later,
    the contact is there already and nothing moves twice.
    """
    rules = [r for r in _rules(workspace_id) if r.trigger == LifecycleTrigger.SCORE]
    moves: list[Move] = []
    for contact_id, (before, after) in sorted(scores.items()):
        crossed = [r for r in rules if r.threshold is not None and before < r.threshold <= after]
        if not crossed:
            continue
        rule = max(crossed, key=lambda r: RANK.get(r.stage, -1))
        reason = _("Score reached %(n)s") % {"n": rule.threshold}
        if advance(
            workspace_id=workspace_id, contact_id=contact_id, stage=rule.stage, reason=reason
        ):
            moves.append((contact_id, rule.stage, reason))
    return moves


def handle_events(workspace_id: int, events: list[Event]) -> list[Move]:
    """Apply the workspace's lifecycle rules to a batch of its events; returns the moves."""
    relevant = [e for e in events if e.kind in WATCHED_KINDS and e.contact_id is not None]
    if not relevant:
        return []
    rules = _rules(workspace_id)
    if not rules:
        return []
    moved: list[Move] = []
    for event in relevant:
        wanted = _wanted_moves(rules, event)
        if not wanted:
            continue
        # Of several rules an event fires, the furthest stage wins.
        stage, reason = max(wanted, key=lambda move: RANK[move[0]])
        assert event.contact_id is not None
        if advance(
            workspace_id=workspace_id, contact_id=event.contact_id, stage=stage, reason=reason
        ):
            moved.append((event.contact_id, stage, reason))
    return moved
