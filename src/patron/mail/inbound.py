"""Inbound mail: Patron's own SMTP server for the addresses it hands out.

The server (``patron inbound``, built on ``aiosmtpd``) is the MX of the
inbound and return-path domains. It accepts mail only for its own signed
addresses and refuses every other recipient with 550 during the SMTP
conversation, so it never relays and never accepts what it would drop:

- ``reply+<token>@{INBOUND_DOMAIN}`` (token kind ``reply``: workspace,
  contact): an answer to one-to-one mail. It becomes ``email.received`` on
  that contact's timeline: subject, From, and the text (the HTML part turned
  into text when there is no plain part), with the quoted earlier messages
  trimmed when they are recognisable ("On ... wrote:", "-----Original
  Message-----", a trailing block of "> " lines). It is stored as text and
  escaped wherever it is shown. The same message delivered twice (a sender
  retrying after a lost answer) is recorded once, by its Message-ID. Whoever
  last wrote to the contact from Patron (else the contact's owner) gets an
  in-app notification, unless the reply is automatic (``Auto-Submitted``).
- ``unsubscribe+<token>@{RETURN_PATH_DOMAIN}`` (kind ``unsub``): the ``mailto:``
  of ``List-Unsubscribe``; unsubscribes the contact as the link does.
- ``bounce+<token>@{RETURN_PATH_DOMAIN}`` (kind ``verp``): stored raw as a
  ``ReceivedBounce``; bounce processing (``patron.mail.feedback``) reads it,
  right after (a task is enqueued) and on the scheduler's round.
- ``fbl@`` and ``abuse@{RETURN_PATH_DOMAIN}``: where mailbox providers' feedback
  loops send spam complaints (ARF reports). The address is not signed, so a
  report is accepted only when it names one of our deliveries by the signed
  VERP token of the original's return path; any other message is refused with
  550 after DATA (the sender keeps it and hears why).

A token that does not verify, or names a contact or workspace that no longer
exists, is an unknown recipient (550). Messages above
``PATRON_INBOUND_MAX_BYTES`` are refused with 552. When storing fails (the
database is away), the server answers 451 so that the sending server tries
again later: nothing accepted is lost.

Where no MX can be run, the same addresses can be delivered to a mailbox at a
mail provider and fetched by IMAP (``patron.mail.imap``): it finds the route of
a message with ``route_for`` and applies it with ``deliver``, as this server does.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import logging
import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connections, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from patron.activity.models import Event
from patron.activity.services import record
from patron.core.models import Membership, Workspace
from patron.core.services import notify
from patron.crm.models import Contact
from patron.mail import links, mime, personal, rendering
from patron.mail.models import ReceivedBounce

logger = logging.getLogger(__name__)

REPLY, UNSUBSCRIBE, BOUNCE, FEEDBACK = "reply", "unsubscribe", "bounce", "feedback"
# Local parts at the return-path domain where feedback loops deliver complaints.
FEEDBACK_LOCAL_PARTS = frozenset({"fbl", "abuse"})
EVENT_SOURCE = "mail.inbound"
TEXT_LIMIT = 50_000
SUBJECT_LIMIT = 998


@dataclass(frozen=True)
class Route:
    """Where a recipient address leads: the kind, the workspace and the contact or delivery."""

    kind: str
    workspace_id: int
    object_id: int  # the contact (reply, unsubscribe) or the delivery (bounce)
    campaign_id: int = 0


def _split(address: str) -> tuple[str, str]:
    local, at, domain = address.strip().strip("<>").rpartition("@")
    return (local, domain.lower()) if at else ("", "")


def route_for(address: str) -> Route | None:
    """The route of a recipient address, or None for anything this server does not take."""
    local, domain = _split(address)
    if not local:
        return None
    reply_domain = settings.INBOUND_DOMAIN.lower()
    return_path_domain = settings.RETURN_PATH_DOMAIN.lower()
    route: Route | None = None
    if local.startswith(links.REPLY_PREFIX) and domain == reply_domain:
        values = links.read_reply_token(local[len(links.REPLY_PREFIX) :])
        if values is not None:
            route = Route(REPLY, values[0], values[1])
    elif local.startswith(links.UNSUBSCRIBE_PREFIX) and domain == return_path_domain:
        found = links.read_unsubscribe_token(local[len(links.UNSUBSCRIBE_PREFIX) :])
        if found is not None:
            route = Route(UNSUBSCRIBE, found[0], found[1], found[2])
    elif local.startswith(links.BOUNCE_PREFIX) and domain == return_path_domain:
        verp = mime.parse_verp(f"{local}@{domain}")
        if verp is not None:
            route = Route(BOUNCE, verp[0], verp[1])
    elif local.lower() in FEEDBACK_LOCAL_PARTS and domain == return_path_domain:
        return Route(FEEDBACK, 0, 0)  # the workspace comes from the report itself
    if route is None:
        return None
    if route.kind == BOUNCE:
        exists = Workspace.objects.filter(pk=route.workspace_id).exists()
    else:
        exists = (
            Contact.objects.for_workspace(route.workspace_id).filter(pk=route.object_id).exists()
        )
    return route if exists else None


# --- Reading a message -----------------------------------------------------------------------

_WROTE = re.compile(
    r"^\s*(On\b.{0,400}\bwrote|Am\b.{0,400}\bschrieb|Le\b.{0,400}\bécrit)\s*:\s*$", re.I
)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(Original Message|Forwarded message)\s*-{2,}\s*$", re.I)
_OUTLOOK_HEADER = re.compile(r"^\s*\*?From:\*?\s+\S")
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(Sent|Date|To|Subject):\*?\s", re.I)


def _text_of(message: EmailMessage) -> str:
    """The plain text of a message: its text/plain part, else its HTML part as text."""
    for preference in ("plain", "html"):
        part = message.get_body(preferencelist=(preference,))
        if part is None:
            continue
        try:
            content = part.get_content()
        except (LookupError, UnicodeError, AssertionError):
            payload = part.get_payload(decode=True) or b""
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if not isinstance(content, str):
            continue
        return content if preference == "plain" else rendering.html_to_text(content)
    return ""


def trim_quoted(text: str) -> tuple[str, bool]:
    """The new part of a reply, without the quoted history; and whether anything was cut."""
    lines = text.replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        joined = line + " " + lines[index + 1] if index + 1 < len(lines) else line
        if _WROTE.match(line) or _ORIGINAL.match(line):
            cut = index
            break
        # "On Tue, ... <x@y>" wrapped onto a second line ending in "wrote:".
        if line.strip().startswith("On ") and _WROTE.match(joined):
            cut = index
            break
        if _OUTLOOK_HEADER.match(line) and any(
            _OUTLOOK_NEXT.match(following) for following in lines[index + 1 : index + 4]
        ):
            cut = index
            break
    kept = lines[:cut]
    # A block of "> " lines at the end is the quoted message too (clients that quote below).
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()
    new = "\n".join(kept).strip()
    if not new:
        return text.strip(), False
    return new, new != text.strip()


def _clean_text(value: str, limit: int) -> str:
    # PostgreSQL refuses NUL characters in text and JSON.
    return value.replace("\x00", "")[:limit]


def _message_key(message: EmailMessage, raw: bytes) -> str:
    identity = str(message.get("Message-ID", "")).strip() or raw.hex()
    return hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()[:40]


def receive_reply(*, workspace_id: int, contact_id: int, raw: bytes) -> Event | None:
    """Record a reply on the contact's timeline (once per Message-ID); returns the event,
    or None when it was recorded already or the contact is gone."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    key = _message_key(message, raw)
    text, trimmed = trim_quoted(_text_of(message))
    with transaction.atomic():
        contact = (
            Contact.objects.for_workspace(workspace_id)
            .select_for_update()
            .filter(pk=contact_id)
            .first()
        )
        if contact is None:
            return None
        seen = Event.objects.for_workspace(workspace_id).filter(
            kind="email.received", source_type=EVENT_SOURCE, source_id=key, contact_id=contact_id
        )
        if seen.exists():
            return None
        auto = str(message.get("Auto-Submitted", "no")).strip().lower()
        event = record(
            workspace=workspace_id,
            kind="email.received",
            contact_id=contact_id,
            source=(EVENT_SOURCE, key),
            properties={
                "subject": _clean_text(
                    " ".join(str(message.get("Subject", "")).split()), SUBJECT_LIMIT
                ),
                "from": _clean_text(str(message.get("From", "")), 320),
                "body": _clean_text(text, TEXT_LIMIT),
                "trimmed": trimmed,
                "message_id": _clean_text(str(message.get("Message-ID", "")), 300),
                "in_reply_to": _clean_text(str(message.get("In-Reply-To", "")), 300),
                "automatic": auto not in ("", "no"),
            },
        )
        if not event.properties["automatic"]:
            _notify_reply(contact, event)
        return event


