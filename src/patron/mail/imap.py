"""Inbound mail by IMAP polling, for installations that cannot run an MX.

Patron's own SMTP server (``patron.mail.inbound``) is the best way to receive
the addresses Patron hands out. Where it cannot be reached from the internet,
the same addresses can be delivered to a mailbox at a mail provider (a
catch-all mailbox of the inbound and return-path domains, or a plus-addressing
mailbox when those domains are the mailbox's own) and fetched from there:

1. Log in to ``PATRON_IMAP_URL`` (``imaps://`` with TLS from the start;
   ``imap://`` switches to TLS with STARTTLS when the server offers it, and
   logs in without encryption, with a warning, when it does not) and select
   its folder (``INBOX`` by default).
2. Search every message not deleted and not marked as skipped (below), seen or
   not: a person reading the mailbox in a mail client must not hide a reply
   from Patron.
3. For each, read its headers (without marking it seen) and find which of our
   addresses it was delivered to: the first of ``Delivered-To``,
   ``X-Original-To``, ``To``, ``Cc``, ``Envelope-To`` that names one of them
   (providers differ in which they set; ``Delivered-To`` names the address of
   this very copy where it is set). An address counts as ours exactly when the
   SMTP server would accept it (``inbound.route_for``: a signed token naming a
   contact or workspace that exists).
4. Fetch the message and apply it to each of its routes with the SMTP server's
   own ``inbound.deliver`` (a reply on the contact's timeline, an unsubscribe, a
   stored bounce), all of them in one transaction.
5. Once that is committed, mark it seen and move it to
   ``PATRON_IMAP_PROCESSED_FOLDER`` (created when missing), or delete it with
   ``PATRON_IMAP_DELETE_PROCESSED``.

A message for none of our addresses, or larger than
``PATRON_INBOUND_MAX_BYTES``, is left where it is, unread as it was, and logged;
it is never deleted. It gets the keyword ``$PatronSkipped`` so that later polls
pass over it (when the server allows keywords; otherwise its headers are read
again at each poll). A message whose storing fails (the database is away) is left
untouched, and the next poll tries it again: nothing is lost. Storing twice is
harmless (a crash between storing and moving): a reply is recorded once per
Message-ID, an unsubscribe changes nothing the second time, and a bounce with the
same bytes for the same delivery is kept once.

One poller works a mailbox at a time: a poll holds a lease on the mailbox (a
database row, ``LOCK_LEASE_SECONDS``) and a poll that finds it held does nothing.
A poll stops taking new messages after ``WORK_SECONDS``, well inside its lease;
the rest wait for the next poll.
"""

from __future__ import annotations

import contextlib
import email.policy
import hashlib
import imaplib
import logging
import re
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from patron.mail import inbound

logger = logging.getLogger(__name__)

RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc", "Envelope-To")
SKIPPED_KEYWORD = "$PatronSkipped"
TLS, STARTTLS = "tls", "starttls"
TIMEOUT_SECONDS = 60
LOCK_LEASE_SECONDS = 900
WORK_SECONDS = 300
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ImapError(Exception):
    """The mailbox could not be worked: no connection, a refused login, a folder missing."""


@dataclass(frozen=True)
class Mailbox:
    """Where to poll: the server, the account and the folder."""

    host: str
    port: int
    security: str  # TLS or STARTTLS
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"

    @property
    def lock_key(self) -> str:
        name = f"{self.username}@{self.host}:{self.port}/{self.folder}".lower()
        return "imap:" + hashlib.sha256(name.encode()).hexdigest()[:40]

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"


def _ascii_folder(name: str, setting: str) -> str:
    if not name or not name.isascii() or any(ord(c) < 32 for c in name):
        raise ImproperlyConfigured(
            f"{setting}: the folder name must be plain ASCII, not empty, got {name!r}"
        )
    return name


