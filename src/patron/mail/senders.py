"""Sender identities: the From addresses a workspace's campaigns may use.

An identity is a from name, a from address, an optional reply-to address and
the postal address that campaigns print (``{{ postal_address }}``). It can be
used only once someone who reads the from address proved it: the
verification email carries a signed link (``SENDER_SALT``, valid
``VERIFICATION_LIFETIME``) naming the workspace, the identity and the address,
so a link stops working when the address changes. The public page the link
opens confirms only on POST, so mail scanners that fetch links verify nothing.

The workspace's default identity is always a verified one: the first identity
verified becomes the default, and when the default is deleted or its address
changes, the earliest verified other identity takes its place.
"""

from __future__ import annotations

import smtplib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import linebreaks, urlize
from django.utils.translation import gettext as _

from patron.core.models import User, Workspace
from patron.core.services import WORKSPACE_HEADER, RequestInfo, record_audit
from patron.mail.models import SenderIdentity

SENDER_SALT = "patron.mail.sender"  # a signing namespace, not a secret
VERIFICATION_LIFETIME = timedelta(days=3)
NAME_LIMIT = 100
POSTAL_LIMIT = 1000
EDITABLE = ("from_name", "from_email", "reply_to", "postal_address")


class SenderInvalid(ValueError):
    """An identity's values were refused; ``field`` names the one at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class SenderEmailTaken(SenderInvalid):
    pass


class SenderNotVerified(ValueError):
    """The identity's address is not verified, and the action needs it to be."""


class VerificationNotSent(RuntimeError):
    """The mail server refused or could not be reached; the identity stays pending."""


