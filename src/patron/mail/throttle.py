"""Sending speed limits, shared by every worker process and machine.

Two kinds of limit, from the settings:

- ``PATRON_SEND_RATE``: messages per second over the whole installation
  (0: none). A send paces itself: it delivers as many messages as there are
  tokens and sleeps until the next ones are due.
- ``PATRON_DOMAIN_LIMITS``: per recipient domain, ``domain=rate/concurrency``
  pairs, comma separated, e.g. ``gmail.com=50/4,yahoo.com=20,*=100/8``
  (``*``: every other domain). ``rate`` is messages per second, ``concurrency``
  how many sends (worker batches) may deliver to that domain at the same time.
  Messages over a domain's limit are not attempted: they come back as RETRY
  with ``retry_after`` set, for the caller to schedule without counting an
  attempt.

The counters are token buckets and leased slots, kept in Redis when
``PATRON_REDIS_URL`` is set (one Lua script per batch, atomic on the server,
timed by the server's clock) and in the database otherwise (rows locked in one
transaction: ``SendLimitBucket``, ``SendLimitSlot``). With no limit configured
the transport does not touch either.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

GLOBAL_KEY = "patron:send:global"
# A slot a crashed worker never gave back frees itself after this long.
SLOT_LEASE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float = 0.0  # messages per second; 0: none
    concurrency: int = 0  # simultaneous sends; 0: none


def parse_domain_limits(value: str) -> dict[str, Limit]:
    """``gmail.com=50/4,*=100`` as {domain: Limit}; raises ValueError saying what is wrong."""
    limits: dict[str, Limit] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        domain, equals, spec = item.partition("=")
        domain = domain.strip().lower()
        if not equals or not domain:
            raise ValueError(f"{item!r}: expected domain=rate or domain=rate/concurrency")
        rate_text, _, concurrency_text = spec.partition("/")
        try:
            rate = float(rate_text) if rate_text.strip() else 0.0
            concurrency = int(concurrency_text) if concurrency_text.strip() else 0
        except ValueError as error:
            raise ValueError(f"{item!r}: {error}") from error
        if rate < 0 or concurrency < 0:
            raise ValueError(f"{item!r}: limits cannot be negative")
        limits[domain] = Limit(rate, concurrency)
    return limits


# --- Stores -----------------------------------------------------------------------------


class Store(Protocol):
    def take(self, requests: Sequence[tuple[str, float, float, int]]) -> list[tuple[int, float]]:
        """For each (key, rate, burst, wanted): (tokens granted, tokens left)."""
        ...

    def acquire_slot(self, key: str, limit: int, holder: str, lease: float) -> bool: ...

    def release_slot(self, key: str, holder: str) -> None: ...


_TAKE_SCRIPT = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local out = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[i * 3 - 2])
  local burst = tonumber(ARGV[i * 3 - 1])
  local wanted = tonumber(ARGV[i * 3])
  local state = redis.call('HMGET', key, 't', 'u')
  local tokens = tonumber(state[1])
  local updated = tonumber(state[2])
  if tokens == nil then tokens = burst; updated = now end
  tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
  local granted = math.min(wanted, math.floor(tokens))
  tokens = tokens - granted
  redis.call('HSET', key, 't', tostring(tokens), 'u', tostring(now))
  redis.call('EXPIRE', key, math.ceil(burst / rate) + 60)
  out[#out + 1] = granted
  out[#out + 1] = tostring(tokens)
end
return out
"""

_SLOT_SCRIPT = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
  return 1
end
return 0
"""


class RedisStore:
    """Buckets and slots in Redis: one script call per batch."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self._take = self.client.register_script(_TAKE_SCRIPT)
        self._slot = self.client.register_script(_SLOT_SCRIPT)

    def take(self, requests: Sequence[tuple[str, float, float, int]]) -> list[tuple[int, float]]:
        if not requests:
            return []
        keys = [key for key, _, _, _ in requests]
        args: list[float | int] = []
        for _, rate, burst, wanted in requests:
            args += [rate, burst, wanted]
        raw = self._take(keys=keys, args=args)
        return [(int(raw[i]), float(raw[i + 1])) for i in range(0, len(raw), 2)]

    def acquire_slot(self, key: str, limit: int, holder: str, lease: float) -> bool:
        return bool(self._slot(keys=[key], args=[limit, holder, lease]))

    def release_slot(self, key: str, holder: str) -> None:
        self.client.zrem(key, holder)


