"""API: custom events in batches and identifying a web visitor, with a workspace key."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.activity.services import record
from patron.tracking.models import VisitorLink
from patron.tracking.stitching import stitch_visitor
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_a_batch_of_custom_events_is_recorded_with_known_visitors_contacts(api, workspace):
    contact = ContactFactory(workspace=workspace)
    known = ContactFactory(workspace=workspace)
    stitch_visitor(workspace_id=workspace.pk, visitor_id="server-visitor-1", contact_id=known.pk,
                   method="api")  # fmt: skip
    response = api.post(
        "/api/v1/events/batch",
        {
            "events": [
                {"kind": "custom.event", "contact_id": contact.pk,
                 "properties": {"name": "webinar_attended", "webinar": "Spring"}},
                {"kind": "custom.event", "visitor_id": "server-visitor-1",
                 "properties": {"name": "trial_started"}},
                {"kind": "page.viewed", "visitor_id": "anonymous-visitor",
                 "properties": {"url": "https://acme.example/"}},
            ]
        },
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json() == {"recorded": 3}
    events = Event.objects.for_workspace(workspace)
    webinar = events.get(properties__name="webinar_attended")
    assert webinar.contact_id == contact.pk
    assert events.get(properties__name="trial_started").contact_id == known.pk
    assert events.get(kind="page.viewed").contact_id is None


def test_a_batch_with_one_bad_event_records_none(api, workspace):
    foreign = ContactFactory(workspace=WorkspaceFactory())
    before = Event.objects.for_workspace(workspace).count()
    response = api.post(
        "/api/v1/events/batch",
        {
            "events": [
                {"kind": "custom.event", "visitor_id": "v-123456"},
                {"kind": "no.such_kind", "visitor_id": "v-123456"},
                {"kind": "custom.event"},
                {"kind": "custom.event", "contact_id": foreign.pk},
            ]
        },
    )
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"events.1.kind", "events.2.contact_id", "events.3.contact_id"}
    assert Event.objects.for_workspace(workspace).count() == before
    assert api.post("/api/v1/events/batch", {"events": []}).status_code == 422


def test_identify_links_a_visitor_and_creates_the_contact_when_new(api, workspace):
    record(workspace=workspace, kind="page.viewed", visitor_id="headless-visitor",
           properties={"url": "https://acme.example/?utm_source=podcast"})  # fmt: skip
    response = api.post(
        "/api/v1/visitors/identify",
        {"visitor_id": "headless-visitor", "email": "New.Person@acme.example"},
    )
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["created"] is True and answer["events_moved"] == 1
    link = VisitorLink.objects.for_workspace(workspace).get()
    assert link.contact.email == "new.person@acme.example"
    assert Event.objects.for_workspace(workspace).get(kind="page.viewed").contact_id == (
        link.contact_id
    )
    again = api.post(
        "/api/v1/visitors/identify",
        {"visitor_id": "second-device-1", "email": "new.person@acme.example"},
    ).json()
    assert again["contact_id"] == link.contact_id and again["created"] is False


def test_identify_refuses_bad_values_and_requests_without_a_key(api, workspace, client):
    response = api.post("/api/v1/visitors/identify", {"visitor_id": "x", "email": "nope"})
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"visitor_id", "email"}
    response = client.post(
        "/api/v1/visitors/identify",
        {"visitor_id": "headless-visitor", "email": "a@acme.example"},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert not VisitorLink.objects.unscoped().exists()
