"""Background entry points of automation (the workflow tasks register by being imported)."""

from __future__ import annotations

from datetime import timedelta

from patron.automation.workflow_tasks import (  # noqa: F401
    advance_workflows,
    enrol_on_dates,
    follow_activity_for_workflows,
)
from patron.core.background import background_task
from patron.core.scheduler import periodic

# --- Scoring, lifecycle and hand-off -------------------------------------------------------


@periodic(every=timedelta(seconds=5))
@background_task
def follow_activity_for_scoring() -> int:
    """Apply new events to scores, lifecycle stages and hand-offs (the loop's fallback)."""
    from patron.automation import scoring

    return scoring.follow_activity()


@periodic(every=timedelta(hours=1))
@background_task
def refresh_firmographic_scores() -> int:
    """Firmographic rules for everyone: catches record changes that recorded no event."""
    from patron.automation import scoring

    return scoring.refresh_firmographic_everywhere()


@periodic(every=timedelta(hours=6))
@background_task
def decay_scores() -> int:
    """Take the decay share from the scores of contacts quiet for the workspace's period."""
    from patron.automation import scoring

    return scoring.decay_scores()


@background_task
def refresh_firmographic_rule(rule_id: int) -> int:
    """Give or take back one firmographic rule's points for everyone (after it changed)."""
    from django.db import transaction

    from patron.automation import scoring
    from patron.automation.models import ScoringRule

    rule = ScoringRule.objects.unscoped().select_related("workspace").filter(pk=rule_id).first()
    if rule is None or not rule.is_active:
        return 0
    with transaction.atomic():
        scoring._lock_consumer()
        return scoring.refresh_firmographic(rule.workspace, rules=[rule])


@background_task
def reapply_scoring_rules(job_id: int) -> int:
    """Re-apply the rules to every contact of the job's workspace."""
    from patron.automation import scoring
    from patron.automation.models import ScoreRecompute

    job = ScoreRecompute.objects.unscoped().select_related("workspace").filter(pk=job_id).first()
    if job is None:
        return 0
    return scoring.reapply_rules(job)


# --- End of scoring, lifecycle and hand-off -------------------------------------------------
