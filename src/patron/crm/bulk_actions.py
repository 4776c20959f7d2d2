"""Changes to many deals, tasks or tickets at once: the lists' bulk actions.

Set-based, as the contact and company bulk changes in ``services``: an action
is one UPDATE (or DELETE) of the selected rows, never a loop of saves, and
the events it records are written together. Where each row needs its own new
values (a ticket's SLA clock), they are computed first and written by
``patron.core.bulk.update_rows``, one statement on PostgreSQL.

The selection is a list of ids or a subquery of them (a list's "every record
that matches"); it is narrowed to the workspace here again, so the ids of
another workspace's rows select nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import NewEvent, record_many
from patron.core import bulk
from patron.core.models import User, Workspace
from patron.crm import tickets as ticket_service
from patron.crm.models import (
    Deal,
    Stage,
    StageOutcome,
    Task,
    TaskPriority,
    Ticket,
    TicketStatus,
)
from patron.crm.services import (
    BulkAction,
    CrossWorkspaceReference,
    InvalidField,
    _check_references,
    _top_position,
    delete_audited,
)

Selection = Iterable[int] | QuerySet[Any, Any]


class TaskAction(BulkAction):
    COMPLETE = "complete"
    REOPEN = "reopen"
    PRIORITY = "priority"


class TicketAction(BulkAction):
    STATUS = "status"
    PRIORITY = "priority"


def _event(
    workspace: Workspace,
    kind: str,
    source: tuple[str, int],
    contact_id: int | None,
    actor: User | None,
    properties: dict[str, Any],
) -> NewEvent:
    return NewEvent(
        workspace_id=workspace.pk,
        kind=kind,
        contact_id=contact_id,
        properties=properties,
        source_type=source[0],
        source_id=str(source[1]),
        actor_id=actor.pk if actor else None,
    )


# --- Deals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    changed: int
    skipped: int  # selected deals of another pipeline, left where they are


@transaction.atomic
def move_deals(
    *, workspace: Workspace, deal_ids: Selection, stage: Stage, actor: User | None = None
) -> Moved:
    """Move the selected deals of the stage's pipeline to ``stage``, as ``move_deal`` does.

    Deals of other pipelines are skipped (a stage belongs to one pipeline),
    deals already there are left alone; each deal moved records
    ``deal.stage_changed`` for each of its contacts. The moved deals go to the
    top of the stage's column on the board.
    """
    if stage.workspace_id != workspace.pk:
        raise CrossWorkspaceReference(_("The stage is not part of this workspace."))
    selected = Deal.objects.for_workspace(workspace).filter(pk__in=deal_ids)
    skipped = selected.exclude(pipeline_id=stage.pipeline_id).count()
    moving = selected.filter(pipeline_id=stage.pipeline_id).exclude(stage=stage)
    deals = list(moving.values_list("pk", "name", "amount", "currency", "stage__name"))
    if not deals:
        return Moved(0, skipped)
    contacts: dict[int, list[int | None]] = {}
    links = Deal.contacts.through.objects.filter(deal__in=moving)
    for deal_id, contact_id in links.values_list("deal_id", "contact_id"):
        contacts.setdefault(deal_id, []).append(contact_id)
    now = timezone.now()
    changes: dict[str, Any] = {
        "stage": stage,
        "position": _top_position(stage),
        "stage_changed_at": now,
        "updated_at": now,
        "closed_at": now if stage.outcome != StageOutcome.OPEN else None,
    }
    if stage.outcome != StageOutcome.LOST:
        changes["lost_reason"] = ""
    moving.update(**changes)
    pipeline = stage.pipeline.name
    record_many(
        _event(
            workspace,
            "deal.stage_changed",
            ("crm.deal", pk),
            contact_id,
            actor,
            {
                "deal": name,
                "amount": str(amount),
                "currency": currency,
                "from_stage": previous,
                "to_stage": stage.name,
                "outcome": stage.outcome,
                "pipeline": pipeline,
                "bulk": True,
            },
        )
        for pk, name, amount, currency, previous in deals
        for contact_id in contacts.get(pk) or [None]
    )
    return Moved(len(deals), skipped)


# --- Tasks -----------------------------------------------------------------------------


@transaction.atomic
def update_tasks(
    *,
    workspace: Workspace,
    task_ids: Selection,
    action: str,
    value: Any = None,
    actor: User | None = None,
) -> int:
    """Assign, complete, reopen, reprioritise or delete the selected tasks; how many changed.

    Completing records ``task.completed`` for each task not done before, as
    completing one task does; tasks already done (or already open, for
    reopening) are not counted.
    """
    tasks = Task.objects.for_workspace(workspace).filter(pk__in=task_ids)
    if action == TaskAction.ASSIGN:
        _check_references(workspace, {"owner": value})
        return tasks.update(assignee=value)
    if action == TaskAction.PRIORITY:
        if value not in TaskPriority.values:
            raise InvalidField("priority", _("Choose a priority."))
        return tasks.update(priority=value)
    if action == TaskAction.REOPEN:
        return tasks.filter(completed_at__isnull=False).update(completed_at=None)
    if action == TaskAction.DELETE:
        return delete_audited(workspace=workspace, actor=actor, rows=tasks, object_type="task")
    if action != TaskAction.COMPLETE:
        raise ValueError(f"Unknown bulk action {action!r}")
    pending = tasks.filter(completed_at__isnull=True)
    done = list(pending.values_list("pk", "contact_id", "title"))
    pending.update(completed_at=timezone.now())
    record_many(
        _event(workspace, "task.completed", ("crm.task", pk), contact_id, actor, {"title": title})
        for pk, contact_id, title in done
    )
    return len(done)


# --- Tickets ---------------------------------------------------------------------------

# What a status or priority change reads of each ticket.
_TICKET_FIELDS = (
    "pk",
    "workspace_id",
    "subject",
    "contact_id",
    "status",
    "priority",
    "created_at",
    "solved_at",
    "closed_at",
    "resolution_seconds",
    "resolution_due_at",
)
_DUE_FIELDS = [
    "priority",
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_due_at",
    "resolution_warn_at",
    "updated_at",
]
_STATUS_FIELDS = ["status", "solved_at", "closed_at", "resolution_seconds", "updated_at"]


@transaction.atomic
def update_tickets(
    *,
    workspace: Workspace,
    ticket_ids: Selection,
    action: str,
    value: Any = None,
    actor: User | None = None,
) -> int:
    """Assign, set the status or priority of, or delete the selected tickets; how many changed.

    As ``tickets.update_ticket`` does for one ticket: a new priority sets new
    due times (counted from creation by that priority's policy); a new status
    sets or clears the solved and closed times and the resolution time, and
    records ``ticket.status_changed`` (and ``ticket.solved`` when solved now).
    Tickets that already have the status or priority are not counted.
    """
    tickets = Ticket.objects.for_workspace(workspace).filter(pk__in=ticket_ids)
    now = timezone.now()
    if action == TicketAction.ASSIGN:
        if (
            value is not None
            and not value.memberships.filter(workspace=workspace, is_active=True).exists()
        ):
            raise CrossWorkspaceReference(_("The assignee is not a member of this workspace."))
        return tickets.update(assignee=value, updated_at=now)
    if action == TicketAction.DELETE:
        return delete_audited(workspace=workspace, actor=actor, rows=tickets, object_type="ticket")
    if action == TicketAction.PRIORITY:
        ticket_service.check_choices(priority=value)
        changing = list(tickets.exclude(priority=value).only(*_TICKET_FIELDS))
        policies, clocks = ticket_service.clocks(workspace)
        rows = []
        for ticket in changing:
            ticket.priority = value
            ticket_service.set_due_times(ticket, policies[value], clocks[value])
            rows.append([ticket.pk, *[getattr(ticket, name) for name in _DUE_FIELDS[:-1]], now])
        return bulk.update_rows(Ticket, _DUE_FIELDS, rows)
    if action != TicketAction.STATUS:
        raise ValueError(f"Unknown bulk action {action!r}")
    if value not in TicketStatus.values:
        raise ticket_service.TicketInvalid("status", _("Choose a status."))
    changing = list(tickets.exclude(status=value).only(*_TICKET_FIELDS))
    _policies, clocks = ticket_service.clocks(workspace)
    rows, events = [], []
    for ticket in changing:
        previous = ticket.status
        solved_now = ticket_service.set_status(ticket, value, now, clocks[ticket.priority])
        rows.append([ticket.pk, *[getattr(ticket, name) for name in _STATUS_FIELDS[:-1]], now])
        source = ("crm.ticket", ticket.pk)
        properties = ticket_service.status_change_properties(ticket, previous)
        events.append(
            _event(workspace, "ticket.status_changed", source, ticket.contact_id, actor, properties)
        )
        if solved_now:
            properties = ticket_service.solved_properties(ticket)
            events.append(
                _event(workspace, "ticket.solved", source, ticket.contact_id, actor, properties)
            )
    bulk.update_rows(Ticket, _STATUS_FIELDS, rows)
    record_many(events)
    return len(rows)
