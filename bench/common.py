"""What every benchmark shares: a database to run on, timing, and the result format.

Run without arguments, a ``bench/bench_*.py`` script runs itself once per
database, each in a fresh process because Django's settings are fixed per
process: SQLite always (a new file under ``var/bench/``), PostgreSQL when
``PATRON_BENCH_POSTGRES_URL`` is set (e.g.
``postgresql://postgres@127.0.0.1:5432/patron_bench``). Each run prints a table
and writes ``bench/results/<name>-<database>.json``:

    {"name", "database", "machine",
     "metrics": [{"metric", "value", "unit", "baseline", "ratio"}]}

``baseline`` is the value of the naive way of doing the same work, measured in
the same run (or null), and ``ratio`` is value / baseline (or null): machines
are shared and noisy, so ratios are what to compare between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("PATRON_BENCH_RESULTS", ROOT / "bench" / "results"))
VAR = Path(os.environ.get("PATRON_BENCH_VAR", ROOT / "var" / "bench"))
POSTGRES_URL_VARIABLE = "PATRON_BENCH_POSTGRES_URL"
DATABASES = ("sqlite", "postgresql")


# --- The database -------------------------------------------------------------------


def sqlite_url(name: str) -> str:
    """The URL of the SQLite file ``var/bench/<name>.sqlite3``."""
    VAR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{VAR / f'{name}.sqlite3'}"


def database_url(database: str, name: str) -> str:
    """The URL a benchmark called ``name`` runs on for ``database`` (sqlite/postgresql)."""
    if database == "sqlite":
        return sqlite_url(name)
    if database == "postgresql":
        url = os.environ.get(POSTGRES_URL_VARIABLE)
        if not url:
            raise SystemExit(f"{POSTGRES_URL_VARIABLE} is not set")
        return url
    raise SystemExit(f"unknown database {database!r}")


def available_databases() -> list[str]:
    """SQLite always; PostgreSQL when PATRON_BENCH_POSTGRES_URL is set."""
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_URL_VARIABLE) else ["sqlite"]


def _refuse_unless_for_benchmarks(name: str) -> None:
    # Resetting deletes data: a mistyped URL must not wipe a real database.
    if "bench" not in name:
        raise SystemExit(
            f"refusing to empty {name!r}: a benchmark database's name must contain 'bench' "
            "(e.g. patron_bench, var/bench/...)"
        )


def prepare_sqlite_file(path: Path, *, reset: bool) -> None:
    """With ``reset``, delete the SQLite file (and its WAL) so that migrate starts afresh."""
    if not reset or not path.exists():
        return
    _refuse_unless_for_benchmarks(f"{path.parent.name}/{path.name}")
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def prepare_postgres_database(url: str, *, reset: bool) -> None:
    """Create the database named in ``url`` if it is missing; with ``reset``, anew."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = str(conninfo_to_dict(url).get("dbname") or "")
    if not name:
        raise SystemExit(f"no database name in {url!r}")
    if reset:
        _refuse_unless_for_benchmarks(name)
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        identifier = sql.Identifier(name)
        if reset:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(identifier))


