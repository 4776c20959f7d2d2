"""Tickets and their SLA clocks: business-hours arithmetic, first response, resolution."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import sla, tickets
from patron.crm.models import BusinessHours, Ticket
from tests.conftest import member
from tests.factories import PASSWORD, ContactFactory, WorkspaceFactory

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_TO_5 = sla.DEFAULT_SCHEDULE


def test_business_minutes_skip_nights_and_weekends():
    friday_4pm = datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN)
    # One hour left on Friday, then Monday from 9:00.
    assert sla.add_business_minutes(friday_4pm, 90, WEEKDAYS_9_TO_5, BERLIN) == datetime(
        2026, 3, 30, 9, 30, tzinfo=BERLIN
    )
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)
    assert sla.add_business_minutes(saturday, 0, WEEKDAYS_9_TO_5, BERLIN) == datetime(
        2026, 3, 30, 9, 0, tzinfo=BERLIN
    )
    monday = datetime(2026, 3, 30, 9, 30, tzinfo=BERLIN)
    assert sla.business_seconds_between(friday_4pm, monday, WEEKDAYS_9_TO_5, BERLIN) == 90 * 60
    with pytest.raises(sla.ScheduleNeverOpen):
        sla.add_business_minutes(saturday, 10, {}, BERLIN)


def test_business_hours_across_the_daylight_saving_change():
    # Clocks go forward on Sunday 2026-03-29; business hours stay 9 to 5 local.
    friday = datetime(2026, 3, 27, 17, 0, tzinfo=BERLIN)
    due = sla.add_business_minutes(friday, 60, WEEKDAYS_9_TO_5, BERLIN)
    assert due == datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN)
    assert due.astimezone(UTC).hour == 8  # summer time: UTC+2


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
    minutes=st.integers(min_value=0, max_value=5 * 8 * 60 * 3),
)
def test_adding_then_measuring_gives_the_same_minutes(start, minutes):
    start = start.replace(tzinfo=BERLIN)
    due = sla.add_business_minutes(start, minutes, WEEKDAYS_9_TO_5, BERLIN)
    assert due >= start
    assert sla.business_seconds_between(start, due, WEEKDAYS_9_TO_5, BERLIN) == minutes * 60
    later = sla.add_business_minutes(start, minutes + 1, WEEKDAYS_9_TO_5, BERLIN)
    assert later > due


pytestmark_db = pytest.mark.django_db


@pytest.fixture
def berlin(workspace):
    workspace.time_zone = "Europe/Berlin"
    workspace.save()
    return workspace


@pytest.mark.django_db
def test_a_ticket_gets_due_times_from_its_priority_policy(berlin, owner, monkeypatch):
    monday_10 = datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
    monkeypatch.setattr(tickets.timezone, "now", lambda: monday_10)
    contact = ContactFactory(workspace=berlin)
    ticket = tickets.open_ticket(
        workspace=berlin, subject="Printer jammed", contact=contact, priority="high", actor=owner
    )
    # High: first response in 4 business hours, resolution in 2 business days.
    ticket.refresh_from_db()
    assert ticket.created_at == monday_10 or abs(ticket.created_at - monday_10) < timedelta(
        minutes=1
    )
    assert ticket.first_response_due_at == datetime(2026, 3, 2, 14, 0, tzinfo=BERLIN)
    assert ticket.resolution_due_at == datetime(2026, 3, 4, 10, 0, tzinfo=BERLIN)
    urgent = tickets.open_ticket(workspace=berlin, subject="Site down", priority="urgent")
    # Urgent counts around the clock.
    assert urgent.first_response_due_at == urgent.created_at + timedelta(hours=1)
    assert (
        Event.objects.for_workspace(berlin)
        .filter(kind="ticket.opened", contact_id=contact.pk)
        .exists()
    )


@pytest.mark.django_db
def test_first_reply_and_solving_stop_the_clocks(berlin, owner):
    ticket = tickets.open_ticket(workspace=berlin, subject="Invoice wrong", priority="urgent")
    Ticket.objects.for_workspace(berlin).filter(pk=ticket.pk).update(
        created_at=ticket.created_at - timedelta(minutes=30)
    )
    ticket.refresh_from_db()
    tickets.reply_to_ticket(ticket=ticket, author=owner, body="Looking", internal=True)
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None  # an internal note is not a response
    tickets.reply_to_ticket(ticket=ticket, author=owner, body="We are on it")
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert 29 * 60 <= ticket.first_response_seconds <= 31 * 60
    tickets.update_ticket(ticket=ticket, status="solved", actor=owner)
    assert ticket.solved_at is not None and ticket.resolution_seconds >= 30 * 60
    [first, resolution] = tickets.sla_targets(ticket)
    assert first.state == "met" and resolution.state == "met"
    # Reopening clears the resolution; the clock runs on from creation.
    tickets.update_ticket(ticket=ticket, status="open", actor=owner)
    assert ticket.solved_at is None and ticket.resolution_seconds is None
    kinds = list(Event.objects.for_workspace(berlin).values_list("kind", flat=True))
    # new -> open (by the reply), open -> solved, solved -> open
    assert kinds.count("ticket.status_changed") == 3 and "ticket.replied" in kinds
    assert kinds.count("ticket.solved") == 1


@pytest.mark.django_db
def test_sla_states_and_their_sql_filter(berlin):
    now = datetime(2026, 3, 2, 12, 0, tzinfo=BERLIN)
    fresh = tickets.open_ticket(workspace=berlin, subject="Fresh", priority="urgent")
    Ticket.objects.for_workspace(berlin).filter(pk=fresh.pk).update(
        created_at=now - timedelta(minutes=10),
        first_response_due_at=now + timedelta(minutes=50),
        first_response_warn_at=now + timedelta(minutes=35),
    )
    risky = tickets.open_ticket(workspace=berlin, subject="Risky", priority="urgent")
    Ticket.objects.for_workspace(berlin).filter(pk=risky.pk).update(
        first_response_due_at=now + timedelta(minutes=5),
        first_response_warn_at=now - timedelta(minutes=10),
    )
    late = tickets.open_ticket(workspace=berlin, subject="Late", priority="urgent")
    Ticket.objects.for_workspace(berlin).filter(pk=late.pk).update(
        first_response_due_at=now - timedelta(minutes=5)
    )
    for ticket in (fresh, risky, late):
        Ticket.objects.for_workspace(berlin).filter(pk=ticket.pk).update(
            resolution_due_at=now + timedelta(days=1), resolution_warn_at=now + timedelta(hours=20)
        )
    all_tickets = Ticket.objects.for_workspace(berlin)
    states = {t.subject: tickets.sla_state(t, now) for t in all_tickets}
    assert states == {"Fresh": "on_track", "Risky": "at_risk", "Late": "breached"}
    for state, subject in (("on_track", "Fresh"), ("at_risk", "Risky"), ("breached", "Late")):
        found = tickets.filter_by_sla(all_tickets, state, now)
        assert list(found.values_list("subject", flat=True)) == [subject]


@pytest.mark.django_db
def test_cross_workspace_references_are_refused(workspace):
    with pytest.raises(tickets.CrossWorkspaceReference):
        tickets.open_ticket(
            workspace=workspace, subject="X", contact=ContactFactory(workspace=WorkspaceFactory())
        )
    with pytest.raises(tickets.TicketInvalid):
        tickets.open_ticket(workspace=workspace, subject="  ")


@pytest.mark.django_db
def test_pages(logged_in, workspace, owner, django_assert_max_num_queries):
    contact = ContactFactory(workspace=workspace, first_name="Lotte")
    response = logged_in.post(
        f"/tickets/new/?contact={contact.pk}",
        {"subject": "Cannot log in", "priority": "high", "channel": "phone", "assignee": owner.pk},
    )
    ticket = Ticket.objects.for_workspace(workspace).get()
    assert response.url == f"/tickets/{ticket.pk}/"
    page = logged_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "First response" in page and "due in" in page
    logged_in.post(f"/tickets/{ticket.pk}/reply/", {"body": "Reset link sent"})
    logged_in.post(
        f"/tickets/{ticket.pk}/update/",
        {"status": "solved", "priority": "high", "assignee": owner.pk},
    )
    page = logged_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "took" in page and "Solved" in page and "Reset link sent" in page
    for i in range(10):
        tickets.open_ticket(workspace=workspace, subject=f"T{i}", contact=contact)
    with django_assert_max_num_queries(12):
        listing = logged_in.get("/tickets/").content.decode()
    assert "T9" in listing and "Cannot log in" not in listing  # solved is not open
    assert "Cannot log in" in logged_in.get("/tickets/", {"status": "all"}).content.decode()
    assert "#" in logged_in.get(f"/contacts/{contact.pk}/").content.decode()


@pytest.mark.django_db
def test_service_level_settings(logged_in, workspace):
    form = {}
    for priority in ("low", "normal", "high", "urgent"):
        form[f"{priority}_first"] = "30"
        form[f"{priority}_resolution"] = "600"
    form["urgent_business"] = "on"
    form["day_0_opens"], form["day_0_closes"] = "08:00", "12:00"
    bad = logged_in.post("/settings/service-levels/", {**form, "day_1_opens": "10:00"})
    assert "Give both times, or neither" in bad.content.decode()
    assert logged_in.post("/settings/service-levels/", form).status_code == 302
    hours = BusinessHours.objects.for_workspace(workspace).get()
    assert hours.schedule == {"0": ["08:00", "12:00"]}
    assert tickets.schedule(workspace) == {0: (time(8, 0), time(12, 0))}
    policy = tickets.policies(workspace)["urgent"]
    assert (policy.first_response_minutes, policy.business_hours) == (30, True)


@pytest.mark.django_db
def test_marketing_and_agency_have_no_tickets(client, workspace):
    for role in (Role.MARKETING, Role.AGENCY):
        user = member(workspace, role)
        client.login(email=user.email, password=PASSWORD)
        assert client.get("/tickets/").status_code == 403
        client.logout()


@pytest.mark.django_db
def test_api(api, workspace, owner):
    contact = ContactFactory(workspace=workspace)
    created = api.post(
        "/api/v1/tickets", {"subject": "Refund", "contact_id": contact.pk, "priority": "urgent"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["channel"] == "api" and body["sla_state"] == "on_track"
    assert body["first_response_due_at"] is not None
    bad = api.post("/api/v1/tickets", {"subject": "", "priority": "someday"})
    assert bad.status_code == 422 and {"subject", "priority"} <= set(bad.json()["error"]["fields"])
    replied = api.post(f"/api/v1/tickets/{body['id']}/replies", {"body": "Refund on its way"})
    assert replied.status_code == 201 and replied.json()["first_responded_at"] is not None
    solved = api.patch(f"/api/v1/tickets/{body['id']}", {"status": "solved"})
    assert solved.json()["status"] == "solved" and solved.json()["resolution_seconds"] is not None
    assert [t["id"] for t in api.get("/api/v1/tickets", status="solved").json()["items"]] == [
        body["id"]
    ]
    assert api.get("/api/v1/tickets", sla="breached").json()["items"] == []
    assert api.get("/api/v1/tickets", sla="nonsense").status_code == 422
    foreign = ContactFactory(workspace=WorkspaceFactory())
    assert (
        api.post("/api/v1/tickets", {"subject": "X", "contact_id": foreign.pk}).status_code == 422
    )


@pytest.mark.django_db
def test_tickets_take_custom_fields_rules_and_tasks(logged_in, api, workspace, owner):
    from patron.crm import assignment, services
    from patron.crm.custom_fields import CustomFieldInvalid
    from patron.crm.models import Task

    services.create_custom_field(
        workspace=workspace,
        object_type="ticket",
        label="Product",
        field_type="single_select",
        options=["Bikes", "Parts"],
    )
    agent = member(workspace, Role.SUPPORT)
    assignment.save_rule(
        workspace=workspace,
        object_type="ticket",
        name="Urgent to the on-call agent",
        conditions=[{"field": "priority", "value": "urgent"}],
        strategy="user",
        user=agent,
    )
    with pytest.raises(CustomFieldInvalid):
        tickets.open_ticket(workspace=workspace, subject="X", custom={"product": "Cars"})
    urgent = tickets.open_ticket(
        workspace=workspace, subject="Brakes", priority="urgent", custom={"product": "bikes"}
    )
    assert urgent.assignee == agent and urgent.custom == {"product": "Bikes"}
    calm = tickets.open_ticket(workspace=workspace, subject="Catalogue", priority="low")
    assert calm.assignee is None
    via_api = api.post("/api/v1/tickets", {"subject": "Bell", "custom": {"product": "Parts"}})
    assert via_api.json()["custom"] == {"product": "Parts"}
    page = logged_in.get("/tickets/new/").content.decode()
    assert 'name="cf_product"' in page
    logged_in.post(
        f"/tasks/new/?ticket={urgent.pk}", {"title": "Order brake pads", "priority": "normal"}
    )
    task = Task.objects.for_workspace(workspace).get()
    assert task.ticket == urgent
    assert "Order brake pads" in logged_in.get(f"/tickets/{urgent.pk}/").content.decode()
    assert "Bikes" in logged_in.get(f"/tickets/{urgent.pk}/").content.decode()


@pytest.mark.django_db
def test_ticket_export_follows_the_list_filters(logged_in, client, workspace):
    import csv
    import io

    tickets.open_ticket(workspace=workspace, subject="=cmd|calc", priority="urgent")
    solved = tickets.open_ticket(workspace=workspace, subject="Done already")
    tickets.update_ticket(ticket=solved, status="solved")
    response = logged_in.get("/tickets/export/", {"status": "open"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "subject", "status"]
    assert [row[1] for row in rows[1:]] == ["'=cmd|calc"]
    support = member(workspace, Role.SUPPORT)
    client.logout()
    client.login(email=support.email, password=PASSWORD)
    assert client.get("/tickets/export/").status_code == 403  # support may not export


# --- Reopening, solving, priority changes, references ---------------------------------


@pytest.fixture
def clock(monkeypatch):
    """A settable "now" for the services (timezone.now is looked up at call time)."""
    from django.utils import timezone as django_timezone

    class Clock:
        now = datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN)  # a Monday

        def advance(self, **delta):
            self.now += timedelta(**delta)

    current = Clock()
    monkeypatch.setattr(django_timezone, "now", lambda: current.now)
    return current


@pytest.mark.django_db
def test_resolution_is_the_whole_wait_and_reopening_keeps_the_target(berlin, owner, clock):
    ticket = tickets.open_ticket(workspace=berlin, subject="Wrong size", priority="high")
    # High: resolution within 2 business days (16 h of 9-to-5), from Monday 9:00.
    assert ticket.resolution_due_at == datetime(2026, 3, 3, 17, 0, tzinfo=BERLIN)
    clock.advance(hours=3)  # Monday 12:00
    tickets.update_ticket(ticket=ticket, status="solved", actor=owner)
    assert ticket.resolution_seconds == 3 * 3600
    solved = Event.objects.for_workspace(berlin).get(kind="ticket.solved")
    assert solved.properties["resolution_seconds"] == 3 * 3600
    assert solved.properties["resolution_met"] is True

    clock.advance(hours=1)  # reopened Monday 13:00
    tickets.update_ticket(ticket=ticket, status="open", actor=owner)
    assert (ticket.solved_at, ticket.closed_at, ticket.resolution_seconds) == (None, None, None)
    assert ticket.resolution_due_at == datetime(2026, 3, 3, 17, 0, tzinfo=BERLIN)

    clock.advance(days=1, hours=1)  # Tuesday 14:00: 8 h on Monday + 5 h on Tuesday
    tickets.update_ticket(ticket=ticket, status="closed", actor=owner)
    ticket.refresh_from_db()
    assert ticket.resolution_seconds == 13 * 3600
    assert ticket.closed_at == ticket.solved_at == clock.now
    assert Event.objects.for_workspace(berlin).filter(kind="ticket.solved").count() == 2
    # Reopened past its target, a ticket is breached.
    clock.advance(days=1)  # Wednesday 14:00
    tickets.update_ticket(ticket=ticket, status="open", actor=owner)
    assert tickets.sla_state(ticket, clock.now) == "breached"


@pytest.mark.django_db
def test_closing_a_solved_ticket_keeps_its_resolution(berlin, owner, clock):
    ticket = tickets.open_ticket(workspace=berlin, subject="Receipt", priority="normal")
    clock.advance(minutes=30)
    tickets.update_ticket(ticket=ticket, status="solved", actor=owner)
    solved_at = ticket.solved_at
    clock.advance(days=3)
    tickets.update_ticket(ticket=ticket, status="closed", actor=owner)
    assert ticket.solved_at == solved_at and ticket.resolution_seconds == 30 * 60
    assert ticket.closed_at == clock.now
    assert Event.objects.for_workspace(berlin).filter(kind="ticket.solved").count() == 1
    changes = Event.objects.for_workspace(berlin).filter(kind="ticket.status_changed")
    assert [(e.properties["from"], e.properties["to"]) for e in changes.order_by("id")] == [
        ("new", "solved"),
        ("solved", "closed"),
    ]
    assert changes.order_by("id").last().actor == owner


@pytest.mark.django_db
def test_a_new_priority_sets_new_due_times(berlin, owner, clock):
    ticket = tickets.open_ticket(workspace=berlin, subject="Slow page", priority="low")
    # Low: first response within 2 business days.
    assert ticket.first_response_due_at == datetime(2026, 3, 3, 17, 0, tzinfo=BERLIN)
    clock.advance(minutes=20)
    tickets.update_ticket(ticket=ticket, priority="urgent", actor=owner)
    # Urgent counts around the clock, from the ticket's creation.
    assert ticket.first_response_due_at == datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
    assert ticket.resolution_due_at == datetime(2026, 3, 2, 17, 0, tzinfo=BERLIN)
    assert ticket.first_response_warn_at == datetime(2026, 3, 2, 9, 45, tzinfo=BERLIN)
    with pytest.raises(tickets.TicketInvalid) as error:
        tickets.update_ticket(ticket=ticket, priority="whenever")
    assert error.value.field == "priority"


@pytest.mark.django_db
def test_first_response_in_business_hours_skips_the_night(berlin, owner, clock):
    clock.now = datetime(2026, 3, 2, 16, 30, tzinfo=BERLIN)  # Monday, half an hour to close
    ticket = tickets.open_ticket(workspace=berlin, subject="Label printer", priority="normal")
    clock.now = datetime(2026, 3, 3, 9, 15, tzinfo=BERLIN)  # Tuesday morning
    tickets.reply_to_ticket(ticket=ticket, author=owner, body="<p>On it</p><script>x()</script>")
    assert ticket.first_response_seconds == 45 * 60
    assert ticket.first_responded_at == clock.now
    reply = ticket.replies.get()
    assert "<script>" not in reply.body and "On it" in reply.body
    # A second reply does not move the first response.
    clock.advance(hours=1)
    tickets.reply_to_ticket(ticket=ticket, author=owner, body="Fixed")
    ticket.refresh_from_db()
    assert ticket.first_response_seconds == 45 * 60


@pytest.mark.django_db
def test_only_members_answer_and_only_own_records_are_linked(workspace, owner):
    other = WorkspaceFactory()
    stranger = member(other, Role.OWNER)
    ticket = tickets.open_ticket(workspace=workspace, subject="Refund")
    with pytest.raises(tickets.CrossWorkspaceReference):
        tickets.reply_to_ticket(ticket=ticket, author=stranger, body="Hi")
    assert not ticket.replies.exists()
    from tests.factories import CompanyFactory

    with pytest.raises(tickets.CrossWorkspaceReference):
        tickets.update_ticket(ticket=ticket, contact=ContactFactory(workspace=other))
    with pytest.raises(tickets.CrossWorkspaceReference):
        tickets.update_ticket(ticket=ticket, company=CompanyFactory(workspace=other))
    with pytest.raises(tickets.CrossWorkspaceReference):
        tickets.update_ticket(ticket=ticket, assignee=stranger)
    with pytest.raises(tickets.CrossWorkspaceReference):
        tickets.open_ticket(workspace=workspace, subject="X", assignee=stranger)
    with pytest.raises(tickets.TicketInvalid) as error:
        tickets.open_ticket(workspace=workspace, subject="X", channel="pigeon")
    assert error.value.field == "channel"
    ticket.refresh_from_db()
    assert ticket.contact is None and ticket.company is None and ticket.assignee is None


@pytest.mark.django_db
def test_editing_a_ticket(workspace, owner):
    from tests.factories import CompanyFactory

    acme = CompanyFactory(workspace=workspace, name="Acme Ltd")
    ana = ContactFactory(workspace=workspace, company=acme)
    ticket = tickets.open_ticket(workspace=workspace, subject="Typo", description="Old")
    tickets.update_ticket(
        ticket=ticket,
        actor=owner,
        subject="  Typo on the invoice ",
        description="New <b>text</b>",
        contact=ana,
        company=None,
        channel="email",
        assignee=owner,
    )
    ticket.refresh_from_db()
    assert ticket.subject == "Typo on the invoice"
    assert ticket.company == acme  # the contact's company, as when opening
    assert (ticket.contact, ticket.channel, ticket.assignee) == (ana, "email", owner)
    assert "<b>text</b>" in ticket.description
    tickets.update_ticket(ticket=ticket, assignee=None, contact=None)
    ticket.refresh_from_db()
    assert ticket.assignee is None and ticket.contact is None and ticket.company == acme
    with pytest.raises(tickets.TicketInvalid):
        tickets.update_ticket(ticket=ticket, subject=" ")


@pytest.mark.django_db
def test_default_policies_are_created_once_on_first_use(workspace):
    from patron.crm.models import SlaPolicy

    assert not SlaPolicy.objects.for_workspace(workspace).exists()
    first = tickets.policies(workspace)
    assert set(first) == {"low", "normal", "high", "urgent"}
    assert first["urgent"].business_hours is False and first["normal"].business_hours is True
    tickets.policies(workspace)
    assert SlaPolicy.objects.for_workspace(workspace).count() == 4


@pytest.mark.django_db
def test_saving_service_levels_checks_and_audits(workspace, owner):
    from patron.core.models import AuditEntry

    targets = {
        priority: tickets.Target(
            first_response_minutes=60, resolution_minutes=600, business_hours=True
        )
        for priority in ("low", "normal", "high", "urgent")
    }
    monday_morning = {0: (time(9, 0), time(10, 0))}
    with pytest.raises(tickets.TicketInvalid) as error:
        tickets.save_service_levels(workspace=workspace, targets=targets, schedule={})
    assert error.value.field == "schedule"
    with pytest.raises(tickets.TicketInvalid) as error:
        tickets.save_service_levels(
            workspace=workspace, targets=targets, schedule={0: (time(10, 0), time(9, 0))}
        )
    assert error.value.field == "day_0_closes"
    # One open hour a week: a year of it is 52 hours, less than a 100-hour target.
    long = {**targets, "low": tickets.Target(60, 100 * 60, True)}
    with pytest.raises(tickets.TicketInvalid) as error:
        tickets.save_service_levels(workspace=workspace, targets=long, schedule=monday_morning)
    assert error.value.field == "low_resolution" and "3120" in str(error.value)
    around_the_clock = {**targets, "low": tickets.Target(60, 100 * 60, False)}
    tickets.save_service_levels(
        workspace=workspace, targets=around_the_clock, schedule=monday_morning, actor=owner
    )
    assert tickets.policies(workspace)["low"].resolution_minutes == 6000
    assert tickets.schedule(workspace) == monday_morning
    entry = AuditEntry.objects.get(action="workspace.settings_changed", target="service_levels")
    assert entry.actor == owner and entry.data["targets"]["low"] == [60, 6000, False]


@pytest.mark.django_db
def test_status_changes_read_well_on_the_timeline(workspace, owner):
    from patron.activity.templatetags.activity import event_summary

    contact = ContactFactory(workspace=workspace)
    ticket = tickets.open_ticket(workspace=workspace, subject="Broken bell", contact=contact)
    tickets.update_ticket(ticket=ticket, status="pending", actor=owner)
    event = Event.objects.for_workspace(workspace).get(kind="ticket.status_changed")
    assert event.contact_id == contact.pk
    assert event_summary(event.properties) == "Broken bell · status: New → Pending"
