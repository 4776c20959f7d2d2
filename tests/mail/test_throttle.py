"""Sending speed limits: token buckets and slots in the database or Redis, shared by workers."""

from __future__ import annotations

import os
import uuid

import pytest

from patron.mail import smtp
from patron.mail.mime import build_message, message_id_for
from patron.mail.models import SendLimitSlot
from patron.mail.throttle import (
    DatabaseStore,
    Limit,
    RedisStore,
    Throttle,
    installation_throttle,
    parse_domain_limits,
)
from patron.mail.transports import Outcome, Outgoing, SmtpTransport
from tests.mail.smtp_servers import MailServer

REDIS_URL = os.environ.get("PATRON_TEST_REDIS_URL")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_domain_limits_are_parsed():
    assert parse_domain_limits(" gmail.com=50/4, Yahoo.com=20 ,*=100/8,slow.example=/1") == {
        "gmail.com": Limit(50, 4),
        "yahoo.com": Limit(20, 0),
        "*": Limit(100, 8),
        "slow.example": Limit(0, 1),
    }
    assert parse_domain_limits("") == {}


@pytest.mark.parametrize("bad", ["gmail.com", "=5", "gmail.com=fast", "x=5/many", "x=-1"])
def test_bad_domain_limits_say_what_is_wrong(bad):
    with pytest.raises(ValueError, match=r"expected|could not|invalid|negative"):
        parse_domain_limits(bad)


def test_no_limits_no_throttle(settings):
    settings.SEND_RATE = 0
    settings.DOMAIN_LIMITS = ""
    assert installation_throttle() is None
    settings.DOMAIN_LIMITS = "gmail.com=5"
    assert installation_throttle() is not None


@pytest.mark.django_db(transaction=True)
def test_database_bucket_refills_at_its_rate():
    clock = Clock()
    store = DatabaseStore(clock=clock)
    key = "patron:send:rate:example.com"
    assert store.take([(key, 10.0, 10.0, 25)]) == [(10, 0.0)]
    assert store.take([(key, 10.0, 10.0, 5)]) == [(0, 0.0)]
    clock.now += 0.55
    granted, left = store.take([(key, 10.0, 10.0, 5)])[0]
    assert granted == 5 and left == pytest.approx(0.5)
    clock.now += 100
    assert store.take([(key, 10.0, 10.0, 50)])[0][0] == 10  # never more than the burst


@pytest.mark.django_db(transaction=True)
def test_the_global_rate_paces_a_send():
    clock = Clock()
    throttle = Throttle(DatabaseStore(clock=clock), rate=100, sleep=clock.sleep)
    slices = list(throttle.paced(350))
    assert sum(slices) == 350
    assert slices[0] == 100
    # 250 messages after the first second's burst need 2.5 seconds more at 100/s.
    assert sum(clock.sleeps) == pytest.approx(2.5, abs=0.05)


@pytest.mark.django_db(transaction=True)
def test_two_throttles_share_the_database_counters():
    clock = Clock()
    first = Throttle(DatabaseStore(clock=clock), domains={"gmail.com": Limit(3, 0)})
    second = Throttle(DatabaseStore(clock=clock), domains={"gmail.com": Limit(3, 0)})
    one = first.admit(["gmail.com", "gmail.com"])
    two = second.admit(["gmail.com", "gmail.com", "example.com"])
    assert one.allowed == [0, 1]
    assert two.allowed == [0, 2]  # one gmail token was left; example.com is not limited
    assert set(two.held) == {1}
    after, why = two.held[1]
    assert 0 < after <= 1 / 3 + 1e-9 and "gmail.com" in why


@pytest.mark.django_db(transaction=True)
def test_database_slots_limit_concurrent_sends_and_expire():
    clock = Clock()
    store = DatabaseStore(clock=clock)
    assert store.acquire_slot("k", 2, "a", 300)
    assert store.acquire_slot("k", 2, "b", 300)
    assert not store.acquire_slot("k", 2, "c", 300)
    store.release_slot("k", "a")
    assert store.acquire_slot("k", 2, "c", 300)
    clock.now += 301  # b and c were never released (a crashed worker): their lease ends
    assert store.acquire_slot("k", 2, "d", 300)
    assert set(SendLimitSlot.objects.values_list("holder", flat=True)) == {"d"}


