"""The scheduler: enqueues periodic jobs when they are due.

Each periodic job has a ``ScheduledJob`` row holding its next due time. A
tick claims a due job with one conditional UPDATE (``next_run_at <= now``),
so any number of scheduler processes can run side by side and each due run
is enqueued exactly once. A job that was due while no scheduler ran is
enqueued once at the next tick, not once per missed period.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django_tasks.base import Task

from patron.core.models import ScheduledJob

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: Task[Any, Any]
    every: timedelta


PERIODIC_JOBS: dict[str, PeriodicJob] = {}


def periodic(*, every: timedelta, name: str | None = None) -> Any:
    """Register a background task to run every ``every`` (apply above ``@background_task``)."""

    def register(task_object: Task[Any, Any]) -> Task[Any, Any]:
        job_name = name or task_object.module_path
        PERIODIC_JOBS[job_name] = PeriodicJob(name=job_name, task=task_object, every=every)
        return task_object

    return register


def run_due_jobs(now: datetime | None = None) -> list[str]:
    """Enqueue every registered job that is due; returns the names enqueued."""
    now = now or timezone.now()
    enqueued = []
    for job in PERIODIC_JOBS.values():
        ScheduledJob.objects.get_or_create(name=job.name, defaults={"next_run_at": now})
        claimed = ScheduledJob.objects.filter(name=job.name, next_run_at__lte=now).update(
            next_run_at=now + job.every, last_run_at=now
        )
        if claimed:
            result = job.task.enqueue()
            ScheduledJob.objects.filter(name=job.name).update(last_task_result_id=str(result.id))
            enqueued.append(job.name)
    return enqueued


def run_scheduler(stop: threading.Event | None = None) -> None:
    """Tick until ``stop`` is set (or forever)."""
    stop = stop or threading.Event()
    logger.info("Scheduler started: %d periodic jobs", len(PERIODIC_JOBS))
    while not stop.is_set():
        close_old_connections()
        try:
            names = run_due_jobs()
            if names:
                logger.info("Enqueued %s", ", ".join(names))
        except Exception:
            logger.exception("Scheduler tick failed; trying again at the next tick")
        stop.wait(settings.SCHEDULER_TICK_SECONDS)
    close_old_connections()
