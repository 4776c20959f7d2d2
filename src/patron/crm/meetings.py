"""Calls and meetings: logging them, recording outcomes, and the calendar that shows them.

Both land on the contacts' timelines (and so on their companies') through the
activity log:

- ``call.logged`` when a call is logged;
- ``meeting.scheduled`` for each attendee when a meeting is planned, and for
  each attendee added to it later;
- ``meeting.outcome_recorded`` for each attendee when its outcome is recorded.

Their properties carry the ``outcome`` (its code, and ``outcome_label`` for the
timeline), the meeting's ``title`` and ``who``: the member whose call or
meeting it is (the person who logged the call, the meeting's organizer).
Editing or deleting a call or meeting leaves the log as it was: it is the
history of what was said at the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.core.models import User, Workspace
from patron.crm.models import (
    Call,
    CallDirection,
    CallOutcome,
    Company,
    Contact,
    Deal,
    Meeting,
    MeetingOutcome,
    Task,
)
from patron.crm.services import CrossWorkspaceReference, InvalidField, sanitise_note

MAX_CALL_MINUTES = 24 * 60
MAX_MEETING_LENGTH = timedelta(days=7)
# Clocks differ a little: a call logged "now" from a fast clock is not in the future.
CALL_CLOCK_SLACK = timedelta(minutes=15)

CALL_FIELDS = {
    "outcome",
    "direction",
    "occurred_at",
    "duration_minutes",
    "notes",
    "company",
    "deal",
}
MEETING_FIELDS = {
    "title",
    "starts_at",
    "ends_at",
    "location",
    "description",
    "organizer",
    "company",
    "deal",
}


class CallInvalid(InvalidField):
    """A call's value is not acceptable; ``field`` names it."""


class MeetingInvalid(InvalidField):
    """A meeting's value is not acceptable; ``field`` names it."""


def _check_in_workspace(workspace: Workspace, *rows: Contact | Company | Deal | None) -> None:
    for row in rows:
        if row is not None and row.workspace_id != workspace.pk:
            raise CrossWorkspaceReference(_("The record is not part of this workspace."))


def _check_member(workspace: Workspace, user: User | None) -> None:
    if user is None:
        return
    if not user.memberships.filter(workspace=workspace, is_active=True).exists():
        raise CrossWorkspaceReference(_("The organizer is not a member of this workspace."))


def _who(user: User | None) -> str:
    return user.display_name if user is not None else ""


# --- Calls --------------------------------------------------------------------------


def _check_call(
    *, outcome: str, direction: str, occurred_at: datetime, duration_minutes: int
) -> None:
    if outcome not in CallOutcome.values:
        raise CallInvalid("outcome", _("Choose how the call went."))
    if direction not in CallDirection.values:
        raise CallInvalid("direction", _("Choose inbound or outbound."))
    if not 0 <= duration_minutes <= MAX_CALL_MINUTES:
        raise CallInvalid("duration_minutes", _("A call lasts between 0 and 1440 minutes."))
    if occurred_at > timezone.now() + CALL_CLOCK_SLACK:
        raise CallInvalid(
            "occurred_at",
            _("A call is logged after it happened; plan a future call as a task."),
        )


@transaction.atomic
def log_call(
    *,
    workspace: Workspace,
    contact: Contact,
    outcome: str,
    direction: str = CallDirection.OUTBOUND,
    occurred_at: datetime | None = None,
    duration_minutes: int = 0,
    notes: str = "",
    company: Company | None = None,
    deal: Deal | None = None,
    logged_by: User | None = None,
) -> Call:
    """Log a call with ``contact`` that happened at ``occurred_at`` (default: now).

    The company defaults to the contact's; notes are sanitised like notes.
    """
    # API enums and form strings alike are stored as their plain value.
    outcome, direction = str(outcome), str(direction)
    occurred_at = occurred_at or timezone.now()
    _check_call(
        outcome=outcome,
        direction=direction,
        occurred_at=occurred_at,
        duration_minutes=duration_minutes,
    )
    _check_in_workspace(workspace, contact, company, deal)
    call = Call.objects.create(
        workspace=workspace,
        contact=contact,
        company=company or contact.company,
        deal=deal,
        direction=direction,
        outcome=outcome,
        occurred_at=occurred_at,
        duration_minutes=duration_minutes,
        notes=sanitise_note(notes) if notes.strip() else "",
        logged_by=logged_by,
    )
    record(
        workspace=workspace,
        kind="call.logged",
        contact_id=contact.pk,
        actor=logged_by,
        source=("crm.call", call.pk),
        occurred_at=call.occurred_at,
        properties={
            "outcome": call.outcome,
            "outcome_label": str(call.get_outcome_display()),
            "direction": call.direction,
            "minutes": call.duration_minutes,
            "who": _who(logged_by),
        },
    )
    return call


