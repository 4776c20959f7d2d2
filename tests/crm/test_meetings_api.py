"""/api/v1/calls and /api/v1/meetings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patron.activity.models import Event
from patron.crm.models import Call, Meeting
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


def test_calls_are_logged_listed_corrected_and_deleted(api, workspace):
    contact = ContactFactory(workspace=workspace)
    deal = DealFactory(workspace=workspace)
    created = api.post(
        "/api/v1/calls",
        {
            "contact_id": contact.pk,
            "outcome": "connected",
            "duration_minutes": 7,
            "deal_id": deal.pk,
            "occurred_at": "2026-03-02T09:00:00Z",
            "notes": "<img src=x onerror=alert(1)>Good talk",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["outcome"], body["deal_id"]) == ("connected", deal.pk)
    assert body["direction"] == "outbound"
    assert "onerror" not in body["notes"] and "Good talk" in body["notes"]
    event = Event.objects.for_workspace(workspace).get(kind="call.logged")
    assert event.properties["outcome"] == "connected" and event.contact_id == contact.pk

    CallFactory(workspace=workspace, occurred_at=timezone.now() - timedelta(days=1))
    listed = api.get("/api/v1/calls", contact_id=contact.pk).json()["items"]
    assert [c["id"] for c in listed] == [body["id"]]
    window = api.get(
        "/api/v1/calls", after="2026-03-02T00:00:00Z", before="2026-03-03T00:00:00Z"
    ).json()
    assert [c["id"] for c in window["items"]] == [body["id"]]
    assert api.get("/api/v1/calls", deal_id=deal.pk).json()["items"][0]["id"] == body["id"]

    patched = api.patch(f"/api/v1/calls/{body['id']}", {"outcome": "busy", "deal_id": None})
    assert patched.status_code == 200, patched.content
    assert (patched.json()["outcome"], patched.json()["deal_id"]) == ("busy", None)
    assert api.get(f"/api/v1/calls/{body['id']}").json()["outcome"] == "busy"
    assert api.delete(f"/api/v1/calls/{body['id']}").status_code == 204
    assert not Call.objects.for_workspace(workspace).filter(pk=body["id"]).exists()
    assert api.get(f"/api/v1/calls/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"outcome": "maybe"}, "outcome"),
        ({"direction": "sideways"}, "direction"),
        ({"duration_minutes": -5}, "duration_minutes"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"contact_id": 999_999}, "contact_id"),
        ({"deal_id": 999_999}, "deal_id"),
        ({"company_id": 999_999}, "company_id"),
    ],
)
def test_a_bad_call_gets_a_422_naming_the_field(api, workspace, payload, field):
    contact = ContactFactory(workspace=workspace)
    response = api.post("/api/v1/calls", {"contact_id": contact.pk, "outcome": "busy", **payload})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert not Call.objects.for_workspace(workspace).exists()


def test_calls_and_meetings_refuse_another_workspaces_records(api, workspace):
    other = WorkspaceFactory()
    foreign_contact = ContactFactory(workspace=other)
    mine = ContactFactory(workspace=workspace)
    assert (
        api.post("/api/v1/calls", {"contact_id": foreign_contact.pk, "outcome": "busy"}).status_code
        == 422
    )
    for extra in (
        {"contact_ids": [foreign_contact.pk]},
        {"company_id": CompanyFactory(workspace=other).pk},
        {"deal_id": DealFactory(workspace=other).pk},
        {"organizer_id": UserFactory().pk},
    ):
        response = api.post(
            "/api/v1/meetings",
            {
                "title": "X",
                "starts_at": "2030-05-04T09:00:00Z",
                "ends_at": "2030-05-04T10:00:00Z",
                "contact_ids": [mine.pk],
                **extra,
            },
        )
        assert response.status_code == 422, (extra, response.content)
    assert not Meeting.objects.for_workspace(workspace).exists()
    theirs = MeetingFactory(workspace=other)
    assert api.get(f"/api/v1/meetings/{theirs.pk}").status_code == 404
    assert api.patch(f"/api/v1/meetings/{theirs.pk}", {"title": "Mine now"}).status_code == 404
    assert api.get("/api/v1/meetings").json()["items"] == []


def test_meetings_are_scheduled_listed_changed_and_deleted(api, workspace, owner):
    ana, ben = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    company = CompanyFactory(workspace=workspace)
    created = api.post(
        "/api/v1/meetings",
        {
            "title": "Review",
            "starts_at": "2030-05-04T09:00:00Z",
            "ends_at": "2030-05-04T10:00:00Z",
            "organizer_id": owner.pk,
            "contact_ids": [ana.pk],
            "company_id": company.pk,
            "location": "https://meet.example.com/abc",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["contact_ids"] == [ana.pk] and body["outcome"] == "scheduled"
    assert body["company_id"] == company.pk and body["organizer_id"] == owner.pk
    MeetingFactory(workspace=workspace, title="Other day", contacts=[ben])

    window = api.get(
        "/api/v1/meetings", after="2030-05-04T09:30:00Z", before="2030-05-05T00:00:00Z"
    ).json()["items"]
    assert [m["title"] for m in window] == ["Review"]  # overlapping the window counts
    assert [m["title"] for m in api.get("/api/v1/meetings", contact_id=ben.pk).json()["items"]] == [
        "Other day"
    ]
    backwards = api.get(
        "/api/v1/meetings", after="2030-05-05T00:00:00Z", before="2030-05-04T00:00:00Z"
    )
    assert backwards.status_code == 422 and "before" in backwards.json()["error"]["fields"]

    moved = api.patch(
        f"/api/v1/meetings/{body['id']}",
        {
            "starts_at": "2030-05-05T09:00:00Z",
            "ends_at": "2030-05-05T09:30:00Z",
            "contact_ids": [ana.pk, ben.pk],
        },
    )
    assert moved.status_code == 200, moved.content
    assert sorted(moved.json()["contact_ids"]) == sorted([ana.pk, ben.pk])
    assert moved.json()["starts_at"].startswith("2030-05-05T09:00")
    scheduled = Event.objects.for_workspace(workspace).filter(
        kind="meeting.scheduled", source_id=str(body["id"])
    )
    assert sorted(scheduled.values_list("contact_id", flat=True)) == sorted([ana.pk, ben.pk])
    bad = api.patch(f"/api/v1/meetings/{body['id']}", {"ends_at": "2030-05-05T08:00:00Z"})
    assert bad.status_code == 422 and "ends_at" in bad.json()["error"]["fields"]
    null = api.patch(f"/api/v1/meetings/{body['id']}", {"title": None})
    assert null.status_code == 422 and "title" in null.json()["error"]["fields"]

    done = api.post(f"/api/v1/meetings/{body['id']}/outcome", {"outcome": "completed"})
    assert done.json()["outcome"] == "completed"
    by_patch = api.patch(f"/api/v1/meetings/{body['id']}", {"outcome": "rescheduled"})
    assert by_patch.json()["outcome"] == "rescheduled"
    recorded = Event.objects.for_workspace(workspace).filter(kind="meeting.outcome_recorded")
    assert recorded.count() == 4  # two outcomes, two attendees each
    wrong = api.post(f"/api/v1/meetings/{body['id']}/outcome", {"outcome": "great"})
    assert wrong.status_code == 422

    assert api.delete(f"/api/v1/meetings/{body['id']}").status_code == 204
    assert api.get(f"/api/v1/meetings/{body['id']}").status_code == 404


def test_a_meeting_that_ends_before_it_starts_is_refused(api, workspace):
    backwards = api.post(
        "/api/v1/meetings",
        {"title": "X", "starts_at": "2026-05-04T10:00:00Z", "ends_at": "2026-05-04T09:00:00Z"},
    )
    assert backwards.status_code == 422 and "ends_at" in backwards.json()["error"]["fields"]
    assert not Meeting.objects.for_workspace(workspace).exists()


def test_the_meeting_list_pages_with_a_cursor(api, workspace, django_assert_max_num_queries):
    for _ in range(5):
        MeetingFactory(workspace=workspace)
    with django_assert_max_num_queries(4):
        first = api.get("/api/v1/meetings", limit=3).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = api.get("/api/v1/meetings", limit=3, cursor=first["next_cursor"]).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
