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
