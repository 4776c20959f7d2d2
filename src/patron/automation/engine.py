"""The workflow engine: enrolling contacts and moving them through their steps.

**Enrolment** (``enrol_contacts``) is one ``INSERT ... SELECT`` whatever the
number of contacts: the re-enrolment rule (never again, always, after N days)
and "not inside already" (a partial unique index: one live enrolment per
workflow and contact) are conditions of that statement. A new enrolment is
due at once on the first step of the **published version it entered**.

**Versions.** Editing a live workflow publishes a new version; contacts
already inside finish on the version they entered, new contacts enter the new
one. (Moving running contacts to a new graph would change what a half-finished
series means — a wait that was two days may now be ten — so it is never done
implicitly.)

**Timers** are the enrolments' ``next_wake_at`` (indexed with the workspace
where status is active). A round (``run_due``) claims a batch of due
enrolments of active workflows with a lease — ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so that workers never wait for each other, one conditional UPDATE
on SQLite — groups them by (version, step) and runs each group set-based:
conditions are one query for the group, tags one insert, emails one insert of
delivery rows for the send pipeline.

**At most once.** Each step an enrolment runs leaves a ``StepRun`` keyed by
(enrolment, step, iteration), written in the same transaction as the step's
database effects and the enrolment's move to its next step. A crash before the
commit undoes all three (the lease runs out and the step runs again, for the
first time as far as the database knows); after the commit the enrolment is
past the step. Email is a database effect too: the delivery row, unique per
(campaign, contact), which the pipeline sends once. A webhook call leaves the
machine before the commit: it carries an idempotency key
(``X-Patron-Idempotency-Key``, the step run's key), so a receiver can drop the
repeat of a call whose commit was lost.

**Failures.** A group that raises is rolled back and its enrolments run one
by one, so one bad contact does not hold back the others. A failing step is
tried again after 1, 2, 4, 8 minutes; after ``MAX_ATTEMPTS`` the enrolment is
``failed``, with the error on it and a failed step run in its history.

**Waits** are computed in the contact's time zone (its own, else the
workspace's): "wait 1 day" from 09:00 is 09:00 the next local day, across a
daylight-saving change too (``zoneinfo`` wall-clock arithmetic); hours and
minutes are elapsed time. A schedule window (e.g. weekdays 9-17) holds action
steps until the window opens in the contact's zone.

**Paused** workflows are not claimed: their timers wait and fire, late, on
resume. Triggers do not enrol into a paused workflow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Subquery
from django.utils import timezone

from patron.activity.models import Event
from patron.audience import segments
from patron.automation import workflow_schema as schema
from patron.automation.models import (
    Enrolment,
    EnrolmentStatus,
    StepRun,
    StepRunStatus,
    Workflow,
    WorkflowEmail,
    WorkflowStatus,
    WorkflowVersion,
)
from patron.core import bulk
from patron.core.models import Workspace
from patron.core.outbound import open_public_url
from patron.crm.models import Contact

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
WEBHOOK_TIMEOUT_SECONDS = 10
# Steps that call another server, and how many of them one round runs.
SLOW_STEPS = {"webhook"}
SLOW_BATCH = 20
WAIT_TYPES = {"wait", "wait_until"}
CONTROL_TYPES = {"wait", "wait_until", "if", "split", "exit"}
# "Waiting" markers kept in Enrolment.waiting_for besides an event kind.
TIMER = "timer"
EVENT_SEEN = "event:seen"


class EnrolmentRefused(ValueError):
    pass


def zone_named(name: str, fallback: ZoneInfo) -> ZoneInfo:
    if not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def workspace_zone(workspace: Workspace) -> ZoneInfo:
    return zone_named(workspace.time_zone or "UTC", ZoneInfo("UTC"))


# --- Time ----------------------------------------------------------------------------------


def add_wait(start: datetime, zone: ZoneInfo, *, days: int, hours: int, minutes: int) -> datetime:
    """``start`` plus a wait: days on the local calendar (same wall-clock time), then hours
    and minutes of elapsed time."""
    local = start.astimezone(zone)
    if days:
        wall = local.replace(tzinfo=None) + timedelta(days=days)
        local = _resolve_local(wall, zone)
    return local.astimezone(ZoneInfo("UTC")) + timedelta(hours=hours, minutes=minutes)


def _resolve_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone``; one in a spring-forward gap moves to just after it."""
    aware = wall.replace(tzinfo=zone, fold=0)
    round_trip = aware.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)
    if round_trip != wall:
        # Does not exist locally (the clocks jumped over it): read with the offset before
        # the jump, it lands as far past the gap as it was into it (02:30 -> 03:30).
        return aware.astimezone(ZoneInfo("UTC")).astimezone(zone)
    return aware


