"""The send pipeline: the recipient snapshot, a full send through a real SMTP server,
retries and failures, the gate asked again at send time, pause and cancel, local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from patron.activity.models import Event
from patron.audience import segment_services, suppression
from patron.audience.models import MailingList
from patron.core.services import set_suppress_role_addresses
from patron.crm import services as crm_services
from patron.crm.models import Tag
from patron.mail import campaigns, mime, pipeline, tokens
from patron.mail.models import (
    Campaign,
    CampaignStatus,
    ChunkState,
    Delivery,
    DeliveryStatus,
    SendChunk,
)
from tests.factories import ContactFactory, WorkspaceFactory
from tests.mail.campaign_helpers import (
    draft,
    mailing_list,
    subscribe,
    subscribers,
    verified_sender,
)
from tests.mail.sink import Sink

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    with Sink() as server:
        settings.EMAIL_TRANSPORT = "smtp"
        settings.SMTP_URLS = [server.url]
        yield server.recorder


@pytest.fixture
def sender(workspace):
    return verified_sender(workspace)


def deliveries(campaign: Campaign):
    return Delivery.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)


def start_now(campaign: Campaign, user) -> Campaign:
    campaigns.schedule_campaign(campaign, user=user)
    pipeline.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def work(campaign: Campaign) -> None:
    """What the workers do: every chunk of the campaign, until none is runnable."""
    for chunk_id in (
        SendChunk.objects.for_workspace(campaign.workspace_id)
        .filter(campaign=campaign)
        .values_list("pk", flat=True)
    ):
        pipeline.run_chunk(chunk_id)
    campaign.refresh_from_db()


# --- The snapshot ----------------------------------------------------------------------------


def test_the_snapshot_keeps_only_those_who_may_be_mailed(workspace, owner, sender):
    news = mailing_list(workspace)
    vip_list = mailing_list(workspace, "VIP")
    blocked = mailing_list(workspace, "Blocked")

    def person(name, email, status="subscribed", to=news):
        contact = ContactFactory(workspace=workspace, first_name=name, email=email)
        if status:
            subscribe(contact, to, status)
        return contact

    ann = person("Ann", "Ann@Example.net")
    person("Pending", "pending@example.net", "pending")
    person("Unsubscribed", "unsub@example.net", "unsubscribed")
    person("Cleaned", "cleaned@example.net", "cleaned")
    person("Suppressed", "suppressed@example.net")
    person("Role", "postmaster@example.net")
    person("NoAddress", "")
    person("Outsider", "outsider@example.net", status=None)
    excluded = person("Excluded", "excluded@example.net")
    subscribe(excluded, blocked)
    both = person("Both", "both@example.net")
    subscribe(both, vip_list)  # on two included lists: one delivery
    suppression.suppress_addresses(
        workspace=workspace, emails=["SUPPRESSED@example.net"], reason="complaint"
    )
    set_suppress_role_addresses(workspace=workspace, enabled=True, actor=owner)
    other_workspace = WorkspaceFactory()
    ContactFactory(workspace=other_workspace, email="ann@example.net")

    campaign = draft(
        workspace,
        owner,
        audience={
            "include": {"lists": [news.pk, vip_list.pk]},
            "exclude": {"lists": [blocked.pk]},
        },
    )
    campaign = start_now(campaign, owner)
    rows = sorted(deliveries(campaign).values_list("email", "contact_id", "status"))
    assert rows == [
        ("ann@example.net", ann.pk, "queued"),
        ("both@example.net", both.pk, "queued"),
    ]
    assert campaign.status == CampaignStatus.SENDING and campaign.total == 2
    assert campaign.started_at is not None


def test_segments_and_lists_together_are_one_row_per_contact(workspace, owner, sender):
    news = mailing_list(workspace)
    people = subscribers(workspace, news, 4)
    crm_services.add_tags(record_=people[0], names=["vip"])
    outsider = ContactFactory(workspace=workspace, email="vip-outsider@example.net")
    crm_services.add_tags(record_=outsider, names=["vip"])
    vip = Tag.objects.for_workspace(workspace).get(name="vip")
    vips = segment_services.create_segment(
        workspace=workspace,
        name="VIPs",
        definition={"match": "all", "conditions": [{"type": "tag", "op": "has", "tag": vip.pk}]},
        actor=owner,
    )
    campaign = draft(
        workspace, owner, audience={"include": {"lists": [news.pk], "segments": [vips.pk]}}
    )
    campaign = start_now(campaign, owner)
    assert campaign.total == 5
    assert deliveries(campaign).values("contact_id").distinct().count() == 5


def test_the_snapshot_is_cut_into_chunks_by_id_range(workspace, owner, sender, settings):
    settings.SEND_CHUNK_SIZE = 4
    news = mailing_list(workspace)
    subscribers(workspace, news, 10)
    campaign = start_now(draft(workspace, owner, news), owner)
    chunks = list(
        SendChunk.objects.for_workspace(workspace)
        .filter(campaign=campaign)
        .order_by("first_id")
        .values_list("first_id", "last_id")
    )
    ids = sorted(deliveries(campaign).values_list("pk", flat=True))
    assert chunks == [(ids[0], ids[3]), (ids[4], ids[7]), (ids[8], ids[9])]


def test_an_audience_gone_bad_sends_the_campaign_back_to_draft(workspace, owner, sender):
    news = mailing_list(workspace)
    subscribers(workspace, news, 1)
    campaign = draft(workspace, owner, news)
    campaigns.schedule_campaign(campaign, user=owner)
    MailingList.objects.for_workspace(workspace).filter(pk=news.pk).delete()
    pipeline.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert "There is no list" in campaign.last_error
    assert not deliveries(campaign).exists()


# --- Sending ---------------------------------------------------------------------------------


def test_a_full_send_through_a_real_smtp_server(workspace, owner, sender, sink, settings):
    settings.SEND_BATCH_SIZE = 7
    news = mailing_list(workspace)
    people = subscribers(workspace, news, 20)
    campaign = start_now(draft(workspace, owner, news, preheader="December"), owner)
    work(campaign)

    assert campaign.status == CampaignStatus.SENT and campaign.finished_at is not None
    assert (campaign.total, campaign.sent, campaign.failed) == (20, 20, 0)
    assert sorted(r for m in sink.messages for r in m.recipients) == sorted(p.email for p in people)
    rows = {row.email: row for row in deliveries(campaign)}
    assert {row.status for row in rows.values()} == {DeliveryStatus.SENT}
    assert all(row.attempts == 1 and row.smtp_code == 250 for row in rows.values())

    received = sink.to(people[3].email)[0]
    message = received.message
    row = rows[people[3].email]
    assert message["Subject"] == "News for R3"
    assert message["Message-ID"] == mime.message_id_for(f"d{row.pk}.c{campaign.pk}")
    assert mime.parse_verp(received.mail_from) == (workspace.pk, row.pk)
    unsubscribe = message["List-Unsubscribe"]
    token = tokens.sign("unsub", workspace.pk, people[3].pk, campaign.pk)
    assert f"/u/{token}/>" in unsubscribe
    assert f"<mailto:unsubscribe+{token}@" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",)).get_content()
    assert "Hello R3," in html and "December" in html and "Acme Ltd" in html
    view = tokens.sign("view", workspace.pk, row.pk)
    assert f"/m/{view}/" in html
    text = message.get_body(("plain",)).get_content()
    assert "Hello R3," in text

    sent_events = Event.objects.for_workspace(workspace).filter(kind="email.sent")
    assert sorted(sent_events.values_list("contact_id", flat=True)) == sorted(p.pk for p in people)
    # The timeline shows the subject the contact got, merge tags filled in.
    event = sent_events.get(contact_id=people[3].pk)
    assert event.properties == {"campaign": campaign.pk, "subject": "News for R3"}
    assert (event.source_type, event.source_id) == ("mail.campaign", str(campaign.pk))
    shown = campaigns.progress(campaign)
    assert (shown.status, shown.sent, shown.pending, shown.eta_seconds) == ("sent", 20, 0, 0)


def test_temporary_failures_are_retried_then_given_up(workspace, owner, sender, sink, settings):
    settings.SEND_RETRY_SECONDS = 0
    settings.SEND_MAX_ATTEMPTS = 3
    news = mailing_list(workspace)
    good = subscribers(workspace, news, 3)
    flaky = ContactFactory(workspace=workspace, email="tempfail@example.net")
    spam = ContactFactory(workspace=workspace, email="reject@example.net")
    subscribe(flaky, news)
    subscribe(spam, news)
    campaign = start_now(draft(workspace, owner, news), owner)
    work(campaign)

    assert campaign.status == CampaignStatus.SENT
    assert (campaign.sent, campaign.failed) == (3, 2)
    rows = {row.email: row for row in deliveries(campaign)}
    assert rows["tempfail@example.net"].status == DeliveryStatus.FAILED
    assert rows["tempfail@example.net"].attempts == 3
    assert rows["tempfail@example.net"].smtp_code == 451
    assert "Gave up after 3 attempts" in rows["tempfail@example.net"].reply
    assert rows["reject@example.net"].status == DeliveryStatus.FAILED
    assert rows["reject@example.net"].attempts == 1
    assert (rows["reject@example.net"].smtp_code, "spam" in rows["reject@example.net"].reply) == (
        554,
        True,
    )
    assert len(sink.messages) == 3 and all(rows[p.email].status == "sent" for p in good)
    failed = Event.objects.for_workspace(workspace).filter(kind="email.failed")
    assert sorted(failed.values_list("contact_id", flat=True)) == sorted([flaky.pk, spam.pk])


def test_retry_backoff_doubles(settings):
    settings.SEND_RETRY_SECONDS = 60
    assert [pipeline.retry_delay(n).total_seconds() for n in (1, 2, 3, 7)] == [
        60,
        120,
        240,
        3600,
    ]


def test_the_gate_is_asked_again_when_the_message_goes_out(
    workspace, owner, sender, sink, settings
):
    news = mailing_list(workspace)
    people = subscribers(workspace, news, 4)
    campaign = start_now(draft(workspace, owner, news), owner)
    # After the snapshot, before the workers: one is suppressed, one unsubscribes.
    suppression.suppress_addresses(workspace=workspace, emails=[people[0].email], reason="manual")
    news.subscriptions.filter(contact=people[1]).update(status="unsubscribed")
    work(campaign)
    assert sorted(r for m in sink.messages for r in m.recipients) == sorted(
        [people[2].email, people[3].email]
    )
    rows = {row.contact_id: row for row in deliveries(campaign)}
    assert rows[people[0].pk].status == DeliveryStatus.CANCELLED
    assert rows[people[1].pk].status == DeliveryStatus.CANCELLED
    assert "after the send started" in rows[people[0].pk].reply
    assert campaign.status == CampaignStatus.SENT and campaign.sent == 2


def test_pause_stops_claiming_and_resume_goes_on(workspace, owner, sender, sink, settings):
    news = mailing_list(workspace)
    subscribers(workspace, news, 5)
    campaign = start_now(draft(workspace, owner, news), owner)
    campaigns.pause_campaign(campaign, user=owner)
    work(campaign)
    assert sink.messages == []
    chunk = SendChunk.objects.for_workspace(workspace).get(campaign=campaign)
    assert (chunk.state, chunk.wake_at) == (ChunkState.WAITING, None)
    campaigns.resume_campaign(campaign, user=owner)
    chunk.refresh_from_db()
    assert chunk.state == ChunkState.QUEUED
    work(campaign)
    assert len(sink.messages) == 5 and campaign.status == CampaignStatus.SENT


def test_cancel_marks_the_rest_cancelled(workspace, owner, sender, sink, settings):
    news = mailing_list(workspace)
    subscribers(workspace, news, 5)
    campaign = start_now(draft(workspace, owner, news), owner)
    campaigns.cancel_campaign(campaign, user=owner)
    work(campaign)
    assert sink.messages == []
    assert set(deliveries(campaign).values_list("status", flat=True)) == {"cancelled"}
    assert campaigns.progress(campaign).pending == 0


def test_expired_leases_are_claimed_again(workspace, owner, sender, settings):
    settings.SEND_LEASE_SECONDS = 60
    news = mailing_list(workspace)
    subscribers(workspace, news, 3)
    campaign = start_now(draft(workspace, owner, news), owner)
    first, last = SendChunk.objects.for_workspace(workspace).values_list("first_id", "last_id")[0]
    held = pipeline.claim(campaign, first, last, 2)  # a worker that then dies
    assert len(held) == 2
    rest = pipeline.claim(campaign, first, last, 10)  # another worker, alive
    assert [row.id for row in rest] == [last]
    assert pipeline.claim(campaign, first, last, 10) == []
    with freeze_time(timezone.now() + timedelta(seconds=61)):
        pipeline.record_outcome(
            pipeline.prepare(campaign), pipeline.BatchOutcome(sent=[last], sent_contacts=[(0, "")])
        )
        again = pipeline.claim(campaign, first, last, 10)
    assert [row.id for row in again] == [row.id for row in held]
    assert [row.attempts for row in again] == [2, 2]


def test_the_scheduler_starts_wakes_rescues_and_finishes(workspace, owner, sender, sink, settings):
    settings.SEND_LEASE_SECONDS = 30
    news = mailing_list(workspace)
    subscribers(workspace, news, 3)
    campaign = draft(workspace, owner, news)
    later = timezone.now() + timedelta(hours=1)
    campaigns.schedule_campaign(campaign, user=owner, at=later)
    assert pipeline.advance_campaigns()["started"] == 0
    with freeze_time(later + timedelta(seconds=1)):
        counts = pipeline.advance_campaigns()
    campaign.refresh_from_db()
    assert counts["started"] == 1 and campaign.status == CampaignStatus.SENDING
    chunk = SendChunk.objects.for_workspace(workspace).get(campaign=campaign)
    # A worker took the chunk and died: no progress for a lease.
    SendChunk.objects.for_workspace(workspace).filter(pk=chunk.pk).update(
        state=ChunkState.RUNNING, touched_at=timezone.now() - timedelta(seconds=31)
    )
    # The immediate task backend runs the re-enqueued chunk at once.
    counts = pipeline.advance_campaigns()
    assert counts["rescued"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT and len(sink.messages) == 3


DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.mark.django_db(transaction=True)  # the worker below commits and closes connections
def test_a_chunk_whose_task_a_dead_worker_took_is_rescued(
    workspace, owner, sender, sink, settings, django_capture_on_commit_callbacks
):
    """A worker takes a chunk's task from the queue and is killed before it marks the
    chunk running: the chunk stays queued and no task will run it. The scheduler
    asks the queue, sees the task taken long ago, and enqueues the chunk again;
    a chunk still waiting its turn in the queue is left alone."""
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = DATABASE_QUEUE
    settings.SEND_LEASE_SECONDS = 30
    news = mailing_list(workspace)
    subscribers(workspace, news, 3)
    campaign = draft(workspace, owner, news)
    campaigns.schedule_campaign(campaign, user=owner)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.start_campaign(campaign.pk)
    chunk = SendChunk.objects.for_workspace(workspace).get(campaign=campaign)
    task = DBTaskResult.objects.get(pk=chunk.task_id)
    assert (chunk.state, task.status) == (ChunkState.QUEUED, "READY")
    long_ago = timezone.now() - timedelta(seconds=31)
    SendChunk.objects.for_workspace(workspace).filter(pk=chunk.pk).update(touched_at=long_ago)
    # Waiting behind other work in the queue: not stuck.
    assert pipeline.advance_campaigns()["rescued"] == 0
    assert DBTaskResult.objects.filter(task_path="patron.mail.tasks.send_chunk").count() == 1
    # A worker takes the task and dies before run_chunk starts.
    task.claim("killed-worker")
    DBTaskResult.objects.filter(pk=task.pk).update(started_at=long_ago)
    assert pipeline.advance_campaigns()["rescued"] == 1
    chunk.refresh_from_db()
    assert chunk.state == ChunkState.QUEUED and chunk.task_id != str(task.pk)
    assert DBTaskResult.objects.get(pk=chunk.task_id).status == "READY"
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "default")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert sorted(message.recipients[0] for message in sink.messages) == sorted(
        deliveries(campaign).values_list("email", flat=True)
    )


def test_a_chunk_never_enqueued_is_rescued(workspace, owner, sender, settings):
    """The process that started the campaign died after committing the chunks and
    before enqueueing them: after a lease the scheduler enqueues them itself."""
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = DATABASE_QUEUE
    settings.SEND_LEASE_SECONDS = 30
    settings.SEND_CHUNK_SIZE = 2
    news = mailing_list(workspace)
    subscribers(workspace, news, 3)
    campaign = draft(workspace, owner, news)
    campaigns.schedule_campaign(campaign, user=owner)
    pipeline.start_campaign(campaign.pk)  # its on-commit enqueue never runs here
    chunks = SendChunk.objects.for_workspace(workspace).filter(campaign=campaign)
    assert chunks.count() == 2 and not DBTaskResult.objects.exists()
    assert pipeline.advance_campaigns()["rescued"] == 0  # just committed: give it a lease
    chunks.update(touched_at=timezone.now() - timedelta(seconds=31))
    assert pipeline.advance_campaigns()["rescued"] == 2
    tasks = DBTaskResult.objects.filter(status="READY")
    assert sorted(tasks.values_list("args_kwargs__args", flat=True)) == sorted(
        [chunk.pk] for chunk in chunks
    )
    assert set(chunks.values_list("task_id", flat=True)) == {str(t.pk) for t in tasks}


def test_local_time_holds_each_delivery_until_its_hour(workspace, owner, sender, sink, settings):
    workspace.time_zone = "Europe/Lisbon"
    workspace.save()
    news = mailing_list(workspace)
    tokyo = ContactFactory(workspace=workspace, email="tokyo@example.net", time_zone="Asia/Tokyo")
    york = ContactFactory(
        workspace=workspace, email="york@example.net", time_zone="America/New_York"
    )
    lisbon = ContactFactory(workspace=workspace, email="lisbon@example.net", time_zone="")
    nowhere = ContactFactory(
        workspace=workspace, email="nowhere@example.net", time_zone="Mars/Base"
    )
    for contact in (tokyo, york, lisbon, nowhere):
        subscribe(contact, news)
    campaign = draft(workspace, owner, news)
    with freeze_time(datetime(2031, 1, 10, 12, 0, tzinfo=UTC)):
        nine = datetime(2031, 1, 15, 9, 0, tzinfo=UTC)  # 09:00 in Lisbon (WET, UTC+0)
        campaigns.schedule_campaign(campaign, user=owner, at=nine, local_time=True)
    expected = {
        "tokyo@example.net": datetime(2031, 1, 15, 0, 0, tzinfo=UTC),  # 09:00 JST
        "lisbon@example.net": nine,
        "nowhere@example.net": nine,  # an unknown zone: the workspace's
        "york@example.net": datetime(2031, 1, 15, 14, 0, tzinfo=UTC),  # 09:00 EST
    }
    with freeze_time(datetime(2031, 1, 14, 19, 0, 1, tzinfo=UTC)):
        assert pipeline.advance_campaigns()["started"] == 1
    campaign.refresh_from_db()
    rows = list(deliveries(campaign).order_by("pk"))
    assert {row.email: row.not_before for row in rows} == expected
    assert rows[0].email == "tokyo@example.net"  # ids follow the send times
    with freeze_time(datetime(2031, 1, 15, 0, 0, 1, tzinfo=UTC)):
        work(campaign)
    assert [r for m in sink.messages for r in m.recipients] == ["tokyo@example.net"]
    chunk = SendChunk.objects.for_workspace(workspace).get(campaign=campaign)
    assert (chunk.state, chunk.wake_at) == (ChunkState.WAITING, nine)
    with freeze_time(datetime(2031, 1, 15, 9, 0, 1, tzinfo=UTC)):
        pipeline.advance_campaigns()
    assert sorted(r for m in sink.messages for r in m.recipients) == [
        "lisbon@example.net",
        "nowhere@example.net",
        "tokyo@example.net",
    ]
    with freeze_time(datetime(2031, 1, 15, 14, 0, 1, tzinfo=UTC)):
        pipeline.advance_campaigns()
    campaign.refresh_from_db()
    assert len(sink.messages) == 4 and campaign.status == CampaignStatus.SENT


def test_dynamic_blocks_see_the_recipients_segments(workspace, owner, sender, sink):
    news = mailing_list(workspace)
    ann, bob = subscribers(workspace, news, 2)
    crm_services.add_tags(record_=ann, names=["vip"])
    vip = Tag.objects.for_workspace(workspace).get(name="vip")
    vips = segment_services.create_segment(
        workspace=workspace,
        name="VIPs",
        definition={"match": "all", "conditions": [{"type": "tag", "op": "has", "tag": vip.pk}]},
        actor=owner,
    )
    body = (
        f"<p>Hi{{% if segments contains {vips.pk} %}} VIP{{% endif %}}</p>"
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ postal_address }}</p>'
    )
    assert pipeline.referenced_segments(body) == {vips.pk}
    campaign = start_now(draft(workspace, owner, news, body=body), owner)
    work(campaign)
    html = {m.recipients[0]: m.message.get_body(("html",)).get_content() for m in sink.messages}
    assert "Hi VIP" in html[ann.email]
    assert "Hi VIP" not in html[bob.email] and "Hi" in html[bob.email]


def test_send_test_goes_through_the_transport_marked(workspace, owner, sender, sink):
    news = mailing_list(workspace)
    campaign = draft(workspace, owner, news)
    campaigns.send_test(campaign, user=owner, addresses=["me@example.org", " ME@example.org"])
    assert len(sink.messages) == 1
    message = sink.messages[0].message
    assert message["Subject"] == "[Test] News for Alex"
    with pytest.raises(campaigns.CampaignInvalid) as refused:
        campaigns.send_test(campaign, user=owner, addresses=["nope"])
    assert refused.value.errors == {"addresses": "“nope” is not a valid email address."}
    with pytest.raises(campaigns.CampaignInvalid):
        campaigns.send_test(campaign, user=owner, addresses=["reject@example.org"])


# --- View in browser -------------------------------------------------------------------------


def test_view_in_browser_shows_the_recipients_message(client, workspace, owner, sender, sink):
    news = mailing_list(workspace)
    subscribers(workspace, news, 1)
    campaign = start_now(draft(workspace, owner, news), owner)
    work(campaign)
    row = deliveries(campaign).get()
    token = tokens.sign("view", workspace.pk, row.pk)
    response = client.get(f"/m/{token}/")
    assert response.status_code == 200
    assert "Hello R0," in response.content.decode()
    assert "sandbox" in response.headers["Content-Security-Policy"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    missing = client.get(f"/m/{tampered}/")
    assert missing.status_code == 404
    assert "Message not found" in missing.content.decode()
    other = tokens.sign("view", workspace.pk + 1000, row.pk)  # another workspace's id
    assert client.get(f"/m/{other}/").status_code == 404
    unsub_kind = tokens.sign("unsub", workspace.pk, row.pk)
    assert client.get(f"/m/{unsub_kind}/").status_code == 404


def test_the_scheduler_runs_the_round_every_few_seconds(
    workspace, owner, sender, sink, django_capture_on_commit_callbacks
):
    from patron.core.scheduler import PERIODIC_JOBS, run_due_jobs
    from patron.mail import tasks

    job = PERIODIC_JOBS["patron.mail.tasks.advance_campaigns"]
    assert job.task is tasks.advance_campaigns and job.every == timedelta(seconds=5)
    news = mailing_list(workspace)
    subscribers(workspace, news, 2)
    campaign = draft(workspace, owner, news)
    later = timezone.now() + timedelta(minutes=10)
    campaigns.schedule_campaign(campaign, user=owner, at=later)
    with (
        freeze_time(later + timedelta(seconds=1)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert "patron.mail.tasks.advance_campaigns" in run_due_jobs()
    campaign.refresh_from_db()
    # The immediate backend ran the round, which started the send and its chunks.
    assert campaign.status == CampaignStatus.SENT and len(sink.messages) == 2


def test_a_campaign_that_no_longer_renders_is_paused_with_the_reason(
    workspace, owner, sender, sink
):
    news = mailing_list(workspace)
    subscribers(workspace, news, 2)
    campaign = start_now(draft(workspace, owner, news), owner)
    # Its list is deleted between the start and the workers.
    MailingList.objects.for_workspace(workspace).filter(pk=news.pk).delete()
    work(campaign)
    assert campaign.status == CampaignStatus.PAUSED
    assert "There is no list" in campaign.last_error
    assert set(deliveries(campaign).values_list("status", flat=True)) == {"queued"}
    assert sink.messages == []
