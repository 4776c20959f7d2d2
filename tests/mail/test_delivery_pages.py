"""Settings → Email delivery and Settings → Sending domains, as pages."""

from __future__ import annotations

import pytest
import responses

from patron.core.crypto import decrypt_secret
from patron.core.models import AuditEntry
from patron.core.roles import Role
from patron.mail import delivery_config as delivery
from patron.mail import dkim_keys
from patron.mail.models import DeliveryConfig, SendingDomain, WorkspaceSmtpServer
from tests.conftest import member
from tests.factories import PASSWORD
from tests.mail.test_dkim_keys import StubResolver, split_quoted

pytestmark = pytest.mark.django_db

URL = "/settings/delivery/"
DOMAINS = "/settings/domains/"
SENDGRID_KEY = "SG.abcdefghijklmnopqrstuvwxyz0123456789"
SERVER = {
    "host": "smtp.acme.example",
    "port": "587",
    "security": "starttls",
    "username": "mailer",
    "password": "pa55-word-for-smtp",
    "weight": "1",
    "position": "",
    "verify_certificate": "on",
    "is_active": "on",
}


def test_page_shows_the_installation_default_and_the_settings_tabs(logged_in):
    page = logged_in.get(URL).content.decode()
    assert "This workspace uses the installation's transport (capture)." in page
    assert 'href="/settings/delivery/"' in page and 'href="/settings/domains/"' in page
    assert "No SMTP servers yet" in page


@pytest.mark.parametrize("role", [Role.MARKETING, Role.SALES, Role.AGENCY])
def test_only_owners_and_admins_manage_delivery(client, workspace, role):
    user = member(workspace, role)
    assert client.login(email=user.email, password=PASSWORD)
    assert client.get(URL).status_code == 403
    assert client.get(DOMAINS).status_code == 403
    assert client.post(URL, {"mode": "capture"}).status_code == 403
    assert 'href="/settings/delivery/"' not in client.get("/settings/senders/").content.decode()


def test_choose_an_esp_and_its_key_is_never_shown_back(logged_in, workspace, owner):
    response = logged_in.post(
        URL,
        {"mode": "esp", "esp_provider": "sendgrid", "sendgrid-secret": SENDGRID_KEY},
        follow=True,
    )
    page = response.content.decode()
    assert "Mail is now delivered with: SendGrid." in page
    assert "Mail goes through SendGrid." in page
    assert SENDGRID_KEY not in page
    assert "Stored: ••••••••6789. Leave blank to keep it." in page
    config = DeliveryConfig.objects.for_workspace(workspace).get()
    assert decrypt_secret(config.esp_secret) == SENDGRID_KEY
    # Saving again with the secret left blank keeps it.
    logged_in.post(URL, {"mode": "esp", "esp_provider": "sendgrid", "sendgrid-secret": ""})
    config.refresh_from_db()
    assert decrypt_secret(config.esp_secret) == SENDGRID_KEY
    assert AuditEntry.objects.filter(action="delivery.updated", actor=owner).count() == 2