def next_weekday_hour(now: datetime, zone: ZoneInfo, weekday: int, hour: int) -> datetime:
    """The next local ``weekday`` (0 Monday) at ``hour``:00 after ``now``."""
    local = now.astimezone(zone)
    for offset in range(0, 8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() != weekday:
            continue
        candidate = _resolve_local(datetime.combine(day, time(hour)), zone)
        if candidate > now:
            return candidate.astimezone(ZoneInfo("UTC"))
    raise AssertionError("a weekday comes within eight days")


def window_opening(now: datetime, zone: ZoneInfo, window: dict[str, Any] | None) -> datetime:
    """``now`` when inside the schedule window (in ``zone``), else when it next opens."""
    if not window:
        return now
    local = now.astimezone(zone)
    for offset in range(0, 8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in window["days"]:
            continue
        opens = _resolve_local(datetime.combine(day, time(window["start_hour"])), zone)
        end_hour = window["end_hour"]
        closes = (
            _resolve_local(datetime.combine(day + timedelta(days=1), time(0)), zone)
            if end_hour == 24
            else _resolve_local(datetime.combine(day, time(end_hour)), zone)
        )
        if now < closes:
            return max(now, opens.astimezone(ZoneInfo("UTC")))
    return now


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=2 ** max(attempts - 1, 0))


# --- Enrolling -------------------------------------------------------------------------------


def _contacts_sql(
    workspace_id: int, contact_ids: Sequence[int] | None, contacts: Any
) -> tuple[str, list[Any]]:
    if contacts is None:
        contacts = Contact.objects.for_workspace(workspace_id).filter(
            pk__in_ids=list(contact_ids or [])
        )
    from django.db.models import F

    selected = contacts.annotate(enrol_id=F("pk")).values_list("enrol_id").order_by()
    sql, params = selected.query.sql_with_params()
    return sql, list(params)


def enrol_contacts(
    *,
    workflow: Workflow,
    contact_ids: Sequence[int] | None = None,
    contacts: Any = None,
    source: str = "trigger",
    now: datetime | None = None,
    yearly: bool = False,
) -> list[int]:
    """Enrol contacts into the workflow's published version; returns the enrolled contact ids.

    ``contacts`` (a queryset of the workspace's contacts) or ``contact_ids``.
    Contacts inside already, or whom the re-enrolment rule keeps out, are
    left out silently: a trigger firing twice enrols once. ``yearly`` (date
    triggers): once in any 300 days, whatever the rule.
    """
    version = workflow.published
    if version is None:
        raise EnrolmentRefused("The workflow is not published.")
    if contacts is None and not contact_ids:
        return []
    now = now or timezone.now()
    graph = version.graph
    rule = graph["settings"]
    first = schema.first_of(graph["steps"], "")
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    selected_sql, params = _contacts_sql(workflow.workspace_id, contact_ids, contacts)
    adapt = connection.ops.adapt_datetimefield_value
    # Each lookup is one probe of the (workspace, contact, workflow) index.
    previous = (
        f"SELECT 1 FROM {table} e WHERE e.workspace_id = {int(workflow.workspace_id)} "  # noqa: S608
        "AND e.contact_id = c.enrol_id AND e.workflow_id = %s"
    )
    conditions = []
    extra: list[Any] = []
    if yearly:
        conditions.append(f"NOT EXISTS ({previous} AND e.entered_at > %s)")
        extra += [workflow.pk, adapt(now - timedelta(days=300))]
    elif rule["reenrol"] == "never":
        conditions.append(f"NOT EXISTS ({previous})")
        extra += [workflow.pk]
    elif rule["reenrol"] == "after":
        conditions.append(f"NOT EXISTS ({previous} AND e.entered_at > %s)")
        extra += [workflow.pk, adapt(now - timedelta(days=rule["reenrol_days"]))]
    else:
        conditions.append(f"NOT EXISTS ({previous} AND e.status = 'active')")
        extra += [workflow.pk]
    status = EnrolmentStatus.ACTIVE if first else EnrolmentStatus.COMPLETED
    round_sql = (
        f"(SELECT COUNT(*) + 1 FROM {table} e "  # noqa: S608
        f"WHERE e.workspace_id = {int(workflow.workspace_id)} "
        "AND e.contact_id = c.enrol_id AND e.workflow_id = %s)"
    )
    sql = (
        f"INSERT INTO {table} (workspace_id, workflow_id, version_id, contact_id, status, step, "  # noqa: S608
        "next_wake_at, runs, attempts, last_error, waiting_for, round, source, entered_at, "
        "finished_at) SELECT %s, %s, %s, c.enrol_id, %s, %s, %s, 0, 0, '', '', "
        f"{round_sql}, %s, %s, %s "
        f"FROM ({selected_sql}) AS c WHERE {' AND '.join(conditions)} "
        "ON CONFLICT DO NOTHING RETURNING contact_id"
    )
    moment = adapt(now)
    values: list[Any] = [
        workflow.workspace_id,
        workflow.pk,
        version.pk,
        status,
        first,
        moment if first else None,
        workflow.pk,  # the round's count
        source[:30],
        moment,
        None if first else moment,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *params, *extra])
        return [row[0] for row in cursor.fetchall()]


def enrol_contact(
    *, workflow: Workflow, contact: Contact, source: str = "manual", now: datetime | None = None
) -> Enrolment:
    """Enrol one contact; raises ``EnrolmentRefused`` saying why not."""
    if workflow.status != WorkflowStatus.ACTIVE:
        raise EnrolmentRefused("Only an active workflow takes contacts.")
    if contact.workspace_id != workflow.workspace_id:
        raise EnrolmentRefused("The contact is not part of this workspace.")
    with transaction.atomic():
        enrolled = enrol_contacts(
            workflow=workflow, contact_ids=[contact.pk], source=source, now=now
        )
    if not enrolled:
        raise EnrolmentRefused(
            "The contact is in the workflow already, or its re-enrolment rule keeps them out."
        )
    return (
        Enrolment.objects.for_workspace(workflow.workspace_id)
        .filter(workflow=workflow, contact_id=contact.pk)
        .order_by("-id")
        .first()
    )  # type: ignore[return-value]


# --- Claiming --------------------------------------------------------------------------------


@dataclass
class Claimed:
    id: int
    workflow_id: int
    version_id: int
    contact_id: int
    step: str
    runs: int
    round: int
    attempts: int
    waiting_for: str
    entered_at: datetime


def active_workflow_ids(workspace_id: int) -> list[int]:
    return list(
        Workflow.objects.for_workspace(workspace_id)
        .filter(status=WorkflowStatus.ACTIVE)
        .values_list("pk", flat=True)
    )


def claim(workspace_id: int, *, now: datetime, limit: int = BATCH_SIZE) -> list[Claimed]:
    """Take up to ``limit`` due enrolments of the workspace's active workflows, with a lease."""
    workflows = active_workflow_ids(workspace_id)
    if not workflows:
        return []
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    marks = ", ".join(["%s"] * len(workflows))
    # SQLite only (one writer at a time): PostgreSQL claims with row locks, claim_locked.
    sql = (
        f"UPDATE {table} SET lease_until = %s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE workspace_id = %s AND status = 'active' "
        f"AND next_wake_at <= %s AND workflow_id IN ({marks}) "
        f"AND (lease_until IS NULL OR lease_until < %s) ORDER BY next_wake_at LIMIT %s) "
        f"AND (lease_until IS NULL OR lease_until < %s) "
        "RETURNING id, workflow_id, version_id, contact_id, step, runs, round, attempts, "
        "waiting_for, entered_at"
    )
    moment = adapt(now)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [adapt(now + LEASE), workspace_id, moment, *workflows, moment, limit, moment],
        )
        rows = cursor.fetchall()
    return [_claimed(row) for row in rows]


def claim_locked(workspace_id: int, *, now: datetime, limit: int = BATCH_SIZE) -> list[Claimed]:
    """PostgreSQL: lock up to ``limit`` due enrolments for the current transaction.

    Rows another worker holds are skipped; a lease left by an SQLite-style
    claim is honoured the same way.
    """
    workflows = active_workflow_ids(workspace_id)
    if not workflows:
        return []
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    sql = (
        "SELECT id, workflow_id, version_id, contact_id, step, runs, round, attempts, "  # noqa: S608
        f"waiting_for, entered_at FROM {table} WHERE workspace_id = %s AND status = 'active' "
        "AND next_wake_at <= %s AND workflow_id = ANY(%s) "
        "AND (lease_until IS NULL OR lease_until < %s) "
        "ORDER BY next_wake_at LIMIT %s FOR UPDATE SKIP LOCKED"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id, now, workflows, now, limit])
        return [_claimed(row) for row in cursor.fetchall()]


