"""Writes for workspaces, people, invitations, API keys and the audit log."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _

from patron.core.models import (
    ApiKey,
    AuditAction,
    AuditEntry,
    Invitation,
    Membership,
    Notification,
    User,
    Workspace,
)
from patron.core.roles import GRANTABLE, Role

INVITATION_LIFETIME = timedelta(days=7)
WORKSPACE_HEADER = "X-Patron-Workspace"


class PermissionDenied(Exception):
    """The acting user's role does not allow this action."""


class InvitationInvalid(Exception):
    """The invitation link is unknown, used, revoked or expired."""


class LastOwner(Exception):
    """A workspace must keep at least one owner."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RequestInfo:
    """Who did something and from where, for the audit log."""

    ip_address: str | None = None
    user_agent: str = ""


def record_audit(
    *,
    action: str,
    workspace: Workspace | None,
    actor: User | None,
    target: str = "",
    request_info: RequestInfo | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    info = request_info or RequestInfo()
    return AuditEntry.objects.create(
        workspace=workspace,
        actor=actor,
        actor_label=actor.email if actor else "",
        action=action,
        target=target[:254],
        ip_address=info.ip_address,
        user_agent=info.user_agent[:300],
        data=data or {},
    )


# Letters that Unicode does not decompose into an ASCII base letter.
_SLUG_LETTERS = str.maketrans({"Đ": "D", "đ": "d", "Ł": "L", "ł": "l", "Ø": "O", "ø": "o",
                               "ß": "ss", "Æ": "AE", "æ": "ae"})  # fmt: skip


def unique_workspace_slug(name: str) -> str:
    base = slugify(name.translate(_SLUG_LETTERS))[:50] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_workspace(
    *,
    name: str,
    owner: User,
    slug: str | None = None,
    language: str = "en",
    time_zone: str = "UTC",
    currency: str = "USD",
    is_demo: bool = False,
) -> Workspace:
    workspace = Workspace.objects.create(
        name=name,
        slug=slug or unique_workspace_slug(name),
        language=language,
        time_zone=time_zone,
        currency=currency,
        is_demo=is_demo,
    )
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    record_audit(
        action=AuditAction.WORKSPACE_CREATED, workspace=workspace, actor=owner, target=name
    )
    return workspace


@transaction.atomic
def update_workspace_settings(
    *,
    workspace: Workspace,
    actor: User,
    name: str,
    language: str,
    time_zone: str,
    currency: str,
) -> Workspace:
    before = {
        "name": workspace.name,
        "language": workspace.language,
        "time_zone": workspace.time_zone,
        "currency": workspace.currency,
    }
    workspace.name, workspace.language = name, language
    workspace.time_zone, workspace.currency = time_zone, currency.upper()
    workspace.save(update_fields=["name", "language", "time_zone", "currency"])
    after = {"name": name, "language": language, "time_zone": time_zone, "currency": currency}
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changed:
        record_audit(
            action=AuditAction.SETTINGS_CHANGED,
            workspace=workspace,
            actor=actor,
            data={"changed": changed},
        )
    return workspace


def set_suppress_role_addresses(
    *, workspace: Workspace, enabled: bool, actor: User | None
) -> Workspace:
    """Turn on or off treating role addresses as suppressed (see ``patron.audience.sending``)."""
    before = workspace.suppress_role_addresses
    if before != enabled:
        workspace.suppress_role_addresses = enabled
        workspace.save(update_fields=["suppress_role_addresses"])
        record_audit(
            action=AuditAction.SETTINGS_CHANGED,
            workspace=workspace,
            actor=actor,
            data={"changed": {"suppress_role_addresses": [before, enabled]}},
        )
    return workspace


def _require_grant(actor_membership: Membership, role: str) -> None:
    if role not in GRANTABLE.get(actor_membership.role, frozenset()):
        raise PermissionDenied(_("Your role cannot grant the role “%(role)s”.") % {"role": role})


def _send_workspace_mail(
    *, workspace: Workspace, to: str, subject: str, template: str, context: dict[str, Any]
) -> None:
    """System mail on behalf of a workspace, in the workspace's language.

    ``template`` names ``<template>.txt`` and ``<template>.html``; a bare name is
    one of core's (``core/email/<name>``).
    """
    if "/" not in template:
        template = f"core/email/{template}"
    with translation.override(workspace.language):
        text = render_to_string(f"{template}.txt", context)
        html = render_to_string(f"{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        to=[to],
        headers={WORKSPACE_HEADER: str(workspace.pk)},
    )
    message.attach_alternative(html, "text/html")
    message.send()


@transaction.atomic
def invite_member(
    *,
    workspace: Workspace,
    actor_membership: Membership,
    email: str,
    role: str,
    request_info: RequestInfo | None = None,
) -> Invitation:
    """Create an invitation and email its link. Returns the invitation."""
    _require_grant(actor_membership, role)
    email = email.strip().lower()
    if Membership.objects.for_workspace(workspace).filter(user__email=email).exists():
        raise PermissionDenied(_("%(email)s is already a member.") % {"email": email})
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        token_hash=hash_token(token),
        invited_by=actor_membership.user,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    link = settings.BASE_URL + reverse("core:accept_invitation", args=[token])
    with translation.override(workspace.language):
        subject = _("You are invited to %(workspace)s on Patron") % {"workspace": workspace.name}
    inviter = actor_membership.user
    _send_workspace_mail(
        workspace=workspace,
        to=email,
        subject=subject,
        template="invitation",
        context={"workspace": workspace, "inviter": inviter, "link": link, "role": role},
    )
    record_audit(
        action=AuditAction.MEMBER_INVITED,
        workspace=workspace,
        actor=inviter,
        target=email,
        request_info=request_info,
        data={"role": role},
    )
    return invitation


def find_open_invitation(token: str) -> Invitation:
    try:
        invitation = (
            Invitation.objects.unscoped()
            .select_related("workspace")
            .get(token_hash=hash_token(token))
        )
    except Invitation.DoesNotExist as exc:
        raise InvitationInvalid(_("This invitation link is not valid.")) from exc
    if not invitation.is_open:
        raise InvitationInvalid(_("This invitation has expired or was already used."))
    return invitation


@transaction.atomic
def accept_invitation(
    *,
    token: str,
    user: User | None,
    name: str = "",
    password: str | None = None,
    request_info: RequestInfo | None = None,
) -> Membership:
    """Join the invitation's workspace, creating the account when there is none."""
    invitation = find_open_invitation(token)
    if user is None:
        if User.objects.filter(email=invitation.email).exists():
            raise InvitationInvalid(_("An account with this email exists: log in first."))
        user = User.objects.create_user(invitation.email, password, name=name)
    elif user.email.lower() != invitation.email:
        raise InvitationInvalid(
            _("This invitation is for %(email)s; you are logged in as someone else.")
            % {"email": invitation.email}
        )
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                workspace=invitation.workspace, user=user, role=invitation.role
            )
    except IntegrityError as exc:
        raise InvitationInvalid(_("You are already a member of this workspace.")) from exc
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    record_audit(
        action=AuditAction.MEMBER_JOINED,
        workspace=invitation.workspace,
        actor=user,
        target=user.email,
        request_info=request_info,
        data={"role": invitation.role},
    )
    return membership


