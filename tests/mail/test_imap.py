"""Inbound mail by IMAP polling, against a real Dovecot on loopback (see ``dovecot.py``).

Messages are put into the mailbox by IMAP APPEND, as a provider's delivery would
leave them, then ``imap.poll()`` works the mailbox.
"""

from __future__ import annotations

import email
import imaplib
import os
import re
import subprocess
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError

from patron import cli
from patron.activity.models import Event
from patron.audience import lists
from patron.audience.models import ConsentSource, Subscription, Suppression
from patron.core.models import Notification
from patron.mail import imap, inbound, links, mime, tasks
from patron.mail.models import ReceivedBounce
from patron.mail.throttle import DatabaseStore
from tests.factories import ContactFactory, MembershipFactory, UserFactory, WorkspaceFactory
from tests.mail.dovecot import Dovecot, empty_mailbox, start_dovecot

pytestmark = pytest.mark.django_db(transaction=True)

PROCESSED = "Patron/Processed"


@pytest.fixture(scope="module")
def dovecot():
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture
def server(dovecot: Dovecot, settings) -> Dovecot:
    empty_mailbox(dovecot)
    settings.IMAP_URL = dovecot.url()
    settings.IMAP_CA_FILE = str(dovecot.ca_file)
    settings.IMAP_PROCESSED_FOLDER = PROCESSED
    settings.IMAP_DELETE_PROCESSED = False
    return dovecot


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def contact(workspace):
    return ContactFactory(workspace=workspace, first_name="Ann", email="ann@globex.example")


# --- Helpers ----------------------------------------------------------------------------------


def append(server: Dovecot, message: EmailMessage | bytes, folder: str = "INBOX") -> None:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    client = server.client()
    try:
        status, data = client.append(folder, None, None, raw)
        assert status == "OK", data
    finally:
        client.logout()


def messages(server: Dovecot, folder: str = "INBOX") -> list[tuple[str, set[str]]]:
    """(Subject, flags) of each message in a folder; [] when the folder does not exist."""
    client = server.client()
    try:
        status, _data = client.select(f'"{folder}"', readonly=True)
        if status != "OK":
            return []
        _status, found = client.uid("SEARCH", "ALL")
        out = []
        for uid in (found[0] or b"").split():
            _status, data = client.uid(
                "FETCH", uid.decode(), "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
            )
            description, header = next(item for item in data if isinstance(item, tuple))
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", description).group(1).decode().split())
            flags.discard("\\Recent")  # session state, not a stored flag
            subject = header.decode().partition(":")[2].strip()
            out.append((subject, flags))
        return out
    finally:
        client.logout()


def reply(to: str, *, subject: str = "Re: Your quote", text: str = "Thursday works.", **headers):
    message = EmailMessage()
    message["Return-Path"] = "<ann@globex.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message["From"] = "Ann Lee <ann@globex.example>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="globex.example")
    message.set_content(text)
    return message


def bounce_report(address: str, subject: str = "Undelivered Mail Returned to Sender") -> bytes:
    return (
        b"Return-Path: <>\r\nDelivered-To: " + address.encode() + b"\r\n"
        b"From: MAILER-DAEMON@mx.globex.example\r\nTo: " + address.encode() + b"\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Message-ID: <dsn-1@mx.globex.example>\r\n\r\n550 5.1.1 user unknown\r\n"
    )


def received(contact):
    return list(
        Event.objects.for_workspace(contact.workspace_id).filter(
            kind="email.received", contact_id=contact.pk
        )
    )


# --- The three kinds of our addresses ---------------------------------------------------------


