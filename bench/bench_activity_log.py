"""Writing the activity log, one event at a time and in bulk, and reading it as a consumer.

    python bench/bench_activity_log.py [--events N] [--singles N] [--batch N]
        [--database sqlite|postgresql | --database-url URL] [--quick]

record() one call per event is the baseline of record_many(); consume() hands
every event (those written above: about --events) to a handler that does
nothing, moving its durable checkpoint batch by batch, against the baseline of
reading the same events in the same batches without a checkpoint.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Iterator
from typing import Any

from common import Metric, Timing, main, write_result
from generate import Rows, generate


def _events(workspace_id: int, count: int, contact_ids: list[int]) -> Iterator[dict[str, Any]]:
    """Realistic events as record()'s keyword arguments."""
    for row in Rows(workspace_id, seed=3).events(count, contact_ids):
        _, kind, contact_id, visitor_id, source_type, source_id, properties, occurred, _ = row
        yield {
            "kind": kind,
            "contact_id": contact_id,
            "visitor_id": visitor_id,
            "source": (source_type, source_id) if source_type else None,
            "properties": properties,
            "occurred_at": occurred,
        }


def run(database: str, args: argparse.Namespace) -> None:
    from patron.activity.models import Event
    from patron.activity.services import NewEvent, consume, record, record_many
    from patron.crm.models import Contact

    singles = min(args.singles, 100) if args.quick else args.singles
    bulk = min(args.events, 2_000) if args.quick else args.events
    batch = args.batch

    workspace_id = generate(contacts=1_000, companies=100, events=0, verbose=False).workspace_id
    contact_ids = list(
        Contact.objects.for_workspace(workspace_id).order_by("pk").values_list("pk", flat=True)
    )

    def new_event(event: dict[str, Any]) -> NewEvent:
        source_type, source_id = event.pop("source") or ("", "")
        return NewEvent(
            workspace_id=workspace_id, source_type=source_type, source_id=source_id, **event
        )

    # record() and record_many() take turns, and so do consume() and the plain
    # read: should the machine grow busier halfway, both sides slow down alike.
    one_by_one, in_bulk = Timing(), Timing()
    for_record = _events(workspace_id, singles, contact_ids)
    for_record_many = (new_event(e) for e in _events(workspace_id, bulk, contact_ids))
    singles_per_turn = max(1, math.ceil(singles / max(1, math.ceil(bulk / batch))))
    while True:
        chunk = list(itertools.islice(for_record_many, batch))
        one_at_a_time = list(itertools.islice(for_record, singles_per_turn))
        if not chunk and not one_at_a_time:
            break
        if chunk:
            with in_bulk.call(len(chunk)):
                record_many(chunk, batch_size=batch)
        for event in one_at_a_time:
            with one_by_one.call():
                record(workspace=workspace_id, **event)

    def do_nothing(events: list[Event]) -> None:
        pass

    total = Event.objects.unscoped().count()
    consumed, plain = Timing(), Timing()
    last_id = 0
    while True:
        with consumed.call() as call:
            call.items = consume("bench", do_nothing, batch_size=batch)
        with plain.call() as call:
            rows = list(Event.objects.unscoped().filter(pk__gt=last_id).order_by("pk")[:batch])
            call.items = len(rows)
        if not rows:
            break
        last_id = rows[-1].pk

    if consumed.items != total or plain.items != total:
        raise AssertionError(f"read {consumed.items} and {plain.items} of {total} events")

    write_result(
        "activity_log",
        database,
        [
            Metric(
                f"record_many(), batches of {batch}",
                in_bulk.rate,
                "events/s",
                baseline=one_by_one.rate,
            ),
            Metric("record(), one event per call", one_by_one.rate, "events/s"),
            Metric("record(): p50 per call", one_by_one.p50_ms, "ms"),
            Metric("record(): p95 per call", one_by_one.p95_ms, "ms"),
            Metric(f"record_many(): p50 per {batch}", in_bulk.p50_ms, "ms"),
            Metric(f"record_many(): p95 per {batch}", in_bulk.p95_ms, "ms"),
            Metric(
                f"consume() with checkpoint, batches of {batch}",
                consumed.rate,
                "events/s",
                baseline=plain.rate,
            ),
            Metric("reading the same batches, no checkpoint", plain.rate, "events/s"),
            Metric(f"consume(): p50 per {batch}", consumed.p50_ms, "ms"),
            Metric(f"consume(): p95 per {batch}", consumed.p95_ms, "ms"),
            Metric("events consumed", consumed.items, "events"),
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=100_000, help="events for record_many()")
    parser.add_argument("--singles", type=int, default=2_000, help="events for record()")
    parser.add_argument("--batch", type=int, default=1_000, help="events per call")


if __name__ == "__main__":
    main("activity_log", __file__, run, add_arguments)
