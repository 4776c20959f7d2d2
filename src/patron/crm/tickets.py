"""Support tickets: opening, replying, status changes, and their SLA clocks.

The SLA policy of a ticket's priority sets two due times when it is opened
(or its priority changes): first response and resolution, both counted from
the ticket's creation, in the workspace's business hours or around the clock.
The first public reply by a member stops the first clock; solving (or closing
an unsolved ticket) stops the second, and the elapsed time of each is stored.

Reopening is kept simple: it clears ``solved_at``, ``closed_at`` and the
stored resolution time, and the resolution target stays the one counted from
creation. The resolution time is therefore always the customer's whole wait,
from opening to the last time the ticket was solved, and a ticket reopened
after its target is shown as breached. Pending does not pause the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.core.models import AuditAction, User, Workspace
from patron.core.services import record_audit
from patron.crm import custom_fields, sla
from patron.crm.assignment import assign_owner
from patron.crm.models import (
    BusinessHours,
    Company,
    Contact,
    CustomFieldObject,
    SlaPolicy,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketReply,
    TicketStatus,
)
from patron.crm.services import (
    CrossWorkspaceReference,
    InvalidField,
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


class TicketInvalid(InvalidField):
    """A ticket value is not acceptable; ``field`` names it (forms and API show it there)."""


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


def clocks(workspace: Workspace) -> tuple[dict[str, SlaPolicy], dict[str, sla.Clock]]:
    """The workspace's policy and clock per priority, read once (for changes to many tickets)."""
    found = policies(workspace)
    hours = schedule(workspace)
    zone = ZoneInfo(workspace.time_zone or "UTC")
    return found, {
        priority: sla.Clock(business_hours=policy.business_hours, schedule=hours, zone=zone)
        for priority, policy in found.items()
    }


def _warn_at(start: datetime, due: datetime) -> datetime:
    return due - (due - start) * AT_RISK_SHARE


def set_due_times(
    ticket: Ticket, policy: SlaPolicy | None = None, clock: sla.Clock | None = None
) -> None:
    """Both targets from the ticket's creation, by the policy of its current priority.

    ``policy`` and ``clock`` are that priority's, passed by callers that
    change many tickets at once.
    """
    policy = policy or policies(ticket.workspace_id)[ticket.priority]
    clock = clock or clock_for(ticket)
    start = ticket.created_at
    ticket.first_response_due_at = clock.due(start, policy.first_response_minutes)
    ticket.first_response_warn_at = _warn_at(start, ticket.first_response_due_at)
    ticket.resolution_due_at = clock.due(start, policy.resolution_minutes)
    ticket.resolution_warn_at = _warn_at(start, ticket.resolution_due_at)


def _check(
    workspace: Workspace, contact: Contact | None, company: Company | None, assignee: User | None
) -> None:
    if contact is not None and contact.workspace_id != workspace.pk:
        raise CrossWorkspaceReference(_("The contact is not part of this workspace."))
    if company is not None and company.workspace_id != workspace.pk:
        raise CrossWorkspaceReference(_("The company is not part of this workspace."))
    if (
        assignee is not None
        and not assignee.memberships.filter(workspace=workspace, is_active=True).exists()
    ):
        raise CrossWorkspaceReference(_("The assignee is not a member of this workspace."))


def check_choices(priority: str | None = None, channel: str | None = None) -> None:
    if priority is not None and priority not in TicketPriority.values:
        raise TicketInvalid("priority", _("Choose a priority."))
    if channel is not None and channel not in TicketChannel.values:
        raise TicketInvalid("channel", _("Choose a channel."))


def solved_properties(ticket: Ticket) -> dict[str, Any]:
    """The properties of a ``ticket.solved`` event."""
    return {
        "subject": ticket.subject,
        "resolution_seconds": ticket.resolution_seconds,
        "resolution_met": bool(
            ticket.resolution_due_at
            and ticket.solved_at
            and ticket.solved_at <= ticket.resolution_due_at
        ),
    }