def test_a_reply_lands_on_the_timeline_and_moves_to_the_processed_folder(
    server, workspace, contact
):
    seller = UserFactory(email="sam@acme.example")
    MembershipFactory(workspace=workspace, user=seller, role="owner")
    contact.owner = seller
    contact.save()
    address = links.reply_address(workspace.pk, contact.pk)
    text = (
        "Yes, Thursday works.\n\nAnn\n\n"
        "On Tue, 1 Dec 2026 at 10:00, Sam <sam@acme.example> wrote:\n> Would Thursday suit?\n"
    )
    append(server, reply(address, text=text, Delivered_To=address))
    assert messages(server) == [("Re: Your quote", set())]

    result = imap.poll()

    assert result.as_dict() == {"processed": 1, "skipped": 0, "failed": 0, "left": 0, "busy": 0}
    (event,) = received(contact)
    assert event.properties["body"] == "Yes, Thursday works.\n\nAnn"
    assert event.properties["from"] == "Ann Lee <ann@globex.example>"
    assert event.properties["trimmed"] is True
    (note,) = Notification.objects.for_workspace(workspace)
    assert note.user_id == seller.pk
    # Out of the inbox, into the processed folder (created for it), marked read.
    assert messages(server) == []
    assert messages(server, PROCESSED) == [("Re: Your quote", {"\\Seen"})]
    # Nothing left to do on the next poll.
    assert imap.poll().as_dict()["processed"] == 0


def test_an_unsubscribe_mail_unsubscribes(server, workspace, contact):
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    lists.subscribe(
        mailing_list=newsletter, contact=contact, consent=lists.Consent(source=ConsentSource.MANUAL)
    )
    address = links.unsubscribe_mailto(workspace.pk, contact.pk, 7)
    append(server, reply(address, subject="unsubscribe", text=""))

    assert imap.poll().processed == 1

    assert Subscription.objects.for_workspace(workspace).get().status == "unsubscribed"
    assert Suppression.objects.for_workspace(workspace).get().email == "ann@globex.example"
    event = Event.objects.for_workspace(workspace).get(kind="email.unsubscribed")
    assert event.properties["method"] == "mailto"
    assert event.properties["campaign"] == 7
    assert messages(server, PROCESSED) == [("unsubscribe", {"\\Seen"})]


def test_a_bounce_is_stored_as_a_received_bounce(server, workspace):
    address = mime.verp_address(workspace.pk, 4321)
    append(server, bounce_report(address))

    assert imap.poll().processed == 1

    bounce = ReceivedBounce.objects.for_workspace(workspace).get()
    assert bounce.delivery_id == 4321
    assert bounce.recipient == address
    assert bounce.envelope_from == ""  # Return-Path: <> (a delivery report)
    assert b"550 5.1.1 user unknown" in bytes(bounce.raw)
    # Processed at once, as after the SMTP server: delivery 4321 does not exist here.
    assert bounce.processed_at is not None
    assert len(messages(server, PROCESSED)) == 1


# --- What is left alone -----------------------------------------------------------------------


@pytest.mark.parametrize("delete_processed", [False, True])
def test_a_message_for_no_address_of_ours_stays_unread(
    server, workspace, contact, settings, delete_processed, caplog
):
    settings.IMAP_DELETE_PROCESSED = delete_processed
    local = links.reply_address(workspace.pk, contact.pk).split("@")[0]
    tampered = local[:-1] + ("A" if local[-1] != "A" else "B")
    append(server, reply("Olivia <owner@acme.example>", subject="Lunch?"))
    append(server, reply(f"{tampered}@{settings.INBOUND_DOMAIN}", subject="Forged"))
    append(server, reply(f"{local}@elsewhere.example", subject="Other domain"))

    result = imap.poll()

    assert (result.processed, result.skipped, result.failed) == (0, 3, 0)
    assert "for none of Patron's addresses" in caplog.text
    # Still there, still unread, marked so that the next polls pass over them.
    assert messages(server) == [
        ("Lunch?", {"$PatronSkipped"}),
        ("Forged", {"$PatronSkipped"}),
        ("Other domain", {"$PatronSkipped"}),
    ]
    assert imap.poll().as_dict()["skipped"] == 0
    assert not received(contact)


