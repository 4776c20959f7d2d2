"""Segment counts on a large workspace, and incremental against full re-evaluation.

    python bench/bench_segments.py [--contacts N] [--events N] [--repeat N]
        [--database sqlite|postgresql | --database-url URL] [--quick] [--reuse]

Loads N contacts (default 1,000,000), N/5 companies and the given number of
events (default 20,000,000, spread over a year) with the generator, gives the
contacts custom values and tags (as ``bench_contact_list.py`` does), then:

- counts a segment of four conditions: a custom field ("tier is Gold"), a tag
  ("vip"), "opened at least 2 emails in the last 30 days" and "viewed a page
  whose URL contains /pricing", through the compiled query, ``--repeat`` times.
  The baseline is the naive way in the same run: load the contacts, their
  tags and the events of both kinds into Python and filter there (once; it
  must find the same number, or the script stops);
- evaluates the segment's memberships in full (the periodic re-evaluation),
  then records 10,000 new events about random contacts and lets the activity
  consumer re-evaluate only the contacts they are about. The baseline of the
  incremental time is the full re-evaluation of the same run.
"""

from __future__ import annotations

import argparse
import random
from datetime import timedelta
from typing import Any

from bench_contact_list import decorate
from common import Metric, Timing, main, stopwatch, write_result
from generate import generate

NEW_EVENTS = 10_000


def definition(workspace: Any) -> dict[str, Any]:
    from patron.crm.models import Tag

    vip = Tag.objects.for_workspace(workspace).get(name="vip")
    return {
        "match": "all",
        "conditions": [
            {"type": "field", "field": "custom.tier", "op": "in", "value": ["Gold"]},
            {"type": "tag", "op": "has", "tag": vip.pk},
            {
                "type": "event",
                "kind": "email.opened",
                "count": {"op": "at_least", "value": 2},
                "window": {"type": "last_days", "days": 30},
            },
            {
                "type": "event",
                "kind": "page.viewed",
                "filters": [{"property": "url", "op": "contains", "value": "/pricing"}],
            },
        ],
    }


def naive_count(workspace: Any) -> int:
    """Load what the four conditions look at into Python and filter there."""
    from django.utils import timezone

    from patron.activity.models import Event
    from patron.crm.models import Contact, Tag

    gold = {
        pk
        for pk, custom in Contact.objects.for_workspace(workspace)
        .values_list("pk", "custom")
        .iterator(chunk_size=20_000)
        if (custom or {}).get("tier") == "Gold"
    }
    vip = Tag.objects.for_workspace(workspace).get(name="vip")
    tagged = set(vip.contacts.values_list("pk", flat=True).iterator(chunk_size=20_000))
    since = timezone.now() - timedelta(days=30)
    opens: dict[int, int] = {}
    pricing: set[int] = set()
    events = (
        Event.objects.for_workspace(workspace)
        .filter(kind__in=["email.opened", "page.viewed"], contact_id__isnull=False)
        .values_list("contact_id", "kind", "occurred_at", "properties")
        .iterator(chunk_size=20_000)
    )
    for contact_id, kind, occurred_at, properties in events:
        if kind == "email.opened":
            if occurred_at >= since:
                opens[contact_id] = opens.get(contact_id, 0) + 1
        elif "/pricing" in str((properties or {}).get("url", "")).lower():
            pricing.add(contact_id)
    openers = {pk for pk, times in opens.items() if times >= 2}
    return len(gold & tagged & openers & pricing)


