"""The data generator's speed (rows/s) against saving rows one by one through the ORM."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Metric, main, peak_rss_mb, stopwatch, write_result


def run(database: str, args: argparse.Namespace) -> None:
    from generate import generate

    from patron.core.models import Workspace
    from patron.crm.models import Contact

    contacts = 2_000 if args.quick else args.contacts
    naive_rows = 200 if args.quick else 2_000

    result = generate(contacts=contacts, companies=contacts // 5, events=contacts * 2)
    workspace = Workspace.objects.get(pk=result.workspace_id)
    with stopwatch() as elapsed:
        for i in range(naive_rows):
            Contact.objects.create(
                workspace=workspace,
                first_name="Naive",
                last_name=str(i),
                email=f"naive{i}@example.org",
            )
    naive_rate = naive_rows / elapsed()
    rates = result.rows_per_second
    write_result(
        "generator",
        database,
        [
            Metric("contacts inserted", rates["contacts"], "rows/s", baseline=naive_rate),
            Metric("companies inserted", rates["companies"], "rows/s", baseline=naive_rate),
            Metric("events inserted", rates["events"], "rows/s", baseline=naive_rate),
            Metric("naive ORM create(), one row at a time", naive_rate, "rows/s"),
            Metric("contacts generated", contacts, "rows"),
            Metric("peak RSS", peak_rss_mb(), "MB"),
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=100_000)


if __name__ == "__main__":
    main(__file__, run, add_arguments)