def _notify_reply(contact: Contact, event: Event) -> None:
    """Tell the person the contact answered: whoever last wrote to them from Patron and is
    still a member, else the contact's owner."""
    members = Membership.objects.for_workspace(contact.workspace_id)
    last_writer = (
        Event.objects.for_workspace(contact.workspace_id)
        .filter(
            kind="email.sent",
            contact_id=contact.pk,
            source_type=personal.EVENT_SOURCE,
            actor__isnull=False,
        )
        .filter(actor__in=members.values("user_id"))
        .order_by("-occurred_at", "-id")
        .select_related("actor")
        .first()
    )
    user = last_writer.actor if last_writer is not None else None
    if (
        user is None
        and contact.owner_id is not None
        and members.filter(user_id=contact.owner_id).exists()
    ):
        user = contact.owner
    if user is None:
        return
    workspace = contact.workspace
    with translation.override(user.language or workspace.language):
        text = _("%(name)s replied: %(subject)s") % {
            "name": str(contact),
            "subject": event.properties["subject"] or _("(no subject)"),
        }
    notify(
        workspace=workspace,
        user=user,
        text=text,
        url=reverse("crm:contact_detail", args=[contact.pk]),
    )


def store_bounce(
    *, workspace_id: int, delivery_id: int, recipient: str, envelope_from: str, raw: bytes
) -> ReceivedBounce:
    """Keep a bounce as received and have it processed soon. The same message again (the
    same bytes for the same delivery and address: a sender retrying, a mailbox polled
    again before the message was moved away) is kept once; the row kept first is returned."""
    kept = (
        ReceivedBounce.objects.for_workspace(workspace_id)
        .filter(delivery_id=delivery_id, recipient=recipient[:320], raw=raw)
        .first()
    )
    if kept is not None:
        return kept
    bounce = ReceivedBounce.objects.create(
        workspace_id=workspace_id,
        delivery_id=delivery_id,
        recipient=recipient[:320],
        envelope_from=envelope_from[:320],
        raw=raw,
    )
    transaction.on_commit(_process_bounces_soon)
    return bounce