@transaction.atomic
def revoke_invitation(
    *, invitation: Invitation, actor: User, request_info: RequestInfo | None = None
) -> None:
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    record_audit(
        action=AuditAction.INVITATION_REVOKED,
        workspace=invitation.workspace,
        actor=actor,
        target=invitation.email,
        request_info=request_info,
    )


def _owners_left(workspace: Workspace, excluding: Membership) -> int:
    return (
        Membership.objects.for_workspace(workspace)
        .filter(role=Role.OWNER, is_active=True)
        .exclude(pk=excluding.pk)
        .count()
    )


@transaction.atomic
def change_member_role(
    *,
    membership: Membership,
    actor_membership: Membership,
    role: str,
    request_info: RequestInfo | None = None,
) -> Membership:
    _require_grant(actor_membership, role)
    _require_grant(actor_membership, membership.role)
    demoting_owner = membership.role == Role.OWNER and role != Role.OWNER
    if demoting_owner and _owners_left(membership.workspace, membership) == 0:
        raise LastOwner(_("A workspace needs at least one owner."))
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    record_audit(
        action=AuditAction.ROLE_CHANGED,
        workspace=membership.workspace,
        actor=actor_membership.user,
        target=membership.user.email,
        request_info=request_info,
        data={"from": old, "to": role},
    )
    return membership


