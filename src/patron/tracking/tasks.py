"""Background entry points of tracking."""

from __future__ import annotations

from datetime import timedelta

from patron.core.background import background_task
from patron.core.scheduler import periodic


@periodic(every=timedelta(seconds=5))
@background_task
def process_hits() -> int:
    """Judge new opens and clicks and put people's on their timelines (until none are due)."""
    from patron.tracking import services

    total = 0
    while True:
        judged = services.process_hits()
        total += judged
        if judged < services.BATCH:
            return total
