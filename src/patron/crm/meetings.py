"""Calls and meetings: logging them, recording outcomes, and the calendar that shows them.

Both land on the contact's timeline through the activity log:
``contact.call_logged`` when a call is logged, ``meeting.scheduled`` for each
attendee when a meeting is planned, ``contact.meeting_logged`` when its
outcome is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.core.models import User, Workspace
from patron.crm.models import Call, Contact, Meeting, MeetingOutcome, Task
from patron.crm.services import CrossWorkspaceReference, _check_references, sanitise_note


class MeetingInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_records(workspace: Workspace, *records: Any) -> None:
    for row in records:
        if row is not None and row.workspace_id != workspace.pk:
            raise CrossWorkspaceReference(_("The record is not part of this workspace."))


@transaction.atomic
def log_call(
    *,
    workspace: Workspace,
    contact: Contact,
    outcome: str,
    direction: str = "outbound",
    occurred_at: datetime | None = None,
    duration_minutes: int = 0,
    notes: str = "",
    deal: Any = None,
    logged_by: User | None = None,
) -> Call:
    _check_records(workspace, contact, deal)
    call = Call.objects.create(
        workspace=workspace,
        contact=contact,
        company=contact.company,
        deal=deal,
        direction=direction,
        outcome=outcome,
        occurred_at=occurred_at or timezone.now(),
        duration_minutes=duration_minutes,
        notes=sanitise_note(notes) if notes.strip() else "",
        logged_by=logged_by,
    )
    record(
        workspace=workspace,
        kind="contact.call_logged",
        contact_id=contact.pk,
        actor=logged_by,
        source=("crm.call", call.pk),
        occurred_at=call.occurred_at,
        properties={
            "outcome": call.get_outcome_display(),
            "direction": call.direction,
            "minutes": call.duration_minutes,
        },
    )
    return call


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise MeetingInvalid("ends_at", _("A meeting ends after it starts."))
    if ends_at - starts_at > timedelta(days=7):
        raise MeetingInvalid("ends_at", _("A meeting lasts at most a week."))


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
    deal: Any = None,
    actor: User | None = None,
) -> Meeting:
    _check_times(starts_at, ends_at)
    _check_records(workspace, deal, *contacts)
    _check_references(workspace, {"owner": organizer})
    company = next((c.company for c in contacts if c.company_id), None)
    meeting = Meeting.objects.create(
        workspace=workspace,
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
        organizer=organizer,
        location=location,
        description=description,
        company=company,
        deal=deal,
    )
    meeting.contacts.set(contacts)
    for contact in contacts:
        record(
            workspace=workspace,
            kind="meeting.scheduled",
            contact_id=contact.pk,
            actor=actor,
            source=("crm.meeting", meeting.pk),
            properties={"title": title, "starts_at": starts_at.isoformat()},
        )
    return meeting


@transaction.atomic
def record_meeting_outcome(
    *, meeting: Meeting, outcome: str, notes: str = "", actor: User | None = None
) -> Meeting:
    if outcome not in MeetingOutcome.values:
        raise MeetingInvalid("outcome", _("Choose an outcome."))
    meeting.outcome = outcome
    if notes.strip():
        meeting.description = (meeting.description + "\n\n" + notes.strip()).strip()
    meeting.save(update_fields=["outcome", "description"])
    for contact_id in meeting.contacts.values_list("pk", flat=True):
        record(
            workspace=meeting.workspace_id,
            kind="contact.meeting_logged",
            contact_id=contact_id,
            actor=actor,
            source=("crm.meeting", meeting.pk),
            properties={"title": meeting.title, "outcome": meeting.get_outcome_display()},
        )
    return meeting


# --- The calendar ---------------------------------------------------------------------


@dataclass
class CalendarDay:
    day: date
    in_range: bool
    meetings: list[Meeting] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)

    @property
    def is_today(self) -> bool:
        return self.day == timezone.localdate()


def calendar_days(
    workspace: Workspace,
    *,
    first: date,
    last: date,
    zone: ZoneInfo,
    user: User | None,
    in_range: tuple[date, date] | None = None,
) -> list[CalendarDay]:
    """Each day from ``first`` to ``last`` with its meetings and due tasks, in ``zone``.

    ``user`` narrows to the meetings they organise and the tasks assigned to
    them; None shows everyone's. Two queries, whatever the span.
    """
    start = datetime.combine(first, time.min, zone)
    end = datetime.combine(last + timedelta(days=1), time.min, zone)
    meetings = Meeting.objects.for_workspace(workspace).filter(starts_at__lt=end, ends_at__gt=start)
    tasks = Task.objects.for_workspace(workspace).filter(due_at__gte=start, due_at__lt=end)
    if user is not None:
        meetings = meetings.filter(organizer=user)
        tasks = tasks.filter(assignee=user)
    low, high = in_range or (first, last)
    days = {
        first + timedelta(days=n): CalendarDay(
            first + timedelta(days=n), low <= first + timedelta(days=n) <= high
        )
        for n in range((last - first).days + 1)
    }
    for meeting in meetings.order_by("starts_at", "id"):
        day = max(meeting.starts_at.astimezone(zone).date(), first)
        if day in days:
            days[day].meetings.append(meeting)
    for task in tasks.select_related("contact").order_by("due_at", "id"):
        assert task.due_at is not None
        day = task.due_at.astimezone(zone).date()
        if day in days:
            days[day].tasks.append(task)
    return list(days.values())


def week_bounds(day: date) -> tuple[date, date]:
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
