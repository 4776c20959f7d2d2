"""Bulk-load one workspace with companies, contacts and activity events, fast.

    python bench/generate.py --contacts 1000000 --companies 100000 --events 5000000 \\
        [--database-url URL] [--workspace bench] [--fresh] [--quick]

Rows go in through COPY on PostgreSQL and through executemany in large
transactions on SQLite. They are produced as streams, never as lists, so memory
stays flat whatever the size. Values look real: names and companies from Faker
(English, Indonesian, Vietnamese), work emails at the company's domain, unique
within the workspace, contacts and events spread over the last year in the
order they happened, each event about a contact that existed by then.

Without ``--database-url`` the rows go to ``var/bench/generate.sqlite3``. Prints
the rows/s of each table; ``generate()`` returns them for other benchmarks.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import random
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from common import setup_django, sqlite_url, stopwatch

# Rows per executemany() call and per transaction on SQLite, and its page cache.
SQLITE_CHUNK = 100_000
SQLITE_CACHE_KB = 128_000
PROGRESS_EVERY = 1_000_000
DAY = 86_400.0

COMPANY_FIELDS = (
    "workspace_id",
    "name",
    "domain",
    "industry",
    "size",
    "annual_revenue",
    "phone",
    "city",
    "country",
    "created_at",
    "updated_at",
)
CONTACT_FIELDS = (
    "workspace_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "job_title",
    "company_id",
    "lifecycle_stage",
    "source",
    "score",
    "created_at",
    "updated_at",
)
EVENT_FIELDS = (
    "workspace_id",
    "kind",
    "contact_id",
    "visitor_id",
    "source_type",
    "source_id",
    "properties",
    "occurred_at",
    "recorded_at",
)

INDUSTRIES = [
    "Software",
    "Retail",
    "Manufacturing",
    "Hospitality",
    "Education",
    "Healthcare",
    "Logistics",
    "Financial services",
    "Media",
    "Construction",
    "Real estate",
    "Agriculture",
]
# Employees: most companies are small.
SIZES = [3, 8, 8, 15, 15, 15, 40, 40, 40, 120, 120, 350, 900, 2500, 12000]
# Lifecycle stages as a funnel: (stage, share in %, score range).
STAGES = [
    ("subscriber", 45, (0, 20)),
    ("lead", 25, (10, 40)),
    ("mql", 10, (40, 70)),
    ("sql", 6, (60, 90)),
    ("opportunity", 4, (70, 100)),
    ("customer", 8, (50, 150)),
    ("other", 2, (0, 10)),
]
SOURCES = ["website", "website", "website", "import", "event", "referral", "ads", "ads"]
MAIL_DOMAINS = ["mail.example", "inbox.example", "post.example", "email.example"]
# Share of contacts who work at one of the generated companies.
EMPLOYED = 0.75
PAGES = [
    "/",
    "/",
    "/pricing",
    "/pricing",
    "/features",
    "/features/email-marketing",
    "/features/automation",
    "/customers",
    "/blog/deliverability-checklist",
    "/blog/lead-scoring-101",
    "/ebook/crm-guide",
    "/contact",
    "/docs/getting-started",
]
FORMS = [("Ebook download", "/ebook/crm-guide"), ("Contact us", "/contact"), ("Demo", "/demo")]
# (kind, share in %)
EVENT_KINDS = [
    ("email.opened", 35),
    ("email.clicked", 10),
    ("page.viewed", 47),
    ("form.submitted", 8),
]
# One newsletter a week over the year.
CAMPAIGNS = 52


def _weighted(choices: Iterable[tuple[Any, int]]) -> list[Any]:
    """A list to ``rng.choice()`` from, each item repeated by its weight."""
    return [item for item, weight in choices for _ in range(weight)]


def _ascii_slug(text: str) -> str:
    """'Nguyễn Đức' -> 'nguyenduc': for email local parts and domains."""
    text = text.replace("đ", "d").replace("Đ", "D")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


_COMPANY_SUFFIXES = {"inc", "llc", "ltd", "plc", "group", "and", "sons", "pt", "cv", "ud", "tbk"}


def _domain_label(company: str) -> str:
    words = [_ascii_slug(w) for w in company.replace(",", " ").replace("-", " ").split()]
    words = [w for w in words if w and w not in _COMPANY_SUFFIXES] or ["company"]
    return "-".join(words[:3])


@dataclass(frozen=True)
class Pools:
    """Realistic values drawn once from Faker, then combined at random per row."""

    first_names: list[tuple[str, str]]  # (name, ascii slug)
    last_names: list[tuple[str, str]]
    companies: list[tuple[str, str]]  # (name, domain label)
    job_titles: list[str]
    phones: list[str]
    places: list[tuple[str, str]]  # (city, country)


@functools.cache
def pools(seed: int = 1, size: int = 600) -> Pools:
    from faker import Faker

    locales = {"en_US": "United States", "id_ID": "Indonesia", "vi_VN": "Vietnam"}
    fakes = {}
    for number, locale in enumerate(locales):
        fake = Faker(locale)
        fake.seed_instance(seed + number)
        fakes[locale] = fake

    def unique(make: Callable[[Faker], str]) -> list[str]:
        values = {make(fake) for fake in fakes.values() for _ in range(size // len(fakes))}
        return sorted(v for v in values if v)

    def with_slug(values: list[str]) -> list[tuple[str, str]]:
        return [(v, _ascii_slug(v)) for v in values if _ascii_slug(v)]

    return Pools(
        first_names=with_slug(unique(lambda f: f.first_name())),
        last_names=with_slug(unique(lambda f: f.last_name())),
        companies=[(name, _domain_label(name)) for name in unique(lambda f: f.company())],
        job_titles=sorted({fakes["en_US"].job() for _ in range(size)}),
        phones=unique(lambda f: f.phone_number()),
        places=sorted(
            {
                (fakes[locale].city(), country)
                for locale, country in locales.items()
                for _ in range(size // 10)
            }
        ),
    )


class IdRange:
    """The primary keys of rows just inserted, in insertion order, without a list of them.

    Rows loaded by one session get consecutive ids; should another session have
    inserted in between, the ids are kept in a compact array instead.
    """

    def __init__(self, model: Any, workspace_id: int, after_id: int, count: int) -> None:
        from django.db.models import Count, Max, Min

        rows = model.objects.for_workspace(workspace_id).filter(pk__gt=after_id)
        bounds = rows.aggregate(first=Min("pk"), last=Max("pk"), count=Count("pk"))
        self.first: int = bounds["first"] or 0
        self.count: int = min(count, bounds["count"])
        self.ids: array[int] | None = None
        if bounds["count"] and bounds["last"] - self.first + 1 != bounds["count"]:
            self.ids = array("q", rows.order_by("pk").values_list("pk", flat=True).iterator())

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        return self.first + index if self.ids is None else self.ids[index]


def _max_id(model: Any) -> int:
    from django.db.models import Max

    return model.objects.unscoped().aggregate(last=Max("pk"))["last"] or 0


@dataclass
class Rows:
    """Makes the rows of one workspace as tuples in the order of the *_FIELDS lists."""

    workspace_id: int
    seed: int = 1
    days: int = 365
    now: float = field(default_factory=lambda: datetime.now(UTC).timestamp())

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.pools = pools()
        self.start = self.now - self.days * DAY

    def _moment(self, index: int, count: int) -> tuple[float, datetime]:
        """The ``index``-th of ``count`` moments spread evenly over the period, jittered."""
        fraction = (index + self.rng.random()) / count
        return fraction, datetime.fromtimestamp(self.start + fraction * self.days * DAY, UTC)

    def company_domain(self, index: int) -> str:
        """The domain of the ``index``-th company made by ``companies()``."""
        names = self.pools.companies
        label = names[(index * 7919) % len(names)][1]
        repeat = index // len(names)
        return f"{label}-{repeat + 1}.example" if repeat else f"{label}.example"

    def companies(self, count: int) -> Iterator[tuple[Any, ...]]:
        rng, names = self.rng, self.pools.companies
        for i in range(count):
            name = names[(i * 7919) % len(names)][0]
            city, country = rng.choice(self.pools.places)
            if i >= len(names):
                # More companies than names: branches in other cities.
                name = f"{name} {city}"
            size = rng.choice(SIZES)
            _, created = self._moment(i, count)
            yield (
                self.workspace_id,
                name[:200],
                self.company_domain(i),
                rng.choice(INDUSTRIES),
                size,
                Decimal(size * rng.randint(40, 250) * 1000),
                rng.choice(self.pools.phones),
                city[:100],
                country,
                created,
                created,
            )

    def contacts(
        self, count: int, companies: Sequence[int] = (), number_from: int = 0
    ) -> Iterator[tuple[Any, ...]]:
        """Contacts; ``companies`` are the company ids in the order ``companies()`` made them.

        Emails carry ``number_from + i``, which keeps them unique in the workspace.
        """
        rng, pools_ = self.rng, self.pools
        stages = _weighted((stage, share) for stage, share, _ in STAGES)
        scores = {stage: score for stage, _, score in STAGES}
        for i in range(count):
            first, first_slug = rng.choice(pools_.first_names)
            last, last_slug = rng.choice(pools_.last_names)
            company_id = None
            fraction, created = self._moment(i, count)
            if companies and rng.random() < EMPLOYED:
                # Companies are spread over the same period: only those existing by now.
                company = rng.randrange(max(1, int(fraction * len(companies))))
                company_id = companies[company]
                domain = self.company_domain(company)
                job_title = rng.choice(pools_.job_titles)
            else:
                domain = rng.choice(MAIL_DOMAINS)
                job_title = ""
            local = rng.choice(
                (
                    f"{first_slug}.{last_slug}",
                    f"{first_slug}{last_slug}",
                    f"{first_slug[0]}{last_slug}",
                )
            )
            stage = rng.choice(stages)
            yield (
                self.workspace_id,
                first[:100],
                last[:100],
                f"{local[:60]}{number_from + i}@{domain}",
                rng.choice(pools_.phones) if rng.random() < 0.4 else "",
                job_title[:150],
                company_id,
                stage,
                rng.choice(SOURCES),
                rng.randint(*scores[stage]),
                created,
                created,
            )

    def events(self, count: int, contacts: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        """Events in the order they happened, each about a contact created before it."""
        rng = self.rng
        kinds = _weighted(EVENT_KINDS)
        for i in range(count):
            fraction, occurred = self._moment(i, count)
            # Contacts are spread over the same period: those up to this index exist by now.
            existing = max(1, int(fraction * len(contacts))) if contacts else 0
            contact_id = contacts[rng.randrange(existing)] if existing else None
            visitor_id = ""
            kind = rng.choice(kinds)
            campaign = str(1 + int(fraction * CAMPAIGNS))
            source_type, source_id = "mail.campaign", campaign
            if kind == "email.opened":
                properties: dict[str, Any] = {"campaign_id": int(campaign)}
            elif kind == "email.clicked":
                url = f"https://www.example.com{rng.choice(PAGES)}"
                properties = {"campaign_id": int(campaign), "url": url}
            else:
                # Web activity carries the visitor id the tracker stitched to the contact.
                visitor_id = f"{((contact_id or i) * 0x9E3779B97F4A7C15) % 2**64:016x}"
                if kind == "page.viewed":
                    source_type, source_id = "", ""
                    properties = {"url": rng.choice(PAGES)}
                    if rng.random() < 0.2:
                        properties["utm_source"] = "newsletter"
                else:
                    form = rng.randrange(len(FORMS))
                    source_type, source_id = "capture.form", str(form + 1)
                    properties = {"form": FORMS[form][0], "url": FORMS[form][1]}
            yield (
                self.workspace_id,
                kind,
                contact_id,
                visitor_id,
                source_type,
                source_id,
                properties,
                occurred,
                occurred,
            )


# --- Writing ----------------------------------------------------------------------


def _naive_utc(value: datetime) -> str:
    # How Django stores an aware datetime in SQLite: naive UTC text.
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ")


def _converters(fields: Sequence[Any], vendor: str) -> list[tuple[int, Callable[[Any], Any]]]:
    """(column index, function) for the values the database driver cannot take as they are."""
    found: list[tuple[int, Callable[[Any], Any]]] = []
    if vendor == "postgresql":
        from psycopg.types.json import Jsonb as to_json
    else:
        to_json = json.dumps
    for index, model_field in enumerate(fields):
        kind = model_field.get_internal_type()
        if kind == "JSONField":
            found.append((index, to_json))
        elif vendor == "sqlite" and kind == "DateTimeField":
            found.append((index, _naive_utc))
        elif vendor == "sqlite" and kind == "DecimalField":
            found.append((index, str))
    return found


def insert_rows(model: Any, names: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert a stream of rows (values in the order of ``names``); returns how many.

    Columns of ``model`` not in ``names`` get their field's default, so fields
    added to a model later do not break the generator as long as they have one.
    """
    from django.db import connection

    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    rest = [f for f in meta.concrete_fields if not f.primary_key and f not in fields]
    defaults = []
    for model_field in rest:
        default = model_field.get_default()
        if default is None and not model_field.null:
            raise ValueError(f"{meta.label}.{model_field.name} needs a value from generate.py")
        defaults.append(default)
    convert = _converters(fields + rest, connection.vendor)

    def prepared() -> Iterator[tuple[Any, ...]]:
        for row in rows:
            values = [*row, *defaults]
            for index, function in convert:
                if values[index] is not None:
                    values[index] = function(values[index])
            yield tuple(values)

    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields + rest)
    table = connection.ops.quote_name(meta.db_table)
    if connection.vendor == "postgresql":
        return _copy(table, columns, _postgres_types(fields + rest), prepared())
    placeholders = ", ".join(["?"] * (len(fields) + len(rest)))
    return _executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared())


