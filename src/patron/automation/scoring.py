"""Lead scoring: rules that turn events and firmographic facts into points.

**Behaviour rules** give points for each event of a kind whose properties pass
the rule's filters (the segment compiler's property filters: ``contains``,
``starts``, ``eq``), at most ``cap_points`` per contact per day or week (UTC)
when capped. **Firmographic rules** give points once while a condition on the
contact or their company holds (a segment condition, compiled by
``audience.segments``) and take them back when it stops holding.

Scores follow the activity log through one durable consumer
(``CONSUMER``, ``activity.services.consume``): each batch is applied in the
transaction that moves the checkpoint, so an event is scored exactly once even
if the process dies mid-batch. Every change goes through
``crm.services.change_score`` and is therefore a ``contact.score_changed``
event naming the rule and the reason: the contact's score history (a batch's
changes go through ``change_scores``, its bulk form, with the same events).
In the same transaction the consumer applies the lifecycle rules to the scores
it just changed and to the batch's forms and deals, and opens the hand-offs
of the contacts that became MQLs (``lifecycle.py``, ``handoff.py``): an event
that lifts a contact over the threshold produces the owner's task in the same
batch. The ``contact.score_changed`` and ``contact.lifecycle_changed`` events
come round in a later batch too, which is how changes made elsewhere (by hand,
by workflows, through the API) reach the same rules; what the batch already
did is not done twice (stages only move forward, one pending hand-off per
contact).

``RulePoints`` is the ledger of what each rule gave each contact per period:
the counter of the caps, and what **re-apply** compares against.

Re-apply (``reapply_rules``) recomputes, contact by contact in chunks, the
points the *current active* rules give: behaviour rules from every event of
the log already read by the consumer, caps counted per UTC day or week of the
events' own times; firmographic rules from the conditions as they hold now.
Each contact's score moves by the difference between the recomputed points
and the rule points it holds, so points from elsewhere (given by hand, by
workflows, or taken by decay) stay as they are: decay is not replayed.

**Decay** (``decay_scores``, daily): when a workspace sets a percentage, a
contact with a positive score and no activity of their own for the quiet
period loses that share of their score; the next decay waits for another quiet
period.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.kinds import EVENT_KINDS
from patron.activity.models import ConsumerCheckpoint, Event
from patron.activity.services import consume
from patron.audience import segments
from patron.automation.models import (
    WHILE_TRUE,
    CapPeriod,
    RecomputeStatus,
    RulePoints,
    ScoreDecay,
    ScoreRecompute,
    ScoringRule,
    ScoringRuleKind,
    ScoringSettings,
)
from patron.core.models import User, Workspace
from patron.core.services import record_audit
from patron.crm.models import Contact
from patron.crm.services import ScoreChange, change_score, change_scores

logger = logging.getLogger(__name__)

CONSUMER = "automation.scoring"
BATCH_SIZE = 2000
# Kinds that say something about the contact's record, not about their behaviour:
# they re-evaluate firmographic rules.
RECORD_KINDS = {"contact.created", "contact.field_changed", "contact.merged"}
COMPANY_KINDS = {"company.field_changed", "company.merged"}
# Events the system writes about a contact; they are not the contact being active.
NOT_ACTIVITY = (
    "contact.score_changed",
    "contact.lifecycle_changed",
    "contact.field_changed",
    "task.created",
    "segment.entered",
    "segment.left",
)
MAX_FILTERS = 5
REAPPLY_CHUNK = 2000


class ScoringRuleInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors.values()))


# --- Defining rules -------------------------------------------------------------------------


def _event_node(event_kind: str, filters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "event",
        "kind": event_kind,
        "filters": filters,
        "count": {"op": "at_least", "value": 1},
        "window": {"type": "any"},
    }


def _clean_rule(
    workspace: Workspace,
    *,
    name: str,
    kind: str,
    points: int,
    event_kind: str,
    filters: list[dict[str, Any]],
    condition: dict[str, Any] | None,
    cap_points: int | None,
    cap_period: str,
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = _("Give the rule a name.")
    if not points:
        errors["points"] = _("Give points other than 0 (negative to take away).")
    elif abs(points) > 10_000:
        errors["points"] = _("Keep points between -10,000 and 10,000.")
    values: dict[str, Any] = {
        "name": name[:100],
        "kind": kind,
        "points": points,
        "event_kind": "",
        "filters": [],
        "condition": {},
        "cap_points": None,
        "cap_period": CapPeriod.NONE,
    }
    if kind == ScoringRuleKind.BEHAVIOUR:
        if event_kind not in EVENT_KINDS:
            errors["event_kind"] = _("Choose an event.")
        else:
            kept = [f for f in filters if str(f.get("property", "")).strip()][:MAX_FILTERS]
            try:
                clean = segments.validate(
                    workspace, {"match": "all", "conditions": [_event_node(event_kind, kept)]}
                )
                values["filters"] = clean["conditions"][0]["filters"]
            except segments.SegmentInvalid as exc:
                errors["filters"] = exc.message
            values["event_kind"] = event_kind
        if cap_period:
            if cap_period not in {CapPeriod.DAY, CapPeriod.WEEK}:
                errors["cap_period"] = _("Choose a day or a week.")
            elif not cap_points or cap_points <= 0:
                errors["cap_points"] = _("Give the most points per period.")
            values["cap_points"], values["cap_period"] = cap_points, cap_period
    elif kind == ScoringRuleKind.FIRMOGRAPHIC:
        try:
            clean = segments.validate(workspace, condition or {})
            if not clean["conditions"]:
                raise segments.SegmentInvalid("", "", _("Give the rule a condition."))
            for node in clean["conditions"]:
                if node.get("type") not in {"field", "company"}:
                    raise segments.SegmentInvalid(
                        "", "", _("Firmographic rules look at contact and company fields only.")
                    )
            values["condition"] = clean
        except segments.SegmentInvalid as exc:
            errors["condition"] = exc.message
    else:
        errors["kind"] = _("Choose the kind of rule.")
    if errors:
        raise ScoringRuleInvalid(errors)
    return values


@transaction.atomic
def save_scoring_rule(
    *,
    workspace: Workspace,
    rule: ScoringRule | None = None,
    name: str,
    kind: str,
    points: int,
    event_kind: str = "",
    filters: list[dict[str, Any]] | None = None,
    condition: dict[str, Any] | None = None,
    cap_points: int | None = None,
    cap_period: str = "",
    is_active: bool = True,
    actor: User | None = None,
) -> ScoringRule:
    """Create or change a scoring rule. New events follow it at once; past ones on re-apply."""
    values = _clean_rule(
        workspace,
        name=name,
        kind=kind,
        points=points,
        event_kind=event_kind,
        filters=filters or [],
        condition=condition,
        cap_points=cap_points,
        cap_period=cap_period,
    )
    created = rule is None
    if rule is None:
        rule = ScoringRule(workspace=workspace)
    for key, value in values.items():
        setattr(rule, key, value)
    rule.is_active = is_active
    rule.updated_at = timezone.now()
    rule.save()
    record_audit(
        workspace=workspace,
        actor=actor,
        action="scoring_rule.created" if created else "scoring_rule.updated",
        target=rule.name,
    )
    if rule.kind == ScoringRuleKind.FIRMOGRAPHIC:
        # Who matches now gets the points (or loses them) without waiting for an edit.
        rule_id = rule.pk
        transaction.on_commit(lambda: _refresh_firmographic_later(rule_id))
    return rule


def _refresh_firmographic_later(rule_id: int) -> None:
    from patron.automation.tasks import refresh_firmographic_rule

    refresh_firmographic_rule.enqueue(rule_id)


@transaction.atomic
def delete_scoring_rule(*, rule: ScoringRule, actor: User | None = None) -> int:
    """Delete a rule and take back the points it gave; returns how many contacts lost some."""
    _lock_consumer()
    held: dict[int, int] = defaultdict(int)
    for contact_id, points in (
        RulePoints.objects.for_workspace(rule.workspace_id)
        .filter(rule=rule)
        .values_list("contact_id", "points")
    ):
        held[contact_id] += points
    reason = _("Rule deleted: %(rule)s") % {"rule": rule.name}
    for contact_id, points in held.items():
        if points:
            _change(rule.workspace_id, contact_id, -points, reason=reason, rule=rule.name)
    record_audit(
        workspace=rule.workspace, actor=actor, action="scoring_rule.deleted", target=rule.name
    )
    rule.delete()
    return sum(1 for p in held.values() if p)


def settings_for(workspace: Workspace | int) -> ScoringSettings:
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    row, _created = ScoringSettings.objects.for_workspace(workspace_id).get_or_create(
        workspace_id=workspace_id
    )
    return row


@transaction.atomic
def update_scoring_settings(
    *,
    workspace: Workspace,
    decay_percent: int,
    decay_days: int,
    handoff_due_hours: int,
    handoff_business_hours: bool = False,
    actor: User | None = None,
) -> ScoringSettings:
    errors = {}
    if not 0 <= decay_percent <= 100:
        errors["decay_percent"] = _("Choose a percentage from 0 to 100.")
    if not 1 <= decay_days <= 3650:
        errors["decay_days"] = _("Choose from 1 to 3,650 days.")
    if not 1 <= handoff_due_hours <= 720:
        errors["handoff_due_hours"] = _("Choose from 1 to 720 hours.")
    if errors:
        raise ScoringRuleInvalid(errors)
    row = settings_for(workspace)
    row.decay_percent, row.decay_days = decay_percent, decay_days
    row.handoff_due_hours = handoff_due_hours
    row.handoff_business_hours = handoff_business_hours
    row.save()
    record_audit(workspace=workspace, actor=actor, action="scoring.settings_updated", target="")
    return row


# --- Applying behaviour rules ------------------------------------------------------------


def property_matches(properties: dict[str, Any], item: dict[str, Any]) -> bool:
    """One property filter, read as the segment compiler reads it in SQL."""
    value = properties.get(item["property"])
    if value is None:
        return False
    wanted = str(item["value"])
    if item["op"] == "contains":
        return wanted.lower() in str(value).lower()
    if item["op"] == "starts":
        return str(value).lower().startswith(wanted.lower())
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float) and wanted.isdigit():
        return value == int(wanted)
    return str(value) == wanted


def rule_matches(rule: ScoringRule, event: Event) -> bool:
    return event.kind == rule.event_kind and all(
        property_matches(event.properties or {}, item) for item in rule.filters
    )


def period_start(rule: ScoringRule, moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    if rule.cap_period == CapPeriod.DAY:
        return day
    if rule.cap_period == CapPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    return WHILE_TRUE


def _capped(rule: ScoringRule, held: int, wanted: int) -> int:
    """The part of ``wanted`` points that fits under the rule's cap, given ``held``."""
    if rule.cap_points is None or not rule.cap_period:
        return wanted
    cap = rule.cap_points
    if wanted > 0:
        return max(min(wanted, cap - held), 0)
    return min(max(wanted, -cap - held), 0)


