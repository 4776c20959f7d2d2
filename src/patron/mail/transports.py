"""Transports: how assembled messages leave Patron (or stay in its Outbox).

The send pipeline hands a transport a batch of ``Outgoing`` messages (bytes
from ``mime.build_message``, already DKIM-signed) and gets one ``Result`` per
message back, in the same order: SENT, RETRY (try again later: a 4xx reply or
a connection that failed on every server) or FAILED (a permanent 5xx, whose
reply is kept for the delivery row).

- ``CaptureTransport`` (the embedded default) stores the batch in the Outbox
  with one bulk INSERT, each row with its workspace.
- ``SmtpTransport`` sends over pooled, pipelined connections to the servers
  of ``PATRON_SMTP_URLS`` (weights, fail-over, TLS, AUTH: ``patron.mail.smtp``),
  within the shared speed limits of ``patron.mail.throttle``.

Django's ``EMAIL_BACKEND`` (system mail: invitations, password resets) is
separate and unchanged (``patron.mail.backends``).
"""

from __future__ import annotations

import binascii
import email
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import EmailMessage as MimeMessage
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from patron.mail import smtp
from patron.mail.models import OutboxMessage
from patron.mail.throttle import Throttle, installation_throttle


@dataclass(slots=True)
class Outgoing:
    key: str  # the caller's id (e.g. str(delivery_id)); results carry it back
    envelope_from: str  # MAIL FROM (the VERP address for campaign mail)
    recipients: list[str]  # RCPT TO
    data: bytes  # from build_message, already DKIM-signed when a key applies
    workspace_id: int | None = None


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(slots=True)
class Result:
    key: str
    outcome: Outcome
    code: int | None = None  # SMTP code (or an ESP's HTTP status)
    reply: str = ""  # the server's reply text, kept for the delivery row
    # Seconds to wait at least before trying again (set when a speed limit held
    # the message back, so the caller need not guess).
    retry_after: float | None = None


class Transport(Protocol):
    def send(self, messages: Sequence[Outgoing]) -> list[Result]: ...

    def close(self) -> None: ...


# --- Capture ------------------------------------------------------------------------------


def _bodies(parsed: MimeMessage) -> tuple[str, str]:
    text = html = ""
    for part in parsed.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain" and not text:
            text = part.get_content()
        elif content_type == "text/html" and not html:
            html = part.get_content()
    return text, html


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_CHARSET = re.compile(r'charset="?([^";\s]+)"?', re.IGNORECASE)


def _header_text(value: str) -> str:
    if "=?" not in value:
        return value.replace("\r\n", "")
    return str(make_header(decode_header(value)))


def _split(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    headers: list[tuple[str, str]] = []
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + "\r\n" + line)
        elif ":" in line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return headers, body


