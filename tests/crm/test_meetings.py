"""Calls, meetings and the calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import meetings
from patron.crm.models import Call, Meeting, Task
from tests.conftest import member
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def test_a_logged_call_lands_on_the_timeline(workspace, owner):
    contact = ContactFactory(workspace=workspace)
    call = meetings.log_call(
        workspace=workspace,
        contact=contact,
        outcome="voicemail",
        duration_minutes=2,
        notes="<script>x</script>Call back Friday",
        logged_by=owner,
    )
    assert "<script>" not in call.notes and "Call back Friday" in call.notes
    event = Event.objects.for_workspace(workspace).get(kind="contact.call_logged")
    assert event.contact_id == contact.pk and event.properties["outcome"] == "Left voicemail"
    with pytest.raises(meetings.CrossWorkspaceReference):
        meetings.log_call(
            workspace=workspace,
            contact=ContactFactory(workspace=WorkspaceFactory()),
            outcome="busy",
        )


def test_meetings_are_scheduled_and_their_outcome_recorded(workspace, owner):
    ana, ben = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    start = timezone.now() + timedelta(days=1)
    with pytest.raises(meetings.MeetingInvalid, match="ends after it starts"):
        meetings.schedule_meeting(
            workspace=workspace, title="Demo", starts_at=start, ends_at=start, contacts=[ana]
        )
    meeting = meetings.schedule_meeting(
        workspace=workspace,
        title="Demo",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        contacts=[ana, ben],
        organizer=owner,
    )
    events = Event.objects.for_workspace(workspace)
    assert sorted(
        events.filter(kind="meeting.scheduled").values_list("contact_id", flat=True)
    ) == sorted([ana.pk, ben.pk])
    meetings.record_meeting_outcome(
        meeting=meeting, outcome="completed", notes="Signed up", actor=owner
    )
    meeting.refresh_from_db()
    assert meeting.outcome == "completed" and "Signed up" in meeting.description
    assert events.filter(kind="contact.meeting_logged", contact_id=ana.pk).exists()
    with pytest.raises(meetings.CrossWorkspaceReference):
        meetings.schedule_meeting(
            workspace=workspace,
            title="X",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            contacts=[ContactFactory(workspace=WorkspaceFactory())],
        )


def test_month_grid_has_whole_weeks_and_marks_the_month():
    first, last, month_start, month_end = meetings.month_bounds(date(2026, 2, 14))
    assert (first, last) == (date(2026, 1, 26), date(2026, 3, 1))  # Monday to Sunday
    assert (month_start, month_end) == (date(2026, 2, 1), date(2026, 2, 28))
    assert meetings.week_bounds(date(2026, 3, 1)) == (date(2026, 2, 23), date(2026, 3, 1))


def test_calendar_days_follow_the_time_zone_across_dst(workspace, owner):
    # Europe/Berlin moves to summer time on 2026-03-29 at 02:00.
    colleague = member(workspace, Role.SALES)
    late = datetime(2026, 3, 28, 23, 30, tzinfo=BERLIN)  # 22:30 UTC
    after = datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN)  # 22:30 UTC the day before, too
    contact = ContactFactory(workspace=workspace)
    for title, start in (("Late", late), ("After midnight", after)):
        meetings.schedule_meeting(
            workspace=workspace,
            title=title,
            starts_at=start,
            ends_at=start + timedelta(minutes=20),
            contacts=[contact],
            organizer=owner,
        )
    Task.objects.create(
        workspace=workspace,
        title="Mine",
        assignee=owner,
        due_at=datetime(2026, 3, 30, 9, 0, tzinfo=BERLIN),
    )
    Task.objects.create(
        workspace=workspace,
        title="Theirs",
        assignee=colleague,
        due_at=datetime(2026, 3, 30, 9, 0, tzinfo=BERLIN),
    )
    days = meetings.calendar_days(
        workspace, first=date(2026, 3, 23), last=date(2026, 3, 29), zone=BERLIN, user=owner
    )
    by_day = {d.day: ([m.title for m in d.meetings], [t.title for t in d.tasks]) for d in days}
    assert by_day[date(2026, 3, 28)] == (["Late"], [])
    assert by_day[date(2026, 3, 29)] == (["After midnight"], [])
    later = meetings.calendar_days(
        workspace, first=date(2026, 3, 30), last=date(2026, 4, 5), zone=BERLIN, user=None
    )
    assert sorted(later[0].tasks, key=lambda t: t.title)[0].title == "Mine"
    assert len(later[0].tasks) == 2
    mine_only = meetings.calendar_days(
        workspace, first=date(2026, 3, 30), last=date(2026, 4, 5), zone=BERLIN, user=owner
    )
    assert [t.title for t in mine_only[0].tasks] == ["Mine"]


def test_pages(logged_in, workspace, owner, django_assert_max_num_queries):
    workspace.time_zone = "Europe/Berlin"
    workspace.save()
    contact = ContactFactory(workspace=workspace, first_name="Lotte")
    response = logged_in.post(
        f"/calls/new/?contact={contact.pk}",
        {
            "outcome": "connected",
            "direction": "outbound",
            "occurred_at": "2026-03-02T10:00",
            "duration_minutes": "5",
            "notes": "Wants a quote",
        },
    )
    assert response.url == f"/contacts/{contact.pk}/"
    call = Call.objects.for_workspace(workspace).get()
    assert call.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
    assert "Call logged" in logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    bad = logged_in.post(
        f"/meetings/new/?contact={contact.pk}",
        {
            "title": "Kick-off",
            "starts_at": "2026-03-03T10:00",
            "ends_at": "2026-03-03T09:00",
            "organizer": owner.pk,
            "contacts": [contact.pk],
        },
    )
    assert "A meeting ends after it starts" in bad.content.decode()
    logged_in.post(
        f"/meetings/new/?contact={contact.pk}",
        {
            "title": "Kick-off",
            "starts_at": "2026-03-03T10:00",
            "ends_at": "2026-03-03T11:00",
            "organizer": owner.pk,
            "contacts": [contact.pk],
        },
    )
    meeting = Meeting.objects.for_workspace(workspace).get()
    for i in range(10):
        Task.objects.create(
            workspace=workspace,
            title=f"T{i}",
            assignee=owner,
            due_at=datetime(2026, 3, 4 + i, 9, 0, tzinfo=BERLIN),
        )
    with django_assert_max_num_queries(12):
        month = logged_in.get(
            "/calendar/", {"view": "month", "date": "2026-03-15"}
        ).content.decode()
    assert "March 2026" in month and "Kick-off" in month and "09:00 T9" in month
    week = logged_in.get("/calendar/", {"date": "2026-03-03"}).content.decode()
    assert "10:00 Kick-off" in week and "09:00 T9" not in week and "09:00 T0" in week
    logged_in.post(f"/meetings/{meeting.pk}/outcome/", {"outcome": "no_show"})
    meeting.refresh_from_db()
    assert meeting.outcome == "no_show"


def test_api(api, workspace, owner):
    contact = ContactFactory(workspace=workspace)
    created = api.post(
        "/api/v1/calls", {"contact_id": contact.pk, "outcome": "connected", "duration_minutes": 7}
    )
    assert created.status_code == 201, created.content
    assert created.json()["outcome"] == "connected"
    bad = api.post("/api/v1/calls", {"contact_id": contact.pk, "outcome": "maybe"})
    assert bad.status_code == 422 and "outcome" in bad.json()["error"]["fields"]
    listed = api.get("/api/v1/calls", contact_id=contact.pk).json()["items"]
    assert [c["duration_minutes"] for c in listed] == [7]
    meeting = api.post(
        "/api/v1/meetings",
        {
            "title": "Review",
            "starts_at": "2026-05-04T09:00:00Z",
            "ends_at": "2026-05-04T10:00:00Z",
            "organizer_id": owner.pk,
            "contact_ids": [contact.pk],
        },
    )
    assert meeting.status_code == 201, meeting.content
    body = meeting.json()
    assert body["contact_ids"] == [contact.pk] and body["outcome"] == "scheduled"
    backwards = api.post(
        "/api/v1/meetings",
        {"title": "X", "starts_at": "2026-05-04T10:00:00Z", "ends_at": "2026-05-04T09:00:00Z"},
    )
    assert backwards.status_code == 422 and "ends_at" in backwards.json()["error"]["fields"]
    done = api.post(f"/api/v1/meetings/{body['id']}/outcome", {"outcome": "completed"})
    assert done.json()["outcome"] == "completed"
    window = api.get(
        "/api/v1/meetings", after="2026-05-04T00:00:00Z", before="2026-05-05T00:00:00Z"
    ).json()["items"]
    assert [m["title"] for m in window] == ["Review"]
    foreign = ContactFactory(workspace=WorkspaceFactory())
    assert (
        api.post("/api/v1/calls", {"contact_id": foreign.pk, "outcome": "busy"}).status_code == 422
    )
    assert api.delete(f"/api/v1/meetings/{body['id']}").status_code == 204