def _claimed(row: Sequence[Any]) -> Claimed:
    entered = row[9]
    if isinstance(entered, str):
        entered = datetime.fromisoformat(entered)
    if timezone.is_naive(entered):
        entered = timezone.make_aware(entered, ZoneInfo("UTC"))
    return Claimed(
        id=row[0],
        workflow_id=row[1],
        version_id=row[2],
        contact_id=row[3],
        step=row[4],
        runs=row[5],
        round=row[6],
        attempts=row[7],
        waiting_for=row[8],
        entered_at=entered,
    )


# --- Running a round -------------------------------------------------------------------------


@dataclass
class Move:
    """Where one enrolment goes after its step."""

    result: dict[str, Any] = field(default_factory=dict)
    next_step: str | None = None  # None: the step's usual successor
    status: str = EnrolmentStatus.ACTIVE
    ran: bool = True  # False: only a timer was set (no step run)
    wake_at: datetime | None = None
    waiting_for: str = ""


@dataclass
class Group:
    workspace: Workspace
    workflow: Workflow
    version: WorkflowVersion
    step: dict[str, Any]
    rows: list[Claimed]
    now: datetime
    successors: dict[str, str]
    steps: dict[str, dict[str, Any]]
    zones: dict[int, ZoneInfo] = field(default_factory=dict)
    contacts: dict[int, Contact] = field(default_factory=dict)


@dataclass
class RoundResult:
    claimed: int = 0
    steps: int = 0
    failed: int = 0
    goal: int = 0


VersionMaps = tuple[WorkflowVersion, dict[str, str], dict[str, dict[str, Any]]]


def _version(version_id: int, cache: dict[int, VersionMaps] | None = None) -> VersionMaps:
    """A published version with its step maps (loaded once per round)."""
    cached = cache.get(version_id) if cache is not None else None
    if cached is None:
        version = WorkflowVersion.objects.unscoped().select_related("workflow").get(pk=version_id)
        steps = version.graph["steps"]
        cached = (version, schema.next_step_map(steps), schema.step_index(steps))
        if cache is not None:
            cache[version_id] = cached
    return cached


def run_due(
    workspace: Workspace, *, now: datetime | None = None, limit: int = BATCH_SIZE
) -> RoundResult:
    """One round: claim due enrolments of the workspace and run their steps.

    PostgreSQL: the round is one transaction that holds the claimed rows
    locked (``FOR UPDATE SKIP LOCKED``): other workers skip them, and a worker
    that dies releases them with its connection. Each (version, step) group
    runs in a savepoint. SQLite (one writer at a time): the claim is a lease
    written in its own short transaction, and each group commits on its own.
    """
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        with transaction.atomic():
            claimed = claim_locked(workspace.pk, now=now, limit=limit)
            return _run_claimed(workspace, claimed, now)
    with transaction.atomic():
        claimed = claim(workspace.pk, now=now, limit=limit)
    return _run_claimed(workspace, claimed, now)


def _run_claimed(workspace: Workspace, claimed: list[Claimed], now: datetime) -> RoundResult:
    result = RoundResult(claimed=len(claimed))
    if not claimed:
        return result
    versions: dict[int, VersionMaps] = {}
    claimed = _exit_on_goal(workspace, claimed, now, result, versions)
    groups: dict[tuple[int, str], list[Claimed]] = defaultdict(list)
    for row in claimed:
        groups[(row.version_id, row.step)].append(row)
    for (version_id, step_id), rows in groups.items():
        version, successors, steps = _version(version_id, versions)
        step = steps.get(step_id)
        if step is None:  # cannot happen with immutable versions; never leave a row stuck
            _finish(workspace.pk, [r.id for r in rows], EnrolmentStatus.COMPLETED, now)
            continue
        if step["type"] in SLOW_STEPS and len(rows) > SLOW_BATCH:
            # Calls that leave the machine wait on someone else's server while the round's
            # transaction holds its rows: a few per round, the rest at the next one.
            rows, later = rows[:SLOW_BATCH], rows[SLOW_BATCH:]
            Enrolment.objects.for_workspace(workspace).filter(
                pk__in_ids=[r.id for r in later]
            ).update(lease_until=None)
        group = Group(
            workspace=workspace,
            workflow=version.workflow,
            version=version,
            step=step,
            rows=rows,
            now=now,
            successors=successors,
            steps=steps,
        )
        done, failed = run_group(group)
        result.steps += done
        result.failed += failed
    return result


def _exit_on_goal(
    workspace: Workspace,
    claimed: list[Claimed],
    now: datetime,
    result: RoundResult,
    versions: dict[int, VersionMaps],
) -> list[Claimed]:
    """Enrolments whose contact meets their version's goal leave before running a step."""
    by_version: dict[int, list[Claimed]] = defaultdict(list)
    for row in claimed:
        by_version[row.version_id].append(row)
    reached: set[int] = set()
    for version_id, rows in by_version.items():
        version, _s, _i = _version(version_id, versions)
        goal = version.graph["settings"].get("goal")
        if not goal:
            continue
        met = set(_matching(workspace, goal, [r.contact_id for r in rows]))
        ids = [r.id for r in rows if r.contact_id in met]
        if ids:
            _finish(workspace.pk, ids, EnrolmentStatus.GOAL, now)
            reached.update(ids)
    result.goal += len(reached)
    return [row for row in claimed if row.id not in reached]


def _matching(
    workspace: Workspace, definition: dict[str, Any], contact_ids: list[int]
) -> list[int]:
    vocab = segments.vocabulary(workspace)
    vocab.only_contacts = contact_ids
    try:
        query = segments.compile_definition(workspace, definition, vocab=vocab)
    except segments.SegmentInvalid:
        return []
    return list(
        Contact.objects.for_workspace(workspace)
        .filter(pk__in_ids=contact_ids)
        .filter(query)
        .values_list("pk", flat=True)
    )


def _finish(workspace_id: int, ids: list[int], status: str, now: datetime) -> None:
    Enrolment.objects.for_workspace(workspace_id).filter(pk__in_ids=ids).update(
        status=status, finished_at=now, lease_until=None, next_wake_at=None, waiting_for=""
    )