@dataclass
class _Award:
    points: int = 0
    events: int = 0
    last_at: datetime | None = None


def _apply_behaviour(
    workspace_id: int, events: list[Event], rules: list[ScoringRule]
) -> dict[int, tuple[int, int]]:
    """Score a batch of one workspace's events; returns {contact: (score before, after)}."""
    by_kind: dict[str, list[ScoringRule]] = defaultdict(list)
    for rule in rules:
        by_kind[rule.event_kind].append(rule)
    awards: dict[tuple[int, int, date], _Award] = {}
    for event in events:
        if event.contact_id is None:
            continue
        for rule in by_kind.get(event.kind, ()):
            if not rule_matches(rule, event):
                continue
            key = (event.contact_id, rule.pk, period_start(rule, event.occurred_at))
            award = awards.setdefault(key, _Award())
            award.points += rule.points
            award.events += 1
            award.last_at = event.occurred_at
    if not awards:
        return {}
    contact_ids = {key[0] for key in awards}
    alive = set(
        Contact.objects.for_workspace(workspace_id)
        .filter(pk__in=list(contact_ids))
        .values_list("pk", flat=True)
    )
    ledger = {
        (contact_id, rule_id, period): points
        for contact_id, rule_id, period, points in RulePoints.objects.for_workspace(workspace_id)
        .filter(
            contact_id__in=list(alive),
            rule_id__in=list({key[1] for key in awards}),
            period_start__in=list({key[2] for key in awards}),
        )
        .values_list("contact_id", "rule_id", "period_start", "points")
    }
    rules_by_id = {rule.pk: rule for rule in rules}
    ledger_rows = []
    per_contact_rule: dict[tuple[int, int], list[Any]] = {}
    for key, award in awards.items():
        contact_id, rule_id, period = key
        if contact_id not in alive:
            continue
        rule = rules_by_id[rule_id]
        held = ledger.get(key, 0)
        given = _capped(rule, held, award.points)
        if given or key not in ledger:
            ledger_rows.append(
                RulePoints(
                    workspace_id=workspace_id,
                    rule_id=rule_id,
                    contact_id=contact_id,
                    period_start=period,
                    points=held + given,
                )
            )
        total = per_contact_rule.setdefault((contact_id, rule_id), [0, 0, None])
        total[0] += given
        total[1] += award.events
        total[2] = award.last_at
    # The ledger's new totals in one INSERT ... ON CONFLICT DO UPDATE (the consumer's
    # lock on its checkpoint keeps other writers of the ledger out meanwhile).
    RulePoints.objects.bulk_create(
        ledger_rows,
        update_conflicts=True,
        unique_fields=["rule", "contact", "period_start"],
        update_fields=["points"],
    )
    changes = []
    for (contact_id, rule_id), (given, events_count, last_at) in sorted(per_contact_rule.items()):
        if not given:
            continue
        rule = rules_by_id[rule_id]
        label = str(EVENT_KINDS[rule.event_kind].label)
        reason = (
            label
            if events_count == 1
            else _("%(label)s (%(n)s times)") % {"label": label, "n": events_count}
        )
        if given != rule.points * events_count:
            reason += " " + _("(capped at %(cap)s %(period)s)") % {
                "cap": rule.cap_points,
                "period": rule.get_cap_period_display(),
            }
        changes.append(
            ScoreChange(
                contact_id=contact_id,
                points=given,
                reason=reason,
                rule=rule.name,
                occurred_at=last_at,
            )
        )
    return change_scores(workspace=workspace_id, changes=changes)