@transaction.atomic
def update_call(*, call: Call, actor: User | None = None, **values: Any) -> Call:
    """Correct a logged call (outcome, direction, time, duration, notes, company, deal)."""
    unknown = set(values) - CALL_FIELDS
    if unknown:
        raise TypeError(f"Unknown call fields: {', '.join(sorted(unknown))}")
    workspace = call.workspace
    for name in ("outcome", "direction"):
        if values.get(name) is not None:
            values[name] = str(values[name])
    if "notes" in values:
        notes = values["notes"] or ""
        values["notes"] = sanitise_note(notes) if notes.strip() else ""
    if values.get("occurred_at") is None:
        values.pop("occurred_at", None)
    merged = {name: values.get(name, getattr(call, name)) for name in CALL_FIELDS}
    _check_call(
        outcome=merged["outcome"],
        direction=merged["direction"],
        occurred_at=merged["occurred_at"],
        duration_minutes=merged["duration_minutes"],
    )
    _check_in_workspace(workspace, merged["company"], merged["deal"])
    for name, value in values.items():
        setattr(call, name, value)
    call.save()
    return call


@transaction.atomic
def delete_call(*, call: Call, actor: User | None = None) -> None:
    call.delete()


def calls_for(
    workspace: Workspace,
    *,
    contact: Contact | None = None,
    company: Company | None = None,
    deal: Deal | None = None,
) -> QuerySet[Call]:
    """Logged calls, newest first, optionally of one contact, company or deal."""
    calls = Call.objects.for_workspace(workspace).select_related("contact", "logged_by")
    if contact is not None:
        calls = calls.filter(contact=contact)
    if company is not None:
        calls = calls.filter(company=company)
    if deal is not None:
        calls = calls.filter(deal=deal)
    return calls.order_by("-occurred_at", "-id")


# --- Meetings -----------------------------------------------------------------------


def _check_meeting(*, title: str, starts_at: datetime, ends_at: datetime) -> None:
    if not title.strip():
        raise MeetingInvalid("title", _("Give the meeting a title."))
    # Compared in UTC: Python compares two times of one zone by their wall clocks,
    # which puts the second 01:30 of a night that turns the clocks back before 01:50.
    starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    if ends_at <= starts_at:
        raise MeetingInvalid("ends_at", _("A meeting ends after it starts."))
    if ends_at - starts_at > MAX_MEETING_LENGTH:
        raise MeetingInvalid("ends_at", _("A meeting lasts at most a week."))


def _record_scheduled(meeting: Meeting, contacts: list[Contact], actor: User | None) -> None:
    for contact in contacts:
        record(
            workspace=meeting.workspace_id,
            kind="meeting.scheduled",
            contact_id=contact.pk,
            actor=actor,
            source=("crm.meeting", meeting.pk),
            properties={
                "title": meeting.title,
                "starts_at": meeting.starts_at.isoformat(),
                "who": _who(meeting.organizer),
            },
        )


@transaction.atomic
def schedule_meeting(
    *,
    workspace: Workspace,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    contacts: list[Contact],
    organizer: User | None = None,
    location: str = "",
    description: str = "",
    company: Company | None = None,
    deal: Deal | None = None,
    actor: User | None = None,
) -> Meeting:
    """Plan a meeting with ``contacts``; the company defaults to the first one's."""
    _check_meeting(title=title, starts_at=starts_at, ends_at=ends_at)
    _check_in_workspace(workspace, company, deal, *contacts)
    _check_member(workspace, organizer)
    if company is None:
        company = next((c.company for c in contacts if c.company_id), None)
    meeting = Meeting.objects.create(
        workspace=workspace,
        title=title.strip(),
        starts_at=starts_at,
        ends_at=ends_at,
        organizer=organizer,
        location=location.strip(),
        description=description.strip(),
        company=company,
        deal=deal,
    )
    meeting.contacts.set(contacts)
    _record_scheduled(meeting, list(dict.fromkeys(contacts)), actor)
    return meeting


@transaction.atomic
def update_meeting(
    *,
    meeting: Meeting,
    actor: User | None = None,
    contacts: list[Contact] | None = None,
    **values: Any,
) -> Meeting:
    """Change the given fields; ``contacts``, when given, replaces the attendees.

    Attendees who are new to the meeting get ``meeting.scheduled`` on their timeline.
    """
    unknown = set(values) - MEETING_FIELDS
    if unknown:
        raise TypeError(f"Unknown meeting fields: {', '.join(sorted(unknown))}")
    workspace = meeting.workspace
    merged = {name: values.get(name, getattr(meeting, name)) for name in MEETING_FIELDS}
    _check_meeting(
        title=merged["title"] or "", starts_at=merged["starts_at"], ends_at=merged["ends_at"]
    )
    _check_in_workspace(workspace, merged["company"], merged["deal"], *(contacts or []))
    _check_member(workspace, values.get("organizer"))
    for name, value in values.items():
        setattr(meeting, name, value.strip() if isinstance(value, str) else value)
    meeting.save()
    if contacts is not None:
        before = set(meeting.contacts.values_list("pk", flat=True))
        meeting.contacts.set(contacts)
        added = [c for c in dict.fromkeys(contacts) if c.pk not in before]
        _record_scheduled(meeting, added, actor)
    return meeting


