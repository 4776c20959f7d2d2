"""The send pipeline under crashes and misbehaving servers: nothing lost, duplicates bounded.

(a) Real worker processes (``patron worker``, the database queue) on
    PostgreSQL are killed with SIGKILL three times during a 20,000-recipient
    send and started again: every recipient gets the campaign; the only
    duplicates are messages that were in flight (claimed, not yet recorded)
    at a kill; a graceful stop (SIGTERM) leaves nothing in flight.
(b) A server answering 10% of transactions with 421/451 and dropping 2% of
    connections in the middle of DATA: everyone gets the campaign exactly
    once, attempts stay bounded, the campaign finishes.
(c) Property: an address suppressed or unsubscribed before its message goes
    out is never contacted, whatever else happens around it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from patron.audience import suppression
from patron.audience.models import Subscription, SubscriptionStatus
from patron.crm.models import Contact
from patron.mail import campaigns, pipeline
from patron.mail.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    OutboxMessage,
    SendChunk,
)
from tests.factories import UserFactory, WorkspaceFactory
from tests.mail.campaign_helpers import draft, mailing_list, subscribe, verified_sender

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

from sinklib import Sink  # noqa: E402  (the C sink of the benchmarks, with its log)

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def many_subscribers(workspace, to, count: int) -> None:
    """``count`` subscribed contacts, written in bulk."""
    Contact.objects.bulk_create(
        (
            Contact(workspace=workspace, first_name=f"P{n}", email=f"p{n}@example.net")
            for n in range(count)
        ),
        batch_size=2000,
    )
    ids = Contact.objects.for_workspace(workspace).values_list("pk", flat=True)
    Subscription.objects.bulk_create(
        (
            Subscription(
                workspace=workspace,
                contact_id=pk,
                mailing_list=to,
                status=SubscriptionStatus.SUBSCRIBED,
            )
            for pk in ids.iterator()
        ),
        batch_size=2000,
    )


def rows(campaign: Campaign):
    return Delivery.objects.for_workspace(campaign.workspace_id).filter(campaign=campaign)


# --- (a) kill -9 --------------------------------------------------------------------------


class Workers:
    """``patron worker`` processes against the test database."""

    def __init__(self, count: int, env: dict[str, str], log_dir: Path) -> None:
        self.count = count
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self) -> None:
        for _ in range(self.count):
            self.started += 1
            log = (self.log_dir / f"worker-{self.started}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "patron", "worker"],
                    env=self.env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def signal_all(self, signum: int) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)
        deadline = time.monotonic() + 60
        for process in self.processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
        self.processes = []


def in_flight(campaign: Campaign) -> int:
    """Deliveries claimed by a worker and not yet recorded."""
    return rows(campaign).filter(status=DeliveryStatus.SENDING).count()


def held(campaign: Campaign, *, since: datetime, lease_seconds: float) -> int:
    """Deliveries claimed by the workers started at ``since``: a row a killed worker left
    behind keeps its lease for ``lease_seconds`` after its claim, which came before."""
    started_leases = since + timedelta(seconds=lease_seconds)
    return in_flight_rows(campaign).filter(lease_until__gt=started_leases).count()


def in_flight_rows(campaign: Campaign):
    return rows(campaign).filter(status=DeliveryStatus.SENDING)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_workers_killed_three_times_lose_nothing(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("real worker processes need PostgreSQL (concurrent writers)")
    total = 20_000
    workspace = WorkspaceFactory()
    owner = UserFactory()
    verified_sender(workspace)
    news = mailing_list(workspace)
    many_subscribers(workspace, news, total)
    database = connection.settings_dict
    with Sink(log=tmp_path / "sink.log") as sink:
        env = {
            **os.environ,
            "PATRON_TESTING": "0",
            "PATRON_DATABASE_URL": (
                f"postgresql://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
                f"{database['PORT'] or 5432}/{database['NAME']}"
            ),
            "PATRON_SECRET_KEY": django_settings.SECRET_KEY,
            "PATRON_EMAIL_TRANSPORT": "smtp",
            "PATRON_SMTP_URLS": sink.url,
            "PATRON_SEND_BATCH_SIZE": "100",
            "PATRON_SEND_CHUNK_SIZE": "2000",
            "PATRON_SEND_CHUNK_SECONDS": "5",
            "PATRON_SEND_LEASE_SECONDS": "10",
            "PATRON_REDIS_URL": "",
            "PATRON_LOG_LEVEL": "WARNING",
            "PATRON_VAR_DIR": str(tmp_path),
        }
        workers = Workers(2, env, tmp_path)
        # The scheduler's round runs here: with the workers' settings.
        with override_settings(
            TASKS=DATABASE_QUEUE,
            SEND_BATCH_SIZE=100,
            SEND_CHUNK_SIZE=2000,
            SEND_CHUNK_SECONDS=5,
            SEND_LEASE_SECONDS=10,
        ):
            campaign = draft(workspace, owner, news)
            campaigns.schedule_campaign(campaign, user=owner)  # a worker will start it
            workers.start()
            kills: list[dict[str, int]] = []
            graceful_in_flight = None
            deadline = time.monotonic() + float(os.environ.get("PATRON_TEST_KILL_DEADLINE", "420"))
            while time.monotonic() < deadline:
                pipeline.advance_campaigns()  # the scheduler's round
                campaign.refresh_from_db()
                if campaign.status == CampaignStatus.SENT:
                    break
                received = sink.stats()["messages"]
                if len(kills) < 3 and received >= total * (len(kills) + 1) // 5:
                    workers.signal_all(signal.SIGKILL)
                    kills.append({"received": received, "in_flight": in_flight(campaign)})
                    started = timezone.now()
                    workers.start()
                elif len(kills) == 3 and graceful_in_flight is None and received >= total * 0.8:
                    workers.signal_all(signal.SIGTERM)  # waits for the current chunk task
                    graceful_in_flight = held(campaign, since=started, lease_seconds=10)
                    workers.start()
                time.sleep(0.5)
            workers.signal_all(signal.SIGTERM)
        receipts = Counter(recipient for _id, recipient in sink.log_lines())
    campaign.refresh_from_db()
    duplicates = sum(receipts.values()) - len(receipts)
    report = (
        f"kills: {kills}; in flight at the graceful stop: {graceful_in_flight}; "
        f"received {sum(receipts.values())} for {len(receipts)} recipients, "
        f"{duplicates} duplicates"
    )
    print(report)
    assert campaign.status == CampaignStatus.SENT, report
    assert len(kills) == 3 and graceful_in_flight == 0, report
    assert len(receipts) == total, report  # everyone got it
    assert campaign.sent == total and rows(campaign).filter(status="sent").count() == total
    # Only messages in flight at a kill can go twice.
    assert duplicates <= sum(kill["in_flight"] for kill in kills), report
    assert not SendChunk.objects.for_workspace(workspace).exclude(state="done").exists()


# --- (b) a misbehaving server -------------------------------------------------------------


@pytest.mark.django_db
def test_a_flaky_server_gets_everyone_once(workspace, owner, settings, tmp_path):
    total = 1500
    settings.SEND_RETRY_SECONDS = 0
    settings.SEND_MAX_ATTEMPTS = 8
    settings.SEND_BATCH_SIZE = 250
    verified_sender(workspace)
    news = mailing_list(workspace)
    many_subscribers(workspace, news, total)
    # 5% answered 451, 5% answered 421 then closed, 2% of DATA cut off mid-way.
    with Sink(log=tmp_path / "sink.log", tempfail=5, close421=5, drop=2, seed=7) as sink:
        settings.EMAIL_TRANSPORT = "smtp"
        settings.SMTP_URLS = [sink.url]
        campaign = draft(workspace, owner, news)
        campaigns.schedule_campaign(campaign, user=owner)
        pipeline.start_campaign(campaign.pk)
        for _round in range(20):
            for chunk_id in SendChunk.objects.for_workspace(workspace).values_list("pk", flat=True):
                pipeline.run_chunk(chunk_id)
            pipeline.advance_campaigns()
            campaign.refresh_from_db()
            if campaign.status == CampaignStatus.SENT:
                break
        receipts = Counter(recipient for _id, recipient in sink.log_lines())
        stats = sink.stats()
    refused = {key: stats.get(key, 0) for key in ("tempfail", "closed421", "dropped")}
    print(f"refused by the server: {refused}")
    assert campaign.status == CampaignStatus.SENT
    assert all(refused.values()), refused
    assert len(receipts) == total and set(receipts.values()) == {1}
    attempts = list(rows(campaign).values_list("attempts", flat=True))
    assert max(attempts) <= settings.SEND_MAX_ATTEMPTS
    assert sum(attempts) > total  # retries happened
    assert (campaign.sent, campaign.failed) == (total, 0)


# --- (c) suppressed and unsubscribed addresses -------------------------------------------

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 11)),
        st.tuples(st.just("suppress"), st.integers(0, 11)),
        st.tuples(st.just("unsubscribe"), st.integers(0, 11)),
        st.tuples(st.just("work"), st.integers(1, 4)),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
# Unsubscribed before ever subscribing, then subscribed: mailed like anyone who joined.
@example(operations=[("unsubscribe", 3), ("add", 3), ("work", 1)])
def test_a_suppressed_or_unsubscribed_address_is_never_contacted(operations, settings):
    """Addresses join the audience, get suppressed or unsubscribe, while workers send."""
    settings.EMAIL_TRANSPORT = "capture"
    settings.SEND_BATCH_SIZE = 2
    workspace = WorkspaceFactory()
    owner = UserFactory()
    verified_sender(workspace)
    news = mailing_list(workspace)
    people: dict[int, Contact] = {}
    # Addresses blocked before any message reached them: they must never get one.
    never: set[str] = set()

    def person(n: int) -> Contact:
        if n not in people:
            people[n] = Contact.objects.create(workspace=workspace, email=f"p{n}@example.net")
        return people[n]

    def sent_to() -> set[str]:
        return {
            address
            for recipients in OutboxMessage.objects.filter(workspace=workspace).values_list(
                "to", flat=True
            )
            for address in recipients
        }

    for n in range(3):  # a few subscribers before the start
        subscribe(person(n), news)
    campaign = draft(workspace, owner, news)
    campaigns.schedule_campaign(campaign, user=owner)
    for kind, n in operations:
        if kind == "add":
            contact = person(n)
            if not Subscription.objects.for_workspace(workspace).filter(contact=contact).exists():
                subscribe(contact, news)
        elif kind in ("suppress", "unsubscribe"):
            address = person(n).email
            if kind == "suppress":
                suppression.suppress_addresses(
                    workspace=workspace, emails=[address], reason="manual"
                )
                blocked = True
            else:
                # Unsubscribing someone who never subscribed changes nothing: a later
                # "add" subscribes them for the first time, and then they are mailed.
                blocked = bool(
                    Subscription.objects.for_workspace(workspace)
                    .filter(contact=person(n))
                    .update(status=SubscriptionStatus.UNSUBSCRIBED)
                )
            if blocked and address not in sent_to():
                never.add(address)
        else:
            if campaign.status == CampaignStatus.SCHEDULED:
                pipeline.start_campaign(campaign.pk)
            chunks = SendChunk.objects.for_workspace(workspace).values_list("pk", flat=True)
            for chunk_id in list(chunks)[:n]:
                pipeline.run_chunk(chunk_id)
            campaign.refresh_from_db()
        delivered = sent_to()
        assert not (delivered & never), (delivered & never, operations)
        # The Outbox and the deliveries agree: each message is a sent row.
        assert delivered == set(
            rows(campaign).filter(status=DeliveryStatus.SENT).values_list("email", flat=True)
        )
