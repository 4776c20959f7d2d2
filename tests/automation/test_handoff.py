"""Hand-off to sales: owner, task, notification and email, accept/reject, time to first touch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from patron.activity.models import Event
from patron.activity.services import record
from patron.automation import handoff as handoffs
from patron.automation import scoring
from patron.automation.models import Handoff, HandoffStatus
from patron.core.models import Notification
from patron.core.roles import Role
from patron.crm import assignment
from patron.crm import services as crm
from patron.crm.models import AssignmentStrategy, Contact, Task
from patron.mail.models import OutboxMessage
from tests.conftest import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def seller(workspace):
    return member(workspace, Role.SALES, email="sam@acme.example")


@pytest.fixture
def rule(workspace, seller):
    return assignment.save_rule(
        workspace=workspace,
        object_type="contact",
        name="All leads",
        conditions=[],
        strategy=AssignmentStrategy.USER,
        user=seller,
    )


@pytest.fixture
def contact(workspace):
    return crm.create_contact(
        workspace=workspace,
        first_name="Ann",
        last_name="Lee",
        email="ann@x.test",
        lifecycle_stage="lead",
    )


def become_mql(contact, django_capture_on_commit_callbacks):
    crm.set_lifecycle_stage(contact=contact, stage="mql", reason="Score reached 100")
    with django_capture_on_commit_callbacks(execute=True):
        scoring.follow_activity()
    return Handoff.objects.for_workspace(contact.workspace_id).get(contact=contact)


def test_the_follow_up_can_be_due_in_business_hours(
    workspace, contact, seller, rule, django_capture_on_commit_callbacks
):
    # Friday 16:00 UTC with 4 business hours (Monday to Friday, 9 to 17, the default):
    # one hour on Friday, three on Monday.
    workspace.time_zone = "UTC"
    workspace.save(update_fields=["time_zone"])
    scoring.update_scoring_settings(
        workspace=workspace,
        decay_percent=0,
        decay_days=30,
        handoff_due_hours=4,
        handoff_business_hours=True,
    )
    with freeze_time("2026-12-04 16:00:00+00:00"):
        handoff = become_mql(contact, django_capture_on_commit_callbacks)
    assert handoff.task.due_at == datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_a_new_mql_gets_an_owner_a_task_a_notification_and_an_email(
    workspace, contact, seller, rule, django_capture_on_commit_callbacks
):
    scoring.update_scoring_settings(
        workspace=workspace, decay_percent=0, decay_days=30, handoff_due_hours=6
    )
    before = timezone.now()
    handoff = become_mql(contact, django_capture_on_commit_callbacks)
    assert handoff.status == HandoffStatus.PENDING and handoff.owner == seller
    assert handoff.reason == "Score reached 100"
    assert Contact.objects.for_workspace(workspace).get(pk=contact.pk).owner == seller
    task = Task.objects.for_workspace(workspace).get(contact=contact)
    assert task.assignee == seller and handoff.task == task
    assert before + timedelta(hours=6) <= task.due_at <= timezone.now() + timedelta(hours=6)
    note = Notification.objects.for_workspace(workspace).get(user=seller)
    assert "Ann Lee" in note.text and note.url == "/handoffs/"
    mail = OutboxMessage.objects.get(to__icontains="sam@acme.example")
    assert "Ann Lee" in mail.subject
    # Reading the same events again (or the MQL again while pending) opens nothing new.
    scoring.follow_activity()
    assert handoffs.start_handoff(contact=contact) is None
    assert Handoff.objects.for_workspace(workspace).count() == 1


def test_an_existing_owner_is_kept(
    workspace, contact, owner, rule, django_capture_on_commit_callbacks
):
    contact = crm.update_contact(contact=contact, owner=owner)
    handoff = become_mql(contact, django_capture_on_commit_callbacks)
    assert handoff.owner == owner


def test_without_an_owner_the_handoff_still_waits_on_the_list(
    workspace, contact, django_capture_on_commit_callbacks
):
    handoff = become_mql(contact, django_capture_on_commit_callbacks)
    assert handoff.owner is None and handoff.task.assignee is None
    assert not Notification.objects.for_workspace(workspace).exists()
    assert list(handoffs.handoffs(workspace, "pending")) == [handoff]


def test_accept_makes_an_sql_and_counts_as_the_first_touch(
    workspace, contact, seller, rule, django_capture_on_commit_callbacks
):
    handoff = become_mql(contact, django_capture_on_commit_callbacks)
    handoffs.accept_handoff(handoff=handoff, actor=seller)
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.ACCEPTED and handoff.decided_by == seller
    assert handoff.first_touch_kind == "handoff.accepted"
    assert handoff.time_to_touch is not None
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "sql"
    assert Task.objects.for_workspace(workspace).get(pk=handoff.task_id).completed_at is not None
    with pytest.raises(handoffs.HandoffClosed):
        handoffs.reject_handoff(handoff=handoff, actor=seller, reason="late")


def test_reject_sends_back_to_lead_with_the_reason_on_the_timeline(
    workspace, contact, seller, rule, django_capture_on_commit_callbacks
):
    handoff = become_mql(contact, django_capture_on_commit_callbacks)
    with pytest.raises(handoffs.HandoffClosed):
        handoffs.reject_handoff(handoff=handoff, actor=seller, reason="  ")
    handoffs.reject_handoff(handoff=handoff, actor=seller, reason="Student, no budget")
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.REJECTED
    assert handoff.rejection_reason == "Student, no budget"
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"
    last = (
        Event.objects.for_workspace(workspace)
        .filter(kind="contact.lifecycle_changed", contact_id=contact.pk)
        .latest("id")
    )
    assert last.properties["to"] == "lead"
    assert last.properties["reason"] == "Rejected by sales: Student, no budget"
    # A later MQL is a new hand-off.
    crm.set_lifecycle_stage(contact=contact, stage="mql", reason="again")
    scoring.follow_activity()
    assert Handoff.objects.for_workspace(workspace).filter(contact=contact).count() == 2


def test_time_to_first_touch_is_the_first_sales_action(
    workspace, contact, seller, rule, django_capture_on_commit_callbacks
):
    handoff = become_mql(contact, django_capture_on_commit_callbacks)
    later = handoff.created_at + timedelta(minutes=30)
    # A campaign's email is not a sales touch; a call is.
    record(
        workspace=workspace,
        kind="email.sent",
        contact_id=contact.pk,
        source=("mail.campaign", 1),
        occurred_at=later - timedelta(minutes=10),
    )
    record(workspace=workspace, kind="call.logged", contact_id=contact.pk, occurred_at=later)
    record(
        workspace=workspace,
        kind="email.sent",
        contact_id=contact.pk,
        source=("mail.personal", "k"),
        occurred_at=later + timedelta(minutes=5),
    )
    scoring.follow_activity()
    handoff.refresh_from_db()
    assert handoff.first_touch_kind == "call.logged"
    assert handoff.time_to_touch == pytest.approx(1800, abs=1)
    other = crm.create_contact(
        workspace=workspace, first_name="Bo", email="bo@x.test", lifecycle_stage="lead"
    )
    second = become_mql(other, django_capture_on_commit_callbacks)
    record(
        workspace=workspace,
        kind="email.sent",
        contact_id=other.pk,
        source=("mail.personal", "k2"),
        occurred_at=second.created_at + timedelta(hours=1),
    )
    scoring.follow_activity()
    assert handoffs.median_time_to_touch(workspace) == pytest.approx((1800 + 3600) / 2, abs=1)


def test_threshold_to_task_end_to_end(
    workspace, contact, seller, rule, django_capture_on_commit_callbacks
):
    from patron.automation import lifecycle
    from patron.automation.models import ScoringRuleKind

    lifecycle.save_lifecycle_rule(workspace=workspace, trigger="score", threshold=30, stage="mql")
    scoring.save_scoring_rule(
        workspace=workspace,
        name="Pricing",
        kind=ScoringRuleKind.BEHAVIOUR,
        points=40,
        event_kind="page.viewed",
        filters=[{"property": "url", "op": "contains", "value": "/pricing"}],
    )
    record(
        workspace=workspace,
        kind="page.viewed",
        contact_id=contact.pk,
        properties={"url": "https://acme.test/pricing"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        scoring.follow_activity()
    task = Task.objects.for_workspace(workspace).get(contact=contact)
    assert task.assignee == seller
    assert Handoff.objects.for_workspace(workspace).get().reason == "Score reached 30"


def test_the_timeline_line_of_a_move_carries_its_reason():
    from patron.activity.templatetags.activity import event_summary

    assert (
        event_summary({"from": "mql", "to": "lead", "reason": "Rejected by sales: no budget"})
        == "mql → lead · Rejected by sales: no budget"
    )
    assert (
        event_summary(
            {"from": 10, "to": 30, "points": 20, "reason": "Page viewed", "rule": "Pricing"}
        )
        == "10 → 30 · Page viewed"
    )
