"""Background entry points of mail: the send pipeline (see ``patron.mail.pipeline``),
bounce and complaint processing (``patron.mail.feedback``), the sending domains' DNS checks,
inbound mail by IMAP polling."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from patron.core.background import background_task
from patron.core.scheduler import periodic


@background_task
def start_campaign(campaign_id: int) -> str:
    """Snapshot a due campaign's recipients and hand its chunks to the workers."""
    from patron.mail import pipeline

    campaign = pipeline.start_campaign(campaign_id)
    return campaign.status if campaign is not None else "not due"


@background_task
def send_chunk(chunk_id: int) -> str:
    """Send the due deliveries of one chunk."""
    from patron.mail import pipeline

    return str(pipeline.run_chunk(chunk_id))


@periodic(every=timedelta(seconds=5))
@background_task
def advance_campaigns() -> dict[str, int]:
    """Start due campaigns, wake held-back and rescue stalled chunks, finish campaigns."""
    from patron.mail import pipeline

    return pipeline.advance_campaigns()


@periodic(every=timedelta(hours=1))
@background_task
def recheck_sending_domains() -> int:
    """Check the DNS records of sending domains not checked for a while (see
    ``dkim_keys.recheck_sending_domains``)."""
    from patron.mail import dkim_keys

    return dkim_keys.recheck_sending_domains()


@periodic(every=timedelta(minutes=1))
@background_task
def process_bounces() -> dict[str, int]:
    """Read and apply the bounces and complaints the inbound server stored (also enqueued
    by the server right after storing one; the round catches what a lost task left)."""
    from patron.mail import feedback

    return feedback.process_received_bounces()


@background_task
def poll_imap() -> dict[str, int]:
    """Fetch inbound mail from the mailbox of PATRON_IMAP_URL (see ``patron.mail.imap``).
    Periodic only when that is set; a poll finding another at work does nothing."""
    from patron.mail import imap

    return imap.poll().as_dict()


if settings.IMAP_URL:
    periodic(every=timedelta(seconds=settings.IMAP_POLL_SECONDS))(poll_imap)
