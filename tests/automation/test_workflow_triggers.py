"""Workflow triggers: each kind enrols through the activity-log consumer (or the date job)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from patron.activity.services import record
from patron.audience import lists, segment_services
from patron.audience.models import ConsentSource
from patron.automation import engine
from patron.automation.models import Enrolment
from patron.capture import services as capture
from patron.crm import services as crm
from patron.crm.models import Contact
from tests.automation.workflow_helpers import published
from tests.factories import make_pipeline

pytestmark = pytest.mark.django_db

TAG = [{"id": "t", "type": "wait", "days": 30}]


@pytest.fixture
def ann(workspace):
    return crm.create_contact(workspace=workspace, first_name="Ann", email="ann@example.net")


def enrolled(workflow) -> list[int]:
    return sorted(
        Enrolment.objects.for_workspace(workflow.workspace_id)
        .filter(workflow=workflow)
        .values_list("contact_id", flat=True)
    )


def test_form_submitted(workspace, settings):
    settings.FORMS_MIN_FILL_SECONDS = 0
    form = capture.create_form(
        workspace=workspace,
        name="Ebook",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email", "required": True}],
    )
    other = capture.create_form(
        workspace=workspace,
        name="Other",
        fields=[{"key": "email", "label": "Email", "maps_to": "contact.email", "required": True}],
    )
    workflow = published(workspace, TAG, trigger={"type": "form_submitted", "form": form.pk})
    capture.submit_form(form=form, data={"email": "reader@example.net"})
    capture.submit_form(form=other, data={"email": "other@example.net"})
    engine.follow_activity()
    reader = Contact.objects.for_workspace(workspace).get(email="reader@example.net")
    assert enrolled(workflow) == [reader.pk]
    # The same events are not read twice.
    engine.follow_activity()
    assert enrolled(workflow) == [reader.pk]


def test_segment_entered_and_left(workspace, ann):
    segment = segment_services.create_segment(
        workspace=workspace,
        name="Berliners",
        definition={
            "match": "all",
            "conditions": [{"type": "field", "field": "city", "op": "eq", "value": "Berlin"}],
        },
    )
    segment_services.refresh_segment(segment)  # the baseline
    entered = published(
        workspace, TAG, trigger={"type": "segment_entered", "segment": segment.pk}, name="In"
    )
    left = published(
        workspace, TAG, trigger={"type": "segment_left", "segment": segment.pk}, name="Out"
    )
    crm.update_contact(contact=ann, city="Berlin")
    segment_services.consume_activity()
    engine.follow_activity()
    assert enrolled(entered) == [ann.pk] and enrolled(left) == []
    crm.update_contact(contact=ann, city="Porto")
    segment_services.consume_activity()
    engine.follow_activity()
    assert enrolled(left) == [ann.pk]


def test_list_joined(workspace, ann):
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    workflow = published(workspace, TAG, trigger={"type": "list_joined", "list": newsletter.pk})
    lists.subscribe(
        mailing_list=newsletter, contact=ann, consent=lists.Consent(source=ConsentSource.MANUAL)
    )
    engine.follow_activity()
    assert enrolled(workflow) == [ann.pk]


def test_a_custom_event_from_the_api_with_a_property_filter(workspace, ann, api):
    bob = crm.create_contact(workspace=workspace, email="bob@example.net")
    workflow = published(
        workspace,
        TAG,
        trigger={
            "type": "event",
            "kind": "custom.event",
            "filters": [{"property": "name", "op": "eq", "value": "cart_abandoned"}],
        },
    )
    response = api.post(
        "/api/v1/events",
        {"kind": "custom.event", "contact_id": ann.pk, "properties": {"name": "cart_abandoned"}},
    )
    assert response.status_code == 201
    api.post(
        "/api/v1/events",
        {"kind": "custom.event", "contact_id": bob.pk, "properties": {"name": "order_placed"}},
    )
    engine.follow_activity()
    assert enrolled(workflow) == [ann.pk]


def test_field_changed_to_a_value(workspace, ann):
    workflow = published(
        workspace, TAG, trigger={"type": "field_changed", "field": "job_title", "to": "CTO"}
    )
    crm.update_contact(contact=ann, job_title="Engineer")
    engine.follow_activity()
    assert enrolled(workflow) == []
    crm.update_contact(contact=ann, job_title="CTO")
    engine.follow_activity()
    assert enrolled(workflow) == [ann.pk]


def test_deal_stage_changed(workspace, ann):
    pipeline = make_pipeline(workspace)
    stages = list(pipeline.stages.order_by("position"))
    workflow = published(
        workspace,
        TAG,
        trigger={"type": "deal_stage", "pipeline": pipeline.pk, "stage": stages[1].name},
    )
    deal = crm.create_deal(workspace=workspace, name="Big order", pipeline=pipeline, contacts=[ann])
    crm.move_deal(deal=deal, stage=stages[1])
    engine.follow_activity()
    assert enrolled(workflow) == [ann.pk]


def test_score_crossed_upwards(workspace, ann):
    workflow = published(
        workspace, TAG, trigger={"type": "score_crossed", "threshold": 50, "direction": "up"}
    )
    crm.change_score(contact=ann, points=30, reason="pages")
    engine.follow_activity()
    assert enrolled(workflow) == []
    crm.change_score(contact=ann, points=25, reason="demo")
    engine.follow_activity()
    assert enrolled(workflow) == [ann.pk]
    crm.change_score(contact=ann, points=-10, reason="decay")
    crm.change_score(contact=ann, points=10, reason="webinar")
    engine.follow_activity()
    assert enrolled(workflow) == [ann.pk]  # once: the rule is "never again"


def test_paused_workflows_do_not_enrol(workspace, ann):
    from patron.automation import workflows

    workflow = published(workspace, TAG, trigger={"type": "event", "kind": "page.viewed"})
    workflows.pause_workflow(workflow=workflow)
    record(workspace=workspace, kind="page.viewed", contact_id=ann.pk)
    engine.follow_activity()
    assert enrolled(workflow) == []


def test_yearly_birthday_at_the_local_hour(workspace, ann):
    ann.birthday = date(1990, 12, 24)
    ann.time_zone = "Asia/Tokyo"
    ann.save()
    leap = crm.create_contact(workspace=workspace, email="leap@example.net")
    leap.birthday = date(1992, 2, 29)
    leap.time_zone = "Asia/Tokyo"
    leap.save()
    workflow = published(
        workspace, TAG, trigger={"type": "date", "field": "birthday", "hour": 9}, name="Birthday"
    )
    # 23 December 23:00 UTC is 24 December 08:00 in Tokyo: not the hour yet.
    assert engine.enrol_by_date(datetime(2026, 12, 23, 23, 0, tzinfo=UTC)) == 0
    assert engine.enrol_by_date(datetime(2026, 12, 24, 0, 30, tzinfo=UTC)) == 1
    assert engine.enrol_by_date(datetime(2026, 12, 24, 5, 0, tzinfo=UTC)) == 0  # once a day
    assert enrolled(workflow) == [ann.pk]
    # Next year again, after the first enrolment finished.
    Enrolment.objects.for_workspace(workspace).update(status="completed")
    assert engine.enrol_by_date(datetime(2027, 12, 24, 1, 0, tzinfo=UTC)) == 1
    # A 29 February birthday on 28 February of a common year.
    assert engine.enrol_by_date(datetime(2027, 2, 28, 1, 0, tzinfo=UTC)) == 1
    assert leap.pk in enrolled(workflow)


def test_manual_and_api_enrolment_only(workspace, ann):
    from patron.automation import workflows

    workflow = published(workspace, TAG)
    record(workspace=workspace, kind="page.viewed", contact_id=ann.pk)
    engine.follow_activity()
    assert enrolled(workflow) == []
    workflows.enrol_contact(workflow=workflow, contact=ann)
    assert enrolled(workflow) == [ann.pk]
    with pytest.raises(workflows.WorkflowInvalid):
        workflows.enrol_contact(workflow=workflow, contact=ann)


def test_the_periodic_jobs_enrol_and_run_steps(workspace, ann):
    from patron.automation import workflow_tasks
    from patron.core.scheduler import PERIODIC_JOBS

    names = {job.task.module_path for job in PERIODIC_JOBS.values()}
    assert {
        "patron.automation.workflow_tasks.advance_workflows",
        "patron.automation.workflow_tasks.follow_activity_for_workflows",
        "patron.automation.workflow_tasks.enrol_on_dates",
    } <= names
    published(
        workspace,
        [{"id": "t", "type": "add_tag", "tag": "viewer"}],
        trigger={"type": "event", "kind": "page.viewed"},
    )
    record(workspace=workspace, kind="page.viewed", contact_id=ann.pk, properties={"url": "/"})
    assert workflow_tasks.follow_activity_for_workflows.call() >= 1
    assert workflow_tasks.advance_workflows.call() == 1
    assert list(ann.tags.values_list("name", flat=True)) == ["viewer"]
