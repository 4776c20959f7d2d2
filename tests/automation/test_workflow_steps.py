"""Each action step does its business through the owning app's services."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from patron.audience import lists, suppression
from patron.audience.models import ConsentSource, Subscription, SubscriptionStatus
from patron.automation import engine, workflows
from patron.automation.models import Enrolment, EnrolmentStatus
from patron.automation.workflow_schema import WorkflowInvalid
from patron.core.models import Notification
from patron.crm import services as crm
from patron.crm.models import Deal, Task, Ticket
from patron.mail.models import Campaign, CampaignStatus, Delivery
from tests.automation.workflow_helpers import history, published, run, template
from tests.mail.campaign_setup import verified_sender

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(workspace, owner):
    contact = crm.create_contact(workspace=workspace, first_name="Ann", email="ann@example.net")
    contact.owner = owner
    contact.save()
    return contact


def go(workspace, contact, steps, status=EnrolmentStatus.COMPLETED, **options):
    workflow = published(workspace, steps, **options)
    enrolment = workflows.enrol_contact(workflow=workflow, contact=contact)
    run(workspace)
    enrolment.refresh_from_db()
    assert enrolment.status == status, enrolment.last_error
    return enrolment


def test_tags_scores_lifecycle_fields_owner(workspace, ann, owner):
    colleague = crm.create_contact(workspace=workspace, email="x@example.net")
    del colleague
    crm.add_tags(record_=ann, names=["cold"])
    crm.create_custom_field(
        workspace=workspace, object_type="contact", label="Plan", field_type="text"
    )
    go(
        workspace,
        ann,
        [
            {"type": "add_tag", "tag": "warm"},
            {"type": "remove_tag", "tag": "cold"},
            {"type": "change_score", "points": 15},
            {"type": "set_lifecycle", "stage": "mql"},
            {"type": "update_field", "field": "job_title", "value": "Buyer"},
            {"type": "update_field", "field": "custom.plan", "value": "Pro"},
            {"type": "assign_owner", "user": owner.pk},
        ],
    )
    ann.refresh_from_db()
    assert sorted(ann.tags.values_list("name", flat=True)) == ["warm"]
    assert ann.score == 15 and ann.lifecycle_stage == "mql"
    assert ann.job_title == "Buyer" and ann.custom["plan"] == "Pro" and ann.owner == owner


def test_lists_subscribe_and_unsubscribe(workspace, ann):
    newsletter = lists.create_list(workspace=workspace, name="Newsletter")
    offers = lists.create_list(workspace=workspace, name="Offers")
    lists.subscribe(
        mailing_list=offers, contact=ann, consent=lists.Consent(source=ConsentSource.MANUAL)
    )
    go(
        workspace,
        ann,
        [{"type": "subscribe", "list": newsletter.pk}, {"type": "unsubscribe", "list": offers.pk}],
    )
    status = dict(
        Subscription.objects.for_workspace(workspace).values_list("mailing_list_id", "status")
    )
    assert status == {
        newsletter.pk: SubscriptionStatus.SUBSCRIBED,
        offers.pk: SubscriptionStatus.UNSUBSCRIBED,
    }


def test_notify_task_deal_ticket(workspace, ann, owner):
    go(
        workspace,
        ann,
        [
            {"type": "notify", "user": "owner", "text": "Hot lead"},
            {"type": "create_task", "title": "Call them", "due_days": 2},
            {"type": "create_deal", "name": "Pro plan"},
            {"type": "create_ticket", "subject": "Onboarding call", "priority": "high"},
        ],
    )
    note = Notification.objects.for_workspace(workspace).get()
    assert note.user == owner and note.text.startswith("Hot lead") and str(ann.pk) in note.url
    task = Task.objects.for_workspace(workspace).get()
    assert task.title == "Call them" and task.contact == ann and task.assignee == owner
    deal = Deal.objects.for_workspace(workspace).get()
    assert deal.name == "Pro plan" and list(deal.contacts.all()) == [ann]
    ticket = Ticket.objects.for_workspace(workspace).get()
    assert ticket.subject == "Onboarding call" and ticket.priority == "high"


def test_enrol_in_another_workflow_then_exit(workspace, ann):
    other = published(workspace, [{"type": "wait", "days": 3}], name="Nurture")
    enrolment = go(
        workspace,
        ann,
        [
            {"type": "enrol", "workflow": other.pk},
            {"type": "exit"},
            {"type": "add_tag", "tag": "x"},
        ],
        status=EnrolmentStatus.EXITED,
    )
    del enrolment
    assert Enrolment.objects.for_workspace(workspace).filter(workflow=other).count() == 1
    assert not ann.tags.exists()


def test_send_email_goes_through_the_pipeline_and_skips_the_suppressed(workspace, ann):
    verified_sender(workspace)
    bob = crm.create_contact(workspace=workspace, first_name="Bob", email="bob@example.net")
    suppression.suppress_addresses(workspace=workspace, emails=["bob@example.net"])
    email = template(workspace)
    workflow = published(workspace, [{"id": "m", "type": "send_email", "template": email.pk}])
    for contact in (ann, bob):
        workflows.enrol_contact(workflow=workflow, contact=contact)
    run(workspace)
    delivery = Delivery.objects.for_workspace(workspace).get()
    assert delivery.contact_id == ann.pk and delivery.email == "ann@example.net"
    campaign = Campaign.objects.for_workspace(workspace).get(pk=delivery.campaign_id)
    assert campaign.status == CampaignStatus.SENDING and campaign.subject == email.subject
    bob_enrolment = Enrolment.objects.for_workspace(workspace).get(contact_id=bob.pk)
    assert history(bob_enrolment) == [("m", {"campaign": campaign.pk, "skipped": "not sendable"})]
    # The send pipeline sends it and records email.sent with the campaign.
    from patron.activity.models import Event
    from patron.mail import pipeline
    from patron.mail.models import SendChunk

    for chunk in SendChunk.objects.for_workspace(workspace):
        pipeline.run_chunk(chunk.pk)
    delivery.refresh_from_db()
    campaign.refresh_from_db()
    assert delivery.status == "sent", (campaign.status, campaign.last_error, delivery.reply)
    assert (
        Event.objects.for_workspace(workspace)
        .filter(kind="email.sent", contact_id=ann.pk, source_id=str(campaign.pk))
        .exists()
    )


def test_send_email_without_a_sender_is_retried_and_visible(workspace, ann):
    email = template(workspace)
    workflow = published(workspace, [{"id": "m", "type": "send_email", "template": email.pk}])
    workflows.enrol_contact(workflow=workflow, contact=ann)
    run(workspace)
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    assert enrolment.status == EnrolmentStatus.ACTIVE and enrolment.attempts == 1
    assert "Verify a sender address" in enrolment.last_error


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    answer = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((dict(self.headers), body))
        self.send_response(_Receiver.answer)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    _Receiver.received = []
    _Receiver.answer = 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_webhook_is_signed_and_retried(workspace, ann, receiver):
    secret = "s3cret-s3cret-s3cret"
    workflow = published(
        workspace, [{"id": "h", "type": "webhook", "url": receiver, "secret": secret}]
    )
    workflows.enrol_contact(workflow=workflow, contact=ann)
    _Receiver.answer = 500
    engine.run_due(workspace)
    enrolment = Enrolment.objects.for_workspace(workspace).get()
    assert enrolment.attempts == 1 and "500" in enrolment.last_error
    _Receiver.answer = 200
    from datetime import timedelta

    from django.utils import timezone

    run(workspace, now=timezone.now() + timedelta(minutes=2))
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.COMPLETED
    headers, body = _Receiver.received[-1]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Patron-Signature"] == f"sha256={expected}"
    assert (
        headers["X-Patron-Idempotency-Key"] == _Receiver.received[0][0]["X-Patron-Idempotency-Key"]
    )
    assert json.loads(body)["contact"]["email"] == "ann@example.net"


def test_a_round_calls_a_few_webhooks_and_leaves_the_rest_due(workspace, receiver):
    people = [crm.create_contact(workspace=workspace, email=f"p{n}@example.net") for n in range(25)]
    workflow = published(
        workspace, [{"id": "h", "type": "webhook", "url": receiver, "secret": "x" * 20}]
    )
    engine.enrol_contacts(workflow=workflow, contact_ids=[p.pk for p in people])
    first = engine.run_due(workspace)
    assert first.steps == engine.SLOW_BATCH
    rest = Enrolment.objects.for_workspace(workspace).filter(status=EnrolmentStatus.ACTIVE)
    assert rest.count() == 25 - engine.SLOW_BATCH and not rest.exclude(lease_until=None).exists()
    run(workspace)
    assert len(_Receiver.received) == 25


def test_a_webhook_to_a_private_address_is_refused_and_shown(workspace, ann, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(WorkflowInvalid, match="private or local address"):
        published(
            workspace,
            [{"id": "h", "type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "x" * 20}],
        )
