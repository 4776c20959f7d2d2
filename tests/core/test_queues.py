"""Background work on the real queues: the database backend and Redis/RQ."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from django.test import override_settings

from patron.activity.models import Event
from patron.activity.services import record
from patron.core.background import background_task
from patron.core.models import TaskFailure, Workspace

REDIS_URL = os.environ.get("PATRON_TEST_REDIS_URL")


@background_task
def record_an_event(workspace_id: int, note: str) -> int:
    return record(
        workspace=workspace_id, kind="custom.event", visitor_id="queue", properties={"note": note}
    ).pk


@background_task
def break_down(workspace_id: int) -> None:
    raise RuntimeError("the mail server is on fire")


DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.mark.django_db(transaction=True)
@override_settings(TASKS=DATABASE_QUEUE)
def test_the_database_queue_runs_tasks_in_a_worker_and_keeps_failures():
    workspace = Workspace.objects.create(name="Queue", slug="queue")
    ok = record_an_event.enqueue(workspace.pk, "from the worker")
    bad = break_down.enqueue(workspace.pk)
    assert not Event.objects.for_workspace(workspace).exists()  # nothing ran yet
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "default")
    event = Event.objects.for_workspace(workspace).get()
    assert event.properties == {"note": "from the worker"}
    assert record_an_event.get_result(ok.id).status == "SUCCESSFUL"
    assert break_down.get_result(bad.id).status == "FAILED"
    failure = TaskFailure.objects.get()
    assert failure.backend == "DatabaseBackend" and failure.args == [workspace.pk]
    assert "the mail server is on fire" in failure.traceback


@pytest.fixture
def redis_queue():
    if not REDIS_URL:
        if os.environ.get("PATRON_TEST_REQUIRE_ALL") == "1":
            pytest.fail(
                "Redis is required (PATRON_TEST_REQUIRE_ALL=1) but PATRON_TEST_REDIS_URL is not set"
            )
        pytest.skip("Redis not configured (PATRON_TEST_REDIS_URL)")
    import django_rq

    settings = {
        "TASKS": {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}},
        "RQ_QUEUES": {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 60}},
    }
    with override_settings(**settings):
        connection = django_rq.get_connection("default")
        connection.flushdb()
        yield django_rq
        connection.flushdb()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_workers_run_tasks_and_failures_are_kept(redis_queue):
    workspace = Workspace.objects.create(name="Redis", slug="redis")
    record_an_event.enqueue(workspace.pk, "through redis")
    break_down.enqueue(workspace.pk)
    assert redis_queue.get_queue("default").count == 2
    worker = redis_queue.get_worker(
        "default", worker_class="rq.worker.SimpleWorker", job_class="django_tasks_rq.Job"
    )
    worker.work(burst=True)
    event = Event.objects.for_workspace(workspace).get()
    assert event.properties == {"note": "through redis"}
    failure = TaskFailure.objects.get()
    assert failure.backend == "RQBackend" and "on fire" in failure.traceback
    assert redis_queue.get_queue("default").count == 0
