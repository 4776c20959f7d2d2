"""The Activity page and the events API."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.activity.services import record
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_activity_page_lists_filters_and_links_to_contacts(logged_in, workspace):
    contact = ContactFactory(workspace=workspace)
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        properties={"url": "/features"},
    )
    record(
        workspace=workspace,
        kind="form.submitted",
        contact_id=contact.pk,
        properties={"form": "Demo request"},
    )
    record(
        workspace=WorkspaceFactory(),
        kind="page.viewed",
        visitor_id="x",
        properties={"url": "/other-business"},
    )
    page = logged_in.get("/activity/").content.decode()
    assert "/features" in page and "Demo request" in page and "/other-business" not in page
    assert f'href="/contacts/{contact.pk}/"' in page
    only_forms = logged_in.get("/activity/", {"kind": "form.submitted"}).content.decode()
    assert "Demo request" in only_forms and "/features" not in only_forms
    event = Event.objects.for_workspace(workspace).get(kind="form.submitted")
    detail = logged_in.get(f"/activity/{event.pk}/").content.decode()
    assert "Demo request" in detail and "form.submitted" in detail


def test_events_api_records_and_filters(api, workspace):
    contact = ContactFactory(workspace=workspace)
    created = api.post(
        "/api/v1/events",
        {
            "kind": "custom.event",
            "contact_id": contact.pk,
            "properties": {"name": "webinar_attended"},
        },
    )
    assert created.status_code == 201
    assert created.json()["properties"] == {"name": "webinar_attended"}
    unknown = api.post("/api/v1/events", {"kind": "made.up", "contact_id": contact.pk})
    assert unknown.status_code == 422 and "kind" in unknown.json()["error"]["fields"]
    nobody = api.post("/api/v1/events", {"kind": "custom.event"})
    assert nobody.status_code == 422
    foreign = ContactFactory(workspace=WorkspaceFactory())
    refused = api.post("/api/v1/events", {"kind": "custom.event", "contact_id": foreign.pk})
    assert refused.status_code == 422 and "contact_id" in refused.json()["error"]["fields"]
    items = api.get("/api/v1/events", contact_id=contact.pk).json()["items"]
    assert [e["kind"] for e in items] == ["custom.event"]
    assert api.get("/api/v1/events", kind="page.viewed").json()["items"] == []