def run_group(group: Group) -> tuple[int, int]:
    """Run one step for a group, set-based; on an error, one enrolment at a time."""
    try:
        with transaction.atomic():
            moves = _decide(group, group.rows)
            _apply(group, group.rows, moves)
        return sum(1 for m in moves.values() if m.ran), 0
    except Exception:
        if len(group.rows) == 1:
            return _fail(group, group.rows[0])
        logger.info("Workflow step %s failed for a group; trying one by one", group.step["id"])
    done = failed = 0
    for row in group.rows:
        # Rows loaded by the failed attempt may hold its rolled-back changes: load afresh.
        single = Group(**{**group.__dict__, "rows": [row], "contacts": {}})
        ran, lost = run_group(single)
        done += ran
        failed += lost
    return done, failed


def _fail(group: Group, row: Claimed) -> tuple[int, int]:
    import traceback

    error = traceback.format_exc().strip().splitlines()[-1][:1000]
    logger.warning("Workflow step %s failed for enrolment %s: %s", group.step["id"], row.id, error)
    attempts = row.attempts + 1
    # Only the claim that is still current may count a failure: a stale claim (another
    # worker ran the step meanwhile, the step run's key refused ours) changes nothing.
    rows = Enrolment.objects.for_workspace(group.workspace.pk).filter(
        pk=row.id, status=EnrolmentStatus.ACTIVE, runs=row.runs, step=row.step
    )
    if not rows.exists():
        return 0, 0
    with transaction.atomic():
        if attempts >= MAX_ATTEMPTS:
            StepRun.objects.create(
                workspace_id=group.workspace.pk,
                enrolment_id=row.id,
                workflow_id=group.workflow.pk,
                step_id=group.step["id"],
                iteration=row.runs,
                step_type=group.step["type"],
                status=StepRunStatus.FAILED,
                error=error,
                ran_at=group.now,
            )
            rows.update(
                status=EnrolmentStatus.FAILED,
                attempts=attempts,
                last_error=error,
                lease_until=None,
                next_wake_at=None,
                finished_at=group.now,
            )
            return 0, 1
        rows.update(
            attempts=attempts,
            last_error=error,
            lease_until=None,
            next_wake_at=group.now + backoff(attempts),
        )
    return 0, 0


def _zones(group: Group) -> dict[int, ZoneInfo]:
    if not group.zones:
        fallback = workspace_zone(group.workspace)
        names = dict(
            Contact.objects.for_workspace(group.workspace)
            .filter(pk__in_ids=[r.contact_id for r in group.rows])
            .values_list("pk", "time_zone")
        )
        cache: dict[str, ZoneInfo] = {}
        for contact_id, name in names.items():
            if name not in cache:
                cache[name] = zone_named(name, fallback)
            group.zones[contact_id] = cache[name]
        for row in group.rows:
            group.zones.setdefault(row.contact_id, fallback)
    return group.zones


def _contact(group: Group, contact_id: int) -> Contact:
    if not group.contacts:
        group.contacts = {
            c.pk: c
            for c in Contact.objects.for_workspace(group.workspace)
            .select_related("workspace")
            .filter(pk__in_ids=[r.contact_id for r in group.rows])
        }
    contact = group.contacts.get(contact_id)
    if contact is None:
        raise LookupError(f"Contact {contact_id} no longer exists")
    return contact


# --- Deciding each step ----------------------------------------------------------------------


