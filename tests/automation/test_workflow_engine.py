"""The workflow engine: steps, timers, branches, at-most-once, retries, versions, pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.utils import timezone

from patron.activity.services import record
from patron.automation import engine, workflows
from patron.automation.models import Enrolment, EnrolmentStatus, StepRun, StepRunStatus
from patron.crm import services as crm
from patron.crm.models import Contact, Tag
from patron.mail.models import Delivery
from tests.automation.workflow_helpers import history, published, run, template
from tests.mail.campaign_setup import verified_sender

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(workspace):
    return crm.create_contact(workspace=workspace, first_name="Ann", email="ann@example.net")


def tags_of(contact: Contact) -> list[str]:
    return sorted(contact.tags.values_list("name", flat=True))


def test_a_contact_runs_through_wait_if_email_and_tag(workspace, ann):
    verified_sender(workspace)
    email = template(workspace)
    workflow = published(
        workspace,
        [
            {"id": "w1", "type": "wait", "days": 1},
            {
                "id": "if1",
                "type": "if",
                "condition": {
                    "type": "segment",
                    "definition": {
                        "match": "all",
                        "conditions": [
                            {"type": "field", "field": "first_name", "op": "eq", "value": "Ann"}
                        ],
                    },
                },
                "yes": [{"id": "m1", "type": "send_email", "template": email.pk}],
                "no": [{"id": "t0", "type": "add_tag", "tag": "not ann"}],
            },
            {"id": "t1", "type": "add_tag", "tag": "welcomed"},
        ],
    )
    enrolment = workflows.enrol_contact(workflow=workflow, contact=ann)
    start = timezone.now()
    run(workspace, now=start)
    enrolment.refresh_from_db()
    assert enrolment.last_error == ""
    assert enrolment.step == "w1" and enrolment.waiting_for == engine.TIMER
    assert enrolment.next_wake_at > start + timedelta(hours=23)
    # Not yet: the timer holds.
    assert run(workspace, now=start + timedelta(hours=12)) == 0
    run(workspace, now=start + timedelta(days=1, minutes=1))
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.COMPLETED
    assert [step for step, _r in history(enrolment)] == ["w1", "if1", "m1", "t1"]
    assert history(enrolment)[1][1] == {"branch": "yes"}
    assert tags_of(ann) == ["welcomed"]
    delivery = Delivery.objects.for_workspace(workspace).get(contact_id=ann.pk)
    assert history(enrolment)[2][1]["delivery"] == delivery.pk


def test_a_crash_after_the_action_undoes_it_and_the_rerun_acts_once(workspace, ann):
    workflow = published(
        workspace,
        [
            {"id": "t1", "type": "add_tag", "tag": "vip"},
            {"id": "s1", "type": "change_score", "points": 10},
        ],
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    real_apply = engine._apply

    def crash(group, rows, moves):
        real_apply(group, rows, moves)
        raise RuntimeError("power cut")

    with mock.patch.object(engine, "_apply", crash):
        engine.run_due(workspace, now=now)
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    assert tags_of(ann) == [] and not StepRun.objects.for_workspace(workspace).exists()
    assert enrolment.attempts == 1 and "power cut" in enrolment.last_error
    # The retry comes after its backoff, and acts once.
    run(workspace, now=now + timedelta(minutes=2))
    ann.refresh_from_db()
    assert tags_of(ann) == ["vip"] and ann.score == 10
    assert StepRun.objects.for_workspace(workspace).count() == 2


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite claims with a lease")
def test_a_worker_killed_between_claim_and_commit_leaves_a_lease_that_runs_out(workspace, ann):
    workflow = published(workspace, [{"id": "s1", "type": "change_score", "points": 5}])
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    with transaction.atomic():
        claimed = engine.claim(workspace.pk, now=now)
    assert len(claimed) == 1  # ... and the worker dies here
    assert engine.run_due(workspace, now=now + timedelta(minutes=1)).claimed == 0
    run(workspace, now=now + engine.LEASE + timedelta(seconds=1))
    ann.refresh_from_db()
    assert ann.score == 5
    # A late second worker with the same claim finds the step run there: nothing twice.
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    group = engine.Group(
        workspace=workspace,
        workflow=workflow,
        version=workflow.published,
        step=workflow.published.graph["steps"][0],
        rows=claimed,
        now=now,
        successors={"s1": ""},
        steps={},
    )
    engine.run_group(group)
    ann.refresh_from_db()
    enrolment.refresh_from_db()
    assert ann.score == 5 and enrolment.last_error == "" and enrolment.attempts == 0
    assert (
        StepRun.objects.for_workspace(workspace).filter(status=StepRunStatus.COMPLETED).count() == 1
    )
    assert enrolment.status == EnrolmentStatus.COMPLETED


def test_a_worker_killed_after_claiming_takes_its_claim_with_it(workspace, ann):
    """Killed between claim and commit: PostgreSQL's row locks go with the transaction;
    SQLite's lease runs out. Either way the step then runs, once."""
    workflow = published(workspace, [{"id": "s1", "type": "change_score", "points": 5}])
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()

    class Killed(BaseException):
        pass

    with mock.patch.object(engine, "_run_claimed", side_effect=Killed), pytest.raises(Killed):
        engine.run_due(workspace, now=now)
    ann.refresh_from_db()
    assert ann.score == 0
    later = now + (
        engine.LEASE + timedelta(seconds=1) if connection.vendor == "sqlite" else timedelta(0)
    )
    run(workspace, now=later)
    run(workspace, now=later + timedelta(hours=1))
    ann.refresh_from_db()
    assert ann.score == 5
    assert StepRun.objects.for_workspace(workspace).count() == 1