def _record_solved(ticket: Ticket, actor: User | None) -> None:
    record(
        workspace=ticket.workspace_id,
        kind="ticket.solved",
        contact_id=ticket.contact_id,
        actor=actor,
        source=("crm.ticket", ticket.pk),
        properties=solved_properties(ticket),
    )


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
    check_choices(priority, channel)
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
    set_due_times(ticket)
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


def status_change_properties(ticket: Ticket, previous: str) -> dict[str, Any]:
    """The properties of a ``ticket.status_changed`` event."""
    return {
        "subject": ticket.subject,
        "from": previous,
        "to": ticket.status,
        # Timelines show the change in words; the values above are for automation.
        "changes": {
            "status": [
                str(TicketStatus(previous).label),
                str(TicketStatus(ticket.status).label),
            ]
        },
    }


def _record_status_change(ticket: Ticket, previous: str, actor: User | None) -> None:
    record(
        workspace=ticket.workspace_id,
        kind="ticket.status_changed",
        contact_id=ticket.contact_id,
        actor=actor,
        source=("crm.ticket", ticket.pk),
        properties=status_change_properties(ticket, previous),
    )


@transaction.atomic
def reply_to_ticket(
    *, ticket: Ticket, author: User, body: str, internal: bool = False
) -> TicketReply:
    """Add a reply or internal note; the first public reply stops the first-response clock.

    The author must be an active member of the ticket's workspace. A public
    reply to a new ticket also moves it to open.
    """
    if not body.strip():
        raise TicketInvalid("body", _("Write a message."))
    if not author.memberships.filter(workspace_id=ticket.workspace_id, is_active=True).exists():
        raise CrossWorkspaceReference(_("Only members of this workspace can answer its tickets."))
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
        previous = ticket.status
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
        if previous != ticket.status:
            _record_status_change(ticket, previous, author)
    return reply


def set_status(ticket: Ticket, status: str, now: datetime, clock: sla.Clock | None = None) -> bool:
    """Give ``ticket`` the status and its clock fields (unsaved); True if solved just now.

    ``clock`` is the ticket's (``clock_for``), passed by callers that change
    many tickets so that it is built once per priority.
    """
    if status not in TicketStatus.values:
        raise TicketInvalid("status", _("Choose a status."))
    ticket.status = status
    solved_now = False
    if status in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        if ticket.solved_at is None:
            ticket.solved_at = now
            clock = clock or clock_for(ticket)
            ticket.resolution_seconds = clock.elapsed(ticket.created_at, now)
            solved_now = True
        ticket.closed_at = now if status == TicketStatus.CLOSED else None
    else:
        # Reopened (or still open): the resolution clock runs again from creation.
        ticket.solved_at = None
        ticket.closed_at = None
        ticket.resolution_seconds = None
    return solved_now


def _change_status(ticket: Ticket, status: str, actor: User | None, now: datetime) -> None:
    previous = ticket.status
    solved_now = set_status(ticket, status, now)
    _record_status_change(ticket, previous, actor)
    if solved_now:
        _record_solved(ticket, actor)


