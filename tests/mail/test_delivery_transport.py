"""The transport a workspace's configuration makes, a test message through a real SMTP
server (aiosmtpd on loopback), and per-workspace DKIM signing checked by dkimpy."""

from __future__ import annotations

import email
import email.policy

import dkim as dkimpy
import pytest

from patron.core.models import AuditEntry
from patron.mail import delivery_config as delivery
from patron.mail import dkim_keys, senders
from patron.mail.esp import EspTransport
from patron.mail.models import OutboxMessage, SendingDomain
from patron.mail.transports import CaptureTransport, Outcome, SmtpTransport
from tests.mail.smtp_servers import MailServer, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def use_smtp(workspace, server: MailServer | None = None, port: int | None = None, **values):
    delivery.add_smtp_server(
        workspace=workspace,
        host="127.0.0.1",
        port=port or server.port,
        security="none",
        username="",
        password="",
        **values,
    )
    delivery.save_delivery(workspace=workspace, mode="smtp")


def test_each_mode_makes_its_transport(workspace):
    assert delivery.workspace_transport(workspace.pk) is None
    delivery.save_delivery(workspace=workspace, mode="capture")
    assert isinstance(delivery.workspace_transport(workspace.pk), CaptureTransport)
    delivery.add_smtp_server(
        workspace=workspace, host="b.example", port=2525, security="none", weight=3, position=2
    )
    delivery.add_smtp_server(
        workspace=workspace,
        host="a.example",
        port=465,
        security="tls",
        username="u",
        password="pw-for-a",
        position=1,
        verify_certificate=False,
    )
    delivery.add_smtp_server(workspace=workspace, host="off.example", is_active=False)
    delivery.save_delivery(workspace=workspace, mode="smtp")
    transport = delivery.workspace_transport(workspace.pk)
    assert isinstance(transport, SmtpTransport)
    first, second = transport.servers
    assert (first.host, first.port, first.tls, first.username, first.password) == (
        "a.example",
        465,
        "tls",
        "u",
        "pw-for-a",
    )
    assert first.verify is False
    assert (second.host, second.tls, second.weight) == ("b.example", "none", 3)
    delivery.save_delivery(
        workspace=workspace,
        mode="esp",
        esp_provider="mailgun",
        esp_region="eu",
        esp_domain="mg.acme.example",
        esp_secret="key-abc",
    )
    transport = delivery.workspace_transport(workspace.pk)
    assert isinstance(transport, EspTransport)
    assert transport.backend.api_key == "key-abc"
    assert transport.backend.api_url.startswith("https://api.eu.mailgun.net/")


def test_test_message_arrives_through_the_workspaces_smtp_server(workspace, owner):
    senders.create_sender(
        workspace=workspace,
        from_name="Acme News",
        from_email="news@acme.example",
        postal_address="Acme Ltd",
    )
    with MailServer() as server:
        use_smtp(workspace, server)
        result = delivery.send_test_message(
            workspace=workspace, to_email="ada@example.net", actor=owner
        )
    assert result.outcome == Outcome.SENT
    assert result.code == 250
    assert "queued" in result.reply
    (received,) = server.messages
    assert received.recipients == ["ada@example.net"]
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    # No verified sender yet: the installation's address sends the test.
    assert "Test message from Acme" in str(parsed["Subject"])
    assert AuditEntry.objects.filter(action="delivery.test_sent", target="ada@example.net").exists()


def test_test_message_shows_the_servers_refusal(workspace):
    with MailServer() as server:
        use_smtp(workspace, server)
        result = delivery.send_test_message(workspace=workspace, to_email="unknown@example.net")
    assert result.outcome == Outcome.FAILED
    assert result.code == 550
    assert "No such user here" in result.reply
    assert server.messages == []


def test_a_server_that_is_down_is_a_retry_with_the_reason(workspace):
    use_smtp(workspace, port=free_port())  # nothing listens there
    result = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
    assert result.outcome == Outcome.RETRY
    assert result.reply


def test_fail_over_to_the_next_server(workspace):
    with MailServer() as backup:
        use_smtp(workspace, port=free_port(), position=1)
        delivery.add_smtp_server(
            workspace=workspace, host="127.0.0.1", port=backup.port, security="none", position=2
        )
        result = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
    assert result.outcome == Outcome.SENT
    assert len(backup.messages) == 1


def test_capture_mode_keeps_the_test_in_the_outbox(workspace):
    delivery.save_delivery(workspace=workspace, mode="capture")
    result = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
    assert result.outcome == Outcome.SENT
    message = OutboxMessage.objects.get()
    assert message.workspace_id == workspace.pk
    assert message.to == ["ada@example.net"]


def test_default_mode_uses_the_installation_transport(workspace, settings):
    settings.EMAIL_TRANSPORT = "capture"
    result = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
    assert result.outcome == Outcome.SENT
    assert OutboxMessage.objects.filter(to=["ada@example.net"]).exists()


def test_transport_for_asks_the_workspace_first(workspace, settings):
    """Campaign mail and one-to-one mail take ``transport_for``: the workspace's
    settings win over the installation's, and a workspace without any uses those."""
    from patron.mail.transports import transport_for

    settings.EMAIL_TRANSPORT = "capture"
    assert isinstance(transport_for(workspace.pk), CaptureTransport)
    delivery.add_smtp_server(workspace=workspace, host="smtp.acme.example", port=2525)
    delivery.save_delivery(workspace=workspace, mode="smtp")
    transport = transport_for(workspace.pk)
    assert isinstance(transport, SmtpTransport)
    assert [server.host for server in transport.servers] == ["smtp.acme.example"]
    from tests.factories import WorkspaceFactory

    assert isinstance(transport_for(WorkspaceFactory().pk), CaptureTransport)
    assert isinstance(transport_for(None), CaptureTransport)


