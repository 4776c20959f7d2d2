"""The pipelines and deals API."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.crm import services
from tests.factories import CompanyFactory, ContactFactory, WorkspaceFactory, make_pipeline

pytestmark = pytest.mark.django_db


def test_pipelines_list_their_stages_and_can_be_created(api, workspace):
    services.default_pipeline(workspace)
    pipelines = api.get("/api/v1/pipelines").json()
    assert [p["name"] for p in pipelines] == ["Sales pipeline"]
    assert [s["probability"] for s in pipelines[0]["stages"]] == [10, 25, 50, 75, 100, 0]
    created = api.post("/api/v1/pipelines", {"name": "Partners"})
    assert created.status_code == 201 and len(created.json()["stages"]) == 6
    assert api.post("/api/v1/pipelines", {"name": "Partners"}).status_code == 409


def test_deal_lifecycle_through_the_api(api, workspace):
    contact = ContactFactory(workspace=workspace)
    company = CompanyFactory(workspace=workspace)
    created = api.post(
        "/api/v1/deals",
        {
            "name": "Rollout",
            "amount": "8000",
            "currency": "sgd",
            "company_id": company.pk,
            "contact_ids": [contact.pk],
            "expected_close_date": "2027-01-31",
        },
    )
    assert created.status_code == 201, created.content
    deal = created.json()
    assert (deal["stage"], deal["currency"], deal["expected_revenue"]) == (
        "Qualified",
        "SGD",
        "800.00",
    )
    assert deal["contact_ids"] == [contact.pk]
    stages = {s["name"]: s["id"] for s in api.get("/api/v1/pipelines").json()[0]["stages"]}
    moved = api.post(
        f"/api/v1/deals/{deal['id']}/move",
        {"stage_id": stages["Lost"], "lost_reason": "Too expensive"},
    )
    assert moved.json()["outcome"] == "lost" and moved.json()["lost_reason"] == "Too expensive"
    assert moved.json()["closed_at"] is not None
    assert (
        Event.objects.for_workspace(workspace)
        .filter(kind="deal.stage_changed", contact_id=contact.pk)
        .exists()
    )
    patched = api.patch(f"/api/v1/deals/{deal['id']}", {"amount": "9000", "contact_ids": []})
    assert patched.json()["amount"] == "9000.00" and patched.json()["contact_ids"] == []
    assert [d["id"] for d in api.get("/api/v1/deals", outcome="lost").json()["items"]] == [
        deal["id"]
    ]
    assert api.get("/api/v1/deals", outcome="open").json()["items"] == []
    assert api.delete(f"/api/v1/deals/{deal['id']}").status_code == 204


def test_deal_input_is_validated(api, workspace):
    foreign = WorkspaceFactory()
    other_stage = make_pipeline(foreign).stages.first()
    cases = [
        ({"name": ""}, "name"),
        ({"name": "X", "amount": "-1"}, "amount"),
        ({"name": "X", "currency": "dollars"}, "currency"),
        ({"name": "X", "stage_id": other_stage.pk}, "stage_id"),
        ({"name": "X", "contact_ids": [ContactFactory(workspace=foreign).pk]}, "contact_ids"),
        ({"name": "X", "company_id": CompanyFactory(workspace=foreign).pk}, "company_id"),
    ]
    for payload, field in cases:
        response = api.post("/api/v1/deals", payload)
        assert response.status_code == 422, payload
        assert field in response.json()["error"]["fields"], (payload, response.json())
    deal = services.create_deal(workspace=workspace, name="Mine")
    second = make_pipeline(workspace, "Second")
    wrong = api.post(f"/api/v1/deals/{deal.pk}/move", {"stage_id": second.stages.first().pk})
    assert wrong.status_code == 422 and "stage_id" in wrong.json()["error"]["fields"]
