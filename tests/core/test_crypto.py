"""Stored secrets: encrypted at rest, readable with any configured key, masked when shown."""

from __future__ import annotations

import pytest

from patron.core.crypto import (
    SecretUnreadable,
    decrypt_secret,
    encrypt_secret,
    mask_secret,
    reencrypt_secret,
)

OLD = "an old encryption passphrase, long enough to be a key"
NEW = "the new encryption passphrase that replaces the old one"


def test_round_trip_and_the_token_does_not_contain_the_secret(settings):
    settings.ENCRYPTION_KEYS = [NEW]
    token = encrypt_secret("SG.very-secret-api-key")
    assert "very-secret" not in token
    assert decrypt_secret(token) == "SG.very-secret-api-key"
    # Fernet tokens carry a random IV: the same secret never encrypts the same twice.
    assert encrypt_secret("SG.very-secret-api-key") != token


def test_empty_stays_empty(settings):
    assert encrypt_secret("") == ""
    assert decrypt_secret("") == ""


def test_a_token_of_another_key_is_unreadable(settings):
    settings.ENCRYPTION_KEYS = [OLD]
    token = encrypt_secret("hunter2")
    settings.ENCRYPTION_KEYS = [NEW]
    with pytest.raises(SecretUnreadable):
        decrypt_secret(token)
    with pytest.raises(SecretUnreadable):
        decrypt_secret("not a token at all")


def test_rotation_reads_old_tokens_and_rewrites_them_with_the_new_key(settings):
    settings.ENCRYPTION_KEYS = [OLD]
    token = encrypt_secret("hunter2")
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    assert decrypt_secret(token) == "hunter2"
    rotated = reencrypt_secret(token)
    settings.ENCRYPTION_KEYS = [NEW]
    assert decrypt_secret(rotated) == "hunter2"
    with pytest.raises(SecretUnreadable):
        decrypt_secret(token)


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("", ""),
        ("short", "••••••••"),
        ("SG.abcdefghijklmnop1234", "••••••••1234"),
    ],
)
def test_mask_shows_at_most_the_last_four_characters_of_long_secrets(secret, shown):
    assert mask_secret(secret) == shown


@pytest.mark.django_db
def test_rotate_secrets_command_rewrites_every_stored_secret(settings, workspace):
    from io import StringIO

    from django.core.management import call_command

    from patron.mail import delivery_config, dkim_keys
    from patron.mail.models import DeliveryConfig, SendingDomain, WorkspaceSmtpServer

    settings.ENCRYPTION_KEYS = [OLD]
    delivery_config.add_smtp_server(
        workspace=workspace, host="smtp.example.com", username="u", password="smtp-pass"
    )
    delivery_config.save_delivery(
        workspace=workspace,
        mode="esp",
        esp_provider="sendgrid",
        esp_secret="SG.0123456789abcdef",
    )
    dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example")
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "Re-encrypted 3 secrets; 0 unreadable." in out.getvalue()
    settings.ENCRYPTION_KEYS = [NEW]  # the old key is gone: everything still opens
    server = WorkspaceSmtpServer.objects.for_workspace(workspace).get()
    assert decrypt_secret(server.password) == "smtp-pass"
    config = DeliveryConfig.objects.for_workspace(workspace).get()
    assert decrypt_secret(config.esp_secret) == "SG.0123456789abcdef"
    key = SendingDomain.objects.for_workspace(workspace).get().private_key
    assert decrypt_secret(key).startswith("-----BEGIN PRIVATE KEY-----")