def _postgres_types(fields: Sequence[Any]) -> list[str] | None:
    """The columns' type names for a binary COPY, or None if one is unknown to psycopg."""
    from django.db import connection
    from psycopg.postgres import types

    names = [(f.db_type(connection) or "").split("(")[0].strip() for f in fields]
    return names if all(types.get(name) for name in names) else None


def _copy(table: str, columns: str, types: list[str] | None, rows: Iterator[Any]) -> int:
    from django.db import connection, transaction

    # The binary format spares the server parsing text: about half again as fast.
    binary = " (FORMAT BINARY)" if types else ""
    statement = f"COPY {table} ({columns}) FROM STDIN{binary}"
    count = 0
    # psycopg's COPY sends rows in buffers as they are written: nothing piles up.
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        if types:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _executemany(statement: str, rows: Iterator[tuple[Any, ...]]) -> int:
    from django.db import connection, transaction

    connection.ensure_connection()
    raw = connection.connection
    (cache_size,) = raw.execute("PRAGMA cache_size").fetchone()
    # A large page cache keeps the indexes being filled in memory: with the large
    # transactions, events went from 14,000 to 24,000 rows/s here.
    raw.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
    count = 0
    try:
        while True:
            with transaction.atomic():
                # Straight to sqlite3, which reads the parameters from the iterator:
                # no list of rows is built.
                written = raw.executemany(statement, itertools.islice(rows, SQLITE_CHUNK)).rowcount
            count += written
            if written < SQLITE_CHUNK:
                return count
    finally:
        raw.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _progress(rows: Iterator[tuple[Any, ...]], table: str, total: int) -> Iterator[Any]:
    for number, row in enumerate(rows, 1):
        if number % PROGRESS_EVERY == 0:
            print(f"  {table}: {number:,} of {total:,}", flush=True)
        yield row