def test_an_email_step_rerun_after_a_crash_queues_one_delivery(workspace, ann):
    verified_sender(workspace)
    email = template(workspace)
    workflow = published(workspace, [{"id": "m1", "type": "send_email", "template": email.pk}])
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    with mock.patch.object(engine, "_apply", side_effect=RuntimeError("crash")):
        engine.run_due(workspace, now=now)
    assert not Delivery.objects.for_workspace(workspace).exists()
    run(workspace, now=now + timedelta(minutes=5))
    run(workspace, now=now + timedelta(minutes=10))
    assert Delivery.objects.for_workspace(workspace).filter(contact_id=ann.pk).count() == 1


def test_failures_are_retried_with_backoff_then_shown_on_the_enrolment(workspace, ann, owner):
    workflow = published(workspace, [{"id": "a1", "type": "assign_owner", "user": owner.pk}])
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    with mock.patch("patron.crm.services.update_contact", side_effect=RuntimeError("CRM is down")):
        waits = []
        for _ in range(engine.MAX_ATTEMPTS):
            engine.run_due(workspace, now=now)
            enrolment = Enrolment.objects.for_workspace(workspace).get()
            if enrolment.next_wake_at:
                waits.append(enrolment.next_wake_at - now)
                now = enrolment.next_wake_at
    enrolment.refresh_from_db()
    assert waits == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=8),
    ]
    assert enrolment.status == EnrolmentStatus.FAILED
    assert "CRM is down" in enrolment.last_error
    failed = StepRun.objects.for_workspace(workspace).get()
    assert failed.status == StepRunStatus.FAILED and "CRM is down" in failed.error


def test_one_failing_contact_does_not_hold_back_the_group(workspace, ann):
    bob = crm.create_contact(workspace=workspace, first_name="Bob", email="bob@example.net")
    workflow = published(
        workspace, [{"id": "t1", "type": "update_field", "field": "job_title", "value": "Reader"}]
    )
    for contact in (ann, bob):
        workflows.enrol_contact(workflow=workflow, contact=contact)
    real = crm.update_contact

    def picky(*, contact, **values):
        if contact.first_name == "Bob":
            raise ValueError("Bob refuses")
        return real(contact=contact, **values)

    with mock.patch("patron.crm.services.update_contact", picky):
        engine.run_due(workspace)
    ann.refresh_from_db()
    assert ann.job_title == "Reader"
    bob_enrolment = Enrolment.objects.for_workspace(workspace).get(contact_id=bob.pk)
    assert (
        bob_enrolment.status == EnrolmentStatus.ACTIVE and "Bob refuses" in bob_enrolment.last_error
    )


