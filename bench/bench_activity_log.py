"""Writing the activity log (record() one by one vs record_many()) and reading it with consume()."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Metric, main, stopwatch, write_result


def run(database: str, args: argparse.Namespace) -> None:
    from generate import generate

    from patron.activity.services import NewEvent, consume, record, record_many

    one_by_one = 200 if args.quick else 3_000
    bulk = 2_000 if args.quick else args.events
    workspace_id = generate(contacts=1_000, companies=100, events=0).workspace_id

    with stopwatch() as elapsed:
        for i in range(one_by_one):
            record(
                workspace=workspace_id,
                kind="page.viewed",
                contact_id=1 + i % 1000,
                properties={"url": "/pricing"},
            )
    single_rate = one_by_one / elapsed()

    events = (
        NewEvent(
            workspace_id=workspace_id,
            kind="page.viewed",
            contact_id=1 + i % 1000,
            properties={"url": "/pricing"},
        )
        for i in range(bulk)
    )
    with stopwatch() as elapsed:
        record_many(events, batch_size=2_000)
    bulk_rate = bulk / elapsed()

    handled = 0

    def handler(batch: list) -> None:  # type: ignore[type-arg]
        nonlocal handled
        handled += len(batch)

    total = one_by_one + bulk
    with stopwatch() as elapsed:
        while consume("bench", handler, batch_size=1_000):
            pass
    consume_rate = handled / elapsed()
    assert handled == total, (handled, total)

    write_result(
        "activity_log",
        database,
        [
            Metric("record_many() bulk insert", bulk_rate, "events/s", baseline=single_rate),
            Metric("record() one event per call", single_rate, "events/s"),
            Metric("consume() with checkpoints, batches of 1000", consume_rate, "events/s"),
            Metric("events consumed", handled, "events"),
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=200_000)


if __name__ == "__main__":
    main(__file__, run, add_arguments)
