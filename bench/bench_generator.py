"""The data generator's rows/s, against saving the same rows one by one through the ORM.

    python bench/bench_generator.py [--contacts N] [--companies N] [--events N]
        [--sample N] [--database sqlite|postgresql | --database-url URL] [--quick]

The baseline creates a small sample of each table with ``Model.objects.create()``
one row at a time (in a workspace of its own) and is extrapolated per row.
"""

from __future__ import annotations

import argparse
from typing import Any

from common import Metric, Timing, main, peak_rss_mb, write_result
from generate import COMPANY_FIELDS, CONTACT_FIELDS, EVENT_FIELDS, Rows, bench_workspace, generate

TABLES = ("companies", "contacts", "events")


def create_one_by_one(timings: dict[str, Timing], sample: int, *, seed: int) -> None:
    """Create ``sample`` rows per table one ``create()`` at a time, timing each."""
    from patron.activity.models import Event
    from patron.crm.models import Company, Contact

    make = Rows(bench_workspace("bench-naive").pk, seed=seed)

    def create(table: str, model: Any, names: tuple[str, ...], rows: Any) -> list[int]:
        ids = []
        for row in rows:
            with timings[table].call():
                ids.append(model.objects.create(**dict(zip(names, row, strict=True))).pk)
        return ids

    company_ids = create("companies", Company, COMPANY_FIELDS, make.companies(sample))
    contact_ids = create(
        "contacts",
        Contact,
        CONTACT_FIELDS,
        make.contacts(sample, company_ids, number_from=seed * 1_000_000),
    )
    create("events", Event, EVENT_FIELDS, make.events(sample, contact_ids))


def run(database: str, args: argparse.Namespace) -> None:
    contacts = min(args.contacts, 1_000) if args.quick else args.contacts
    companies = contacts // 10 if args.companies is None else args.companies
    events = contacts * 3 if args.events is None else args.events
    sample = min(args.sample, 30) if args.quick else args.sample

    # Half the baseline before the load and half after: it sees small tables and
    # large ones, and a machine growing busier meanwhile slows both sides.
    naive = {table: Timing() for table in TABLES}
    create_one_by_one(naive, sample - sample // 2, seed=2)
    result = generate(contacts=contacts, companies=companies, events=events, verbose=not args.quick)
    create_one_by_one(naive, sample // 2, seed=3)

    rates = result.rows_per_second
    metrics = [
        Metric(f"{table}: generate()", rates[table], "rows/s", baseline=naive[table].rate)
        for table in TABLES
    ]
    total_rows = sum(result.rows.values())
    total_seconds = sum(result.seconds.values())
    naive_seconds = sum(result.rows[table] / naive[table].rate for table in TABLES)
    metrics += [
        Metric(
            "all tables: generate()",
            total_rows / total_seconds,
            "rows/s",
            baseline=total_rows / naive_seconds,
        ),
        Metric(
            f"time to load {total_rows:,} rows (baseline extrapolated)",
            total_seconds,
            "s",
            baseline=naive_seconds,
        ),
    ]
    metrics += [
        Metric(f"{table}: one create(), p50 of {sample}", naive[table].p50_ms, "ms")
        for table in TABLES
    ]
    metrics += [Metric(f"{table} loaded", result.rows[table], "rows") for table in TABLES]
    metrics.append(Metric("peak memory (RSS)", peak_rss_mb(), "MB"))
    write_result("generator", database, metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--companies", type=int, help="default: contacts / 10")
    parser.add_argument("--events", type=int, help="default: contacts * 3")
    parser.add_argument(
        "--sample", type=int, default=500, help="rows per table the ORM baseline creates"
    )


if __name__ == "__main__":
    main("generator", __file__, run, add_arguments)
