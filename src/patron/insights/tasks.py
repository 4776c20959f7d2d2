"""Background entry points of the insights app."""

from __future__ import annotations

from datetime import timedelta

from patron.core.background import background_task
from patron.core.scheduler import periodic


@periodic(every=timedelta(minutes=5))
@background_task
def send_dashboard_emails() -> int:
    """Email the dashboards whose daily or weekly time has come."""
    from patron.insights.emails import send_due_dashboards

    return send_due_dashboards()


@periodic(every=timedelta(minutes=1))
@background_task
def refresh_funnel() -> int:
    """Fold new lifecycle moves into the funnel's rollup."""
    from patron.insights.rollups import refresh_stage_entries

    return refresh_stage_entries()
