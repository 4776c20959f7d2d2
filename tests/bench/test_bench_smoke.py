"""The benchmarks run, write exactly the rows asked for, and report in the documented format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_activity_log  # noqa: E402
import bench_contact_list  # noqa: E402
import bench_generator  # noqa: E402
import bench_import  # noqa: E402
import bench_insights  # noqa: E402
import bench_segments  # noqa: E402
import bench_templates  # noqa: E402
import bench_workflows  # noqa: E402
import common  # noqa: E402
from generate import generate  # noqa: E402

from patron.activity.models import Event  # noqa: E402
from patron.crm.models import Company, Contact  # noqa: E402

BENCHMARKS = {
    "generator": bench_generator,
    "activity_log": bench_activity_log,
    "import": bench_import,
    "contact_list": bench_contact_list,
    "segments": bench_segments,
    "templates": bench_templates,
    "workflows": bench_workflows,
    "insights": bench_insights,
}


def assert_documented_shape(result: dict, name: str, database: str) -> None:
    assert set(result) == {"name", "database", "machine", "metrics"}
    assert (result["name"], result["database"]) == (name, database)
    assert {"hostname", "cpus", "python", "database_server"} <= set(result["machine"])
    assert result["machine"]["database_server"].startswith(database)
    assert result["metrics"]
    for metric in result["metrics"]:
        assert set(metric) == {"metric", "value", "unit", "baseline", "ratio"}
        assert isinstance(metric["metric"], str) and metric["unit"]
        assert metric["value"] > 0, metric
        if metric["baseline"] is None:
            assert metric["ratio"] is None
        else:
            assert metric["ratio"] == pytest.approx(metric["value"] / metric["baseline"], rel=0.01)
    assert any(m["baseline"] is not None for m in result["metrics"])


@pytest.mark.django_db
def test_generate_writes_exactly_the_rows_asked_for():
    result = generate(contacts=300, companies=40, events=900, workspace="gen", verbose=False)
    ws = result.workspace_id
    assert result.rows == {"companies": 40, "contacts": 300, "events": 900}
    assert Company.objects.for_workspace(ws).count() == 40
    contacts = Contact.objects.for_workspace(ws)
    assert contacts.count() == 300
    assert Event.objects.for_workspace(ws).count() == 900
    emails = list(contacts.values_list("email", flat=True))
    assert len({e.lower() for e in emails}) == 300 and all("@" in e for e in emails)
    company_ids = set(Company.objects.for_workspace(ws).values_list("pk", flat=True))
    assert set(contacts.exclude(company=None).values_list("company_id", flat=True)) <= company_ids
    contact_ids = set(contacts.values_list("pk", flat=True))
    events = Event.objects.for_workspace(ws)
    assert set(events.values_list("contact_id", flat=True)) <= contact_ids
    assert set(events.values_list("kind", flat=True)) == {
        "email.opened",
        "email.clicked",
        "page.viewed",
        "form.submitted",
    }
    page_view = events.filter(kind="page.viewed").first()
    assert page_view.properties["url"].startswith("/")
    assert all(rate > 0 for rate in result.rows_per_second.values())

    # A second load into the same workspace adds to it without clashing emails.
    again = generate(contacts=50, companies=0, events=10, workspace="gen", verbose=False)
    assert again.workspace_id == ws
    assert Contact.objects.for_workspace(ws).count() == 350


@pytest.mark.django_db
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_quick_run_on_the_test_database(name, tmp_path, monkeypatch, capsys):
    module = BENCHMARKS[name]
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    args = common.build_parser(module.add_arguments).parse_args(["--quick"])
    module.run(connection.vendor, args)

    result = json.loads((tmp_path / f"{name}-{connection.vendor}.json").read_text())
    assert_documented_shape(result, name, connection.vendor)
    assert "ratio" in capsys.readouterr().out
    if name == "generator":
        loaded = {m["metric"]: m["value"] for m in result["metrics"] if m["unit"] == "rows"}
        assert loaded == {"companies loaded": 100, "contacts loaded": 1000, "events loaded": 3000}


def test_benchmark_scripts_run_from_the_command_line_on_a_temporary_sqlite_file(tmp_path):
    """Every script, as `make bench` runs them, each in its own process and database."""
    env = {**os.environ, "PATRON_BENCH_RESULTS": str(tmp_path), "PATRON_BENCH_VAR": str(tmp_path)}
    for variable in ("PATRON_BENCH_POSTGRES_URL", "PATRON_DATABASE_URL", "PATRON_VAR_DIR"):
        env.pop(variable, None)
    for name in BENCHMARKS:
        completed = subprocess.run(  # noqa: S603
            [sys.executable, str(BENCH / f"bench_{name}.py"), "--quick"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        result = json.loads((tmp_path / f"{name}-sqlite.json").read_text())
        assert_documented_shape(result, name, "sqlite")
    assert sorted(p.name for p in tmp_path.glob("*.sqlite3")) == [
        f"{name}.sqlite3" for name in sorted(BENCHMARKS)
    ]
