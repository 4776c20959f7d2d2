"""Background entry points of the audience."""

from __future__ import annotations

from datetime import timedelta

from patron.core.background import background_task
from patron.core.scheduler import periodic


@background_task
def evaluate_segment(segment_id: int) -> int:
    """Evaluate one segment in full (after it was created or changed)."""
    from patron.audience import segment_services
    from patron.audience.models import Segment

    segment = Segment.objects.unscoped().select_related("workspace").filter(pk=segment_id).first()
    if segment is None:
        return 0
    result = segment_services.refresh_segment(segment)
    return result.entered + result.left


@periodic(every=timedelta(minutes=1))
@background_task
def follow_activity_for_segments() -> int:
    """Re-evaluate segments for the contacts that new events are about."""
    from patron.audience import segment_services

    return segment_services.consume_activity()


@periodic(every=timedelta(hours=1))
@background_task
def refresh_segments() -> int:
    """Evaluate every segment in full: time windows move without events."""
    from patron.audience import segment_services

    return segment_services.refresh_all()
