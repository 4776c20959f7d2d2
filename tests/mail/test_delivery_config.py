"""The workspace's delivery configuration: validation, encrypted secrets, masking, audit."""

from __future__ import annotations

import pytest

from patron.core.crypto import decrypt_secret, encrypt_secret
from patron.core.models import AuditEntry
from patron.mail import delivery_config as delivery
from patron.mail.models import DeliveryConfig, WorkspaceSmtpServer

pytestmark = pytest.mark.django_db

SENDGRID_KEY = "SG.abcdefghijklmnopqrstuvwxyz0123456789"
POSTMARK_TOKEN = "1a2b3c4d-0000-4000-8000-123456789abc"


def add_server(workspace, **values):
    defaults = {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "mailer",
        "password": "s3cret-password!",
    }
    return delivery.add_smtp_server(workspace=workspace, **{**defaults, **values})


def test_no_configuration_means_the_installation_default(workspace):
    assert delivery.describe_delivery(workspace)["mode"] == "default"
    assert delivery.workspace_transport(workspace.pk) is None
    assert delivery.workspace_transport(None) is None


def test_esp_secret_is_stored_encrypted_and_shown_masked(workspace, owner):
    config = delivery.save_delivery(
        workspace=workspace,
        mode="esp",
        actor=owner,
        esp_provider="sendgrid",
        esp_secret=SENDGRID_KEY,
    )
    stored = DeliveryConfig.objects.for_workspace(workspace).get()
    assert SENDGRID_KEY not in stored.esp_secret
    assert decrypt_secret(stored.esp_secret) == SENDGRID_KEY
    shown = delivery.describe_delivery(workspace)
    assert shown["mode"] == "esp"
    assert shown["esp"]["provider"] == "sendgrid"
    assert shown["esp"]["secret"] == "••••••••6789"
    assert SENDGRID_KEY not in str(shown)
    audit = AuditEntry.objects.get(action="delivery.updated")
    assert audit.actor == owner
    assert audit.data == {
        "mode": "esp",
        "previous_mode": "default",
        "esp_provider": "sendgrid",
        "secret_changed": True,
    }
    assert SENDGRID_KEY not in str(audit.data)
    assert config.updated_by == owner


def test_a_blank_secret_keeps_the_stored_one_of_the_same_provider_only(workspace):
    delivery.save_delivery(
        workspace=workspace,
        mode="esp",
        esp_provider="mailgun",
        esp_region="eu",
        esp_domain="mg.acme.example",
        esp_secret="key-mailgun-0123456789",
    )
    delivery.save_delivery(
        workspace=workspace,
        mode="esp",
        esp_provider="mailgun",
        esp_region="us",
        esp_domain="mg.acme.example",
        esp_secret="",
    )
    config = DeliveryConfig.objects.for_workspace(workspace).get()
    assert config.esp_region == "us"
    assert decrypt_secret(config.esp_secret) == "key-mailgun-0123456789"
    # Another provider never inherits the Mailgun key.
    with pytest.raises(delivery.DeliveryInvalid) as caught:
        delivery.save_delivery(workspace=workspace, mode="esp", esp_provider="postmark")
    assert caught.value.errors == {"esp_secret": "Enter the server token."}


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"esp_provider": ""}, {"esp_provider": "Choose the email service provider."}),
        (
            {"esp_provider": "amazon_ses", "esp_secret": "x" * 40, "esp_region": "europe"},
            {"esp_region", "esp_access_key_id"},
        ),
        (
            {"esp_provider": "mailgun", "esp_secret": "key", "esp_region": "asia"},
            {"esp_region", "esp_domain"},
        ),
        ({"esp_provider": "sendgrid", "esp_secret": "abc"}, {"esp_secret"}),
        ({"esp_provider": "postmark", "esp_secret": "not-a-token"}, {"esp_secret"}),
        ({"esp_provider": "sendgrid"}, {"esp_secret"}),
    ],
)
def test_esp_values_are_checked_field_by_field(workspace, values, errors):
    with pytest.raises(delivery.DeliveryInvalid) as caught:
        delivery.save_delivery(workspace=workspace, mode="esp", **values)
    if isinstance(errors, dict):
        assert caught.value.errors == errors
    else:
        assert set(caught.value.errors) == errors
    assert not DeliveryConfig.objects.for_workspace(workspace).exists()


