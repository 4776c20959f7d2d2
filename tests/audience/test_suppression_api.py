"""The suppressions API: list with filters, add one or many, remove by id or address, check."""

from __future__ import annotations

import pytest

from patron.audience import suppression
from patron.audience.models import MailingList, Subscription, Suppression
from patron.core.models import AuditEntry
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def addresses(workspace):
    return dict(Suppression.objects.for_workspace(workspace).values_list("email", "reason"))


def test_add_one_then_many(api, workspace):
    response = api.post("/api/v1/suppressions", {"email": " Ann@X.test ", "reason": "complaint"})
    assert response.status_code == 201, response.content
    assert response.json() == {"added": ["ann@x.test"], "already": []}
    response = api.post(
        "/api/v1/suppressions",
        {"emails": ["ANN@x.test", "bob@x.test"], "reason": "hard bounce", "note": "ESP report"},
    )
    assert response.status_code == 201
    assert response.json() == {"added": ["bob@x.test"], "already": ["ann@x.test"]}
    again = api.post("/api/v1/suppressions", {"email": "bob@x.test"})
    assert again.status_code == 200 and again.json()["added"] == []
    assert addresses(workspace) == {"ann@x.test": "complaint", "bob@x.test": "hard_bounce"}
    entry = AuditEntry.objects.filter(workspace=workspace, action="suppression.added").first()
    assert entry is not None and entry.data["source"] == "api"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "emails", "Give an address"),
        ({"emails": ["ok@x.test", "nope", "@x"]}, "emails", "“nope” is not a valid email"),
        ({"email": "a@x.test", "reason": "holiday"}, "reason", "Unknown reason"),
        ({"email": "a@x.test", "note": "n" * 301}, "note", "under 300"),
    ],
)
def test_invalid_requests_write_nothing(api, workspace, body, field, message):
    response = api.post("/api/v1/suppressions", body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert message in error["fields"][field][0]
    if field == "emails" and "emails" in body:
        assert len(error["fields"]["emails"]) == 2
    assert addresses(workspace) == {}


def test_list_filters_by_address_and_reason(api, workspace):
    suppression.suppress_addresses(workspace=workspace, emails=["ann@x.test", "bob@x.test"])
    suppression.suppress_addresses(workspace=workspace, emails=["cy@x.test"], reason="complaint")
    suppression.suppress_address(workspace=WorkspaceFactory(), email="dee@x.test")
    body = api.get("/api/v1/suppressions").json()
    assert sorted(item["email"] for item in body["items"]) == [
        "ann@x.test",
        "bob@x.test",
        "cy@x.test",
    ]
    item = api.get("/api/v1/suppressions", email="ANN@x.test").json()["items"]
    assert [(i["email"], i["reason"], i["created_by"]) for i in item] == [
        ("ann@x.test", "manual", None)
    ]
    assert [
        i["email"] for i in api.get("/api/v1/suppressions", reason="complaint").json()["items"]
    ] == ["cy@x.test"]
    assert api.get("/api/v1/suppressions", reason="nope").status_code == 422
    first = api.get("/api/v1/suppressions", limit=2).json()
    assert len(first["items"]) == 2 and first["next_cursor"]


def test_remove_by_id_or_address(api, workspace):
    suppression.suppress_addresses(workspace=workspace, emails=["ann@x.test", "bob@x.test"])
    ann = Suppression.objects.for_workspace(workspace).get(email="ann@x.test")
    assert api.get(f"/api/v1/suppressions/{ann.pk}").json()["email"] == "ann@x.test"
    assert api.delete(f"/api/v1/suppressions/{ann.pk}").status_code == 204
    assert api.delete(f"/api/v1/suppressions/{ann.pk}").status_code == 404
    assert api.delete("/api/v1/suppressions?email=BOB@x.test").status_code == 204
    assert api.delete("/api/v1/suppressions?email=bob@x.test").status_code == 404
    assert api.delete("/api/v1/suppressions").status_code == 422
    assert addresses(workspace) == {}


def test_another_workspaces_rows_are_out_of_reach(api, workspace):
    foreign = suppression.suppress_address(workspace=WorkspaceFactory(), email="ann@x.test")
    assert api.get(f"/api/v1/suppressions/{foreign.pk}").status_code == 404
    assert api.delete(f"/api/v1/suppressions/{foreign.pk}").status_code == 404
    assert api.delete("/api/v1/suppressions?email=ann@x.test").status_code == 404
    assert Suppression.objects.unscoped().filter(pk=foreign.pk).exists()


def test_check_answers_what_the_gate_decides(api, workspace):
    news = MailingList.objects.create(workspace=workspace, name="News")
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    Subscription.objects.create(
        workspace=workspace, contact=ann, mailing_list=news, status="pending"
    )
    body = api.get("/api/v1/suppressions/check", email="Ann@x.test").json()
    assert body["allowed"] is True and body["reason"] == "sendable"
    body = api.get("/api/v1/suppressions/check", email="ann@x.test", list=news.pk).json()
    assert (body["allowed"], body["reason"], body["subscription_status"]) == (
        False,
        "not_subscribed",
        "pending",
    )
    suppression.suppress_address(workspace=workspace, email="ann@x.test", reason="complaint")
    body = api.get("/api/v1/suppressions/check", email="ann@x.test").json()
    assert (body["reason"], body["suppression_reason"]) == ("suppressed", "complaint")
    assert body["message"] == "The address is suppressed"
