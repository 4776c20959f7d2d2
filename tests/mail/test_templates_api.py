"""API: /api/v1/email-templates (CRUD and checks)."""

from __future__ import annotations

import pytest

from patron.audience.models import Segment
from patron.mail import blocks
from patron.mail.models import EmailTemplate
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def design(*items):
    doc = blocks.empty_document()
    doc["blocks"] = [dict(blocks.new_block(i["type"]), **i) for i in items]
    return doc


def test_create_from_blocks_get_update_delete(api, workspace):
    created = api.post(
        "/api/v1/email-templates",
        {"name": "Launch", "subject": "Hi", "blocks": design({"type": "heading", "text": "Now"},
                                                             {"type": "footer"})},
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["format"] == "mjml" and "Now</h1>" in body["body"]
    template_id = body["id"]
    assert api.get(f"/api/v1/email-templates/{template_id}").json()["name"] == "Launch"
    assert api.get(f"/api/v1/email-templates/{template_id}/checks").json() == []

    patched = api.patch(f"/api/v1/email-templates/{template_id}", {"subject": "Hello again"})
    assert patched.json()["subject"] == "Hello again" and patched.json()["blocks"]["blocks"]
    # A hand-written body turns it into a code template.
    code = api.patch(
        f"/api/v1/email-templates/{template_id}", {"format": "html", "body": "<p>Hi</p>"}
    )
    assert code.json()["blocks"] == {} and code.json()["body"] == "<p>Hi</p>"
    checks = api.get(f"/api/v1/email-templates/{template_id}/checks").json()
    assert {c["code"] for c in checks} >= {"unsubscribe", "postal_address"}
    assert all(c["blocking"] for c in checks if c["code"] == "unsubscribe")

    assert api.delete(f"/api/v1/email-templates/{template_id}").status_code == 204
    assert not EmailTemplate.objects.for_workspace(workspace).exists()


def test_create_from_a_starter_and_list_by_kind(api):
    assert (
        api.post("/api/v1/email-templates", {"name": "Hey", "starter": "welcome"}).status_code
        == 201
    )
    assert (
        api.post(
            "/api/v1/email-templates", {"name": "Digest", "starter": "content-digest"}
        ).status_code
        == 201
    )
    personal = api.get("/api/v1/email-templates", kind="personal").json()["items"]
    assert [t["name"] for t in personal] == ["Hey"]
    every = api.get("/api/v1/email-templates").json()
    assert len(every["items"]) == 2 and every["next_cursor"] is None


def test_bad_input_is_refused_with_the_field_and_block(api, workspace):
    foreign = Segment.objects.create(
        workspace=WorkspaceFactory(), name="Theirs", definition={"match": "all", "conditions": []}
    )
    response = api.post(
        "/api/v1/email-templates",
        {"name": "X", "blocks": design({"type": "text", "segment": foreign.pk})},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "Block 1 (Text)" in error["fields"]["blocks"][0]
    unknown = api.post(
        "/api/v1/email-templates", {"name": "X", "blocks": {"blocks": [{"type": "x"}]}}
    )
    assert "unknown block type" in unknown.json()["error"]["fields"]["blocks"][0]
    nameless = api.post("/api/v1/email-templates", {"name": " "})
    assert nameless.json()["error"]["fields"]["name"] == ["Give the template a name."]
    starter = api.post("/api/v1/email-templates", {"name": "X", "starter": "nope"})
    assert starter.status_code == 422
    assert not EmailTemplate.objects.for_workspace(workspace).exists()


def test_other_workspaces_templates_are_not_found(api):
    other = EmailTemplate.objects.create(workspace=WorkspaceFactory(), name="Theirs")
    assert api.get(f"/api/v1/email-templates/{other.pk}").status_code == 404
    assert api.patch(f"/api/v1/email-templates/{other.pk}", {"name": "Mine"}).status_code == 404
    assert api.delete(f"/api/v1/email-templates/{other.pk}").status_code == 404
    assert api.get("/api/v1/email-templates").json()["items"] == []


def test_images_upload_list_get_delete(api, workspace):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    data = io.BytesIO()
    Image.new("RGB", (64, 32), "navy").save(data, "WEBP")
    upload = SimpleUploadedFile("banner.webp", data.getvalue(), content_type="image/webp")
    created = api.client.post("/api/v1/images", {"file": upload}, headers=api.headers)
    assert created.status_code == 201, created.content
    image = created.json()
    assert (image["width"], image["height"], image["content_type"]) == (64, 32, "image/webp")
    assert image["url"].endswith("/banner.webp") and "/mail-images/" in image["url"]
    assert api.get(f"/api/v1/images/{image['id']}").json()["name"] == "banner.webp"
    assert [i["id"] for i in api.get("/api/v1/images").json()["items"]] == [image["id"]]
    bad = api.client.post(
        "/api/v1/images",
        {"file": SimpleUploadedFile("x.png", b"not an image")},
        headers=api.headers,
    )
    assert bad.status_code == 422
    assert "not an image we can read" in bad.json()["error"]["fields"]["file"][0]
    assert api.delete(f"/api/v1/images/{image['id']}").status_code == 204
    assert api.get(f"/api/v1/images/{image['id']}").status_code == 404