def test_a_day_wait_keeps_the_local_hour_across_a_dst_change(workspace, ann):
    ann.time_zone = "Europe/Lisbon"
    ann.save()
    workflow = published(
        workspace,
        [{"id": "w", "type": "wait", "days": 1}, {"id": "t", "type": "add_tag", "tag": "x"}],
    )
    # Saturday 28 March 2026, 09:00 in Lisbon (UTC+0); the clocks go forward that night.
    start = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    engine.enrol_contacts(workflow=workflow, contact_ids=[ann.pk], now=start)
    engine.run_due(workspace, now=start)
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    local = enrolment.next_wake_at.astimezone(ZoneInfo("Europe/Lisbon"))
    assert (local.day, local.hour) == (29, 9)
    assert enrolment.next_wake_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # 23 hours later


def test_wall_clock_arithmetic_in_a_gap_and_autumn():
    zone = ZoneInfo("America/New_York")
    # 2026-11-01 01:30 happens twice; a day after 31 October 01:30 EDT is 01:30 local, the first.
    start = datetime(2026, 10, 31, 5, 30, tzinfo=UTC)
    after = engine.add_wait(start, zone, days=1, hours=0, minutes=0)
    assert after.astimezone(zone).hour == 1 and after - start == timedelta(hours=24)
    # 2026-03-08 02:30 does not exist there: moved past the gap.
    before_gap = datetime(2026, 3, 7, 7, 30, tzinfo=UTC)  # 02:30 EST
    moved = engine.add_wait(before_gap, zone, days=1, hours=0, minutes=0)
    assert moved.astimezone(zone).hour == 3


def test_wait_until_weekday_hour_in_the_contacts_zone(workspace, ann):
    ann.time_zone = "Asia/Tokyo"
    ann.save()
    workflow = published(
        workspace, [{"id": "w", "type": "wait_until", "mode": "weekday", "weekday": 0, "hour": 9}]
    )
    thursday = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    engine.enrol_contacts(workflow=workflow, contact_ids=[ann.pk], now=thursday)
    engine.run_due(workspace, now=thursday)
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    local = enrolment.next_wake_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.weekday(), local.hour, local.day) == (0, 9, 7)


def test_wait_until_a_date_and_time(workspace, ann):
    ann.time_zone = "America/Sao_Paulo"
    ann.save()
    workflow = published(
        workspace, [{"id": "w", "type": "wait_until", "mode": "datetime", "at": "2026-12-24T18:00"}]
    )
    start = datetime(2026, 12, 3, tzinfo=UTC)
    engine.enrol_contacts(workflow=workflow, contact_ids=[ann.pk], now=start)
    engine.run_due(workspace, now=start)
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    assert enrolment.next_wake_at == datetime(2026, 12, 24, 21, 0, tzinfo=UTC)


def test_wait_until_an_open_with_a_timeout(workspace, ann):
    bob = crm.create_contact(workspace=workspace, first_name="Bob", email="bob@example.net")
    workflow = published(
        workspace,
        [
            {
                "id": "w",
                "type": "wait_until",
                "mode": "event",
                "kind": "email.opened",
                "timeout_days": 3,
            },
            {"id": "t", "type": "add_tag", "tag": "done"},
        ],
    )
    for contact in (ann, bob):
        workflows.enrol_contact(workflow=workflow, contact=contact)
    now = timezone.now()
    engine.run_due(workspace, now=now)
    opened = record(
        workspace=workspace, kind="email.opened", contact_id=ann.pk, properties={"campaign": 1}
    )
    engine.handle_events([opened])
    run(workspace, now=now + timedelta(minutes=1))
    ann_enrolment = Enrolment.objects.for_workspace(workspace).get(contact_id=ann.pk)
    assert ann_enrolment.status == EnrolmentStatus.COMPLETED
    assert history(ann_enrolment)[0][1] == {"event": True, "timed_out": False}
    bob_enrolment = Enrolment.objects.for_workspace(workspace).get(contact_id=bob.pk)
    assert bob_enrolment.status == EnrolmentStatus.ACTIVE
    run(workspace, now=now + timedelta(days=3, minutes=1))
    bob_enrolment.refresh_from_db()
    assert bob_enrolment.status == EnrolmentStatus.COMPLETED
    assert history(bob_enrolment)[0][1] == {"event": False, "timed_out": True}


