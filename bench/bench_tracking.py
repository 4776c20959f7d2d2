"""Open and click tracking through the real HTTP stack, recorded durably.

    python bench/bench_tracking.py [--seconds S] [--connections C] [--workers W]
        [--database sqlite|postgresql | --database-url URL]

Serves ``patron.tracking.asgi`` with granian (W worker processes) and drives it
from another process with wrk (C connections, one thread; 256 by default: mail
is read by many people at once, and a closed loop of few connections measures
the round trip of a commit rather than what the server can take) through 20,000
different open-pixel and click addresses of one campaign (three opens to one
click, five links). A hit counts as recorded when its row is in the database:
the app answers only after the commit, and the run checks that every request
wrk saw answered with 2xx/3xx has its row.

Measured, each for S seconds after a warm-up:

1. the ceiling: a minimal ASGI app that only returns the pixel
   (``bench/tracking_baseline_app.py``), one granian worker;
2. Patron's tracking app: requests/s answered, hits/s stored, p50/p99 latency;
3. the same addresses through Django's own views (``patron.wsgi``, as
   ``patron run`` serves them), for reference;
4. overload: h2load offers twice the rate measured in 2 as an open loop (new
   requests whatever the answers, from eight times as many clients); sent,
   answered 2xx/3xx vs stored (none may be missing), and meanwhile a probe
   asks the web app (a separate granian process, as in production) for a page
   every 100 ms: how many answered and how fast.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from common import ROOT, VAR, Metric, main, percentile, write_result

BENCH = Path(__file__).resolve().parent
PATHS_FILE = VAR / "tracking-paths.txt"
URLS_FILE = VAR / "tracking-urls.txt"
LINKS = [
    "https://acme.example/offers",
    "https://acme.example/blog/winter-release",
    "https://acme.example/docs/getting-started",
    "https://acme.example/events/webinar",
    "https://acme.example/support",
]
ADDRESSES = 20_000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131 Safari/537.36"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port}")


class Server:
    """A granian process serving ``target`` (``module:attribute``) until the block ends."""

    def __init__(self, target: str, *, interface: str, workers: int, env: dict[str, str]) -> None:
        self.port = free_port()
        self.command = [
            sys.executable, "-m", "granian", "--interface", interface,
            "--workers", str(workers), "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning", "--backlog", "2048",
            *(["--blocking-threads", "8"] if interface == "wsgi" else []), target,
        ]  # fmt: skip
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.command, env=self.env, cwd=ROOT)  # noqa: S603
        wait_for_port(self.port, self.process)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wrk(port: int, seconds: int, connections: int) -> dict[str, float]:
    """Run wrk against the paths file; requests/s, answered, errors, p50/p99 ms."""
    command = [
        "wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
        "-H", f"User-Agent: {BROWSER}", "-s", str(BENCH / "tracking_paths.lua"),
        f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    output = subprocess.run(  # noqa: S603
        command,
        env={**os.environ, "PATRON_BENCH_PATHS": str(PATHS_FILE)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": requests,
        "bad": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
    }


def _latency(output: str, which: str) -> float:
    value, unit = re.search(rf"{which}\s+([\d.]+)(us|ms|s)\b", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def h2load(port: int, seconds: int, connections: int, rate: float) -> dict[str, float]:
    """An open loop at ``rate`` requests/s in all; answered 2xx/3xx and the rest."""
    per_client = max(1, round(rate / connections))
    urls = [line.replace("PORT", str(port)) for line in URLS_FILE.read_text().split()]
    listing = VAR / "tracking-urls-port.txt"
    listing.write_text("\n".join(urls) + "\n")
    command = [
        "h2load", "--h1", "-c", str(connections), "--rps", str(per_client),
        "-D", str(seconds), "-H", f"user-agent: {BROWSER}", "-i", str(listing),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout", output)  # fmt: skip
    assert codes and done, output
    return {
        "offered": per_client * connections,
        "sent": int(done.group(2)) / seconds,
        "answered_ok": int(codes.group(1)) + int(codes.group(2)),
        "answered_other": int(codes.group(3)) + int(codes.group(4)),
        "failed": int(done.group(5)),
        "rate": (int(codes.group(1)) + int(codes.group(2))) / seconds,
    }


class Probe(threading.Thread):
    """Asks the web app for a page every 100 ms, timing each answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.samples: list[float] = []
        self.failures = 0

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:  # noqa: S310
                    response.read()
                self.samples.append(time.perf_counter() - start)
            except OSError:
                self.failures += 1
            self.stop.wait(0.1)