def test_ses_needs_region_access_key_and_secret(workspace):
    delivery.save_delivery(
        workspace=workspace,
        mode="esp",
        esp_provider="amazon_ses",
        esp_region="eu-west-1",
        esp_access_key_id="AKIAIOSFODNN7EXAMPLE",
        esp_secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    shown = delivery.describe_delivery(workspace)["esp"]
    assert shown["region"] == "eu-west-1"
    assert shown["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"
    assert shown["secret"] == "••••••••EKEY"


def test_smtp_needs_an_active_server_first(workspace):
    with pytest.raises(delivery.DeliveryInvalid) as caught:
        delivery.save_delivery(workspace=workspace, mode="smtp")
    assert "Add an active SMTP server" in caught.value.errors["mode"]
    add_server(workspace, is_active=False)
    with pytest.raises(delivery.DeliveryInvalid):
        delivery.save_delivery(workspace=workspace, mode="smtp")
    add_server(workspace, host="smtp2.example.com")
    assert delivery.save_delivery(workspace=workspace, mode="smtp").mode == "smtp"


def test_smtp_password_is_encrypted_masked_and_kept_when_blank(workspace, owner):
    server = add_server(workspace, password="correct-horse-battery")
    assert "correct-horse" not in server.password
    assert decrypt_secret(server.password) == "correct-horse-battery"
    (shown,) = delivery.describe_delivery(workspace)["smtp_servers"]
    assert shown["password"] == "••••••••tery"
    server = delivery.update_smtp_server(server=server, actor=owner, port=2525, password="")
    assert server.port == 2525
    assert decrypt_secret(server.password) == "correct-horse-battery"
    server = delivery.update_smtp_server(server=server, password="a-new-password-here")
    assert decrypt_secret(server.password) == "a-new-password-here"
    # Clearing the username clears the password too: no orphan credential stays behind.
    server = delivery.update_smtp_server(server=server, username="")
    assert server.password == ""
    actions = list(AuditEntry.objects.values_list("action", flat=True).order_by("id"))
    assert actions == ["delivery.smtp_server_added"] + ["delivery.smtp_server_updated"] * 3


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"host": ""}, "host", "Enter the server's host name"),
        ({"host": "smtp://mail.example.com"}, "host", "without smtp://"),
        ({"host": "bad_host!"}, "host", "is not a valid host name"),
        ({"port": 0}, "port", "between 1 and 65535"),
        ({"port": 587, "security": "tls"}, "port", "Port 587 expects STARTTLS"),
        ({"port": 465, "security": "starttls"}, "port", "Port 465 expects TLS"),
        ({"security": "ssl3"}, "security", "Choose STARTTLS, TLS or none"),
        ({"password": ""}, "password", "Enter the password for this username"),
        ({"username": ""}, "username", "Enter the username that goes with the password"),
        ({"weight": 500}, "weight", "between 1 and 100"),
    ],
)
def test_smtp_server_values_say_what_is_wrong(workspace, values, field, message):
    with pytest.raises(delivery.DeliveryInvalid) as caught:
        add_server(workspace, **values)
    assert message in caught.value.errors[field]
    assert not WorkspaceSmtpServer.objects.for_workspace(workspace).exists()


def test_ip_addresses_are_hosts_too(workspace):
    assert add_server(workspace, host="127.0.0.1", port=25, security="none").host == "127.0.0.1"


def test_new_servers_go_last_in_fail_over_order(workspace):
    first = add_server(workspace)
    second = add_server(workspace, host="backup.example.com")
    assert [s.pk for s in delivery.smtp_servers(workspace)] == [first.pk, second.pk]
    delivery.update_smtp_server(server=second, position=0)
    assert [s.pk for s in delivery.smtp_servers(workspace)] == [second.pk, first.pk]


def test_the_last_active_server_stays_while_delivery_uses_smtp(workspace):
    server = add_server(workspace)
    delivery.save_delivery(workspace=workspace, mode="smtp")
    with pytest.raises(delivery.DeliveryInvalid):
        delivery.delete_smtp_server(server=server)
    with pytest.raises(delivery.DeliveryInvalid):
        delivery.update_smtp_server(server=server, is_active=False)
    other = add_server(workspace, host="backup.example.com")
    delivery.delete_smtp_server(server=server)
    assert list(delivery.smtp_servers(workspace)) == [other]


def test_unreadable_secrets_are_reported_not_used(workspace, settings):
    server = add_server(workspace)
    delivery.save_delivery(workspace=workspace, mode="smtp")
    WorkspaceSmtpServer.objects.for_workspace(workspace).update(
        password=encrypt_secret("x").replace("A", "B", 3)
    )
    settings.ENCRYPTION_KEYS = ["a key that never encrypted anything here at all"]
    (shown,) = delivery.describe_delivery(workspace)["smtp_servers"]
    assert "unreadable" in shown["password"]
    with pytest.raises(delivery.DeliveryUnavailable, match=str(server.host)):
        delivery.workspace_transport(workspace.pk)


def test_other_workspaces_do_not_see_the_configuration(workspace):
    from tests.factories import WorkspaceFactory

    add_server(workspace)
    delivery.save_delivery(
        workspace=workspace, mode="esp", esp_provider="postmark", esp_secret=POSTMARK_TOKEN
    )
    other = WorkspaceFactory()
    shown = delivery.describe_delivery(other)
    assert shown["mode"] == "default"
    assert shown["smtp_servers"] == []
    assert delivery.workspace_transport(other.pk) is None