def test_if_opened_the_last_email_of_this_workflow(workspace, ann):
    verified_sender(workspace)
    bob = crm.create_contact(workspace=workspace, first_name="Bob", email="bob@example.net")
    email = template(workspace)
    workflow = published(
        workspace,
        [
            {"id": "m", "type": "send_email", "template": email.pk},
            {"id": "w", "type": "wait", "hours": 1},
            {
                "id": "if",
                "type": "if",
                "condition": {"type": "opened_last_email"},
                "yes": [{"id": "y", "type": "add_tag", "tag": "opened"}],
                "no": [{"id": "n", "type": "add_tag", "tag": "not opened"}],
            },
        ],
    )
    for contact in (ann, bob):
        workflows.enrol_contact(workflow=workflow, contact=contact)
    now = timezone.now()
    run(workspace, now=now)
    campaign_id = Delivery.objects.for_workspace(workspace).get(contact_id=ann.pk).campaign_id
    record(
        workspace=workspace,
        kind="email.opened",
        contact_id=ann.pk,
        source=("mail.campaign", campaign_id),
        properties={"campaign": campaign_id},
    )
    run(workspace, now=now + timedelta(hours=2))
    assert tags_of(ann) == ["opened"]
    assert tags_of(bob) == ["not opened"]


def test_if_clicked_a_link_since_entering(workspace, ann):
    record(
        workspace=workspace,
        kind="email.clicked",
        contact_id=ann.pk,
        properties={"url": "https://x.example/pricing"},
        occurred_at=timezone.now() - timedelta(days=5),
    )
    workflow = published(
        workspace,
        [
            {
                "id": "if",
                "type": "if",
                "condition": {"type": "clicked_link", "url_contains": "pricing"},
                "yes": [{"id": "y", "type": "add_tag", "tag": "yes"}],
                "no": [{"id": "n", "type": "add_tag", "tag": "no"}],
            },
        ],
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    run(workspace)
    assert tags_of(ann) == ["no"]  # the click came before entering


def test_a_b_split_is_deterministic_and_near_the_share(workspace):
    workflow = published(
        workspace,
        [
            {
                "id": "sp",
                "type": "split",
                "percent_a": 30,
                "a": [{"id": "a1", "type": "add_tag", "tag": "A"}],
                "b": [{"id": "b1", "type": "add_tag", "tag": "B"}],
            },
        ],
        settings={"reenrol": "always"},
    )
    contacts = [
        crm.create_contact(workspace=workspace, email=f"p{n}@example.net") for n in range(200)
    ]
    engine.enrol_contacts(workflow=workflow, contact_ids=[c.pk for c in contacts])
    run(workspace)
    a = Tag.objects.for_workspace(workspace).get(name="A").contacts.count()
    assert 35 <= a <= 85
    for enrolment in Enrolment.objects.for_workspace(workspace):
        branch = history(enrolment)[0][1]["branch"]
        assert branch == ("a" if engine.split_bucket(enrolment.pk, "sp") < 30 else "b")


def test_branches_rejoin_after_the_if_and_exit_stops(workspace, ann):
    workflow = published(
        workspace,
        [
            {
                "id": "if",
                "type": "if",
                "condition": {"type": "event_since", "kind": "page.viewed"},
                "yes": [],
                "no": [{"id": "n", "type": "add_tag", "tag": "n"}, {"id": "x", "type": "exit"}],
            },
            {"id": "after", "type": "add_tag", "tag": "after"},
        ],
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    run(workspace)
    assert tags_of(ann) == ["n"]
    assert Enrolment.objects.for_workspace(workspace).get().status == EnrolmentStatus.EXITED


def test_re_enrolment_rules(workspace, ann):
    once = published(workspace, [{"id": "t", "type": "add_tag", "tag": "a"}], name="Once")
    always = published(
        workspace,
        [{"id": "w", "type": "wait", "days": 2}],
        name="Always",
        settings={"reenrol": "always"},
    )
    after = published(
        workspace,
        [{"id": "t", "type": "add_tag", "tag": "b"}],
        name="After",
        settings={"reenrol": "after", "reenrol_days": 30},
    )
    now = timezone.now()
    for workflow in (once, always, after):
        assert engine.enrol_contacts(workflow=workflow, contact_ids=[ann.pk], now=now) == [ann.pk]
    run(workspace, now=now)
    assert (
        engine.enrol_contacts(workflow=once, contact_ids=[ann.pk], now=now + timedelta(days=400))
        == []
    )
    # Always: not while inside (waiting two days), but again once out.
    assert (
        engine.enrol_contacts(workflow=always, contact_ids=[ann.pk], now=now + timedelta(hours=1))
        == []
    )
    run(workspace, now=now + timedelta(days=3))
    assert engine.enrol_contacts(
        workflow=always, contact_ids=[ann.pk], now=now + timedelta(days=3)
    ) == [ann.pk]
    assert (
        engine.enrol_contacts(workflow=after, contact_ids=[ann.pk], now=now + timedelta(days=10))
        == []
    )
    assert engine.enrol_contacts(
        workflow=after, contact_ids=[ann.pk], now=now + timedelta(days=31)
    ) == [ann.pk]
    rounds = sorted(
        Enrolment.objects.for_workspace(workspace)
        .filter(workflow=always)
        .values_list("round", flat=True)
    )
    assert rounds == [1, 2]


def test_an_edited_live_workflow_keeps_running_contacts_on_their_version(workspace, ann):
    bob = crm.create_contact(workspace=workspace, first_name="Bob", email="bob@example.net")
    workflow = published(
        workspace,
        [{"id": "w", "type": "wait", "days": 1}, {"id": "t", "type": "add_tag", "tag": "old"}],
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    run(workspace, now=now)
    workflows.update_workflow(
        workflow=workflow,
        graph={
            **workflow.draft,
            "steps": [
                {"id": "w", "type": "wait", "days": 1},
                {"id": "t2", "type": "add_tag", "tag": "new"},
            ],
        },
    )
    version = workflows.publish_workflow(workflow=workflow)
    assert version.number == 2
    workflows.enrol_contact(workflow=workflow, contact=bob)
    later = timezone.now()
    run(workspace, now=later)
    run(workspace, now=later + timedelta(days=2))
    assert tags_of(ann) == ["old"]
    assert tags_of(bob) == ["new"]
    assert workflow.versions.get(number=1).graph["steps"][1]["tag"] == "old"  # never changed


def test_pause_holds_the_timers_and_resume_fires_them_late(workspace, ann):
    workflow = published(
        workspace,
        [{"id": "w", "type": "wait", "hours": 1}, {"id": "t", "type": "add_tag", "tag": "late"}],
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    run(workspace, now=now)
    workflows.pause_workflow(workflow=workflow)
    assert run(workspace, now=now + timedelta(hours=5)) == 0
    assert tags_of(ann) == []
    with pytest.raises(workflows.WorkflowInvalid):
        workflows.enrol_contact(
            workflow=workflow,
            contact=crm.create_contact(workspace=workspace, email="z@example.net"),
        )
    workflows.resume_workflow(workflow=workflow)
    run(workspace, now=now + timedelta(hours=5))
    assert tags_of(ann) == ["late"]


def test_the_goal_takes_contacts_out(workspace, ann):
    workflow = published(
        workspace,
        [{"id": "w", "type": "wait", "days": 3}, {"id": "t", "type": "add_tag", "tag": "nudged"}],
        settings={
            "goal": {
                "match": "all",
                "conditions": [
                    {"type": "field", "field": "lifecycle_stage", "op": "in", "value": ["customer"]}
                ],
            }
        },
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    run(workspace, now=now)
    crm.set_lifecycle_stage(contact=ann, stage="customer")
    assert engine.check_goals(workspace, now) == 1
    assert Enrolment.objects.for_workspace(workspace).get().status == EnrolmentStatus.GOAL
    run(workspace, now=now + timedelta(days=4))
    assert tags_of(ann) == []


def test_the_schedule_window_holds_actions_until_it_opens(workspace, ann):
    ann.time_zone = "Europe/Berlin"
    ann.save()
    workflow = published(
        workspace,
        [{"id": "t", "type": "add_tag", "tag": "office"}],
        settings={"window": {"days": [0, 1, 2, 3, 4], "start_hour": 9, "end_hour": 17}},
    )
    saturday = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    engine.enrol_contacts(workflow=workflow, contact_ids=[ann.pk], now=saturday)
    engine.run_due(workspace, now=saturday)
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    assert enrolment.next_wake_at == datetime(
        2026, 12, 7, 8, 0, tzinfo=UTC
    )  # Monday 09:00 in Berlin
    run(workspace, now=datetime(2026, 12, 7, 8, 1, tzinfo=UTC))
    assert tags_of(ann) == ["office"]


def test_a_deleted_contact_leaves_the_workflow(workspace, ann):
    workflow = published(
        workspace,
        [{"id": "w", "type": "wait", "hours": 1}, {"id": "t", "type": "add_tag", "tag": "x"}],
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    now = timezone.now()
    run(workspace, now=now)
    crm.delete_contact(contact=ann)
    run(workspace, now=now + timedelta(hours=2))
    assert Enrolment.objects.for_workspace(workspace).get().status == EnrolmentStatus.EXITED


def test_if_in_a_saved_segment_and_clicked_the_last_email(workspace, ann):
    from patron.audience import segment_services

    verified_sender(workspace)
    bob = crm.create_contact(workspace=workspace, first_name="Bob", email="bob@example.net")
    segment = segment_services.create_segment(
        workspace=workspace,
        name="Anns",
        definition={
            "match": "all",
            "conditions": [{"type": "field", "field": "first_name", "op": "eq", "value": "Ann"}],
        },
    )
    email = template(workspace)
    workflow = published(
        workspace,
        [
            {
                "id": "seg",
                "type": "if",
                "condition": {"type": "in_segment", "segment": segment.pk},
                "yes": [{"id": "y", "type": "add_tag", "tag": "in segment"}],
                "no": [],
            },
            {"id": "m", "type": "send_email", "template": email.pk},
            {"id": "w", "type": "wait", "hours": 1},
            {
                "id": "clk",
                "type": "if",
                "condition": {"type": "clicked_last_email"},
                "yes": [{"id": "c", "type": "add_tag", "tag": "clicked"}],
                "no": [],
            },
        ],
    )
    for contact in (ann, bob):
        workflows.enrol_contact(workflow=workflow, contact=contact)
    now = timezone.now()
    run(workspace, now=now)
    campaign_id = Delivery.objects.for_workspace(workspace).get(contact_id=bob.pk).campaign_id
    record(
        workspace=workspace,
        kind="email.clicked",
        contact_id=bob.pk,
        source=("mail.campaign", campaign_id),
        properties={"campaign": campaign_id, "url": "https://example.com/guide"},
    )
    run(workspace, now=now + timedelta(hours=2))
    assert tags_of(ann) == ["in segment"]
    assert tags_of(bob) == ["clicked"]
