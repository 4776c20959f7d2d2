"""Background entry points of workflows: the engine's round, the trigger consumer, date triggers."""

from __future__ import annotations

from datetime import timedelta

from patron.core.background import background_task
from patron.core.scheduler import periodic


@periodic(every=timedelta(seconds=15))
@background_task
def advance_workflows() -> int:
    """Run the steps that are due (timers, new enrolments, retries) in every workspace."""
    from patron.automation import engine

    return engine.advance().steps


@periodic(every=timedelta(seconds=15))
@background_task
def follow_activity_for_workflows() -> int:
    """Enrol contacts on event triggers and end event waits."""
    from patron.automation import engine

    return engine.follow_activity()


@periodic(every=timedelta(minutes=15))
@background_task
def enrol_on_dates() -> int:
    """Enrol contacts whose birthday or anniversary it is, from the hour each workflow says."""
    from patron.automation import engine

    return engine.enrol_by_date()
