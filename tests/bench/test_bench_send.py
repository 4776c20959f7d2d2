"""The send benchmark runs end to end on a small campaign and reports in the documented format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.bench.test_bench_smoke import assert_documented_shape

ROOT = Path(__file__).resolve().parents[2]


def test_send_benchmark_quick_run_on_a_temporary_sqlite_file(tmp_path):
    env = {**os.environ, "PATRON_BENCH_RESULTS": str(tmp_path), "PATRON_BENCH_VAR": str(tmp_path)}
    for variable in ("PATRON_BENCH_POSTGRES_URL", "PATRON_DATABASE_URL", "PATRON_VAR_DIR"):
        env.pop(variable, None)
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "bench_send.py"),
            "--quick",
            "--database",
            "sqlite",
            "--dkim",
            "ed25519",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "send-ed25519-sqlite.json").read_text())
    assert_documented_shape(result, "send-ed25519", "sqlite")
    metrics = {m["metric"]: m for m in result["metrics"]}
    assert metrics["recipients"]["value"] == 500
    rate = next(m for name, m in metrics.items() if name.startswith("send rate"))
    assert rate["baseline"] > 0 and rate["ratio"] > 1  # the pipeline beats the naive sender
    assert 0 < metrics["peak worker RSS"]["value"] < 300
