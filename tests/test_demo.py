"""The demo workspace."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.crm.models import Company, Contact, LifecycleStage
from patron.demo import seed_demo_workspace

pytestmark = pytest.mark.django_db


def test_the_demo_has_people_companies_and_history(owner):
    workspace = seed_demo_workspace(owner=owner)
    assert workspace.is_demo
    contacts = Contact.objects.for_workspace(workspace)
    # 250 people, and one of them entered twice for the duplicates page.
    assert contacts.count() == 251 and Company.objects.for_workspace(workspace).count() == 40
    from patron.crm.merge import duplicate_contacts

    assert duplicate_contacts(workspace)
    stages = set(contacts.values_list("lifecycle_stage", flat=True))
    assert {LifecycleStage.LEAD, LifecycleStage.CUSTOMER} <= stages
    assert contacts.filter(company__isnull=False).count() > 150
    events = Event.objects.for_workspace(workspace)
    assert events.filter(kind="contact.created").count() == 251
    assert events.filter(kind="page.viewed").exists()
    assert len(set(contacts.values_list("email", flat=True))) == 251
    for contact in contacts.filter(pk__in=events.values("contact_id"))[:50]:
        first = events.filter(contact_id=contact.pk).order_by("occurred_at").first()
        assert first.occurred_at >= contact.created_at  # nothing before the contact existed


def test_the_demo_has_deals_at_every_stage(owner):
    from patron.crm.models import Deal

    workspace = seed_demo_workspace(owner=owner)
    deals = Deal.objects.for_workspace(workspace)
    assert deals.count() == 36
    stage_names = set(deals.values_list("stage__name", flat=True))
    assert stage_names == {
        "Qualified",
        "Meeting booked",
        "Proposal sent",
        "Negotiation",
        "Won",
        "Lost",
    }
    assert deals.filter(stage__outcome="lost").exclude(lost_reason="").count() == 6
    moved = Event.objects.for_workspace(workspace).filter(kind="deal.stage_changed")
    assert moved.count() >= 30


def test_seeding_twice_returns_the_same_workspace(owner):
    first = seed_demo_workspace(owner=owner)
    assert seed_demo_workspace(owner=owner) == first
    assert Contact.objects.for_workspace(first).count() == 251


def test_the_demo_has_tickets_in_every_state(owner):
    from django.utils import timezone

    from patron.crm.models import Ticket, TicketReply
    from patron.crm.tickets import filter_by_sla

    workspace = seed_demo_workspace(owner=owner)
    found = Ticket.objects.for_workspace(workspace)
    assert set(found.values_list("status", flat=True)) == {
        "new",
        "open",
        "pending",
        "solved",
        "closed",
    }
    assert set(found.values_list("priority", flat=True)) == {"low", "normal", "high", "urgent"}
    assert filter_by_sla(found, "breached", timezone.now()).exists()
    replies = TicketReply.objects.for_workspace(workspace)
    assert replies.filter(is_internal=False).exists() and replies.filter(is_internal=True).exists()
    assert found.filter(contact__isnull=True, company__isnull=False).exists()
    assert found.filter(resolution_seconds__isnull=False).exists()


def test_the_demo_has_a_quote_in_each_state(owner):
    from patron.crm.models import Quote, QuoteStatus

    workspace = seed_demo_workspace(owner=owner)
    statuses = set(Quote.objects.for_workspace(workspace).values_list("status", flat=True))
    assert statuses == set(QuoteStatus.values)
    kinds = set(Event.objects.for_workspace(workspace).values_list("kind", flat=True))
    assert {"quote.sent", "quote.accepted", "quote.declined", "quote.expired"} <= kinds


def test_the_demo_has_segments_with_members(owner):
    from patron.audience import segments
    from patron.audience.models import Segment, SegmentMembership

    workspace = seed_demo_workspace(owner=owner)
    saved = Segment.objects.for_workspace(workspace).order_by("name")
    assert saved.count() == 4
    for segment in saved:
        assert segment.evaluated_at is not None
        # Memberships are what the definition selects today.
        members = SegmentMembership.objects.for_workspace(workspace).filter(segment=segment)
        assert segment.member_count == members.count()
        assert segment.member_count == segments.count(workspace, segment.definition)
    engaged = saved.get(name="Engaged Gold customers")
    assert 0 < engaged.member_count < 251


def test_the_demo_has_lists_with_subscribers_in_every_status(owner):
    from patron.audience.models import ConsentRecord, MailingList, Subscription

    workspace = seed_demo_workspace(owner=owner)
    assert MailingList.objects.for_workspace(workspace).count() == 3
    assert MailingList.objects.for_workspace(workspace).filter(double_opt_in=True).exists()
    subscriptions = Subscription.objects.for_workspace(workspace)
    assert set(subscriptions.values_list("status", flat=True)) == {
        "subscribed",
        "pending",
        "unsubscribed",
        "cleaned",
    }
    records = ConsentRecord.objects.for_workspace(workspace)
    assert records.count() >= subscriptions.count()
    assert records.filter(source="confirmation", ip_address__isnull=False).count() == 3


def test_the_demo_has_a_verified_default_sender_and_a_pending_one(owner):
    from patron.mail import senders

    workspace = seed_demo_workspace(owner=owner)
    identities = list(senders.sender_identities(workspace))
    assert len(identities) == 2
    default = senders.default_identity(workspace)
    assert default is not None and default.is_verified and default.postal_address
    assert list(senders.verified_identities(workspace)) == [default]
    pending = next(identity for identity in identities if identity != default)
    assert pending.verified_at is None


def test_the_demo_has_a_sent_campaign_and_a_draft(owner, django_capture_on_commit_callbacks):
    from patron.mail.models import Campaign, OutboxMessage

    with django_capture_on_commit_callbacks(execute=True):
        workspace = seed_demo_workspace(owner=owner)
    found = {c.name: c for c in Campaign.objects.for_workspace(workspace)}
    sent = found["Monthly newsletter: December"]
    # The monthly list's subscribed members (120 signed up, 10 left, 4 bounced),
    # less the suppressed ones.
    assert sent.status == "sent" and 100 <= sent.total <= 106
    assert sent.sent + sent.failed == sent.total, (sent.sent, sent.failed, sent.last_error)
    delivered = OutboxMessage.objects.filter(workspace=workspace, subject__contains="December")
    assert delivered.count() == sent.sent
    draft = found["Pricing follow-up"]
    assert draft.status == "draft" and draft.audience["include"]["segments"]


def test_the_demo_has_templates_that_pass_their_checks(owner):
    from patron.mail import blocks, templates_service

    workspace = seed_demo_workspace(owner=owner)
    templates = list(templates_service.templates_for(workspace))
    assert {t.kind for t in templates} == {"marketing", "personal"}
    newsletter = next(t for t in templates if t.name == "Newsletter")
    gold = blocks.referenced_segments(newsletter.body)
    assert len(gold) == 1 and gold <= templates_service.workspace_segment_ids(workspace)
    for template in templates:
        problems = templates_service.check_content(workspace, template)
        assert [p for p in problems if p.blocking] == [], template.name
