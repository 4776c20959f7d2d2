"""The web tracker's collect endpoint through the real HTTP stack, recorded durably.

    python bench/bench_collect.py [--seconds S] [--connections C] [--workers W]
        [--database sqlite|postgresql | --database-url URL]

Serves ``patron.tracking.asgi`` with granian (W worker processes) and drives it
from another process with wrk (C connections, one thread, 256 by default: page
views come from many browsers at once) POSTing to ``/t/e`` what the tracker's
``sendBeacon`` sends: one page view per request (a URL of the site, some with
UTM parameters and a referrer, a title, a view id), from 20,000 visitors, a
tenth of them known contacts, with the site's Origin. An event counts as
recorded when its row is in the activity log: the app answers only after the
commit, and the run checks that every request wrk saw answered 200 has its row.

Measured, each for S seconds after a warm-up:

1. the ceiling: a minimal ASGI app that only reads the body and answers
   (``bench/collect_baseline_app.py``), one granian worker, for S/2 seconds
   before step 2 and S/2 after (the mean is reported: the machine is shared);
2. Patron's tracking app: requests/s answered, page views/s stored, p50/p99;
3. overload: h2load offers twice the rate measured in 2 as an open loop (from
   eight times as many clients); sent, answered 200 vs stored (none may be
   missing).

The tracker script's size, as served and gzipped, is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess

from bench_tracking import Server, _latency
from common import ROOT, VAR, Metric, main, write_result

BENCH = ROOT / "bench"
BODIES_FILE = VAR / "collect-bodies.txt"
ORIGIN = "https://www.bench-shop.example"
VISITORS = 20_000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131 Safari/537.36"
PAGES = ["/", "/pricing", "/blog/winter-release", "/docs/getting-started", "/events/webinar"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)


def prepare() -> tuple[int, str]:
    """A workspace with a site, known visitors, and the request bodies; (workspace, key)."""
    from patron.core.models import Workspace
    from patron.crm.models import Contact
    from patron.tracking.models import VisitorLink
    from patron.tracking.sites import create_site

    workspace = Workspace.objects.create(name="Collect bench", slug="collect-bench")
    site = create_site(workspace=workspace, name="Bench shop", allowed_origins=[ORIGIN])
    chooser = random.Random(11)
    visitors = [f"bench-visitor-{n:06d}" for n in range(VISITORS)]
    known = visitors[: VISITORS // 10]
    contacts = Contact.objects.bulk_create(
        Contact(workspace=workspace, email=f"visitor{n}@bench.example") for n in range(len(known))
    )
    VisitorLink.objects.bulk_create(
        VisitorLink(workspace=workspace, visitor_id=v, contact=c, method="form")
        for v, c in zip(known, contacts, strict=True)
    )
    lines = []
    for n, visitor in enumerate(visitors):
        url = ORIGIN + chooser.choice(PAGES)
        page: dict[str, object] = {"type": "page", "url": url, "title": "Bench shop",
                                   "view": f"v{n}"}  # fmt: skip
        if n % 5 == 0:
            page["url"] = url + "?utm_source=newsletter&utm_medium=email&utm_campaign=winter"
            page["referrer"] = "https://mail.example/"
        body = {"site": site.key, "visitor": visitor, "events": [page]}
        lines.append(json.dumps(body, separators=(",", ":")))
    chooser.shuffle(lines)
    VAR.mkdir(parents=True, exist_ok=True)
    BODIES_FILE.write_text("\n".join(lines) + "\n")
    return workspace.pk, site.key


def wrk(port: int, seconds: int, connections: int) -> dict[str, float]:
    """wrk POSTing the bodies file; requests/s, answered, errors, p50/p99 ms."""
    command = [
        "wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
        "-H", f"User-Agent: {BROWSER}", "-s", str(BENCH / "collect_bodies.lua"),
        f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    env = {**os.environ, "PATRON_BENCH_BODIES": str(BODIES_FILE), "PATRON_BENCH_ORIGIN": ORIGIN}
    output = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, check=True
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "bad": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
    }


def h2load(port: int, seconds: int, connections: int, rate: float) -> dict[str, float]:
    """An open loop POSTing one body at ``rate`` requests/s in all."""
    per_client = max(1, round(rate / connections))
    body = VAR / "collect-body.json"
    body.write_text(BODIES_FILE.read_text().split("\n", 1)[0])
    command = [
        "h2load", "--h1", "-c", str(connections), "--rps", str(per_client),
        "-D", str(seconds), "-d", str(body),
        "-H", "content-type: text/plain;charset=UTF-8", "-H", f"origin: {ORIGIN}",
        "-H", f"user-agent: {BROWSER}", f"http://127.0.0.1:{port}/t/e",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout", output)  # fmt: skip
    assert codes and done, output
    return {
        "offered": per_client * connections,
        "sent": int(done.group(2)) / seconds,
        "answered_ok": int(codes.group(1)),
        "answered_other": int(codes.group(2)) + int(codes.group(3)) + int(codes.group(4)),
        "failed": int(done.group(5)),
        "rate": int(codes.group(1)) / seconds,
    }


def stored() -> int:
    from django.db import connection

    from patron.activity.models import Event

    connection.close()  # a fresh read of what the servers committed
    return Event.objects.unscoped().filter(kind="page.viewed").count()


def run(database: str, args: argparse.Namespace) -> None:
    from django.conf import settings

    from patron.tracking.sites import tracker_sizes

    workspace_id, _key = prepare()
    env = {
        "PATRON_DATABASE_URL": os.environ["PATRON_DATABASE_URL"],
        "PATRON_TESTING": "0",
        "PATRON_VAR_DIR": str(settings.VAR_DIR),
        "PATRON_SECRET_KEY": settings.SECRET_KEY,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(BENCH)]),
    }
    seconds, connections = args.seconds, args.connections
    warm = max(2, seconds // 5)

    def measure_ceiling() -> dict[str, float]:
        print("ceiling: the minimal ASGI app ...", flush=True)
        with Server("collect_baseline_app:app", interface="asgi", workers=1, env=env) as server:
            wrk(server.port, warm, connections)
            return wrk(server.port, max(2, seconds // 2), connections)

    # The ceiling is measured half before and half after, so that a machine growing
    # busier (it is shared) weighs on both sides alike.
    first_ceiling = measure_ceiling()
    print(f"Patron tracking app /t/e, {args.workers} workers ...", flush=True)
    with Server(
        "patron.tracking.asgi:application", interface="asgi", workers=args.workers, env=env
    ) as server:
        wrk(server.port, warm, connections)
        before = stored()
        lean = wrk(server.port, seconds, connections)
        after = stored()
    second_ceiling = measure_ceiling()
    ceiling = {
        name: (first_ceiling[name] + second_ceiling[name]) / 2 for name in ("rate", "p99_ms")
    }
    lean_stored = after - before
    lean_missing = max(0, lean["requests"] - lean["bad"] - lean_stored)

    rate = 2 * lean["rate"]
    print(f"overload: {rate:.0f} requests/s offered ...", flush=True)
    with Server(
        "patron.tracking.asgi:application", interface="asgi", workers=args.workers, env=env
    ) as server:
        before = stored()
        overload = h2load(server.port, seconds, 8 * connections, rate)
    overload_stored = stored() - before
    overload_missing = max(0, int(overload["answered_ok"]) - overload_stored)

    from patron.activity.models import Event

    known = Event.objects.for_workspace(workspace_id).filter(contact_id__isnull=False).count()
    sizes = tracker_sizes()
    write_result(
        "collect",
        database,
        [
            Metric("ceiling: minimal ASGI app, 1 worker", ceiling["rate"], "requests/s"),
            Metric("ceiling p99", ceiling["p99_ms"], "ms"),
            Metric(
                f"collect, {args.workers} workers: answered",
                lean["rate"],
                "requests/s",
                baseline=ceiling["rate"],
            ),
            Metric(
                "collect: page views stored",
                lean_stored / seconds,
                "events/s",
                baseline=ceiling["rate"],
            ),
            Metric("collect: answered 200 without a stored event", lean_missing, "events"),
            Metric("collect: not 2xx", lean["bad"] + lean["socket_errors"], "requests"),
            Metric("collect p50", lean["p50_ms"], "ms"),
            Metric("collect p99", lean["p99_ms"], "ms"),
            Metric("overload: offered (open loop)", overload["offered"], "requests/s"),
            Metric("overload: sent", overload["sent"], "requests/s"),
            Metric("overload: answered 200", overload["rate"], "requests/s"),
            Metric("overload: answered 200 without a stored event", overload_missing, "events"),
            Metric(
                "overload: failed or not 200",
                overload["failed"] + overload["answered_other"],
                "requests",
            ),
            Metric("events with their contact (known visitors)", known, "events"),
            Metric("tracker.js as served", sizes["bytes"], "bytes"),
            Metric("tracker.js gzipped", sizes["gzipped"], "bytes"),
        ],
    )


if __name__ == "__main__":
    main("collect", __file__, run, add_arguments)