def test_esp_errors_show_on_the_field_at_fault(logged_in, workspace):
    response = logged_in.post(
        URL,
        {
            "mode": "esp",
            "esp_provider": "mailgun",
            "mailgun-region": "us",
            "mailgun-domain": "not a domain",
            "mailgun-secret": "key-123",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_mailgun-domain_error"' in page
    assert "Enter the sending domain as set up in Mailgun" in page
    assert not DeliveryConfig.objects.for_workspace(workspace).exists()


def test_esp_without_provider_says_so(logged_in):
    response = logged_in.post(URL, {"mode": "esp", "esp_provider": ""})
    assert response.status_code == 400
    assert "Choose the email service provider." in response.content.decode()


def test_smtp_mode_asks_for_a_server_first(logged_in):
    response = logged_in.post(URL, {"mode": "smtp"})
    assert response.status_code == 400
    assert "Add an active SMTP server below before choosing SMTP delivery." in (
        response.content.decode()
    )


def test_add_edit_and_delete_an_smtp_server(logged_in, workspace):
    response = logged_in.post(URL + "servers/", SERVER, follow=True)
    page = response.content.decode()
    assert "SMTP server smtp.acme.example:587 added." in page
    assert "pa55-word-for-smtp" not in page
    assert "••••••••smtp" in page
    server = WorkspaceSmtpServer.objects.for_workspace(workspace).get()
    edit = logged_in.get(f"{URL}servers/{server.pk}/").content.decode()
    assert "Stored: ••••••••smtp. Leave blank to keep it." in edit
    assert "pa55-word-for-smtp" not in edit
    response = logged_in.post(
        f"{URL}servers/{server.pk}/", {**SERVER, "port": "2525", "password": ""}, follow=True
    )
    assert "SMTP server smtp.acme.example:2525 saved." in response.content.decode()
    server.refresh_from_db()
    assert decrypt_secret(server.password) == "pa55-word-for-smtp"
    response = logged_in.post(f"{URL}servers/{server.pk}/delete/", follow=True)
    assert "SMTP server smtp.acme.example:2525 deleted." in response.content.decode()
    assert not WorkspaceSmtpServer.objects.for_workspace(workspace).exists()


def test_bad_server_values_are_explained(logged_in, workspace):
    response = logged_in.post(URL + "servers/", {**SERVER, "security": "tls"})
    assert response.status_code == 400
    assert "Port 587 expects STARTTLS" in response.content.decode()
    response = logged_in.post(URL + "servers/", {**SERVER, "host": "smtp://x.example"})
    assert "without smtp://" in response.content.decode()


def test_the_last_server_in_use_cannot_be_deleted(logged_in, workspace):
    logged_in.post(URL + "servers/", SERVER)
    logged_in.post(URL, {"mode": "smtp"})
    server = WorkspaceSmtpServer.objects.for_workspace(workspace).get()
    response = logged_in.post(f"{URL}servers/{server.pk}/delete/", follow=True)
    assert "is the only active server and delivery uses SMTP" in response.content.decode()
    assert WorkspaceSmtpServer.objects.for_workspace(workspace).exists()


def test_test_message_needs_a_valid_address(logged_in):
    response = logged_in.post(URL + "test/", {"to_email": "nobody"})
    assert response.status_code == 400
    assert "is not a valid email address" in response.content.decode()


def test_add_a_sending_domain_and_see_its_record(logged_in, workspace):
    response = logged_in.post(DOMAINS, {"domain": "acme.example", "selector": "mail1"}, follow=True)
    page = response.content.decode()
    row = SendingDomain.objects.for_workspace(workspace).get()
    assert "DKIM key created for acme.example: publish the records below." in page
    assert "mail1._domainkey.acme.example" in page
    assert f"v=DKIM1; k=rsa; p={row.public_key}" in page
    assert "v=spf1 mx ~all" in page
    assert "_dmarc.acme.example" in page
    assert "Not checked" in page
    assert "PRIVATE KEY" not in page


def test_duplicate_domain_is_explained(logged_in, workspace):
    dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example")
    response = logged_in.post(DOMAINS, {"domain": "ACME.example"})
    assert response.status_code == 400
    assert "acme.example is a sending domain already." in response.content.decode()


def test_check_dns_shows_found_not_found_and_mismatch(logged_in, workspace, monkeypatch):
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example", selector="s1")
    records: dict = {}
    monkeypatch.setattr(dkim_keys, "_resolver", lambda: StubResolver(records))
    page = logged_in.post(f"{DOMAINS}{row.pk}/").content.decode()
    assert "Not found: no DKIM record is published at this name yet." in page
    records["s1._domainkey.acme.example"] = [split_quoted(row.record_value)]
    page = logged_in.post(f"{DOMAINS}{row.pk}/").content.decode()
    assert "Found: the published DKIM record matches this key." in page
    records["s1._domainkey.acme.example"] = ['"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"']
    page = logged_in.post(f"{DOMAINS}{row.pk}/").content.decode()
    assert "Mismatch: a DKIM record is published at this name, but with a different key" in page
    listing = logged_in.get(DOMAINS).content.decode()
    assert "Mismatch" in listing and "Checked" in listing


def test_delete_a_sending_domain(logged_in, workspace):
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example")
    response = logged_in.post(f"{DOMAINS}{row.pk}/delete/", follow=True)
    assert "acme.example deleted" in response.content.decode()
    assert not SendingDomain.objects.for_workspace(workspace).exists()


def test_describe_is_what_the_page_lists(logged_in, workspace):
    delivery.add_smtp_server(
        workspace=workspace, host="a.example", port=25, security="none", username="", password=""
    )
    page = logged_in.get(URL).content.decode()
    assert 'data-server="a.example:25"' in page


def test_send_test_message_shows_the_answer(logged_in, workspace):
    delivery.save_delivery(workspace=workspace, mode="capture")
    response = logged_in.post(URL + "test/", {"to_email": "ada@example.net"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Sent to ada@example.net." in page
    assert "250 kept in the Outbox" in page


def test_send_test_message_shows_why_the_configuration_cannot_be_used(
    logged_in, workspace, settings
):
    delivery.add_smtp_server(
        workspace=workspace, host="smtp.acme.example", username="u", password="secret-pw"
    )
    delivery.save_delivery(workspace=workspace, mode="smtp")
    settings.ENCRYPTION_KEYS = ["another key that cannot open what was stored"]
    page = logged_in.post(URL + "test/", {"to_email": "ada@example.net"}).content.decode()
    assert "Not sent: the saved settings cannot be used." in page
    assert "The password of smtp.acme.example:587 cannot be read: enter it again." in page


@responses.activate
def test_send_test_message_through_an_esp_shows_its_answer(logged_in, workspace):
    responses.add(
        responses.POST,
        "https://api.postmarkapp.com/email",
        status=422,
        json={"ErrorCode": 300, "Message": "Invalid 'From' address: 'patron@localhost'."},
    )
    delivery.save_delivery(
        workspace=workspace,
        mode="esp",
        esp_provider="postmark",
        esp_secret="1a2b3c4d-0000-4000-8000-123456789abc",
    )
    page = logged_in.post(URL + "test/", {"to_email": "ada@example.net"}).content.decode()
    assert "Not sent: refused." in page
    assert "Invalid &#x27;From&#x27; address" in page
    assert responses.calls[0].request.headers["X-Postmark-Server-Token"] == (
        "1a2b3c4d-0000-4000-8000-123456789abc"
    )


def test_an_esp_shows_its_webhook_address_and_keeps_a_signing_key(logged_in, workspace, owner):
    from patron.mail import esp_webhooks

    assert 'id="esp-webhook"' not in logged_in.get(URL).content.decode()
    logged_in.post(URL, {"mode": "esp", "esp_provider": "mailgun", "mailgun-secret": "key-1",
                         "mailgun-domain": "mg.acme.example", "mailgun-region": "us"})  # fmt: skip
    page = logged_in.get(URL).content.decode()
    assert esp_webhooks.webhook_url(workspace.pk, "mailgun") in page
    assert "No signing key yet" in page
    response = logged_in.post("/settings/delivery/webhook-key/", {"key": "whsec-123"}, follow=True)
    page = response.content.decode()
    assert "The webhook signing key is saved." in page
    assert "A signing key is kept" in page and "whsec-123" not in page
    config = DeliveryConfig.objects.for_workspace(workspace).get()
    assert decrypt_secret(config.esp_webhook_key) == "whsec-123"
    assert AuditEntry.objects.filter(action="delivery.webhook_key_changed", actor=owner).exists()
    logged_in.post("/settings/delivery/webhook-key/", {"key": ""})
    config.refresh_from_db()
    assert config.esp_webhook_key == ""


def test_received_reports_are_listed_and_the_unreadable_ones_downloadable(
    logged_in, workspace, client
):
    from patron.mail.models import ReceivedBounce

    read = ReceivedBounce.objects.create(
        workspace=workspace, delivery_id=1, recipient="bounce+abc@return.acme.example",
        raw=b"Subject: failure", result="hard", processed_at="2026-11-02T10:00:00Z",
    )  # fmt: skip
    unread = ReceivedBounce.objects.create(
        workspace=workspace, delivery_id=2, recipient="fbl@return.acme.example",
        raw=b"Subject: what is this\r\n\r\n<b>", result="unreadable",
        problem="No delivery status and no known wording.", processed_at="2026-11-02T10:00:00Z",
    )  # fmt: skip
    page = logged_in.get("/settings/delivery/reports/").content.decode()
    assert f'data-report="{read.pk}"' in page and f'data-report="{unread.pk}"' in page
    assert "Hard bounce" in page and "Could not be read (1)" in page
    page = logged_in.get("/settings/delivery/reports/?show=unread").content.decode()
    assert f'data-report="{read.pk}"' not in page
    assert "No delivery status and no known wording." in page
    raw = logged_in.get(f"/settings/delivery/reports/{unread.pk}/raw/")
    assert raw["Content-Type"] == "message/rfc822"
    assert raw.content == b"Subject: what is this\r\n\r\n<b>"
    assert 'filename="report-' in raw["Content-Disposition"]
    marketer = member(workspace, Role.MARKETING)
    client.force_login(marketer)
    assert client.get("/settings/delivery/reports/").status_code == 403
