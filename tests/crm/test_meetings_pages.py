"""Pages for calls, meetings, the calendar and a task."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from patron.core.roles import Role
from patron.crm.models import Call, Meeting, Task
from tests.conftest import member
from tests.factories import (
    PASSWORD,
    CallFactory,
    CompanyFactory,
    ContactFactory,
    DealFactory,
    MeetingFactory,
)

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def berlin(workspace):
    workspace.time_zone = "Europe/Berlin"
    workspace.save()
    return workspace


def _call_form(**values):
    return {
        "outcome": "connected",
        "direction": "outbound",
        "occurred_at": "2026-03-02T10:00",
        "duration_minutes": "5",
        "notes": "",
        **values,
    }


def test_log_a_call_from_a_contact_page(logged_in, berlin, owner):
    contact = ContactFactory(workspace=berlin, first_name="Lotte")
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert f'href="/calls/new/?contact={contact.pk}"' in page
    response = logged_in.post(
        f"/calls/new/?contact={contact.pk}", _call_form(notes="Wants a <b>quote</b>")
    )
    assert response.url == f"/contacts/{contact.pk}/"
    call = Call.objects.for_workspace(berlin).get()
    # Entered in the workspace's (here also the user's) time zone.
    assert call.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
    assert call.logged_by == owner
    detail = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Call logged" in detail and "Connected" in detail and 'id="recent-calls"' in detail


def test_a_bad_call_shows_the_error_on_the_form(logged_in, workspace):
    contact = ContactFactory(workspace=workspace)
    future = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    bad = logged_in.post(f"/calls/new/?contact={contact.pk}", _call_form(occurred_at=future))
    assert bad.status_code == 200
    assert "plan a future call as a task" in bad.content.decode()
    unknown = logged_in.post(f"/calls/new/?contact={contact.pk}", _call_form(outcome="maybe"))
    assert "Select a valid choice" in unknown.content.decode()
    assert not Call.objects.for_workspace(workspace).exists()
    nowhere = logged_in.get("/calls/new/")
    assert nowhere.url == "/contacts/"


def test_log_a_call_from_a_company_page_with_one_of_its_people(logged_in, workspace):
    company = CompanyFactory(workspace=workspace, name="Hafen AG")
    person = ContactFactory(workspace=workspace, first_name="Greta", company=company)
    stranger = ContactFactory(workspace=workspace, first_name="Stranger")
    form = logged_in.get(f"/calls/new/?company={company.pk}").content.decode()
    assert "Greta" in form and "Stranger" not in form
    refused = logged_in.post(f"/calls/new/?company={company.pk}", _call_form(contact=stranger.pk))
    assert "Select a valid choice" in refused.content.decode()
    response = logged_in.post(f"/calls/new/?company={company.pk}", _call_form(contact=person.pk))
    assert response.url == f"/companies/{company.pk}/"
    call = Call.objects.for_workspace(workspace).get()
    assert (call.contact, call.company) == (person, company)
    detail = logged_in.get(f"/companies/{company.pk}/").content.decode()
    assert "Call logged" in detail  # on the company's timeline through its contact
    empty = CompanyFactory(workspace=workspace)
    assert 'id="no-contacts"' in logged_in.get(f"/calls/new/?company={empty.pk}").content.decode()


def test_log_a_call_and_schedule_a_meeting_from_a_deal_page(logged_in, workspace, owner):
    person = ContactFactory(workspace=workspace, first_name="Jonas")
    deal = DealFactory(workspace=workspace, name="Harbour cranes")
    deal.contacts.add(person)
    response = logged_in.post(f"/calls/new/?deal={deal.pk}", _call_form(contact=person.pk))
    assert response.url == f"/deals/{deal.pk}/"
    assert Call.objects.for_workspace(workspace).get().deal == deal
    form = logged_in.get(f"/meetings/new/?deal={deal.pk}").content.decode()
    assert f'<option value="{deal.pk}" selected>Harbour cranes</option>' in form
    logged_in.post(
        f"/meetings/new/?deal={deal.pk}",
        {
            "title": "Site visit",
            "starts_at": "2030-05-06T10:00",
            "ends_at": "2030-05-06T11:00",
            "organizer": owner.pk,
            "contacts": [person.pk],
            "deal": deal.pk,
        },
    )
    assert Meeting.objects.for_workspace(workspace).get().deal == deal
    detail = logged_in.get(f"/deals/{deal.pk}/").content.decode()
    assert "Site visit" in detail and "Connected" in detail


def test_schedule_edit_record_and_delete_a_meeting(logged_in, berlin, owner):
    contact = ContactFactory(workspace=berlin, first_name="Lotte")
    values = {
        "title": "Kick-off",
        "starts_at": "2030-03-03T10:00",
        "ends_at": "2030-03-03T09:00",
        "organizer": owner.pk,
        "contacts": [contact.pk],
    }
    bad = logged_in.post(f"/meetings/new/?contact={contact.pk}", values)
    assert "A meeting ends after it starts" in bad.content.decode()
    response = logged_in.post(
        f"/meetings/new/?contact={contact.pk}", {**values, "ends_at": "2030-03-03T11:00"}
    )
    meeting = Meeting.objects.for_workspace(berlin).get()
    assert response.url == f"/meetings/{meeting.pk}/"
    assert meeting.starts_at == datetime(2030, 3, 3, 10, 0, tzinfo=BERLIN)
    edit = logged_in.get(f"/meetings/{meeting.pk}/edit/").content.decode()
    assert 'value="2030-03-03T10:00"' in edit
    logged_in.post(
        f"/meetings/{meeting.pk}/edit/",
        {**values, "title": "Kick-off <moved>", "ends_at": "2030-03-03T12:00"},
    )
    meeting.refresh_from_db()
    assert meeting.ends_at == datetime(2030, 3, 3, 12, 0, tzinfo=BERLIN)
    page = logged_in.get(f"/meetings/{meeting.pk}/").content.decode()
    assert "Kick-off &lt;moved&gt;" in page and "<moved>" not in page
    logged_in.post(f"/meetings/{meeting.pk}/outcome/", {"outcome": "no_show"})
    meeting.refresh_from_db()
    assert meeting.outcome == "no_show"
    timeline = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Meeting outcome recorded" in timeline and "No show" in timeline
    response = logged_in.post(f"/meetings/{meeting.pk}/delete/")
    assert response.url == "/calendar/?date=2030-03-03"
    assert not Meeting.objects.for_workspace(berlin).exists()


def test_the_month_view_in_the_workspace_time_zone(
    logged_in, berlin, owner, django_assert_num_queries
):
    # The user reads in New York time elsewhere; the calendar keeps to the workspace's zone.
    owner.time_zone = "America/New_York"
    owner.save()
    MeetingFactory(
        workspace=berlin,
        title="Kick-off",
        starts_at=datetime(2026, 3, 31, 23, 30, tzinfo=BERLIN),
        ends_at=datetime(2026, 4, 1, 0, 30, tzinfo=BERLIN),
        organizer=owner,
    )
    for i in range(10):
        Task.objects.create(
            workspace=berlin,
            title=f"Task {i}",
            assignee=owner,
            due_at=datetime(2026, 3, 4 + i, 9, 0, tzinfo=BERLIN),
        )
    logged_in.get("/")  # the session settles on the workspace
    # session, user, memberships, unread notifications; meetings, tasks, members
    with django_assert_num_queries(7):
        month = logged_in.get("/calendar/", {"view": "month", "date": "2026-03-15"})
    html = month.content.decode()
    assert "March 2026" in html and "Times in Europe/Berlin" in html
    cell = html.split('data-day="2026-03-31"')[1].split("</td>")[0]
    assert "23:30</time> Kick-off" in cell
    task = Task.objects.for_workspace(berlin).get(title="Task 9")
    assert f'href="/tasks/{task.pk}/"' in html
    assert 'data-day="2026-04-05"' in html  # the grid ends on a Sunday
    assert "?view=month&amp;date=2026-02-01&amp;user=me" in html  # previous month
    assert "?view=month&amp;date=2026-04-01&amp;user=me" in html  # next month


def test_the_week_view_and_whose_calendar(logged_in, berlin, owner):
    colleague = member(berlin, Role.SALES, email="sam@acme.example")
    MeetingFactory(
        workspace=berlin,
        title="Mine",
        starts_at=datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN),
        ends_at=datetime(2026, 3, 3, 11, 0, tzinfo=BERLIN),
        organizer=owner,
    )
    MeetingFactory(
        workspace=berlin,
        title="Sam's demo",
        starts_at=datetime(2026, 3, 4, 15, 0, tzinfo=BERLIN),
        ends_at=datetime(2026, 3, 4, 16, 0, tzinfo=BERLIN),
        organizer=colleague,
    )
    week = logged_in.get("/calendar/", {"date": "2026-03-03"}).content.decode()
    assert "10:00</time> Mine" in week and "Sam&#x27;s demo" not in week
    assert "Nothing planned" in week  # the empty days say so
    assert "?view=week&amp;date=2026-02-24&amp;user=me" in week
    theirs = logged_in.get("/calendar/", {"date": "2026-03-03", "user": colleague.pk})
    assert "Sam&#x27;s demo" in theirs.content.decode() and "Mine" not in theirs.content.decode()
    everyone = logged_in.get("/calendar/", {"date": "2026-03-03", "user": "all"}).content.decode()
    assert "Mine" in everyone and "Sam&#x27;s demo" in everyone
    # Someone who is not a member shows one's own calendar, not theirs.
    stranger = member(CompanyFactory().workspace, Role.SALES)
    fallback = logged_in.get("/calendar/", {"date": "2026-03-03", "user": stranger.pk})
    assert "Mine" in fallback.content.decode()
    garbage = logged_in.get("/calendar/", {"date": "not-a-date", "view": "year"})
    assert garbage.status_code == 200 and "Week of" in garbage.content.decode()


def test_the_task_page(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace, first_name="Lotte")
    task = Task.objects.create(
        workspace=workspace, title="Send the <offer>", contact=contact, assignee=owner
    )
    page = logged_in.get(f"/tasks/{task.pk}/").content.decode()
    assert "Send the &lt;offer&gt;" in page and "Lotte" in page and "Olivia Owner" in page
    logged_in.post(f"/tasks/{task.pk}/complete/", {"next": f"/tasks/{task.pk}/"})
    assert "Done on" in logged_in.get(f"/tasks/{task.pk}/").content.decode()


def test_the_agency_role_sees_no_calls_or_meetings(client: Client, workspace):
    agency = member(workspace, Role.AGENCY)
    assert client.login(email=agency.email, password=PASSWORD)
    contact = ContactFactory(workspace=workspace)
    meeting = MeetingFactory(workspace=workspace, contacts=[contact])
    CallFactory(workspace=workspace, contact=contact)
    assert client.get("/calendar/").status_code == 403
    assert client.get(f"/meetings/{meeting.pk}/").status_code == 403
    assert client.get(f"/calls/new/?contact={contact.pk}").status_code == 403
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Log a call" not in page and "Calls and meetings" not in page
    assert ">Calendar<" not in page