@pytest.mark.django_db(transaction=True)
def test_a_domain_at_its_concurrency_is_held_back_until_released():
    throttle = Throttle(DatabaseStore(), domains={"*": Limit(0, 1)})
    first = throttle.admit(["a.example", "b.example"])
    assert first.allowed == [0, 1]
    second = throttle.admit(["a.example", "c.example"])
    assert second.allowed == [1] and "under way" in second.held[0][1]
    throttle.release(first)
    throttle.release(second)
    assert throttle.admit(["a.example"]).allowed == [0]


@pytest.fixture
def redis_store():
    if not REDIS_URL:
        if os.environ.get("PATRON_TEST_REQUIRE_ALL") == "1":
            pytest.fail("Redis is required (PATRON_TEST_REQUIRE_ALL=1) but not configured")
        pytest.skip("Redis not configured (PATRON_TEST_REDIS_URL)")
    return RedisStore(REDIS_URL)


@pytest.mark.redis
def test_redis_buckets_and_slots_are_shared(redis_store):
    other = RedisStore(REDIS_URL or "")  # another worker: its own connection
    key = f"patron:test:{uuid.uuid4().hex}"
    try:
        assert redis_store.take([(key, 1.0, 5.0, 3)]) == [(3, pytest.approx(2.0, abs=0.01))]
        granted, left = other.take([(key, 1.0, 5.0, 3)])[0]
        assert granted == 2 and left < 1
        assert redis_store.acquire_slot(key + ":slots", 1, "a", 300)
        assert not other.acquire_slot(key + ":slots", 1, "b", 300)
        redis_store.release_slot(key + ":slots", "a")
        assert other.acquire_slot(key + ":slots", 1, "b", 300)
    finally:
        redis_store.client.delete(key, key + ":slots")


@pytest.mark.django_db(transaction=True)
def test_the_smtp_transport_holds_back_what_is_over_a_domain_limit():
    throttle = Throttle(DatabaseStore(), domains={"gmail.com": Limit(2, 0)})
    batch = []
    for n, to in enumerate(["a@gmail.com", "b@Gmail.com", "c@gmail.com", "d@example.com"]):
        data = build_message(
            from_name="A",
            from_email="a@acme.example",
            to_email=to,
            subject="s",
            html="<p>h</p>",
            text="t",
            message_id=message_id_for(str(n)),
        )
        batch.append(Outgoing(str(n), "bounce@acme.example", [to], data))
    with MailServer() as server:
        transport = SmtpTransport(
            smtp.parse_smtp_urls(server.url()), pool=smtp.ConnectionPool(), throttle=throttle
        )
        results = transport.send(batch)
        assert [r.key for r in results] == ["0", "1", "2", "3"]
        assert [r.outcome for r in results] == [
            Outcome.SENT,
            Outcome.SENT,
            Outcome.RETRY,
            Outcome.SENT,
        ]
        assert results[2].code is None and results[2].retry_after
        assert "held back" in results[2].reply
        assert sorted(m.recipients[0] for m in server.messages) == [
            "a@gmail.com",
            "b@Gmail.com",
            "d@example.com",
        ]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_take_more_than_the_bucket_holds():
    """Real concurrency: threads on their own connections take from one bucket at once."""
    import threading

    from django.conf import settings
    from django.db import connection

    if not settings.IS_POSTGRES:
        pytest.skip("SQLite has one writer at a time: nothing can interleave")
    store = DatabaseStore()
    key = f"patron:test:{uuid.uuid4().hex}"
    store.take([(key, 0.001, 20.0, 0)])  # the bucket exists, full: 20 tokens
    start = threading.Barrier(8)
    granted: list[int] = []
    slots: list[bool] = []

    def worker(number: int) -> None:
        try:
            start.wait(10)
            granted.append(store.take([(key, 0.001, 20.0, 5)])[0][0])
            slots.append(store.acquire_slot(key + ":slots", 3, f"w{number}", 300))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(granted) == 20 and sorted(granted) == [0, 0, 0, 0, 5, 5, 5, 5]
    assert slots.count(True) == 3