@transaction.atomic
def remove_member(
    *, membership: Membership, actor_membership: Membership, request_info: RequestInfo | None = None
) -> None:
    _require_grant(actor_membership, membership.role)
    if membership.role == Role.OWNER and _owners_left(membership.workspace, membership) == 0:
        raise LastOwner(_("A workspace needs at least one owner."))
    email = membership.user.email
    workspace = membership.workspace
    membership.delete()
    record_audit(
        action=AuditAction.MEMBER_REMOVED,
        workspace=workspace,
        actor=actor_membership.user,
        target=email,
        request_info=request_info,
    )


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


@transaction.atomic
def create_api_key(
    *,
    workspace: Workspace,
    name: str,
    created_by: User | None,
    request_info: RequestInfo | None = None,
) -> NewApiKey:
    secret = f"{settings.API_KEY_PREFIX}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        prefix=secret[:12],
        key_hash=hash_token(secret),
        created_by=created_by,
    )
    record_audit(
        action=AuditAction.API_KEY_CREATED,
        workspace=workspace,
        actor=created_by,
        target=f"{name} ({api_key.prefix}…)",
        request_info=request_info,
    )
    return NewApiKey(api_key=api_key, secret=secret)


@transaction.atomic
def revoke_api_key(
    *, api_key: ApiKey, actor: User | None, request_info: RequestInfo | None = None
) -> None:
    if api_key.revoked_at is not None:
        return
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    record_audit(
        action=AuditAction.API_KEY_REVOKED,
        workspace=api_key.workspace,
        actor=actor,
        target=f"{api_key.name} ({api_key.prefix}…)",
        request_info=request_info,
    )


# Writing last_used_at on every request would turn every API read into a write;
# once a minute per key is precise enough for "last used".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_api_key(secret: str) -> ApiKey | None:
    """The active key for ``secret``, touching its last-used time; None when unknown."""
    if not secret or not secret.startswith(settings.API_KEY_PREFIX + "_"):
        return None
    api_key = (
        ApiKey.objects.unscoped()
        .select_related("workspace")
        .filter(key_hash=hash_token(secret), revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.for_workspace(api_key.workspace_id).filter(pk=api_key.pk).update(
            last_used_at=now
        )
        api_key.last_used_at = now
    return api_key


def set_user_preferences(*, user: User, name: str, language: str, time_zone: str) -> User:
    user.name, user.language, user.time_zone = name, language, time_zone
    user.save(update_fields=["name", "language", "time_zone"])
    return user


@dataclass(frozen=True)
class Installation:
    workspace: Workspace
    admin: User
    password: str | None  # set only when this call created the admin


@transaction.atomic
def bootstrap_installation(
    *, admin_email: str | None = None, admin_password: str | None = None
) -> Installation | None:
    """Create the first administrator and workspace when the installation has none.

    Returns None when users exist already. The generated password is returned
    once so the command line can print it.
    """
    if User.objects.exists():
        return None
    email = (admin_email or "admin@example.com").lower()
    password = admin_password or secrets.token_urlsafe(12)
    admin = User.objects.create_superuser(email, password, name="Admin")
    workspace = create_workspace(name="My business", owner=admin)
    with translation.override(workspace.language):
        subject = _("Welcome to Patron")
    _send_workspace_mail(
        workspace=workspace,
        to=email,
        subject=subject,
        template="welcome",
        context={"workspace": workspace, "user": admin, "link": settings.BASE_URL + "/"},
    )
    return Installation(workspace=workspace, admin=admin, password=password)


def notify(*, workspace: Workspace, user: User, text: str, url: str = "") -> Notification:
    """Leave an in-app notification for ``user`` in ``workspace``."""
    return Notification.objects.create(workspace=workspace, user=user, text=text[:300], url=url)


def mark_notifications_read(*, workspace: Workspace, user: User) -> int:
    return (
        Notification.objects.for_workspace(workspace)
        .filter(user=user, read_at__isnull=True)
        .update(read_at=timezone.now())
    )


def send_workspace_mail(
    *, workspace: Workspace, to: str, subject: str, template: str, context: dict[str, Any]
) -> None:
    """System mail on behalf of a workspace (for other apps: reminders, notifications)."""
    _send_workspace_mail(
        workspace=workspace, to=to, subject=subject, template=template, context=context
    )
