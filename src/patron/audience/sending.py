"""The sending gate: who bulk and automated mail may reach. The one place that decides it.

**Every path that mails contacts in bulk or automatically — campaigns,
workflow steps, digests, anything started by a rule rather than by a person
writing to one person — must choose its recipients with
``sendable_contacts`` (many contacts) or check ``may_send`` (one message)
immediately before it sends.** No other code filters recipients for
suppression or consent; a new sending path that does not go through here is a
bug, whatever it checks on its own.

The rules, applied to the contact's primary address (``Contact.email``, the
one mail goes to):

1. a contact without an email address is never mailed;
2. an address on the workspace's suppression list is never mailed, compared
   case-insensitively (the list stores lower-case; ``LOWER()`` of the
   contact's address is compared to it — for ASCII letters on every database;
   non-ASCII letters are compared as written where the database folds only
   ASCII, as SQLite does);
3. with the workspace's ``suppress_role_addresses`` setting on, a role address
   (``abuse@``, ``postmaster@``, ``noreply@``, … see
   ``patron.audience.suppression.ROLE_LOCAL_PARTS``) is never mailed;
4. when a send goes to lists, only contacts whose subscription to at least one
   of those lists is ``subscribed`` are mailed: pending (not confirmed),
   unsubscribed and cleaned subscriptions never are, nor contacts not on the
   lists at all. ``lists=[]`` therefore selects nobody; ``lists=None`` means
   the send is not to lists (a segment, a workflow) and rule 4 does not apply.

Another address the contact carries (``other_emails``) does not block mail
to the primary one: suppression is about an address, and an old address that
bounced says nothing about the new one. Primary addresses are unique per
workspace, so the result never holds one address twice.

``sendable_contacts`` returns a queryset: one SQL statement (an ``EXISTS`` on
the suppression list's unique index, an ``IN`` over the lists' subscribed
members, the role test as one expression), nothing filtered in Python, so a
send pipeline can materialise it with ``INSERT … SELECT``. The role-address
setting is read from the database in the same statement (a join to the
workspace), so a worker holding an old ``Workspace`` object still applies the
current setting.

Mail a user writes to one person on purpose (sending a quote to its contact)
and the installation's mail to its users (invitations, password resets, task
reminders) are not marketing and do not pass through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from patron.audience.models import MailingList, Subscription, SubscriptionStatus, Suppression
from patron.audience.suppression import (
    SuppressionInvalid,
    is_role_address,
    is_role_address_sql,
    normalise_email,
)
from patron.core.models import Workspace
from patron.crm.models import Contact


class Verdict(models.TextChoices):
    SENDABLE = "sendable", _("May be mailed")
    NO_ADDRESS = "no_address", _("No email address")
    INVALID_ADDRESS = "invalid_address", _("Not a valid email address")
    SUPPRESSED = "suppressed", _("The address is suppressed")
    ROLE_ADDRESS = "role_address", _("Role addresses are not mailed in this workspace")
    NOT_SUBSCRIBED = "not_subscribed", _("Not subscribed to the list")


@dataclass(frozen=True)
class Decision:
    """Whether one message may go out, and if not, why."""

    allowed: bool
    reason: str  # a Verdict
    # The suppression's reason (hard_bounce, complaint, ...) when reason is "suppressed".
    suppression_reason: str = ""
    # The subscription's status (pending, unsubscribed, cleaned; "" when not on the list).
    subscription_status: str = ""

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def message(self) -> str:
        return str(Verdict(self.reason).label)


def _list_ids(lists: Iterable[MailingList | int]) -> list[int]:
    return [item.pk if isinstance(item, MailingList) else int(item) for item in lists]


def sendable_contacts(
    workspace: Workspace,
    contacts: QuerySet[Contact],
    *,
    lists: Iterable[MailingList | int] | None = None,
) -> QuerySet[Contact]:
    """The contacts of ``contacts`` that bulk or automated mail may reach (see the rules above)."""
    sendable = contacts.filter(workspace=workspace).exclude(email="")
    sendable = sendable.exclude(
        Exists(Suppression.objects.filter(workspace=workspace, email=Lower(OuterRef("email"))))
    )
    sendable = sendable.exclude(
        models.Q(workspace__suppress_role_addresses=True) & is_role_address_sql("email")
    )
    if lists is not None:
        sendable = sendable.filter(
            pk__in=Subscription.objects.filter(
                workspace=workspace,
                mailing_list_id__in=_list_ids(lists),
                status=SubscriptionStatus.SUBSCRIBED,
            ).values("contact_id")
        )
    return sendable


def may_send(
    workspace: Workspace, email: str, *, mailing_list: MailingList | int | None = None
) -> Decision:
    """Whether one message may go to ``email`` (for a list's sake, when one is given).

    The same rules as ``sendable_contacts``, asked of one address in one query;
    with a list, the address must be the primary email of a contact whose
    subscription to that list is ``subscribed``.
    """
    if not (email or "").strip():
        return Decision(False, Verdict.NO_ADDRESS)
    try:
        address = normalise_email(email)
    except SuppressionInvalid:
        return Decision(False, Verdict.INVALID_ADDRESS)
    facts = Workspace.objects.filter(pk=workspace.pk).annotate(
        suppression_reason=Subquery(
            Suppression.objects.filter(workspace=OuterRef("pk"), email=address)
            .order_by()
            .values("reason")[:1]
        )
    )
    if mailing_list is not None:
        list_id = _list_ids([mailing_list])[0]
        # The contact is found through the unique index on (workspace, LOWER(email))
        # (partial: "email is not empty" lets the database use it), then its
        # subscription through (list, contact): two index lookups.
        holders = (
            Contact.objects.for_workspace(workspace)
            .exclude(email="")
            .annotate(address=Lower("email"))
            .filter(address=address)
            .values("pk")
        )
        facts = facts.annotate(
            subscription_status=Subquery(
                Subscription.objects.filter(
                    workspace=workspace, mailing_list_id=list_id, contact_id__in=holders
                )
                # subscribed first, should two contacts ever differ only in case
                .order_by(
                    models.Case(
                        models.When(status=SubscriptionStatus.SUBSCRIBED, then=0), default=1
                    )
                )
                .values("status")[:1]
            )
        )
    found = facts.values().first()
    if found is None:
        return Decision(False, Verdict.NOT_SUBSCRIBED)
    row: dict[str, Any] = dict(found)
    if row["suppression_reason"]:
        return Decision(False, Verdict.SUPPRESSED, suppression_reason=row["suppression_reason"])
    if row["suppress_role_addresses"] and is_role_address(address):
        return Decision(False, Verdict.ROLE_ADDRESS, suppression_reason="role")
    if mailing_list is not None and row["subscription_status"] != SubscriptionStatus.SUBSCRIBED:
        return Decision(
            False, Verdict.NOT_SUBSCRIBED, subscription_status=row["subscription_status"] or ""
        )
    return Decision(True, Verdict.SENDABLE)
