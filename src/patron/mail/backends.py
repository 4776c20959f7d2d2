"""Django mail backends for Patron's transports.

``CaptureBackend`` (the embedded default) stores every message in the Outbox;
``SMTPBackend`` sends through a real server. Both understand the
``X-Patron-Workspace`` header that system mail carries to say which
workspace it was sent for; the header never leaves Patron.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from email.message import EmailMessage as MimeMessage

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.message import EmailMessage

from patron.core.services import WORKSPACE_HEADER
from patron.mail.models import OutboxMessage


def _take_workspace(message: EmailMessage) -> int | None:
    value = message.extra_headers.pop(WORKSPACE_HEADER, None)
    return int(value) if value else None


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


def capture_message(message: EmailMessage, workspace_id: int | None) -> OutboxMessage:
    raw = message.message().as_bytes(linesep="\r\n")  # type: ignore[call-arg]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text, html = _bodies(parsed)  # type: ignore[arg-type]
    return OutboxMessage.objects.create(
        workspace_id=workspace_id,
        message_id=str(parsed.get("Message-ID", "")),
        from_address=message.from_email,
        to=list(message.to),
        cc=list(message.cc),
        bcc=list(message.bcc),
        subject=str(parsed.get("Subject", "")),
        text_body=text,
        html_body=html,
        headers=[[k, str(v)] for k, v in parsed.items()],
        raw=raw,
    )


class CaptureBackend(BaseEmailBackend):
    """Keeps mail in the Outbox; nothing leaves the machine."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            capture_message(message, _take_workspace(message))
            sent += 1
        return sent


class SMTPBackend(DjangoSMTPBackend):
    """Django's SMTP backend, minus Patron's internal header."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            _take_workspace(message)
        return super().send_messages(email_messages)  # type: ignore[no-any-return]
