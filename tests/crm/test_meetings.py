"""Calls and meetings: the services, and the calendar's days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from patron.activity.models import Event
from patron.activity.templatetags.activity import event_summary
from patron.core.roles import Role
from patron.crm import meetings
from patron.crm.models import Call, Meeting, Task
from patron.crm.services import CrossWorkspaceReference
from tests.conftest import member
from tests.factories import (
    CallFactory,
    CompanyFactory,
    ContactFactory,
    DealFactory,
    MeetingFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


# --- Calls ------------------------------------------------------------------------------


def test_a_logged_call_lands_on_the_contacts_timeline(workspace, owner):
    company = CompanyFactory(workspace=workspace)
    contact = ContactFactory(workspace=workspace, company=company)
    deal = DealFactory(workspace=workspace)
    call = meetings.log_call(
        workspace=workspace,
        contact=contact,
        outcome="voicemail",
        direction="inbound",
        duration_minutes=2,
        notes="<script>x</script>Call back Friday",
        deal=deal,
        logged_by=owner,
    )
    assert "<script>" not in call.notes and "Call back Friday" in call.notes
    assert (call.company, call.deal, call.direction) == (company, deal, "inbound")
    event = Event.objects.for_workspace(workspace).get(kind="call.logged")
    assert event.contact_id == contact.pk and event.actor == owner
    assert (event.source_type, event.source_id) == ("crm.call", str(call.pk))
    assert event.properties == {
        "outcome": "voicemail",
        "outcome_label": "Left voicemail",
        "direction": "inbound",
        "minutes": 2,
        "who": "Olivia Owner",
    }
    assert event_summary(event.properties) == "Left voicemail"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"outcome": "maybe"}, "outcome"),
        ({"direction": "sideways"}, "direction"),
        ({"duration_minutes": -1}, "duration_minutes"),
        ({"duration_minutes": 24 * 60 + 1}, "duration_minutes"),
        ({"occurred_at": timezone.now() + timedelta(days=1)}, "occurred_at"),
    ],
)
def test_a_call_with_a_bad_value_is_refused_and_not_recorded(workspace, values, field):
    contact = ContactFactory(workspace=workspace)
    with pytest.raises(meetings.CallInvalid) as caught:
        meetings.log_call(workspace=workspace, contact=contact, **{"outcome": "busy", **values})
    assert caught.value.field == field
    assert not Call.objects.for_workspace(workspace).exists()
    assert not Event.objects.for_workspace(workspace).filter(kind="call.logged").exists()


def test_a_call_refuses_records_of_another_workspace(workspace):
    other = WorkspaceFactory()
    mine = ContactFactory(workspace=workspace)
    for values in (
        {"contact": ContactFactory(workspace=other)},
        {"contact": mine, "company": CompanyFactory(workspace=other)},
        {"contact": mine, "deal": DealFactory(workspace=other)},
    ):
        with pytest.raises(CrossWorkspaceReference):
            meetings.log_call(workspace=workspace, outcome="busy", **values)
    assert not Call.objects.for_workspace(workspace).exists()


def test_a_call_is_corrected_and_deleted(workspace, owner):
    call = CallFactory(workspace=workspace, outcome="no_answer", duration_minutes=0)
    meetings.update_call(call=call, outcome="connected", duration_minutes=12, notes="<b>ok</b>")
    call.refresh_from_db()
    assert (call.outcome, call.duration_minutes, call.notes) == ("connected", 12, "<b>ok</b>")
    with pytest.raises(meetings.CallInvalid):
        meetings.update_call(call=call, outcome="later")
    with pytest.raises(CrossWorkspaceReference):
        meetings.update_call(call=call, deal=DealFactory(workspace=WorkspaceFactory()))
    with pytest.raises(TypeError):
        meetings.update_call(call=call, contact=ContactFactory(workspace=workspace))
    meetings.delete_call(call=call)
    assert not Call.objects.for_workspace(workspace).exists()
    # The log keeps what was said at the time.
    assert Event.objects.for_workspace(workspace).filter(kind="call.logged").count() == 1


# --- Meetings ---------------------------------------------------------------------------


def test_a_meeting_is_scheduled_with_its_attendees_and_outcome_recorded(workspace, owner):
    company = CompanyFactory(workspace=workspace, name="Kontor")
    ana = ContactFactory(workspace=workspace, company=company)
    ben = ContactFactory(workspace=workspace)
    start = timezone.now() + timedelta(days=1)
    meeting = meetings.schedule_meeting(
        workspace=workspace,
        title=" Demo ",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        contacts=[ben, ana],
        organizer=owner,
        actor=owner,
    )
    assert meeting.title == "Demo" and meeting.company == company  # from the first with one
    events = Event.objects.for_workspace(workspace)
    scheduled = events.filter(kind="meeting.scheduled")
    assert sorted(scheduled.values_list("contact_id", flat=True)) == sorted([ana.pk, ben.pk])
    assert scheduled.first().properties["who"] == "Olivia Owner"
    meetings.record_meeting_outcome(
        meeting=meeting, outcome="completed", notes="Signed up", actor=owner
    )
    meeting.refresh_from_db()
    assert meeting.outcome == "completed" and "Signed up" in meeting.description
    recorded = events.filter(kind="meeting.outcome_recorded", contact_id=ana.pk).get()
    assert recorded.properties == {
        "title": "Demo",
        "outcome": "completed",
        "outcome_label": "Completed",
        "who": "Olivia Owner",
    }
    assert event_summary(recorded.properties) == "Demo · Completed"
    with pytest.raises(meetings.MeetingInvalid):
        meetings.record_meeting_outcome(meeting=meeting, outcome="went well")


@pytest.mark.parametrize(
    ("title", "length", "field", "message"),
    [
        ("Demo", timedelta(0), "ends_at", "ends after it starts"),
        ("Demo", timedelta(hours=-1), "ends_at", "ends after it starts"),
        ("Demo", timedelta(days=8), "ends_at", "at most a week"),
        ("  ", timedelta(hours=1), "title", "title"),
    ],
)
def test_a_meeting_with_bad_times_or_no_title_is_refused(workspace, title, length, field, message):
    start = timezone.now()
    with pytest.raises(meetings.MeetingInvalid, match=message) as caught:
        meetings.schedule_meeting(
            workspace=workspace,
            title=title,
            starts_at=start,
            ends_at=start + length,
            contacts=[ContactFactory(workspace=workspace)],
        )
    assert caught.value.field == field
    assert not Meeting.objects.for_workspace(workspace).exists()


def test_the_database_also_refuses_a_meeting_that_ends_before_it_starts(workspace):
    start = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Meeting.objects.create(workspace=workspace, title="X", starts_at=start, ends_at=start)


def test_a_meeting_refuses_records_and_people_of_another_workspace(workspace):
    other = WorkspaceFactory()
    outsider = UserFactory()  # a member of no workspace
    start = timezone.now()
    mine = [ContactFactory(workspace=workspace)]
    for values in (
        {"contacts": [ContactFactory(workspace=other)]},
        {"contacts": mine, "company": CompanyFactory(workspace=other)},
        {"contacts": mine, "deal": DealFactory(workspace=other)},
        {"contacts": mine, "organizer": outsider},
    ):
        with pytest.raises(CrossWorkspaceReference):
            meetings.schedule_meeting(
                workspace=workspace,
                title="X",
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                **values,
            )
    assert not Meeting.objects.for_workspace(workspace).exists()


def test_updating_a_meeting_tells_only_new_attendees(workspace, owner):
    ana, ben = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    meeting = MeetingFactory(workspace=workspace, contacts=[ana], organizer=owner)
    later = meeting.starts_at + timedelta(days=2)
    meetings.update_meeting(
        meeting=meeting,
        contacts=[ana, ben],
        starts_at=later,
        ends_at=later + timedelta(minutes=30),
        location="Room 4",
    )
    meeting.refresh_from_db()
    assert meeting.starts_at == later and meeting.location == "Room 4"
    assert set(meeting.contacts.all()) == {ana, ben}
    scheduled = Event.objects.for_workspace(workspace).filter(kind="meeting.scheduled")
    assert sorted(scheduled.values_list("contact_id", flat=True)) == sorted([ana.pk, ben.pk])
    with pytest.raises(meetings.MeetingInvalid):
        meetings.update_meeting(meeting=meeting, ends_at=meeting.starts_at)
    with pytest.raises(CrossWorkspaceReference):
        meetings.update_meeting(
            meeting=meeting, contacts=[ContactFactory(workspace=WorkspaceFactory())]
        )
    meetings.delete_meeting(meeting=meeting)
    assert not Meeting.objects.for_workspace(workspace).exists()


# --- The calendar ---------------------------------------------------------------------


def test_week_and_month_bounds_cross_months_and_years():
    assert meetings.week_bounds(date(2026, 3, 1)) == (date(2026, 2, 23), date(2026, 3, 1))
    assert meetings.week_bounds(date(2026, 12, 31)) == (date(2026, 12, 28), date(2027, 1, 3))
    first, last, month_start, month_end = meetings.month_bounds(date(2026, 2, 14))
    assert (first, last) == (date(2026, 1, 26), date(2026, 3, 1))  # Monday to Sunday
    assert (month_start, month_end) == (date(2026, 2, 1), date(2026, 2, 28))
    assert meetings.month_bounds(date(2028, 2, 29))[3] == date(2028, 2, 29)  # leap year
    first, last, _, month_end = meetings.month_bounds(date(2026, 12, 5))
    assert (first, last, month_end) == (date(2026, 11, 30), date(2027, 1, 3), date(2026, 12, 31))
    # A month that starts on a Monday and ends on a Sunday is exactly its own grid.
    first, last, _, _ = meetings.month_bounds(date(2027, 2, 10))
    assert (first, last) == (date(2027, 2, 1), date(2027, 2, 28))


def _meeting_at(workspace, owner, title, start, minutes=20):
    return MeetingFactory(
        workspace=workspace,
        title=title,
        starts_at=start,
        ends_at=start.astimezone(UTC) + timedelta(minutes=minutes),
        organizer=owner,
    )


def test_days_follow_the_time_zone_into_summer_time(workspace, owner):
    # Europe/Berlin moves to summer time on 2026-03-29 at 02:00 (the day has 23 hours).
    _meeting_at(workspace, owner, "Late", datetime(2026, 3, 28, 23, 30, tzinfo=BERLIN))
    _meeting_at(workspace, owner, "After midnight", datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN))
    _meeting_at(workspace, owner, "Last of Sunday", datetime(2026, 3, 29, 23, 45, tzinfo=BERLIN))
    _meeting_at(workspace, owner, "Monday early", datetime(2026, 3, 30, 0, 15, tzinfo=BERLIN))
    days = meetings.calendar_days(
        workspace, first=date(2026, 3, 23), last=date(2026, 3, 29), zone=BERLIN, user=owner
    )
    by_day = {d.day: [m.title for m in d.meetings] for d in days}
    assert by_day[date(2026, 3, 28)] == ["Late"]
    assert by_day[date(2026, 3, 29)] == ["After midnight", "Last of Sunday"]
    assert len(days) == 7 and sum(len(titles) for titles in by_day.values()) == 3
    # The same moments seen from New York fall on other days.
    seen_there = meetings.calendar_days(
        workspace, first=date(2026, 3, 23), last=date(2026, 3, 29), zone=NEW_YORK, user=owner
    )
    there = {d.day: [m.title for m in d.meetings] for d in seen_there}
    assert there[date(2026, 3, 28)] == ["Late", "After midnight"]
    assert there[date(2026, 3, 29)] == ["Last of Sunday", "Monday early"]


def test_days_follow_the_time_zone_back_to_winter_time(workspace, owner):
    # New York leaves summer time on 2026-11-01 at 02:00: 01:30 happens twice that night.
    first_pass = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)  # 05:30 UTC
    second_pass = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)  # 06:30 UTC
    _meeting_at(workspace, owner, "First 1:30", first_pass)
    _meeting_at(workspace, owner, "Second 1:30", second_pass)
    _meeting_at(workspace, owner, "Last of Sunday", datetime(2026, 11, 1, 23, 50, tzinfo=NEW_YORK))
    _meeting_at(workspace, owner, "Monday", datetime(2026, 11, 2, 0, 5, tzinfo=NEW_YORK))
    # Twenty minutes after the second 01:30 is 01:50 on the wall, but "01:50" alone
    # means the first pass, an hour earlier: that meeting would end before it starts.
    with pytest.raises(meetings.MeetingInvalid, match="ends after it starts"):
        meetings.schedule_meeting(
            workspace=workspace,
            title="Backwards",
            starts_at=second_pass,
            ends_at=datetime(2026, 11, 1, 1, 50, tzinfo=NEW_YORK),
            contacts=[],
        )
    days = meetings.calendar_days(
        workspace, first=date(2026, 10, 26), last=date(2026, 11, 1), zone=NEW_YORK, user=None
    )
    sunday = days[-1]
    assert sunday.day == date(2026, 11, 1)
    assert [m.title for m in sunday.meetings] == ["First 1:30", "Second 1:30", "Last of Sunday"]


def test_month_grid_places_entries_across_month_boundaries(workspace, owner):
    _meeting_at(workspace, owner, "Last of March", datetime(2026, 3, 31, 23, 30, tzinfo=BERLIN))
    _meeting_at(workspace, owner, "First of April", datetime(2026, 4, 1, 0, 10, tzinfo=BERLIN))
    _meeting_at(workspace, owner, "Too early", datetime(2026, 3, 29, 23, 0, tzinfo=BERLIN))
    _meeting_at(workspace, owner, "Too late", datetime(2026, 5, 4, 0, 0, tzinfo=BERLIN))
    # Began before the grid and still running: shown on its first day.
    _meeting_at(
        workspace, owner, "Offsite", datetime(2026, 3, 29, 18, 0, tzinfo=BERLIN), minutes=60 * 30
    )
    first, last, month_start, month_end = meetings.month_bounds(date(2026, 4, 15))
    assert (first, last) == (date(2026, 3, 30), date(2026, 5, 3))
    days = meetings.calendar_days(
        workspace,
        first=first,
        last=last,
        zone=BERLIN,
        user=owner,
        in_range=(month_start, month_end),
        today=date(2026, 4, 15),
    )
    by_day = {d.day: d for d in days}
    assert [m.title for m in by_day[date(2026, 3, 30)].meetings] == ["Offsite"]
    assert [m.title for m in by_day[date(2026, 3, 31)].meetings] == ["Last of March"]
    assert [m.title for m in by_day[date(2026, 4, 1)].meetings] == ["First of April"]
    titles = {m.title for d in days for m in d.meetings}
    assert "Too early" not in titles and "Too late" not in titles
    assert not by_day[date(2026, 3, 31)].in_range and by_day[date(2026, 4, 1)].in_range
    assert [d.day for d in days if d.is_today] == [date(2026, 4, 15)]
    assert by_day[date(2026, 4, 2)].is_empty


def test_whose_calendar(workspace, owner):
    colleague = member(workspace, Role.SALES)
    due = datetime(2026, 3, 30, 9, 0, tzinfo=BERLIN)
    Task.objects.create(workspace=workspace, title="Mine", assignee=owner, due_at=due)
    Task.objects.create(workspace=workspace, title="Theirs", assignee=colleague, due_at=due)
    Task.objects.create(workspace=workspace, title="Someday", assignee=owner)
    _meeting_at(workspace, owner, "My meeting", due)
    _meeting_at(workspace, colleague, "Their meeting", due)
    other = WorkspaceFactory()
    Task.objects.create(workspace=other, title="Elsewhere", due_at=due)

    def monday(user):
        day = meetings.calendar_days(
            workspace, first=date(2026, 3, 30), last=date(2026, 4, 5), zone=BERLIN, user=user
        )[0]
        return sorted(m.title for m in day.meetings), sorted(t.title for t in day.tasks)

    assert monday(owner) == (["My meeting"], ["Mine"])
    assert monday(colleague) == (["Their meeting"], ["Theirs"])
    assert monday(None) == (["My meeting", "Their meeting"], ["Mine", "Theirs"])
