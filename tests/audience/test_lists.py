"""List services: lists, set-based subscriptions, the consent history, double opt-in, merges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing

from patron.activity.models import Event
from patron.audience import lists, segments
from patron.audience.models import (
    ConsentRecord,
    ConsentSource,
    MailingList,
    Subscription,
)
from patron.core.models import AuditEntry
from patron.crm.merge import merge_contacts
from patron.crm.models import Contact
from patron.mail.models import OutboxMessage
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

MANUAL = lists.Consent(source=ConsentSource.MANUAL)


def status_of(mailing_list, contact):
    row = (
        Subscription.objects.for_workspace(mailing_list.workspace)
        .filter(mailing_list=mailing_list, contact=contact)
        .first()
    )
    return row.status if row else None


def history(contact, mailing_list=None):
    records = ConsentRecord.objects.for_workspace(contact.workspace_id).filter(contact=contact)
    if mailing_list is not None:
        records = records.filter(mailing_list=mailing_list)
    return list(records.order_by("occurred_at", "id").values_list("status", "source"))


def kinds(workspace, contact):
    return list(
        Event.objects.for_workspace(workspace)
        .filter(contact_id=contact.pk, kind__startswith="list.")
        .order_by("id")
        .values_list("kind", flat=True)
    )


@pytest.fixture
def newsletter(workspace, owner):
    return lists.create_list(workspace=workspace, name="Newsletter", actor=owner)


@pytest.fixture
def doi_list(workspace, owner):
    return lists.create_list(
        workspace=workspace,
        name="Product news",
        public_name="News from Acme",
        double_opt_in=True,
        confirmation_subject="Confirm {{ list.name }}",
        confirmation_body="Hi {{ contact.first_name }}, click {{ confirm_url }} to join.",
        actor=owner,
    )


# --- Lists ---------------------------------------------------------------------------------


def test_lists_are_audited_and_names_unique_per_workspace(workspace, owner, newsletter):
    assert AuditEntry.objects.filter(action="list.created", target="Newsletter").exists()
    with pytest.raises(lists.ListNameTaken):
        lists.create_list(workspace=workspace, name="newsletter ")
    lists.create_list(workspace=WorkspaceFactory(), name="Newsletter")  # another workspace
    lists.update_list(mailing_list=newsletter, name="Weekly", description="Every Friday")
    newsletter.refresh_from_db()
    assert (newsletter.name, newsletter.description) == ("Weekly", "Every Friday")
    assert AuditEntry.objects.filter(action="list.updated", target="Weekly").exists()
    with pytest.raises(lists.ListInvalid) as error:
        lists.update_list(mailing_list=newsletter, name=" ")
    assert error.value.field == "name"


def test_deleting_a_list_keeps_the_consent_history_with_its_name(workspace, owner, newsletter):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    lists.subscribe(mailing_list=newsletter, contact=ann, consent=MANUAL)
    lists.delete_list(mailing_list=newsletter, actor=owner)
    assert not Subscription.objects.for_workspace(workspace).exists()
    record = ConsentRecord.objects.for_workspace(workspace).get(contact=ann)
    assert (record.mailing_list_id, record.list_name) == (None, "Newsletter")
    assert AuditEntry.objects.filter(action="list.deleted", target="Newsletter").exists()


@pytest.mark.parametrize(
    ("subject", "body", "field", "fragment"),
    [
        ("Confirm", "Hi {{ contact.first_name }\n{{ confirm_url }}", "confirmation_body", "line 1"),
        ("Confirm", "Hello\n\n{% if x %}\n{{ confirm_url }}", "confirmation_body", "line 4"),
        ("Confirm {{ list.nmae }}", "{{ confirm_url }}", "confirmation_subject", "line 1"),
        ("Confirm", "Hello {{ contact.frist_name }}", "confirmation_body", "frist_name"),
        ("Confirm", "Please confirm.", "confirmation_body", "confirm_url"),
        ("Confirm", "{% include 'secrets' %}{{ confirm_url }}", "confirmation_body", "line 1"),
        ("Confirm", "{{ x | no_such_filter }}{{ confirm_url }}", "confirmation_body", "filter"),
        ("", "{{ confirm_url }}", "confirmation_subject", "subject"),
    ],
)
def test_the_confirmation_template_is_checked_on_save(workspace, subject, body, field, fragment):
    with pytest.raises(lists.ListInvalid) as error:
        lists.create_list(
            workspace=workspace,
            name="Checked",
            double_opt_in=True,
            confirmation_subject=subject,
            confirmation_body=body,
        )
    assert error.value.field == field
    assert fragment in str(error.value)
    assert not MailingList.objects.for_workspace(workspace).exists()


def test_the_sandbox_bounds_loops(workspace):
    with pytest.raises(lists.ListInvalid) as error:
        lists.create_list(
            workspace=workspace,
            name="Loops",
            confirmation_body="{% for i in (1..1000000) %}x{% endfor %}{{ confirm_url }}",
        )
    assert "limit" in str(error.value)


def test_the_default_template_is_valid(workspace):
    mailing_list = lists.create_list(workspace=workspace, name="Defaults", double_opt_in=True)
    assert "{{ confirm_url }}" in mailing_list.confirmation_body


# --- Subscribing ---------------------------------------------------------------------------


def test_status_changes_append_to_the_history_and_never_rewrite_it(workspace, owner, newsletter):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    consent = lists.Consent(
        source=ConsentSource.FORM,
        consent_text="Send me the newsletter",
        ip_address="203.0.113.9",
        user_agent="Firefox",
    )
    assert lists.subscribe(mailing_list=newsletter, contact=ann, consent=consent).changed == [
        ann.pk
    ]
    first = ConsentRecord.objects.for_workspace(workspace).get(contact=ann)
    assert (first.ip_address, first.user_agent, first.consent_text) == (
        "203.0.113.9",
        "Firefox",
        "Send me the newsletter",
    )
    # Subscribing again changes nothing and records nothing.
    assert lists.subscribe(mailing_list=newsletter, contact=ann, consent=consent).changed == []
    lists.unsubscribe(
        mailing_list=newsletter,
        contact=ann,
        consent=lists.Consent(source=ConsentSource.MANUAL, actor=owner),
    )
    lists.subscribe(mailing_list=newsletter, contact=ann, consent=consent)  # a form: fresh opt-in
    assert status_of(newsletter, ann) == "subscribed"
    assert history(ann) == [
        ("subscribed", "form"),
        ("unsubscribed", "manual"),
        ("subscribed", "form"),
    ]
    first.refresh_from_db()
    assert (first.status, first.consent_text) == ("subscribed", "Send me the newsletter")
    assert kinds(workspace, ann) == ["list.subscribed", "list.unsubscribed", "list.subscribed"]
    event = Event.objects.for_workspace(workspace).filter(kind="list.unsubscribed").get()
    assert event.properties == {"list": "Newsletter", "list_id": newsletter.pk, "source": "manual"}
    assert event.actor == owner
    with pytest.raises(ValueError, match="never changed"):
        first.save()
    with pytest.raises(ValueError, match="kept"):
        first.delete()


def test_opted_out_contacts_are_not_taken_back_unless_asked(workspace, newsletter):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    bob = ContactFactory(workspace=workspace, email="bob@x.test")
    lists.subscribe_contacts(mailing_list=newsletter, contacts=[ann.pk, bob.pk], consent=MANUAL)
    lists.unsubscribe(mailing_list=newsletter, contact=ann, consent=MANUAL)
    lists.clean(mailing_list=newsletter, contact=bob, consent=MANUAL)
    imported = lists.Consent(source=ConsentSource.IMPORT)
    outcome = lists.subscribe_contacts(
        mailing_list=newsletter, contacts=[ann.pk, bob.pk], consent=imported
    )
    assert (outcome.changed, outcome.opted_out) == ([], 2)
    assert (status_of(newsletter, ann), status_of(newsletter, bob)) == ("unsubscribed", "cleaned")
    outcome = lists.subscribe_contacts(
        mailing_list=newsletter, contacts=[ann.pk], consent=imported, resubscribe=True
    )
    assert outcome.changed == [ann.pk] and status_of(newsletter, ann) == "subscribed"
    # Unsubscribing a cleaned address leaves it cleaned.
    assert lists.unsubscribe(mailing_list=newsletter, contact=bob, consent=MANUAL).changed == []


def test_set_based_subscribe_of_a_queryset_in_a_fixed_number_of_queries(
    workspace, newsletter, django_assert_max_num_queries
):
    contacts = [ContactFactory(workspace=workspace, email=f"p{n}@x.test") for n in range(30)]
    ContactFactory(workspace=workspace, email="")  # no address: left out
    lists.subscribe(mailing_list=newsletter, contact=contacts[0], consent=MANUAL)
    everyone = Contact.objects.for_workspace(workspace)
    with django_assert_max_num_queries(10):
        outcome = lists.subscribe_contacts(
            mailing_list=newsletter,
            contacts=everyone,
            consent=lists.Consent(source=ConsentSource.IMPORT, details={"import": 7}),
        )
    assert sorted(outcome.changed) == sorted(c.pk for c in contacts[1:])
    assert Subscription.objects.for_workspace(workspace).filter(status="subscribed").count() == 30
    assert ConsentRecord.objects.for_workspace(workspace).filter(source="import").count() == 29
    assert Event.objects.for_workspace(workspace).filter(kind="list.subscribed").count() == 30
    record = ConsentRecord.objects.for_workspace(workspace).filter(source="import").first()
    assert record.details == {"import": 7}
    with django_assert_max_num_queries(6):
        outcome = lists.unsubscribe_contacts(
            mailing_list=newsletter, contacts=everyone, consent=MANUAL
        )
    assert len(outcome.changed) == 30


def test_set_based_changes_stay_in_their_workspace(workspace, newsletter):
    stranger = ContactFactory(workspace=WorkspaceFactory(), email="s@x.test")
    outcome = lists.subscribe_contacts(
        mailing_list=newsletter, contacts=[stranger.pk], consent=MANUAL
    )
    assert outcome.changed == []
    assert not Subscription.objects.unscoped().exists()


def test_removing_takes_contacts_off_but_keeps_opt_outs(workspace, newsletter):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    bob = ContactFactory(workspace=workspace, email="bob@x.test")
    lists.subscribe_contacts(mailing_list=newsletter, contacts=[ann.pk, bob.pk], consent=MANUAL)
    lists.unsubscribe(mailing_list=newsletter, contact=bob, consent=MANUAL)
    outcome = lists.remove_contacts(
        mailing_list=newsletter, contacts=[ann.pk, bob.pk], consent=MANUAL
    )
    assert outcome.changed == [ann.pk]
    assert status_of(newsletter, ann) is None and status_of(newsletter, bob) == "unsubscribed"
    removal = ConsentRecord.objects.for_workspace(workspace).filter(contact=ann).first()
    assert (removal.status, removal.details) == ("unsubscribed", {"removed": True})


def test_the_segment_list_condition_agrees_with_subscriptions(workspace, newsletter):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    bob = ContactFactory(workspace=workspace, email="bob@x.test")
    ContactFactory(workspace=workspace, email="cy@x.test")
    lists.subscribe_contacts(mailing_list=newsletter, contacts=[ann.pk, bob.pk], consent=MANUAL)
    lists.unsubscribe(mailing_list=newsletter, contact=bob, consent=MANUAL)

    def matching(status, op="in"):
        definition = {
            "match": "all",
            "conditions": [{"type": "list", "op": op, "list": newsletter.pk, "status": status}],
        }
        found = segments.matching_contacts(workspace, definition)
        return sorted(found.values_list("email", flat=True))

    assert matching("subscribed") == ["ann@x.test"]
    assert matching("unsubscribed") == ["bob@x.test"]
    assert matching("any") == ["ann@x.test", "bob@x.test"]
    assert matching("subscribed", "not_in") == ["bob@x.test", "cy@x.test"]


# --- Double opt-in -------------------------------------------------------------------------


def test_double_opt_in_puts_subscribers_in_pending_and_mails_them(
    workspace, doi_list, django_capture_on_commit_callbacks
):
    ann = ContactFactory(workspace=workspace, first_name="Ann", email="ann@x.test")
    with django_capture_on_commit_callbacks(execute=True):
        outcome = lists.subscribe(mailing_list=doi_list, contact=ann, consent=MANUAL)
    assert outcome.status == "pending" and status_of(doi_list, ann) == "pending"
    assert history(ann) == [("pending", "manual")]
    assert kinds(workspace, ann) == ["list.pending"]
    mail = OutboxMessage.objects.get()
    assert mail.workspace_id == workspace.pk and mail.to == ["ann@x.test"]
    assert mail.subject == "Confirm News from Acme"
    assert mail.text_body.startswith("Hi Ann, click http")
    assert "/subscribe/confirm/" in mail.text_body
    assert '<a href="http' in mail.html_body


def test_a_suppressed_address_is_left_pending_without_a_confirmation_email(
    workspace, doi_list, django_capture_on_commit_callbacks
):
    from patron.audience import suppression

    ann = ContactFactory(workspace=workspace, first_name="Ann", email="Ann@X.test")
    bob = ContactFactory(workspace=workspace, first_name="Bob", email="bob@x.test")
    suppression.suppress_address(workspace=workspace, email="ann@x.test", reason="complaint")
    with django_capture_on_commit_callbacks(execute=True):
        lists.subscribe_contacts(mailing_list=doi_list, contacts=[ann.pk, bob.pk], consent=MANUAL)
    assert status_of(doi_list, ann) == "pending"
    assert [message.to for message in OutboxMessage.objects.all()] == [["bob@x.test"]]


def test_confirming_subscribes_and_records_where_from(workspace, doi_list):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    lists.subscribe(mailing_list=doi_list, contact=ann, consent=MANUAL)
    token = lists.confirmation_token((workspace.pk, doi_list.pk, ann.pk))
    subscription, changed = lists.confirm_subscription(
        token=token, ip_address="198.51.100.7", user_agent="Mail app"
    )
    assert changed and subscription.status == "subscribed"
    assert subscription.confirmed_at is not None
    record = ConsentRecord.objects.for_workspace(workspace).filter(contact=ann).first()
    assert (record.status, record.source, record.ip_address, record.user_agent) == (
        "subscribed",
        "confirmation",
        "198.51.100.7",
        "Mail app",
    )
    assert "News from Acme" in record.consent_text
    assert kinds(workspace, ann) == ["list.pending", "list.subscribed"]
    # A second click changes nothing.
    assert lists.confirm_subscription(token=token)[1] is False
    assert len(history(ann)) == 2


def test_expired_forged_and_cancelled_links_do_not_confirm(workspace, doi_list, settings):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    lists.subscribe(mailing_list=doi_list, contact=ann, consent=MANUAL)
    token = lists.confirmation_token((workspace.pk, doi_list.pk, ann.pk))

    with pytest.raises(lists.ConfirmationInvalid) as error:
        lists.confirm_subscription(token=token[:-3] + "abc")
    assert error.value.reason == "invalid"
    other_salt = signing.dumps({"w": workspace.pk, "l": doi_list.pk, "c": ann.pk}, salt="x")
    with pytest.raises(lists.ConfirmationInvalid):
        lists.confirm_subscription(token=other_salt)

    later = lists.CONFIRMATION_LIFETIME + timedelta(minutes=1)
    import time

    real_time = time.time
    try:
        time.time = lambda: real_time() + later.total_seconds()  # type: ignore[assignment]
        with pytest.raises(lists.ConfirmationInvalid) as error:
            lists.confirm_subscription(token=token)
    finally:
        time.time = real_time  # type: ignore[assignment]
    assert error.value.reason == "expired" and error.value.mailing_list == doi_list

    lists.unsubscribe(mailing_list=doi_list, contact=ann, consent=MANUAL)
    with pytest.raises(lists.ConfirmationInvalid) as error:
        lists.confirm_subscription(token=token)
    assert error.value.reason == "cancelled"
    assert status_of(doi_list, ann) == "unsubscribed"


def test_a_token_of_another_workspace_names_nothing_here(workspace, doi_list):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    lists.subscribe(mailing_list=doi_list, contact=ann, consent=MANUAL)
    foreign = lists.confirmation_token((WorkspaceFactory().pk, doi_list.pk, ann.pk))
    with pytest.raises(lists.ConfirmationInvalid):
        lists.confirm_subscription(token=foreign)


def test_already_confirmed_needs_an_import_or_the_api_and_a_consent_text(workspace, doi_list):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    with pytest.raises(lists.SubscriptionInvalid, match="consent text"):
        lists.subscribe(
            mailing_list=doi_list,
            contact=ann,
            consent=lists.Consent(source=ConsentSource.API),
            confirmed=True,
        )
    with pytest.raises(lists.SubscriptionInvalid, match="import or the API"):
        lists.subscribe(mailing_list=doi_list, contact=ann, consent=MANUAL, confirmed=True)
    lists.subscribe(
        mailing_list=doi_list,
        contact=ann,
        consent=lists.Consent(source=ConsentSource.API, consent_text="Ticked the box at signup"),
        confirmed=True,
    )
    assert status_of(doi_list, ann) == "subscribed"
    assert not OutboxMessage.objects.exists()


def test_resending_goes_to_pending_subscribers_only(
    workspace, doi_list, django_capture_on_commit_callbacks
):
    ann = ContactFactory(workspace=workspace, email="ann@x.test")
    bob = ContactFactory(workspace=workspace, email="bob@x.test")
    lists.subscribe_contacts(mailing_list=doi_list, contacts=[ann.pk, bob.pk], consent=MANUAL)
    token = lists.confirmation_token((workspace.pk, doi_list.pk, bob.pk))
    lists.confirm_subscription(token=token)
    with django_capture_on_commit_callbacks(execute=True):
        assert lists.resend_confirmations(mailing_list=doi_list) == 1
    assert [m.to for m in OutboxMessage.objects.all()] == [["ann@x.test"]]


# --- Merging -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("primary_status", "other_status", "kept"),
    [
        ("subscribed", "unsubscribed", "unsubscribed"),
        ("unsubscribed", "subscribed", "unsubscribed"),
        ("pending", "subscribed", "subscribed"),
        ("subscribed", "pending", "subscribed"),
        ("cleaned", "subscribed", "cleaned"),
        ("unsubscribed", "cleaned", "cleaned"),
    ],
)
def test_merging_keeps_the_safer_status_and_both_histories(
    workspace, doi_list, primary_status, other_status, kept
):
    primary = ContactFactory(workspace=workspace, email="a@x.test")
    other = ContactFactory(workspace=workspace, email="b@x.test")
    for contact, status in ((primary, primary_status), (other, other_status)):
        lists.subscribe(
            mailing_list=doi_list,
            contact=contact,
            consent=lists.Consent(source=ConsentSource.API, consent_text="yes"),
            confirmed=status != "pending",
        )
        if status == "unsubscribed":
            lists.unsubscribe(mailing_list=doi_list, contact=contact, consent=MANUAL)
        elif status == "cleaned":
            lists.clean(mailing_list=doi_list, contact=contact, consent=MANUAL)
    before = len(history(primary)) + len(history(other))
    merge_contacts(primary=primary, other=other)
    rows = Subscription.objects.for_workspace(workspace).filter(mailing_list=doi_list)
    assert [(row.contact_id, row.status) for row in rows] == [(primary.pk, kept)]
    assert len(history(primary)) == before


def test_merging_moves_subscriptions_to_lists_only_the_other_was_on(
    workspace, newsletter, doi_list
):
    primary = ContactFactory(workspace=workspace, email="a@x.test")
    other = ContactFactory(workspace=workspace, email="b@x.test")
    lists.subscribe(mailing_list=newsletter, contact=other, consent=MANUAL)
    merge_contacts(primary=primary, other=other)
    assert status_of(newsletter, primary) == "subscribed"
    assert history(primary) == [("subscribed", "manual")]
