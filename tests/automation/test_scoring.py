"""Lead scoring: behaviour and firmographic rules, caps, decay, exactly-once, re-apply."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patron.activity.models import ConsumerCheckpoint, Event
from patron.activity.services import record
from patron.automation import scoring
from patron.automation.models import (
    RecomputeStatus,
    RulePoints,
    ScoreRecompute,
    ScoringRuleKind,
)
from patron.crm import services as crm
from patron.crm.models import Contact
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db


def behaviour(workspace, name, kind, points, **extra):
    return scoring.save_scoring_rule(
        workspace=workspace,
        name=name,
        kind=ScoringRuleKind.BEHAVIOUR,
        points=points,
        event_kind=kind,
        **extra,
    )


def score_of(contact) -> int:
    return Contact.objects.for_workspace(contact.workspace_id).get(pk=contact.pk).score


def history(contact) -> list[dict]:
    return list(
        Event.objects.for_workspace(contact.workspace_id)
        .filter(kind="contact.score_changed", contact_id=contact.pk)
        .order_by("id")
        .values_list("properties", flat=True)
    )


@pytest.fixture
def contact(workspace):
    return crm.create_contact(workspace=workspace, first_name="Ann", email="ann@x.test")


def test_points_per_rule_with_property_filters(workspace, contact):
    behaviour(workspace, "Opened", "email.opened", 10)
    behaviour(
        workspace,
        "Pricing page",
        "page.viewed",
        20,
        filters=[{"property": "url", "op": "contains", "value": "/pricing"}],
    )
    behaviour(workspace, "Unsubscribed", "email.unsubscribed", -50)
    for kind, props in [
        ("email.opened", {}),
        ("email.opened", {}),
        ("page.viewed", {"url": "https://acme.test/PRICING/pro"}),
        ("page.viewed", {"url": "https://acme.test/blog"}),
    ]:
        record(workspace=workspace, kind=kind, contact_id=contact.pk, properties=props)
    scoring.follow_activity()
    assert score_of(contact) == 40
    reasons = {(h["rule"], h["points"]) for h in history(contact)}
    assert reasons == {("Opened", 20), ("Pricing page", 20)}
    record(workspace=workspace, kind="email.unsubscribed", contact_id=contact.pk)
    scoring.follow_activity()
    assert score_of(contact) == -10
    assert history(contact)[-1]["reason"] == "Unsubscribed"


def test_is_filter_matches_numbers_and_text(workspace, contact):
    behaviour(
        workspace,
        "Campaign 7",
        "email.clicked",
        5,
        filters=[{"property": "campaign_id", "op": "eq", "value": "7"}],
    )
    record(
        workspace=workspace,
        kind="email.clicked",
        contact_id=contact.pk,
        properties={"campaign_id": 7},
    )
    record(
        workspace=workspace,
        kind="email.clicked",
        contact_id=contact.pk,
        properties={"campaign_id": 8},
    )
    scoring.follow_activity()
    assert score_of(contact) == 5


def test_cap_per_day_and_week(workspace, contact):
    behaviour(workspace, "Pages", "page.viewed", 10, cap_points=25, cap_period="day")
    behaviour(workspace, "Opens", "email.opened", 10, cap_points=30, cap_period="week")
    now = timezone.now()
    for _i in range(4):
        record(workspace=workspace, kind="page.viewed", contact_id=contact.pk, occurred_at=now)
    scoring.follow_activity()
    assert score_of(contact) == 25
    assert "capped" in history(contact)[-1]["reason"]
    # A later batch the same day adds nothing; the next day starts a new count.
    record(workspace=workspace, kind="page.viewed", contact_id=contact.pk, occurred_at=now)
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        occurred_at=now + timedelta(days=1),
    )
    scoring.follow_activity()
    assert score_of(contact) == 35
    for _i in range(5):
        record(workspace=workspace, kind="email.opened", contact_id=contact.pk, occurred_at=now)
    scoring.follow_activity()
    assert score_of(contact) == 65


def test_events_are_applied_once_and_other_workspaces_are_untouched(workspace, contact):
    from tests.factories import WorkspaceFactory

    other = WorkspaceFactory()
    stranger = crm.create_contact(workspace=other, first_name="Zed", email="z@x.test")
    behaviour(workspace, "Opened", "email.opened", 10)
    record(workspace=workspace, kind="email.opened", contact_id=contact.pk)
    record(workspace=other, kind="email.opened", contact_id=stranger.pk)
    scoring.follow_activity()
    scoring.follow_activity()
    assert score_of(contact) == 10
    assert score_of(stranger) == 0


def test_a_crash_mid_batch_leaves_nothing_applied(workspace, contact, monkeypatch):
    behaviour(workspace, "Opened", "email.opened", 10)
    second = crm.create_contact(workspace=workspace, first_name="Bo", email="bo@x.test")
    record(workspace=workspace, kind="email.opened", contact_id=contact.pk)
    record(workspace=workspace, kind="email.opened", contact_id=second.pk)
    real_changes = scoring.change_scores

    def write_then_die(**kwargs):
        # The scores are written, then the worker dies before the checkpoint moves.
        real_changes(**kwargs)
        assert score_of(contact) == 10
        raise RuntimeError("worker died")

    monkeypatch.setattr(scoring, "change_scores", write_then_die)
    checkpoint_before = ConsumerCheckpoint.objects.filter(name=scoring.CONSUMER).first()
    with pytest.raises(RuntimeError):
        scoring.follow_activity()
    assert score_of(contact) == 0 and score_of(second) == 0
    assert not RulePoints.objects.for_workspace(workspace).exists()
    checkpoint = ConsumerCheckpoint.objects.get(name=scoring.CONSUMER)
    assert checkpoint.position == (checkpoint_before.position if checkpoint_before else 0)
    monkeypatch.setattr(scoring, "change_scores", real_changes)
    scoring.follow_activity()
    assert score_of(contact) == 10 and score_of(second) == 10


def test_firmographic_points_are_given_and_taken_back(workspace, contact):
    company = CompanyFactory(workspace=workspace, size=20)
    contact = crm.update_contact(contact=contact, company=company)
    scoring.save_scoring_rule(
        workspace=workspace,
        name="Mid-size",
        kind=ScoringRuleKind.FIRMOGRAPHIC,
        points=15,
        condition={
            "match": "all",
            "conditions": [
                {"type": "company", "field": "size", "op": "between", "value": [50, 500]}
            ],
        },
    )
    scoring.follow_activity()
    assert score_of(contact) == 0
    crm.update_company(company=company, size=120)
    scoring.follow_activity()
    assert score_of(contact) == 15
    assert history(contact)[-1]["rule"] == "Mid-size"
    crm.update_company(company=company, size=120)  # no change: nothing given twice
    scoring.follow_activity()
    assert score_of(contact) == 15
    crm.update_company(company=company, size=900)
    scoring.follow_activity()
    assert score_of(contact) == 0
    assert "No longer matches" in history(contact)[-1]["reason"]


def test_firmographic_rule_on_a_contact_field(workspace, contact):
    rule = scoring.save_scoring_rule(
        workspace=workspace,
        name="Germany",
        kind=ScoringRuleKind.FIRMOGRAPHIC,
        points=5,
        condition={
            "match": "all",
            "conditions": [{"type": "field", "field": "country", "op": "eq", "value": "DE"}],
        },
    )
    crm.update_contact(contact=contact, country="DE")
    scoring.follow_activity()
    assert score_of(contact) == 5
    # Deleting the rule takes its points back.
    assert scoring.delete_scoring_rule(rule=rule) == 1
    assert score_of(contact) == 0


def test_bad_rules_are_refused_with_a_message(workspace):
    with pytest.raises(scoring.ScoringRuleInvalid) as caught:
        behaviour(workspace, "", "no.such", 0)
    assert set(caught.value.errors) == {"name", "points", "event_kind"}
    with pytest.raises(scoring.ScoringRuleInvalid) as caught:
        behaviour(
            workspace,
            "X",
            "page.viewed",
            5,
            filters=[{"property": "Bad Name!", "op": "contains", "value": "x"}],
        )
    assert "filters" in caught.value.errors
    with pytest.raises(scoring.ScoringRuleInvalid) as caught:
        behaviour(workspace, "X", "page.viewed", 5, cap_period="day")
    assert "cap_points" in caught.value.errors
    with pytest.raises(scoring.ScoringRuleInvalid) as caught:
        scoring.save_scoring_rule(
            workspace=workspace,
            name="X",
            kind=ScoringRuleKind.FIRMOGRAPHIC,
            points=5,
            condition={"match": "all", "conditions": [{"type": "tag", "op": "has", "tag": 1}]},
        )
    assert "condition" in caught.value.errors


def test_decay_takes_a_share_once_per_quiet_period(workspace, contact):
    scoring.update_scoring_settings(
        workspace=workspace, decay_percent=10, decay_days=30, handoff_due_hours=4
    )
    crm.change_score(contact=contact, points=85, reason="by hand")
    Contact.objects.for_workspace(workspace).filter(pk=contact.pk).update(
        created_at=timezone.now() - timedelta(days=90)
    )
    Event.objects.for_workspace(workspace).update(occurred_at=timezone.now() - timedelta(days=60))
    active = crm.create_contact(workspace=workspace, first_name="Active", email="act@x.test")
    crm.change_score(contact=active, points=50, reason="by hand")
    Contact.objects.for_workspace(workspace).filter(pk=active.pk).update(
        created_at=timezone.now() - timedelta(days=90)
    )
    record(workspace=workspace, kind="page.viewed", contact_id=active.pk)
    assert scoring.decay_scores() == 1
    assert score_of(contact) == 77  # 85 - floor(8.5)
    assert score_of(active) == 50
    assert history(contact)[-1]["reason"].startswith("No activity for 30 days")
    # Not again until another quiet period has passed.
    assert scoring.decay_scores() == 0
    # A quiet period later both are quiet (the active one's last page view is 31 days old).
    assert scoring.decay_scores(now=timezone.now() + timedelta(days=31)) == 2
    assert score_of(contact) == 70
    assert score_of(active) == 45


def test_reapply_recomputes_from_the_log_and_keeps_other_points(workspace, contact):
    rule = behaviour(workspace, "Opened", "email.opened", 10)
    for _i in range(3):
        record(workspace=workspace, kind="email.opened", contact_id=contact.pk)
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        properties={"url": "/pricing"},
    )
    scoring.follow_activity()
    crm.change_score(contact=contact, points=7, reason="by hand")
    assert score_of(contact) == 37
    # The rule changes, and a new one would have counted the page view.
    scoring.save_scoring_rule(
        workspace=workspace,
        rule=rule,
        name="Opened",
        kind=ScoringRuleKind.BEHAVIOUR,
        points=5,
        event_kind="email.opened",
        cap_points=12,
        cap_period="week",
    )
    behaviour(
        workspace,
        "Pricing",
        "page.viewed",
        20,
        filters=[{"property": "url", "op": "contains", "value": "pricing"}],
    )
    scoring.follow_activity()
    assert score_of(contact) == 37  # past events are not scored again by themselves
    job = scoring.request_reapply(workspace=workspace)
    scoring.reapply_rules(job)
    job.refresh_from_db()
    assert job.status == RecomputeStatus.DONE and job.done == job.total == 1
    assert job.changed == 1
    assert score_of(contact) == 12 + 20 + 7
    assert history(contact)[-1]["reason"] == "Scoring rules re-applied"
    # Re-applying again changes nothing, and new events still count once.
    scoring.reapply_rules(ScoreRecompute.objects.create(workspace=workspace))
    assert score_of(contact) == 39
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        properties={"url": "/pricing"},
    )
    scoring.follow_activity()
    assert score_of(contact) == 59


def test_reapply_does_not_count_events_the_consumer_has_not_read(workspace, contact):
    behaviour(workspace, "Opened", "email.opened", 10)
    scoring.follow_activity()
    record(workspace=workspace, kind="email.opened", contact_id=contact.pk)
    scoring.reapply_rules(ScoreRecompute.objects.create(workspace=workspace))
    assert score_of(contact) == 0
    scoring.follow_activity()
    assert score_of(contact) == 10


def test_bulk_score_changes_chain_from_and_to_and_skip_missing_contacts(workspace, contact):
    from patron.crm.services import ScoreChange, change_scores

    crm.change_score(contact=contact, points=5, reason="by hand")
    result = change_scores(
        workspace=workspace,
        changes=[
            ScoreChange(contact.pk, 10, "Opened", "Opened"),
            ScoreChange(999_999, 10, "Opened", "Opened"),
            ScoreChange(contact.pk, -3, "Unsubscribed", "Unsub"),
        ],
    )
    assert result == {contact.pk: (5, 12)}
    assert [(h["from"], h["to"], h["rule"]) for h in history(contact)[1:]] == [
        (5, 15, "Opened"),
        (15, 12, "Unsub"),
    ]


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_starts_scoring_at_the_end_of_the_log():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from tests.factories import EventFactory, WorkspaceFactory

    executor = MigrationExecutor(connection)
    executor.migrate([("automation", "0002_workflows")])
    ConsumerCheckpoint.objects.filter(name=scoring.CONSUMER).delete()
    newest = EventFactory(workspace=WorkspaceFactory()).pk
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert ConsumerCheckpoint.objects.get(name=scoring.CONSUMER).position == newest


def test_bulk_score_events_look_like_single_ones(workspace, contact):
    from patron.crm.services import ScoreChange, change_scores

    moment = timezone.now() - timedelta(hours=2)
    change_scores(workspace=workspace, changes=[ScoreChange(contact.pk, 4, "Opened", "O", moment)])
    crm.change_score(contact=contact, points=1, reason="by hand")
    bulk, single = (
        Event.objects.for_workspace(workspace)
        .filter(kind="contact.score_changed", contact_id=contact.pk)
        .order_by("id")
    )
    assert (bulk.source_type, bulk.source_id) == (single.source_type, single.source_id)
    assert bulk.occurred_at == moment
    assert bulk.actor_id is None and bulk.visitor_id == ""
    assert set(bulk.properties) == set(single.properties)
