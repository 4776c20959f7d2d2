"""The API's shell: keys, the error format, pagination, docs."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.activity.services import record
from patron.core.services import create_api_key, revoke_api_key
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def test_health_needs_no_key(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ptn_nope"},
        {"X-API-Key": "ptn_nope"},
        {"Authorization": "Basic abc"},
    ],
)
def test_requests_without_a_valid_key_are_401(client, headers):
    assert_error(client.get("/api/v1/workspace", headers=headers), 401, "unauthenticated")


def test_both_header_styles_work_and_revoked_keys_stop(client, workspace, owner):
    created = create_api_key(workspace=workspace, name="k", created_by=owner)
    for headers in ({"Authorization": f"Bearer {created.secret}"}, {"X-API-Key": created.secret}):
        response = client.get("/api/v1/workspace", headers=headers)
        assert response.status_code == 200 and response.json()["slug"] == "acme"
    revoke_api_key(api_key=created.api_key, actor=owner)
    assert_error(
        client.get("/api/v1/workspace", headers={"X-API-Key": created.secret}),
        401,
        "unauthenticated",
    )


def test_validation_errors_name_the_fields(api):
    error = assert_error(
        api.post("/api/v1/events", {"kind": 5, "occurred_at": "yesterday"}), 422, "invalid"
    )
    assert "kind" in error["fields"] and "occurred_at" in error["fields"]
    error = assert_error(api.get("/api/v1/events", limit=0), 422, "invalid")
    assert "limit" in error["fields"]


def test_not_found_has_the_same_shape(api):
    assert_error(api.get("/api/v1/events/999999"), 404, "not_found")


def test_cursor_pagination_walks_every_row_once(api, workspace):
    ids = {
        record(workspace=workspace, kind="custom.event", contact_id=None, visitor_id=f"v{i}").pk
        for i in range(7)
    }
    record(workspace=WorkspaceFactory(), kind="custom.event", visitor_id="elsewhere")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/events", **params).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == ids
    assert seen == sorted(seen, reverse=True)


def test_a_tampered_cursor_is_refused(api, workspace):
    for i in range(3):
        record(workspace=workspace, kind="custom.event", visitor_id=f"v{i}")
    cursor = api.get("/api/v1/events", limit=1).json()["next_cursor"]
    error = assert_error(api.get("/api/v1/events", cursor=cursor[:-2] + "xx"), 422, "invalid")
    assert "cursor" in error["fields"]


def test_docs_and_schema_load(db):
    client = Client()
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/contacts" in paths and "/api/v1/events" in paths
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/docs").status_code in (301, 302)


def test_members_endpoint_lists_the_keys_workspace(api, owner):
    members = api.get("/api/v1/members").json()
    assert [m["email"] for m in members] == [owner.email]
