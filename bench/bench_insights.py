"""Reports and dashboards on a large workspace: every default-dashboard widget, the funnel
over 12 months, and every report of the catalogue.

    python bench/bench_insights.py [--scale 0.1] [--repeat 5]
        [--database sqlite|postgresql | --database-url URL] [--quick] [--reuse]

``--scale 1`` is the target data set: 1,000,000 contacts, 20,000,000 events
(spread over a year) and 100,000 deals; ``--scale 0.1`` a tenth of each (the
default, which a 2-core machine loads in minutes). Besides the generator's
contacts, companies and email/web events, the script loads the deals (in a
pipeline's stages, 5 % in a second currency, most with one contact), their
owners, one to three ``contact.lifecycle_changed`` moves per contact in two,
tickets with SLA times, tasks and calls.

Then, ``--repeat`` times each:

- every widget of a new person's default home dashboard, run as the page runs
  it (``selectors.show_widget``: the report, its chart or number, and for a
  number the period before); target: p95 under 500 ms at scale 1;
- the funnel over the last 12 months; target: under 2 s at scale 1;
- every report of the catalogue with its default date range (table).

The funnel reads its rollups (``StageEntry`` and its counts per day,
``StageDay``); the script rebuilds them once from the loaded log (timed), then
records 10,000 new moves and times the incremental refresh against that
rebuild. A third baseline is the funnel's stage figures counted from the
period's entries (the way before the days, and still the filtered way).

``--reuse`` measures again on the data an earlier run loaded at the same
scale (loading 20,000,000 events takes most of an hour on a 2-core machine):
the rollup is rebuilt from the log (timed as above) and the moves earlier runs
added stay.

The ratio of a widget is its p95 against the target (below 1 is within it).
Two baselines are the naive way, measured in the same run: pipeline by stage
summed in Python over every deal, and the funnel followed in Python over every
lifecycle event.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from common import Metric, Timing, main, stopwatch, time_calls, write_result
from generate import generate

TARGET_WIDGET_MS = 500.0
TARGET_FUNNEL_MS = 2000.0
OWNERS = 12
STAGES = [
    ("Qualified", 10, "open"),
    ("Meeting booked", 25, "open"),
    ("Proposal sent", 50, "open"),
    ("Negotiation", 75, "open"),
    ("Won", 100, "won"),
    ("Lost", 0, "lost"),
]
LIFECYCLE = ["subscriber", "lead", "mql", "sql", "opportunity", "customer"]
LOST_REASONS = ["Price", "Timing", "Competitor", "No budget", ""]


def insert_with_defaults(model: Any, columns: list[str], rows: list[tuple[Any, ...]]) -> int:
    """``insert_rows`` with every other column at its model default (raw inserts skip them)."""
    from patron.core.bulk import insert_rows

    given = set(columns)
    extra = [
        f
        for f in model._meta.concrete_fields
        if not f.primary_key and f.attname not in given and f.name not in given
        and not f.null and (f.has_default() or f.empty_strings_allowed)
    ]  # fmt: skip
    defaults = tuple(f.get_default() for f in extra)
    names = [*columns, *(f.attname for f in extra)]
    return insert_rows(model, names, [(*row, *defaults) for row in rows])


def load_crm(workspace: Any, scale_deals: int, seed: int = 3) -> dict[str, int]:
    """Deals, owners, lifecycle moves, tickets, tasks and calls for the workspace's contacts."""
    from django.db import connection

    from patron.activity.models import Event
    from patron.core.models import Membership, User
    from patron.crm.models import Call, Contact, Deal, Stage, Task, Ticket
    from patron.crm.services import create_pipeline

    rng = random.Random(seed)
    now = datetime.now(UTC)
    owners = []
    for index in range(OWNERS):
        user, _ = User.objects.get_or_create(email=f"seller{index}@bench.example")
        Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": "sales"})
        owners.append(user.pk)
    pipeline = create_pipeline(workspace=workspace, name="Bench sales", stages=STAGES)
    stages = list(Stage.objects.for_workspace(workspace).filter(pipeline=pipeline))
    open_stages = [s for s in stages if s.outcome == "open"]
    won = next(s for s in stages if s.outcome == "won")
    lost = next(s for s in stages if s.outcome == "lost")
    contact_ids = list(
        Contact.objects.for_workspace(workspace).values_list("pk", flat=True).order_by("pk")
    )

    def moment(days_back: float) -> datetime:
        return now - timedelta(days=days_back)

    deals = []
    for index in range(scale_deals):
        created = moment(rng.uniform(0, 365))
        roll = rng.random()
        stage = rng.choice(open_stages) if roll < 0.6 else (won if roll < 0.85 else lost)
        closed = None
        if stage.outcome != "open":
            closed = min(created + timedelta(days=rng.uniform(3, 120)), now)
        close_date = None
        if rng.random() < 0.9:
            close_date = (created + timedelta(days=rng.uniform(10, 200))).date()
        deals.append(
            (
                workspace.pk,
                f"Deal {index}",
                pipeline.pk,
                stage.pk,
                Decimal(rng.randint(5, 500) * 100),
                "EUR" if rng.random() < 0.05 else workspace.currency,
                close_date,
                rng.choice(owners) if rng.random() < 0.9 else None,
                rng.choice(LOST_REASONS) if stage.outcome == "lost" else "",
                created,
                created,
                closed or created,
                closed,
                rng.choice(["website", "ads", "referral", ""]),
            )
        )
    insert_with_defaults(
        Deal,
        [
            "workspace_id", "name", "pipeline_id", "stage_id", "amount", "currency",
            "expected_close_date", "owner_id", "lost_reason", "created_at", "updated_at",
            "stage_changed_at", "closed_at", "source",
        ],
        deals,
    )  # fmt: skip
    deal_ids = list(Deal.objects.for_workspace(workspace).values_list("pk", flat=True))
    through = Deal.contacts.through
    links = [(deal_id, rng.choice(contact_ids)) for deal_id in deal_ids if rng.random() < 0.9]
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(through._meta.db_table)
        cursor.executemany(
            f"INSERT INTO {table} (deal_id, contact_id) VALUES (%s, %s)",
            links,
        )

    # Lifecycle moves: each contact climbs one to three steps, spread over the year.
    moves = []
    for contact_id in contact_ids:
        if rng.random() < 0.35:
            continue
        start = rng.randrange(0, 3)
        steps = rng.randint(1, 3)
        at = moment(rng.uniform(30, 365))
        for index in range(start, min(start + steps, len(LIFECYCLE) - 1)):
            moves.append(
                (
                    workspace.pk, "contact.lifecycle_changed", contact_id, "", "", "",
                    {"from": LIFECYCLE[index], "to": LIFECYCLE[index + 1], "reason": "score"},
                    at, at,
                )
            )  # fmt: skip
            at = min(at + timedelta(days=rng.uniform(1, 60)), now)
    event_columns = [
        "workspace_id", "kind", "contact_id", "visitor_id", "source_type", "source_id",
        "properties", "occurred_at", "recorded_at",
    ]  # fmt: skip
    for start in range(0, len(moves), 50_000):
        insert_with_defaults(Event, event_columns, moves[start : start + 50_000])

    tickets = []
    for index in range(len(contact_ids) // 50):
        created = moment(rng.uniform(0, 365))
        responded = created + timedelta(minutes=rng.uniform(5, 600))
        solved = responded + timedelta(hours=rng.uniform(1, 96)) if rng.random() < 0.8 else None
        tickets.append(
            (
                workspace.pk, f"Ticket {index}", rng.choice(contact_ids),
                "solved" if solved else "open",
                rng.choice(["low", "normal", "normal", "high", "urgent"]),
                rng.choice(owners) if rng.random() < 0.85 else None,
                created, created, created + timedelta(hours=4), created + timedelta(days=2),
                responded, solved,
                int((responded - created).total_seconds()),
                int((solved - created).total_seconds()) if solved else None,
            )
        )  # fmt: skip
    insert_with_defaults(
        Ticket,
        [
            "workspace_id", "subject", "contact_id", "status", "priority", "assignee_id",
            "created_at", "updated_at", "first_response_due_at", "resolution_due_at",
            "first_responded_at", "solved_at", "first_response_seconds", "resolution_seconds",
        ],
        tickets,
    )  # fmt: skip
    tasks, calls = [], []
    for index in range(len(contact_ids) // 20):
        created = moment(rng.uniform(0, 365))
        done = created + timedelta(days=rng.uniform(0, 10)) if rng.random() < 0.7 else None
        tasks.append(
            (workspace.pk, f"Task {index}", rng.choice(owners), created, done,
             created + timedelta(days=7))
        )  # fmt: skip
        calls.append(
            (workspace.pk, rng.choice(contact_ids), rng.choice(owners),
             rng.choice(["connected", "no_answer", "voicemail"]), created)
        )  # fmt: skip
    insert_with_defaults(
        Task,
        ["workspace_id", "title", "assignee_id", "created_at", "completed_at", "due_at"],
        tasks,
    )
    insert_with_defaults(
        Call, ["workspace_id", "contact_id", "logged_by_id", "outcome", "occurred_at"], calls
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Deal, Event, Ticket, Task, Call):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {
        "deals": len(deals),
        "lifecycle moves": len(moves),
        "tickets": len(tickets),
        "tasks": len(tasks),
        "calls": len(calls),
    }


NEW_MOVES = 10_000


def vacuum_read_tables() -> None:
    """What autovacuum does soon after a bulk write (it is off on some servers):
    statistics, and on PostgreSQL the visibility map that lets the funnel read the
    rollups and the contacts per stage from their indexes alone."""
    from django.db import connection

    from patron.crm.models import Contact
    from patron.insights.models import StageDay, StageEntry

    with connection.cursor() as cursor:
        for model in (StageEntry, StageDay, Contact):
            table = connection.ops.quote_name(model._meta.db_table)
            if connection.vendor == "postgresql" and not connection.in_atomic_block:
                cursor.execute(f"VACUUM ANALYZE {table}")
            else:  # SQLite, or inside a test's transaction, where VACUUM cannot run
                cursor.execute(f"ANALYZE {table}")


def add_moves_and_refresh(workspace: Any, count: int) -> float:
    """Record ``count`` new lifecycle moves and fold them into the rollup; the seconds taken."""
    from patron.activity.services import NewEvent, record_many
    from patron.crm.models import Contact
    from patron.insights.rollups import refresh_stage_entries

    rng = random.Random(17)
    ids = list(Contact.objects.for_workspace(workspace).values_list("pk", flat=True)[:50_000])
    now = datetime.now(UTC)
    record_many(
        NewEvent(
            workspace_id=workspace.pk,
            kind="contact.lifecycle_changed",
            contact_id=rng.choice(ids),
            properties={"from": "", "to": rng.choice(LIFECYCLE), "reason": "bench"},
            occurred_at=now - timedelta(minutes=rng.randint(0, 600)),
        )
        for _ in range(count)
    )
    with stopwatch() as elapsed:
        handled = refresh_stage_entries()
    if handled != count:
        raise SystemExit(f"the rollup folded in {handled} of {count} new moves")
    return elapsed()


def naive_pipeline(workspace: Any) -> dict[tuple[int, str], Decimal]:
    """Pipeline by stage the naive way: every deal loaded, summed in Python."""
    from patron.crm.models import Deal

    sums: dict[tuple[int, str], Decimal] = {}
    for deal in Deal.objects.for_workspace(workspace).select_related("stage").iterator(2000):
        key = (deal.stage_id, deal.currency)
        sums[key] = sums.get(key, Decimal(0)) + deal.amount * deal.stage.probability / 100
    return sums


def naive_funnel(workspace: Any, since: datetime) -> int:
    """The funnel's moves read one event at a time into Python (no grouping in SQL)."""
    from patron.activity.models import Event

    first: dict[tuple[int, str], datetime] = {}
    for contact_id, properties, occurred_at in (
        Event.objects.for_workspace(workspace)
        .filter(kind="contact.lifecycle_changed", occurred_at__gte=since)
        .values_list("contact_id", "properties", "occurred_at")
        .iterator(chunk_size=20_000)
    ):
        key = (contact_id, properties.get("to", ""))
        if key not in first or occurred_at < first[key]:
            first[key] = occurred_at
    return len(first)


def reusable_workspace(contacts: int) -> tuple[Any, dict[str, int], dict[str, int]] | None:
    """The workspace an earlier run loaded with as many contacts, and what it holds
    (the generator's rows, then the CRM's), or None."""
    from django.db import connection

    from patron.activity.models import Event
    from patron.core.models import Workspace
    from patron.crm.models import Call, Contact, Deal, Task, Ticket

    workspace = Workspace.objects.filter(slug="bench").first()
    if workspace is None or Contact.objects.for_workspace(workspace).count() != contacts:
        return None
    deals = Deal.objects.for_workspace(workspace).count()
    if not deals:
        return None
    if connection.vendor == "postgresql":
        # A migration since may have rebuilt an index: its statistics are gone. (SQLite
        # keeps the load's; its ANALYZE reads every row, minutes at scale 1.)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    events = Event.objects.for_workspace(workspace)
    moves = events.filter(kind="contact.lifecycle_changed").count()
    generated = {"contacts": contacts, "events": events.count() - moves}
    loaded = {
        "deals": deals,
        "lifecycle moves": moves,
        "tickets": Ticket.objects.for_workspace(workspace).count(),
        "tasks": Task.objects.for_workspace(workspace).count(),
        "calls": Call.objects.for_workspace(workspace).count(),
    }
    return workspace, generated, loaded


def run(database: str, args: argparse.Namespace) -> None:
    from patron.activity.models import ConsumerCheckpoint
    from patron.core.models import Membership, Workspace
    from patron.insights import catalog, reports_funnel, selectors, services
    from patron.insights.periods import Filters, period_for, workspace_zone
    from patron.insights.rollups import CONSUMER, rebuild_stage_entries, refresh_stage_entries

    scale = 0.002 if args.quick else args.scale
    contacts = max(int(1_000_000 * scale), 500)
    events = max(int(20_000_000 * scale), 5_000)
    deals = max(int(100_000 * scale), 100)
    repeat = 2 if args.quick else args.repeat
    reused = reusable_workspace(contacts) if args.reuse else None
    load_seconds = None
    if reused is None:
        with stopwatch() as loading:
            made = generate(
                contacts=contacts, companies=contacts // 10, events=events, verbose=not args.quick
            )
            workspace = Workspace.objects.get(pk=made.workspace_id)
            loaded = load_crm(workspace, deals)
        load_seconds = loading()
        generated = made.rows
        with stopwatch() as rebuilding:
            # The consumer's first run on a loaded log: one grouped rebuild per workspace.
            rolled = refresh_stage_entries()
        rebuild_seconds = rebuilding()
    else:
        workspace, generated, loaded = reused
        first = not ConsumerCheckpoint.objects.filter(name=CONSUMER).exists()
        if not first:
            refresh_stage_entries()  # what an earlier run left unfolded
        with stopwatch() as rebuilding:
            # On a log loaded by hand, the consumer's first run is the rebuild.
            rolled = refresh_stage_entries() if first else rebuild_stage_entries(workspace.pk)
        rebuild_seconds = rebuilding()
    vacuum_read_tables()
    new_moves = 500 if args.quick else NEW_MOVES
    incremental = add_moves_and_refresh(workspace, new_moves)

    owner = (
        Membership.objects.for_workspace(workspace)
        .filter(role="owner")
        .select_related("workspace", "user")
        .first()
    )
    assert owner is not None
    home = services.ensure_home_dashboard(workspace=workspace, membership=owner)
    metrics: list[Metric] = []
    worst_widget = 0.0
    for widget in selectors.widgets(home):
        selectors.show_widget(widget, owner)  # warm: first imports, locale data, plans
        timing = time_calls(lambda w=widget: selectors.show_widget(w, owner), repeat)
        worst_widget = max(worst_widget, timing.p95_ms)
        metrics.append(
            Metric(
                f"default widget: {widget.title or catalog.REPORTS[widget.report].label} "
                f"({widget.display}, {widget.date_range}) p95",
                timing.p95_ms,
                "ms",
                baseline=TARGET_WIDGET_MS,
            )
        )
    metrics.append(
        Metric("default dashboard: slowest widget p95", worst_widget, "ms", TARGET_WIDGET_MS)
    )

    zone = workspace_zone(workspace)
    year = period_for("last_12_months", zone=zone)
    funnel = time_calls(lambda: reports_funnel.funnel(workspace, year, Filters()), repeat)
    naive = Timing()
    with naive.call():
        naive_funnel(workspace, year.since or datetime.now(UTC))
    metrics.append(
        Metric("funnel over 12 months p95 (baseline: the 2 s target)", funnel.p95_ms, "ms",
               baseline=TARGET_FUNNEL_MS)
    )  # fmt: skip
    metrics.append(
        Metric("funnel over 12 months p50 against the naive Python read", funnel.p50_ms, "ms",
               baseline=naive.p50_ms)
    )  # fmt: skip
    # The stage figures counted from the period's entries, as the funnel did before it
    # summed the rollup's days (and still does when filtered).
    entries = time_calls(
        lambda: reports_funnel._figures_from_entries(workspace, year, Filters()), repeat
    )
    days = time_calls(lambda: reports_funnel._figures_from_days(workspace, year), repeat)
    metrics.append(
        Metric("funnel stage figures from the days p50 against counting the entries",
               days.p50_ms, "ms", baseline=entries.p50_ms)
    )  # fmt: skip
    all_time = period_for("all_time", zone=zone)
    from patron.insights import reports_sales

    pipeline = time_calls(
        lambda: reports_sales.pipeline_by_stage(workspace, all_time, Filters()), repeat
    )
    naive_sum = Timing()
    with naive_sum.call():
        naive_pipeline(workspace)
    metrics.append(
        Metric("pipeline by stage p50 against summing every deal in Python", pipeline.p50_ms,
               "ms", baseline=naive_sum.p50_ms)
    )  # fmt: skip
    for spec in catalog.SPECS:
        period = period_for(spec.default_range, zone=zone)
        spec.run(workspace, period, Filters())  # warm
        timing = time_calls(lambda s=spec, p=period: s.run(workspace, p, Filters()), repeat)
        metrics.append(
            Metric(f"report {spec.key} ({spec.default_range}) p95", timing.p95_ms, "ms",
                   baseline=TARGET_WIDGET_MS)
        )  # fmt: skip
    metrics += [
        Metric("scale (1 = 1M contacts, 20M events, 100k deals)", scale, "x"),
        Metric("contacts", generated["contacts"], "rows"),
        Metric("events (generator)", generated["events"], "rows"),
        *[Metric(name, count, "rows") for name, count in loaded.items()],
        Metric("funnel rollup: full rebuild", rebuild_seconds, "s"),
        Metric("funnel rollup rows", rolled, "rows"),
        Metric(
            f"funnel rollup: {NEW_MOVES:,} new moves folded in",
            incremental,
            "s",
            baseline=rebuild_seconds,
        ),
    ]
    if load_seconds is not None:
        metrics.append(Metric("loading the data set", load_seconds, "s"))
    write_result("insights", database, metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scale",
        type=float,
        default=0.1,
        help="share of the target data set (1 = 1M contacts, 20M events, 100k deals)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again on the data an earlier run loaded at the same scale",
    )


if __name__ == "__main__":
    main("insights", __file__, run, add_arguments)
