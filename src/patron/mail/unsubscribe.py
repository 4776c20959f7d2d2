"""Unsubscribing from all of a workspace's mail: the link of every campaign, RFC 8058
one-click, and the ``mailto:`` of ``List-Unsubscribe``.

Unsubscribing a contact, whichever way it comes:

1. every list subscription that is subscribed or pending becomes unsubscribed,
   through ``patron.audience.lists`` (a consent record each: source
   "unsubscribe link", IP address and browser when known, the campaign and the
   method in its details);
2. the contact's address goes on the suppression list with the reason
   "unsubscribed from all", through ``patron.audience.suppression`` (so no
   campaign, workflow or list reaches it any more; the first reason stays if it
   was suppressed already);
3. ``email.unsubscribed`` is recorded on the contact's timeline with the campaign;
4. the campaign's delivery to the contact gets its ``unsubscribed_at`` (the
   first time only), which the campaign report counts.

It is idempotent: a second request (a mail provider's one-click POST followed
by the person's own click, a scanner) changes nothing and records nothing. The
contact's row is locked meanwhile, so two requests at once do not both record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.audience import lists, suppression
from patron.audience.models import ConsentSource, SubscriptionStatus, SuppressionReason
from patron.core.models import Workspace
from patron.core.services import RequestInfo
from patron.crm.models import Contact
from patron.mail.links import read_unsubscribe_token
from patron.mail.models import Delivery

# How the request came: the page's button, a mail client's one-click POST, an email.
PAGE, ONE_CLICK, MAILTO = "page", "one_click", "mailto"
METHODS = (PAGE, ONE_CLICK, MAILTO)
ACTIVE = (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING)


class UnsubscribeInvalid(ValueError):
    """A token that unsubscribes nobody: ``reason`` is "invalid" (tampered, malformed,
    unknown workspace) or "gone" (signed by us, but the contact no longer exists)."""

    def __init__(self, reason: str, workspace: Workspace | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.workspace = workspace


@dataclass(frozen=True)
class Target:
    """Who a valid token unsubscribes."""

    workspace: Workspace
    contact: Contact
    campaign_id: int


@dataclass
class Result:
    """What an unsubscribe changed: nothing at all on a repeated request."""

    lists: list[str] = field(default_factory=list)
    suppressed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.lists) or self.suppressed


def target_for_token(token: str) -> Target:
    """The workspace, contact and campaign a token names; ``UnsubscribeInvalid`` otherwise."""
    values = read_unsubscribe_token(token)
    if values is None:
        raise UnsubscribeInvalid("invalid")
    workspace_id, contact_id, campaign_id = values
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        raise UnsubscribeInvalid("invalid")
    contact = Contact.objects.for_workspace(workspace).filter(pk=contact_id).first()
    if contact is None:
        raise UnsubscribeInvalid("gone", workspace)
    return Target(workspace=workspace, contact=contact, campaign_id=campaign_id)


def mark_delivery_unsubscribed(*, workspace: Workspace, campaign_id: int, contact_id: int) -> int:
    """Note on the campaign's delivery to the contact that it led to an unsubscribe.

    One UPDATE through the (campaign, contact) unique index; a delivery marked
    already keeps its first time. Returns the rows changed (0 or 1; 0 as well for a
    token of a test send or of a campaign whose deliveries are gone).
    """
    if not campaign_id:
        return 0
    return (
        Delivery.objects.for_workspace(workspace)
        .filter(campaign_id=campaign_id, contact_id=contact_id, unsubscribed_at__isnull=True)
        .update(unsubscribed_at=timezone.now())
    )


def mask_address(email: str) -> str:
    """An address shown to whoever holds the link, hard to harvest: ``a•••@example.com``."""
    local, at, domain = (email or "").partition("@")
    if not at:
        return ""
    return f"{local[:1]}•••@{domain}".lower()


def is_unsubscribed(contact: Contact) -> bool:
    """Whether there is nothing left to do: no active subscription, and the address
    (if any) suppressed."""
    active = any(
        subscription.status in ACTIVE
        for subscription, _history in lists.contact_subscriptions(contact)
    )
    if active:
        return False
    if not contact.email:
        return True
    return suppression.status(contact.workspace, contact.email) is not None


@transaction.atomic
def unsubscribe_from_all(
    *,
    workspace: Workspace,
    contact: Contact,
    campaign_id: int = 0,
    method: str = PAGE,
    request_info: RequestInfo | None = None,
    consent_text: str = "",
    details: dict[str, Any] | None = None,
) -> Result:
    """Unsubscribe a contact from every list of the workspace and suppress its address."""
    if method not in METHODS:
        raise ValueError(f"Unknown unsubscribe method {method!r}")
    info = request_info or RequestInfo()
    # One request at a time per contact: the second sees what the first did.
    contact = (
        Contact.objects.for_workspace(workspace)
        .select_for_update(of=("self",))
        .select_related("workspace")
        .get(pk=contact.pk)
    )
    about: dict[str, Any] = {"method": method, **(details or {})}
    if campaign_id:
        about["campaign_id"] = campaign_id
    consent = lists.Consent(
        source=ConsentSource.UNSUBSCRIBE_LINK,
        consent_text=consent_text,
        ip_address=info.ip_address,
        user_agent=info.user_agent,
        details=about,
    )
    result = Result()
    for subscription, _history in lists.contact_subscriptions(contact):
        if subscription.status not in ACTIVE:
            continue
        outcome = lists.unsubscribe(
            mailing_list=subscription.mailing_list, contact=contact, consent=consent
        )
        if outcome.changed:
            result.lists.append(subscription.mailing_list.name)
    if contact.email:
        try:
            written = suppression.suppress_addresses(
                workspace=workspace,
                emails=[contact.email],
                reason=SuppressionReason.UNSUBSCRIBED,
                details={"source": "unsubscribe", **about},
                request_info=info,
            )
            result.suppressed = bool(written.added)
        except suppression.SuppressionInvalid:
            # An address the suppression list cannot store is not mailed either
            # (the sending gate needs a valid address); the lists are left all the same.
            pass
    if result.changed:
        mark_delivery_unsubscribed(
            workspace=workspace, campaign_id=campaign_id, contact_id=contact.pk
        )
        record(
            workspace=workspace,
            kind="email.unsubscribed",
            contact_id=contact.pk,
            source=("mail.campaign", campaign_id) if campaign_id else None,
            properties={
                "title": _("Unsubscribed from all mail"),
                "email": contact.email,
                "method": method,
                "campaign": campaign_id or None,
                "lists": result.lists,
                "suppressed": result.suppressed,
            },
        )
    return result
