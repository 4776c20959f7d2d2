"""What every benchmark shares: a database to run on, timing, and the result format.

Each ``bench/bench_*.py`` script, run without arguments, runs itself once per
database (SQLite always; PostgreSQL when ``PATRON_BENCH_POSTGRES_URL`` is set),
each in a fresh process because Django's settings are fixed per process. Each
run prints a table and writes ``bench/results/<name>-<database>.json``:

    {"name", "database", "machine",
     "metrics": [{"metric", "value", "unit", "baseline", "ratio"}]}

``baseline`` is the value of the naive way measured in the same run (or null)
and ``ratio`` is value / baseline, so results stay comparable on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("PATRON_BENCH_RESULTS", ROOT / "bench" / "results"))
VAR = Path(os.environ.get("PATRON_BENCH_VAR", ROOT / "var" / "bench"))


@dataclass
class Metric:
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None

    def __post_init__(self) -> None:
        if self.baseline and self.ratio is None:
            self.ratio = round(self.value / self.baseline, 2)


def databases() -> list[str]:
    found = ["sqlite"]
    if os.environ.get("PATRON_BENCH_POSTGRES_URL"):
        found.append("postgresql")
    return found


def _postgres_url() -> str:
    return os.environ["PATRON_BENCH_POSTGRES_URL"]


def _recreate_postgres_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        database = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(database))


def setup_django(database: str, *, fresh: bool = True) -> None:
    """Point Patron at the benchmark database, (re)create it, and migrate."""
    if database == "sqlite":
        VAR.mkdir(parents=True, exist_ok=True)
        path = VAR / "bench.sqlite3"
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    elif database == "postgresql":
        url = _postgres_url()
        if fresh:
            _recreate_postgres_database(url)
    else:
        raise SystemExit(f"unknown database {database!r}")
    os.environ["PATRON_DATABASE_URL"] = url
    os.environ["PATRON_TESTING"] = "0"
    os.environ.setdefault("PATRON_VAR_DIR", str(VAR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def machine() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
        else:
            cursor.execute("SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "database_version": f"{connection.vendor} {version}",
    }


def write_result(name: str, database: str, metrics: list[Metric]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "name": name,
        "database": database,
        "machine": machine(),
        "metrics": [asdict(m) for m in metrics],
    }
    path = RESULTS / f"{name}-{database}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_table(name, database, metrics)
    print(f"  -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def print_table(name: str, database: str, metrics: list[Metric]) -> None:
    print(f"\n{name} on {database}")
    header = f"  {'metric':<44} {'value':>14} {'unit':<10} {'baseline':>12} {'ratio':>8}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for m in metrics:
        baseline = "" if m.baseline is None else f"{m.baseline:,.1f}"
        ratio = "" if m.ratio is None else f"{m.ratio:.2f}x"
        print(f"  {m.metric:<44} {m.value:>14,.1f} {m.unit:<10} {baseline:>12} {ratio:>8}")


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...; elapsed()`` gives seconds."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def percentile(samples: list[float], q: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(
    script: str, run: Callable[[str, argparse.Namespace], None], add_arguments: Any = None
) -> None:
    """Run ``run(database, args)`` in a child process per database, or once with --database."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    if add_arguments:
        add_arguments(parser)
    args, _ = parser.parse_known_args()
    if args.database:
        setup_django(args.database)
        run(args.database, args)
        return
    for database in databases():
        command = [sys.executable, script, "--database", database, *sys.argv[1:]]
        code = subprocess.call(command)  # noqa: S603
        if code:
            raise SystemExit(code)