def run(database: str, args: argparse.Namespace) -> None:
    from django.utils import timezone

    from patron.activity.models import ConsumerCheckpoint, Event
    from patron.audience import segment_services, segments
    from patron.audience.models import Segment
    from patron.core.bulk import insert_rows
    from patron.core.models import Workspace
    from patron.crm.models import Contact

    contacts = 3_000 if args.quick else args.contacts
    events = 60_000 if args.quick else args.events
    repeat = 3 if args.quick else args.repeat
    workspace = reusable_workspace(contacts) if args.reuse else None
    if workspace is None:
        generated = generate(
            contacts=contacts, companies=contacts // 5, events=events, verbose=not args.quick
        )
        decorate(generated.workspace_id)
        workspace = Workspace.objects.get(pk=generated.workspace_id)
    tree = definition(workspace)

    counted = Timing()
    found = -1
    for _ in range(repeat):
        with counted.call():
            found = segments.count(workspace, tree)
    naive = Timing()
    with naive.call():
        expected = naive_count(workspace)
    if expected != found:
        raise SystemExit(f"the compiled query found {found} contacts, the naive way {expected}")

    # Memberships: a full evaluation (the baseline of the segment), then one more
    # full re-evaluation, timed; then 10,000 new events handled incrementally.
    segment = Segment.objects.create(workspace=workspace, name="Engaged VIPs", definition=tree)
    segment_services.refresh_segment(segment)
    full = Timing()
    with full.call():
        segment_services.refresh_segment(segment)
    ConsumerCheckpoint.objects.update_or_create(
        name=segment_services.CONSUMER,
        defaults={"position": Event.objects.unscoped().order_by("-id").values_list("id")[0][0]},
    )
    rng = random.Random(11)
    contact_ids = list(Contact.objects.for_workspace(workspace).values_list("pk", flat=True))
    now = timezone.now()
    rows = [
        (
            workspace.pk,
            rng.choice(["email.opened", "page.viewed"]),
            rng.choice(contact_ids),
            "",
            "",
            "",
            {"url": "/pricing"} if i % 2 else {"campaign_id": 52},
            now - timedelta(minutes=i % 600),
            now,
        )
        for i in range(NEW_EVENTS)
    ]
    insert_rows(
        Event,
        [
            "workspace_id",
            "kind",
            "contact_id",
            "visitor_id",
            "source_type",
            "source_id",
            "properties",
            "occurred_at",
            "recorded_at",
        ],
        rows,
    )
    affected = len({row[2] for row in rows})
    incremental = Timing()
    with incremental.call():
        handled = segment_services.consume_activity()
    if handled < NEW_EVENTS:
        raise SystemExit(f"the consumer handled {handled} of {NEW_EVENTS} new events")
    segment.refresh_from_db()
    with stopwatch() as check:
        after = segment_services.refresh_segment(segment)
    if after.entered or after.left:
        raise SystemExit(f"incremental evaluation missed changes: {after}")

    contact_count = Contact.objects.for_workspace(workspace).count()
    event_count = Event.objects.for_workspace(workspace).count()
    metrics = [
        Metric(
            "count, 4 conditions (custom field, tag, opened >= 2 in 30 days, "
            "visited /pricing): p50",
            counted.p50_ms,
            "ms",
            baseline=naive.p50_ms,
        ),
        Metric("count, 4 conditions: worst of the runs", max(counted.samples) * 1000, "ms"),
        Metric("naive count in Python (baseline)", naive.p50_ms, "ms"),
        Metric(
            "speed-up of the compiled query over the naive count",
            naive.p50_ms / counted.p50_ms,
            "x",
        ),
        Metric("contacts in the segment", found, "contacts"),
        Metric(
            f"incremental re-evaluation after {NEW_EVENTS:,} new events",
            incremental.p50_ms,
            "ms",
            baseline=full.p50_ms,
        ),
        Metric("full re-evaluation (baseline)", full.p50_ms, "ms"),
        Metric("contacts the new events are about", affected, "contacts"),
        Metric("check: full re-evaluation after the incremental one", check() * 1000, "ms"),
        Metric("contacts in the workspace", contact_count, "rows"),
        Metric("events in the workspace", event_count, "rows"),
    ]
    write_result("segments", database, metrics)


def reusable_workspace(contacts: int) -> Any:
    """The workspace an earlier run loaded with as many contacts, made ready to measure again.

    Its segments (and their entered/left events) go; the events an earlier run
    added stay, and the table's total is reported.
    """
    from django.db import connection

    from patron.activity.models import Event
    from patron.audience.models import Segment
    from patron.core.models import Workspace
    from patron.crm.models import Contact

    for workspace in Workspace.objects.filter(name__startswith="Benchmark").order_by("-pk"):
        if Contact.objects.for_workspace(workspace).count() == contacts:
            Segment.objects.for_workspace(workspace).delete()
            Event.objects.for_workspace(workspace).filter(
                kind__in=["segment.entered", "segment.left"]
            ).delete()
            # A migration since may have rebuilt an index: its statistics are gone.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE activity_event")
            return workspace
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed counts")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again on the data an earlier run loaded (when it has as many contacts)",
    )


if __name__ == "__main__":
    main("segments", __file__, run, add_arguments)
