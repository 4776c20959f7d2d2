"""Background entry points of mail."""

from __future__ import annotations

from datetime import timedelta

from patron.core.background import background_task
from patron.core.scheduler import periodic


@periodic(every=timedelta(hours=1))
@background_task
def recheck_sending_domains() -> int:
    """Check the DNS records of sending domains not checked for a while (see
    ``dkim_keys.recheck_sending_domains``)."""
    from patron.mail import dkim_keys

    return dkim_keys.recheck_sending_domains()
