"""The sending layer's benchmarks run and report in the documented format (no database)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

import bench_mime  # noqa: E402
import bench_sink  # noqa: E402
import common  # noqa: E402


@pytest.mark.parametrize(
    ("module", "name", "options"),
    [
        (bench_mime, "mime", {"messages": 0}),
        (
            bench_sink,
            "sink",
            {"messages": 0, "size": 2000, "connections": 8, "client_connections": 4},
        ),
    ],
)
def test_quick_run_writes_the_result(module, name, options, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    module.run(argparse.Namespace(quick=True, **options))
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert set(result) == {"name", "database", "machine", "metrics"}
    assert (result["name"], result["database"]) == (name, None)
    assert result["machine"]["database_server"] == "no database"
    for metric in result["metrics"]:
        assert set(metric) == {"metric", "value", "unit", "baseline", "ratio"}
        assert metric["value"] >= 0
        if metric["baseline"] is not None:
            assert metric["ratio"] == pytest.approx(metric["value"] / metric["baseline"], rel=0.01)
    assert sum(1 for m in result["metrics"] if m["baseline"]) >= 2
    assert "ratio" in capsys.readouterr().out
