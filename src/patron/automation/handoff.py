"""Hand-off to sales: a marketing-qualified lead becomes someone's task.

When a contact becomes an MQL — by a lifecycle rule, by hand or through the
API: any ``contact.lifecycle_changed`` to ``mql`` — ``start_handoff``

* gives the contact an owner by the CRM's assignment rules if they have none,
* creates a follow-up task for the owner, due in the workspace's
  ``handoff_due_hours`` (in business hours when the workspace counts them),
* notifies the owner in the app and by email,
* and opens a ``Handoff`` (pending) that sales accepts (the contact becomes a
  sales-qualified lead) or rejects with a reason (back to lead, the reason on
  the timeline).

A contact has at most one pending hand-off: a second move to MQL while one is
pending opens nothing new.

**Time to first touch** is measured from the hand-off to the first of: a call
logged, a meeting scheduled, a one-to-one email sent, a task completed, or the
acceptance — whoever of sales did it. It is stored on the hand-off
(``first_touch_at``, ``first_touch_kind``) as the consumer reads those events.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from patron.activity.models import Event
from patron.automation.models import Handoff, HandoffStatus, ScoringSettings
from patron.core.models import User, Workspace
from patron.core.services import notify, send_workspace_mail
from patron.crm import sla, tickets
from patron.crm.assignment import assign_owner
from patron.crm.models import Contact, CustomFieldObject, LifecycleStage, TaskPriority
from patron.crm.services import complete_task, create_task, set_lifecycle_stage, update_contact

PERSONAL_EMAIL_SOURCE = "mail.personal"
TOUCH_KINDS = {"call.logged", "meeting.scheduled", "email.sent", "task.completed"}


class HandoffClosed(ValueError):
    pass


def _assign(contact: Contact) -> User | None:
    if contact.owner_id is not None:
        return contact.owner
    values = {
        "lifecycle_stage": contact.lifecycle_stage,
        "source": contact.source,
        "country": contact.country,
        "custom": contact.custom,
    }
    tags = list(contact.tags.values_list("name", flat=True))
    owner = assign_owner(
        workspace=contact.workspace_id,
        object_type=CustomFieldObject.CONTACT,
        values=values,
        tags=tags,
    )
    if owner is not None:
        update_contact(contact=contact, owner=owner)
    return owner


@transaction.atomic
def start_handoff(*, contact: Contact, reason: str = "") -> Handoff | None:
    """Pass an MQL to sales (owner, task, notification); None if one is pending already."""
    from patron.automation.scoring import settings_for

    workspace_id = contact.workspace_id
    # One hand-off at a time per contact, whatever runs this at the same moment.
    contact = Contact.objects.for_workspace(workspace_id).select_for_update().get(pk=contact.pk)
    pending = Handoff.objects.for_workspace(workspace_id).filter(
        contact=contact, status=HandoffStatus.PENDING
    )
    if pending.exists():
        return None
    owner = _assign(contact)
    now = timezone.now()
    task = create_task(
        workspace=contact.workspace,
        title=_("Follow up with %(name)s (marketing-qualified lead)") % {"name": contact},
        description=reason,
        contact=contact,
        assignee=owner,
        due_at=_due(contact.workspace, settings_for(workspace_id), now),
        priority=TaskPriority.HIGH,
    )
    handoff = Handoff.objects.create(
        workspace_id=workspace_id,
        contact=contact,
        owner=owner,
        task=task,
        reason=reason[:300],
        created_at=now,
    )
    if owner is not None:
        _tell_owner(handoff, owner)
    return handoff


def _due(workspace: Workspace, chosen: ScoringSettings, now: datetime) -> datetime:
    """When the follow-up is due: the set hours from now, counted in business hours when
    the workspace asks (and its schedule has an open day), else around the clock."""
    minutes = chosen.handoff_due_hours * 60
    if chosen.handoff_business_hours:
        hours = tickets.schedule(workspace)
        zone = ZoneInfo(workspace.time_zone or "UTC")
        try:
            return sla.add_business_minutes(now, minutes, hours, zone)
        except sla.ScheduleNeverOpen:
            pass
    return now + timedelta(minutes=minutes)


def _tell_owner(handoff: Handoff, owner: User) -> None:
    workspace = handoff.workspace
    contact = handoff.contact
    url = reverse("automation_scoring:handoff_list")
    notify(
        workspace=workspace,
        user=owner,
        text=_("New marketing-qualified lead for you: %(name)s") % {"name": contact},
        url=url,
    )
    link = settings.BASE_URL + url
    with translation.override(workspace.language):
        subject = _("New marketing-qualified lead: %(name)s") % {"name": contact}
    context = {"handoff": handoff, "contact": contact, "link": link}
    address = owner.email
    # After the commit: a batch that rolls back sends nothing.
    transaction.on_commit(
        lambda: send_workspace_mail(
            workspace=workspace,
            to=address,
            subject=subject,
            template="automation/scoring/email/handoff",
            context=context,
        )
    )


def _pending(handoff: Handoff) -> Handoff:
    locked = (
        Handoff.objects.for_workspace(handoff.workspace_id).select_for_update().get(pk=handoff.pk)
    )
    if locked.status != HandoffStatus.PENDING:
        raise HandoffClosed(_("This hand-off was decided already."))
    return locked


def _close_task(handoff: Handoff, actor: User) -> None:
    if handoff.task_id is not None and handoff.task is not None:
        complete_task(task=handoff.task, actor=actor)


@transaction.atomic
def accept_handoff(*, handoff: Handoff, actor: User) -> Handoff:
    """Sales takes the lead: it becomes a sales-qualified lead."""
    locked = _pending(handoff)
    now = timezone.now()
    locked.status = HandoffStatus.ACCEPTED
    locked.decided_at, locked.decided_by = now, actor
    if locked.first_touch_at is None:
        locked.first_touch_at, locked.first_touch_kind = now, "handoff.accepted"
    locked.save()
    contact = locked.contact
    set_lifecycle_stage(
        contact=contact,
        stage=LifecycleStage.SQL,
        actor=actor,
        reason=_("Accepted by sales (%(name)s)") % {"name": actor.display_name},
    )
    _close_task(locked, actor)
    return locked


@transaction.atomic
def reject_handoff(*, handoff: Handoff, actor: User, reason: str) -> Handoff:
    """Sales sends the lead back to marketing, saying why: it becomes a lead again."""
    reason = (reason or "").strip()
    if not reason:
        raise HandoffClosed(_("Say why the lead goes back to marketing."))
    locked = _pending(handoff)
    locked.status = HandoffStatus.REJECTED
    locked.decided_at, locked.decided_by = timezone.now(), actor
    locked.rejection_reason = reason[:500]
    locked.save()
    set_lifecycle_stage(
        contact=locked.contact,
        stage=LifecycleStage.LEAD,
        actor=actor,
        reason=_("Rejected by sales: %(reason)s") % {"reason": locked.rejection_reason},
    )
    _close_task(locked, actor)
    return locked


def _is_touch(event: Event) -> bool:
    if event.kind not in TOUCH_KINDS:
        return False
    # Only a one-to-one email is a touch; a campaign's email.sent is marketing's.
    return event.kind != "email.sent" or event.source_type == PERSONAL_EMAIL_SOURCE


def start_for_moves(workspace_id: int, moves: list[tuple[int, str, str]]) -> int:
    """Hand-offs for the contacts a lifecycle rule just moved to MQL (same transaction)."""
    opened = 0
    for contact_id, stage, reason in moves:
        if stage != LifecycleStage.MQL:
            continue
        contact = Contact.objects.for_workspace(workspace_id).get(pk=contact_id)
        if start_handoff(contact=contact, reason=reason) is not None:
            opened += 1
    return opened


def handle_events(workspace_id: int, events: list[Event]) -> int:
    """Open hand-offs for new MQLs and note first touches; returns hand-offs opened."""
    opened = 0
    for event in events:
        if event.contact_id is None:
            continue
        if (
            event.kind == "contact.lifecycle_changed"
            and (event.properties or {}).get("to") == LifecycleStage.MQL
        ):
            contact = (
                Contact.objects.for_workspace(workspace_id)
                .filter(pk=event.contact_id, lifecycle_stage=LifecycleStage.MQL)
                .first()
            )
            if contact is not None:
                reason = str((event.properties or {}).get("reason") or "")
                if start_handoff(contact=contact, reason=reason) is not None:
                    opened += 1
        elif _is_touch(event):
            Handoff.objects.for_workspace(workspace_id).filter(
                contact_id=event.contact_id,
                first_touch_at__isnull=True,
                created_at__lte=event.occurred_at,
            ).exclude(status=HandoffStatus.REJECTED).update(
                first_touch_at=event.occurred_at, first_touch_kind=event.kind
            )
    return opened


# --- Reading ---------------------------------------------------------------------------------


def handoffs(workspace: Workspace, status: str | None = None) -> QuerySet[Handoff]:
    rows = Handoff.objects.for_workspace(workspace).select_related(
        "contact", "owner", "task", "decided_by"
    )
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-created_at", "-id")


def median_time_to_touch(workspace: Workspace) -> float | None:
    """Median seconds from MQL to first sales touch over the touched hand-offs."""
    rows = (
        Handoff.objects.for_workspace(workspace)
        .filter(first_touch_at__isnull=False)
        .values_list("created_at", "first_touch_at")
    )
    seconds = [max((touch - start).total_seconds(), 0.0) for start, touch in rows]
    return statistics.median(seconds) if seconds else None