def _change(
    workspace_id: int,
    contact_id: int,
    points: int,
    *,
    reason: str,
    rule: str,
    at: datetime | None = None,
) -> None:
    # change_score reads and locks the row itself; it needs only the ids.
    contact = Contact(pk=contact_id, workspace_id=workspace_id)
    change_score(contact=contact, points=points, reason=reason, rule=rule, occurred_at=at)


# --- Firmographic rules ------------------------------------------------------------------


def refresh_firmographic(
    workspace: Workspace,
    *,
    contact_ids: Iterable[int] | None = None,
    rules: Sequence[ScoringRule] | None = None,
) -> int:
    """Give or take back firmographic points (for some contacts, or everyone); returns changes."""
    if rules is None:
        rules = list(
            ScoringRule.objects.for_workspace(workspace).filter(
                kind=ScoringRuleKind.FIRMOGRAPHIC, is_active=True
            )
        )
    if not rules:
        return 0
    ids = sorted(set(contact_ids)) if contact_ids is not None else None
    vocab = segments.vocabulary(workspace)
    vocab.only_contacts = ids
    changes = 0
    for rule in rules:
        try:
            query = segments.compile_definition(workspace, rule.condition, vocab=vocab)
        except segments.SegmentInvalid:
            query = Q(pk__in=[])  # a field it names was deleted: nobody matches
        matching_rows = Contact.objects.for_workspace(workspace).filter(query)
        held_rows = RulePoints.objects.for_workspace(workspace).filter(
            rule=rule, period_start=WHILE_TRUE
        )
        if ids is not None:
            matching_rows = matching_rows.filter(pk__in_ids=ids)
            held_rows = held_rows.filter(contact_id__in_ids=ids)
        matching = set(matching_rows.values_list("pk", flat=True))
        held = dict(held_rows.values_list("contact_id", "points"))
        gained = sorted(matching - set(held))
        lost = sorted(set(held) - matching)
        RulePoints.objects.bulk_create(
            [
                RulePoints(
                    workspace=workspace,
                    rule=rule,
                    contact_id=contact_id,
                    period_start=WHILE_TRUE,
                    points=rule.points,
                )
                for contact_id in gained
            ]
        )
        if lost:
            held_rows.filter(contact_id__in=lost).delete()
        now_matches = _("Now matches: %(rule)s") % {"rule": rule.name}
        no_longer = _("No longer matches: %(rule)s") % {"rule": rule.name}
        change_scores(
            workspace=workspace,
            changes=[ScoreChange(c, rule.points, now_matches, rule.name) for c in gained]
            + [ScoreChange(c, -held[c], no_longer, rule.name) for c in lost if held[c]],
        )
        changes += len(gained) + len(lost)
    return changes