# --- Generating -------------------------------------------------------------------


@dataclass
class Generated:
    workspace_id: int
    rows: dict[str, int]
    seconds: dict[str, float]

    @property
    def rows_per_second(self) -> dict[str, float]:
        return {
            table: (count / self.seconds[table] if self.seconds[table] else 0.0)
            for table, count in self.rows.items()
        }


def bench_workspace(slug: str) -> Any:
    """The workspace called ``slug``, created with an owner if missing."""
    from patron.core.models import User, Workspace
    from patron.core.services import create_workspace

    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        owner, _ = User.objects.get_or_create(email=f"owner@{slug}.example")
        workspace = create_workspace(name=f"Benchmark {slug}", owner=owner, slug=slug)
    return workspace


def generate(
    *,
    contacts: int,
    companies: int,
    events: int,
    workspace: str = "bench",
    seed: int = 1,
    days: int = 365,
    verbose: bool = True,
) -> Generated:
    """Add ``companies``, ``contacts`` and ``events`` to workspace ``workspace``.

    Contacts point at the companies and events at the contacts made by the same
    call; without contacts, events are an anonymous visitor's.
    """
    from django.db import connection

    from patron.activity.models import Event
    from patron.crm.models import Company, Contact

    ws = bench_workspace(workspace).pk
    make = Rows(ws, seed=seed, days=days)
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}

    def load(table: str, model: Any, names: Sequence[str], stream: Iterator[Any], total: int):
        after = _max_id(model)
        with stopwatch() as elapsed:
            rows[table] = insert_rows(model, names, _progress(stream, table, total))
        seconds[table] = elapsed()
        if verbose:
            rate = rows[table] / seconds[table] if seconds[table] else 0.0
            print(
                f"{table:>10}: {rows[table]:>10,} rows in {seconds[table]:6.1f} s, "
                f"{rate:>10,.0f} rows/s",
                flush=True,
            )
        return IdRange(model, ws, after, rows[table])

    company_ids = load("companies", Company, COMPANY_FIELDS, make.companies(companies), companies)
    # Ids only grow, and every number an earlier load put in an email is below
    # the id of the contact carrying it: numbering from the highest id is unique.
    number_from = _max_id(Contact)
    contact_ids = load(
        "contacts",
        Contact,
        CONTACT_FIELDS,
        make.contacts(contacts, company_ids, number_from=number_from),
        contacts,
    )
    load("events", Event, EVENT_FIELDS, make.events(events, contact_ids), events)
    if connection.vendor == "postgresql":
        # Fresh planner statistics, as autovacuum would gather them later.
        with connection.cursor() as cursor:
            for model in (Company, Contact, Event):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return Generated(ws, rows, seconds)


def main(argv: list[str] | None = None) -> Generated:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--companies", type=int, help="default: contacts / 10")
    parser.add_argument("--events", type=int, help="default: contacts * 5")
    parser.add_argument("--database-url", help="default: var/bench/generate.sqlite3")
    parser.add_argument("--workspace", default="bench", help="the workspace's short name")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="empty the database first (only one whose name contains 'bench')",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.contacts = min(args.contacts, 1_000)
    companies = args.contacts // 10 if args.companies is None else args.companies
    events = args.contacts * 5 if args.events is None else args.events

    setup_django(args.database_url or sqlite_url("generate"), reset=args.fresh)
    return generate(
        contacts=args.contacts,
        companies=companies,
        events=events,
        workspace=args.workspace,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()