def setup_django(database_url: str, *, reset: bool = True) -> str:
    """Point Patron at ``database_url``, set Django up and migrate; returns the vendor.

    A PostgreSQL database is created if missing. With ``reset`` every run starts
    empty: the PostgreSQL database is dropped and created again, the SQLite file
    deleted; either only when its name says it is for benchmarks.
    """
    import dj_database_url

    parsed = dj_database_url.parse(database_url)
    if parsed["ENGINE"].endswith("postgresql"):
        prepare_postgres_database(database_url, reset=reset)
    elif parsed["ENGINE"].endswith("sqlite3") and parsed["NAME"] != ":memory:":
        prepare_sqlite_file(Path(parsed["NAME"]), reset=reset)
    os.environ["PATRON_DATABASE_URL"] = database_url
    # Benchmarks measure the real configuration, not the test one.
    os.environ["PATRON_TESTING"] = "0"
    os.environ.setdefault("PATRON_VAR_DIR", str(VAR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(1, str(ROOT / "src"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    return connection.vendor


def machine(*, database: bool = True) -> dict[str, Any]:
    """Where the numbers come from: host, CPUs, Python, and the database server."""
    if not database:
        return {
            "hostname": socket.gethostname(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "database_server": "no database",
        }
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
        else:
            cursor.execute("SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "database_server": f"{connection.vendor} {version}",
    }


# --- Timing -------------------------------------------------------------------------


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed()`` gives the seconds taken."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, interpolated."""
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1:
        return samples[0]
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Call:
    """One timed call; set ``items`` inside the block when the count is known only then."""

    items: int


@dataclass
class Timing:
    """Durations of repeated calls and the units of work (rows, events) they handled."""

    samples: list[float] = field(default_factory=list)
    items: int = 0

    @contextmanager
    def call(self, items: int = 1) -> Iterator[Call]:
        """Time one call: ``with timing.call(): do_it()``.

        A call that handled nothing (``items`` set to 0) is not counted: the
        last read of a drained queue is not part of the work.
        """
        call = Call(items)
        start = time.perf_counter()
        yield call
        elapsed = time.perf_counter() - start
        if call.items:
            self.samples.append(elapsed)
            self.items += call.items

    @property
    def seconds(self) -> float:
        return sum(self.samples)

    @property
    def rate(self) -> float:
        """Units of work per second over all calls."""
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples, 50) * 1000

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples, 95) * 1000


def time_calls(function: Callable[[], Any], repeat: int, *, items: int = 1) -> Timing:
    """Call ``function`` ``repeat`` times, timing each call."""
    timing = Timing()
    for _ in range(repeat):
        with timing.call(items):
            function()
    return timing


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- Results ------------------------------------------------------------------------


@dataclass
class Metric:
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None

    def __post_init__(self) -> None:
        if self.baseline and self.ratio is None:
            self.ratio = float(f"{self.value / self.baseline:.4g}")
        self.value = _rounded(self.value)
        self.baseline = None if self.baseline is None else _rounded(self.baseline)


def _rounded(number: float) -> float:
    """Three decimals, or four significant digits below 1 (a quick run's 0.04 s keeps
    enough precision for its ratio to be checked against it)."""
    if isinstance(number, int):
        return number
    number = float(number)
    return round(number, 3) if abs(number) >= 1 else float(f"{number:.4g}")


def write_result(name: str, database: str | None, metrics: list[Metric]) -> Path:
    """Write ``bench/results/<name>-<database>.json`` and print the same as a table.

    A benchmark that uses no database (MIME assembly, the SMTP sink) passes
    ``database=None`` and writes ``bench/results/<name>.json``.
    """
    result = {
        "name": name,
        "database": database,
        "machine": machine(database=database is not None),
        "metrics": [asdict(m) for m in metrics],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}-{database}.json" if database else f"{name}.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"  -> {shown}", flush=True)
    return path


def format_table(result: dict[str, Any]) -> str:
    machine_info = result["machine"]
    lines = [
        f"\n{result['name']} on {machine_info['database_server']} "
        f"({machine_info['hostname']}, {machine_info['cpus']} CPUs, "
        f"Python {machine_info['python']})",
    ]
    width = max([len(m["metric"]) for m in result["metrics"]] + [6])
    header = f"  {'metric':<{width}} {'value':>14} {'unit':<9} {'baseline':>12} {'ratio':>8}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for m in result["metrics"]:
        baseline = "" if m["baseline"] is None else _number(m["baseline"])
        ratio = "" if m["ratio"] is None else f"{m['ratio']:.2f}x"
        lines.append(
            f"  {m['metric']:<{width}} {_number(m['value']):>14} {m['unit']:<9} "
            f"{baseline:>12} {ratio:>8}"
        )
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


# --- Running a benchmark script -------------------------------------------------------


def build_parser(
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """The options every benchmark script takes, plus its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--database", choices=DATABASES, help="run on this database only")
    parser.add_argument("--database-url", help="run on this database (created if missing)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    if add_arguments:
        add_arguments(parser)
    return parser


def main(
    name: str,
    script: str,
    run: Callable[[str, argparse.Namespace], None],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> None:
    """The command line of a benchmark script.

    ``--database sqlite|postgresql`` or ``--database-url URL`` runs ``run(database,
    args)`` once in this process; with neither, the script runs itself in a child
    process per available database.
    """
    description = _first_line(sys.modules["__main__"].__doc__)
    arguments = sys.argv[1:] if argv is None else argv
    args = build_parser(add_arguments, description).parse_args(arguments)
    if args.database or args.database_url:
        url = args.database_url or database_url(args.database, name)
        # A script offering --reuse keeps the database of its earlier run.
        vendor = setup_django(url, reset=not getattr(args, "reuse", False))
        run("sqlite" if vendor == "sqlite" else "postgresql", args)
        return
    for database in available_databases():
        command = [sys.executable, script, "--database", database, *arguments]
        code = subprocess.call(command)  # noqa: S603
        if code:
            raise SystemExit(code)


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0]