def _process_bounces_soon() -> None:
    from patron.mail import tasks

    tasks.process_bounces.enqueue()


class Refused(Exception):
    """A message this server will not take after all; ``reply`` is the SMTP answer."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def unsubscribe_by_mail(
    *, workspace_id: int, contact_id: int, campaign_id: int, raw: bytes
) -> None:
    from patron.mail.unsubscribe import MAILTO, unsubscribe_from_all

    message = email.message_from_bytes(raw, policy=email.policy.default)
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    contact = Contact.objects.for_workspace(workspace_id).filter(pk=contact_id).first()
    if workspace is None or contact is None:
        return
    unsubscribe_from_all(
        workspace=workspace,
        contact=contact,
        campaign_id=campaign_id,
        method=MAILTO,
        details={"from": _clean_text(str(message.get("From", "")), 320)},
    )


def deliver(route: Route, *, recipient: str, envelope_from: str, raw: bytes) -> None:
    """Apply one accepted message to one of its routes."""
    if route.kind == REPLY:
        receive_reply(workspace_id=route.workspace_id, contact_id=route.object_id, raw=raw)
    elif route.kind == UNSUBSCRIBE:
        unsubscribe_by_mail(
            workspace_id=route.workspace_id,
            contact_id=route.object_id,
            campaign_id=route.campaign_id,
            raw=raw,
        )
    elif route.kind == BOUNCE:
        store_bounce(
            workspace_id=route.workspace_id,
            delivery_id=route.object_id,
            recipient=recipient,
            envelope_from=envelope_from,
            raw=raw,
        )
    elif route.kind == FEEDBACK:
        from patron.mail import feedback

        try:
            feedback.store_feedback_report(
                recipient=recipient, envelope_from=envelope_from, raw=raw
            )
        except feedback.ReportNotOurs as refusal:
            raise Refused(f"550 5.6.0 {refusal}") from None
        transaction.on_commit(_process_bounces_soon)


# --- The SMTP server ---------------------------------------------------------------------------


class InboundHandler:
    """aiosmtpd handler: checks each RCPT against ``route_for`` and applies DATA.

    The database work runs on one worker thread (Django's ORM is synchronous),
    whose connection is checked before each use.
    """

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbound-db")

    async def _run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        def job() -> Any:
            close_old_connections()
            return function(*args, **kwargs)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, job)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        try:
            route = await self._run(route_for, address)
        except Exception:
            logger.exception("Inbound: could not check the recipient %s", address)
            return "451 4.3.0 Temporary failure, try again later"
        if route is None:
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            await self._run(self._deliver_all, envelope.rcpt_tos, envelope.mail_from or "", raw)
        except Refused as refusal:
            logger.info("Inbound: refused a message from %s: %s", envelope.mail_from, refusal)
            return refusal.reply
        except Exception:
            logger.exception("Inbound: could not store a message from %s", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 Message accepted"

    @staticmethod
    def _deliver_all(recipients: list[str], envelope_from: str, raw: bytes) -> None:
        # All recipients or none: a refusal must not leave part of the message applied.
        with transaction.atomic():
            for recipient in recipients:
                route = route_for(recipient)
                if route is not None:
                    deliver(route, recipient=recipient, envelope_from=envelope_from, raw=raw)

    def close(self) -> None:
        """Close the worker thread's database connection, then the thread."""
        self.executor.submit(connections.close_all).result()
        self.executor.shutdown(wait=True)


def tls_context() -> ssl.SSLContext | None:
    """The STARTTLS context from PATRON_INBOUND_TLS_CERT_FILE/KEY_FILE, or None."""
    cert, key = settings.INBOUND_TLS_CERT_FILE, settings.INBOUND_TLS_KEY_FILE
    if not cert and not key:
        return None
    if not (cert and key):
        raise ImproperlyConfigured(
            "Set both PATRON_INBOUND_TLS_CERT_FILE and PATRON_INBOUND_TLS_KEY_FILE, or neither."
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def build_server(host: str | None = None, port: int | None = None) -> Controller:
    """The inbound SMTP server, not started: ``.start()`` listens, ``.stop()`` ends.

    With a certificate configured it offers STARTTLS; it does not require it,
    since an MX must take mail from servers that cannot switch to TLS.
    """
    return Controller(
        InboundHandler(),
        hostname=host or settings.INBOUND_HOST,
        port=settings.INBOUND_PORT if port is None else port,
        server_hostname=settings.INBOUND_DOMAIN,
        data_size_limit=settings.INBOUND_MAX_BYTES,
        enable_SMTPUTF8=True,
        decode_data=False,
        ident="Patron inbound",
        tls_context=tls_context(),
        require_starttls=False,
    )
