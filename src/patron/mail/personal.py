"""One-to-one email: a user writes to one contact from the CRM.

**From.** Personal mail comes from the person who writes it, under the
authentication the workspace set up for its sending domain: a verified sender
address (``patron.mail.senders``) proves the workspace sends from that domain
(its SPF, DKIM and DMARC records cover it). So:

- when the user's own address is at the domain of one of the workspace's
  verified sender addresses, the mail comes from the user's address
  ("Sam Seller" <sam@acme.example>);
- otherwise it comes from the workspace's default sender address under the
  user's name ("Sam Seller" <news@acme.example>): writing from a domain the
  workspace has not proved (the user's private mailbox) would fail DMARC at
  the recipient's provider and land in spam;
- with no verified sender address at all, nothing is sent: the composer says
  to add one first.

The envelope sender (MAIL FROM) is the From address, so that a bounce of a
personal message reaches its writer as any mail they send would. Reply-To is
the contact's reply address (``links.reply_address``), so the answer arrives
at Patron's inbound server and lands on the contact's timeline, whatever From is.

**Not marketing.** Personal mail does not pass the bulk sending gate
(``patron.audience.sending``): a person writing to one person on purpose is
not a mailing. A suppressed address (unsubscribed, bounced, complained) is
still a signal worth seeing: the composer warns, and the service refuses
until the user confirms (``acknowledge_suppressed``).

**Merge fields** are the campaigns' (``rendering.contact_context``): the
subject and text are Liquid, compiled by ``rendering.compile_template``; the
HTML part is made from the text (paragraphs, line breaks, links), with
everything outside Liquid tags escaped and the values auto-escaped.

**Nothing silently dropped.** The message goes through the same transports as
campaigns (``transports.transport_for``: captured into the Outbox by default).
A sent message is recorded as ``email.sent`` (``one_to_one``) with its subject
and body; a refused one as ``email.failed`` with the server's answer, and
``EmailNotSent`` tells the user, whose text the composer keeps. A form
submitted twice (a double click, a reload) sends once: its ``send_key``
is recorded with the message and a second send with it does nothing.
"""

from __future__ import annotations

import re
import smtplib
import uuid
from dataclasses import dataclass
from email.utils import formataddr
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.html import urlize
from django.utils.translation import gettext as _
from liquid.exceptions import LiquidError

from patron.activity.models import Event
from patron.activity.services import record
from patron.audience import suppression
from patron.core.models import User, Workspace
from patron.crm.models import Contact
from patron.mail import links, mime, rendering, senders
from patron.mail.dkim import signer_for
from patron.mail.models import SenderIdentity
from patron.mail.transports import Outcome, Outgoing, Result, transport_for

SUBJECT_LIMIT = 300
BODY_LIMIT = 50_000
EVENT_SOURCE = "mail.personal"
_SEND_KEY = re.compile(r"^[0-9a-f]{32}$")
# A Message-ID as a reply's In-Reply-To and References may carry it: <left@right>, printable.
_MESSAGE_ID = re.compile(r"^<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>$")
_LIQUID = re.compile(r"({{.*?}}|{%.*?%})", re.DOTALL)


class EmailInvalid(ValueError):
    """The message cannot be sent as written; ``errors`` maps field names ("" for the
    whole message) to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class EmailNotSent(RuntimeError):
    """The transport refused the message or could not reach a server."""

    def __init__(self, message: str, result: Result | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Sender:
    """Who a user's personal mail comes from."""

    name: str
    email: str
    identity: SenderIdentity
    # True when the user's own address is used (its domain is a verified sending domain).
    own_address: bool

    @property
    def formatted(self) -> str:
        return formataddr((self.name, self.email))


def new_send_key() -> str:
    return uuid.uuid4().hex


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def sender_for(workspace: Workspace, user: User) -> Sender | None:
    """The From of ``user``'s personal mail in ``workspace`` (see the module's rules)."""
    identities = list(senders.verified_identities(workspace))
    if not identities:
        return None
    name = user.display_name
    user_domain = _domain(user.email)
    for identity in identities:
        if _domain(identity.from_email) == user_domain:
            return Sender(name=name, email=user.email, identity=identity, own_address=True)
    return Sender(
        name=name, email=identities[0].from_email, identity=identities[0], own_address=False
    )


def recipient_choices(contact: Contact) -> list[str]:
    """The contact's addresses, the primary first."""
    addresses = [contact.email] if contact.email else []
    for other in contact.other_emails.order_by("email"):
        if other.email.lower() not in {a.lower() for a in addresses}:
            addresses.append(other.email)
    return addresses


