"""The tasks and quotes API."""

from __future__ import annotations

import pytest

from patron.crm import tickets
from tests.factories import ContactFactory, DealFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_tasks_api(api, workspace, owner):
    contact = ContactFactory(workspace=workspace)
    ticket = tickets.open_ticket(workspace=workspace, subject="Broken")
    created = api.post(
        "/api/v1/tasks",
        {
            "title": "Call back",
            "due_at": "2026-06-01T09:00:00Z",
            "assignee_id": owner.pk,
            "contact_id": contact.pk,
            "ticket_id": ticket.pk,
        },
    )
    assert created.status_code == 201, created.content
    task = created.json()
    assert task["ticket_id"] == ticket.pk and task["assignee_id"] == owner.pk
    done = api.post(f"/api/v1/tasks/{task['id']}/done", {"done": True})
    assert done.json()["completed_at"] is not None
    assert api.get("/api/v1/tasks", done=False).json()["items"] == []
    assert [t["id"] for t in api.get("/api/v1/tasks", ticket_id=ticket.pk).json()["items"]] == [
        task["id"]
    ]
    foreign = ContactFactory(workspace=WorkspaceFactory())
    bad = api.post("/api/v1/tasks", {"title": "X", "contact_id": foreign.pk})
    assert bad.status_code == 422 and "contact_id" in bad.json()["error"]["fields"]
    assert api.delete(f"/api/v1/tasks/{task['id']}").status_code == 204


def test_quotes_api(api, workspace):
    deal = DealFactory(workspace=workspace)
    contact = ContactFactory(workspace=workspace, email="buyer@example.com")
    created = api.post(
        "/api/v1/quotes",
        {
            "deal_id": deal.pk,
            "contact_id": contact.pk,
            "title": "Offer",
            "valid_until": "2099-01-31",
            "lines": [
                {
                    "description": "Seats",
                    "quantity": "3",
                    "unit_price": "10.00",
                    "tax_percent": "10",
                }
            ],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["number"].startswith("Q-") and body["total"] == "33.00"
    bad = api.post(
        "/api/v1/quotes",
        {"deal_id": deal.pk, "title": "X", "valid_until": "2099-01-31", "lines": []},
    )
    assert bad.status_code == 422 and "lines" in bad.json()["error"]["fields"]
    sent = api.post(f"/api/v1/quotes/{body['id']}/send")
    assert sent.json()["status"] == "sent"
    assert api.delete(f"/api/v1/quotes/{body['id']}").status_code == 409
    listed = api.get("/api/v1/quotes", deal_id=deal.pk, status="sent").json()["items"]
    assert [q["id"] for q in listed] == [body["id"]]
