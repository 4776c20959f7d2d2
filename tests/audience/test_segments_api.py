"""The segments API: definitions, counts, members, errors naming the condition."""

from __future__ import annotations

import pytest

from patron.audience.models import Segment
from patron.crm import services
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def vip(workspace):
    ann = ContactFactory(workspace=workspace, first_name="Ann")
    bob = ContactFactory(workspace=workspace, first_name="Bob")
    ContactFactory(workspace=workspace, first_name="Cy")
    tag = services.add_tags(record_=ann, names=["vip"])[0]
    services.add_tags(record_=bob, names=["vip"])
    return {"match": "all", "conditions": [{"type": "tag", "op": "has", "tag": tag.pk}]}


def test_create_count_members_update_delete(api, workspace, vip):
    response = api.post("/api/v1/segments", {"name": "VIPs", "definition": vip})
    assert response.status_code == 201, response.content
    body = response.json()
    segment_id = body["id"]
    assert body["definition"] == {
        "match": "all",
        "conditions": [{"type": "tag", "op": "has", "tag": vip["conditions"][0]["tag"]}],
    }
    count = api.get(f"/api/v1/segments/{segment_id}/count").json()
    assert count == {"count": 2, "description": "tagged vip"}
    members = api.get(f"/api/v1/segments/{segment_id}/members", limit=1).json()
    assert len(members["items"]) == 1 and members["next_cursor"]
    rest = api.get(f"/api/v1/segments/{segment_id}/members", cursor=members["next_cursor"]).json()
    names = {members["items"][0]["first_name"], rest["items"][0]["first_name"]}
    assert names == {"Ann", "Bob"} and rest["next_cursor"] is None

    narrowed = {
        "match": "all",
        "conditions": [
            *vip["conditions"],
            {"type": "field", "field": "first_name", "op": "eq", "value": "ann"},
        ],
    }
    response = api.patch(f"/api/v1/segments/{segment_id}", {"definition": narrowed})
    assert response.status_code == 200
    assert api.get(f"/api/v1/segments/{segment_id}/count").json()["count"] == 1
    listed = api.get("/api/v1/segments").json()["items"]
    assert [item["name"] for item in listed] == ["VIPs"]
    assert api.delete(f"/api/v1/segments/{segment_id}").status_code == 204
    assert not Segment.objects.for_workspace(workspace).exists()


def test_count_an_unsaved_definition(api, vip):
    response = api.post("/api/v1/segments/count", {"definition": vip})
    assert response.json()["count"] == 2


def test_errors_name_the_condition(api, workspace, vip):
    bad = {
        "match": "any",
        "conditions": [{"type": "field", "field": "score", "op": "gt", "value": "many"}],
    }
    response = api.post("/api/v1/segments", {"name": "Bad", "definition": bad})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["fields"] == {"definition": ["Condition 1 (Contact field): Enter a number."]}
    assert api.post("/api/v1/segments/count", {"definition": bad}).status_code == 422
    api.post("/api/v1/segments", {"name": "Taken", "definition": vip})
    response = api.post("/api/v1/segments", {"name": "taken", "definition": vip})
    assert response.status_code == 409
    response = api.post("/api/v1/segments", {"name": "", "definition": vip})
    assert response.status_code == 422 and "name" in response.json()["error"]["fields"]


def test_other_workspaces_segments_are_invisible(api):
    other = WorkspaceFactory()
    theirs = Segment.objects.create(workspace=other, name="Theirs", definition={})
    for method, path in [
        ("get", f"/api/v1/segments/{theirs.pk}"),
        ("get", f"/api/v1/segments/{theirs.pk}/count"),
        ("get", f"/api/v1/segments/{theirs.pk}/members"),
        ("delete", f"/api/v1/segments/{theirs.pk}"),
    ]:
        assert getattr(api, method)(path).status_code == 404
    assert api.get("/api/v1/segments").json()["items"] == []
