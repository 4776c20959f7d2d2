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
