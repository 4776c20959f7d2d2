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


@background_task
def send_confirmation_emails(list_id: int, contact_ids: list[int]) -> int:
    """Send a list's double opt-in email to those of the contacts still pending."""
    from patron.audience import lists
    from patron.audience.models import MailingList

    mailing_list = (
        MailingList.objects.unscoped().select_related("workspace").filter(pk=list_id).first()
    )
    if mailing_list is None:
        return 0
    return lists.send_confirmation_emails(mailing_list, contact_ids)
