"""What automation knows of a contact follows it through a merge.

Registered with ``crm.merge.on_contact_merge``: the merge calls it inside its
transaction, before the merged-away contact is deleted (which would otherwise
cascade away its hand-offs and points, and leave its workflow enrolments
pointing at nobody, to exit as "contact deleted").

* **Enrolments** move to the kept contact. One that is in progress in a workflow
  where the kept contact is in progress too is ended as exited (the kept
  contact's journey goes on; a contact is in a workflow once at a time).
* **Points** per rule and period move; where both contacts had points for the
  same rule and period they are added up (the cap counts what the person
  earned). A firmographic rule's "while true" row stays the kept contact's:
  the condition is the kept record's now.
* **Hand-offs** move: sales' history of the lead stays on the record.
* **Decay**: the kept contact's clock, else the merged-away one's.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from patron.automation.models import (
    WHILE_TRUE,
    Enrolment,
    EnrolmentStatus,
    Handoff,
    RulePoints,
    ScoreDecay,
)


def move_automation(workspace_id: int, from_contact_id: int, to_contact_id: int) -> None:
    """A merge: the merged-away contact's enrolments, points, hand-offs and decay clock."""
    enrolments = Enrolment.objects.for_workspace(workspace_id)
    busy = enrolments.filter(contact_id=to_contact_id, status=EnrolmentStatus.ACTIVE).values(
        "workflow_id"
    )
    enrolments.filter(
        contact_id=from_contact_id, status=EnrolmentStatus.ACTIVE, workflow_id__in=busy
    ).update(
        status=EnrolmentStatus.EXITED,
        step="",
        next_wake_at=None,
        lease_until=None,
        waiting_for="",
        finished_at=timezone.now(),
    )
    enrolments.filter(contact_id=from_contact_id).update(contact_id=to_contact_id)

    points = RulePoints.objects.for_workspace(workspace_id)
    kept = {
        (rule_id, start): pk
        for pk, rule_id, start in points.filter(contact_id=to_contact_id).values_list(
            "pk", "rule_id", "period_start"
        )
    }
    for pk, rule_id, start, earned in points.filter(contact_id=from_contact_id).values_list(
        "pk", "rule_id", "period_start", "points"
    ):
        twin = kept.get((rule_id, start))
        if twin is None:
            continue
        if start != WHILE_TRUE:
            points.filter(pk=twin).update(points=F("points") + earned)
        points.filter(pk=pk).delete()
    points.filter(contact_id=from_contact_id).update(contact_id=to_contact_id)

    Handoff.objects.for_workspace(workspace_id).filter(contact_id=from_contact_id).update(
        contact_id=to_contact_id
    )
    decay = ScoreDecay.objects.for_workspace(workspace_id)
    if decay.filter(contact_id=to_contact_id).exists():
        decay.filter(contact_id=from_contact_id).delete()
    else:
        decay.filter(contact_id=from_contact_id).update(contact_id=to_contact_id)
