"""The workflows API: list workflows and enrolments, enrol and remove a contact."""

from __future__ import annotations

import pytest

from patron.automation.models import EnrolmentStatus
from patron.crm import services as crm
from tests.automation.workflow_helpers import published

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow(workspace):
    return published(workspace, [{"id": "w", "type": "wait", "days": 2}], name="Nurture")


def test_list_and_read_workflows(api, flow):
    response = api.get("/api/v1/workflows")
    assert response.status_code == 200
    (item,) = response.json()["items"]
    assert item["name"] == "Nurture" and item["status"] == "active"
    assert item["published_version"] == 1 and item["graph"]["steps"][0]["id"] == "w"
    assert api.get(f"/api/v1/workflows/{flow.pk}").json()["trigger_type"] == "manual"
    assert api.get("/api/v1/workflows/999999").status_code == 404


def test_enrol_list_and_remove(api, workspace, flow):
    ann = crm.create_contact(workspace=workspace, email="ann@example.net")
    response = api.post(f"/api/v1/workflows/{flow.pk}/enrolments", {"contact_id": ann.pk})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["contact_id"] == ann.pk and body["status"] == "active" and body["version"] == 1
    assert body["source"] == "api"
    again = api.post(f"/api/v1/workflows/{flow.pk}/enrolments", {"contact_id": ann.pk})
    assert again.status_code == 409 and "already" in again.json()["error"]["message"]
    unknown = api.post(f"/api/v1/workflows/{flow.pk}/enrolments", {"contact_id": 999999})
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"] == {
        "contact_id": ["unknown contact"]
    }
    listed = api.get(f"/api/v1/workflows/{flow.pk}/enrolments", status="active").json()
    assert [row["contact_id"] for row in listed["items"]] == [ann.pk]
    bad = api.get(f"/api/v1/workflows/{flow.pk}/enrolments", status="sleeping")
    assert bad.status_code == 422
    removed = api.post(f"/api/v1/workflows/{flow.pk}/enrolments/{body['id']}/remove")
    assert removed.status_code == 200 and removed.json()["status"] == EnrolmentStatus.REMOVED
    assert (
        api.post(f"/api/v1/workflows/{flow.pk}/enrolments/{body['id']}/remove").status_code == 409
    )


def test_a_draft_workflow_takes_nobody(api, workspace):
    from patron.automation import workflows

    draft = workflows.create_workflow(workspace=workspace, name="Draft")
    ann = crm.create_contact(workspace=workspace, email="ann@example.net")
    response = api.post(f"/api/v1/workflows/{draft.pk}/enrolments", {"contact_id": ann.pk})
    assert response.status_code == 409
