"""Audiences: lists and segments included and excluded, resolved in one query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patron.activity.services import record
from patron.audience import segment_services
from patron.audience.audiences import (
    Audience,
    AudienceInvalid,
    audience_contacts,
    describe_audience,
    validate_audience,
)
from patron.audience.models import MailingList, Subscription, SubscriptionStatus
from patron.crm import services
from patron.crm.models import Tag
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(workspace, owner):
    names = ["Ann", "Bob", "Cid", "Dee", "Eve"]
    contacts = {name: ContactFactory(workspace=workspace, first_name=name) for name in names}
    news = MailingList.objects.create(workspace=workspace, name="Newsletter")
    customers = MailingList.objects.create(workspace=workspace, name="Customers")

    def subscribe(name, mailing_list, status=SubscriptionStatus.SUBSCRIBED):
        Subscription.objects.create(
            workspace=workspace, contact=contacts[name], mailing_list=mailing_list, status=status
        )

    subscribe("Ann", news)
    subscribe("Bob", news)
    subscribe("Cid", news, SubscriptionStatus.PENDING)
    subscribe("Dee", news, SubscriptionStatus.UNSUBSCRIBED)
    subscribe("Bob", customers)
    subscribe("Ann", customers, SubscriptionStatus.UNSUBSCRIBED)
    services.add_tags(record_=contacts["Eve"], names=["vip"])
    services.add_tags(record_=contacts["Bob"], names=["vip"])
    vip = Tag.objects.for_workspace(workspace).get(name="vip")
    vips = segment_services.create_segment(
        workspace=workspace,
        name="VIPs",
        definition={"match": "all", "conditions": [{"type": "tag", "op": "has", "tag": vip.pk}]},
        actor=owner,
    )
    openers = segment_services.create_segment(
        workspace=workspace,
        name="Openers",
        definition={"match": "all", "conditions": [{"type": "event", "kind": "email.opened"}]},
        actor=owner,
    )
    return contacts, news, customers, vips, openers


def names(workspace, audience):
    return sorted(audience_contacts(workspace, audience).values_list("first_name", flat=True))


def test_a_list_means_its_subscribed_members(workspace, people):
    _contacts, news, _customers, _vips, _openers = people
    assert names(workspace, Audience(include_lists=(news.pk,))) == ["Ann", "Bob"]


def test_includes_are_a_union_and_excludes_win(workspace, people):
    _contacts, news, customers, vips, _openers = people
    union = Audience(include_lists=(news.pk,), include_segments=(vips.pk,))
    assert names(workspace, union) == ["Ann", "Bob", "Eve"]
    # Bob is a subscribed customer: out. Ann unsubscribed from Customers: stays.
    minus_customers = Audience(
        include_lists=(news.pk,), include_segments=(vips.pk,), exclude_lists=(customers.pk,)
    )
    assert names(workspace, minus_customers) == ["Ann", "Eve"]
    minus_vips = Audience(include_lists=(news.pk,), exclude_segments=(vips.pk,))
    assert names(workspace, minus_vips) == ["Ann"]


def test_segments_are_evaluated_now_not_from_stored_memberships(workspace, people):
    contacts, _news, _customers, _vips, openers = people
    segment_services.refresh_segment(openers)  # nobody has opened anything yet
    record(workspace=workspace, kind="email.opened", contact_id=contacts["Dee"].pk)
    assert names(workspace, Audience(include_segments=(openers.pk,))) == ["Dee"]


def test_the_audience_is_one_query(workspace, people):
    _contacts, news, customers, vips, openers = people
    audience = Audience(
        include_lists=(news.pk,),
        include_segments=(vips.pk, openers.pk),
        exclude_lists=(customers.pk,),
        exclude_segments=(openers.pk,),
    )
    query = audience_contacts(workspace, audience)
    with CaptureQueriesContext(connection) as queries:
        assert query.count() == 2  # Ann, Eve
    assert len(queries.captured_queries) == 1


def test_validation_names_what_is_wrong(workspace, people):
    _contacts, news, _customers, vips, _openers = people
    audience = validate_audience(
        workspace,
        {"include": {"lists": [news.pk, str(news.pk)], "segments": [vips.pk]}, "exclude": {}},
    )
    assert audience == Audience(include_lists=(news.pk,), include_segments=(vips.pk,))
    assert validate_audience(workspace, audience.as_json()) == audience

    cases = [
        ([], "an object"),
        ({"include": {}}, "at least one list or segment"),
        ({"include": {"lists": "1"}}, "must be a list of ids"),
        ({"include": {"lists": [True]}}, "not an id"),
        ({"include": {"lists": [10**9]}}, "There is no list"),
        ({"include": {"segments": [10**9]}}, "There is no segment"),
        ({"include": {"tags": [1]}}, "takes “lists” and “segments”"),
        ({"include": {"lists": [news.pk]}, "also": {}}, "Unknown audience part: also"),
    ]
    for data, message in cases:
        with pytest.raises(AudienceInvalid, match=message):
            validate_audience(workspace, data)


def test_a_segment_that_no_longer_compiles_is_refused_by_name(workspace, people):
    _contacts, _news, _customers, vips, _openers = people
    Tag.objects.for_workspace(workspace).filter(name="vip").delete()
    with pytest.raises(AudienceInvalid, match="Segment “VIPs” cannot be used: Condition 1"):
        validate_audience(workspace, {"include": {"segments": [vips.pk]}})


def test_another_workspaces_lists_and_segments_are_unknown(workspace, people):
    _contacts, news, _customers, vips, _openers = people
    other = WorkspaceFactory()
    with pytest.raises(AudienceInvalid, match="There is no list"):
        validate_audience(other, {"include": {"lists": [news.pk]}})
    with pytest.raises(AudienceInvalid, match="There is no segment"):
        validate_audience(other, {"include": {"segments": [vips.pk]}})
    # Even unvalidated, resolving in the other workspace finds none of these people.
    assert names(other, Audience(include_lists=(news.pk,), include_segments=(vips.pk,))) == []


def test_describe(workspace, people):
    _contacts, news, customers, vips, _openers = people
    audience = Audience(
        include_lists=(news.pk,), include_segments=(vips.pk,), exclude_lists=(customers.pk,)
    )
    assert describe_audience(workspace, audience) == "Newsletter, VIPs; except Customers"