def mailbox_from_url(url: str) -> Mailbox:
    """Read ``imaps://user:password@host:993/INBOX`` or ``imap://…`` (user name and
    password percent-encoded where they hold ``@``, ``:`` or ``/``)."""
    if not url:
        raise ImproperlyConfigured("PATRON_IMAP_URL is not set")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise ImproperlyConfigured(
            f"PATRON_IMAP_URL must start with imaps:// or imap://, got {scheme or url!r}"
        )
    try:
        port = parts.port
    except ValueError as error:
        raise ImproperlyConfigured(f"PATRON_IMAP_URL: {error}") from None
    if not parts.hostname:
        raise ImproperlyConfigured("PATRON_IMAP_URL names no server")
    if not parts.username:
        raise ImproperlyConfigured("PATRON_IMAP_URL names no user (imaps://user:password@host)")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return Mailbox(
        host=parts.hostname,
        port=port or (993 if scheme == "imaps" else 143),
        security=TLS if scheme == "imaps" else STARTTLS,
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=_ascii_folder(folder, "PATRON_IMAP_URL"),
    )


@dataclass
class PollResult:
    """What one poll did, message by message."""

    processed: int = 0  # applied, then moved or deleted
    skipped: int = 0  # for none of our addresses (or too large): left in place
    failed: int = 0  # not stored, or stored but not moved: tried again next poll
    left: int = 0  # not reached in this poll's time
    busy: bool = False  # another poller holds the mailbox

    def as_dict(self) -> dict[str, int]:
        return {key: int(value) for key, value in asdict(self).items()}


# --- Which of our addresses a message was sent to -------------------------------------------


def routes_of(message: Message) -> list[tuple[str, inbound.Route]]:
    """Our addresses a message was delivered to, with their routes: those of the first
    header of ``RECIPIENT_HEADERS`` that names any (see the module's notes)."""
    for header in RECIPIENT_HEADERS:
        values = [str(value) for value in message.get_all(header, [])]
        found: list[tuple[str, inbound.Route]] = []
        seen: set[str] = set()
        for _name, address in getaddresses(values):
            if not address or address.lower() in seen:
                continue
            seen.add(address.lower())
            route = inbound.route_for(address)
            if route is not None:
                found.append((address, route))
        if found:
            return found
    return []


def _envelope_from(message: Message) -> str:
    return parseaddr(str(message.get("Return-Path", "")))[1]


# --- Talking to the server --------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(response: tuple[str, Sequence[object]], what: str) -> list[object]:
    status, data = response
    if status != "OK":
        detail = b" ".join(item for item in data if isinstance(item, bytes)).decode(
            "utf-8", "replace"
        )
        raise imaplib.IMAP4.error(f"{what}: {status} {detail}".strip())
    return list(data)


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.IMAP_CA_FILE or None)


def connect(mailbox: Mailbox) -> imaplib.IMAP4:
    """A logged-in connection with the folder selected; ``ImapError`` when that fails."""
    client: imaplib.IMAP4 | None = None
    try:
        if mailbox.security == TLS:
            client = imaplib.IMAP4_SSL(
                mailbox.host, mailbox.port, ssl_context=tls_context(), timeout=TIMEOUT_SECONDS
            )
        else:
            client = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)
            if "STARTTLS" in client.capabilities:
                client.starttls(tls_context())
            elif mailbox.host not in _LOOPBACK:
                logger.warning(
                    "IMAP: %s offers no STARTTLS; logging in without encryption", mailbox.host
                )
        client.login(mailbox.username, mailbox.password)
        _ok(client.select(_quoted(mailbox.folder)), f"selecting {mailbox.folder!r}")
    except (OSError, imaplib.IMAP4.error) as error:
        if client is not None:
            _close(client)
        raise ImapError(f"{mailbox}: {error}") from error
    return client


def _close(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        client.logout()


def _capabilities(client: imaplib.IMAP4) -> set[str]:
    """The capabilities after login (servers announce more than before it)."""
    data = _ok(client.capability(), "CAPABILITY")
    words = b" ".join(item for item in data if isinstance(item, bytes)).decode("ascii", "replace")
    return set(words.upper().split())


def _keywords_allowed(client: imaplib.IMAP4) -> bool:
    """Whether the selected folder keeps keywords (PERMANENTFLAGS has ``\\*``)."""
    _name, data = client.response("PERMANENTFLAGS")
    flags = b" ".join(item for item in data if isinstance(item, bytes))
    return b"\\*" in flags or SKIPPED_KEYWORD.encode() in flags


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:NIL|"(?P<delimiter>(?:\\.|[^"])*)")')


