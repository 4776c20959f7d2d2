"""The preference centre: a contact chooses the lists it gets mail from, by the link
of a campaign message (the unsubscribe token, see ``patron.mail.links``).

**Which lists.** The lists the contact is or was on (any status): their public
name and description. Lists carry no "shown publicly" setting, so a list the
contact never was on is not offered: its name may be internal ("Churn risk").

**Saving** compares the choice with the subscriptions as they are now:

- a ticked list the contact is not subscribed to (unsubscribed, cleaned,
  pending) is subscribed through ``patron.audience.lists`` with the source
  "preference centre" (a person asking for themselves: an earlier unsubscribe
  does not stand in the way, and on a double opt-in list the subscription is
  confirmed, the link having come in a mail to the address);
- an unticked list the contact is subscribed to is unsubscribed; an unticked
  pending one stays pending (the page showed it unticked, the person changed
  nothing about it);
- every change has its consent record (IP address, browser, the sentence next
  to the button, the campaign) and ``list.<status>`` event; the whole save is
  one ``email.preferences_changed`` event on the contact's timeline;
- when a campaign's link was used and a list was left, the campaign's delivery
  gets ``unsubscribed_at``, as for an unsubscribe from all.

**Suppressed addresses.** An address suppressed because its owner
unsubscribed from all is taken off the suppression list when the person saves
a choice with at least one list ticked: it is the owner asking, through a
link only a mail to that address carried, to hear from the workspace again,
which is the one case the suppression list's own page says to lift an
unsubscribe for. The removal goes through ``patron.audience.suppression`` (so
it is audited and on the timeline as ``contact.unsuppressed``). An address
suppressed for any other reason (a bounce, a spam complaint, by hand, a role
address) stays suppressed and joins no list from here: the person may still
leave lists.

Changes apply at once: the sending gate reads subscriptions and suppressions
when a send starts (and again per batch), so the next campaign follows the
choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from patron.activity.services import record
from patron.audience import lists, suppression
from patron.audience.models import (
    ConsentSource,
    MailingList,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from patron.core.models import Workspace
from patron.core.services import RequestInfo
from patron.crm.models import Contact
from patron.mail.unsubscribe import mark_delivery_unsubscribed

EVENT_KIND = "email.preferences_changed"


class PreferencesInvalid(ValueError):
    """A choice that cannot be saved; the message says why, for the person."""


@dataclass(frozen=True)
class Choice:
    """One list on the page, and the contact's place on it."""

    mailing_list: MailingList
    status: str

    @property
    def list_id(self) -> int:
        return self.mailing_list.pk

    @property
    def name(self) -> str:
        return self.mailing_list.display_name

    @property
    def description(self) -> str:
        return self.mailing_list.description

    @property
    def subscribed(self) -> bool:
        return self.status == SubscriptionStatus.SUBSCRIBED

    @property
    def pending(self) -> bool:
        return self.status == SubscriptionStatus.PENDING


@dataclass(frozen=True)
class Preferences:
    """What the preference centre shows a contact."""

    choices: list[Choice]
    # The address's suppression reason ("" when it is not suppressed).
    suppression_reason: str = ""

    @property
    def unsubscribed_from_all(self) -> bool:
        return self.suppression_reason == SuppressionReason.UNSUBSCRIBED

    @property
    def unsubscribed(self) -> bool:
        """Nothing left to unsubscribe from: on no list (or pending), and suppressed."""
        active = (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.PENDING)
        return bool(self.suppression_reason) and not any(
            choice.status in active for choice in self.choices
        )

    @property
    def may_join(self) -> bool:
        """Whether lists may be joined: not suppressed, or only by its owner's unsubscribe."""
        return self.suppression_reason in ("", SuppressionReason.UNSUBSCRIBED)


@dataclass
class Saved:
    """What a save changed (list display names); nothing on a save without changes."""

    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    unsuppressed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.subscribed or self.unsubscribed or self.unsuppressed)


def consent_sentence(workspace_name: str) -> str:
    """The sentence next to the save button, kept as the consent text of the changes."""
    return _("Send me the mailings of %(workspace)s that I ticked, and no others.") % {
        "workspace": workspace_name
    }


