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

import email
import email.policy
from collections.abc import Sequence
from dataclasses import dataclass
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


def outbox_row(message: Outgoing) -> OutboxMessage:
    """The Outbox row that keeps ``message`` (not saved)."""
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    text, html = _bodies(parsed)  # type: ignore[arg-type]
    return OutboxMessage(
        workspace_id=message.workspace_id,
        message_id=str(parsed.get("Message-ID", ""))[:255],
        from_address=str(parsed.get("From", message.envelope_from))[:320],
        to=list(message.recipients),
        subject=str(parsed.get("Subject", ""))[:998],
        text_body=text,
        html_body=html,
        headers=[[name, str(value)] for name, value in parsed.items()],
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
    """The transport mail of ``workspace_id`` goes through (the installation's for now)."""
    return installation_transport()