def _delimiter(client: imaplib.IMAP4) -> str:
    data = _ok(client.list('""', '""'), "LIST")
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if isinstance(line, bytes):
            found = _LIST_LINE.match(line)
            if found and found.group("delimiter"):
                return found.group("delimiter").decode().replace("\\\\", "\\")
    return "/"


def _folder_exists(client: imaplib.IMAP4, name: str) -> bool:
    data = _ok(client.list('""', _quoted(name)), "LIST")
    return any(item is not None for item in data)


def ensure_folder(client: imaplib.IMAP4, setting: str) -> str:
    """The server's name of the processed folder (``/`` in the setting becomes the
    server's level separator), created and subscribed to when missing."""
    name = _ascii_folder(setting, "PATRON_IMAP_PROCESSED_FOLDER").strip("/")
    delimiter = _delimiter(client)
    name = delimiter.join(part for part in name.split("/") if part)
    if not _folder_exists(client, name):
        status, _data = client.create(_quoted(name))
        if status != "OK" and not _folder_exists(client, name):
            raise ImapError(f"could not create the folder {name!r}: {_data!r}")
        client.subscribe(_quoted(name))
        logger.info("IMAP: created the folder %s", name)
    return name


def _fetched(data: list[object], uid: str) -> tuple[bytes, bytes] | None:
    """The (description, literal) of a FETCH answer for ``uid``; None when the message
    is gone. (Answers about other messages, which a server may send at any time, are
    passed over.)"""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            description, literal = item
            found = _UID.search(description)
            if found and found.group(1).decode() == uid:
                return description, literal
    return None


_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"\bUID (\d+)")


def _fetch_header(client: imaplib.IMAP4, uid: str) -> tuple[Message, int] | None:
    data = _ok(client.uid("FETCH", uid, "(RFC822.SIZE BODY.PEEK[HEADER])"), "FETCH")
    found = _fetched(data, uid)
    if found is None:
        return None
    description, header = found
    size = _SIZE.search(description)
    message = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header)
    return message, int(size.group(1)) if size else len(header)


