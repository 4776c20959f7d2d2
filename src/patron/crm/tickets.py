"""Support tickets: opening, replying, status changes, and their SLA clocks.

The SLA policy of a ticket's priority sets two due times when it is opened
(or its priority changes): first response and resolution, counted in the
workspace's business hours or around the clock. The first public reply by a
member stops the first clock; solving stops the second, and the elapsed time
of each is stored. Reopening a solved ticket starts the resolution clock
again from the reopening (the time already spent is not counted twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.core.models import User, Workspace
from patron.crm import custom_fields, sla
from patron.crm.assignment import assign_owner
from patron.crm.models import (
    BusinessHours,
    Company,
    Contact,
    CustomFieldObject,
    SlaPolicy,
    Ticket,
    TicketPriority,
    TicketReply,
    TicketStatus,
)
from patron.crm.services import (
    CrossWorkspaceReference,
    _check_references,
    field_definitions,
    sanitise_note,
)

# (first response, resolution) in minutes, business hours unless noted.
DEFAULT_POLICIES = {
    TicketPriority.URGENT: (60, 8 * 60, False),
    TicketPriority.HIGH: (4 * 60, 2 * 8 * 60, True),
    TicketPriority.NORMAL: (8 * 60, 5 * 8 * 60, True),
    TicketPriority.LOW: (2 * 8 * 60, 10 * 8 * 60, True),
}
AT_RISK_SHARE = 0.25


class TicketInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def policies(workspace: Workspace | int) -> dict[str, SlaPolicy]:
    """The workspace's policy per priority; the defaults are created on first use."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    found = {p.priority: p for p in SlaPolicy.objects.for_workspace(workspace_id)}
    missing = [priority for priority in DEFAULT_POLICIES if priority not in found]
    if missing:
        try:
            with transaction.atomic():
                SlaPolicy.objects.bulk_create(
                    SlaPolicy(
                        workspace_id=workspace_id,
                        priority=priority,
                        first_response_minutes=DEFAULT_POLICIES[priority][0],
                        resolution_minutes=DEFAULT_POLICIES[priority][1],
                        business_hours=DEFAULT_POLICIES[priority][2],
                    )
                    for priority in missing
                )
        except IntegrityError:
            pass  # created meanwhile by another request
        found = {p.priority: p for p in SlaPolicy.objects.for_workspace(workspace_id)}
    return found


def schedule(workspace: Workspace | int) -> dict[int, tuple[Any, Any]]:
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    hours = BusinessHours.objects.for_workspace(workspace_id).first()
    return sla.parse_schedule(hours.schedule if hours else None)


def clock_for(ticket: Ticket) -> sla.Clock:
    policy = policies(ticket.workspace_id)[ticket.priority]
    return sla.Clock(
        business_hours=policy.business_hours,
        schedule=schedule(ticket.workspace_id),
        zone=ZoneInfo(ticket.workspace.time_zone or "UTC"),
    )


def _warn_at(start: datetime, due: datetime) -> datetime:
    return due - (due - start) * AT_RISK_SHARE


def _set_due_times(ticket: Ticket, start: datetime | None = None) -> None:
    policy = policies(ticket.workspace_id)[ticket.priority]
    clock = clock_for(ticket)
    start = start or ticket.created_at
    ticket.first_response_due_at = clock.due(ticket.created_at, policy.first_response_minutes)
    ticket.first_response_warn_at = _warn_at(ticket.created_at, ticket.first_response_due_at)
    ticket.resolution_due_at = clock.due(start, policy.resolution_minutes)
    ticket.resolution_warn_at = _warn_at(start, ticket.resolution_due_at)


def _check(
    workspace: Workspace, contact: Contact | None, company: Company | None, assignee: User | None
) -> None:
    for row in (contact, company):
        if row is not None and row.workspace_id != workspace.pk:
            raise CrossWorkspaceReference(_("The record is not part of this workspace."))
    _check_references(workspace, {"owner": assignee})