def prepare_addresses() -> int:
    """A workspace, a campaign's links and 20,000 addresses of its messages; the workspace id."""
    from patron.core.models import Workspace
    from patron.tracking import links

    workspace = Workspace.objects.create(name="Tracking bench", slug="tracking-bench")
    numbers = links.register_links(workspace_id=workspace.pk, campaign_id=1, urls=LINKS)
    chooser = random.Random(7)
    made_at = int(time.time()) - 3600
    paths = []
    for n in range(ADDRESSES):
        urls = links.recipient_urls(
            workspace_id=workspace.pk, campaign_id=1, delivery_id=100_000 + n,
            contact_id=500_000 + n, made_at=made_at, link_numbers=numbers,
        )  # fmt: skip
        url = urls.open if n % 4 else chooser.choice(urls.links)
        paths.append("/" + url.split("://", 1)[1].split("/", 1)[1])
    chooser.shuffle(paths)
    VAR.mkdir(parents=True, exist_ok=True)
    PATHS_FILE.write_text("\n".join(paths) + "\n")
    URLS_FILE.write_text("\n".join(f"http://127.0.0.1:PORT{p}" for p in paths) + "\n")
    return workspace.pk


def stored() -> int:
    from django.db import connection

    from patron.tracking.models import Hit

    connection.close()  # a fresh read of what the servers committed
    return Hit.objects.unscoped().count()


def run(database: str, args: argparse.Namespace) -> None:
    from django.conf import settings

    prepare_addresses()
    env = {
        "PATRON_DATABASE_URL": os.environ["PATRON_DATABASE_URL"],
        "PATRON_TESTING": "0",
        "PATRON_VAR_DIR": str(settings.VAR_DIR),
        "PATRON_SECRET_KEY": settings.SECRET_KEY,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(BENCH)]),
    }
    seconds, connections = args.seconds, args.connections
    warm = max(2, seconds // 5)

    print("ceiling: the minimal pixel app ...", flush=True)
    with Server("tracking_baseline_app:app", interface="asgi", workers=1, env=env) as server:
        wrk(server.port, warm, connections)
        ceiling = wrk(server.port, seconds, connections)

    print(f"Patron tracking app, {args.workers} workers ...", flush=True)
    with Server(
        "patron.tracking.asgi:application", interface="asgi", workers=args.workers, env=env
    ) as server:
        wrk(server.port, warm, connections)
        before = stored()
        lean = wrk(server.port, seconds, connections)
        after = stored()
    lean_stored = after - before
    lean_missing = max(0, lean["requests"] - lean["bad"] - lean_stored)

    print("Django views (patron.wsgi) ...", flush=True)
    django_app = "patron.wsgi:application"
    with Server(django_app, interface="wsgi", workers=args.workers, env=env) as server:
        django_run = wrk(server.port, seconds, connections)

    rate = 2 * lean["rate"]
    print(f"overload: {rate:.0f} requests/s offered, the web app probed ...", flush=True)
    with (
        Server("patron.wsgi:application", interface="wsgi", workers=1, env=env) as web,
        Server(
            "patron.tracking.asgi:application", interface="asgi", workers=args.workers, env=env
        ) as server,
    ):
        probe = Probe(f"http://127.0.0.1:{web.port}/api/v1/health")
        before = stored()
        probe.start()
        # An open loop needs many clients: each has one request out at a time.
        overload = h2load(server.port, seconds, 8 * connections, rate)
        probe.stop.set()
        probe.join()
    overload_stored = stored() - before
    overload_missing = max(0, int(overload["answered_ok"]) - overload_stored)
    probe_p99 = percentile(probe.samples, 99) * 1000 if probe.samples else 0.0

    write_result(
        "tracking",
        database,
        [
            Metric("ceiling: minimal pixel app, 1 worker", ceiling["rate"], "requests/s"),
            Metric("ceiling p99", ceiling["p99_ms"], "ms"),
            Metric(
                f"tracking app, {args.workers} workers: answered",
                lean["rate"],
                "requests/s",
                baseline=ceiling["rate"],
            ),
            Metric("tracking app: stored", lean_stored / seconds, "hits/s"),
            Metric("tracking app: answered 2xx/3xx without a stored hit", lean_missing, "hits"),
            Metric("tracking app: not 2xx/3xx", lean["bad"] + lean["socket_errors"], "requests"),
            Metric("tracking app p50", lean["p50_ms"], "ms"),
            Metric("tracking app p99", lean["p99_ms"], "ms"),
            Metric(
                "Django views (patron run): answered",
                django_run["rate"],
                "requests/s",
                baseline=lean["rate"],
            ),
            Metric("Django views p99", django_run["p99_ms"], "ms"),
            Metric("overload: offered (open loop)", overload["offered"], "requests/s"),
            Metric("overload: sent", overload["sent"], "requests/s"),
            Metric("overload: answered 2xx/3xx", overload["rate"], "requests/s"),
            Metric("overload: answered 2xx/3xx without a stored hit", overload_missing, "hits"),
            Metric(
                "overload: failed or not 2xx/3xx",
                overload["failed"] + overload["answered_other"],
                "requests",
            ),
            Metric("overload: web app probes answered", len(probe.samples), "pages"),
            Metric("overload: web app probes failed", probe.failures, "pages"),
            Metric("overload: web app p99", probe_p99, "ms"),
        ],
    )


if __name__ == "__main__":
    main("tracking", __file__, run, add_arguments)