@transaction.atomic
def update_ticket(
    *,
    ticket: Ticket,
    actor: User | None = None,
    status: str | None = None,
    priority: str | None = None,
    channel: str | None = None,
    subject: str | None = None,
    description: str | None = None,
    assignee: User | str | None = "",
    contact: Contact | str | None = "",
    company: Company | str | None = "",
    custom: dict[str, Any] | None = None,
) -> Ticket:
    """Change the given fields; ``None`` (or ``""`` for the relations) leaves one unchanged.

    For ``assignee``, ``contact`` and ``company``, ``None`` clears the field
    and ``""`` keeps it; a company cleared while the ticket has a contact
    becomes the contact's company, as when the ticket was opened. ``custom``
    changes only the keys it names. A new priority sets new due times (counted
    from creation, by that priority's policy); a status change records
    ``ticket.status_changed``, and solving records ``ticket.solved`` with the
    resolution time.
    """
    now = timezone.now()
    workspace = ticket.workspace
    new_assignee = ticket.assignee if assignee == "" else assignee
    new_contact = ticket.contact if contact == "" else contact
    new_company = ticket.company if company == "" else company
    if company is None and isinstance(new_contact, Contact):
        new_company = new_contact.company  # as when opening: the contact's company by default
    assert not isinstance(new_assignee, str)
    assert not isinstance(new_contact, str)
    assert not isinstance(new_company, str)
    _check(
        workspace,
        new_contact if contact != "" else None,
        new_company if company != "" else None,
        new_assignee if assignee != "" else None,
    )
    check_choices(priority, channel)
    ticket.assignee = new_assignee
    ticket.contact = new_contact
    ticket.company = new_company
    if subject is not None:
        if not subject.strip():
            raise TicketInvalid("subject", _("Give the ticket a subject."))
        ticket.subject = subject.strip()
    if description is not None:
        ticket.description = sanitise_note(description) if description.strip() else ""
    if channel is not None:
        ticket.channel = channel
    if custom is not None:
        ticket.custom = custom_fields.clean_values(
            field_definitions(workspace, CustomFieldObject.TICKET),
            custom,
            current=ticket.custom,
            partial=True,
        )
    if priority is not None and priority != ticket.priority:
        ticket.priority = priority
        set_due_times(ticket)
    if status is not None and status != ticket.status:
        _change_status(ticket, status, actor, now)
    ticket.updated_at = now
    ticket.save()
    return ticket


@transaction.atomic
def delete_ticket(*, ticket: Ticket) -> None:
    """Delete a ticket with its conversation; its tasks go with it, its events stay."""
    ticket.delete()


@dataclass(frozen=True)
class Target:
    """One priority's targets, as the settings page and ``save_service_levels`` take them."""

    first_response_minutes: int
    resolution_minutes: int
    business_hours: bool


@transaction.atomic
def save_service_levels(
    *,
    workspace: Workspace,
    targets: dict[str, Target],
    schedule: dict[int, tuple[time, time]],
    actor: User | None = None,
) -> None:
    """Store the SLA policy of each priority named and the workspace's business hours.

    Tickets already open keep their due times; the new targets apply to tickets
    opened (or given a new priority) from now on.
    """
    for priority, target in targets.items():
        check_choices(priority=priority)
        if target.first_response_minutes < 1 or target.resolution_minutes < 1:
            raise TicketInvalid(f"{priority}_first", _("Targets are at least one minute."))
    for day, (opens, closes) in schedule.items():
        if day not in range(7):
            raise TicketInvalid("schedule", _("Weekdays are numbered 0 (Monday) to 6."))
        if closes <= opens:
            raise TicketInvalid(f"day_{day}_closes", _("Closing comes after opening."))
    if not schedule:
        raise TicketInvalid("schedule", _("Open at least one day a week."))
    # Due times are searched for up to ten years ahead; a year is plenty.
    limit = sla.weekly_open_minutes(schedule) * 52
    for priority, target in targets.items():
        longest = max(target.first_response_minutes, target.resolution_minutes)
        if target.business_hours and longest > limit:
            raise TicketInvalid(
                f"{priority}_resolution",
                _(
                    "With these business hours a target can be at most %(minutes)d minutes "
                    "(a year of open time)."
                )
                % {"minutes": limit},
            )
    current = policies(workspace)
    for priority, target in targets.items():
        policy = current[priority]
        policy.first_response_minutes = target.first_response_minutes
        policy.resolution_minutes = target.resolution_minutes
        policy.business_hours = target.business_hours
        policy.save()
    BusinessHours.objects.for_workspace(workspace).update_or_create(
        workspace=workspace,
        defaults={
            "schedule": {
                str(day): [opens.strftime("%H:%M"), closes.strftime("%H:%M")]
                for day, (opens, closes) in sorted(schedule.items())
            }
        },
    )
    record_audit(
        action=AuditAction.SETTINGS_CHANGED,
        workspace=workspace,
        actor=actor,
        target="service_levels",
        data={
            "targets": {
                priority: [t.first_response_minutes, t.resolution_minutes, t.business_hours]
                for priority, t in targets.items()
            }
        },
    )


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