def refresh_firmographic_everywhere() -> int:
    """Every workspace's firmographic rules for everyone (periodic: catches bulk edits)."""
    changes = 0
    workspace_ids = (
        ScoringRule.objects.unscoped()
        .filter(kind=ScoringRuleKind.FIRMOGRAPHIC, is_active=True)
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    for workspace in Workspace.objects.filter(pk__in=list(workspace_ids)):
        with transaction.atomic():
            _lock_consumer()
            changes += refresh_firmographic(workspace)
    return changes


# --- The consumer ------------------------------------------------------------------------


def _record_changes(workspace_id: int, events: list[Event]) -> set[int]:
    """The contacts whose record (or company) an event of the batch changed."""
    contact_ids = {e.contact_id for e in events if e.kind in RECORD_KINDS and e.contact_id}
    company_ids = [
        int(e.source_id)
        for e in events
        if e.kind in COMPANY_KINDS and e.source_type == "crm.company" and e.source_id.isdigit()
    ]
    if company_ids:
        contact_ids.update(
            Contact.objects.for_workspace(workspace_id)
            .filter(company_id__in=company_ids)
            .values_list("pk", flat=True)
        )
    return {c for c in contact_ids if c is not None}


def handle_events(events: list[Event]) -> None:
    """The consumer's handler: scores, then lifecycle rules, then hand-offs, per workspace."""
    from patron.automation import handoff, lifecycle

    by_workspace: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        by_workspace[event.workspace_id].append(event)
    rules_by_workspace: dict[int, list[ScoringRule]] = defaultdict(list)
    for rule in ScoringRule.objects.unscoped().filter(
        workspace_id__in=list(by_workspace), is_active=True
    ):
        rules_by_workspace[rule.workspace_id].append(rule)
    for workspace_id, workspace_events in by_workspace.items():
        rules = rules_by_workspace.get(workspace_id, [])
        behaviour = [r for r in rules if r.kind == ScoringRuleKind.BEHAVIOUR]
        firmographic = [r for r in rules if r.kind == ScoringRuleKind.FIRMOGRAPHIC]
        moves = []
        if behaviour:
            scores = _apply_behaviour(workspace_id, workspace_events, behaviour)
            # Thresholds and hand-offs at once, not a round later (see lifecycle.py).
            moves += lifecycle.apply_score_changes(workspace_id, scores)
        if firmographic:
            changed = _record_changes(workspace_id, workspace_events)
            if changed:
                workspace = Workspace.objects.get(pk=workspace_id)
                refresh_firmographic(workspace, contact_ids=changed, rules=firmographic)
        moves += lifecycle.handle_events(workspace_id, workspace_events)
        handoff.start_for_moves(workspace_id, moves)
        handoff.handle_events(workspace_id, workspace_events)


def _lock_consumer() -> ConsumerCheckpoint:
    """Hold the consumer's checkpoint (in the current transaction): no batch runs meanwhile."""
    ConsumerCheckpoint.objects.get_or_create(name=CONSUMER)
    return ConsumerCheckpoint.objects.select_for_update().get(name=CONSUMER)


def has_unread_events() -> bool:
    """A cheap look before consuming: anything past the checkpoint, or gaps to look at again."""
    checkpoint = ConsumerCheckpoint.objects.filter(name=CONSUMER).first()
    if checkpoint is None:
        return Event.objects.unscoped().exists()
    if checkpoint.gaps:
        return True
    return Event.objects.unscoped().filter(id__gt=checkpoint.position).exists()


def follow_activity(*, batch_size: int = BATCH_SIZE, max_rounds: int = 50) -> int:
    """Apply new events to scores, stages and hand-offs; returns how many events were read.

    Reads again at once while a batch brought anything: the score changes of one
    batch are the lifecycle rules' input in the next, and a move to MQL the
    hand-off's in the one after.
    """
    total = 0
    for _round in range(max_rounds):
        handled = consume(CONSUMER, handle_events, batch_size=batch_size)
        total += handled
        if handled == 0:
            break
    return total


def warm_up() -> None:
    """Load what the first hand-off needs (the URLconf: seconds of imports) before it is due."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - loading the URLconf is the point


def run_scoring_loop(stop: threading.Event | None = None) -> None:
    """Follow the activity log every ``SCORING_POLL_SECONDS`` until ``stop`` is set.

    Runs beside the scheduler (``patron run``, ``patron worker --with-scheduler``,
    ``patron scheduler``) so that a score, a stage and a hand-off follow an event
    within about a second; the periodic ``follow_activity_for_scoring`` task does
    the same work every few seconds where no loop runs. Both may run at once:
    the checkpoint's lock takes turns.
    """
    stop = stop or threading.Event()
    interval = settings.SCORING_POLL_SECONDS
    warm_up()
    while not stop.is_set():
        close_old_connections()
        try:
            if has_unread_events():
                follow_activity()
        except Exception:
            logger.exception("Scoring round failed; trying again")
        stop.wait(interval)
    close_old_connections()


# --- Re-apply ----------------------------------------------------------------------------


@transaction.atomic
def request_reapply(*, workspace: Workspace, actor: User | None = None) -> ScoreRecompute:
    """Queue a re-application of the rules to every contact (one at a time per workspace)."""
    running = (
        ScoreRecompute.objects.for_workspace(workspace)
        .filter(status__in=[RecomputeStatus.QUEUED, RecomputeStatus.RUNNING])
        .first()
    )
    if running is not None:
        return running
    job = ScoreRecompute.objects.create(
        workspace=workspace,
        requested_by=actor,
        total=Contact.objects.for_workspace(workspace).count(),
    )
    record_audit(workspace=workspace, actor=actor, action="scoring.reapplied", target="")
    job_id = job.pk

    def enqueue() -> None:
        from patron.automation.tasks import reapply_scoring_rules

        reapply_scoring_rules.enqueue(job_id)

    transaction.on_commit(enqueue)
    return job


def _read_events(workspace: Workspace, checkpoint: ConsumerCheckpoint) -> Q:
    """Events the consumer has read already (so that re-apply and the consumer never both count)."""
    query = Q(id__lte=checkpoint.position)
    for first, last, _seen in checkpoint.gaps:
        query &= ~Q(id__gte=int(first), id__lte=int(last))
    return query


def _recomputed_points(
    workspace: Workspace,
    contact_ids: list[int],
    rules: list[ScoringRule],
    read: Q,
) -> list[RulePoints]:
    """The ledger rows the rules give these contacts, from the log (grouped in SQL)."""
    vocab = segments.vocabulary(workspace)
    vocab.only_contacts = contact_ids
    rows: list[RulePoints] = []
    for rule in rules:
        if rule.kind == ScoringRuleKind.BEHAVIOUR:
            events: QuerySet[Event] = segments.events_matching(
                vocab, _event_node(rule.event_kind, rule.filters)
            ).filter(read)
            grouped: Any = events
            if rule.cap_period == CapPeriod.DAY:
                grouped = events.annotate(period=TruncDate("occurred_at", tzinfo=UTC))
            elif rule.cap_period == CapPeriod.WEEK:
                grouped = events.annotate(period=TruncWeek("occurred_at", tzinfo=UTC))
            counted = (
                grouped.values("contact_id", "period").annotate(times=Count("id"))
                if rule.cap_period
                else grouped.values("contact_id").annotate(times=Count("id"))
            )
            for item in counted:
                period: Any = item.get("period") or WHILE_TRUE
                if isinstance(period, datetime):
                    period = period.astimezone(UTC).date()
                points = _capped(rule, 0, rule.points * item["times"])
                rows.append(
                    RulePoints(
                        workspace=workspace,
                        rule=rule,
                        contact_id=item["contact_id"],
                        period_start=period,
                        points=points,
                    )
                )
        else:
            try:
                query = segments.compile_definition(workspace, rule.condition, vocab=vocab)
            except segments.SegmentInvalid:
                continue
            for contact_id in (
                Contact.objects.for_workspace(workspace)
                .filter(query)
                .filter(pk__in_ids=contact_ids)
                .values_list("pk", flat=True)
            ):
                rows.append(
                    RulePoints(
                        workspace=workspace,
                        rule=rule,
                        contact_id=contact_id,
                        period_start=WHILE_TRUE,
                        points=rule.points,
                    )
                )
    return rows


def reapply_rules(job: ScoreRecompute, *, chunk: int = REAPPLY_CHUNK) -> int:
    """Run a re-apply job; returns how many contacts' scores changed. Progress is on the job."""
    workspace = job.workspace
    ScoreRecompute.objects.for_workspace(workspace).filter(pk=job.pk).update(
        status=RecomputeStatus.RUNNING,
        total=Contact.objects.for_workspace(workspace).count(),
        done=0,
    )
    reason = _("Scoring rules re-applied")
    last_id = 0
    done = changed = 0
    try:
        while True:
            ids = list(
                Contact.objects.for_workspace(workspace)
                .filter(pk__gt=last_id)
                .order_by("pk")
                .values_list("pk", flat=True)[:chunk]
            )
            if not ids:
                break
            last_id = ids[-1]
            with transaction.atomic():
                checkpoint = _lock_consumer()
                rules = list(ScoringRule.objects.for_workspace(workspace).filter(is_active=True))
                old: dict[int, int] = defaultdict(int)
                ledger = RulePoints.objects.for_workspace(workspace).filter(contact_id__in_ids=ids)
                for contact_id, points in ledger.values_list("contact_id", "points"):
                    old[contact_id] += points
                rows = _recomputed_points(
                    workspace, ids, rules, _read_events(workspace, checkpoint)
                )
                new: dict[int, int] = defaultdict(int)
                for row in rows:
                    new[row.contact_id] += row.points
                ledger.delete()
                RulePoints.objects.bulk_create(rows, batch_size=2000)
                deltas = [
                    ScoreChange(contact_id, new[contact_id] - old[contact_id], reason)
                    for contact_id in ids
                    if new[contact_id] != old[contact_id]
                ]
                change_scores(workspace=workspace, changes=deltas)
                changed += len(deltas)
            done += len(ids)
            ScoreRecompute.objects.for_workspace(workspace).filter(pk=job.pk).update(
                done=done, changed=changed
            )
    except Exception as exc:
        ScoreRecompute.objects.for_workspace(workspace).filter(pk=job.pk).update(
            status=RecomputeStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    ScoreRecompute.objects.for_workspace(workspace).filter(pk=job.pk).update(
        status=RecomputeStatus.DONE, done=done, changed=changed, finished_at=timezone.now()
    )
    return changed


# --- Decay -------------------------------------------------------------------------------


def decay_scores(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Take the workspaces' decay share from quiet contacts' positive scores; returns how many."""
    now = now or timezone.now()
    decayed = 0
    for row in ScoringSettings.objects.unscoped().filter(decay_percent__gt=0):
        cutoff = now - timedelta(days=row.decay_days)
        active = (
            Event.objects.for_workspace(row.workspace_id)
            .filter(contact_id=OuterRef("pk"), occurred_at__gte=cutoff)
            .exclude(kind__in=NOT_ACTIVITY)
        )
        recently_decayed = ScoreDecay.objects.for_workspace(row.workspace_id).filter(
            contact_id=OuterRef("pk"), decayed_at__gte=cutoff
        )
        quiet = (
            Contact.objects.for_workspace(row.workspace_id)
            .filter(score__gt=0, created_at__lt=cutoff)
            .exclude(Exists(active))
            .exclude(Exists(recently_decayed))
            .values_list("pk", "score")[:limit]
        )
        reason = _("No activity for %(days)s days: -%(percent)s%%") % {
            "days": row.decay_days,
            "percent": row.decay_percent,
        }
        for contact_id, score in quiet:
            points = -max(math.floor(score * row.decay_percent / 100), 1)
            with transaction.atomic():
                _change(row.workspace_id, contact_id, points, reason=reason, rule="")
                ScoreDecay.objects.for_workspace(row.workspace_id).update_or_create(
                    workspace_id=row.workspace_id,
                    contact_id=contact_id,
                    defaults={"decayed_at": now},
                )
            decayed += 1
    return decayed
