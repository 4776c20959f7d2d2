"""Background entry points of the CRM."""

from __future__ import annotations

from datetime import timedelta

from patron.core.background import background_task
from patron.core.scheduler import periodic
from patron.crm.services import send_task_reminders


@periodic(every=timedelta(minutes=1))
@background_task
def remind_task_assignees() -> int:
    """Deliver the task reminders that are due (in the app and by email)."""
    return send_task_reminders()


@periodic(every=timedelta(hours=1))
@background_task
def expire_quotes() -> int:
    """Mark sent quotes whose last valid day has passed as expired."""
    from patron.crm import quotes

    return quotes.expire_quotes()


@background_task
def run_import_job(job_id: int) -> int:
    """Apply an import's rows (resumes where a stopped worker left off)."""
    from patron.crm.importer import run_import

    return run_import(job_id).processed_rows


@periodic(every=timedelta(minutes=1))
@background_task
def resume_stalled_imports() -> int:
    """Give imports whose worker died to another worker."""
    from patron.crm import importer

    return importer.resume_stalled_imports()
