"""API: /api/v1/campaigns — drafts, checks, test send, schedule, pause/resume/cancel,
duplicate, progress; errors name the field; another workspace's campaigns are not found."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patron.core.services import create_api_key
from patron.mail import campaigns
from patron.mail.models import Campaign, CampaignStatus, OutboxMessage
from tests.conftest import ApiClient
from tests.factories import UserFactory, WorkspaceFactory
from tests.mail.campaign_setup import GOOD_BODY, make_audience, ready_values

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(workspace):
    return make_audience(workspace)


def ready_payload(people, **overrides):
    payload = {
        "name": "Spring news",
        "subject": "Spring at Lumiar, {{ contact.first_name }}",
        "format": "html",
        "body": GOOD_BODY,
        "sender_id": people.sender.pk,
        "audience": {"include": {"segments": [people.readers.pk]}},
    }
    payload.update(overrides)
    return payload


def fields_of(response) -> dict:
    return response.json()["error"]["fields"]


def test_create_read_update_and_list(api, people):
    response = api.post("/api/v1/campaigns", ready_payload(people))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["sender_id"] == people.sender.pk
    assert body["audience"]["include"]["segments"] == [people.readers.pk]
    campaign_id = body["id"]

    assert api.get(f"/api/v1/campaigns/{campaign_id}").json()["name"] == "Spring news"
    response = api.patch(
        f"/api/v1/campaigns/{campaign_id}",
        {"subject": "Hello", "audience": {"include": {"lists": [people.newsletter.pk]}}},
    )
    assert response.status_code == 200
    assert response.json()["subject"] == "Hello"
    assert response.json()["body"] == GOOD_BODY  # untouched
    assert response.json()["audience"]["include"]["lists"] == [people.newsletter.pk]

    api.post("/api/v1/campaigns", {"name": "Autumn", "subject": "Leaves"})
    names = [item["name"] for item in api.get("/api/v1/campaigns").json()["items"]]
    assert names == ["Autumn", "Spring news"]
    assert [i["name"] for i in api.get("/api/v1/campaigns", q="leaves").json()["items"]] == [
        "Autumn"
    ]
    assert api.get("/api/v1/campaigns", status="sent").json()["items"] == []
    page = api.get("/api/v1/campaigns", limit=1).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    response = api.get("/api/v1/campaigns", status="finished")
    assert response.status_code == 422 and "status" in fields_of(response)


def test_validation_errors_name_the_field(api, people):
    response = api.post("/api/v1/campaigns", {"name": "  "})
    assert response.status_code == 422 and "name" in fields_of(response)
    response = api.post("/api/v1/campaigns", {"name": "X", "reply_to": "nope"})
    assert response.status_code == 422 and "reply_to" in fields_of(response)
    response = api.post("/api/v1/campaigns", {"name": "X", "format": "pdf"})
    assert "format" in fields_of(response)
    response = api.post(
        "/api/v1/campaigns", {"name": "X", "audience": {"include": {"lists": [98765]}}}
    )
    assert (
        response.status_code == 422
        and "There is no list 98765" in fields_of(response)["audience"][0]
    )
    response = api.post("/api/v1/campaigns", {"subject": "no name"})
    assert response.status_code == 422 and "name" in fields_of(response)
    stranger = make_audience(WorkspaceFactory(name="Other", slug="other"))
    response = api.post("/api/v1/campaigns", {"name": "X", "sender_id": stranger.sender.pk})
    assert response.status_code == 422 and "sender_id" in fields_of(response)
    assert not Campaign.objects.unscoped().filter(name="X").exists()


def test_checks_then_schedule_now_sends(api, people, django_capture_on_commit_callbacks):
    campaign_id = api.post("/api/v1/campaigns", ready_payload(people, body="<p>Hi</p>")).json()[
        "id"
    ]
    problems = api.get(f"/api/v1/campaigns/{campaign_id}/checks").json()
    assert {problem["code"] for problem in problems} >= {"unsubscribe", "postal_address"}
    assert all(problem["blocking"] for problem in problems[:2])
    response = api.post(f"/api/v1/campaigns/{campaign_id}/schedule")
    assert response.status_code == 422 and response.json()["error"]["fields"]

    api.patch(f"/api/v1/campaigns/{campaign_id}", {"body": GOOD_BODY})
    assert api.get(f"/api/v1/campaigns/{campaign_id}/checks").json() == []
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/campaigns/{campaign_id}/schedule", {})
    assert response.status_code == 200
    progress = api.get(f"/api/v1/campaigns/{campaign_id}/progress").json()
    assert progress["status"] == "sent"
    assert progress["total"] == 2 and progress["sent"] == 2 and progress["pending"] == 0

    # A sent campaign is history: not changed, not deleted, not paused.
    response = api.patch(f"/api/v1/campaigns/{campaign_id}", {"subject": "Again"})
    assert response.status_code == 409
    assert api.delete(f"/api/v1/campaigns/{campaign_id}").status_code == 409
    assert api.post(f"/api/v1/campaigns/{campaign_id}/pause").status_code == 409
    # A copy is a new draft.
    response = api.post(f"/api/v1/campaigns/{campaign_id}/duplicate")
    assert response.status_code == 201 and response.json()["status"] == "draft"
    assert response.json()["body"] == GOOD_BODY


def test_schedule_at_a_time_pause_resume_cancel(api, people, workspace):
    campaign_id = api.post("/api/v1/campaigns", ready_payload(people)).json()["id"]
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = api.post(f"/api/v1/campaigns/{campaign_id}/schedule", {"at": past})
    assert response.status_code == 422 and "at" in fields_of(response)
    response = api.post(f"/api/v1/campaigns/{campaign_id}/schedule", {"local_time": True})
    assert response.status_code == 422 and "at" in fields_of(response)

    later = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    response = api.post(
        f"/api/v1/campaigns/{campaign_id}/schedule", {"at": later.isoformat(), "local_time": True}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "scheduled" and response.json()["local_time"] is True
    assert api.post(f"/api/v1/campaigns/{campaign_id}/pause").status_code == 409
    response = api.post(f"/api/v1/campaigns/{campaign_id}/unschedule")
    assert response.json()["status"] == "draft"

    api.post(f"/api/v1/campaigns/{campaign_id}/schedule", {"at": later.isoformat()})
    campaign = Campaign.objects.for_workspace(workspace).get(pk=campaign_id)
    campaigns.transition(campaign, CampaignStatus.SENDING, user=None, action="started")
    assert api.post(f"/api/v1/campaigns/{campaign_id}/pause").json()["status"] == "paused"
    assert api.post(f"/api/v1/campaigns/{campaign_id}/resume").json()["status"] == "sending"
    assert api.post(f"/api/v1/campaigns/{campaign_id}/cancel").json()["status"] == "cancelled"
    response = api.post(f"/api/v1/campaigns/{campaign_id}/resume")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_delete_a_draft(api, people):
    campaign_id = api.post("/api/v1/campaigns", ready_payload(people)).json()["id"]
    assert api.delete(f"/api/v1/campaigns/{campaign_id}").status_code == 204
    assert api.get(f"/api/v1/campaigns/{campaign_id}").status_code == 404


def test_test_send(api, people, workspace):
    campaign_id = api.post("/api/v1/campaigns", ready_payload(people)).json()["id"]
    response = api.post(
        f"/api/v1/campaigns/{campaign_id}/test",
        {"addresses": ["me@lumiar.example"], "contact_id": people.ann.pk},
    )
    assert response.status_code == 202
    message = OutboxMessage.objects.get(workspace=workspace)
    assert message.to == ["me@lumiar.example"]
    assert "[Test]" in message.subject and "Ann" in message.subject

    response = api.post(f"/api/v1/campaigns/{campaign_id}/test", {"addresses": ["nope"]})
    assert response.status_code == 422 and "addresses" in fields_of(response)
    response = api.post(
        f"/api/v1/campaigns/{campaign_id}/test", {"addresses": ["a@b.example"], "contact_id": 9876}
    )
    assert response.status_code == 422 and "contact_id" in fields_of(response)
    response = api.post(f"/api/v1/campaigns/{campaign_id}/test", {})
    assert response.status_code == 422 and "addresses" in fields_of(response)


def test_another_workspaces_campaigns_are_not_found(api, owner):
    other = WorkspaceFactory(name="Other", slug="other")
    theirs = campaigns.create_campaign(
        other, user=None, values=ready_values(make_audience(other), name="Theirs")
    )
    assert api.get("/api/v1/campaigns").json()["items"] == []
    assert api.get(f"/api/v1/campaigns/{theirs.pk}").status_code == 404
    assert api.patch(f"/api/v1/campaigns/{theirs.pk}", {"name": "Mine"}).status_code == 404
    assert api.delete(f"/api/v1/campaigns/{theirs.pk}").status_code == 404
    for action in ("schedule", "pause", "resume", "cancel", "duplicate", "unschedule"):
        assert api.post(f"/api/v1/campaigns/{theirs.pk}/{action}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs" and theirs.status == CampaignStatus.DRAFT
    # Their key sees only theirs.
    key = create_api_key(workspace=other, name="theirs", created_by=UserFactory()).secret
    assert [i["name"] for i in ApiClient(key).get("/api/v1/campaigns").json()["items"]] == [
        "Theirs"
    ]


def test_a_key_is_needed(client):
    assert client.get("/api/v1/campaigns").status_code == 401
