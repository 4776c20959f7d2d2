"""The tickets API: filters, create, update, replies, delete, errors."""

from __future__ import annotations

import pytest

from patron.core.roles import Role
from patron.crm import tickets
from patron.crm.models import Ticket, TicketReply
from tests.conftest import member
from tests.factories import CompanyFactory, ContactFactory, TicketFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_list_filters(api, workspace, owner):
    contact = ContactFactory(workspace=workspace)
    agent = member(workspace, Role.SUPPORT)
    first = TicketFactory(workspace=workspace, contact=contact, priority="high")
    second = TicketFactory(workspace=workspace, assignee=agent)
    third = TicketFactory(workspace=workspace, priority="high", assignee=agent)
    tickets.update_ticket(ticket=third, status="pending")

    def ids(**params):
        response = api.get("/api/v1/tickets", **params)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [third.pk, second.pk, first.pk]
    assert ids(priority="high") == [third.pk, first.pk]
    assert ids(assignee_id=agent.pk) == [third.pk, second.pk]
    assert ids(contact_id=contact.pk) == [first.pk]
    assert ids(status="pending") == [third.pk]
    assert ids(sla="on_track") == [third.pk, second.pk, first.pk]
    page = api.get("/api/v1/tickets", limit=2).json()
    assert [item["id"] for item in page["items"]] == [third.pk, second.pk]
    rest = api.get("/api/v1/tickets", limit=2, cursor=page["next_cursor"]).json()
    assert [item["id"] for item in rest["items"]] == [first.pk] and rest["next_cursor"] is None
    bad = api.get("/api/v1/tickets", status="lost")
    assert bad.status_code == 422 and "status" in bad.json()["error"]["fields"]


def test_create_with_company_and_errors_name_the_field(api, workspace, owner):
    acme = CompanyFactory(workspace=workspace)
    created = api.post(
        "/api/v1/tickets",
        {"subject": "Wrong parts", "company_id": acme.pk, "assignee_id": owner.pk},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["company_id"] == acme.pk and body["assignee_id"] == owner.pk
    assert body["status"] == "new" and body["closed_at"] is None
    ticket = Ticket.objects.for_workspace(workspace).get(pk=body["id"])
    assert ticket.created_by == owner
    stranger = member(WorkspaceFactory(), Role.OWNER)
    foreign_company = CompanyFactory(workspace=WorkspaceFactory())
    for payload, field in (
        ({"subject": "X", "assignee_id": stranger.pk}, "assignee_id"),
        ({"subject": "X", "company_id": foreign_company.pk}, "company_id"),
        ({"subject": "X", "channel": "pigeon"}, "channel"),
    ):
        response = api.post("/api/v1/tickets", payload)
        assert response.status_code == 422, payload
        assert field in response.json()["error"]["fields"], response.json()
    assert Ticket.objects.for_workspace(workspace).count() == 1


def test_update_changes_only_what_is_sent(api, workspace, owner):
    from patron.crm import services

    services.create_custom_field(
        workspace=workspace, object_type="ticket", label="Order number", field_type="text"
    )
    contact = ContactFactory(workspace=workspace)
    ticket = TicketFactory(workspace=workspace, subject="Late", assignee=owner)
    response = api.patch(
        f"/api/v1/tickets/{ticket.pk}",
        {
            "description": "Ordered on Monday",
            "contact_id": contact.pk,
            "channel": "phone",
            "custom": {"order_number": "A-17"},
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["subject"] == "Late" and body["assignee_id"] == owner.pk
    assert body["contact_id"] == contact.pk and body["channel"] == "phone"
    assert body["custom"] == {"order_number": "A-17"}
    assert "Ordered on Monday" in body["description"]
    cleared = api.patch(f"/api/v1/tickets/{ticket.pk}", {"assignee_id": None}).json()
    assert cleared["assignee_id"] is None and cleared["contact_id"] == contact.pk
    for payload, field in (
        ({"subject": "   "}, "subject"),
        ({"status": None}, "status"),
        ({"contact_id": ContactFactory(workspace=WorkspaceFactory()).pk}, "contact_id"),
        ({"custom": {"nope": 1}}, "custom.nope"),
    ):
        response = api.patch(f"/api/v1/tickets/{ticket.pk}", payload)
        assert response.status_code == 422, (payload, response.content)
        assert field in response.json()["error"]["fields"], response.json()
    solved = api.patch(f"/api/v1/tickets/{ticket.pk}", {"status": "closed"}).json()
    assert solved["closed_at"] is not None and solved["solved_at"] is not None


def test_replies(api, workspace, owner):
    ticket = TicketFactory(workspace=workspace)
    note = api.post(f"/api/v1/tickets/{ticket.pk}/replies", {"body": "VIP", "internal": True})
    assert note.status_code == 201 and note.json()["first_responded_at"] is None
    reply = api.post(f"/api/v1/tickets/{ticket.pk}/replies", {"body": "Hello <b>there</b>"})
    assert reply.json()["first_responded_at"] is not None and reply.json()["status"] == "open"
    listed = api.get(f"/api/v1/tickets/{ticket.pk}/replies").json()
    # Bodies are sanitised HTML, as notes are.
    assert [(r["body"], r["is_internal"], r["author_id"]) for r in listed] == [
        ("<p>VIP</p>", True, owner.pk),
        ("Hello <b>there</b>", False, owner.pk),
    ]
    empty = api.post(f"/api/v1/tickets/{ticket.pk}/replies", {"body": ""})
    assert empty.status_code == 422 and "body" in empty.json()["error"]["fields"]


def test_delete_and_other_workspaces(api, workspace):
    ticket = TicketFactory(workspace=workspace)
    tickets.reply_to_ticket(
        ticket=ticket,
        author=member(workspace, Role.SUPPORT),
        body="On it",
    )
    foreign = TicketFactory(workspace=WorkspaceFactory())
    for method, path in (
        ("get", f"/api/v1/tickets/{foreign.pk}"),
        ("patch", f"/api/v1/tickets/{foreign.pk}"),
        ("delete", f"/api/v1/tickets/{foreign.pk}"),
        ("get", f"/api/v1/tickets/{foreign.pk}/replies"),
        ("post", f"/api/v1/tickets/{foreign.pk}/replies"),
    ):
        args = (path,) if method in ("get", "delete") else (path, {"body": "x"})
        assert getattr(api, method)(*args).status_code == 404, (method, path)
    assert api.delete(f"/api/v1/tickets/{ticket.pk}").status_code == 204
    assert not Ticket.objects.for_workspace(workspace).exists()
    assert not TicketReply.objects.for_workspace(workspace).exists()
    assert Ticket.objects.for_workspace(foreign.workspace).exists()