class VerificationInvalid(ValueError):
    """A link that cannot verify: ``reason`` is expired, invalid or outdated."""

    def __init__(self, reason: str, identity: SenderIdentity | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.identity = identity


# --- Values ----------------------------------------------------------------------------------


def normalise_address(value: str, field_name: str = "from_email") -> str:
    """A valid address with its domain in lower case (the local part stays as typed)."""
    address = (value or "").strip()
    if not address:
        raise SenderInvalid(field_name, _("Enter an email address."))
    if len(address) > 254:
        raise SenderInvalid(field_name, _("An email address has at most 254 characters."))
    try:
        validate_email(address)
    except ValidationError:
        raise SenderInvalid(
            field_name,
            _("“%(value)s” is not a valid email address.") % {"value": address[:100]},
        ) from None
    local, _at, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _clean(workspace: Workspace, values: dict[str, Any], exclude: int | None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    if "from_name" in values:
        name = " ".join(str(values["from_name"] or "").split())
        if not name:
            raise SenderInvalid("from_name", _("Enter the name recipients see."))
        if len(name) > NAME_LIMIT:
            raise SenderInvalid("from_name", _("Keep the name under 100 characters."))
        cleaned["from_name"] = name
    if "from_email" in values:
        address = normalise_address(str(values["from_email"] or ""))
        taken = SenderIdentity.objects.for_workspace(workspace).filter(from_email__iexact=address)
        if exclude is not None:
            taken = taken.exclude(pk=exclude)
        if taken.exists():
            raise SenderEmailTaken(
                "from_email",
                _("%(address)s is a sender address already.") % {"address": address},
            )
        cleaned["from_email"] = address
    if "reply_to" in values:
        reply_to = str(values["reply_to"] or "").strip()
        cleaned["reply_to"] = normalise_address(reply_to, "reply_to") if reply_to else ""
    if "postal_address" in values:
        lines = [line.strip() for line in str(values["postal_address"] or "").splitlines()]
        postal = "\n".join(line for line in lines if line)
        if not postal:
            raise SenderInvalid(
                "postal_address",
                _("Enter the postal address: the law asks for one in every campaign."),
            )
        if len(postal) > POSTAL_LIMIT:
            raise SenderInvalid("postal_address", _("Keep the address under 1,000 characters."))
        cleaned["postal_address"] = postal
    return cleaned


# --- Writing ---------------------------------------------------------------------------------


@transaction.atomic
def create_sender(
    *,
    workspace: Workspace,
    from_name: str,
    from_email: str,
    postal_address: str,
    reply_to: str = "",
    actor: User | None = None,
    request_info: RequestInfo | None = None,
) -> SenderIdentity:
    """Add a pending identity; ``send_verification()`` then asks its address to confirm."""
    values = _clean(
        workspace,
        {
            "from_name": from_name,
            "from_email": from_email,
            "reply_to": reply_to,
            "postal_address": postal_address,
        },
        exclude=None,
    )
    identity = SenderIdentity.objects.create(workspace=workspace, created_by=actor, **values)
    record_audit(
        workspace=workspace,
        actor=actor,
        action="sender.created",
        target=identity.from_email,
        request_info=request_info,
    )
    return identity


@transaction.atomic
def update_sender(
    *,
    identity: SenderIdentity,
    actor: User | None = None,
    request_info: RequestInfo | None = None,
    **values: Any,
) -> tuple[SenderIdentity, bool]:
    """Change an identity; returns it and whether its address changed.

    A new address is unverified (and no longer the default) until the link
    sent to it is followed; links sent to the old address stop working.
    """
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise SenderInvalid(sorted(unknown)[0], _("This field cannot be changed."))
    workspace = identity.workspace
    given = {name: value for name, value in values.items() if value is not None}
    cleaned = _clean(workspace, given, exclude=identity.pk)
    old_address = identity.from_email
    # The same mailbox in another case is not a new address (uniqueness and links agree).
    address_changed = (
        "from_email" in cleaned and cleaned["from_email"].lower() != old_address.lower()
    )
    for name, value in cleaned.items():
        setattr(identity, name, value)
    if address_changed:
        identity.verified_at = None
        identity.verification_sent_at = None
        identity.is_default = False
    identity.save()
    record_audit(
        workspace=workspace,
        actor=actor,
        action="sender.updated",
        target=identity.from_email,
        request_info=request_info,
        data={"previous_address": old_address} if address_changed else None,
    )
    if address_changed:
        _ensure_default(workspace)
        identity.refresh_from_db()
    return identity, address_changed


@transaction.atomic
def delete_sender(
    *, identity: SenderIdentity, actor: User | None = None, request_info: RequestInfo | None = None
) -> None:
    """Delete an identity; when it was the default, another verified one takes its place."""
    workspace = identity.workspace
    record_audit(
        workspace=workspace,
        actor=actor,
        action="sender.deleted",
        target=identity.from_email,
        request_info=request_info,
    )
    identity.delete()
    _ensure_default(workspace)


@transaction.atomic
def set_default_sender(
    *, identity: SenderIdentity, actor: User | None = None, request_info: RequestInfo | None = None
) -> SenderIdentity:
    """Make a verified identity the one campaigns start with."""
    identity = (
        SenderIdentity.objects.for_workspace(identity.workspace_id)
        .select_for_update()
        .get(pk=identity.pk)
    )
    if not identity.is_verified:
        raise SenderNotVerified(
            _("Verify %(address)s before making it the default.") % {"address": identity.from_email}
        )
    if identity.is_default:
        return identity
    # Clear the old default first: one default per workspace is a constraint.
    SenderIdentity.objects.for_workspace(identity.workspace_id).filter(is_default=True).update(
        is_default=False
    )
    identity.is_default = True
    identity.save(update_fields=["is_default"])
    record_audit(
        workspace=identity.workspace,
        actor=actor,
        action="sender.default_set",
        target=identity.from_email,
        request_info=request_info,
    )
    return identity


def _ensure_default(workspace: Workspace | int) -> None:
    """When no identity is the default, the earliest verified one becomes it."""
    identities = SenderIdentity.objects.for_workspace(workspace)
    if identities.filter(is_default=True).exists():
        return
    first = verified_identities(workspace).order_by("verified_at", "id").first()
    if first is not None:
        identities.filter(pk=first.pk).update(is_default=True)


# --- Verification ----------------------------------------------------------------------------


def verification_token(identity: SenderIdentity) -> str:
    """The signed token of a verification link: workspace, identity, address, and when."""
    return signing.dumps(
        {"w": identity.workspace_id, "s": identity.pk, "e": identity.from_email.lower()},
        salt=SENDER_SALT,
        compress=True,
    )


def verification_url(identity: SenderIdentity) -> str:
    token = verification_token(identity)
    return settings.BASE_URL + reverse("senders:verify", args=[token])


def send_verification(*, identity: SenderIdentity) -> None:
    """Email the from address a link that verifies it (in the workspace's language).

    Raises ``VerificationNotSent`` when the mail server fails; a verified
    identity is not sent anything (``SenderInvalid``).
    """
    if identity.is_verified:
        raise SenderInvalid(
            "from_email", _("%(address)s is verified already.") % {"address": identity.from_email}
        )
    workspace = identity.workspace
    with translation.override(workspace.language):
        context = {
            "workspace": workspace.name,
            "address": identity.from_email,
            "name": identity.from_name,
            "url": verification_url(identity),
            "days": VERIFICATION_LIFETIME.days,
        }
        subject = _("Confirm %(address)s as a sender for %(workspace)s") % context
        text = (
            _(
                "Hello,\n\n"
                "someone in the Patron workspace %(workspace)s asked to send email as "
                "“%(name)s” <%(address)s>.\n\n"
                "If that was you or your team, confirm it here (the link works for %(days)s days):"
                "\n\n%(url)s\n\n"
                "If you do not know why you got this, ignore it: nothing is sent from your "
                "address until it is confirmed.\n"
            )
            % context
        )
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        to=[identity.from_email],
        headers={WORKSPACE_HEADER: str(workspace.pk)},
    )
    message.attach_alternative(
        linebreaks(urlize(text, autoescape=True), autoescape=False), "text/html"
    )
    try:
        message.send()
    except (OSError, smtplib.SMTPException) as exc:
        raise VerificationNotSent(
            _("The verification email could not be sent: %(error)s") % {"error": exc}
        ) from exc
    SenderIdentity.objects.for_workspace(workspace).filter(pk=identity.pk).update(
        verification_sent_at=timezone.now()
    )
    identity.verification_sent_at = timezone.now()


def identity_for_token(token: str) -> SenderIdentity:
    """The identity a verification link names; ``VerificationInvalid`` when it cannot verify."""
    try:
        data = signing.loads(token, salt=SENDER_SALT, max_age=VERIFICATION_LIFETIME)
        expired = False
    except signing.SignatureExpired:
        expired = True
        try:
            data = signing.loads(token, salt=SENDER_SALT)
        except signing.BadSignature as exc:
            raise VerificationInvalid("invalid") from exc
    except signing.BadSignature as exc:
        raise VerificationInvalid("invalid") from exc
    try:
        workspace_id, identity_id, address = int(data["w"]), int(data["s"]), str(data["e"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationInvalid("invalid") from exc
    identity = (
        SenderIdentity.objects.for_workspace(workspace_id)
        .select_related("workspace")
        .filter(pk=identity_id)
        .first()
    )
    if identity is None:
        raise VerificationInvalid("invalid")
    if identity.from_email.lower() != address:
        raise VerificationInvalid("outdated", identity)
    if expired and not identity.is_verified:
        raise VerificationInvalid("expired", identity)
    return identity


@transaction.atomic
def verify_sender(
    *, token: str, request_info: RequestInfo | None = None
) -> tuple[SenderIdentity, bool]:
    """Mark the identity a link names as verified; returns it and whether it changed.

    A second click changes nothing; a link for an address the identity no
    longer has (``outdated``) or older than ``VERIFICATION_LIFETIME`` fails.
    """
    identity = identity_for_token(token)
    identity = (
        SenderIdentity.objects.for_workspace(identity.workspace_id)
        .select_for_update()
        .select_related("workspace")
        .get(pk=identity.pk)
    )
    if identity.is_verified:
        return identity, False
    identity.verified_at = timezone.now()
    identity.save(update_fields=["verified_at"])
    record_audit(
        workspace=identity.workspace,
        actor=None,
        action="sender.verified",
        target=identity.from_email,
        request_info=request_info,
    )
    _ensure_default(identity.workspace)
    identity.refresh_from_db()
    return identity, True


# --- Reads -----------------------------------------------------------------------------------


def sender_identities(workspace: Workspace | int) -> QuerySet[SenderIdentity]:
    """Every identity of the workspace: the default first, then by address."""
    return SenderIdentity.objects.for_workspace(workspace).order_by(
        "-is_default", Lower("from_email"), "id"
    )


def verified_identities(workspace: Workspace | int) -> QuerySet[SenderIdentity]:
    """The identities a campaign may send from: verified ones, the default first."""
    return sender_identities(workspace).filter(verified_at__isnull=False)


def default_identity(workspace: Workspace | int) -> SenderIdentity | None:
    return verified_identities(workspace).filter(is_default=True).first()