def _choices(workspace: Workspace, contact: Contact) -> list[Choice]:
    rows = (
        Subscription.objects.for_workspace(workspace)
        .filter(contact_id=contact.pk)
        .select_related("mailing_list")
        .order_by("mailing_list__name", "id")
    )
    return [Choice(mailing_list=row.mailing_list, status=row.status) for row in rows]


def _suppression_reason(workspace: Workspace, contact: Contact) -> str:
    if not contact.email:
        return ""
    found = suppression.status(workspace, contact.email)
    return found.reason if found is not None else ""


def preferences_of(*, workspace: Workspace, contact: Contact) -> Preferences:
    """The lists to show the contact, each with its status; and whether it may join them."""
    return Preferences(
        choices=_choices(workspace, contact),
        suppression_reason=_suppression_reason(workspace, contact),
    )


@transaction.atomic
def save_preferences(
    *,
    workspace: Workspace,
    contact: Contact,
    chosen: Iterable[int],
    campaign_id: int = 0,
    request_info: RequestInfo | None = None,
    consent_text: str = "",
) -> Saved:
    """Subscribe the contact to the ``chosen`` lists of its page and unsubscribe it from
    the others it is subscribed to (see the module's rules).

    Raises ``PreferencesInvalid`` (changing nothing) for a list that is not on the
    contact's page, for a contact without an email address, and for joining a list
    while the address is suppressed for a reason other than its owner's unsubscribe.
    """
    info = request_info or RequestInfo()
    # One request at a time per contact, as for unsubscribes: the second sees the first.
    contact = (
        Contact.objects.for_workspace(workspace)
        .select_for_update(of=("self",))
        .select_related("workspace")
        .get(pk=contact.pk)
    )
    if not contact.email:
        raise PreferencesInvalid(
            _("There is no email address on file for you, so there are no lists to choose.")
        )
    wanted = set(chosen)
    current = preferences_of(workspace=workspace, contact=contact)
    offered = {choice.list_id for choice in current.choices}
    if wanted - offered:
        raise PreferencesInvalid(
            _("One of the lists you chose is not on this page any more. Reload it and try again.")
        )
    joining = [c for c in current.choices if c.list_id in wanted and not c.subscribed]
    leaving = [c for c in current.choices if c.list_id not in wanted and c.subscribed]
    if joining and not current.may_join:
        raise PreferencesInvalid(
            _(
                "This address receives no mailings from %(workspace)s (%(reason)s), "
                "so it cannot join a list here."
            )
            % {
                "workspace": workspace.name,
                "reason": SuppressionReason(current.suppression_reason).label,
            }
        )
    about: dict[str, Any] = {"campaign_id": campaign_id} if campaign_id else {}
    consent = lists.Consent(
        source=ConsentSource.PREFERENCES,
        consent_text=consent_text,
        ip_address=info.ip_address,
        user_agent=info.user_agent,
        details=about,
    )
    saved = Saved()
    if wanted and current.unsubscribed_from_all:
        removed = suppression.unsuppress(
            workspace=workspace, emails=[contact.email], request_info=info
        )
        saved.unsuppressed = bool(removed)
    for choice in joining:
        outcome = lists.subscribe(
            mailing_list=choice.mailing_list, contact=contact, consent=consent
        )
        if outcome.changed:
            saved.subscribed.append(choice.name)
    for choice in leaving:
        outcome = lists.unsubscribe(
            mailing_list=choice.mailing_list, contact=contact, consent=consent
        )
        if outcome.changed:
            saved.unsubscribed.append(choice.name)
    if saved.unsubscribed:
        mark_delivery_unsubscribed(
            workspace=workspace, campaign_id=campaign_id, contact_id=contact.pk
        )
    if saved.changed:
        record(
            workspace=workspace,
            kind=EVENT_KIND,
            contact_id=contact.pk,
            source=("mail.campaign", campaign_id) if campaign_id else None,
            properties={
                "title": _("Changed email preferences"),
                "email": contact.email,
                "campaign": campaign_id or None,
                "subscribed": saved.subscribed,
                "unsubscribed": saved.unsubscribed,
                "unsuppressed": saved.unsuppressed,
            },
        )
    return saved