def test_a_message_for_a_deleted_contact_stays(server, workspace, contact):
    address = links.reply_address(workspace.pk, contact.pk)
    contact.delete()
    append(server, reply(address))
    assert imap.poll().skipped == 1
    assert len(messages(server)) == 1


def test_a_message_too_large_stays(server, workspace, contact, settings):
    settings.INBOUND_MAX_BYTES = 2_000
    append(server, reply(links.reply_address(workspace.pk, contact.pk), text="x" * 5_000))
    assert imap.poll().skipped == 1
    assert messages(server) == [("Re: Your quote", {"$PatronSkipped"})]
    assert not received(contact)


# --- Nothing lost, nothing twice --------------------------------------------------------------


def test_when_the_database_fails_the_message_waits_for_the_next_poll(
    server, workspace, contact, monkeypatch
):
    def database_away(**kwargs):
        raise OperationalError("the database is away")

    monkeypatch.setattr(inbound, "receive_reply", database_away)
    append(server, reply(links.reply_address(workspace.pk, contact.pk)))

    result = imap.poll()

    assert (result.processed, result.failed) == (0, 1)
    assert messages(server) == [("Re: Your quote", set())]  # untouched
    monkeypatch.undo()
    assert imap.poll().processed == 1
    assert [e.properties["body"] for e in received(contact)] == ["Thursday works."]
    assert messages(server) == []


def test_when_the_database_fails_no_route_is_applied_half(server, workspace, contact, monkeypatch):
    """Two of our addresses in one header: both are applied, or neither."""
    other = ContactFactory(workspace=workspace, email="bob@globex.example")
    first = links.reply_address(workspace.pk, contact.pk)
    second = links.reply_address(workspace.pk, other.pk)
    calls = []
    real = inbound.receive_reply

    def fails_second(**kwargs):
        calls.append(kwargs["contact_id"])
        if kwargs["contact_id"] == other.pk:
            raise OperationalError("the database is away")
        return real(**kwargs)

    monkeypatch.setattr(inbound, "receive_reply", fails_second)
    append(server, reply(f"{first}, {second}"))
    assert imap.poll().failed == 1
    assert calls == [contact.pk, other.pk]
    assert not received(contact)  # rolled back with the second
    monkeypatch.undo()
    assert imap.poll().processed == 1
    assert len(received(contact)) == len(received(other)) == 1


def test_a_message_processed_twice_is_recorded_once(server, workspace, contact, monkeypatch):
    """Stored, then the move fails (as a crash between the two would leave it): the next
    poll stores the same messages again, and each is still recorded once."""
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    lists.subscribe(
        mailing_list=newsletter, contact=contact, consent=lists.Consent(source=ConsentSource.MANUAL)
    )
    append(server, reply(links.reply_address(workspace.pk, contact.pk)))
    append(server, reply(links.unsubscribe_mailto(workspace.pk, contact.pk, 3), subject="stop"))
    append(server, bounce_report(mime.verp_address(workspace.pk, 99)))

    def cannot_move(*args, **kwargs):
        raise imaplib.IMAP4.error("MOVE: NO [SERVERBUG] Internal error")

    monkeypatch.setattr(imap, "_put_away", cannot_move)
    assert imap.poll().as_dict()["failed"] == 3
    assert len(messages(server)) == 3
    monkeypatch.undo()

    assert imap.poll().processed == 3

    assert len(received(contact)) == 1
    assert Event.objects.for_workspace(workspace).filter(kind="email.unsubscribed").count() == 1
    assert ReceivedBounce.objects.for_workspace(workspace).count() == 1
    assert messages(server) == []
    assert len(messages(server, PROCESSED)) == 3


def test_only_one_poller_works_a_mailbox(server, workspace, contact):
    append(server, reply(links.reply_address(workspace.pk, contact.pk)))
    key = imap.mailbox_from_url(server.url()).lock_key
    store = DatabaseStore()
    assert store.acquire_slot(key, 1, "another-poller", imap.LOCK_LEASE_SECONDS)

    assert imap.poll().busy is True
    assert len(messages(server)) == 1 and not received(contact)

    store.release_slot(key, "another-poller")
    assert imap.poll().processed == 1


