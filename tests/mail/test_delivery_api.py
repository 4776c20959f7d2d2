"""API: /api/v1/delivery and /api/v1/sending-domains."""

from __future__ import annotations

import pytest

from patron.core.crypto import decrypt_secret
from patron.mail import dkim_keys
from patron.mail.models import DeliveryConfig, SendingDomain, WorkspaceSmtpServer
from tests.mail.test_dkim_keys import StubResolver, split_quoted

pytestmark = pytest.mark.django_db

POSTMARK_TOKEN = "1a2b3c4d-0000-4000-8000-123456789abc"


def test_read_the_default(api):
    body = api.get("/api/v1/delivery").json()
    assert body["mode"] == "default"
    assert body["installation_transport"] == "capture"
    assert body["esp"]["secret"] == ""
    assert body["smtp_servers"] == []


def test_update_to_an_esp_and_read_it_back_masked(api, workspace):
    response = api.client.put(
        "/api/v1/delivery",
        {"mode": "esp", "esp_provider": "postmark", "esp_secret": POSTMARK_TOKEN},
        content_type="application/json",
        headers=api.headers,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mode"] == "esp"
    assert body["esp"]["provider"] == "postmark"
    assert body["esp"]["secret"] == "••••••••9abc"
    assert POSTMARK_TOKEN not in response.content.decode()
    assert POSTMARK_TOKEN not in api.get("/api/v1/delivery").content.decode()
    config = DeliveryConfig.objects.for_workspace(workspace).get()
    assert decrypt_secret(config.esp_secret) == POSTMARK_TOKEN


def test_invalid_update_names_the_fields(api):
    response = api.client.put(
        "/api/v1/delivery",
        {"mode": "esp", "esp_provider": "amazon_ses", "esp_region": "moon-1"},
        content_type="application/json",
        headers=api.headers,
    )
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"esp_region", "esp_access_key_id", "esp_secret"}
    assert "eu-west-1" in fields["esp_region"][0]
    response = api.client.put(
        "/api/v1/delivery", {"mode": "fast"}, content_type="application/json", headers=api.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"mode": ["Choose how mail is delivered."]}


def test_smtp_servers_through_the_api(api, workspace):
    response = api.post(
        "/api/v1/delivery/smtp-servers",
        {"host": "smtp.acme.example", "username": "mailer", "password": "a-long-password"},
    )
    assert response.status_code == 201, response.content
    server = response.json()
    assert server["port"] == 587 and server["security"] == "starttls"
    assert server["password"] == "••••••••word"
    response = api.patch(f"/api/v1/delivery/smtp-servers/{server['id']}", {"weight": 5})
    assert response.json()["weight"] == 5
    stored = WorkspaceSmtpServer.objects.for_workspace(workspace).get()
    assert decrypt_secret(stored.password) == "a-long-password"
    response = api.client.put(
        "/api/v1/delivery", {"mode": "smtp"}, content_type="application/json", headers=api.headers
    )
    assert response.json()["mode"] == "smtp"
    assert api.delete(f"/api/v1/delivery/smtp-servers/{server['id']}").status_code == 409
    bad = api.post("/api/v1/delivery/smtp-servers", {"host": "x.example", "port": 465})
    assert bad.status_code == 422
    assert "Port 465 expects TLS" in bad.json()["error"]["fields"]["port"][0]


def test_test_send_validates_the_address(api):
    response = api.post("/api/v1/delivery/test", {"to_email": "nobody"})
    assert response.status_code == 422
    assert "to_email" in response.json()["error"]["fields"]


def test_sending_domains_create_list_check_delete(api, workspace, monkeypatch):
    response = api.post("/api/v1/sending-domains", {"domain": "acme.example", "selector": "k1"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["dkim_record_name"] == "k1._domainkey.acme.example"
    assert body["dkim_record_value"].startswith("v=DKIM1; k=rsa; p=MII")
    assert [r["kind"] for r in body["records"]] == ["dkim", "spf", "dmarc"]
    assert "private" not in response.content.decode().lower()
    listing = api.get("/api/v1/sending-domains").json()
    assert [item["domain"] for item in listing["items"]] == ["acme.example"]
    assert api.post("/api/v1/sending-domains", {"domain": "acme.example"}).status_code == 409
    assert api.post("/api/v1/sending-domains", {"domain": "nope"}).status_code == 422

    row = SendingDomain.objects.for_workspace(workspace).get()
    monkeypatch.setattr(
        dkim_keys,
        "_resolver",
        lambda: StubResolver({"k1._domainkey.acme.example": [split_quoted(row.record_value)]}),
    )
    checked = api.post(f"/api/v1/sending-domains/{row.pk}/check").json()
    assert checked["dkim_status"] == "found"
    assert checked["records"][0]["status"] == "found"
    assert checked["records"][1]["status"] == "not_found"
    assert api.get(f"/api/v1/sending-domains/{row.pk}").json()["dkim_status"] == "found"
    assert api.delete(f"/api/v1/sending-domains/{row.pk}").status_code == 204
    assert api.get(f"/api/v1/sending-domains/{row.pk}").status_code == 404