def suppressed_recipients(workspace: Workspace, contact: Contact) -> dict[str, str]:
    """The contact's suppressed addresses -> why (the reason's label), for the warning."""
    found = suppression.statuses(workspace, recipient_choices(contact))
    return {
        address: found[address.lower()].label
        for address in recipient_choices(contact)
        if address.lower() in found
    }


def received_message(contact: Contact, event_id: int | str | None) -> Event | None:
    """The contact's received email ``event_id`` (an answer starts from it), or None."""
    try:
        number = int(event_id or 0)
    except (TypeError, ValueError):
        return None
    if number <= 0:
        return None
    return (
        Event.objects.for_workspace(contact.workspace_id)
        .filter(pk=number, contact_id=contact.pk, kind="email.received")
        .first()
    )


def reply_subject(subject: str) -> str:
    subject = " ".join((subject or "").split())
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


def html_template(text: str) -> str:
    """The HTML part of a text written in the composer, Liquid tags kept as written.

    Text outside Liquid tags is escaped and its web addresses linked; blank
    lines make paragraphs, single line breaks ``<br>``.
    """
    pieces = []
    for index, piece in enumerate(_LIQUID.split(text.replace("\r\n", "\n"))):
        pieces.append(piece if index % 2 else urlize(piece, nofollow=True, autoescape=True))
    joined = "".join(pieces).strip()
    paragraphs = [p.replace("\n", "<br>\n") for p in re.split(r"\n{2,}", joined) if p.strip()]
    return "\n".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)


def _clean(
    workspace: Workspace,
    contact: Contact,
    *,
    to_email: str,
    subject: str,
    body: str,
    acknowledge_suppressed: bool,
) -> tuple[str, str, str]:
    errors: dict[str, str] = {}
    to_email = (to_email or "").strip()
    subject = " ".join((subject or "").split())
    body = (body or "").replace("\r\n", "\n").strip("\n")
    if not to_email:
        errors["to"] = _("Choose the address to write to.")
    else:
        try:
            validate_email(to_email)
        except ValidationError:
            errors["to"] = _("“%(value)s” is not a valid email address.") % {
                "value": to_email[:100]
            }
        else:
            if to_email.lower() not in {a.lower() for a in recipient_choices(contact)}:
                errors["to"] = _("%(address)s is not an address of this contact.") % {
                    "address": to_email[:100]
                }
    if not subject:
        errors["subject"] = _("Write a subject.")
    elif len(subject) > SUBJECT_LIMIT:
        errors["subject"] = _("Keep the subject under %(limit)d characters.") % {
            "limit": SUBJECT_LIMIT
        }
    if not body.strip():
        errors["body"] = _("Write the message.")
    elif len(body) > BODY_LIMIT:
        errors["body"] = _("Keep the message under %(limit)d characters.") % {"limit": BODY_LIMIT}
    if "to" not in errors and not acknowledge_suppressed:
        status = suppression.status(workspace, to_email)
        if status is not None:
            errors["acknowledge_suppressed"] = _(
                "%(address)s is suppressed (%(reason)s). Confirm that you want to write to it "
                "anyway."
            ) % {"address": to_email, "reason": status.label}
    if errors:
        raise EmailInvalid(errors)
    return to_email, subject, body


def render_message(
    contact: Contact, *, subject: str, body: str, sender: Sender
) -> rendering.RenderedMessage:
    """Subject, HTML and text with the contact's merge fields; ``EmailInvalid`` for Liquid
    that cannot be read."""
    source = rendering.TemplateSource(
        subject=subject, body=html_template(body), format=rendering.HTML, text=body
    )
    try:
        compiled = rendering.compile_template(source)
        context = rendering.contact_context(
            contact, sender={"name": sender.name, "email": sender.email}
        )
        return compiled.render(context)
    except rendering.TemplateError as error:
        field_name = "subject" if error.problem.part == "subject" else "body"
        raise EmailInvalid({field_name: str(error.problem)}) from error
    except LiquidError as error:  # raised while rendering: an unknown filter, say
        raise EmailInvalid({"body": str(error.message or error)}) from error


def _send(workspace: Workspace, outgoing: Outgoing) -> Result:
    transport = transport_for(workspace.pk)
    try:
        return transport.send([outgoing])[0]
    except (OSError, smtplib.SMTPException) as exc:
        return Result(key=outgoing.key, outcome=Outcome.RETRY, reply=str(exc))
    finally:
        transport.close()


