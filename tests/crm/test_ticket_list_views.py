"""The ticket list: saved views, columns (custom fields too), bulk actions, API filters."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client

from patron.activity.models import Event
from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.crm import services, tickets
from patron.crm.models import SavedView, Ticket, TicketStatus
from tests.conftest import member
from tests.factories import ContactFactory, TicketFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def _head(page: str) -> str:
    return page[page.index('id="tickets"') : page.index("</thead>")]


@pytest.fixture
def desk(workspace, owner):
    services.create_custom_field(
        workspace=workspace,
        object_type="ticket",
        label="Product",
        field_type="single_select",
        options=["Bikes", "Parts"],
    )
    agent = member(workspace, Role.SUPPORT, email="ola@acme.example")
    contact = ContactFactory(workspace=workspace, first_name="Piotr", email="piotr@example.pl")
    return {
        "agent": agent,
        "contact": contact,
        "gears": TicketFactory(
            workspace=workspace,
            subject="Gears slipping",
            contact=contact,
            priority="urgent",
            custom={"product": "Bikes"},
        ),
        "brakes": TicketFactory(
            workspace=workspace, subject="Brake pads", assignee=agent, custom={"product": "Parts"}
        ),
        "bell": TicketFactory(workspace=workspace, subject="Bell missing", assignee=owner),
    }


def _subjects(client: Client, **params) -> set[str]:
    page = client.get("/tickets/", params).content.decode()
    found = {"Gears slipping", "Brake pads", "Bell missing"}
    return {subject for subject in found if f">{subject}</a>" in page}


def test_custom_field_filters_sort_and_columns(logged_in, desk):
    assert _subjects(logged_in, cf_product="Bikes") == {"Gears slipping"}
    assert _subjects(logged_in, cond_field="product", cond_op="empty") == {"Bell missing"}
    page = logged_in.get("/tickets/", {"sort": "-priority"}).content.decode()
    assert page.index("Gears slipping") < page.index("Brake pads")
    page = logged_in.get("/tickets/", {"sort": "created"}).content.decode()
    assert page.index("Gears slipping") < page.index("Bell missing")
    default = _head(logged_in.get("/tickets/").content.decode())
    assert '<th scope="col">SLA</th>' in default and '<th scope="col">Product</th>' not in default
    page = logged_in.get("/tickets/", {"col": ["cf_product", "channel", "resolution_due"]})
    html = page.content.decode()
    header = _head(html)
    assert '<th scope="col">Product</th>' in header and "Resolution due" in header
    assert '<th scope="col">SLA</th>' not in header
    assert "<td>Bikes</td>" in html and "<td>Entered by hand</td>" in html
    assert "cols=cf_product%2Cchannel%2Cresolution_due" in html  # kept in the list's URL


def test_saved_views_and_built_in_views(logged_in, workspace, owner, desk):
    logged_in.post(
        "/tickets/views/",
        {
            "name": "Bike queue",
            "shared": "on",
            "query_string": "status=open&cf_product=Bikes&cols=cf_product,priority&sort=-priority",
        },
    )
    view = SavedView.objects.for_workspace(workspace).get(object_type="ticket")
    assert view.shared and view.query == {
        "status": "open",
        "cf_product": "Bikes",
        "cols": "cf_product,priority",
        "sort": "-priority",
    }
    assert _subjects(logged_in, view=view.pk) == {"Gears slipping"}
    header = _head(logged_in.get("/tickets/", {"view": view.pk}).content.decode())
    assert '<th scope="col">Product</th>' in header
    # Shared: the agent sees it and may use it; only its owner (or an admin) deletes it.
    agent = Client()
    agent.force_login(desk["agent"])
    assert "Bike queue" in agent.get("/tickets/").content.decode()
    assert _subjects(agent, view=view.pk) == {"Gears slipping"}
    agent.post(f"/tickets/views/{view.pk}/delete/")
    assert SavedView.objects.for_workspace(workspace).filter(pk=view.pk).exists()
    # The built-in views stay, by status, assignee and SLA state.
    page = logged_in.get("/tickets/", {"status": "open", "assignee": "none"}).content.decode()
    assert 'href="?status=open&amp;assignee=none">Unassigned' in page.replace(
        ' active" aria-current="page', ""
    )
    assert 'active" aria-current="page" href="?status=open&amp;assignee=none"' in page
    assert _subjects(logged_in, status="open", assignee="me") == {"Bell missing"}


def test_bulk_assign_and_priority(logged_in, workspace, owner, desk):
    ids = [desk["gears"].pk, desk["bell"].pk]
    response = logged_in.post(
        "/tickets/bulk/",
        {"ids": ids, "action": "apply", "change": "assign", "owner": desk["agent"].pk},
        follow=True,
    )
    assert "2 records changed." in response.content.decode()
    found = Ticket.objects.for_workspace(workspace)
    assert set(found.filter(pk__in=ids).values_list("assignee_id", flat=True)) == {desk["agent"].pk}
    assigned_at = found.get(pk=desk["gears"].pk).updated_at
    logged_in.post(
        "/tickets/bulk/",
        {"ids": ids, "action": "apply", "change": "priority", "priority": "urgent"},
    )
    bell = found.get(pk=desk["bell"].pk)
    assert bell.priority == "urgent"
    # Due times counted again from creation by the urgent policy (1 h and 8 h, any hour).
    assert bell.first_response_due_at == bell.created_at + timedelta(hours=1)
    assert bell.resolution_due_at == bell.created_at + timedelta(hours=8)
    assert bell.resolution_warn_at == bell.created_at + timedelta(hours=6)
    same = found.get(pk=desk["gears"].pk)  # urgent already: left alone
    assert same.updated_at == assigned_at
    bad = logged_in.post(
        "/tickets/bulk/",
        {"ids": ids, "action": "apply", "change": "priority", "priority": "asap"},
        follow=True,
    )
    assert "Choose a priority." in bad.content.decode()


def test_bulk_status_keeps_the_sla_clock_and_records_events(logged_in, workspace, owner, desk):
    ids = [desk["gears"].pk, desk["brakes"].pk]
    tickets.update_ticket(ticket=desk["brakes"], status="pending")
    Event.objects.for_workspace(workspace).filter(kind__startswith="ticket.").delete()
    logged_in.post(
        "/tickets/bulk/", {"ids": ids, "action": "apply", "change": "status", "status": "solved"}
    )
    found = Ticket.objects.for_workspace(workspace)
    for ticket in found.filter(pk__in=ids):
        assert ticket.status == TicketStatus.SOLVED
        assert ticket.solved_at is not None and ticket.closed_at is None
        assert ticket.resolution_seconds is not None
    events = Event.objects.for_workspace(workspace)
    changed = events.filter(kind="ticket.status_changed").order_by("source_id")
    assert {(e.source_id, e.properties["from"], e.properties["to"]) for e in changed} == {
        (str(desk["gears"].pk), "new", "solved"),
        (str(desk["brakes"].pk), "pending", "solved"),
    }
    assert {e.actor_id for e in changed} == {owner.pk}
    gears_event = changed.get(source_id=str(desk["gears"].pk))
    assert gears_event.contact_id == desk["contact"].pk
    assert gears_event.properties["changes"] == {"status": ["New", "Solved"]}
    solved = events.filter(kind="ticket.solved")
    assert solved.count() == 2 and all(e.properties["resolution_met"] for e in solved)

    # Closing keeps the first solved time; reopening clears them, as on the ticket's page.
    first_solved = found.get(pk=desk["gears"].pk).solved_at
    logged_in.post(
        "/tickets/bulk/", {"ids": ids, "action": "apply", "change": "status", "status": "closed"}
    )
    gears = found.get(pk=desk["gears"].pk)
    assert gears.closed_at is not None and gears.solved_at == first_solved
    assert events.filter(kind="ticket.solved").count() == 2  # not solved again
    logged_in.post(
        "/tickets/bulk/", {"ids": ids, "action": "apply", "change": "status", "status": "open"}
    )
    gears = found.get(pk=desk["gears"].pk)
    assert (gears.status, gears.solved_at, gears.closed_at, gears.resolution_seconds) == (
        "open",
        None,
        None,
        None,
    )
    assert events.filter(kind="ticket.status_changed").count() == 6


def test_bulk_delete_and_every_match_confirmed(logged_in, workspace, owner, desk):
    response = logged_in.post(
        "/tickets/bulk/", {"ids": [desk["bell"].pk], "action": "delete"}, follow=True
    )
    assert "1 record deleted." in response.content.decode()
    form = {
        "scope": "all",
        "action": "apply",
        "change": "assign",
        "owner": "none",
        "query_string": "status=open&cf_product=Parts",
    }
    page = logged_in.post("/tickets/bulk/", form).content.decode()
    assert "Change 1 record" in page and "Assign to nobody" in page
    assert Ticket.objects.for_workspace(workspace).get(pk=desk["brakes"].pk).assignee_id
    logged_in.post("/tickets/bulk/", {**form, "confirmed": "yes"})
    assert Ticket.objects.for_workspace(workspace).get(pk=desk["brakes"].pk).assignee_id is None
    delete = {"scope": "all", "action": "delete", "query_string": "status=all"}
    page = logged_in.post("/tickets/bulk/", delete).content.decode()
    assert "Delete 2 records" in page
    logged_in.post("/tickets/bulk/", {**delete, "confirmed": "yes"})
    assert not Ticket.objects.for_workspace(workspace).exists()
    # Each delete is in the audit log: who, how many, which.
    from patron.core.models import AuditEntry

    entries = AuditEntry.objects.filter(workspace=workspace, action="records.deleted")
    assert [(e.target, e.data["count"], e.actor_id) for e in entries.order_by("pk")] == [
        ("ticket: 1", 1, owner.pk),
        ("ticket: 2", 2, owner.pk),
    ]
    assert entries.order_by("pk")[0].data["named"] == [f"#{desk['bell'].pk} {desk['bell'].subject}"]
    log = logged_in.get("/settings/audit-log/").content.decode()
    assert "Records deleted" in log and "ticket: 2" in log


def test_bulk_never_touches_another_workspace(logged_in, workspace, owner, desk):
    elsewhere = WorkspaceFactory()
    stranger = member(elsewhere, Role.OWNER)
    foreign = TicketFactory(workspace=elsewhere, subject="Foreign", assignee=stranger)
    before = {
        k: v for k, v in Ticket.objects.unscoped().filter(pk=foreign.pk).values().get().items()
    }
    for change, value in (("assign", {"owner": "none"}), ("status", {"status": "closed"})):
        logged_in.post(
            "/tickets/bulk/", {"ids": [foreign.pk], "action": "apply", "change": change, **value}
        )
    logged_in.post(
        "/tickets/bulk/",
        {"ids": [foreign.pk], "action": "apply", "change": "priority", "priority": "low"},
    )
    logged_in.post("/tickets/bulk/", {"ids": [foreign.pk], "action": "delete"})
    export = logged_in.post(
        "/tickets/bulk/", {"ids": [foreign.pk], "action": "apply", "change": "export"}
    )
    assert len(_csv(export)) == 1
    assert Ticket.objects.unscoped().filter(pk=foreign.pk).values().get() == before
    assert not Event.objects.unscoped().filter(workspace=elsewhere, kind="ticket.status_changed")
    # Nor can tickets be given to someone outside the workspace.
    refused = logged_in.post(
        "/tickets/bulk/",
        {"ids": [desk["bell"].pk], "action": "apply", "change": "assign", "owner": stranger.pk},
        follow=True,
    )
    assert "Choose a member to assign." in refused.content.decode()


def test_permissions(client, workspace, desk):
    marketing = member(workspace, Role.MARKETING)  # no tickets
    client.force_login(marketing)
    assert client.get("/tickets/").status_code == 403
    assert (
        client.post("/tickets/bulk/", {"ids": [desk["bell"].pk], "action": "delete"}).status_code
        == 403
    )
    assert client.post("/tickets/views/", {"name": "x"}).status_code == 403
    assert Ticket.objects.for_workspace(workspace).filter(pk=desk["bell"].pk).exists()
    client.force_login(desk["agent"])  # support: works tickets, exports nothing
    page = client.get("/tickets/").content.decode()
    assert 'id="ticket-bulk-form"' in page and "Export to CSV" not in page
    refused = client.post(
        "/tickets/bulk/",
        {"ids": [desk["bell"].pk], "action": "apply", "change": "export"},
        follow=True,
    )
    assert "may not export" in refused.content.decode()


def test_export_of_the_ticked_tickets_is_audited(logged_in, workspace, desk):
    TicketFactory(workspace=workspace, subject="@SUM(1+1)")
    response = logged_in.post(
        "/tickets/bulk/",
        {"ids": [desk["gears"].pk, desk["bell"].pk], "action": "apply", "change": "export"},
    )
    rows = _csv(response)
    assert rows[0][:2] == ["id", "subject"] and "custom.product" in rows[0]
    assert sorted(row[1] for row in rows[1:]) == ["Bell missing", "Gears slipping"]
    listed = _csv(logged_in.get("/tickets/export/", {"q": "SUM"}))
    assert [row[1] for row in listed[1:]] == ["'@SUM(1+1)"]
    assert (
        AuditEntry.objects.filter(
            workspace=workspace, action="data.exported", target="tickets"
        ).count()
        == 2
    )


def test_api_filters_like_the_list(api, workspace, owner, desk):
    tickets.update_ticket(ticket=desk["bell"], status="solved")

    def subjects(**params) -> set[str]:
        response = api.get("/api/v1/tickets", **params)
        assert response.status_code == 200, response.content
        return {item["subject"] for item in response.json()["items"]}

    assert subjects(unsolved=True) == {"Gears slipping", "Brake pads"}
    assert subjects(unsolved=False) == {"Bell missing"}
    assert subjects(unassigned=True) == {"Gears slipping"}
    assert subjects(q="brake") == {"Brake pads"}
    assert subjects(**{"custom.product": "Bikes"}) == {"Gears slipping"}
    unknown = api.get("/api/v1/tickets", **{"custom.colour": "red"})
    assert unknown.status_code == 422