def test_a_refused_login_is_an_error_and_changes_nothing(server, workspace, contact):
    append(server, reply(links.reply_address(workspace.pk, contact.pk)))
    with pytest.raises(imap.ImapError, match=r"AUTHENTICATIONFAILED|Authentication failed"):
        imap.poll(server.url().replace("imap-test-password", "wrong"))
    assert len(messages(server)) == 1
    # The lock is released: the next poll works.
    assert imap.poll().processed == 1


# --- Which address a message was delivered to -------------------------------------------------


def test_delivered_to_names_the_copy_over_to_and_cc(server, workspace, contact):
    """A message to two contacts' addresses arrives as two copies, each with the
    Delivered-To of its own address: each copy goes to its own contact only."""
    other = ContactFactory(workspace=workspace, email="bob@globex.example")
    first = links.reply_address(workspace.pk, contact.pk)
    second = links.reply_address(workspace.pk, other.pk)
    append(server, reply(f"{first}, {second}", Delivered_To=first))
    assert imap.poll().processed == 1
    assert len(received(contact)) == 1
    assert not received(other)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Delivered-To": "mailbox@provider.example", "X-Original-To": "{a}", "To": "{b}"}, "a"),
        ({"To": "Owner <owner@acme.example>", "Cc": "Ann <{b}>"}, "b"),
        ({"To": "list@acme.example", "Envelope-To": "{a}"}, "a"),
        ({"Delivered-To": "{b}", "To": "{a}"}, "b"),
        ({"To": "owner@acme.example"}, None),
    ],
)
def test_the_first_header_naming_our_address_decides(workspace, contact, headers, expected):
    other = ContactFactory(workspace=workspace, email="bob@globex.example")
    addresses = {
        "a": links.reply_address(workspace.pk, contact.pk),
        "b": links.reply_address(workspace.pk, other.pk),
    }
    message = EmailMessage()
    for name, value in headers.items():
        message[name] = value.format(**addresses)
    routes = imap.routes_of(message)
    if expected is None:
        assert routes == []
    else:
        ((address, route),) = routes
        assert address == addresses[expected]
        assert route.object_id == (contact.pk if expected == "a" else other.pk)


# --- Connections and servers ------------------------------------------------------------------


def test_imaps_and_deleting_processed_messages(server, workspace, contact, settings):
    settings.IMAP_URL = server.url("imaps")
    settings.IMAP_DELETE_PROCESSED = True
    append(server, reply(links.reply_address(workspace.pk, contact.pk)))
    assert imap.poll().processed == 1
    assert len(received(contact)) == 1
    assert messages(server) == []
    assert messages(server, PROCESSED) == []  # never created


def test_a_server_certificate_not_trusted_is_refused(server, settings):
    settings.IMAP_CA_FILE = ""
    with pytest.raises(imap.ImapError, match="CERTIFICATE_VERIFY_FAILED"):
        imap.poll(server.url("imaps"))


