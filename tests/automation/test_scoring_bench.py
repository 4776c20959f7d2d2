"""bench_scoring.py runs and reports in the documented shape (a smoke run on SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_scoring_benchmark_smoke_run(tmp_path):
    env = {**os.environ, "PATRON_BENCH_RESULTS": str(tmp_path), "PATRON_BENCH_VAR": str(tmp_path)}
    for variable in ("PATRON_BENCH_POSTGRES_URL", "PATRON_DATABASE_URL", "PATRON_VAR_DIR"):
        env.pop(variable, None)
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "bench_scoring.py"),
            "--quick",
            "--seconds",
            "3",
            "--database",
            "sqlite",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "scoring-sqlite.json").read_text())
    metrics = {m["metric"]: m for m in result["metrics"]}
    latency = metrics["event → owner's task: p95 (target < 2,000)"]
    assert latency["unit"] == "ms" and latency["value"] > 0
    assert metrics["probes (threshold crossings)"]["value"] >= 1
    throughput = metrics["scoring consumer (follow_activity, batches of 2,000)"]
    assert throughput["baseline"] > 0
    assert throughput["ratio"] == pytest.approx(
        throughput["value"] / throughput["baseline"], rel=0.01
    )
    assert "event → owner's task: p50" in completed.stdout