@transaction.atomic
def record_meeting_outcome(
    *, meeting: Meeting, outcome: str, notes: str = "", actor: User | None = None
) -> Meeting:
    """Record how the meeting went; ``notes`` are added to its description."""
    if outcome not in MeetingOutcome.values:
        raise MeetingInvalid("outcome", _("Choose an outcome."))
    meeting.outcome = outcome
    if notes.strip():
        meeting.description = (meeting.description + "\n\n" + notes.strip()).strip()
    meeting.save(update_fields=["outcome", "description"])
    properties = {
        "title": meeting.title,
        "outcome": meeting.outcome,
        "outcome_label": str(meeting.get_outcome_display()),
        "who": _who(meeting.organizer),
    }
    for contact_id in meeting.contacts.values_list("pk", flat=True):
        record(
            workspace=meeting.workspace_id,
            kind="meeting.outcome_recorded",
            contact_id=contact_id,
            actor=actor,
            source=("crm.meeting", meeting.pk),
            properties=properties,
        )
    return meeting


@transaction.atomic
def delete_meeting(*, meeting: Meeting, actor: User | None = None) -> None:
    meeting.delete()


def meetings_for(
    workspace: Workspace,
    *,
    contact: Contact | None = None,
    company: Company | None = None,
    deal: Deal | None = None,
) -> QuerySet[Meeting]:
    """Meetings in time order, optionally of one contact (attending), company or deal."""
    found = Meeting.objects.for_workspace(workspace).select_related("organizer")
    if contact is not None:
        found = found.filter(contacts=contact)
    if company is not None:
        found = found.filter(company=company)
    if deal is not None:
        found = found.filter(deal=deal)
    return found.order_by("starts_at", "id")


# --- The calendar ---------------------------------------------------------------------


@dataclass
class CalendarDay:
    day: date
    in_range: bool
    is_today: bool
    meetings: list[Meeting] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.meetings and not self.tasks


def calendar_days(
    workspace: Workspace,
    *,
    first: date,
    last: date,
    zone: ZoneInfo,
    user: User | None,
    in_range: tuple[date, date] | None = None,
    today: date | None = None,
) -> list[CalendarDay]:
    """Each day from ``first`` to ``last`` with its meetings and due tasks, in ``zone``.

    A day runs from local midnight to the next local midnight, so days around a
    daylight-saving change last 23 or 25 hours. A meeting shows on the day it
    starts (or on ``first`` when it started before). ``user`` narrows to the
    meetings they organise and the tasks assigned to them; None shows
    everyone's. Two queries, whatever the span.
    """
    start = datetime.combine(first, time.min, zone)
    end = datetime.combine(last + timedelta(days=1), time.min, zone)
    meetings = Meeting.objects.for_workspace(workspace).filter(starts_at__lt=end, ends_at__gt=start)
    tasks = Task.objects.for_workspace(workspace).filter(due_at__gte=start, due_at__lt=end)
    if user is not None:
        meetings = meetings.filter(organizer=user)
        tasks = tasks.filter(assignee=user)
    low, high = in_range or (first, last)
    today = today or timezone.now().astimezone(zone).date()
    days: dict[date, CalendarDay] = {}
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        days[day] = CalendarDay(day, in_range=low <= day <= high, is_today=day == today)
    for meeting in meetings.order_by("starts_at", "id"):
        key = max(meeting.starts_at.astimezone(zone).date(), first)
        if key in days:
            days[key].meetings.append(meeting)
    for task in tasks.order_by("due_at", "id"):
        assert task.due_at is not None
        key = task.due_at.astimezone(zone).date()
        if key in days:
            days[key].tasks.append(task)
    return list(days.values())


def week_bounds(day: date) -> tuple[date, date]:
    """Monday and Sunday of the week of ``day``."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def month_bounds(day: date) -> tuple[date, date, date, date]:
    """(grid start, grid end, first of month, last of month): whole weeks, Monday first."""
    first_of_month = day.replace(day=1)
    next_month = (first_of_month + timedelta(days=32)).replace(day=1)
    last_of_month = next_month - timedelta(days=1)
    grid_start = first_of_month - timedelta(days=first_of_month.weekday())
    grid_end = last_of_month + timedelta(days=6 - last_of_month.weekday())
    return grid_start, grid_end, first_of_month, last_of_month
