"""The inbound SMTP server, spoken to over a real SMTP conversation on loopback."""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage

import pytest
from django.conf import settings

from patron.activity.models import Event
from patron.audience import lists
from patron.audience.models import ConsentSource, Subscription, Suppression
from patron.mail import inbound, links, mime, tokens
from patron.mail.models import ReceivedBounce
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(settings):
    settings.INBOUND_MAX_BYTES = 200_000
    controller = inbound.build_server("127.0.0.1", free_port())
    controller.start()
    yield controller
    controller.stop()
    controller.handler.close()


@pytest.fixture
def smtp(server):
    connection = smtplib.SMTP(server.hostname, server.port, timeout=10)
    connection.ehlo("mx.sender.example")
    yield connection
    connection.close()


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def contact(workspace):
    return ContactFactory(workspace=workspace, first_name="Ann", email="ann@globex.example")


def reply_message(to: str, *, text: str = "", html: str = "", subject: str = "Re: Your quote"):
    message = EmailMessage()
    message["From"] = "Ann Lee <ann@globex.example>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<reply-1@globex.example>"
    message["In-Reply-To"] = "<personal.abc@acme.example>"
    if text:
        message.set_content(text)
    if html:
        if text:
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
    return message


def received(contact):
    return list(
        Event.objects.for_workspace(contact.workspace_id).filter(
            kind="email.received", contact_id=contact.pk
        )
    )


def test_a_reply_lands_on_the_right_contacts_timeline(smtp, workspace, contact):
    other = ContactFactory(workspace=workspace, email="bob@globex.example")
    address = links.reply_address(workspace.pk, contact.pk)
    text = (
        "Yes, Thursday works.\n\nAnn\n\n"
        "On Tue, 1 Dec 2026 at 10:00, Olivia Owner <owner@acme.example> wrote:\n"
        "> Would Thursday suit you?\n> Olivia\n"
    )
    smtp.send_message(reply_message(address, text=text), from_addr="ann@globex.example")
    (event,) = received(contact)
    assert event.properties["subject"] == "Re: Your quote"
    assert event.properties["from"] == "Ann Lee <ann@globex.example>"
    assert event.properties["body"] == "Yes, Thursday works.\n\nAnn"
    assert event.properties["trimmed"] is True
    assert event.properties["in_reply_to"] == "<personal.abc@acme.example>"
    assert not received(other)
    # Delivered again (the sender did not hear our answer): recorded once.
    smtp.send_message(reply_message(address, text=text), from_addr="ann@globex.example")
    assert len(received(contact)) == 1


def test_an_html_only_reply_is_kept_as_text(smtp, workspace, contact, client):
    address = links.reply_address(workspace.pk, contact.pk)
    html = (
        "<html><body><p>Hello <b>there</b> &lt;script&gt;alert(1)&lt;/script&gt;</p>"
        "<script>evil()</script></body></html>"
    )
    smtp.send_message(reply_message(address, html=html), from_addr="ann@globex.example")
    (event,) = received(contact)
    assert event.properties["body"] == "Hello there <script>alert(1)</script>"
    # Shown escaped on the contact's page.
    from tests.factories import PASSWORD, MembershipFactory, UserFactory

    user = UserFactory(email="olivia@acme.example")
    MembershipFactory(workspace=workspace, user=user, role="owner")
    client.login(email=user.email, password=PASSWORD)
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Hello there &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_unknown_recipients_are_refused_with_550(smtp, workspace, contact):
    token = links.reply_address(workspace.pk, contact.pk).split("@")[0]
    for address in (
        "someone@example.com",  # not our domain: no relaying
        f"postmaster@{settings.INBOUND_DOMAIN}",  # ours, but not an address we hand out
        f"{token}@elsewhere.example",  # a good token at another domain
    ):
        code, reply = smtp.rcpt(address) if smtp.mail("x@sender.example")[0] == 250 else (0, b"")
        assert code == 550, (address, reply)
        smtp.rset()


