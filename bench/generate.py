"""Bulk-load one workspace with contacts, companies and activity events, fast.

    python bench/generate.py --contacts 1000000 --companies 200000 --events 20000000 \
        [--database sqlite|postgresql] [--workspace bench]

PostgreSQL gets its rows through COPY; SQLite through executemany in large
transactions. Rows are produced as streams in chunks, so memory stays flat
whatever the size. Prints its own rows/s per table.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import stopwatch

CHUNK = 20_000
FIRST_NAMES = [
    "Ann",
    "Budi",
    "Chen",
    "Dewi",
    "Elena",
    "Farid",
    "Grace",
    "Hoa",
    "Ivan",
    "Jia",
    "Kevin",
    "Linh",
    "Maria",
    "Nguyen",
    "Olga",
    "Putri",
    "Quang",
    "Rina",
    "Siti",
    "Tuan",
    "Umar",
    "Vera",
    "Wei",
    "Xin",
    "Yusuf",
    "Zoe",
    "Agus",
    "Mei",
    "Thanh",
    "Sarah",
]
LAST_NAMES = [
    "Tan",
    "Wijaya",
    "Lin",
    "Tran",
    "Santoso",
    "Le",
    "Huang",
    "Pham",
    "Smith",
    "Garcia",
    "Kusuma",
    "Wang",
    "Hoang",
    "Brown",
    "Lim",
    "Setiawan",
    "Vo",
    "Chang",
    "Muller",
    "Rossi",
]
INDUSTRIES = [
    "Software",
    "Retail",
    "Manufacturing",
    "Hospitality",
    "Education",
    "Healthcare",
    "Logistics",
    "Finance",
    "Media",
    "Construction",
]
STAGES = ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "other"]
SOURCES = ["website", "import", "event", "referral", "ads"]
EVENT_KINDS = [
    "email.opened",
    "email.opened",
    "email.clicked",
    "page.viewed",
    "page.viewed",
    "page.viewed",
    "form.submitted",
]
PAGES = ["/", "/pricing", "/features", "/blog/deliverability", "/contact", "/ebook/crm-guide"]


@dataclass
class Generated:
    workspace_id: int
    companies: int
    contacts: int
    events: int
    rows_per_second: dict[str, float]


def _workspace(slug: str) -> Any:
    from patron.core.models import User, Workspace
    from patron.core.services import create_workspace

    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        owner, _ = User.objects.get_or_create(email=f"owner@{slug}.example")
        workspace = create_workspace(name=f"Benchmark {slug}", owner=owner, slug=slug)
    return workspace


def _columns(model: Any, names: Sequence[str]) -> list[str]:
    return [model._meta.get_field(name).column for name in names]


def _write(model: Any, names: Sequence[str], rows: Iterator[tuple[Any, ...]]) -> int:
    """Insert a stream of rows with COPY (PostgreSQL) or executemany (SQLite)."""
    from django.db import connection, transaction

    table = model._meta.db_table
    columns = _columns(model, names)
    count = 0
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count
    # SQLite stores datetimes as text in Django's own format; adapt them the same way.
    adapt = connection.ops.adapt_datetimefield_value
    rows = (tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows)
    placeholders = ", ".join(["%s"] * len(columns))
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    chunk: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                with transaction.atomic():
                    cursor.executemany(insert, chunk)
                count += len(chunk)
                chunk.clear()
        if chunk:
            with transaction.atomic():
                cursor.executemany(insert, chunk)
            count += len(chunk)
    return count


def _id_range(model: Any, workspace_id: int) -> tuple[int, int]:
    from django.db.models import Max, Min

    bounds = model.objects.for_workspace(workspace_id).aggregate(low=Min("pk"), high=Max("pk"))
    return bounds["low"] or 0, bounds["high"] or 0


def generate(
    *,
    contacts: int,
    companies: int,
    events: int,
    workspace_slug: str = "bench",
    seed: int = 1,
    days: int = 365,
) -> Generated:
    from patron.activity.models import Event
    from patron.crm.models import Company, Contact

    rng = random.Random(seed)
    workspace = _workspace(workspace_slug)
    ws = workspace.pk
    now = datetime.now(UTC)
    rates: dict[str, float] = {}

    def company_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(companies):
            name = f"{rng.choice(LAST_NAMES)} {rng.choice(INDUSTRIES)} {i}"
            created = now - timedelta(days=rng.randint(0, days))
            yield (
                ws,
                name,
                f"company{i}.example",
                rng.choice(INDUSTRIES),
                rng.choice([5, 20, 80, 250, 1000]),
                None,
                "",
                "",
                "",
                None,
                created,
                created,
            )

    company_fields = [
        "workspace",
        "name",
        "domain",
        "industry",
        "size",
        "annual_revenue",
        "phone",
        "city",
        "country",
        "owner",
        "created_at",
        "updated_at",
    ]
    with stopwatch() as elapsed:
        written = _write(Company, company_fields, company_rows())
    rates["companies"] = written / elapsed() if written else 0.0
    first_company, last_company = _id_range(Company, ws)

    def contact_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(contacts):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            company = rng.randint(first_company, last_company) if last_company else None
            created = now - timedelta(days=rng.randint(0, days), seconds=rng.randint(0, 86400))
            yield (
                ws,
                first,
                last,
                f"{first}.{last}.{i}@mail{i % 97}.example".lower(),
                "",
                "",
                company,
                rng.choice(STAGES),
                None,
                rng.choice(SOURCES),
                rng.randint(0, 150),
                created,
                created,
                None,
            )

    contact_fields = [
        "workspace",
        "first_name",
        "last_name",
        "email",
        "phone",
        "job_title",
        "company",
        "lifecycle_stage",
        "owner",
        "source",
        "score",
        "created_at",
        "updated_at",
        "last_activity_at",
    ]
    with stopwatch() as elapsed:
        written = _write(Contact, contact_fields, contact_rows())
    rates["contacts"] = written / elapsed() if written else 0.0
    first_contact, last_contact = _id_range(Contact, ws)

    def event_rows() -> Iterator[tuple[Any, ...]]:
        for _ in range(events):
            kind = rng.choice(EVENT_KINDS)
            if kind == "page.viewed":
                properties = {"url": rng.choice(PAGES)}
            elif kind == "form.submitted":
                properties = {"form": "ebook"}
            else:
                properties = {"campaign": rng.randint(1, 40)}
            when = now - timedelta(days=rng.randint(0, days), seconds=rng.randint(0, 86400))
            yield (
                ws,
                kind,
                rng.randint(first_contact, last_contact),
                "",
                None,
                "",
                "",
                json.dumps(properties),
                when,
                when,
            )

    event_fields = [
        "workspace",
        "kind",
        "contact_id",
        "visitor_id",
        "actor",
        "source_type",
        "source_id",
        "properties",
        "occurred_at",
        "recorded_at",
    ]
    with stopwatch() as elapsed:
        written = _write(Event, event_fields, event_rows()) if last_contact else 0
    rates["events"] = written / elapsed() if written else 0.0
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Company, Contact, Event):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    return Generated(ws, companies, contacts, events if last_contact else 0, rates)


def main() -> None:
    import argparse

    from common import setup_django

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workspace", default="bench")
    parser.add_argument("--keep", action="store_true", help="add to the existing database")
    args = parser.parse_args()
    setup_django(args.database, fresh=not args.keep)
    result = generate(
        contacts=args.contacts,
        companies=args.companies,
        events=args.events,
        workspace_slug=args.workspace,
    )
    for table, rate in result.rows_per_second.items():
        print(f"{table:>10}: {rate:>12,.0f} rows/s")


if __name__ == "__main__":
    main()