class DatabaseStore:
    """Buckets and slots as rows, changed under row locks in one transaction."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def take(self, requests: Sequence[tuple[str, float, float, int]]) -> list[tuple[int, float]]:
        from patron.mail.models import SendLimitBucket

        if not requests:
            return []
        now = self.clock()
        keys = [key for key, _, _, _ in requests]
        with transaction.atomic():
            SendLimitBucket.objects.bulk_create(
                [
                    SendLimitBucket(key=key, tokens=burst, updated_at=now)
                    for key, _, burst, _ in requests
                ],
                ignore_conflicts=True,
            )
            rows = {
                row.key: row
                for row in SendLimitBucket.objects.select_for_update().filter(key__in=keys)
            }
            out: list[tuple[int, float]] = []
            for key, rate, burst, wanted in requests:
                row = rows[key]
                tokens = min(burst, row.tokens + max(0.0, now - row.updated_at) * rate)
                granted = min(wanted, int(tokens))
                row.tokens, row.updated_at = tokens - granted, now
                out.append((granted, row.tokens))
            SendLimitBucket.objects.bulk_update(list(rows.values()), ["tokens", "updated_at"])
        return out

    def acquire_slot(self, key: str, limit: int, holder: str, lease: float) -> bool:
        from patron.mail.models import SendLimitBucket, SendLimitSlot

        now = self.clock()
        with transaction.atomic():
            # The bucket row of the key is the lock that serialises its slots.
            SendLimitBucket.objects.bulk_create(
                [SendLimitBucket(key=key, tokens=0, updated_at=now)], ignore_conflicts=True
            )
            SendLimitBucket.objects.select_for_update().filter(key=key).first()
            SendLimitSlot.objects.filter(key=key, expires_at__lt=now).delete()
            if SendLimitSlot.objects.filter(key=key).count() >= limit:
                return False
            SendLimitSlot.objects.create(key=key, holder=holder, expires_at=now + lease)
            return True

    def release_slot(self, key: str, holder: str) -> None:
        from patron.mail.models import SendLimitSlot

        SendLimitSlot.objects.filter(key=key, holder=holder).delete()


# --- The throttle -----------------------------------------------------------------------


@dataclass
class Admission:
    """Which messages of a batch may go now, and the slots held while they do."""

    allowed: list[int]
    held: dict[int, tuple[float, str]]  # index -> (retry after seconds, why)
    slots: list[tuple[str, str]] = field(default_factory=list)


class Throttle:
    def __init__(
        self,
        store: Store,
        *,
        rate: float = 0.0,
        domains: dict[str, Limit] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.rate = rate
        self.domains = dict(domains or {})
        self.default = self.domains.pop("*", None)
        self._sleep = sleep or time.sleep

    def limit_for(self, domain: str) -> Limit | None:
        return self.domains.get(domain, self.default)

    def admit(self, domains: Sequence[str]) -> Admission:
        """Apply the per-domain limits to a batch (one recipient domain per message)."""
        by_domain: dict[str, list[int]] = {}
        for index, domain in enumerate(domains):
            by_domain.setdefault(domain.lower(), []).append(index)
        admission = Admission(allowed=[], held={})
        rated: list[tuple[str, list[int], Limit]] = []
        for domain, indexes in by_domain.items():
            limit = self.limit_for(domain)
            if limit is None:
                admission.allowed.extend(indexes)
                continue
            if limit.concurrency:
                key, holder = f"patron:send:slots:{domain}", uuid.uuid4().hex
                if not self.store.acquire_slot(key, limit.concurrency, holder, SLOT_LEASE_SECONDS):
                    why = f"held back: {limit.concurrency} sends to {domain} are under way"
                    admission.held.update({i: (1.0, why) for i in indexes})
                    continue
                admission.slots.append((key, holder))
            if limit.rate:
                rated.append((domain, indexes, limit))
            else:
                admission.allowed.extend(indexes)
        requests = [
            (f"patron:send:rate:{domain}", limit.rate, max(1.0, limit.rate), len(indexes))
            for domain, indexes, limit in rated
        ]
        for (domain, indexes, limit), (granted, left) in zip(
            rated, self.store.take(requests), strict=True
        ):
            admission.allowed.extend(indexes[:granted])
            missing = len(indexes) - granted
            if missing:
                # When the last of them would be due at this domain's rate.
                after = (missing - left) / limit.rate
                why = f"held back: {domain} takes {limit.rate:g} messages per second"
                admission.held.update({i: (after, why) for i in indexes[granted:]})
        admission.allowed.sort()
        return admission

    def release(self, admission: Admission) -> None:
        for key, holder in admission.slots:
            self.store.release_slot(key, holder)
        admission.slots = []

    def paced(self, count: int) -> Iterator[int]:
        """Sizes of the slices of ``count`` messages to send one after the other,
        sleeping between them as the installation's rate requires."""
        if not self.rate:
            if count:
                yield count
            return
        burst = max(1.0, self.rate)
        while count > 0:
            [(granted, left)] = self.store.take([(GLOBAL_KEY, self.rate, burst, count)])
            if granted:
                count -= granted
                yield granted
            if count > 0:
                wait = (min(count, burst) - left) / self.rate
                self._sleep(min(max(wait, 0.001), 1.0))


_throttles: dict[tuple[str, float, str], Throttle | None] = {}


def installation_throttle() -> Throttle | None:
    """The throttle the settings describe, or None when there is no limit at all."""
    key = (settings.REDIS_URL or "", settings.SEND_RATE, settings.DOMAIN_LIMITS)
    if key not in _throttles:
        try:
            domains = parse_domain_limits(settings.DOMAIN_LIMITS)
        except ValueError as error:
            raise ImproperlyConfigured(f"PATRON_DOMAIN_LIMITS: {error}") from error
        if settings.SEND_RATE < 0:
            raise ImproperlyConfigured("PATRON_SEND_RATE cannot be negative")
        if not settings.SEND_RATE and not domains:
            _throttles[key] = None
        else:
            store: Store = RedisStore(settings.REDIS_URL) if settings.REDIS_URL else DatabaseStore()
            _throttles[key] = Throttle(store, rate=settings.SEND_RATE, domains=domains)
    return _throttles[key]
