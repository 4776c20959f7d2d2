"""Segment definitions: validation, and every condition type and operator compiled to SQL.

These run on SQLite and on PostgreSQL (the suite runs twice), so each operator
is checked against both databases' JSON and date functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patron.audience import segments
from patron.audience.models import MailingList, Subscription
from patron.audience.segments import SegmentInvalid, vocabulary
from patron.crm import services
from patron.crm.models import Contact, StageOutcome
from tests.factories import (
    CompanyFactory,
    ContactFactory,
    DealFactory,
    EventFactory,
    WorkspaceFactory,
    make_pipeline,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def names(workspace, definition, now=NOW):
    vocab = vocabulary(workspace, now=now)
    query = segments.matching_contacts(workspace, definition, vocab=vocab)
    return sorted(query.values_list("first_name", flat=True))


def only(condition, match="all"):
    return {"match": match, "conditions": [condition]}


def field(name, op, value=None):
    return {"type": "field", "field": name, "op": op, "value": value}


@pytest.fixture
def people(workspace):
    return {
        "ann": ContactFactory(
            workspace=workspace,
            first_name="Ann",
            last_name="Lee",
            email="ann@acme.test",
            city="Berlin",
            score=10,
        ),
        "bob": ContactFactory(
            workspace=workspace,
            first_name="Bob",
            last_name="",
            email="bob@mail.test",
            city="",
            score=50,
        ),
        "cy": ContactFactory(
            workspace=workspace,
            first_name="Cy",
            last_name="Berg",
            email="cy@acme.test",
            city="berlin",
            score=90,
        ),
    }


# --- Text, number, choice, owner ----------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "BERLIN", ["Ann", "Cy"]),
        ("ne", "Berlin", ["Bob"]),
        ("contains", "erl", ["Ann", "Cy"]),
        ("not_contains", "erl", ["Bob"]),
        ("starts", "ber", ["Ann", "Cy"]),
        ("empty", None, ["Bob"]),
        ("not_empty", None, ["Ann", "Cy"]),
    ],
)
def test_text_operators(workspace, people, op, value, expected):
    assert names(workspace, only(field("city", op, value))) == expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 50, ["Bob"]),
        ("ne", 50, ["Ann", "Cy"]),
        ("gt", 10, ["Bob", "Cy"]),
        ("gte", 10, ["Ann", "Bob", "Cy"]),
        ("lt", 50, ["Ann"]),
        ("lte", 50, ["Ann", "Bob"]),
        ("between", [20, 90], ["Bob", "Cy"]),
    ],
)
def test_number_operators(workspace, people, op, value, expected):
    assert names(workspace, only(field("score", op, value))) == expected


def test_lifecycle_owner_and_groups(workspace, owner, people):
    Contact.objects.for_workspace(workspace).filter(first_name="Ann").update(
        lifecycle_stage="customer", owner=owner
    )
    Contact.objects.for_workspace(workspace).exclude(first_name="Ann").update(owner=None)
    assert names(workspace, only(field("lifecycle_stage", "in", ["customer", "mql"]))) == ["Ann"]
    assert names(workspace, only(field("lifecycle_stage", "not_in", ["customer"]))) == [
        "Bob",
        "Cy",
    ]
    assert names(workspace, only(field("owner", "in", [owner.pk]))) == ["Ann"]
    assert names(workspace, only(field("owner", "empty"))) == ["Bob", "Cy"]
    assert names(workspace, only(field("owner", "not_in", [owner.pk]))) == ["Bob", "Cy"]
    nested = {
        "match": "any",
        "conditions": [
            field("score", "gt", 80),
            {"match": "none", "conditions": [field("city", "not_empty"), field("score", "lt", 5)]},
        ],
    }
    assert names(workspace, nested) == ["Bob", "Cy"]
    assert names(workspace, {"match": "all", "conditions": []}) == ["Ann", "Bob", "Cy"]
    assert names(workspace, {"match": "any", "conditions": []}) == []


# --- Custom fields ----------------------------------------------------------------------


@pytest.fixture
def custom(workspace):
    for label, kind, options in [
        ("Plan", "single_select", ["Free", "Pro", "Team"]),
        ("Interests", "multi_select", ["Email", "CRM", "Ads"]),
        ("Seats", "number", []),
        ("Renewal", "date", []),
        ("Trial ends", "datetime", []),
        ("Newsletter", "boolean", []),
        ("Nickname", "text", []),
    ]:
        services.create_custom_field(
            workspace=workspace,
            object_type="contact",
            label=label,
            field_type=kind,
            options=options,
        )
    make = lambda name, **values: services.create_contact(  # noqa: E731
        workspace=workspace, first_name=name, custom=values
    )
    make(
        "Ann",
        plan="Pro",
        interests=["Email", "CRM"],
        seats=5,
        renewal="2026-03-12",
        trial_ends="2026-03-09T23:30:00Z",
        newsletter=True,
        nickname="Annie",
    )
    make(
        "Bob",
        plan="Free",
        interests=["Ads"],
        seats=50,
        renewal="2025-03-10",
        trial_ends="2026-03-10T00:30:00Z",
        newsletter=False,
    )
    make("Cy")


@pytest.mark.parametrize(
    ("key", "op", "value", "expected"),
    [
        ("plan", "in", ["Pro", "Team"], ["Ann"]),
        ("plan", "not_in", ["Pro"], ["Bob", "Cy"]),
        ("plan", "empty", None, ["Cy"]),
        ("interests", "any", ["CRM", "Ads"], ["Ann", "Bob"]),
        ("interests", "none", ["CRM"], ["Bob", "Cy"]),
        ("seats", "gt", 10, ["Bob"]),
        ("seats", "lte", 5, ["Ann"]),
        ("seats", "between", [1, 5], ["Ann"]),
        ("seats", "ne", 5, ["Bob", "Cy"]),
        ("seats", "not_empty", None, ["Ann", "Bob"]),
        ("renewal", "after", "2026-03-11", ["Ann"]),
        ("renewal", "before", "2026-01-01", ["Bob"]),
        ("renewal", "in_next_days", 3, ["Ann"]),
        ("renewal", "more_than_days_ago", 30, ["Bob"]),
        ("renewal", "anniversary_in_days", 0, ["Bob"]),
        ("trial_ends", "on", "2026-03-10", ["Bob"]),
        ("trial_ends", "in_last_days", 1, ["Ann", "Bob"]),
        ("newsletter", "true", None, ["Ann"]),
        ("newsletter", "false", None, ["Bob"]),
        ("nickname", "starts", "ann", ["Ann"]),
        ("nickname", "ne", "Annie", ["Bob", "Cy"]),
    ],
)
def test_custom_field_operators(workspace, custom, key, op, value, expected):
    assert names(workspace, only(field(f"custom.{key}", op, value))) == expected


def test_custom_datetime_follows_the_workspace_day(workspace, custom):
    # 23:30 UTC on the 9th is already the 10th in Jakarta (UTC+7).
    workspace.time_zone = "Asia/Jakarta"
    workspace.save()
    assert names(workspace, only(field("custom.trial_ends", "on", "2026-03-10"))) == [
        "Ann",
        "Bob",
    ]
    workspace.time_zone = "America/New_York"
    workspace.save()
    assert names(workspace, only(field("custom.trial_ends", "on", "2026-03-09"))) == [
        "Ann",
        "Bob",
    ]


# --- Dates, time zones and anniversaries ------------------------------------------------


def test_datetime_on_uses_local_day_boundaries(workspace):
    for name, moment in [
        ("Late", datetime(2026, 3, 9, 16, 30, tzinfo=UTC)),  # 23:30 in Jakarta on the 9th
        ("Early", datetime(2026, 3, 9, 17, 30, tzinfo=UTC)),  # 00:30 on the 10th in Jakarta
    ]:
        ContactFactory(workspace=workspace, first_name=name, created_at=moment)
    workspace.time_zone = "Asia/Jakarta"
    workspace.save()
    assert names(workspace, only(field("created_at", "on", "2026-03-10"))) == ["Early"]
    assert names(workspace, only(field("created_at", "before", "2026-03-10"))) == ["Late"]
    assert names(workspace, only(field("created_at", "after", "2026-03-09"))) == ["Early"]
    assert names(workspace, only(field("created_at", "between", ["2026-03-09", "2026-03-09"]))) == [
        "Late"
    ]
    workspace.time_zone = "UTC"
    workspace.save()
    assert names(workspace, only(field("created_at", "on", "2026-03-09"))) == ["Early", "Late"]
    # Rolling windows: the last day is the last 24 hours before NOW (12:00 on the 10th).
    ContactFactory(
        workspace=workspace, first_name="Old", created_at=datetime(2026, 3, 9, 11, tzinfo=UTC)
    )
    assert names(workspace, only(field("created_at", "in_last_days", 1))) == ["Early", "Late"]
    assert names(workspace, only(field("created_at", "more_than_days_ago", 1))) == ["Old"]


def test_birthday_date_operators_and_empty(workspace):
    ContactFactory(workspace=workspace, first_name="Today", birthday=date(1990, 3, 10))
    ContactFactory(workspace=workspace, first_name="Week", birthday=date(1985, 3, 16))
    ContactFactory(workspace=workspace, first_name="Past", birthday=date(1980, 3, 4))
    ContactFactory(workspace=workspace, first_name="None", birthday=None)
    assert names(workspace, only(field("birthday", "anniversary_in_days", 6))) == [
        "Today",
        "Week",
    ]
    assert names(workspace, only(field("birthday", "anniversary_in_days", 0))) == ["Today"]
    assert names(workspace, only(field("birthday", "empty"))) == ["None"]
    assert names(workspace, only(field("birthday", "before", "1986-01-01"))) == ["Past", "Week"]
    assert names(workspace, only(field("birthday", "in_last_days", 7))) == []


@pytest.mark.parametrize(
    ("today", "days", "born", "matches"),
    [
        (datetime(2026, 12, 28, 12, tzinfo=UTC), 7, date(1990, 1, 3), True),  # across new year
        (datetime(2026, 12, 28, 12, tzinfo=UTC), 5, date(1990, 1, 3), False),
        (datetime(2027, 2, 27, 12, tzinfo=UTC), 1, date(1992, 2, 29), True),  # 28 Feb in 2027
        (datetime(2028, 2, 27, 12, tzinfo=UTC), 1, date(1992, 2, 29), False),  # 2028 has a 29th
        (datetime(2028, 2, 27, 12, tzinfo=UTC), 2, date(1992, 2, 29), True),
        (datetime(2027, 3, 1, 12, tzinfo=UTC), 3, date(1992, 2, 29), False),
    ],
)
def test_anniversaries_across_year_end_and_leap_day(workspace, today, days, born, matches):
    ContactFactory(workspace=workspace, first_name="Born", birthday=born)
    condition = only(field("birthday", "anniversary_in_days", days))
    assert names(workspace, condition, now=today) == (["Born"] if matches else [])


def test_anniversary_days_folds_29_february():
    pairs = segments.anniversary_days(date(2027, 2, 28), 0)
    assert pairs == [(2, 28), (2, 29)]
    assert segments.anniversary_days(date(2028, 2, 28), 0) == [(2, 28)]
    assert (1, 2) in segments.anniversary_days(date(2026, 12, 30), 3)


def test_local_today_decides_the_anniversary(workspace):
    ContactFactory(workspace=workspace, first_name="Born", birthday=date(1990, 3, 11))
    late_evening_utc = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)  # already the 11th in Jakarta
    condition = only(field("birthday", "anniversary_in_days", 0))
    assert names(workspace, condition, now=late_evening_utc) == []
    workspace.time_zone = "Asia/Jakarta"
    workspace.save()
    assert names(workspace, condition, now=late_evening_utc) == ["Born"]


# --- Tags, lists, company, deals --------------------------------------------------------


def test_tags_lists_company_and_deals(workspace, people):
    ann, bob, cy = people["ann"], people["bob"], people["cy"]
    vip = services.add_tags(record_=ann, names=["VIP"])[0]
    services.add_tags(record_=bob, names=["vip"])
    news = MailingList.objects.create(workspace=workspace, name="News")
    Subscription.objects.create(
        workspace=workspace, mailing_list=news, contact=ann, status="subscribed"
    )
    Subscription.objects.create(
        workspace=workspace, mailing_list=news, contact=bob, status="unsubscribed"
    )
    assert names(workspace, only({"type": "tag", "op": "has", "tag": vip.pk})) == ["Ann", "Bob"]
    assert names(workspace, only({"type": "tag", "op": "has_not", "tag": vip.pk})) == ["Cy"]
    on_list = {"type": "list", "op": "in", "list": news.pk, "status": "subscribed"}
    assert names(workspace, only(on_list)) == ["Ann"]
    assert names(workspace, only({**on_list, "status": "any"})) == ["Ann", "Bob"]
    assert names(workspace, only({**on_list, "op": "not_in"})) == ["Bob", "Cy"]

    acme = CompanyFactory(workspace=workspace, name="Acme", industry="Software", size=40)
    Contact.objects.for_workspace(workspace).filter(pk__in=[ann.pk, cy.pk]).update(company=acme)
    company = {"type": "company", "field": "industry", "op": "eq", "value": "software"}
    assert names(workspace, only(company)) == ["Ann", "Cy"]
    assert names(workspace, only({**company, "op": "empty"})) == ["Bob"]
    assert names(workspace, only({**company, "field": "size", "op": "gt", "value": 10})) == [
        "Ann",
        "Cy",
    ]

    sales = make_pipeline(workspace, "Sales")
    partners = make_pipeline(workspace, "Partners")
    won = sales.stages.get(outcome=StageOutcome.WON)
    DealFactory(workspace=workspace, pipeline=sales, stage=won, amount=Decimal("700")).contacts.add(
        ann
    )
    DealFactory(workspace=workspace, pipeline=sales, stage=won, amount=Decimal("600")).contacts.add(
        ann
    )
    open_stage = partners.stages.filter(outcome=StageOutcome.OPEN).first()
    DealFactory(workspace=workspace, pipeline=partners, stage=open_stage).contacts.add(bob)
    assert names(workspace, only({"type": "deal", "op": "has_open"})) == ["Bob"]
    assert names(workspace, only({"type": "deal", "op": "has_open", "pipeline": sales.pk})) == []
    assert names(workspace, only({"type": "deal", "op": "has_no_open"})) == ["Ann", "Cy"]
    assert names(workspace, only({"type": "deal", "op": "has_won"})) == ["Ann"]
    total = {"type": "deal", "op": "won_amount", "compare": "gt", "value": 1000}
    assert names(workspace, only(total)) == ["Ann"]
    assert names(workspace, only({**total, "value": 1300})) == []
    assert names(workspace, only({**total, "compare": "between", "value": [1000, 1300]})) == ["Ann"]


# --- Behaviour ----------------------------------------------------------------------------


@pytest.fixture
def behaviour(workspace, people):
    def event(contact, kind, days_ago, **properties):
        EventFactory(
            workspace=workspace,
            contact_id=contact.pk,
            kind=kind,
            properties=properties,
            occurred_at=NOW - timedelta(days=days_ago),
        )

    event(people["ann"], "email.opened", 1, campaign_id=7)
    event(people["ann"], "email.opened", 3, campaign_id=8)
    event(people["ann"], "email.opened", 60, campaign_id=1)
    event(people["bob"], "email.opened", 2, campaign_id=7)
    event(people["bob"], "page.viewed", 5, url="/pricing?plan=pro")
    event(people["cy"], "page.viewed", 1, url="/blog/pricing-explained")
    event(people["cy"], "page.viewed", 40, url="/Pricing")
    # Another workspace's events never count.
    other = WorkspaceFactory()
    EventFactory(
        workspace=other,
        contact_id=people["cy"].pk,
        kind="email.opened",
        occurred_at=NOW - timedelta(days=1),
    )


def opened(count_op, count=1, window=None, filters=()):
    return {
        "type": "event",
        "kind": "email.opened",
        "filters": list(filters),
        "count": {"op": count_op, "value": count},
        "window": window or {"type": "any"},
    }


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (opened("at_least", 1), ["Ann", "Bob"]),
        (opened("at_least", 2, {"type": "last_days", "days": 30}), ["Ann"]),
        (opened("at_least", 3), ["Ann"]),
        (opened("at_most", 1), ["Bob", "Cy"]),
        (opened("exactly", 1, {"type": "last_days", "days": 30}), ["Bob"]),
        (opened("never"), ["Cy"]),
        (opened("never", window={"type": "last_days", "days": 2}), ["Cy"]),
        (opened("at_most", 0), ["Cy"]),
        (
            opened("at_least", 1, filters=[{"property": "campaign_id", "op": "eq", "value": "7"}]),
            ["Ann", "Bob"],
        ),
        (
            opened("at_least", 1, {"type": "between", "from": "2026-01-01", "to": "2026-01-31"}),
            ["Ann"],
        ),
    ],
)
def test_behaviour_conditions(workspace, behaviour, condition, expected):
    assert names(workspace, only(condition)) == expected


def test_page_url_contains(workspace, behaviour):
    visited = {
        "type": "event",
        "kind": "page.viewed",
        "filters": [{"property": "url", "op": "contains", "value": "/pricing"}],
    }
    assert names(workspace, only(visited)) == ["Bob", "Cy"]
    starts = {**visited, "filters": [{"property": "url", "op": "starts", "value": "/pricing"}]}
    assert names(workspace, only(starts)) == ["Bob", "Cy"]
    recent = {**visited, "window": {"type": "last_days", "days": 3}}
    assert names(workspace, only(recent)) == ["Cy"]


def test_four_conditions_compile_to_one_query(workspace, behaviour, people):
    services.create_custom_field(
        workspace=workspace, object_type="contact", label="Plan", field_type="text"
    )
    tag = services.add_tags(record_=people["ann"], names=["vip"])[0]
    Contact.objects.for_workspace(workspace).filter(pk=people["ann"].pk).update(
        custom={"plan": "pro"}
    )
    definition = {
        "match": "all",
        "conditions": [
            field("custom.plan", "eq", "pro"),
            {"type": "tag", "op": "has", "tag": tag.pk},
            opened("at_least", 2, {"type": "last_days", "days": 30}),
            {
                "type": "event",
                "kind": "page.viewed",
                "filters": [{"property": "url", "op": "contains", "value": "/pricing"}],
            },
        ],
    }
    vocab = vocabulary(workspace, now=NOW)
    query = segments.matching_contacts(workspace, definition, vocab=vocab)
    with CaptureQueriesContext(connection) as queries:
        assert query.count() == 0
    assert len(queries) == 1
    definition["conditions"][3]["kind"] = "email.opened"
    definition["conditions"][3]["filters"] = []
    with CaptureQueriesContext(connection) as queries:
        assert segments.matching_contacts(workspace, definition, vocab=vocab).count() == 1
    assert len(queries) == 1


# --- Validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"type": "colour"}, "Unknown condition type"),
        (field("shoe_size", "eq", 3), "Choose a field"),
        (field("score", "contains", "x"), "does not fit"),
        (field("score", "gt", "lots"), "Enter a number"),
        (field("score", "between", [9, 1]), "must not be greater"),
        (field("city", "eq", "  "), "Give a value"),
        (field("birthday", "on", "31/12/2026"), "YYYY-MM-DD"),
        (field("birthday", "anniversary_in_days", -1), "between 0 and"),
        (field("lifecycle_stage", "in", ["emperor"]), "is not an option"),
        (field("owner", "in", [999999]), "people of this workspace"),
        ({"type": "tag", "op": "has", "tag": 999999}, "Choose a tag"),
        ({"type": "list", "op": "in", "list": 999999}, "Choose a list"),
        ({"type": "deal", "op": "has_open", "pipeline": 999999}, "Choose a pipeline"),
        ({"type": "event", "kind": "email.teleported"}, "not a kind of event"),
        (
            {"type": "event", "kind": "email.opened", "count": {"op": "at_least", "value": 0}},
            "at least 1",
        ),
        (
            {
                "type": "event",
                "kind": "email.opened",
                "filters": [{"property": "Bad Key!", "op": "eq", "value": "x"}],
            },
            "lower-case",
        ),
        (
            {
                "type": "event",
                "kind": "email.opened",
                "window": {"type": "between", "from": "2026-02-01", "to": "2026-01-01"},
            },
            "must not be after",
        ),
    ],
)
def test_invalid_conditions_are_named(workspace, condition, message):
    definition = {
        "match": "all",
        "conditions": [field("city", "empty"), {"match": "any", "conditions": [condition]}],
    }
    with pytest.raises(SegmentInvalid) as caught:
        segments.validate(workspace, definition)
    assert caught.value.path == "2.1"
    assert str(caught.value).startswith("Condition 2.1 (")
    assert message in str(caught.value)


def test_other_workspaces_tags_and_lists_are_unknown(workspace):
    other = WorkspaceFactory()
    foreign = MailingList.objects.create(workspace=other, name="Theirs")
    with pytest.raises(SegmentInvalid, match="Choose a list"):
        segments.validate(workspace, only({"type": "list", "op": "in", "list": foreign.pk}))


def test_group_shape_errors(workspace):
    with pytest.raises(SegmentInvalid, match="all, any or none"):
        segments.validate(workspace, {"match": "some", "conditions": []})
    deep = {"match": "all", "conditions": []}
    node = deep
    for _ in range(segments.MAX_DEPTH + 1):
        child = {"match": "all", "conditions": []}
        node["conditions"].append(child)
        node = child
    with pytest.raises(SegmentInvalid, match="nest"):
        segments.validate(workspace, deep)


def test_describe_reads_like_a_sentence(workspace, people):
    tag = services.add_tags(record_=people["ann"], names=["vip"])[0]
    definition = segments.validate(
        workspace,
        {
            "match": "all",
            "conditions": [
                {"type": "tag", "op": "has", "tag": tag.pk},
                opened("at_least", 2, {"type": "last_days", "days": 30}),
            ],
        },
    )
    text = segments.describe(vocabulary(workspace), definition)
    assert text == "tagged vip and Email opened: at least 2 times in the last 30 days"

    fields = segments.validate(
        workspace,
        {
            "match": "any",
            "conditions": [
                field("birthday", "anniversary_in_days", 7),
                field("lifecycle_stage", "in", ["lead", "mql"]),
                field("score", "between", [10, 20]),
                {"type": "deal", "op": "won_amount", "compare": "gt", "value": 500},
            ],
        },
    )
    assert segments.describe(vocabulary(workspace), fields) == (
        "Birthday has its anniversary in the next 7 days or "
        "Lifecycle stage is any of Lead, Marketing-qualified lead or "
        "Score is between 10 and 20 or "
        "won deals total is greater than 500"
    )


@pytest.mark.parametrize("count_op", ["at_least", "at_most", "exactly"])
@pytest.mark.parametrize("match", ["all", "any", "none"])
def test_counts_beside_cheap_conditions_agree_with_each_condition_alone(
    workspace, behaviour, people, count_op, match
):
    """Counting only for the contacts a group's cheap conditions let through (a
    shortcut for "all" groups) selects exactly what the conditions select one by
    one, combined in Python, whatever the group and its nesting."""
    tag = services.add_tags(record_=people["ann"], names=["vip"])[0]
    services.add_tags(record_=people["cy"], names=["vip"])
    count = opened(count_op, 1, {"type": "last_days", "days": 30})
    vip = {"type": "tag", "op": "has", "tag": tag.pk}
    berlin = field("city", "eq", "Berlin")
    everyone = set(names(workspace, {"match": "all", "conditions": []}))
    each = [set(names(workspace, only(c))) for c in (vip, count, berlin)]
    if match == "all":
        expected = each[0] & each[1] & each[2]
    elif match == "any":
        expected = each[0] | each[1] | each[2]
    else:
        expected = everyone - (each[0] | each[1] | each[2])
    group = {"match": match, "conditions": [vip, count, berlin]}
    assert names(workspace, group) == sorted(expected)
    # The same group inside "none of" is its complement; inside "all of", itself.
    assert names(workspace, {"match": "none", "conditions": [group]}) == sorted(everyone - expected)
    assert names(workspace, {"match": "all", "conditions": [group, vip]}) == sorted(
        expected & each[0]
    )


def test_a_count_beside_cheap_conditions_is_counted_for_their_contacts_only(
    workspace, behaviour, people
):
    tag = services.add_tags(record_=people["ann"], names=["vip"])[0]
    definition = {
        "match": "all",
        "conditions": [
            {"type": "tag", "op": "has", "tag": tag.pk},
            opened("at_least", 2, {"type": "last_days", "days": 30}),
        ],
    }
    vocab = vocabulary(workspace, now=NOW)
    sql = str(segments.matching_contacts(workspace, definition, vocab=vocab).query)
    # The aggregate over the activity log is joined to the tagged contacts.
    aggregate = sql[sql.index('FROM "activity_event"') : sql.index("GROUP BY")]
    assert "crm_contact_tags" in aggregate
    assert names(workspace, definition) == ["Ann"]