@transaction.atomic
def open_ticket(
    *,
    workspace: Workspace,
    subject: str,
    description: str = "",
    contact: Contact | None = None,
    company: Company | None = None,
    priority: str = TicketPriority.NORMAL,
    channel: str = "manual",
    assignee: User | None = None,
    custom: dict[str, Any] | None = None,
    actor: User | None = None,
) -> Ticket:
    """Open a ticket; without an assignee, the workspace's assignment rules pick one."""
    if not subject.strip():
        raise TicketInvalid("subject", _("Give the ticket a subject."))
    _check(workspace, contact, company, assignee)
    custom_values = custom_fields.clean_values(
        field_definitions(workspace, CustomFieldObject.TICKET), custom or {}
    )
    if assignee is None:
        assignee = assign_owner(
            workspace=workspace,
            object_type=CustomFieldObject.TICKET,
            values={"priority": priority, "channel": channel, "custom": custom_values},
        )
    now = timezone.now()
    ticket = Ticket(
        workspace=workspace,
        created_at=now,
        updated_at=now,
        subject=subject.strip(),
        description=sanitise_note(description) if description.strip() else "",
        contact=contact,
        company=company or (contact.company if contact else None),
        priority=priority,
        channel=channel,
        assignee=assignee,
        custom=custom_values,
        created_by=actor,
    )
    _set_due_times(ticket)
    ticket.save()
    record(
        workspace=workspace,
        kind="ticket.opened",
        contact_id=contact.pk if contact else None,
        actor=actor,
        source=("crm.ticket", ticket.pk),
        properties={"subject": ticket.subject, "priority": ticket.priority},
    )
    return ticket


@transaction.atomic
def reply_to_ticket(
    *, ticket: Ticket, author: User, body: str, internal: bool = False
) -> TicketReply:
    """Add a reply or internal note; the first public reply stops the first-response clock."""
    if not body.strip():
        raise TicketInvalid("body", _("Write a message."))
    now = timezone.now()
    reply = TicketReply.objects.create(
        workspace_id=ticket.workspace_id,
        ticket=ticket,
        author=author,
        body=sanitise_note(body),
        is_internal=internal,
        created_at=now,
    )
    if not internal:
        if ticket.first_responded_at is None:
            ticket.first_responded_at = now
            ticket.first_response_seconds = clock_for(ticket).elapsed(ticket.created_at, now)
        if ticket.status == TicketStatus.NEW:
            ticket.status = TicketStatus.OPEN
        ticket.updated_at = now
        ticket.save()
        record(
            workspace=ticket.workspace_id,
            kind="ticket.replied",
            contact_id=ticket.contact_id,
            actor=author,
            source=("crm.ticket", ticket.pk),
            properties={"subject": ticket.subject},
        )
    return reply