def test_a_tampered_token_is_refused(smtp, workspace, contact):
    local = links.reply_address(workspace.pk, contact.pk).split("@")[0]
    tampered = local[:-1] + ("A" if local[-1] != "A" else "B")
    smtp.mail("ann@globex.example")
    code, _reply = smtp.rcpt(f"{tampered}@{settings.INBOUND_DOMAIN}")
    assert code == 550
    # A token of another kind at the reply prefix is refused too.
    unsub = tokens.sign("unsub", workspace.pk, contact.pk, 0)
    code, _reply = smtp.rcpt(f"reply+{unsub}@{settings.INBOUND_DOMAIN}")
    assert code == 550
    smtp.rset()
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        smtp.send_message(
            reply_message(f"{tampered}@{settings.INBOUND_DOMAIN}", text="hi"),
            from_addr="ann@globex.example",
        )
    assert not received(contact)


def test_a_deleted_contacts_address_is_refused(smtp, workspace, contact):
    address = links.reply_address(workspace.pk, contact.pk)
    contact.delete()
    smtp.mail("ann@globex.example")
    assert smtp.rcpt(address)[0] == 550


def test_one_recipient_refused_the_other_accepted(smtp, workspace, contact):
    good = links.reply_address(workspace.pk, contact.pk)
    refused = smtp.send_message(
        reply_message(good, text="Thanks"),
        from_addr="ann@globex.example",
        to_addrs=[good, "nobody@example.com"],
    )
    assert list(refused) == ["nobody@example.com"]
    assert len(received(contact)) == 1


def test_too_big_a_message_is_refused(smtp, workspace, contact):
    address = links.reply_address(workspace.pk, contact.pk)
    with pytest.raises(smtplib.SMTPResponseException) as caught:
        smtp.send_message(
            reply_message(address, text="x" * 300_000), from_addr="ann@globex.example"
        )
    assert caught.value.smtp_code == 552
    assert not received(contact)


def test_unsubscribe_by_mail(smtp, workspace, contact):
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    lists.subscribe(
        mailing_list=newsletter, contact=contact, consent=lists.Consent(source=ConsentSource.MANUAL)
    )
    address = links.unsubscribe_mailto(workspace.pk, contact.pk, 5)
    message = EmailMessage()
    message["From"] = "ann@globex.example"
    message["To"] = address
    message["Subject"] = "unsubscribe"
    smtp.send_message(message, from_addr="ann@globex.example")
    assert Subscription.objects.for_workspace(workspace).get().status == "unsubscribed"
    assert Suppression.objects.for_workspace(workspace).get().email == "ann@globex.example"
    event = Event.objects.for_workspace(workspace).get(kind="email.unsubscribed")
    assert event.properties["method"] == "mailto"
    assert event.properties["campaign"] == 5


def test_a_bounce_is_stored_raw(smtp, workspace):
    address = mime.verp_address(workspace.pk, 1234)
    report = (
        b"From: MAILER-DAEMON@mx.globex.example\r\nTo: " + address.encode() + b"\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n\r\n550 5.1.1 user unknown\r\n"
    )
    smtp.sendmail("", [address], report)
    bounce = ReceivedBounce.objects.for_workspace(workspace).get()
    assert bounce.delivery_id == 1234
    assert bounce.recipient == address
    assert bounce.envelope_from == "<>" or bounce.envelope_from == ""
    assert b"550 5.1.1 user unknown" in bytes(bounce.raw)
    # Processing was enqueued at once (tests run tasks inline): delivery 1234 does not
    # exist, so the row is kept, processed, with why.
    assert bounce.processed_at is not None
    assert (bounce.result, bounce.problem) == (
        "ignored",
        "The delivery this report names no longer exists.",
    )


def test_tenant_safety_a_reply_token_never_reaches_another_workspace(smtp, workspace, contact):
    other = WorkspaceFactory(name="Other", slug="other")
    stranger = ContactFactory(workspace=other, email="zed@example.net")
    forged = f"reply+{tokens.sign('reply', workspace.pk, stranger.pk)}@{settings.INBOUND_DOMAIN}"
    smtp.mail("x@sender.example")
    assert smtp.rcpt(forged)[0] == 550
    smtp.rset()
    assert not Event.objects.for_workspace(other).filter(kind="email.received").exists()


