"""The sending gate: suppression, role addresses and list consent, in one query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patron.audience import sending, suppression
from patron.audience.models import MailingList, Subscription
from patron.core.services import set_suppress_role_addresses
from patron.crm.models import Contact, ContactEmail
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def names(contacts):
    return sorted(contacts.values_list("first_name", flat=True))


def subscribe(contact, mailing_list, status="subscribed"):
    return Subscription.objects.create(
        workspace=contact.workspace, contact=contact, mailing_list=mailing_list, status=status
    )


@pytest.fixture
def people(workspace):
    return {
        name: ContactFactory(workspace=workspace, first_name=name, email=email)
        for name, email in [
            ("Ann", "Ann@X.test"),
            ("Bob", "bob@x.test"),
            ("Cy", ""),
            ("Postmaster", "PostMaster@x.test"),
            ("Dee", "dee@x.test"),
        ]
    }


def everyone(workspace):
    return Contact.objects.for_workspace(workspace)


def test_no_address_and_suppressed_addresses_are_left_out(workspace, people):
    assert names(sending.sendable_contacts(workspace, everyone(workspace))) == [
        "Ann",
        "Bob",
        "Dee",
        "Postmaster",
    ]
    suppression.suppress_addresses(workspace=workspace, emails=["ann@x.test"], reason="complaint")
    assert names(sending.sendable_contacts(workspace, everyone(workspace))) == [
        "Bob",
        "Dee",
        "Postmaster",
    ]


def test_role_addresses_are_left_out_with_the_setting(workspace, owner, people):
    stale = type(workspace).objects.get(pk=workspace.pk)  # a worker's old copy
    set_suppress_role_addresses(workspace=workspace, enabled=True, actor=owner)
    assert names(sending.sendable_contacts(stale, everyone(workspace))) == ["Ann", "Bob", "Dee"]
    assert not sending.may_send(stale, "postmaster@x.test")
    set_suppress_role_addresses(workspace=workspace, enabled=False, actor=owner)
    assert "Postmaster" in names(sending.sendable_contacts(workspace, everyone(workspace)))


def test_only_subscribed_members_of_the_lists_are_mailed(workspace, people):
    news = MailingList.objects.create(workspace=workspace, name="News")
    offers = MailingList.objects.create(workspace=workspace, name="Offers")
    subscribe(people["Ann"], news)
    subscribe(people["Bob"], news, "pending")
    subscribe(people["Bob"], offers, "subscribed")
    subscribe(people["Dee"], news, "unsubscribed")
    subscribe(people["Postmaster"], news, "cleaned")
    subscribe(people["Cy"], news)  # no address: still never mailed

    def to(lists):
        return names(sending.sendable_contacts(workspace, everyone(workspace), lists=lists))

    assert to([news]) == ["Ann"]
    assert to([offers.pk]) == ["Bob"]
    assert to([news, offers]) == ["Ann", "Bob"]
    assert to([]) == []
    suppression.suppress_address(workspace=workspace, email="bob@x.test")
    assert to([news, offers]) == ["Ann"]


def test_a_list_of_another_workspace_selects_nobody(workspace, people):
    other = WorkspaceFactory()
    foreign = MailingList.objects.create(workspace=other, name="Theirs")
    stranger = ContactFactory(workspace=other, email="s@x.test")
    subscribe(stranger, foreign)
    assert names(sending.sendable_contacts(workspace, everyone(workspace), lists=[foreign])) == []


def test_suppression_of_another_workspace_does_not_count(workspace, people):
    suppression.suppress_address(workspace=WorkspaceFactory(), email="ann@x.test")
    assert "Ann" in names(sending.sendable_contacts(workspace, everyone(workspace)))


def test_another_address_of_the_contact_does_not_block_the_primary_one(workspace, people):
    ContactEmail.objects.create(workspace=workspace, contact=people["Ann"], email="old@x.test")
    suppression.suppress_address(workspace=workspace, email="old@x.test", reason="hard_bounce")
    assert "Ann" in names(sending.sendable_contacts(workspace, everyone(workspace)))


def test_the_gate_narrows_the_given_contacts_in_one_query(workspace, people):
    news = MailingList.objects.create(workspace=workspace, name="News")
    subscribe(people["Ann"], news)
    subscribe(people["Bob"], news)
    subset = everyone(workspace).filter(first_name__in=["Ann", "Dee"])
    with CaptureQueriesContext(connection) as queries:
        found = list(sending.sendable_contacts(workspace, subset, lists=[news]))
    assert [c.first_name for c in found] == ["Ann"]
    assert len(queries.captured_queries) == 1
    sql = queries.captured_queries[0]["sql"].upper()
    assert "EXISTS" in sql


def test_may_send_says_why(workspace, owner, people):
    news = MailingList.objects.create(workspace=workspace, name="News")
    subscribe(people["Ann"], news)
    subscribe(people["Bob"], news, "pending")
    assert sending.may_send(workspace, "ANN@x.test") == sending.Decision(True, "sendable")
    assert sending.may_send(workspace, "ann@x.test", mailing_list=news).allowed
    decision = sending.may_send(workspace, "bob@x.test", mailing_list=news)
    assert not decision and decision.reason == "not_subscribed"
    assert decision.subscription_status == "pending"
    decision = sending.may_send(workspace, "dee@x.test", mailing_list=news.pk)
    assert (decision.reason, decision.subscription_status) == ("not_subscribed", "")
    assert sending.may_send(workspace, "").reason == "no_address"
    assert sending.may_send(workspace, "nope").reason == "invalid_address"
    assert sending.may_send(workspace, "someone@else.test").allowed

    suppression.suppress_address(workspace=workspace, email="Ann@x.test", reason="hard_bounce")
    decision = sending.may_send(workspace, "ann@X.TEST", mailing_list=news)
    assert (decision.allowed, decision.reason, decision.suppression_reason) == (
        False,
        "suppressed",
        "hard_bounce",
    )
    assert decision.message == "The address is suppressed"

    set_suppress_role_addresses(workspace=workspace, enabled=True, actor=owner)
    decision = sending.may_send(workspace, "No-Reply@shop.test")
    assert (decision.reason, decision.suppression_reason) == ("role_address", "role")


def test_may_send_runs_one_query(workspace, people):
    news = MailingList.objects.create(workspace=workspace, name="News")
    with CaptureQueriesContext(connection) as queries:
        sending.may_send(workspace, "ann@x.test", mailing_list=news)
    assert len(queries.captured_queries) == 1