def test_a_server_without_move_or_uidplus(settings, workspace, contact):
    """COPY, flag deleted, EXPUNGE: what a plainer server offers."""
    plain = start_dovecot(capabilities="IMAP4rev1 LITERAL+ STARTTLS AUTH=PLAIN")
    try:
        settings.IMAP_URL = plain.url()
        settings.IMAP_CA_FILE = str(plain.ca_file)
        settings.IMAP_DELETE_PROCESSED = False
        settings.IMAP_PROCESSED_FOLDER = "Done"
        append(plain, reply(links.reply_address(workspace.pk, contact.pk)))
        append(plain, reply("owner@acme.example", subject="Not ours"))
        assert imap.poll().as_dict()["processed"] == 1
        assert messages(plain) == [("Not ours", {"$PatronSkipped"})]
        assert messages(plain, "Done") == [("Re: Your quote", {"\\Seen"})]
    finally:
        plain.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "imaps://me%40acme.example:p%40ss%3Aw%2Frd@imap.example.com/Catch%20all",
            ("imap.example.com", 993, "tls", "me@acme.example", "p@ss:w/rd", "Catch all"),
        ),
        (
            "imap://me:pw@mail.example.com",
            ("mail.example.com", 143, "starttls", "me", "pw", "INBOX"),
        ),
        (
            "imap://me:pw@mail.example.com:1143/",
            ("mail.example.com", 1143, "starttls", "me", "pw", "INBOX"),
        ),
    ],
)
def test_reading_the_url(url, expected):
    mailbox = imap.mailbox_from_url(url)
    assert (
        mailbox.host,
        mailbox.port,
        mailbox.security,
        mailbox.username,
        mailbox.password,
        mailbox.folder,
    ) == expected
    assert mailbox.password not in repr(mailbox) and mailbox.password not in str(mailbox)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "pop3://me:pw@host",
        "imaps://host/INBOX",
        "imaps://me:pw@/INBOX",
        "imaps://me@h/Entwürfe",
    ],
)
def test_a_bad_url_is_refused_clearly(url):
    with pytest.raises(ImproperlyConfigured, match="PATRON_IMAP_URL"):
        imap.mailbox_from_url(url)


# --- Entry points -----------------------------------------------------------------------------


def test_the_command_polls_once(server, workspace, contact, capsys):
    append(server, reply(links.reply_address(workspace.pk, contact.pk)))
    with pytest.raises(SystemExit) as exited:
        cli.main(["imap-poll", "--once"])
    assert exited.value.code == 0
    assert "'processed': 1" in capsys.readouterr().out
    assert len(received(contact)) == 1


def test_the_command_without_a_url(settings, capsys):
    settings.IMAP_URL = ""
    with pytest.raises(SystemExit) as exited:
        cli.main(["imap-poll", "--once"])
    assert exited.value.code == 2
    assert "PATRON_IMAP_URL is not set" in capsys.readouterr().err


def test_the_background_task_polls(server, workspace, contact):
    append(server, reply(links.reply_address(workspace.pk, contact.pk)))
    result = tasks.poll_imap.enqueue()  # tests run tasks inline
    assert result.return_value["processed"] == 1
    assert len(received(contact)) == 1


@pytest.mark.parametrize(
    ("url", "registered"), [("imaps://u:p@imap.example.com", True), ("", False)]
)
def test_the_periodic_task_is_registered_only_with_a_mailbox(url, registered):
    code = (
        "import django; django.setup();"
        "from patron.core.scheduler import PERIODIC_JOBS as jobs;"
        "job = jobs.get('patron.mail.tasks.poll_imap');"
        "print(job is not None, job and job.every.total_seconds())"
    )
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "patron.settings",
        "PATRON_IMAP_URL": url,
        "PATRON_IMAP_POLL_SECONDS": "45",
    }
    output = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    ).stdout.split()
    assert output == (["True", "45.0"] if registered else ["False", "None"])


def test_a_complaint_about_mail_that_is_not_ours_stays(server, workspace, settings, caplog):
    # A feedback report at fbl@ carries the return path of the message complained about;
    # one without Patron's signed token is refused, by IMAP as by SMTP: left, not retried.
    report = (Path(__file__).parent / "bounce_samples" / "arf_yahoo_complaint.eml").read_bytes()
    report = re.sub(rb"bounce\+[A-Za-z0-9_-]+@", b"bounce+forged@", report)
    message = email.message_from_bytes(report)
    del message["To"]
    message["To"] = f"fbl@{settings.RETURN_PATH_DOMAIN}"
    append(server, message.as_bytes())
    result = imap.poll()
    assert (result.processed, result.skipped, result.failed) == (0, 1, 0)
    assert len(messages(server)) == 1
    assert imap.poll().as_dict()["skipped"] == 0  # passed over from now on
