"""Lead scoring in real time: event → score → MQL → the owner's task, under 1,000 events/s.

    python bench/bench_scoring.py [--seconds S] [--rate N] [--probes-per-second P]
        [--contacts N] [--throughput-events N] [--naive-share F]
        [--database sqlite|postgresql | --database-url URL] [--quick]

**Latency.** A writer thread appends ``--rate`` events a second to the activity
log with ``record_many()`` (email opens, page views, sends, clicks for random
contacts; opens and page views match scoring rules, so the consumer changes
scores all along). The scoring loop runs in a thread exactly as ``patron run``
runs it (``run_scoring_loop``, ``PATRON_SCORING_POLL`` seconds between looks).
``--probes-per-second`` times a second a probe thread records one page view of
/pricing (+20) for a fresh contact at score 90: the lifecycle rule (score ≥ 100
→ MQL) moves them and the hand-off creates a task for the owner the assignment
rule picks. A watcher polls for those tasks every 25 ms; the latency is from the
probe's commit to the task being visible. p50/p95/p99 over the probes; the
target is p95 < 2 s.

**Throughput.** With no writer running, the product's consumer
(``follow_activity``, batches of 2,000) drains a backlog of events, against
the naive loop measured in the same run: the same handler given one event per
``consume()`` call (its rule, ledger and contact queries once per event). The
two take turns in rounds so that a machine growing busier slows both alike.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from typing import Any

from common import Metric, Timing, main, percentile, write_result
from generate import generate

THRESHOLD = 100
PROBE_START = 90


def _background_events(workspace_id: int, contact_ids: list[int], count: int, rng) -> list[Any]:
    from patron.activity.services import NewEvent

    events = []
    for _ in range(count):
        roll = rng.random()
        contact_id = rng.choice(contact_ids)
        if roll < 0.35:
            events.append(
                NewEvent(
                    workspace_id,
                    "email.opened",
                    contact_id,
                    properties={"campaign_id": rng.randint(1, 50)},
                )
            )
        elif roll < 0.75:
            path = rng.choice(["/blog/a", "/blog/b", "/features", "/docs/start", "/about"])
            events.append(
                NewEvent(
                    workspace_id,
                    "page.viewed",
                    contact_id,
                    properties={"url": f"https://acme.example{path}"},
                )
            )
        elif roll < 0.9:
            events.append(
                NewEvent(
                    workspace_id,
                    "email.sent",
                    contact_id,
                    properties={"campaign_id": rng.randint(1, 50)},
                )
            )
        else:
            events.append(
                NewEvent(
                    workspace_id,
                    "email.clicked",
                    contact_id,
                    properties={
                        "campaign_id": rng.randint(1, 50),
                        "url": "https://acme.example/features",
                    },
                )
            )
    return events


def _set_up_rules(workspace_id: int) -> Any:
    from patron.automation import lifecycle, scoring
    from patron.core.models import Membership, User, Workspace
    from patron.crm import assignment
    from patron.crm.models import AssignmentStrategy

    workspace = Workspace.objects.get(pk=workspace_id)
    seller, _ = User.objects.get_or_create(
        email=f"seller-{workspace_id}@bench.example", defaults={"name": "Sam Seller"}
    )
    Membership.objects.get_or_create(workspace=workspace, user=seller, defaults={"role": "sales"})
    assignment.save_rule(
        workspace=workspace,
        object_type="contact",
        name="Everyone",
        conditions=[],
        strategy=AssignmentStrategy.USER,
        user=seller,
    )
    scoring.save_scoring_rule(
        workspace=workspace,
        name="Opened",
        kind="behaviour",
        points=1,
        event_kind="email.opened",
        cap_points=5,
        cap_period="day",
    )
    scoring.save_scoring_rule(
        workspace=workspace, name="Clicked", kind="behaviour", points=3, event_kind="email.clicked"
    )
    scoring.save_scoring_rule(
        workspace=workspace,
        name="Pricing",
        kind="behaviour",
        points=20,
        event_kind="page.viewed",
        filters=[{"property": "url", "op": "contains", "value": "/pricing"}],
    )
    scoring.save_scoring_rule(
        workspace=workspace,
        name="Docs",
        kind="behaviour",
        points=2,
        event_kind="page.viewed",
        filters=[{"property": "url", "op": "contains", "value": "/docs"}],
    )
    lifecycle.save_lifecycle_rule(
        workspace=workspace, trigger="score", threshold=THRESHOLD, stage="mql"
    )
    return workspace


def _probe_contacts(workspace_id: int, count: int, tag: str) -> list[int]:
    from patron.crm.models import Contact

    Contact.objects.bulk_create(
        [
            Contact(
                workspace_id=workspace_id,
                first_name=f"Probe {tag}{n}",
                email=f"probe-{tag}-{n}@bench.example",
                score=PROBE_START,
                lifecycle_stage="lead",
            )
            for n in range(count)
        ]
    )
    return list(
        Contact.objects.for_workspace(workspace_id)
        .filter(email__startswith=f"probe-{tag}-")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _latency(workspace_id: int, contact_ids: list[int], args: argparse.Namespace) -> dict:
    from django.conf import settings
    from django.db import close_old_connections, connection

    from patron.activity.services import NewEvent, record_many
    from patron.automation.scoring import run_scoring_loop, warm_up
    from patron.crm.models import Task

    seconds = min(args.seconds, 6) if args.quick else args.seconds
    probes_per_second = args.probes_per_second
    probes = _probe_contacts(workspace_id, int(seconds * probes_per_second) + 5, "lat")
    stop = threading.Event()
    written = [0]
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    errors: list[BaseException] = []

    def guarded(function):
        def run() -> None:
            try:
                function()
            except BaseException as exc:
                errors.append(exc)
                stop.set()
            finally:
                connection.close()

        return run

    @guarded
    def writer() -> None:
        rng = random.Random(7)
        tick = 0.1
        per_tick = max(1, int(args.rate * tick))
        next_at = time.perf_counter()
        while not stop.is_set():
            record_many(_background_events(workspace_id, contact_ids, per_tick, rng))
            written[0] += per_tick
            next_at += tick
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    @guarded
    def prober() -> None:
        interval = 1 / probes_per_second
        for contact_id in probes:
            if stop.is_set():
                return
            record_many(
                [
                    NewEvent(
                        workspace_id,
                        "page.viewed",
                        contact_id,
                        properties={"url": "https://acme.example/pricing"},
                    )
                ]
            )
            sent[contact_id] = time.perf_counter()
            stop.wait(interval)

    @guarded
    def watcher() -> None:
        while not stop.is_set() or len(seen) < len(sent):
            waiting = [c for c in sent if c not in seen]
            if waiting:
                for contact_id in (
                    Task.objects.for_workspace(workspace_id)
                    .filter(contact_id__in=waiting)
                    .values_list("contact_id", flat=True)
                ):
                    seen.setdefault(contact_id, time.perf_counter())
            if stop.is_set() and time.perf_counter() > deadline[0]:
                return
            time.sleep(0.025)

    deadline = [float("inf")]
    loop_stop = threading.Event()
    warm_up()  # as run_scoring_loop does at its start, before the clock runs
    threads = [
        threading.Thread(target=guarded(lambda: run_scoring_loop(loop_stop)), name="scoring"),
        threading.Thread(target=writer, name="writer"),
        threading.Thread(target=watcher, name="watcher"),
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the writer reaches its pace before the first probe
    started = time.perf_counter()
    probe_thread = threading.Thread(target=prober, name="prober")
    probe_thread.start()
    stop.wait(seconds)
    elapsed = time.perf_counter() - started
    stop.set()
    probe_thread.join()
    deadline[0] = time.perf_counter() + 15
    threads[1].join()
    threads[2].join()
    loop_stop.set()
    threads[0].join()
    close_old_connections()
    if errors:
        raise errors[0]
    latencies = [seen[c] - sent[c] for c in sent if c in seen]
    return {
        "latencies": latencies,
        "probes": len(sent),
        "missed": len(sent) - len(latencies),
        "written_rate": written[0] / (elapsed + 1.0),
        "poll": settings.SCORING_POLL_SECONDS,
    }


def _throughput(workspace_id: int, contact_ids: list[int], args: argparse.Namespace) -> dict:
    from patron.activity.models import ConsumerCheckpoint, Event
    from patron.activity.services import consume, record_many
    from patron.automation import scoring

    total = 4_000 if args.quick else args.throughput_events
    rounds = 4
    per_round = total // rounds
    naive_per_round = max(50, int(per_round * args.naive_share))
    rng = random.Random(11)
    batched, naive = Timing(), Timing()
    scoring.follow_activity()  # the latency run's leftovers
    for _round in range(rounds):
        record_many(_background_events(workspace_id, contact_ids, per_round, rng))
        with batched.call() as call:
            call.items = scoring.follow_activity()
        last = Event.objects.unscoped().order_by("-pk").values_list("pk", flat=True).first() or 0
        # The naive loop reads only its own events: its checkpoint starts where they do.
        ConsumerCheckpoint.objects.update_or_create(
            name="bench.naive", defaults={"position": last, "gaps": []}
        )
        record_many(_background_events(workspace_id, contact_ids, naive_per_round, rng))
        with naive.call() as call:
            count = 0
            while consume("bench.naive", scoring.handle_events, batch_size=1):
                count += 1
            call.items = count
        # The product's consumer must not score those events again.
        newest = Event.objects.unscoped().order_by("-pk").values_list("pk", flat=True).first()
        ConsumerCheckpoint.objects.filter(name=scoring.CONSUMER).update(position=newest, gaps=[])
    return {"batched": batched, "naive": naive}


def run(database: str, args: argparse.Namespace) -> None:
    from patron.crm.models import Contact

    contacts = 2_000 if args.quick else args.contacts
    workspace_id = generate(contacts=contacts, companies=100, events=0, verbose=False).workspace_id
    _set_up_rules(workspace_id)
    contact_ids = list(Contact.objects.for_workspace(workspace_id).values_list("pk", flat=True))
    latency = _latency(workspace_id, contact_ids, args)
    throughput = _throughput(workspace_id, contact_ids, args)
    samples = latency["latencies"]
    if not samples:
        raise AssertionError("no probe produced a task")
    batched, naive = throughput["batched"], throughput["naive"]
    write_result(
        "scoring",
        database,
        [
            Metric("event → owner's task: p50", percentile(samples, 50) * 1000, "ms"),
            Metric(
                "event → owner's task: p95 (target < 2,000)", percentile(samples, 95) * 1000, "ms"
            ),
            Metric("event → owner's task: p99", percentile(samples, 99) * 1000, "ms"),
            Metric("probes (threshold crossings)", latency["probes"], "probes"),
            Metric("probes without a task after 15 s", latency["missed"], "probes"),
            Metric("background events written", latency["written_rate"], "events/s"),
            Metric("scoring loop: seconds between looks", latency["poll"], "s"),
            Metric(
                "scoring consumer (follow_activity, batches of 2,000)",
                batched.rate,
                "events/s",
                baseline=naive.rate,
            ),
            Metric("naive loop: one event per consume()", naive.rate, "events/s"),
            Metric("events drained by the consumer", batched.items, "events"),
        ],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30, help="probing time")
    parser.add_argument("--rate", type=int, default=1_000, help="background events per second")
    parser.add_argument("--probes-per-second", type=float, default=4.0)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--throughput-events", type=int, default=20_000)
    parser.add_argument(
        "--naive-share",
        type=float,
        default=0.2,
        help="naive loop's events per round, as a share of the consumer's",
    )


if __name__ == "__main__":
    main("scoring", __file__, run, add_arguments)