def _decide(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    step = group.step
    kind = step["type"]
    alive = _existing_contacts(group, rows)
    moves: dict[int, Move] = {}
    for row in rows:
        if row.contact_id not in alive:
            moves[row.id] = Move(
                result={"contact": "deleted"}, status=EnrolmentStatus.EXITED, next_step=""
            )
    rows = [r for r in rows if r.contact_id in alive]
    if not rows:
        return moves
    arriving = [r for r in rows if not r.waiting_for]
    if kind in WAIT_TYPES:
        for row in arriving:
            moves[row.id] = _arrive_at_wait(group, step, row)
        rows = [r for r in rows if r.waiting_for]
    elif kind not in CONTROL_TYPES and group.version.graph["settings"].get("window"):
        window = group.version.graph["settings"]["window"]
        zones = _zones(group)
        held = []
        for row in arriving:
            opens = window_opening(group.now, zones[row.contact_id], window)
            if opens > group.now:
                moves[row.id] = Move(ran=False, wake_at=opens, waiting_for=TIMER)
                held.append(row.id)
        rows = [r for r in rows if r.id not in held]
    if rows:
        moves.update(STEP_HANDLERS[kind](group, rows))
    return moves


def _existing_contacts(group: Group, rows: list[Claimed]) -> set[int]:
    return set(
        Contact.objects.for_workspace(group.workspace)
        .filter(pk__in_ids=[r.contact_id for r in rows])
        .values_list("pk", flat=True)
    )


def _arrive_at_wait(group: Group, step: dict[str, Any], row: Claimed) -> Move:
    zone = _zones(group)[row.contact_id]
    now = group.now
    if step["type"] == "wait":
        wake = add_wait(now, zone, days=step["days"], hours=step["hours"], minutes=step["minutes"])
        return Move(ran=False, wake_at=wake, waiting_for=TIMER)
    mode = step["mode"]
    if mode == "datetime":
        at = _resolve_local(datetime.fromisoformat(step["at"]), zone)
        return Move(ran=False, wake_at=max(at.astimezone(ZoneInfo("UTC")), now), waiting_for=TIMER)
    if mode == "weekday":
        return Move(
            ran=False,
            wake_at=next_weekday_hour(now, zone, step["weekday"], step["hour"]),
            waiting_for=TIMER,
        )
    timeout = now + timedelta(days=step["timeout_days"], hours=step["timeout_hours"])
    return Move(ran=False, wake_at=timeout, waiting_for=step["kind"])


def _wait(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    return {row.id: Move(result={"waited": True}) for row in rows}


def _wait_until(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    moves = {}
    for row in rows:
        if group.step["mode"] == "event":
            happened = row.waiting_for == EVENT_SEEN
            moves[row.id] = Move(result={"event": happened, "timed_out": not happened})
        else:
            moves[row.id] = Move(result={"waited": True})
    return moves


def _branch(group: Group, row: Claimed, branch: str) -> Move:
    step = group.step
    following = group.successors[step["id"]]
    return Move(
        result={"branch": branch}, next_step=schema.first_of(step.get(branch) or [], following)
    )


def _if(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    yes = condition_holds(group.workspace, group.workflow, group.step["condition"], rows, group.now)
    return {row.id: _branch(group, row, "yes" if row.id in yes else "no") for row in rows}


def split_bucket(enrolment_id: int, step_id: str) -> int:
    """0..99, the same every time for one enrolment and step."""
    digest = hashlib.sha256(f"{enrolment_id}:{step_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100


def _split(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    percent = group.step["percent_a"]
    return {
        row.id: _branch(
            group, row, "a" if split_bucket(row.id, group.step["id"]) < percent else "b"
        )
        for row in rows
    }


def _exit(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    return {
        row.id: Move(result={"exited": True}, status=EnrolmentStatus.EXITED, next_step="")
        for row in rows
    }


def condition_holds(
    workspace: Workspace,
    workflow: Workflow,
    condition: dict[str, Any],
    rows: Sequence[Claimed],
    now: datetime,
) -> set[int]:
    """The ids of the enrolments (``rows``) for which ``condition`` holds, in a few queries."""
    kind = condition["type"]
    contact_ids = [r.contact_id for r in rows]
    if kind in {"segment", "in_segment"}:
        if kind == "segment":
            definition = condition["definition"]
        else:
            from patron.audience.models import Segment

            segment = (
                Segment.objects.for_workspace(workspace).filter(pk=condition["segment"]).first()
            )
            if segment is None:
                return set()
            definition = segment.definition
        met = set(_matching(workspace, definition, contact_ids))
        return {r.id for r in rows if r.contact_id in met}
    if kind in {"opened_last_email", "clicked_last_email"}:
        last = _last_campaigns([r.id for r in rows])
        event_kind = "email.opened" if kind == "opened_last_email" else "email.clicked"
        by_campaign: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            if row.id in last:
                by_campaign[last[row.id]].append(row)
        holds: set[int] = set()
        for campaign_id, members in by_campaign.items():
            did = set(
                Event.objects.for_workspace(workspace)
                .filter(
                    kind=event_kind,
                    source_type="mail.campaign",
                    source_id=str(campaign_id),
                    contact_id__in_ids=[m.contact_id for m in members],
                )
                .values_list("contact_id", flat=True)
            )
            holds.update(m.id for m in members if m.contact_id in did)
        return holds
    # Behaviour since each enrolment began.
    since = min(r.entered_at for r in rows)
    events = Event.objects.for_workspace(workspace).filter(
        contact_id__in_ids=contact_ids, occurred_at__gte=since
    )
    if kind == "clicked_link":
        events = events.filter(
            kind="email.clicked", properties__url__icontains=condition["url_contains"]
        )
    else:
        events = events.filter(kind=condition["kind"])
        for item in condition.get("filters") or []:
            events = events.filter(segments._property_q(item))
    first_time: dict[int, datetime] = {}
    for contact_id, occurred in events.values_list("contact_id", "occurred_at"):
        if contact_id not in first_time or occurred > first_time[contact_id]:
            first_time[contact_id] = occurred
    return {
        r.id
        for r in rows
        if r.contact_id in first_time and first_time[r.contact_id] >= r.entered_at
    }


def _last_campaigns(enrolment_ids: list[int]) -> dict[int, int]:
    """Each enrolment's most recent email step's campaign."""
    last: dict[int, tuple[int, int]] = {}
    for enrolment_id, iteration, result in (
        StepRun.objects.unscoped()
        .filter(
            enrolment_id__in=enrolment_ids, step_type="send_email", status=StepRunStatus.COMPLETED
        )
        .values_list("enrolment_id", "iteration", "result")
    ):
        campaign = (result or {}).get("campaign")
        if campaign and (enrolment_id not in last or iteration > last[enrolment_id][0]):
            last[enrolment_id] = (iteration, int(campaign))
    return {key: value[1] for key, value in last.items()}


# --- Actions ---------------------------------------------------------------------------------


def email_campaign(group: Group, round_number: int) -> int:
    """The campaign carrying this step's messages for a round (made on first use)."""
    from patron.mail.automated import create_automated_campaign
    from patron.mail.models import EmailTemplate

    step = group.step
    existing = (
        WorkflowEmail.objects.for_workspace(group.workspace)
        .filter(version=group.version, step_id=step["id"], round=round_number)
        .values_list("campaign_id", flat=True)
        .first()
    )
    if existing is not None:
        return int(existing)
    template = EmailTemplate.objects.for_workspace(group.workspace).get(pk=step["template"])
    suffix = f" ({round_number})" if round_number > 1 else ""
    campaign = create_automated_campaign(
        workspace=group.workspace,
        template=template,
        name=f"{group.workflow.name} · v{group.version.number} · {template.name}{suffix}",
    )
    WorkflowEmail.objects.create(
        workspace=group.workspace,
        workflow=group.workflow,
        version=group.version,
        step_id=step["id"],
        round=round_number,
        campaign_id=campaign.pk,
    )
    return campaign.pk


def _send_email(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    from patron.mail.automated import queue_automated_deliveries
    from patron.mail.models import Campaign

    moves = {}
    by_round: dict[int, list[Claimed]] = defaultdict(list)
    for row in rows:
        by_round[row.round].append(row)
    for round_number, members in by_round.items():
        campaign_id = email_campaign(group, round_number)
        campaign = (
            Campaign.objects.for_workspace(group.workspace)
            .select_related("workspace")
            .get(pk=campaign_id)
        )
        written = queue_automated_deliveries(
            campaign=campaign, contact_ids=[m.contact_id for m in members]
        )
        for row in members:
            delivery = written.get(row.contact_id)
            result: dict[str, Any] = {"campaign": campaign_id}
            if delivery is None:
                result["skipped"] = "not sendable"
            else:
                result["delivery"] = delivery
            moves[row.id] = Move(result=result)
    return moves


def _add_tag(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    from patron.crm.services import BulkAction, bulk_update_contacts

    bulk_update_contacts(
        workspace=group.workspace,
        contact_ids=[r.contact_id for r in rows],
        action=BulkAction.TAG,
        value=group.step["tag"],
    )
    return {row.id: Move(result={"tag": group.step["tag"]}) for row in rows}


def _per_contact(
    action: Callable[[Group, Contact, Claimed], dict[str, Any]],
) -> Callable[[Group, list[Claimed]], dict[int, Move]]:
    def run(group: Group, rows: list[Claimed]) -> dict[int, Move]:
        return {
            row.id: Move(result=action(group, _contact(group, row.contact_id), row)) for row in rows
        }

    return run


def _remove_tag(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.models import Tag
    from patron.crm.services import remove_tag

    tag = Tag.objects.for_workspace(group.workspace).filter(name__iexact=group.step["tag"]).first()
    if tag is not None:
        remove_tag(record_=contact, tag=tag)
    return {"tag": group.step["tag"], "had": tag is not None}


def _lists(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    from patron.audience import lists
    from patron.audience.models import ConsentSource, MailingList

    mailing_list = (
        MailingList.objects.for_workspace(group.workspace)
        .select_related("workspace")
        .get(pk=group.step["list"])
    )
    consent = lists.Consent(
        source=ConsentSource.WORKFLOW,
        details={"workflow": group.workflow.pk, "step": group.step["id"]},
    )
    ids = [r.contact_id for r in rows]
    if group.step["type"] == "subscribe":
        outcome = lists.subscribe_contacts(mailing_list=mailing_list, contacts=ids, consent=consent)
    else:
        outcome = lists.unsubscribe_contacts(
            mailing_list=mailing_list, contacts=ids, consent=consent
        )
    changed = set(outcome.changed)
    return {
        row.id: Move(result={"list": mailing_list.pk, "changed": row.contact_id in changed})
        for row in rows
    }


def _update_field(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.services import update_contact

    field_name, value = group.step["field"], group.step["value"]
    if field_name.startswith("custom."):
        update_contact(contact=contact, custom={field_name.removeprefix("custom."): value})
    else:
        update_contact(contact=contact, **{field_name: value})
    return {"field": field_name, "value": value}


def _change_score(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.services import change_score

    score = change_score(
        contact=contact,
        points=group.step["points"],
        reason=f"Workflow: {group.workflow.name}",
        rule=f"workflow:{group.workflow.pk}:{group.step['id']}",
    )
    return {"points": group.step["points"], "score": score}


def _set_lifecycle(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.services import set_lifecycle_stage

    moved = set_lifecycle_stage(
        contact=contact, stage=group.step["stage"], reason=f"Workflow: {group.workflow.name}"
    )
    return {"stage": group.step["stage"], "moved": moved}


def _user(group: Group, value: Any, contact: Contact) -> Any:
    from patron.core.models import User

    if value == "owner":
        return contact.owner
    return User.objects.filter(
        pk=value, memberships__workspace=group.workspace, memberships__is_active=True
    ).first()


def _assign_owner(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.services import update_contact

    user = _user(group, group.step["user"], contact)
    if user is None:
        raise LookupError("The owner to assign is no longer a member of the workspace")
    update_contact(contact=contact, owner=user)
    return {"owner": user.pk}


def _notify(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from django.urls import reverse

    from patron.core.services import notify

    user = _user(group, group.step["user"], contact)
    if user is None:
        return {"notified": None, "reason": "no owner"}
    name = (
        " ".join(part for part in (contact.first_name, contact.last_name) if part) or contact.email
    )
    notify(
        workspace=group.workspace,
        user=user,
        text=f"{group.step['text']} — {name}",
        url=reverse("crm:contact_detail", args=[contact.pk]),
    )
    return {"notified": user.pk}


def _create_task(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.services import create_task

    assignee = _user(group, group.step["assignee"], contact)
    task = create_task(
        workspace=group.workspace,
        title=group.step["title"],
        contact=contact,
        assignee=assignee,
        due_at=group.now + timedelta(days=group.step["due_days"]),
    )
    return {"task": task.pk}


def _create_deal(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.models import Pipeline
    from patron.crm.services import create_deal

    pipeline = None
    if group.step.get("pipeline"):
        pipeline = (
            Pipeline.objects.for_workspace(group.workspace)
            .filter(pk=group.step["pipeline"])
            .first()
        )
    deal = create_deal(
        workspace=group.workspace, name=group.step["name"], pipeline=pipeline, contacts=[contact]
    )
    return {"deal": deal.pk}


def _create_ticket(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    from patron.crm.tickets import open_ticket

    ticket = open_ticket(
        workspace=group.workspace,
        subject=group.step["subject"],
        description=group.step["description"],
        contact=contact,
        priority=group.step["priority"],
        channel="manual",
    )
    return {"ticket": ticket.pk}


def webhook_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _webhook(group: Group, contact: Contact, row: Claimed) -> dict[str, Any]:
    body = json.dumps(
        {
            "workflow": {
                "id": group.workflow.pk,
                "name": group.workflow.name,
                "version": group.version.number,
            },
            "step": group.step["id"],
            "enrolment": row.id,
            "contact": {
                "id": contact.pk,
                "email": contact.email,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "score": contact.score,
                "lifecycle_stage": contact.lifecycle_stage,
            },
            "sent_at": group.now.isoformat(),
        },
        sort_keys=True,
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked on save (http/https)
        group.step["url"],
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Patron-Workflows/1",
            "X-Patron-Signature": "sha256=" + webhook_signature(group.step["secret"], body),
            "X-Patron-Idempotency-Key": f"{row.id}:{group.step['id']}:{row.runs}",
        },
    )
    with open_public_url(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        status = response.status
    if status >= 300:
        raise RuntimeError(f"The webhook answered {status}")
    return {"status": status}


def _enrol_elsewhere(group: Group, rows: list[Claimed]) -> dict[int, Move]:
    target = (
        Workflow.objects.for_workspace(group.workspace)
        .select_related("published")
        .filter(pk=group.step["workflow"])
        .first()
    )
    enrolled: set[int] = set()
    if (
        target is not None
        and target.status == WorkflowStatus.ACTIVE
        and target.published is not None
    ):
        enrolled = set(
            enrol_contacts(
                workflow=target,
                contact_ids=[r.contact_id for r in rows],
                source=f"workflow:{group.workflow.pk}",
                now=group.now,
            )
        )
    return {
        row.id: Move(
            result={"workflow": group.step["workflow"], "enrolled": row.contact_id in enrolled}
        )
        for row in rows
    }


STEP_HANDLERS: dict[str, Callable[[Group, list[Claimed]], dict[int, Move]]] = {
    "wait": _wait,
    "wait_until": _wait_until,
    "if": _if,
    "split": _split,
    "exit": _exit,
    "send_email": _send_email,
    "add_tag": _add_tag,
    "remove_tag": _per_contact(_remove_tag),
    "subscribe": _lists,
    "unsubscribe": _lists,
    "update_field": _per_contact(_update_field),
    "change_score": _per_contact(_change_score),
    "set_lifecycle": _per_contact(_set_lifecycle),
    "assign_owner": _per_contact(_assign_owner),
    "notify": _per_contact(_notify),
    "create_task": _per_contact(_create_task),
    "create_deal": _per_contact(_create_deal),
    "create_ticket": _per_contact(_create_ticket),
    "webhook": _per_contact(_webhook),
    "enrol": _enrol_elsewhere,
}


# --- Writing the moves -----------------------------------------------------------------------


def _apply(group: Group, rows: list[Claimed], moves: dict[int, Move]) -> None:
    """Step runs, then each enrolment's move, grouped into a few UPDATEs."""
    step = group.step
    runs = [
        [
            group.workspace.pk,
            row.id,
            group.workflow.pk,
            step["id"],
            row.runs,
            step["type"],
            StepRunStatus.COMPLETED,
            moves[row.id].result,
            "",
            group.now,
        ]
        for row in rows
        if moves[row.id].ran
    ]
    if runs:
        try:
            bulk.insert_rows(
                StepRun,
                [
                    "workspace_id",
                    "enrolment_id",
                    "workflow_id",
                    "step_id",
                    "iteration",
                    "step_type",
                    "status",
                    "result",
                    "error",
                    "ran_at",
                ],
                runs,
            )
        except IntegrityError:
            # Another worker ran this step for one of these enrolments: undo ours.
            raise
    updates: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for row in rows:
        move = moves[row.id]
        if not move.ran:
            key: tuple[Any, ...] = ("wait", move.wake_at, move.waiting_for)
            updates[key].append(row.id)
            continue
        target = group.successors[step["id"]] if move.next_step is None else move.next_step
        status = move.status
        if status == EnrolmentStatus.ACTIVE and not target:
            status = EnrolmentStatus.COMPLETED
        updates[("move", target, status)].append(row.id)
    enrolments = Enrolment.objects.for_workspace(group.workspace)
    for key, ids in updates.items():
        if key[0] == "wait":
            enrolments.filter(pk__in_ids=ids).update(
                next_wake_at=key[1], waiting_for=key[2], lease_until=None
            )
            continue
        _kind, target, status = key
        values: dict[str, Any] = {
            "step": target,
            "status": status,
            "waiting_for": "",
            "attempts": 0,
            "last_error": "",
            "lease_until": None,
        }
        if status == EnrolmentStatus.ACTIVE:
            values["next_wake_at"] = group.now
        else:
            values["next_wake_at"] = None
            values["finished_at"] = group.now
        from django.db.models import F

        enrolments.filter(pk__in_ids=ids).update(runs=F("runs") + 1, **values)


# --- Events: enrolling on triggers, waking "wait until" ----------------------------------------


def wake_waiting(workspace_id: int, events: Iterable[Event], now: datetime | None = None) -> int:
    """End the "wait until <event>" of enrolments whose contact just did it."""
    now = now or timezone.now()
    by_kind: dict[str, dict[int, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for event in events:
        if event.contact_id is not None:
            by_kind[event.kind][event.contact_id].append(event)
    woken = 0
    versions: dict[int, VersionMaps] = {}
    for kind, by_contact in by_kind.items():
        waiting = list(
            Enrolment.objects.for_workspace(workspace_id)
            .filter(
                status=EnrolmentStatus.ACTIVE, waiting_for=kind, contact_id__in=list(by_contact)
            )
            .values_list("pk", "version_id", "step", "contact_id", "entered_at")
        )
        ready = []
        for enrolment_id, version_id, step_id, contact_id, entered_at in waiting:
            _version_row, _succ, steps = _version(version_id, versions)
            step = steps.get(step_id)
            if step is None:
                continue
            campaigns = (
                _workflow_campaigns(workspace_id, _version_row.workflow_id)
                if step.get("of_workflow")
                else None
            )
            if any(
                event_matches(step.get("filters") or [], e.properties)
                and (campaigns is None or _campaign_of(e) in campaigns)
                and e.occurred_at >= entered_at
                for e in by_contact[contact_id]
            ):
                ready.append(enrolment_id)
        if ready:
            woken += (
                Enrolment.objects.for_workspace(workspace_id)
                .filter(pk__in=ready, status=EnrolmentStatus.ACTIVE, waiting_for=kind)
                .update(waiting_for=EVENT_SEEN, next_wake_at=now)
            )
    return woken


def _campaign_of(event: Event) -> int | None:
    value = (event.properties or {}).get("campaign")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _workflow_campaigns(workspace_id: int, workflow_id: int) -> set[int]:
    return set(
        WorkflowEmail.objects.for_workspace(workspace_id)
        .filter(workflow_id=workflow_id)
        .values_list("campaign_id", flat=True)
    )


def event_matches(filters: list[dict[str, str]], properties: dict[str, Any]) -> bool:
    """Whether an event's properties pass the property filters (case-insensitive)."""
    for item in filters:
        value = properties.get(item["property"]) if properties else None
        if value is None:
            return False
        text, wanted = str(value).lower(), item["value"].lower()
        if item["op"] == "contains" and wanted not in text:
            return False
        if item["op"] == "starts" and not text.startswith(wanted):
            return False
        if item["op"] == "eq" and text != wanted:
            return False
    return True


def trigger_matches(trigger: dict[str, Any], event: Event, pipelines: dict[int, str]) -> bool:
    """Whether ``event`` fires ``trigger``."""
    kind = trigger["type"]
    props = event.properties or {}
    if kind == "form_submitted":
        return event.kind == "form.submitted" and (
            trigger["form"] is None or str(props.get("form_id")) == str(trigger["form"])
        )
    if kind in {"segment_entered", "segment_left"}:
        wanted = "segment.entered" if kind == "segment_entered" else "segment.left"
        return event.kind == wanted and event.source_id == str(trigger["segment"])
    if kind == "list_joined":
        return event.kind == "list.subscribed" and str(props.get("list_id")) == str(trigger["list"])
    if kind == "event":
        return event.kind == trigger["kind"] and event_matches(trigger["filters"], props)
    if kind == "field_changed":
        if event.kind != "contact.field_changed":
            return False
        changes = props.get("changes") or {}
        field_name = trigger["field"]
        if field_name.startswith("custom."):
            custom = changes.get("custom")
            if not isinstance(custom, list) or len(custom) != 2:
                return False
            key = field_name.removeprefix("custom.")
            old, new = (custom[0] or {}).get(key), (custom[1] or {}).get(key)
            if old == new:
                return False
            change = [old, new]
        elif field_name in changes:
            change = changes[field_name]
        else:
            return False
        return not trigger["to"] or str(change[1]) == trigger["to"]
    if kind == "deal_stage":
        if event.kind != "deal.stage_changed":
            return False
        if trigger["stage"] and str(props.get("to_stage", "")).lower() != trigger["stage"].lower():
            return False
        return not trigger["pipeline"] or props.get("pipeline") == pipelines.get(
            trigger["pipeline"]
        )
    if kind == "score_crossed":
        if event.kind != "contact.score_changed":
            return False
        try:
            before, after = int(props["from"]), int(props["to"])
        except (KeyError, TypeError, ValueError):
            return False
        threshold = trigger["threshold"]
        if trigger["direction"] == "up":
            return before < threshold <= after
        return before >= threshold > after
    return False


EVENT_TRIGGERS = [t for t in schema.TRIGGER_TYPES if t not in {"date", "manual"}]


def handle_events(events: list[Event]) -> None:
    """The consumer's handler: enrol on triggers, end event waits.

    Runs in the checkpoint's transaction: enrolments and the checkpoint move together.
    """
    by_workspace: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        if event.contact_id is not None:
            by_workspace[event.workspace_id].append(event)
    if not by_workspace:
        return
    workflows = list(
        Workflow.objects.unscoped()
        .filter(
            workspace_id__in=list(by_workspace),
            status=WorkflowStatus.ACTIVE,
            trigger_type__in=EVENT_TRIGGERS,
        )
        .select_related("published")
    )
    by_ws_workflows: dict[int, list[Workflow]] = defaultdict(list)
    for workflow in workflows:
        by_ws_workflows[workflow.workspace_id].append(workflow)
    for workspace_id, ws_events in by_workspace.items():
        pipelines: dict[int, str] = {}
        if any(w.trigger_type == "deal_stage" for w in by_ws_workflows[workspace_id]):
            from patron.crm.models import Pipeline

            pipelines = dict(Pipeline.objects.for_workspace(workspace_id).values_list("pk", "name"))
        for workflow in by_ws_workflows[workspace_id]:
            if workflow.published is None:
                continue
            trigger = workflow.published.graph["trigger"]
            contact_ids = sorted(
                {
                    e.contact_id
                    for e in ws_events
                    if e.contact_id and trigger_matches(trigger, e, pipelines)
                }
            )
            if contact_ids:
                enrol_contacts(workflow=workflow, contact_ids=contact_ids, source=trigger["type"])
        wake_waiting(workspace_id, ws_events)


CONSUMER = "automation.workflows"


def follow_activity(batch_size: int = 2000) -> int:
    """Read new events once: triggers and event waits; returns events handled."""
    from patron.activity.services import consume

    total = 0
    while True:
        handled = consume(CONSUMER, handle_events, batch_size=batch_size)
        total += handled
        if handled < batch_size:
            return total


# --- Date triggers ---------------------------------------------------------------------------


def enrol_by_date(now: datetime | None = None) -> int:
    """Enrol contacts whose yearly date (birthday, anniversary field) is today, from the hour set.

    Each contact's day and hour are its own time zone's (else the
    workspace's). Run hourly; a contact is enrolled once a year (a late run
    catches up the same day). A 29 February date is celebrated on 28 February
    in other years.
    """
    now = now or timezone.now()
    total = 0
    for workflow in (
        Workflow.objects.unscoped()
        .filter(status=WorkflowStatus.ACTIVE, trigger_type="date")
        .select_related("published", "workspace")
    ):
        if workflow.published is None:
            continue
        trigger = workflow.published.graph["trigger"]
        workspace = workflow.workspace
        fallback = workspace_zone(workspace)
        zone_names = list(
            Contact.objects.for_workspace(workspace)
            .order_by()
            .values_list("time_zone", flat=True)
            .distinct()
        )
        for name in zone_names:
            zone = zone_named(name, fallback)
            local = now.astimezone(zone)
            if local.hour < trigger["hour"]:
                continue
            day = local.date() - timedelta(days=trigger["offset_days"])
            days = [day]
            if day.month == 2 and day.day == 28 and not _leap(day.year):
                days.append(date(2000, 2, 29))
            contacts = Contact.objects.for_workspace(workspace).filter(time_zone=name)
            condition = Q(pk__in=[])
            for target in days:
                condition |= _date_q(trigger["field"], target)
            enrolled = enrol_contacts(
                workflow=workflow,
                contacts=contacts.filter(condition),
                source="date",
                now=now,
                yearly=True,
            )
            total += len(enrolled)
    return total


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _date_q(field_name: str, day: date) -> Q:
    if field_name.startswith("custom."):
        key = field_name.removeprefix("custom.")
        return Q(**{f"custom__{key}__endswith": f"-{day.month:02d}-{day.day:02d}"})
    return Q(**{f"{field_name}__month": day.month, f"{field_name}__day": day.day})


# --- Goals of waiting enrolments ------------------------------------------------------------


def check_goals(workspace: Workspace, now: datetime | None = None) -> int:
    """Enrolments (waiting or not) whose contact reached the goal leave; returns how many."""
    now = now or timezone.now()
    total = 0
    versions = WorkflowVersion.objects.for_workspace(workspace).filter(
        pk__in=Enrolment.objects.for_workspace(workspace)
        .filter(status=EnrolmentStatus.ACTIVE)
        .values("version_id")
    )
    for version in versions:
        goal = version.graph["settings"].get("goal")
        if not goal:
            continue
        try:
            query = segments.compile_definition(workspace, goal)
        except segments.SegmentInvalid:
            continue
        met = Contact.objects.for_workspace(workspace).filter(query).values("pk")
        total += (
            Enrolment.objects.for_workspace(workspace)
            .filter(version=version, status=EnrolmentStatus.ACTIVE, contact_id__in=Subquery(met))
            .update(
                status=EnrolmentStatus.GOAL,
                finished_at=now,
                next_wake_at=None,
                lease_until=None,
                waiting_for="",
            )
        )
    return total


# --- The scheduler's round ---------------------------------------------------------------------


def advance(now: datetime | None = None, *, max_rounds: int = 50) -> RoundResult:
    """Run due steps in every workspace with active workflows (the periodic job)."""
    total = RoundResult()
    workspace_ids = (
        Workflow.objects.unscoped()
        .filter(status=WorkflowStatus.ACTIVE)
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    for workspace in Workspace.objects.filter(pk__in=list(workspace_ids)):
        total.goal += check_goals(workspace, now)
        for _round in range(max_rounds):
            result = run_due(workspace, now=now)
            total.claimed += result.claimed
            total.steps += result.steps
            total.failed += result.failed
            total.goal += result.goal
            if result.claimed < BATCH_SIZE:
                break
    return total


def count_by_step(workflow: Workflow) -> dict[str, dict[str, int]]:
    """Per step: completed and failed runs, and enrolments waiting there now."""
    stats: dict[str, dict[str, int]] = defaultdict(
        lambda: {"completed": 0, "failed": 0, "waiting": 0}
    )
    for step_id, status, number in (
        StepRun.objects.for_workspace(workflow.workspace_id)
        .filter(workflow_id=workflow.pk)
        .values_list("step_id", "status")
        .annotate(number=Count("id"))
        .order_by()
    ):
        stats[step_id][status] += number
    for step_id, number in (
        Enrolment.objects.for_workspace(workflow.workspace_id)
        .filter(workflow=workflow, status=EnrolmentStatus.ACTIVE)
        .values_list("step")
        .annotate(number=Count("id"))
        .order_by()
    ):
        stats[step_id]["waiting"] += number
    return dict(stats)