def _decode_part(headers: list[tuple[str, str]], body: bytes) -> str:
    fields = {name.lower(): value for name, value in headers}
    encoding = fields.get("content-transfer-encoding", "7bit").lower()
    if encoding == "base64":
        body = binascii.a2b_base64(body)
    elif encoding == "quoted-printable":
        body = binascii.a2b_qp(body)
    match = _CHARSET.search(fields.get("content-type", ""))
    try:
        return body.decode(match.group(1) if match else "utf-8", "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _quick_parse(data: bytes) -> tuple[list[tuple[str, str]], str, str] | None:
    """(decoded headers, text, html) of a message shaped as build_message makes
    them (one text part, or multipart/alternative of text parts), else None."""
    headers, body = _split(data)
    content_type = next((v for n, v in headers if n.lower() == "content-type"), "text/plain")
    kind = content_type.split(";", 1)[0].strip().lower()
    parts: list[tuple[list[tuple[str, str]], bytes]] = []
    if kind in ("text/plain", "text/html"):
        parts.append((headers, body))
    elif kind == "multipart/alternative":
        match = _BOUNDARY.search(content_type)
        if not match:
            return None
        delimiter = b"--" + match.group(1).encode()
        pieces = body.split(b"\r\n" + delimiter)
        first = pieces[0]
        if not first.startswith(delimiter):
            return None
        pieces[0] = first[len(delimiter) :]
        for piece in pieces:
            if piece.startswith(b"--"):
                break
            part_headers, part_body = _split(piece.removeprefix(b"\r\n"))
            parts.append((part_headers, part_body))
    else:
        return None
    text = html = ""
    for part_headers, part_body in parts:
        part_type = next((v for n, v in part_headers if n.lower() == "content-type"), "text/plain")
        part_kind = part_type.split(";", 1)[0].strip().lower()
        if part_kind == "text/plain" and not text:
            text = _decode_part(part_headers, part_body)
        elif part_kind == "text/html" and not html:
            html = _decode_part(part_headers, part_body)
        elif part_kind not in ("text/plain", "text/html"):
            return None
    return [(name, _header_text(value)) for name, value in headers], text, html


def outbox_row(message: Outgoing) -> OutboxMessage:
    """The Outbox row that keeps ``message`` (not saved).

    Messages from ``build_message`` are read by a short parser (the standard
    library's costs milliseconds a message); anything else by the standard
    library.
    """
    quick = _quick_parse(message.data)
    if quick is not None:
        headers, text, html = quick
    else:
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        text, html = _bodies(parsed)  # type: ignore[arg-type]
        headers = [(name, str(value)) for name, value in parsed.items()]
    fields = {name.lower(): value for name, value in reversed(headers)}
    return OutboxMessage(
        workspace_id=message.workspace_id,
        message_id=fields.get("message-id", "")[:255],
        from_address=fields.get("from", message.envelope_from)[:320],
        to=list(message.recipients),
        subject=fields.get("subject", "")[:998],
        text_body=text,
        html_body=html,
        headers=[[name, value] for name, value in headers],
        raw=message.data,
    )


class CaptureTransport:
    """Keeps every message in the Outbox: nothing leaves the machine."""

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        rows = [outbox_row(message) for message in messages]
        OutboxMessage.objects.bulk_create(rows, batch_size=500)
        return [
            Result(message.key, Outcome.SENT, 250, "kept in the Outbox") for message in messages
        ]

    def close(self) -> None:
        pass


# --- SMTP -------------------------------------------------------------------------------

_OUTCOMES = {"sent": Outcome.SENT, "retry": Outcome.RETRY, "failed": Outcome.FAILED}


class SmtpTransport:
    """Sends through one or more SMTP servers (weights, fail-over, pooled connections)."""

    def __init__(
        self,
        servers: Sequence[smtp.SmtpServer],
        *,
        pool: smtp.ConnectionPool | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        if not servers:
            raise ImproperlyConfigured("SmtpTransport needs at least one server")
        self.servers = list(servers)
        self.pool = pool or smtp.POOL
        self.throttle = throttle

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        envelopes = [
            smtp.Envelope(
                number,
                smtp_address(message.envelope_from),
                [smtp_address(recipient) for recipient in message.recipients],
                message.data,
            )
            for number, message in enumerate(messages)
        ]
        throttle = self.throttle
        if throttle is None:
            delivered = smtp.deliver(envelopes, self.servers, pool=self.pool)
            return [
                Result(message.key, _OUTCOMES[item.outcome], item.code, item.reply)
                for message, item in zip(messages, delivered, strict=True)
            ]

        results: list[Result | None] = [None] * len(messages)
        admission = throttle.admit(
            [
                envelope.recipients[0].rpartition("@")[2] if envelope.recipients else ""
                for envelope in envelopes
            ]
        )
        try:
            for index, (after, why) in admission.held.items():
                results[index] = Result(messages[index].key, Outcome.RETRY, None, why, after)
            allowed = [envelopes[index] for index in admission.allowed]
            start = 0
            for size in throttle.paced(len(allowed)):
                chunk = allowed[start : start + size]
                start += size
                for item in smtp.deliver(chunk, self.servers, pool=self.pool):
                    key = messages[item.index].key
                    results[item.index] = Result(
                        key, _OUTCOMES[item.outcome], item.code, item.reply
                    )
        finally:
            throttle.release(admission)
        return [result for result in results if result is not None]

    def close(self) -> None:
        """Connections stay in the process's pool for the next batch."""


def smtp_address(address: str) -> str:
    """An envelope address: domain in punycode; a non-ASCII local part stays (SMTPUTF8)."""
    from patron.mail.mime import ascii_address

    return ascii_address(address)


# --- Choosing -----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _servers(urls: tuple[str, ...]) -> tuple[smtp.SmtpServer, ...]:
    try:
        return tuple(smtp.parse_smtp_urls(list(urls)))
    except smtp.SmtpUrlInvalid as error:
        raise ImproperlyConfigured(f"PATRON_SMTP_URLS: {error}") from error


def installation_transport() -> Transport:
    """The installation's transport: PATRON_EMAIL_TRANSPORT and PATRON_SMTP_URLS."""
    if settings.EMAIL_TRANSPORT == "smtp":
        return SmtpTransport(_servers(tuple(settings.SMTP_URLS)), throttle=installation_throttle())
    return CaptureTransport()


def transport_for(workspace_id: int | None) -> Transport:
    """The transport mail of ``workspace_id`` goes through: the workspace's own delivery
    settings (Settings -> Delivery) when it has any, else the installation's.

    Raises ``delivery_config.DeliveryUnavailable`` when the workspace's settings
    cannot be used (a credential that no longer decrypts, no active server):
    its mail waits for the settings to be fixed instead of leaving by another route.
    """
    if workspace_id is not None:
        from patron.mail.delivery_config import workspace_transport

        transport = workspace_transport(workspace_id)
        if transport is not None:
            return transport
    return installation_transport()
