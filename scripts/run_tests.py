"""Run the whole test suite: on SQLite (with the browser tests), then on PostgreSQL.

PostgreSQL is used when reachable at PATRON_TEST_POSTGRES_URL; Redis-backed
task tests run when Redis answers at PATRON_TEST_REDIS_URL. With
PATRON_TEST_REQUIRE_ALL=1 (as CI sets it) a missing PostgreSQL, Redis or
Chromium is a failure instead of a skipped part. Extra arguments go to pytest.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlsplit

REQUIRE_ALL = os.environ.get("PATRON_TEST_REQUIRE_ALL") == "1"
POSTGRES_URL = os.environ.get(
    "PATRON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PATRON_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CHROMIUM = os.environ.get("PATRON_TEST_CHROMIUM", "/usr/bin/chromium")


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        address = (parts.hostname or "127.0.0.1", parts.port or default_port)
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def pytest(label: str, env: dict[str, str], args: list[str]) -> int:
    print(f"\n===== {label} =====", flush=True)
    command = [sys.executable, "-m", "pytest", *args]
    return subprocess.call(command, env={**os.environ, **env})  # noqa: S603


def main() -> int:
    extra = sys.argv[1:]
    problems: list[str] = []
    env: dict[str, str] = {"PATRON_TESTING": "1"}

    have_redis = reachable(REDIS_URL, 6379)
    if have_redis:
        env["PATRON_TEST_REDIS_URL"] = REDIS_URL
    elif REQUIRE_ALL:
        problems.append(f"Redis is not reachable at {REDIS_URL}")

    have_browser = shutil.which(CHROMIUM) is not None or os.path.exists(CHROMIUM)
    if have_browser:
        env["PATRON_TEST_CHROMIUM"] = CHROMIUM
    elif REQUIRE_ALL:
        problems.append(f"Chromium is not installed at {CHROMIUM}")

    have_postgres = reachable(POSTGRES_URL, 5432)
    if not have_postgres and REQUIRE_ALL:
        problems.append(f"PostgreSQL is not reachable at {POSTGRES_URL}")

    if problems:
        for problem in problems:
            print(f"run_tests: {problem} (PATRON_TEST_REQUIRE_ALL=1)", file=sys.stderr)
        return 1
    if REQUIRE_ALL:
        env["PATRON_TEST_REQUIRE_ALL"] = "1"

    results = {}
    sqlite_env = {**env, "PATRON_DATABASE_URL": "sqlite:///:memory:"}
    results["SQLite"] = pytest("SQLite", sqlite_env, extra)
    if have_postgres:
        pg_env = {**env, "PATRON_DATABASE_URL": POSTGRES_URL}
        # The browser tests drive the same views; once (on SQLite) is enough.
        results["PostgreSQL"] = pytest("PostgreSQL + Redis", pg_env, ["-m", "not browser", *extra])
    else:
        print("\nrun_tests: PostgreSQL not reachable: its run was left out.", file=sys.stderr)

    print("\n===== summary =====")
    for label, code in results.items():
        print(f"{label}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    if not have_redis:
        print("Redis: not reachable, its tests were skipped")
    if not have_browser:
        print("Browser: Chromium missing, browser tests were skipped")
    return 0 if all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