@transaction.atomic
def update_ticket(
    *,
    ticket: Ticket,
    actor: User | None = None,
    status: str | None = None,
    priority: str | None = None,
    assignee: User | str | None = "",
    subject: str | None = None,
) -> Ticket:
    """Change status, priority, assignee or subject; "" for assignee means unchanged."""
    now = timezone.now()
    if assignee != "":
        _check(ticket.workspace, None, None, assignee if isinstance(assignee, User) else None)
        ticket.assignee = assignee if isinstance(assignee, User) else None
    if subject is not None:
        if not subject.strip():
            raise TicketInvalid("subject", _("Give the ticket a subject."))
        ticket.subject = subject.strip()
    if priority is not None and priority != ticket.priority:
        if priority not in TicketPriority.values:
            raise TicketInvalid("priority", _("Choose a priority."))
        ticket.priority = priority
        _set_due_times(ticket, start=ticket.created_at)
    if status is not None and status != ticket.status:
        if status not in TicketStatus.values:
            raise TicketInvalid("status", _("Choose a status."))
        previous = ticket.status
        ticket.status = status
        if status == TicketStatus.SOLVED and ticket.solved_at is None:
            ticket.solved_at = now
            ticket.resolution_seconds = clock_for(ticket).elapsed(ticket.created_at, now)
        elif status == TicketStatus.CLOSED:
            ticket.closed_at = now
            if ticket.solved_at is None:
                ticket.solved_at = now
                ticket.resolution_seconds = clock_for(ticket).elapsed(ticket.created_at, now)
        elif ticket.solved_at is not None:
            # Reopened (new, open or pending again): a new resolution target from now.
            ticket.solved_at = None
            ticket.closed_at = None
            ticket.resolution_seconds = None
            policy = policies(ticket.workspace_id)[ticket.priority]
            ticket.resolution_due_at = clock_for(ticket).due(now, policy.resolution_minutes)
            ticket.resolution_warn_at = _warn_at(now, ticket.resolution_due_at)
        record(
            workspace=ticket.workspace_id,
            kind="ticket.status_changed",
            contact_id=ticket.contact_id,
            actor=actor,
            source=("crm.ticket", ticket.pk),
            properties={"subject": ticket.subject, "from": previous, "to": status},
        )
    ticket.updated_at = now
    ticket.save()
    return ticket


# --- SLA state, for lists and pages ------------------------------------------------------


@dataclass(frozen=True)
class SlaTarget:
    label: str
    due_at: datetime | None
    met_at: datetime | None
    seconds: int | None  # measured time, once met
    state: str  # "met", "met_late", "breached", "at_risk", "on_track"
    remaining: int  # seconds until due (negative when overdue)


def _state(
    due: datetime | None, warn: datetime | None, met: datetime | None, now: datetime
) -> tuple[str, int]:
    if due is None:
        return "on_track", 0
    if met is not None:
        return ("met" if met <= due else "met_late"), int((due - met).total_seconds())
    remaining = int((due - now).total_seconds())
    if remaining < 0:
        return "breached", remaining
    if warn is not None and now >= warn:
        return "at_risk", remaining
    return "on_track", remaining


def sla_targets(ticket: Ticket, now: datetime | None = None) -> list[SlaTarget]:
    now = now or timezone.now()
    targets = []
    for label, due, warn, met, seconds in (
        (
            _("First response"),
            ticket.first_response_due_at,
            ticket.first_response_warn_at,
            ticket.first_responded_at,
            ticket.first_response_seconds,
        ),
        (
            _("Resolution"),
            ticket.resolution_due_at,
            ticket.resolution_warn_at,
            ticket.solved_at,
            ticket.resolution_seconds,
        ),
    ):
        state, remaining = _state(due, warn, met, now)
        targets.append(SlaTarget(label, due, met, seconds, state, remaining))
    return targets


def sla_state(ticket: Ticket, now: datetime | None = None) -> str:
    """The worst state of the ticket's open targets: breached, at_risk or on_track."""
    states = {t.state for t in sla_targets(ticket, now)}
    for state in ("breached", "at_risk"):
        if state in states and not ticket.is_done:
            return state
    return "on_track"


def filter_by_sla(tickets: Any, state: str, now: datetime | None = None) -> Any:
    """Open tickets in one SLA state, in SQL: "breached", "at_risk" or "on_track"."""
    from django.db.models import Q

    now = now or timezone.now()
    open_ = ~Q(status__in=[TicketStatus.SOLVED, TicketStatus.CLOSED])
    response_open = Q(first_responded_at__isnull=True)
    breached = (response_open & Q(first_response_due_at__lt=now)) | Q(resolution_due_at__lt=now)
    warned = (response_open & Q(first_response_warn_at__lte=now)) | Q(resolution_warn_at__lte=now)
    if state == "breached":
        return tickets.filter(open_ & breached)
    if state == "at_risk":
        return tickets.filter(open_ & warned & ~breached)
    return tickets.filter(open_ & ~warned & ~breached)
