"""Background entry points of the core app."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from patron.core.background import background_task
from patron.core.scheduler import periodic

FINISHED_RESULTS_KEPT = timedelta(days=7)


@periodic(every=timedelta(hours=1))
@background_task
def prune_finished_task_results() -> int:
    """Delete successful task results older than a week (failures stay as TaskFailure rows)."""
    from django_tasks_db.models import DBTaskResult

    cutoff = timezone.now() - FINISHED_RESULTS_KEPT
    deleted, _ = DBTaskResult.objects.filter(status="SUCCESSFUL", finished_at__lt=cutoff).delete()
    return deleted


@periodic(every=timedelta(hours=6))
@background_task
def refresh_planner_statistics() -> str:
    """Keep SQLite's query planner informed (PostgreSQL's autovacuum does this itself).

    Without statistics SQLite chooses between two indexes of the same shape by
    guesswork: a segment count measured 7 s with them went past ten minutes
    without, probing the wrong event index per contact. ``PRAGMA optimize``
    analyses only the tables whose statistics are missing or out of date.
    """
    from django.db import connection

    if connection.vendor != "sqlite":
        return "not needed"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA optimize=0x10002")
    return "optimized"
