"""A contact merge keeps what automation knows of the merged-away contact: its workflow
enrolments, the points its rules gave, its hand-offs and its decay clock."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from patron.automation import engine
from patron.automation.models import (
    WHILE_TRUE,
    Enrolment,
    EnrolmentStatus,
    Handoff,
    RulePoints,
    ScoreDecay,
    ScoringRule,
)
from patron.crm import merge
from tests.automation.workflow_helpers import published
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

WAIT = [{"id": "w", "type": "wait", "days": 1}, {"id": "t", "type": "add_tag", "tag": "x"}]


def rule(workspace, name, kind="behaviour"):
    return ScoringRule.objects.create(
        workspace=workspace, name=name, kind=kind, event_kind="page.viewed", points=5
    )


def test_enrolments_move_and_a_double_journey_ends(workspace):
    kept = ContactFactory(workspace=workspace, email="ann@x.test")
    other = ContactFactory(workspace=workspace, email="ann.work@x.test")
    both = published(workspace, WAIT, name="Both in it")
    only_other = published(workspace, WAIT, name="Only the other")
    engine.enrol_contacts(workflow=both, contact_ids=[kept.pk, other.pk])
    engine.enrol_contacts(workflow=only_other, contact_ids=[other.pk])

    merge.merge_contacts(primary=kept, other=other)

    enrolments = Enrolment.objects.for_workspace(workspace)
    assert not enrolments.filter(contact_id=other.pk).exists()
    moved = enrolments.get(workflow=only_other)
    assert (moved.contact_id, moved.status, moved.step) == (kept.pk, EnrolmentStatus.ACTIVE, "w")
    in_both = enrolments.filter(workflow=both).order_by("pk")
    assert [(e.contact_id, e.status) for e in in_both] == [
        (kept.pk, EnrolmentStatus.ACTIVE),
        (kept.pk, EnrolmentStatus.EXITED),
    ]
    assert in_both[1].finished_at is not None and in_both[1].next_wake_at is None


def test_points_hand_offs_and_decay_move(workspace, owner):
    kept = ContactFactory(workspace=workspace, email="ann@x.test")
    other = ContactFactory(workspace=workspace, email="ann.work@x.test")
    views, opens, firm = (
        rule(workspace, "Views"),
        rule(workspace, "Opens"),
        rule(workspace, "Firm", kind="firmographic"),
    )
    week = date(2026, 11, 30)
    points = RulePoints.objects.for_workspace(workspace)
    for contact, given in ((kept, 10), (other, 15)):
        RulePoints.objects.create(
            workspace=workspace, rule=views, contact=contact, period_start=week, points=given
        )
        RulePoints.objects.create(
            workspace=workspace, rule=firm, contact=contact, period_start=WHILE_TRUE, points=5
        )
    RulePoints.objects.create(
        workspace=workspace, rule=opens, contact=other, period_start=week, points=3
    )
    Handoff.objects.create(workspace=workspace, contact=other, owner=owner, reason="Score 110")
    earlier = timezone.now() - timedelta(days=3)
    ScoreDecay.objects.create(workspace=workspace, contact=other, decayed_at=earlier)

    merge.merge_contacts(primary=kept, other=other)

    assert {(p.rule_id, p.period_start, p.points) for p in points.filter(contact=kept)} == {
        (views.pk, week, 25),  # the cap counts what the person earned
        (firm.pk, WHILE_TRUE, 5),  # while the kept record's condition holds: once
        (opens.pk, week, 3),
    }
    assert points.count() == 3
    assert Handoff.objects.for_workspace(workspace).get().contact_id == kept.pk
    assert ScoreDecay.objects.for_workspace(workspace).get().contact_id == kept.pk
