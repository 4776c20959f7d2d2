"""Lifecycle rules: thresholds that fire once per crossing, forms, deals, never backwards."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.activity.services import record
from patron.automation import lifecycle, scoring
from patron.automation.models import LifecycleTrigger, ScoringRuleKind
from patron.crm import services as crm
from patron.crm.models import Contact, LifecycleStage, Stage, StageOutcome
from tests.factories import make_pipeline

pytestmark = pytest.mark.django_db


def stage_of(contact) -> str:
    return Contact.objects.for_workspace(contact.workspace_id).get(pk=contact.pk).lifecycle_stage


def moves(contact) -> list[dict]:
    return list(
        Event.objects.for_workspace(contact.workspace_id)
        .filter(kind="contact.lifecycle_changed", contact_id=contact.pk)
        .order_by("id")
        .values_list("properties", flat=True)
    )


@pytest.fixture
def contact(workspace):
    return crm.create_contact(
        workspace=workspace, first_name="Ann", email="ann@x.test", lifecycle_stage="lead"
    )


def test_score_threshold_moves_to_mql_once_per_crossing(workspace, contact):
    lifecycle.save_lifecycle_rule(
        workspace=workspace, trigger=LifecycleTrigger.SCORE, threshold=50, stage="mql"
    )
    scoring.save_scoring_rule(
        workspace=workspace,
        name="Download",
        kind=ScoringRuleKind.BEHAVIOUR,
        points=40,
        event_kind="file.downloaded",
    )
    record(workspace=workspace, kind="file.downloaded", contact_id=contact.pk)
    scoring.follow_activity()
    assert stage_of(contact) == "lead"
    record(workspace=workspace, kind="file.downloaded", contact_id=contact.pk)
    scoring.follow_activity()
    assert stage_of(contact) == LifecycleStage.MQL
    assert moves(contact)[-1] == {"from": "lead", "to": "mql", "reason": "Score reached 50"}
    # Sales sends them back; staying above the threshold does not fire again.
    crm.set_lifecycle_stage(contact=contact, stage="lead", reason="not yet")
    record(workspace=workspace, kind="file.downloaded", contact_id=contact.pk)
    scoring.follow_activity()
    assert stage_of(contact) == "lead"
    # Dropping below and climbing back over is a new crossing.
    crm.change_score(contact=contact, points=-100, reason="by hand")
    record(workspace=workspace, kind="file.downloaded", contact_id=contact.pk)
    record(workspace=workspace, kind="file.downloaded", contact_id=contact.pk)
    scoring.follow_activity()
    assert stage_of(contact) == "mql"


def test_rules_never_move_a_contact_backwards(workspace, contact):
    lifecycle.save_lifecycle_rule(
        workspace=workspace, trigger=LifecycleTrigger.SCORE, threshold=10, stage="mql"
    )
    crm.set_lifecycle_stage(contact=contact, stage="customer", reason="bought")
    crm.change_score(contact=contact, points=20, reason="by hand")
    scoring.follow_activity()
    assert stage_of(contact) == "customer"
    other = crm.create_contact(
        workspace=workspace, first_name="Partner", email="p@x.test", lifecycle_stage="other"
    )
    crm.change_score(contact=other, points=20, reason="by hand")
    scoring.follow_activity()
    assert stage_of(other) == "other"
    assert lifecycle.is_forward("lead", "mql") and not lifecycle.is_forward("sql", "mql")


def test_form_submission_moves_to_the_rules_stage(workspace, contact):
    from patron.capture.models import Form

    demo = Form.objects.create(workspace=workspace, name="Request a demo")
    lifecycle.save_lifecycle_rule(
        workspace=workspace, trigger=LifecycleTrigger.FORM, form=demo, stage="sql"
    )
    record(
        workspace=workspace,
        kind="form.submitted",
        contact_id=contact.pk,
        properties={"form_id": demo.pk + 1, "form": "Newsletter"},
    )
    scoring.follow_activity()
    assert stage_of(contact) == "lead"
    record(
        workspace=workspace,
        kind="form.submitted",
        contact_id=contact.pk,
        properties={"form_id": demo.pk, "form": "Request a demo"},
    )
    scoring.follow_activity()
    assert stage_of(contact) == "sql"
    assert moves(contact)[-1]["reason"] == "Form submitted: Request a demo"


def test_deal_opened_and_won(workspace, contact):
    lifecycle.save_lifecycle_rule(
        workspace=workspace, trigger=LifecycleTrigger.DEAL_OPENED, stage="opportunity"
    )
    lifecycle.save_lifecycle_rule(
        workspace=workspace, trigger=LifecycleTrigger.DEAL_WON, stage="customer"
    )
    pipeline = make_pipeline(workspace)
    deal = crm.create_deal(
        workspace=workspace, name="ACME licence", pipeline=pipeline, contacts=[contact]
    )
    scoring.follow_activity()
    assert stage_of(contact) == "opportunity"
    won = (
        Stage.objects.for_workspace(workspace)
        .filter(pipeline=pipeline, outcome=StageOutcome.WON)
        .first()
    )
    crm.move_deal(deal=deal, stage=won)
    scoring.follow_activity()
    assert stage_of(contact) == "customer"
    assert moves(contact)[-1]["reason"] == "Deal won: ACME licence"


def test_bad_lifecycle_rules_are_refused(workspace):
    with pytest.raises(lifecycle.LifecycleRuleInvalid) as caught:
        lifecycle.save_lifecycle_rule(workspace=workspace, trigger="score", stage="other")
    assert set(caught.value.errors) == {"stage", "threshold"}
    with pytest.raises(lifecycle.LifecycleRuleInvalid) as caught:
        lifecycle.save_lifecycle_rule(workspace=workspace, trigger="form", stage="mql")
    assert set(caught.value.errors) == {"form"}
