"""Ticket pages: the list and its views, opening, editing, the SLA box; company pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from patron.activity.models import Event
from patron.core.roles import Role
from patron.crm import tickets
from patron.crm.models import Ticket
from tests.conftest import member
from tests.factories import (
    PASSWORD,
    CompanyFactory,
    ContactFactory,
    TicketFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def _breach(ticket: Ticket) -> None:
    past = timezone.now() - timedelta(hours=1)
    Ticket.objects.for_workspace(ticket.workspace_id).filter(pk=ticket.pk).update(
        first_response_due_at=past, first_response_warn_at=past - timedelta(hours=1)
    )


def _age(ticket: Ticket, minutes: int) -> None:
    """Make the ticket as old as given, its due times moving with it."""
    shift = timedelta(minutes=minutes)
    Ticket.objects.for_workspace(ticket.workspace_id).filter(pk=ticket.pk).update(
        **{
            name: F(name) - shift
            for name in (
                "created_at",
                "first_response_due_at",
                "first_response_warn_at",
                "resolution_due_at",
                "resolution_warn_at",
            )
        }
    )


def test_the_list_filters_and_its_views(logged_in, workspace, owner, django_assert_num_queries):
    agent = member(workspace, Role.SUPPORT, email="sam@acme.example")
    mine = TicketFactory(workspace=workspace, subject="Mine: printer", assignee=owner)
    theirs = TicketFactory(workspace=workspace, subject="Theirs: router", assignee=agent)
    nobodys = TicketFactory(workspace=workspace, subject="Nobody: login", priority="urgent")
    late = TicketFactory(workspace=workspace, subject="Late: refund", assignee=agent)
    _breach(late)
    done = TicketFactory(workspace=workspace, subject="Done: invoice", assignee=owner)
    tickets.update_ticket(ticket=done, status="solved")

    def subjects(**params):
        page = logged_in.get("/tickets/", params).content.decode()
        all_subjects = [mine, theirs, nobodys, late, done]
        return {t.subject for t in all_subjects if t.subject in page}

    assert subjects() == {mine.subject, theirs.subject, nobodys.subject, late.subject}
    assert subjects(assignee="me") == {mine.subject}
    assert subjects(assignee="none") == {nobodys.subject}
    assert subjects(assignee=str(agent.pk)) == {theirs.subject, late.subject}
    assert subjects(priority="urgent") == {nobodys.subject}
    assert subjects(sla="breached") == {late.subject}
    assert subjects(sla="on_track") == {mine.subject, theirs.subject, nobodys.subject}
    assert subjects(status="solved") == {done.subject}
    assert subjects(status="all", q="INVOICE") == {done.subject}
    # Unknown values fall back to no filter rather than an error.
    assert subjects(assignee="999999", priority="someday", sla="x") == subjects()
    page = logged_in.get("/tickets/", {"sla": "breached"}).content.decode()
    assert "overdue by" in page and "Breached" in page

    for _ in range(15):
        TicketFactory(workspace=workspace, contact=ContactFactory(workspace=workspace))
    # Session, user, membership with its workspace, members for the filter, one
    # page of tickets with contacts, companies and assignees, the unread count,
    # the ticket custom fields and the saved views.
    with django_assert_num_queries(8):
        response = logged_in.get("/tickets/", {"status": "open"})
    assert response.content.decode().count("/tickets/") > 15


def test_opening_a_ticket_for_a_company(logged_in, workspace, owner):
    acme = CompanyFactory(workspace=workspace, name="Wheels & Co")
    page = logged_in.get(f"/companies/{acme.pk}/").content.decode()
    assert f"/tickets/new/?company={acme.pk}" in page and "No tickets." in page
    form = logged_in.get(f"/tickets/new/?company={acme.pk}").content.decode()
    assert f'<option value="{acme.pk}" selected>' in form
    response = logged_in.post(
        f"/tickets/new/?company={acme.pk}",
        {
            "subject": "Bulk order damaged",
            "priority": "high",
            "channel": "email",
            "company": acme.pk,
        },
    )
    ticket = Ticket.objects.for_workspace(workspace).get()
    assert response.url == f"/tickets/{ticket.pk}/"
    assert ticket.company == acme and ticket.contact is None and ticket.created_by == owner
    page = logged_in.get(f"/companies/{acme.pk}/").content.decode()
    assert "Bulk order damaged" in page
    # The company's timeline shows the ticket's events though it names no contact.
    assert "Ticket opened" in page


def test_opening_refuses_bad_input_with_messages(logged_in, workspace):
    foreign = ContactFactory(workspace=WorkspaceFactory())
    response = logged_in.post(
        "/tickets/new/",
        {"subject": "", "priority": "someday", "channel": "manual", "contact": foreign.pk},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in page
    assert "Select a valid choice" in page
    assert not Ticket.objects.for_workspace(workspace).exists()
    assert logged_in.get(f"/tickets/new/?contact={foreign.pk}").status_code == 404


def test_editing_a_ticket(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace, first_name="Lena", last_name="Berg")
    ticket = TicketFactory(workspace=workspace, subject="Old subject", priority="low")
    page = logged_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert f"/tickets/{ticket.pk}/edit/" in page
    form = logged_in.get(f"/tickets/{ticket.pk}/edit/").content.decode()
    assert 'value="Old subject"' in form
    bad = logged_in.post(
        f"/tickets/{ticket.pk}/edit/", {"subject": "", "priority": "low", "channel": "manual"}
    )
    assert "This field is required." in bad.content.decode()
    response = logged_in.post(
        f"/tickets/{ticket.pk}/edit/",
        {
            "subject": "New subject",
            "description": "Details <script>alert(1)</script>",
            "contact": contact.pk,
            "priority": "urgent",
            "channel": "chat",
            "assignee": owner.pk,
        },
    )
    assert response.url == f"/tickets/{ticket.pk}/"
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.contact, ticket.priority, ticket.channel) == (
        "New subject",
        contact,
        "urgent",
        "chat",
    )
    assert "<script>" not in ticket.description
    assert ticket.first_response_due_at == ticket.created_at + timedelta(hours=1)
    detail = logged_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "Lena Berg" in detail and "assigned to Olivia Owner" in detail
    assert "first response within 1 h 0 min" in detail and "around the clock" in detail


def test_the_sla_box_shows_targets_due_and_met_times(logged_in, workspace, owner):
    ticket = TicketFactory(workspace=workspace, subject="Chain broke", priority="urgent")
    _age(ticket, 20)
    page = logged_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "due in 39 min" in page or "due in 40 min" in page
    assert "Urgent: first response within 1 h 0 min, resolution within 8 h 0 min" in page
    logged_in.post(f"/tickets/{ticket.pk}/reply/", {"body": "A mechanic is on the way"})
    page = logged_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "took 20 min" in page
    _breach(ticket)  # no effect any more: the first response was in time
    logged_in.post(f"/tickets/{ticket.pk}/update/", {"status": "solved", "priority": "urgent"})
    ticket.refresh_from_db()
    assert ticket.status == "solved" and ticket.assignee is None
    page = logged_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert page.count("took 20 min") == 2  # response and resolution


def test_the_update_form_reports_bad_input(logged_in, workspace):
    ticket = TicketFactory(workspace=workspace)
    response = logged_in.post(
        f"/tickets/{ticket.pk}/update/", {"status": "lost", "priority": "normal"}, follow=True
    )
    assert "Choose a status, a priority and a member to assign." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "new"
    response = logged_in.post(f"/tickets/{ticket.pk}/reply/", {"body": ""}, follow=True)
    assert "Write a message" in response.content.decode()


def test_who_may_see_and_edit_tickets(client, workspace):
    ticket = TicketFactory(workspace=workspace)
    for role, allowed in (
        (Role.SUPPORT, True),
        (Role.SALES, True),
        (Role.ADMIN, True),
        (Role.MARKETING, False),
        (Role.AGENCY, False),
    ):
        user = member(workspace, role)
        client.login(email=user.email, password=PASSWORD)
        for path in ("/tickets/", f"/tickets/{ticket.pk}/", f"/tickets/{ticket.pk}/edit/"):
            assert (client.get(path).status_code == 200) is allowed, (role, path)
        client.logout()


def test_service_levels_are_for_owners_and_admins(client, workspace):
    for role, allowed in ((Role.ADMIN, True), (Role.SUPPORT, False), (Role.SALES, False)):
        user = member(workspace, role)
        client.login(email=user.email, password=PASSWORD)
        assert (client.get("/settings/service-levels/").status_code == 200) is allowed
        client.logout()


def test_service_level_targets_must_fit_the_hours(logged_in, workspace):
    form = {"day_0_opens": "09:00", "day_0_closes": "10:00"}
    for priority in ("low", "normal", "high", "urgent"):
        form[f"{priority}_first"] = "30"
        form[f"{priority}_resolution"] = "600"
        form[f"{priority}_business"] = "on"
    form["low_resolution"] = "6000"
    page = logged_in.post("/settings/service-levels/", form).content.decode()
    assert "a target can be at most 3120 minutes" in page
    assert (
        "Open at least one day a week."
        in logged_in.post(
            "/settings/service-levels/", {**form, "day_0_opens": "", "day_0_closes": ""}
        ).content.decode()
    )


def test_ticket_events_on_the_contact_timeline(logged_in, workspace, owner):
    contact = ContactFactory(workspace=workspace)
    ticket = TicketFactory(workspace=workspace, subject="Saddle squeaks", contact=contact)
    tickets.reply_to_ticket(ticket=ticket, author=owner, body="Grease it")
    tickets.update_ticket(ticket=ticket, status="solved", actor=owner)
    page = logged_in.get(f"/contacts/{contact.pk}/").content.decode()
    for label in ("Ticket opened", "Ticket answered", "Ticket status changed", "Ticket solved"):
        assert label in page
    assert "status: Open → Solved" in page
    assert Event.objects.for_workspace(workspace).filter(contact_id=contact.pk).count() == 5
