"""Background work: the task decorator every app uses, failures kept visible, retries.

Tasks run through Django's task API (the ``django-tasks`` backport): the
database backend in embedded mode, Redis/RQ when ``PATRON_REDIS_URL`` is set.
``background_task`` wraps a function so that, whatever the backend, a failure
is stored as a ``TaskFailure`` row with its traceback, listed on the
installation's Background tasks page and retryable from there.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import task
from django_tasks.base import Task

from patron.core.models import AuditAction, TaskFailure, User
from patron.core.services import record_audit

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _record_failure(task_path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        # Outside whatever transaction the task left behind: the record must stick.
        with transaction.atomic():
            TaskFailure.objects.create(
                task_path=task_path,
                backend=_backend_name(),
                args=list(args),
                kwargs=kwargs,
                error_class=traceback.format_exc().strip().splitlines()[-1][:255],
                traceback=traceback.format_exc(),
            )
    except Exception:
        logger.exception("Could not record the failure of %s", task_path)


def _backend_name() -> str:
    from django.conf import settings

    backend = str(settings.TASKS["default"]["BACKEND"])
    return backend.rsplit(".", 1)[-1]


def background_task(
    function: F | None = None, *, queue_name: str = "default", priority: int = 0
) -> Any:
    """Declare a background task (``my_task.enqueue(...)`` runs it on a worker).

    Arguments must be JSON-serialisable: pass ids, not model instances.
    """

    def decorate(func: F) -> Task[Any, Any]:
        task_path = f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception:
                logger.exception("Background task %s failed", task_path)
                _record_failure(task_path, args, kwargs)
                raise

        return task(run, queue_name=queue_name, priority=priority)

    if function is not None:
        return decorate(function)
    return decorate


class NotRetryable(Exception):
    """The failure was already retried or dismissed, or its task no longer exists."""


@transaction.atomic
def retry_failed_task(*, failure: TaskFailure, actor: User | None) -> str:
    """Enqueue the failed task again with the same arguments; returns the new result id."""
    locked = TaskFailure.objects.select_for_update().get(pk=failure.pk)
    if not locked.is_open:
        raise NotRetryable("This failure was already retried or dismissed.")
    try:
        task_object = import_string(locked.task_path)
    except ImportError as exc:
        raise NotRetryable(f"The task {locked.task_path} no longer exists.") from exc
    if not isinstance(task_object, Task):
        raise NotRetryable(f"{locked.task_path} is not a task.")
    result = task_object.enqueue(*locked.args, **locked.kwargs)
    locked.retried_at = timezone.now()
    locked.retried_as = str(result.id)
    locked.save(update_fields=["retried_at", "retried_as"])
    record_audit(
        action=AuditAction.TASK_RETRIED,
        workspace=None,
        actor=actor,
        target=locked.task_path,
        data={"failure": locked.pk, "result": locked.retried_as},
    )
    failure.refresh_from_db()
    return locked.retried_as


def dismiss_failed_task(*, failure: TaskFailure) -> None:
    TaskFailure.objects.filter(pk=failure.pk, dismissed_at__isnull=True).update(
        dismissed_at=timezone.now()
    )
