"""Judging and recording tracking hits: machine or person, then the contact's timeline.

``process_hits()`` reads the hits the endpoints wrote (``processed_at`` is
null) once they have settled for ``TRACKING_SETTLE_SECONDS``, decides for each
whether a machine made it, and records every person's open and click as
``email.opened`` / ``email.clicked`` on the contact's timeline (properties:
campaign, delivery, and for clicks the link's number and address), where
segments, scoring and workflows read them. Machine hits stay out of the
timeline; reports count them apart. A hit is a machine's when:

- it is a HEAD request (a scanner checking the address, nobody looking);
- the browser names a known link scanner, security gateway or script;
- an open comes through a mail privacy proxy (Apple Mail Privacy Protection
  fetches every image from Apple's network, 17.0.0.0/8, as "Mozilla/5.0"
  and nothing more), which opens the message whether or not anyone reads it;
- it came within ``TRACKING_MACHINE_SECONDS`` of the message being made
  (a receiving server scanning links on arrival);
- two different links of one message were clicked within
  ``TRACKING_BURST_SECONDS`` (a scanner follows every link at once).

Safe to run in several workers at once: on PostgreSQL each batch is claimed
with ``FOR UPDATE SKIP LOCKED``; on SQLite writes are serialised anyway.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from patron.activity.services import NewEvent, record_many
from patron.tracking import ingest, links
from patron.tracking.models import Hit, HitKind, MachineReason

logger = logging.getLogger(__name__)

BATCH = 5000
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
PRIVACY_PROXY_AGENT = "Mozilla/5.0"
# Names link scanners, security gateways and scripts give themselves (lower case).
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|ppops|symantec|messagelabs|forcepoint|trend ?micro|"
    r"fireeye|trellix|ironport|cisco|bitdefender|sophos|zscaler|checkpoint|fortiguard|"
    r"safelinks|microsoft office existence discovery|skypeuripreview|slackbot|"
    r"python-requests|python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|java/|"
    r"okhttp|libwww|apache-httpclient|headlesschrome|phantomjs|bot\b|spider|crawler|"
    r"preview|scanner|scan\b"
)


def machine_reason(hit: Hit) -> str:
    """Why ``hit`` is a machine's (a ``MachineReason``), or "" for a person's.

    The burst rule needs the message's other clicks and is applied by ``process_hits``.
    """
    if hit.method == "HEAD":
        return MachineReason.HEAD_REQUEST
    agent = hit.user_agent.strip()
    if hit.kind == HitKind.OPEN and _privacy_proxy(agent, hit.ip):
        return MachineReason.PRIVACY_PROXY
    if agent and SCANNER_AGENTS.search(agent.lower()):
        return MachineReason.SCANNER_AGENT
    if hit.sent_at is not None:
        seconds = (hit.occurred_at - hit.sent_at).total_seconds()
        if seconds < settings.TRACKING_MACHINE_SECONDS:
            return MachineReason.TOO_SOON
    return ""


def _privacy_proxy(agent: str, ip: str | None) -> bool:
    if agent == PRIVACY_PROXY_AGENT:
        return True
    if ip:
        try:
            return ipaddress.ip_address(ip) in APPLE_NETWORK
        except ValueError:
            return False
    return False


def _bursts(hits: list[Hit]) -> set[int]:
    """The ids among ``hits`` (clicks) that belong to a burst over different links."""
    clicks = [h for h in hits if h.kind == HitKind.CLICK]
    if not clicks:
        return set()
    window = timedelta(seconds=settings.TRACKING_BURST_SECONDS)
    # The message's other clicks, judged already or not yet due, settle it too.
    earliest = min(h.occurred_at for h in clicks) - window
    latest = max(h.occurred_at for h in clicks) + window
    by_delivery: dict[tuple[int, int], list[tuple[datetime, int | None, int]]] = defaultdict(list)
    neighbours = Hit.objects.unscoped().filter(
        kind=HitKind.CLICK,
        delivery_id__in={h.delivery_id for h in clicks},
        occurred_at__gte=earliest,
        occurred_at__lte=latest,
    )
    for pk, workspace_id, delivery_id, link, occurred_at in neighbours.values_list(
        "pk", "workspace_id", "delivery_id", "link", "occurred_at"
    ):
        by_delivery[(workspace_id, delivery_id)].append((occurred_at, link, pk))
    burst: set[int] = set()
    for rows in by_delivery.values():
        rows.sort()
        for position, (at, link, pk) in enumerate(rows):
            for other_at, other_link, other_pk in rows[position + 1 :]:
                if other_at - at > window:
                    break
                if other_link != link:
                    burst.update((pk, other_pk))
    return burst


def replay_spool() -> int:
    """Write the hits that waited in the spool (the database was away); how many."""
    folder = settings.TRACKING_SPOOL_DIR
    if not folder.is_dir():
        return 0
    written = 0
    for path in sorted(folder.glob("*.jsonl")):
        hits = ingest.read_spool_file(path)
        try:
            ingest.insert_rows(hits)
        except DatabaseError:
            # Refused again (not just a database that was away): set the file aside, kept
            # for a person to look at, so that it does not stop the hits behind it.
            logger.exception("Spooled tracking hits refused again; kept in %s", path)
            path.rename(path.with_suffix(".refused"))
            continue
        path.unlink()  # after the commit: a crash in between writes them twice, never zero times
        written += len(hits)
    return written


def process_hits(*, now: datetime | None = None, limit: int = BATCH) -> int:
    """Judge the settled hits and record people's opens and clicks; how many were judged."""
    replay_spool()
    now = now or timezone.now()
    due = now - timedelta(seconds=settings.TRACKING_SETTLE_SECONDS)
    with transaction.atomic():
        query = (
            Hit.objects.unscoped()
            .filter(processed_at__isnull=True, occurred_at__lte=due)
            .order_by("occurred_at")
        )
        if connection.features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True)
        hits = list(query[:limit])
        if not hits:
            return 0
        burst = _bursts(hits)
        reasons: dict[str, list[int]] = defaultdict(list)
        people: list[Hit] = []
        for hit in hits:
            reason = machine_reason(hit)
            if not reason and hit.pk in burst:
                reason = MachineReason.ALL_LINKS
            if reason:
                reasons[reason].append(hit.pk)
            else:
                people.append(hit)
        processed = Hit.objects.unscoped().filter(pk__in=[h.pk for h in hits])
        processed.update(processed_at=now)
        for reason, ids in reasons.items():
            Hit.objects.unscoped().filter(pk__in=ids).update(machine=reason)
        record_many(_events(people))
    return len(hits)


def _events(hits: list[Hit]) -> list[NewEvent]:
    urls: dict[tuple[int, int], str] = {}
    campaigns = {(h.workspace_id, h.campaign_id) for h in hits if h.kind == HitKind.CLICK}
    for workspace_id, campaign_id in campaigns:
        for index, url in links.campaign_links(workspace_id, campaign_id).items():
            urls[(campaign_id, index)] = url
    events = []
    for hit in hits:
        properties: dict[str, object] = {"campaign": hit.campaign_id, "delivery": hit.delivery_id}
        kind = "email.opened"
        if hit.kind == HitKind.CLICK:
            kind = "email.clicked"
            properties["link"] = hit.link
            properties["url"] = urls.get((hit.campaign_id, hit.link or 0), "")
        events.append(
            NewEvent(
                workspace_id=hit.workspace_id,
                kind=kind,
                contact_id=hit.contact_id,
                properties=properties,
                occurred_at=hit.occurred_at,
                source_type="mail.campaign",
                source_id=str(hit.campaign_id),
            )
        )
    return events