# --- Reading replies, without the network ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Fine.\n\nOn Mon, Olivia wrote:\n> old", "Fine."),
        ("Fine.\nOn Mon, 30 Nov 2026, Olivia Owner\n<owner@acme.example> wrote:\n> old", "Fine."),
        ("Fine.\n\n-----Original Message-----\nFrom: x\n\nold", "Fine."),
        ("Fine.\n\nFrom: Olivia <o@acme.example>\nSent: Monday\nTo: Ann\n\nold", "Fine."),
        ("Fine.\n\n> quoted\n> more\n", "Fine."),
        ("> a question?\nAn answer.\n> another?\nAnother answer.", None),
        ("> only quoted", None),
    ],
)
def test_trim_quoted(text, kept):
    result, trimmed = inbound.trim_quoted(text)
    if kept is None:
        assert result == text.strip() and not trimmed
    else:
        assert result == kept and trimmed


def self_signed(tmp_path):
    """A certificate and key for 127.0.0.1, made for the test."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "in.acme.example")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_starttls_when_a_certificate_is_configured(settings, tmp_path, workspace, contact):
    import ssl

    settings.INBOUND_TLS_CERT_FILE, settings.INBOUND_TLS_KEY_FILE = self_signed(tmp_path)
    controller = inbound.build_server("127.0.0.1", free_port())
    controller.start()
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as smtp:
            smtp.ehlo("mx.sender.example")
            assert smtp.has_extn("starttls")
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # self-signed: what is tested is the switch
            assert smtp.starttls(context=context)[0] == 220
            smtp.ehlo("mx.sender.example")
            address = links.reply_address(workspace.pk, contact.pk)
            smtp.send_message(reply_message(address, text="Over TLS."), from_addr="a@b.example")
    finally:
        controller.stop()
        controller.handler.close()
    (event,) = received(contact)
    assert event.properties["body"] == "Over TLS."


def test_without_a_certificate_no_starttls_is_offered(smtp):
    assert not smtp.has_extn("starttls")


def test_a_certificate_without_its_key_is_refused(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.INBOUND_TLS_CERT_FILE, settings.INBOUND_TLS_KEY_FILE = "/some/cert.pem", ""
    with pytest.raises(ImproperlyConfigured):
        inbound.build_server("127.0.0.1", free_port())


def test_the_writer_is_told_of_a_reply_but_not_of_an_auto_reply(smtp, workspace, contact):
    from patron.core.models import Notification
    from patron.mail import personal, senders
    from tests.factories import MembershipFactory, UserFactory

    seller = UserFactory(email="sam@acme.example", name="Sam Seller")
    MembershipFactory(workspace=workspace, user=seller, role="sales")
    identity = senders.create_sender(
        workspace=workspace, from_name="Acme", from_email="news@acme.example", postal_address="1"
    )
    senders.verify_sender(token=senders.verification_token(identity))
    personal.send_personal_email(
        workspace=workspace,
        contact=contact,
        user=seller,
        to_email=contact.email,
        subject="Your quote",
        body="Here it is.",
    )
    address = links.reply_address(workspace.pk, contact.pk)
    away = reply_message(address, text="I am away until Monday.", subject="Out of office")
    away.replace_header("Message-ID", "<away-1@globex.example>")
    away["Auto-Submitted"] = "auto-replied"
    smtp.send_message(away, from_addr="ann@globex.example")
    assert not Notification.objects.for_workspace(workspace).exists()
    smtp.send_message(reply_message(address, text="Thanks!"), from_addr="ann@globex.example")
    (note,) = Notification.objects.for_workspace(workspace)
    assert note.user_id == seller.pk
    assert note.text == f"{contact} replied: Re: Your quote"
    assert note.url == f"/contacts/{contact.pk}/"
    assert sorted(e.properties["automatic"] for e in received(contact)) == [False, True]


def test_when_storing_fails_the_sender_is_told_to_try_again(smtp, workspace, contact, monkeypatch):
    from django.db import OperationalError

    def database_away(*args, **kwargs):
        raise OperationalError("the database is away")

    monkeypatch.setattr(inbound, "receive_reply", database_away)
    address = links.reply_address(workspace.pk, contact.pk)
    with pytest.raises(smtplib.SMTPDataError) as caught:
        smtp.send_message(reply_message(address, text="Hello"), from_addr="ann@globex.example")
    assert caught.value.smtp_code == 451
    monkeypatch.undo()
    smtp.rset()
    smtp.send_message(reply_message(address, text="Hello"), from_addr="ann@globex.example")
    assert [e.properties["body"] for e in received(contact)] == ["Hello"]
