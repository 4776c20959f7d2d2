"""Connection settings that the analytic queries (segments, reports) rely on."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from patron.audience.segments import WORK_MEM, roomy_aggregates

pytestmark = pytest.mark.django_db


def _show(setting: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {setting}")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL settings")
def test_postgresql_connections_run_without_jit():
    assert _show("jit") == "off"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL settings")
@pytest.mark.django_db(transaction=True)  # a real transaction, not the test's savepoint
def test_segment_queries_get_memory_for_their_transaction_only():
    before = _show("work_mem")
    with transaction.atomic():
        roomy_aggregates()
        assert _show("work_mem") == WORK_MEM
    assert _show("work_mem") == before


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite statistics")
def test_sqlite_statistics_are_gathered_for_the_planner(workspace):
    from patron.core.tasks import refresh_planner_statistics
    from tests.factories import ContactFactory

    for _ in range(3):
        ContactFactory(workspace=workspace)
    assert refresh_planner_statistics.func() == "optimized"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'crm_contact'")
        assert cursor.fetchone()[0] > 0