# --- DKIM -------------------------------------------------------------------------------------


def dkim_verifies(message: bytes, row: SendingDomain) -> bool:
    """dkimpy verifies the message against the TXT record Patron told the user to publish."""

    def dns(name, timeout=5):
        assert name == f"{row.record_name}.".encode()
        return row.record_value.encode()

    return bool(dkimpy.verify(message, dnsfunc=dns))


def test_workspace_signer_only_once_the_record_was_found(workspace):
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example", selector="k1")
    assert dkim_keys.workspace_signer(workspace.pk, "acme.example") is None
    SendingDomain.objects.for_workspace(workspace).filter(pk=row.pk).update(dkim_status="found")
    signer = dkim_keys.workspace_signer(workspace.pk, "acme.example")
    assert signer is not None
    assert (signer.domain, signer.selector) == ("acme.example", "k1")
    # Subdomains sign with the parent's key (relaxed DMARC alignment).
    assert dkim_keys.workspace_signer(workspace.pk, "news.acme.example").domain == "acme.example"
    assert dkim_keys.workspace_signer(workspace.pk, "other.example") is None
    assert dkim_keys.workspace_signer(None, "acme.example") is None
    from tests.factories import WorkspaceFactory

    assert dkim_keys.workspace_signer(WorkspaceFactory().pk, "acme.example") is None


def test_the_test_message_is_signed_with_the_workspace_key(workspace):
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example", selector="k1")
    SendingDomain.objects.for_workspace(workspace).filter(pk=row.pk).update(dkim_status="found")
    row.refresh_from_db()
    identity = senders.create_sender(
        workspace=workspace,
        from_name="Acme News",
        from_email="news@acme.example",
        postal_address="Acme Ltd",
    )
    senders.verify_sender(token=senders.verification_token(identity))
    with MailServer() as server:
        use_smtp(workspace, server)
        result = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
    assert result.outcome == Outcome.SENT
    (received,) = server.messages
    assert received.data.startswith(b"DKIM-Signature:")
    assert b"d=acme.example" in received.data and b"s=k1" in received.data
    assert dkim_verifies(received.data, row)


def test_signer_for_prefers_the_workspace_key_to_the_installation_key(workspace):
    from patron.mail.dkim import signer_for

    assert signer_for(workspace.pk, "acme.example") is None
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example", selector="k1")
    assert signer_for(workspace.pk, "acme.example") is None  # not published yet
    SendingDomain.objects.for_workspace(workspace).filter(pk=row.pk).update(dkim_status="found")
    signer = signer_for(workspace.pk, "ACME.example")
    assert signer is not None and (signer.domain, signer.selector) == ("acme.example", "k1")
    from tests.factories import WorkspaceFactory

    assert signer_for(WorkspaceFactory().pk, "acme.example") is None


# The loopback test server takes AUTH without TLS (aiosmtpd warns about it, rightly).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_stored_password_logs_in_to_the_server(workspace):
    with MailServer(credentials=("mailer", "pa55-word-for-smtp")) as server:
        delivery.add_smtp_server(
            workspace=workspace,
            host="127.0.0.1",
            port=server.port,
            security="none",
            username="mailer",
            password="pa55-word-for-smtp",
        )
        delivery.save_delivery(workspace=workspace, mode="smtp")
        assert delivery.send_test_message(
            workspace=workspace, to_email="ada@example.net"
        ).outcome == (Outcome.SENT)
        (server_row,) = delivery.smtp_servers(workspace)
        delivery.update_smtp_server(server=server_row, password="a-wrong-password")
        refused = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
    assert len(server.messages) == 1
    assert refused.outcome != Outcome.SENT
    assert "535" in f"{refused.code} {refused.reply}"


def test_starttls_with_a_self_signed_certificate_needs_verification_off(workspace, tmp_path):
    from tests.mail.smtp_servers import self_signed

    with MailServer(tls_files=self_signed(tmp_path)) as server:
        delivery.add_smtp_server(
            workspace=workspace, host="127.0.0.1", port=server.port, security="starttls"
        )
        delivery.save_delivery(workspace=workspace, mode="smtp")
        checked = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
        (server_row,) = delivery.smtp_servers(workspace)
        delivery.update_smtp_server(server=server_row, verify_certificate=False)
        unchecked = delivery.send_test_message(workspace=workspace, to_email="ada@example.net")
    assert checked.outcome == Outcome.RETRY
    assert "certificate" in checked.reply.lower()
    assert unchecked.outcome == Outcome.SENT
    assert len(server.messages) == 1


def test_an_unreadable_dkim_key_means_unsigned_not_broken(workspace, settings, caplog):
    row = dkim_keys.add_sending_domain(workspace=workspace, domain="acme.example")
    SendingDomain.objects.for_workspace(workspace).filter(pk=row.pk).update(dkim_status="found")
    settings.ENCRYPTION_KEYS = ["a key that did not encrypt this private key at all"]
    assert dkim_keys.workspace_signer(workspace.pk, "acme.example") is None
    assert "cannot be decrypted" in caplog.text
