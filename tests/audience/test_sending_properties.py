"""Property test of the sending gate: random sequences of what happens to an audience.

Contacts come and go with addresses in any case, subscriptions change status,
addresses are suppressed and unsuppressed, the role-address setting flips and
contacts change their address. After every step, ``sendable_contacts`` (for no
list, each list and both lists) and ``may_send`` must equal a plain Python
model of the rules, and never hold a suppressed address or a contact that is
not subscribed to the lists of the send.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from patron.audience import sending, suppression
from patron.audience.models import MailingList, Subscription, SubscriptionStatus
from patron.core.models import Workspace
from patron.core.services import set_suppress_role_addresses
from patron.crm.models import Contact, ContactEmail

pytestmark = pytest.mark.django_db

LOCAL_PARTS = ["ann", "bob", "cy.dee", "abuse", "postmaster", "no-reply", "admin2", "info"]
DOMAINS = ["x.test", "shop.example"]
ROLE = suppression.ROLE_LOCAL_PARTS


@st.composite
def addresses(draw):
    """An address from a small pool (so that they collide), each letter in either case."""
    text = f"{draw(st.sampled_from(LOCAL_PARTS))}@{draw(st.sampled_from(DOMAINS))}"
    upper = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if u else c for c, u in zip(text, upper, strict=True))


STATUSES = st.sampled_from(SubscriptionStatus.values)
REASONS = st.sampled_from(["manual", "hard_bounce", "complaint", "unsubscribed"])


class Audience(RuleBasedStateMachine):
    contacts = Bundle("contacts")

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.workspace = Workspace.objects.create(name="Property", slug="property-test")
        self.lists = [
            MailingList.objects.create(workspace=self.workspace, name=name)
            for name in ("News", "Offers")
        ]
        # The model: contact id -> primary address as written; other addresses;
        # (contact, list) -> status; suppressed lower-cased addresses; the setting.
        self.emails: dict[int, str] = {}
        self.others: dict[int, set[str]] = {}
        self.subscriptions: dict[tuple[int, int], str] = {}
        self.suppressed: set[str] = set()
        self.role_setting = False

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)

    def _taken(self, email: str) -> bool:
        folded = email.lower()
        return any(e.lower() == folded for e in self.emails.values() if e) or any(
            folded in others for others in self.others.values()
        )

    # --- What happens -----------------------------------------------------------------

    @rule(target=contacts, email=st.one_of(addresses(), st.just("")))
    def add_contact(self, email):
        if email and self._taken(email):
            email = ""
        contact = Contact.objects.create(workspace=self.workspace, email=email)
        self.emails[contact.pk] = email
        self.others[contact.pk] = set()
        return contact.pk

    @rule(contact=contacts, email=st.one_of(addresses(), st.just("")))
    def change_email(self, contact, email):
        if email and self._taken(email):
            return
        Contact.objects.for_workspace(self.workspace).filter(pk=contact).update(email=email)
        self.emails[contact] = email

    @rule(contact=contacts, email=addresses())
    def add_other_email(self, contact, email):
        if self._taken(email):
            return
        ContactEmail.objects.create(workspace=self.workspace, contact_id=contact, email=email)
        self.others[contact].add(email.lower())

    @rule(contact=consumes(contacts))
    def delete_contact(self, contact):
        Contact.objects.for_workspace(self.workspace).filter(pk=contact).delete()
        del self.emails[contact], self.others[contact]
        for key in [key for key in self.subscriptions if key[0] == contact]:
            del self.subscriptions[key]

    @rule(contact=contacts, which=st.integers(0, 1), status=STATUSES)
    def set_subscription(self, contact, which, status):
        mailing_list = self.lists[which]
        Subscription.objects.update_or_create(
            workspace=self.workspace,
            contact_id=contact,
            mailing_list=mailing_list,
            defaults={"status": status},
        )
        self.subscriptions[(contact, mailing_list.pk)] = status

    @rule(emails=st.lists(addresses(), min_size=1, max_size=3), reason=REASONS)
    def suppress(self, emails, reason):
        suppression.suppress_addresses(workspace=self.workspace, emails=emails, reason=reason)
        self.suppressed.update(email.lower() for email in emails)

    @rule(contact=contacts, reason=REASONS)
    def suppress_a_contacts_address(self, contact, reason):
        email = self.emails[contact]
        if email:
            suppression.suppress_address(workspace=self.workspace, email=email, reason=reason)
            self.suppressed.add(email.lower())

    @rule(email=addresses())
    def unsuppress(self, email):
        suppression.unsuppress(workspace=self.workspace, emails=[email])
        self.suppressed.discard(email.lower())

    @rule(enabled=st.booleans())
    def toggle_role_addresses(self, enabled):
        set_suppress_role_addresses(workspace=self.workspace, enabled=enabled, actor=None)
        self.role_setting = enabled

    # --- What must hold ---------------------------------------------------------------

    def _blocked(self, email: str) -> bool:
        folded = email.lower()
        return (
            not email
            or folded in self.suppressed
            or (self.role_setting and folded.partition("@")[0] in ROLE)
        )

    def _expected(self, list_ids: list[int] | None) -> set[int]:
        return {
            contact
            for contact, email in self.emails.items()
            if not self._blocked(email)
            and (
                list_ids is None
                or any(
                    self.subscriptions.get((contact, list_id)) == SubscriptionStatus.SUBSCRIBED
                    for list_id in list_ids
                )
            )
        }

    @invariant()
    def gate_matches_the_model(self):
        if not hasattr(self, "workspace"):
            return
        everyone = Contact.objects.for_workspace(self.workspace)
        ids = [mailing_list.pk for mailing_list in self.lists]
        for list_ids in (None, ids[:1], ids[1:], ids):
            found = set(
                sending.sendable_contacts(self.workspace, everyone, lists=list_ids).values_list(
                    "pk", flat=True
                )
            )
            assert found == self._expected(list_ids), list_ids
            for contact in found:
                email = self.emails[contact].lower()
                assert email and email not in self.suppressed
                if list_ids is not None:
                    assert any(
                        self.subscriptions.get((contact, i)) == SubscriptionStatus.SUBSCRIBED
                        for i in list_ids
                    )

    @invariant()
    def may_send_matches_the_model(self):
        if not hasattr(self, "workspace"):
            return
        for contact, email in self.emails.items():
            if not email:
                continue
            assert sending.may_send(self.workspace, email).allowed == (not self._blocked(email))
            news = self.lists[0]
            decision = sending.may_send(self.workspace, email, mailing_list=news)
            assert decision.allowed == (contact in self._expected([news.pk]))


def test_the_gate_equals_the_model_of_the_rules(db):
    run_state_machine_as_test(
        Audience,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
