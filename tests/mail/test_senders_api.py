"""The senders API: CRUD, verification resend, verified_at read-only."""

from __future__ import annotations

import re

import pytest

from patron.core.models import AuditEntry
from patron.mail import senders
from patron.mail.models import OutboxMessage, SenderIdentity
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

BODY = {
    "from_name": "Acme News",
    "from_email": "News@ACME.example",
    "reply_to": "help@acme.example",
    "postal_address": "Acme Ltd\n1 Main Street",
}


def make(workspace, email="news@acme.example"):
    return senders.create_sender(
        workspace=workspace, from_name="Acme", from_email=email, postal_address="Acme Ltd"
    )


def verify(identity):
    return senders.verify_sender(token=senders.verification_token(identity))[0]


def test_create_sends_the_link_and_verified_at_is_read_only(api, workspace):
    response = api.post("/api/v1/senders", {**BODY, "verified_at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["from_email"] == "News@acme.example"
    assert data["reply_to"] == "help@acme.example"
    assert data["verified_at"] is None and data["is_default"] is False
    assert data["verification_sent_at"] is not None
    message = OutboxMessage.objects.get()
    assert message.to == ["News@acme.example"] and message.workspace == workspace
    token = re.search(r"/senders/verify/([^/\s]+)/", message.text_body).group(1)
    senders.verify_sender(token=token)
    data = api.get(f"/api/v1/senders/{data['id']}").json()
    assert data["verified_at"] is not None and data["is_default"] is True
    assert AuditEntry.objects.filter(action="sender.created", target="News@acme.example").exists()


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"from_email": "nope"}, 422, "from_email"),
        ({"reply_to": "nope@"}, 422, "reply_to"),
        ({"postal_address": " "}, 422, "postal_address"),
        ({"from_name": ""}, 422, "from_name"),
        ({"from_email": "taken@acme.example"}, 409, "from_email"),
    ],
)
def test_create_says_what_is_wrong(api, workspace, change, status, field):
    make(workspace, "taken@acme.example")
    response = api.post("/api/v1/senders", {**BODY, **change})
    assert response.status_code == status
    assert field in response.json()["error"]["fields"]
    assert SenderIdentity.objects.for_workspace(workspace).count() == 1
    assert not OutboxMessage.objects.exists()


def test_missing_postal_address_is_refused(api):
    body = {key: value for key, value in BODY.items() if key != "postal_address"}
    response = api.post("/api/v1/senders", body)
    assert response.status_code == 422
    assert "postal_address" in response.json()["error"]["fields"]


def test_list_filters_and_is_scoped(api, workspace):
    pending = make(workspace, "pending@acme.example")
    ready = verify(make(workspace, "ready@acme.example"))
    make(WorkspaceFactory(), "elsewhere@other.example")
    everything = api.get("/api/v1/senders").json()["items"]
    assert {row["from_email"] for row in everything} == {pending.from_email, ready.from_email}
    verified = api.get("/api/v1/senders", verified="true").json()["items"]
    assert [row["id"] for row in verified] == [ready.pk]
    pending_rows = api.get("/api/v1/senders", verified="false").json()["items"]
    assert [row["id"] for row in pending_rows] == [pending.pk]


def test_patch_address_unverifies_and_resends(api, workspace):
    identity = verify(make(workspace))
    response = api.patch(
        f"/api/v1/senders/{identity.pk}",
        {"from_email": "hello@acme.example", "verified_at": "2020-01-01T00:00:00Z"},
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["from_email"] == "hello@acme.example"
    assert data["verified_at"] is None and data["is_default"] is False
    assert OutboxMessage.objects.get().to == ["hello@acme.example"]

    response = api.patch(f"/api/v1/senders/{identity.pk}", {"from_name": "Hello"})
    assert response.json()["from_name"] == "Hello"
    assert OutboxMessage.objects.count() == 1


def test_patch_default(api, workspace):
    first = verify(make(workspace, "first@acme.example"))
    second = verify(make(workspace, "second@acme.example"))
    pending = make(workspace, "pending@acme.example")
    response = api.patch(f"/api/v1/senders/{second.pk}", {"is_default": True})
    assert response.status_code == 200 and response.json()["is_default"] is True
    first.refresh_from_db()
    assert not first.is_default
    response = api.patch(f"/api/v1/senders/{pending.pk}", {"is_default": True})
    assert response.status_code == 422
    assert "Verify pending@acme.example" in response.json()["error"]["message"]
    response = api.patch(f"/api/v1/senders/{second.pk}", {"is_default": False})
    assert response.status_code == 422


def test_resend_and_delete(api, workspace):
    pending = make(workspace, "pending@acme.example")
    ready = verify(make(workspace, "ready@acme.example"))
    response = api.post(f"/api/v1/senders/{pending.pk}/verification")
    assert response.status_code == 202
    assert OutboxMessage.objects.get().to == ["pending@acme.example"]
    response = api.post(f"/api/v1/senders/{ready.pk}/verification")
    assert response.status_code == 409
    assert OutboxMessage.objects.count() == 1

    assert api.delete(f"/api/v1/senders/{ready.pk}").status_code == 204
    assert api.get(f"/api/v1/senders/{ready.pk}").status_code == 404
    assert list(SenderIdentity.objects.for_workspace(workspace)) == [pending]


def test_mail_failure_answers_502_and_keeps_the_sender(api, workspace, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    response = api.post("/api/v1/senders", BODY)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "mail_failed"
    identity = SenderIdentity.objects.for_workspace(workspace).get()
    assert f"/api/v1/senders/{identity.pk}/verification" in response.json()["error"]["message"]