def _fetch_message(client: imaplib.IMAP4, uid: str) -> bytes | None:
    found = _fetched(_ok(client.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH"), uid)
    return None if found is None else found[1]


def _expunge(client: imaplib.IMAP4, uid: str, capabilities: set[str]) -> None:
    _ok(client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
    if "UIDPLUS" in capabilities:
        _ok(client.uid("EXPUNGE", uid), "UID EXPUNGE")
    else:
        # Without UIDPLUS only the whole folder can be expunged: that removes what
        # was flagged deleted anyway, never a message Patron left in place.
        _ok(client.expunge(), "EXPUNGE")


def _put_away(client: imaplib.IMAP4, uid: str, capabilities: set[str], folder: str | None) -> None:
    """Move a processed message to the folder, or delete it when there is none."""
    if folder is None:
        _expunge(client, uid, capabilities)
        return
    _ok(client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)"), "STORE")
    if "MOVE" in capabilities:
        _ok(client.uid("MOVE", uid, _quoted(folder)), "MOVE")
    else:
        _ok(client.uid("COPY", uid, _quoted(folder)), "COPY")
        _expunge(client, uid, capabilities)


# --- One message, one poll --------------------------------------------------------------------

PROCESSED, SKIPPED, FAILED, GONE = "processed", "skipped", "failed", "gone"


def _skip(client: imaplib.IMAP4, uid: str, keywords: bool) -> None:
    if keywords:
        _ok(client.uid("STORE", uid, "+FLAGS.SILENT", f"({SKIPPED_KEYWORD})"), "STORE")


def _apply(routes: list[tuple[str, inbound.Route]], *, envelope_from: str, raw: bytes) -> None:
    with transaction.atomic():
        for address, route in routes:
            inbound.deliver(route, recipient=address, envelope_from=envelope_from, raw=raw)


def process_message(
    client: imaplib.IMAP4,
    uid: str,
    *,
    capabilities: set[str],
    keywords: bool,
    folder: str | None,
) -> str:
    """Apply one message and put it away; PROCESSED, SKIPPED, FAILED or GONE.

    A broken connection (``imaplib.IMAP4.abort``, ``OSError``) is raised: the poll
    ends there. Anything else is logged and the message left for the next poll.
    """
    try:
        header = _fetch_header(client, uid)
        if header is None:
            return GONE
        message, size = header
        subject = str(message.get("Subject", ""))[:200]
        routes = routes_of(message)
        if not routes:
            logger.info(
                "IMAP: message %s (%r, to %s) is for none of Patron's addresses; left in place",
                uid,
                subject,
                ", ".join(str(v) for v in message.get_all("To", [])) or "nobody",
            )
            _skip(client, uid, keywords)
            return SKIPPED
        if size > settings.INBOUND_MAX_BYTES:
            logger.warning(
                "IMAP: message %s (%r) is larger than PATRON_INBOUND_MAX_BYTES "
                "(%d > %d bytes); left in place",
                uid,
                subject,
                size,
                settings.INBOUND_MAX_BYTES,
            )
            _skip(client, uid, keywords)
            return SKIPPED
        raw = _fetch_message(client, uid)
        if raw is None:
            return GONE
        _apply(routes, envelope_from=_envelope_from(message), raw=raw)
    except (imaplib.IMAP4.abort, OSError):
        raise
    except inbound.Refused as refused:
        # What the SMTP server would refuse (a feedback report about mail that is not
        # ours): no later poll will take it either, so it is left in place, skipped.
        logger.warning("IMAP: message %s left in place: %s", uid, refused.reply)
        _skip(client, uid, keywords)
        return SKIPPED
    except Exception:
        logger.exception("IMAP: could not store message %s; it stays for the next poll", uid)
        return FAILED
    try:
        _put_away(client, uid, capabilities, folder)
    except (imaplib.IMAP4.abort, OSError):
        raise
    except imaplib.IMAP4.error:
        logger.exception(
            "IMAP: message %s is stored but could not be put away; "
            "the next poll sees it again and records it once",
            uid,
        )
        return FAILED
    return PROCESSED


def _search(client: imaplib.IMAP4) -> list[str]:
    data = _ok(client.uid("SEARCH", "UNDELETED", "UNKEYWORD", SKIPPED_KEYWORD), "SEARCH")
    words = b" ".join(item for item in data if isinstance(item, bytes))
    return [uid.decode() for uid in words.split()]


def _poll(mailbox: Mailbox) -> PollResult:
    result = PollResult()
    deadline = time.monotonic() + WORK_SECONDS
    client = connect(mailbox)
    try:
        keywords = _keywords_allowed(client)
        capabilities = _capabilities(client)
        folder = (
            None
            if settings.IMAP_DELETE_PROCESSED
            else ensure_folder(client, settings.IMAP_PROCESSED_FOLDER)
        )
        uids = _search(client)
        for index, uid in enumerate(uids):
            if time.monotonic() > deadline:
                result.left = len(uids) - index
                break
            outcome = process_message(
                client, uid, capabilities=capabilities, keywords=keywords, folder=folder
            )
            if outcome == PROCESSED:
                result.processed += 1
            elif outcome == SKIPPED:
                result.skipped += 1
            elif outcome == FAILED:
                result.failed += 1
    except (OSError, imaplib.IMAP4.error) as error:
        raise ImapError(f"{mailbox}: {error}") from error
    finally:
        _close(client)
    return result


def poll(url: str | None = None) -> PollResult:
    """One poll of the mailbox of ``url`` (default ``PATRON_IMAP_URL``).

    Raises ``ImproperlyConfigured`` for a bad URL and ``ImapError`` when the
    server cannot be worked (nothing is lost: what was not put away stays).
    """
    from patron.mail.throttle import DatabaseStore

    mailbox = mailbox_from_url(settings.IMAP_URL if url is None else url)
    lock, holder = DatabaseStore(), uuid.uuid4().hex
    if not lock.acquire_slot(mailbox.lock_key, 1, holder, LOCK_LEASE_SECONDS):
        logger.info("IMAP: another poller is working %s; not polling", mailbox)
        return PollResult(busy=True)
    try:
        result = _poll(mailbox)
    finally:
        lock.release_slot(mailbox.lock_key, holder)
    if result.processed or result.failed or result.left:
        logger.info("IMAP: %s: %s", mailbox, result.as_dict())
    return result
