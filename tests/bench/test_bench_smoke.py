"""The benchmark scripts run and write results in the documented format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


@pytest.mark.django_db
def test_generate_writes_exactly_the_rows_asked_for():
    from generate import generate

    from patron.activity.models import Event
    from patron.crm.models import Company, Contact

    result = generate(contacts=300, companies=40, events=900, workspace_slug="gen")
    ws = result.workspace_id
    assert Company.objects.for_workspace(ws).count() == 40
    assert Contact.objects.for_workspace(ws).count() == 300
    events = Event.objects.for_workspace(ws)
    assert events.count() == 900
    contact_ids = set(Contact.objects.for_workspace(ws).values_list("pk", flat=True))
    assert set(events.values_list("contact_id", flat=True)) <= contact_ids
    assert len(set(Contact.objects.for_workspace(ws).values_list("email", flat=True))) == 300
    assert all(rate > 0 for rate in result.rows_per_second.values())


@pytest.mark.parametrize("script", ["bench_generator.py", "bench_activity_log.py"])
def test_benchmark_quick_run_writes_its_result(script, tmp_path):
    env = {**os.environ, "PATRON_BENCH_RESULTS": str(tmp_path), "PATRON_BENCH_VAR": str(tmp_path)}
    env.pop("PATRON_BENCH_POSTGRES_URL", None)
    env.pop("PATRON_DATABASE_URL", None)
    completed = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    (result_file,) = tmp_path.glob("*-sqlite.json")
    result = json.loads(result_file.read_text())
    assert set(result) == {"name", "database", "machine", "metrics"}
    assert result["database"] == "sqlite"
    assert result["metrics"]
    for metric in result["metrics"]:
        assert set(metric) == {"metric", "value", "unit", "baseline", "ratio"}
        assert metric["value"] > 0
        if metric["baseline"]:
            assert metric["ratio"] == pytest.approx(metric["value"] / metric["baseline"], rel=0.01)
    assert "metric" in completed.stdout and "ratio" in completed.stdout
