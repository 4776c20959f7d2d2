"""Campaign services: values, the status machine, scheduling, duplicates, checks, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from patron.core.models import AuditEntry
from patron.mail import campaigns, starters
from patron.mail.campaigns import CampaignInvalid, CampaignStateError
from patron.mail.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from tests.factories import ContactFactory, WorkspaceFactory
from tests.mail.campaign_helpers import draft, mailing_list, subscribers, verified_sender

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender(workspace):
    return verified_sender(workspace)


@pytest.fixture
def newsletter(workspace):
    to = mailing_list(workspace)
    subscribers(workspace, to, 3)
    return to


def test_create_takes_the_default_sender_and_audits(workspace, owner, sender, newsletter):
    campaign = draft(workspace, owner, newsletter, preheader="  Read   this ")
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.sender == sender  # the verified default
    assert campaign.preheader == "Read this"
    assert campaign.audience == {
        "include": {"lists": [newsletter.pk], "segments": []},
        "exclude": {"lists": [], "segments": []},
    }
    entry = AuditEntry.objects.get(action="campaign.created")
    assert (entry.workspace, entry.actor, entry.data["campaign"]) == (workspace, owner, campaign.pk)


def test_bad_values_are_refused_field_by_field(workspace, owner, sender):
    other = verified_sender(WorkspaceFactory(), email="news@other.example")
    with pytest.raises(CampaignInvalid) as refused:
        campaigns.create_campaign(
            workspace,
            user=owner,
            values={
                "name": "  ",
                "sender": other.pk,
                "reply_to": "not an address",
                "format": "docx",
                "audience": {"include": {"lists": [999999]}},
                "blocks": "text",
            },
        )
    assert set(refused.value.errors) == {
        "name",
        "sender",
        "reply_to",
        "format",
        "audience",
        "blocks",
    }
    assert "999999" in refused.value.errors["audience"]
    with pytest.raises(CampaignInvalid) as unknown:
        campaigns.create_campaign(workspace, user=owner, values={"name": "x", "status": "sent"})
    assert unknown.value.errors == {"status": "This field cannot be set."}
    assert not Campaign.objects.for_workspace(workspace).exists()


def test_only_drafts_are_edited(workspace, owner, sender, newsletter):
    campaign = draft(workspace, owner, newsletter)
    campaigns.update_campaign(campaign, user=owner, values={"subject": "Hello", "text": "Hi"})
    campaign.refresh_from_db()
    assert (campaign.subject, campaign.text) == ("Hello", "Hi")
    assert AuditEntry.objects.get(action="campaign.updated").data["fields"] == ["subject", "text"]
    campaigns.schedule_campaign(campaign, user=owner, at=timezone.now() + timedelta(days=1))
    with pytest.raises(CampaignStateError) as refused:
        campaigns.update_campaign(campaign, user=owner, values={"subject": "Late"})
    assert refused.value.errors == {"": "A campaign that is scheduled cannot be changed."}
    campaigns.unschedule_campaign(campaign, user=owner)
    campaigns.update_campaign(campaign, user=owner, values={"subject": "Late"})
    assert campaign.status == CampaignStatus.DRAFT and campaign.subject == "Late"


def test_the_status_machine_and_its_audit(workspace, owner, sender, newsletter):
    campaign = draft(workspace, owner, newsletter)
    for action in (campaigns.pause_campaign, campaigns.resume_campaign, campaigns.cancel_campaign):
        with pytest.raises(CampaignStateError):
            action(campaign, user=owner)
    later = timezone.now() + timedelta(hours=3)
    campaigns.schedule_campaign(campaign, user=owner, at=later)
    assert (campaign.status, campaign.send_at, campaign.start_at) == ("scheduled", later, later)
    with pytest.raises(CampaignStateError):
        campaigns.pause_campaign(campaign, user=owner)
    # The pipeline starts it (here by hand): sending.
    campaigns.transition(campaign, CampaignStatus.SENDING, user=None, action="started")
    campaigns.pause_campaign(campaign, user=owner)
    assert campaign.status == CampaignStatus.PAUSED
    with pytest.raises(CampaignStateError):
        campaigns.pause_campaign(campaign, user=owner)
    campaigns.resume_campaign(campaign, user=owner)
    assert campaign.status == CampaignStatus.SENDING
    campaigns.cancel_campaign(campaign, user=owner)
    assert campaign.status == CampaignStatus.CANCELLED and campaign.finished_at is not None
    for action in (campaigns.pause_campaign, campaigns.resume_campaign, campaigns.cancel_campaign):
        with pytest.raises(CampaignStateError) as refused:
            action(campaign, user=owner)
        assert "cancelled" in refused.value.errors[""]
    with pytest.raises(CampaignStateError):
        campaigns.schedule_campaign(campaign, user=owner)
    trail = list(
        AuditEntry.objects.filter(action__startswith="campaign.")
        .order_by("id")
        .values_list("action", "data__from", "data__to")
    )
    assert trail == [
        ("campaign.created", None, None),
        ("campaign.scheduled", "draft", "scheduled"),
        ("campaign.sending", "scheduled", "sending"),
        ("campaign.paused", "sending", "paused"),
        ("campaign.sending", "paused", "sending"),
        ("campaign.cancelled", "sending", "cancelled"),
    ]


def test_a_stale_object_cannot_make_a_transition_twice(workspace, owner, sender, newsletter):
    campaign = draft(workspace, owner, newsletter)
    campaigns.schedule_campaign(campaign, user=owner, at=timezone.now() + timedelta(hours=1))
    campaigns.transition(campaign, CampaignStatus.SENDING, user=None, action="started")
    first = Campaign.objects.for_workspace(workspace).get(pk=campaign.pk)
    second = Campaign.objects.for_workspace(workspace).get(pk=campaign.pk)
    campaigns.cancel_campaign(first, user=owner)
    with pytest.raises(CampaignStateError):
        campaigns.pause_campaign(second, user=owner)  # its copy still says "sending"
    assert second.status == CampaignStatus.CANCELLED  # refreshed by the refusal


def test_scheduling_checks_first(workspace, owner, newsletter):
    pending = campaigns.campaigns_for(workspace)  # no sender yet
    assert not pending.exists()
    campaign = draft(workspace, owner, newsletter, body="<p>No links at all</p>")
    with pytest.raises(CampaignInvalid) as refused:
        campaigns.schedule_campaign(campaign, user=owner)
    errors = refused.value.errors
    assert errors["sender"] == "Choose the sender address."
    assert "unsubscribe" in errors[""].lower()
    assert campaign.status == CampaignStatus.DRAFT
    with pytest.raises(CampaignInvalid) as past:
        campaigns.schedule_campaign(campaign, user=owner, at=timezone.now() - timedelta(hours=1))
    assert past.value.errors == {"send_at": "Choose a time in the future."}
    with pytest.raises(CampaignInvalid) as naive:
        campaigns.schedule_campaign(campaign, user=owner, at=datetime(2030, 1, 1, 9))
    assert naive.value.errors == {"send_at": "Give the time with its time zone."}


def test_check_campaign_finds_an_unverified_sender_and_an_empty_audience(workspace, owner):
    pending_sender = campaigns.create_campaign(
        workspace, user=owner, values={"name": "x"}
    ).sender  # none yet
    assert pending_sender is None
    empty = mailing_list(workspace, "Empty")
    suppressed_only = mailing_list(workspace, "Gone")
    verified_sender(workspace)
    campaign = draft(workspace, owner, empty)
    codes = {problem.code: problem for problem in campaigns.check_campaign(campaign)}
    assert "audience" in codes and codes["audience"].blocking
    assert "sender" not in codes
    unverified = __import__("patron.mail.senders", fromlist=["x"]).create_sender(
        workspace=workspace,
        from_name="Pending",
        from_email="pending@acme.example",
        postal_address="Somewhere 1",
    )
    campaigns.update_campaign(
        campaign,
        user=owner,
        values={"sender": unverified.pk, "audience": {"include": {"lists": [suppressed_only.pk]}}},
    )
    problems = {problem.code: problem.message for problem in campaigns.check_campaign(campaign)}
    assert problems["sender"] == "The sender address pending@acme.example is not verified yet."


def test_local_time_starts_when_the_time_first_comes_anywhere(workspace, owner, sender, newsletter):
    workspace.time_zone = "Europe/Lisbon"
    workspace.save()
    campaign = draft(workspace, owner, newsletter)
    nine_in_lisbon = datetime(2031, 6, 2, 8, 0, tzinfo=UTC)  # 09:00 WEST
    campaigns.schedule_campaign(campaign, user=owner, at=nine_in_lisbon, local_time=True)
    # 09:00 arrives first at UTC+14: 19:00 UTC the day before.
    assert campaign.start_at == datetime(2031, 6, 1, 19, 0, tzinfo=UTC)
    assert campaign.local_time and campaign.send_at == nine_in_lisbon


def test_duplicate_copies_content_not_progress(workspace, owner, sender, newsletter):
    campaign = draft(workspace, owner, newsletter, preheader="Pre", text="Plain", reply_to="r@x.io")
    design = starters.get("newsletter").values()["blocks"]
    campaigns.update_campaign(campaign, user=owner, values={"blocks": design})
    assert campaign.blocks["blocks"] and "The monthly letter" in campaign.body
    campaigns.schedule_campaign(campaign, user=owner, at=timezone.now() + timedelta(days=2))
    copy = campaigns.duplicate_campaign(campaign, user=owner)
    assert copy.pk != campaign.pk and copy.status == CampaignStatus.DRAFT
    assert copy.name == "Copy of December news"
    for field in ("subject", "preheader", "format", "body", "blocks", "text", "reply_to"):
        assert getattr(copy, field) == getattr(campaign, field)
    assert (copy.sender, copy.audience) == (campaign.sender, campaign.audience)
    assert (copy.send_at, copy.total, copy.sent) == (None, 0, 0)
    assert AuditEntry.objects.get(action="campaign.duplicated").data["source"] == campaign.pk


def test_campaigns_are_kept_to_their_workspace(workspace, owner, sender, newsletter):
    draft(workspace, owner, newsletter)
    other = WorkspaceFactory()
    assert campaigns.campaigns_for(other).count() == 0
    assert campaigns.campaigns_for(workspace).count() == 1


def test_preview_renders_for_a_contact_or_a_sample(workspace, owner, sender, newsletter):
    campaign = draft(workspace, owner, newsletter, preheader="Inside: <news>")
    ann = ContactFactory(workspace=workspace, first_name="Ann", email="ann@example.net")
    mine = campaigns.preview(campaign, ann)
    assert mine.subject == "News for Ann"
    assert "Hello Ann," in mine.html
    assert "Inside: &lt;news&gt;" in mine.html  # the preheader, escaped, hidden
    assert "Acme Ltd" in mine.html and "/u/" in mine.html and "/m/" in mine.html
    sample = campaigns.preview(campaign)
    assert sample.subject == "News for Alex"


def test_progress_counts_and_rates(workspace, owner, sender, newsletter):
    campaign = draft(workspace, owner, newsletter)
    assert campaigns.progress(campaign) == campaigns.Progress(
        status="draft", total=0, sent=0, failed=0, pending=0, rate_per_second=0.0, eta_seconds=None
    )
    now = timezone.now()
    Campaign.objects.for_workspace(workspace).filter(pk=campaign.pk).update(
        status=CampaignStatus.SENDING,
        total=100,
        sent=30,
        failed=2,
        started_at=now - timedelta(seconds=10),
    )
    Delivery.objects.bulk_create(
        Delivery(
            workspace=workspace,
            campaign=campaign,
            contact_id=n,
            email=f"p{n}@x.test",
            status=DeliveryStatus.SENT,
            sent_at=now - timedelta(seconds=5),
        )
        for n in range(30)
    )
    shown = campaigns.progress(campaign)
    assert (shown.total, shown.sent, shown.failed, shown.pending) == (100, 30, 2, 68)
    assert 2.0 <= shown.rate_per_second <= 3.1  # 30 in the 10 s since the start
    assert shown.eta_seconds is not None and 20 <= shown.eta_seconds <= 35


def test_content_follows_the_template_rules(workspace, owner, sender, newsletter):
    """A builder design writes the body on the server: a posted body is not taken for it."""
    design = starters.get("newsletter").values()["blocks"]
    campaign = campaigns.create_campaign(
        workspace,
        user=owner,
        values={"name": "Built", "blocks": design, "body": "<mjml>forged</mjml>", "format": "html"},
    )
    assert campaign.format == "mjml" and "forged" not in campaign.body
    assert "The monthly letter" in campaign.body
    # Editing the body by hand ends the design (the one-way switch to code).
    campaigns.update_campaign(campaign, user=owner, values={"body": "<p>By hand</p>"})
    assert campaign.blocks == {} and campaign.body == "<p>By hand</p>"
    # A design naming another workspace's segment is refused, on the blocks field.
    bad = {**design, "blocks": [{**design["blocks"][2], "segment": 999999}]}
    with pytest.raises(CampaignInvalid) as refused:
        campaigns.update_campaign(campaign, user=owner, values={"blocks": bad})
    assert set(refused.value.errors) == {"blocks"}


def test_a_new_campaign_starts_from_a_starter_or_a_saved_template(workspace, owner, sender):
    from patron.mail import templates_service

    started = campaigns.starting_content(workspace, "survey")
    assert started["blocks"]["blocks"] and started["subject"].startswith("Quick question")
    blank = campaigns.starting_content(workspace, "blank-code")
    assert blank["format"] == "html" and blank["blocks"] == {}
    saved = templates_service.create_from_starter(
        workspace, user=owner, key="product-announcement", name="Launch"
    )
    copied = campaigns.starting_content(workspace, f"template:{saved.pk}")
    assert copied["body"] == saved.body and copied["blocks"] == saved.blocks
    personal = templates_service.create_from_starter(workspace, user=owner, key="welcome")
    for refused in ("welcome", f"template:{personal.pk}", "template:x", "nothing"):
        with pytest.raises(CampaignInvalid) as error:
            campaigns.starting_content(workspace, refused)
        assert set(error.value.errors) == {"start"}
    elsewhere = templates_service.create_from_starter(
        WorkspaceFactory(), user=None, key="newsletter"
    )
    with pytest.raises(CampaignInvalid):
        campaigns.starting_content(workspace, f"template:{elsewhere.pk}")


def test_only_a_draft_is_deleted(workspace, owner, sender, newsletter):
    kept = draft(workspace, owner, newsletter)
    campaigns.schedule_campaign(kept, user=owner, at=timezone.now() + timedelta(days=1))
    with pytest.raises(CampaignStateError):
        campaigns.delete_campaign(kept, user=owner)
    assert Campaign.objects.for_workspace(workspace).filter(pk=kept.pk).exists()
    gone = draft(workspace, owner, newsletter)
    campaigns.delete_campaign(gone, user=owner)
    assert not Campaign.objects.for_workspace(workspace).filter(pk=gone.pk).exists()
    audit = AuditEntry.objects.get(action="campaign.deleted")
    assert audit.data == {"campaign": gone.pk} and audit.actor == owner