def send_personal_email(
    *,
    workspace: Workspace,
    contact: Contact,
    user: User,
    to_email: str,
    subject: str,
    body: str,
    send_key: str = "",
    acknowledge_suppressed: bool = False,
    in_reply_to: str = "",
) -> Event:
    """Send one message from ``user`` to ``contact`` and record it on the timeline.

    ``in_reply_to`` is the Message-ID of the contact's message this answers
    (``In-Reply-To`` and ``References``, so mail clients thread the two).

    Returns the ``email.sent`` event. Raises ``EmailInvalid`` (nothing sent)
    for a message that cannot be sent as written, and ``EmailNotSent`` when
    the transport refused it (recorded as ``email.failed``).
    """
    to_email, subject, body = _clean(
        workspace,
        contact,
        to_email=to_email,
        subject=subject,
        body=body,
        acknowledge_suppressed=acknowledge_suppressed,
    )
    sender = sender_for(workspace, user)
    if sender is None:
        raise EmailInvalid(
            {"": _("Add and verify a sender address (Settings, Sender addresses) first.")}
        )
    if not _SEND_KEY.match(send_key or ""):
        send_key = new_send_key()
    in_reply_to = (in_reply_to or "").strip()
    if in_reply_to and not _MESSAGE_ID.match(in_reply_to):
        raise EmailInvalid({"": _("The message this answers has no usable Message-ID.")})
    thread = [("In-Reply-To", in_reply_to), ("References", in_reply_to)] if in_reply_to else []
    rendered = render_message(contact, subject=subject, body=body, sender=sender)
    reply_to = links.reply_address(workspace.pk, contact.pk)
    message_id = mime.message_id_for(f"personal.{send_key}")
    properties: dict[str, Any] = {
        "one_to_one": True,
        "subject": rendered.subject,
        "body": rendered.text,
        "to": to_email,
        "from": sender.formatted,
        "reply_to": reply_to,
        "message_id": message_id,
        **({"in_reply_to": in_reply_to} if in_reply_to else {}),
    }
    with transaction.atomic():
        # One send per contact at a time, so that a form sent twice sends once.
        Contact.objects.for_workspace(workspace).select_for_update().filter(pk=contact.pk).first()
        done = (
            Event.objects.for_workspace(workspace)
            .filter(kind="email.sent", source_type=EVENT_SOURCE, source_id=send_key)
            .first()
        )
        if done is not None:
            return done
        data = mime.build_message(
            from_name=sender.name,
            from_email=sender.email,
            to_email=to_email,
            to_name=contact.full_name if to_email.lower() == contact.email.lower() else "",
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            message_id=message_id,
            reply_to=reply_to,
            headers=thread,
        )
        signer = signer_for(workspace.pk, _domain(sender.email))
        if signer is not None:
            data = signer.sign(data)
        result = _send(
            workspace,
            Outgoing(
                key=send_key,
                envelope_from=sender.email,
                recipients=[to_email],
                data=data,
                workspace_id=workspace.pk,
            ),
        )
        if result.outcome == Outcome.SENT:
            return record(
                workspace=workspace,
                kind="email.sent",
                contact_id=contact.pk,
                actor=user,
                source=(EVENT_SOURCE, send_key),
                properties=properties,
            )
        record(
            workspace=workspace,
            kind="email.failed",
            contact_id=contact.pk,
            actor=user,
            source=(EVENT_SOURCE, send_key),
            properties={
                **properties,
                "outcome": str(result.outcome),
                "code": result.code,
                "reply": result.reply[:1000],
            },
        )
    if result.outcome == Outcome.RETRY:
        message = _(
            "The mail server could not take the message just now (%(reply)s). It was not "
            "sent; try again in a moment."
        )
    else:
        message = _("The mail server refused the message (%(reply)s). It was not sent.")
    reply = " ".join(filter(None, [str(result.code or ""), result.reply])) or _("no answer")
    raise EmailNotSent(message % {"reply": reply[:300]}, result)


# --- Personal templates ----------------------------------------------------------------------


def personal_templates(workspace: Workspace) -> Any:
    """The workspace's templates for one-to-one mail (kind "personal"), by name."""
    from patron.mail import templates_service
    from patron.mail.models import TemplateKind

    return templates_service.templates_for(workspace, TemplateKind.PERSONAL).order_by("name", "id")


def message_from_template(template: Any) -> tuple[str, str]:
    """The subject and the text a personal template gives the composer.

    The composer writes text (its HTML part is made from it), so the body is the
    template's plain-text part, or text made from its design. Merge tags stay as
    they are: they are rendered for the contact when the message is sent.
    """
    from patron.mail import templates_service

    text = (template.text or "").strip()
    if not text:
        source = templates_service.template_source(template)
        source = rendering.TemplateSource(subject="", body=source.body, format=source.format)
        try:
            text = rendering.html_to_text(rendering.compile_template(source).html).strip()
        except rendering.TemplateError:
            text = ""
    return template.subject or "", text
