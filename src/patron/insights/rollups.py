"""The funnel's rollup: when each contact first entered each lifecycle stage.

``StageEntry`` rows are kept from ``contact.lifecycle_changed`` events by an
activity consumer with a durable checkpoint (``refresh_stage_entries``, run
every minute by ``tasks.refresh_funnel``): each batch of new moves is merged
into the rows of the contacts it is about (first entry per stage, and for each
stage the first entry further down the funnel after it), in the consumer's
transaction, so a crash neither loses nor doubles a move. The funnel then reads
one narrow table: at 100,000 contacts its read of the activity log took
seconds on SQLite; the rollup answers in milliseconds.

``rebuild_stage_entries`` recomputes a workspace's rows from the whole log
(after an import of history, or when contacts were merged: a merge moves
events to the surviving contact, and only a rebuild moves the rollup with them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Max, Min
from django.db.models.fields.json import KeyTextTransform

from patron.activity.models import ConsumerCheckpoint, Event
from patron.activity.services import consume
from patron.insights.models import StageEntry

CONSUMER = "insights.funnel"
KIND = "contact.lifecycle_changed"
FUNNEL = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
RANK = {stage: rank for rank, stage in enumerate(FUNNEL)}
INSERT_BATCH = 5000


def entries_for(
    workspace_id: int, contact_id: int, firsts: dict[str, datetime]
) -> list[StageEntry]:
    """One contact's rows from the first time it entered each stage."""
    rows = []
    for stage, entered in firsts.items():
        rank = RANK[stage]
        later = [t for s, t in firsts.items() if RANK[s] > rank and t >= entered]
        following = min(later) if later else None
        rows.append(
            StageEntry(
                workspace_id=workspace_id,
                contact_id=contact_id,
                stage=stage,
                rank=rank,
                entered_at=entered,
                next_entered_at=following,
                seconds_to_next=int((following - entered).total_seconds()) if following else None,
            )
        )
    return rows


def _merge(moves: Iterable[tuple[int, int, str, datetime]]) -> int:
    """Fold (workspace, contact, stage, moment) moves into the contacts' rows."""
    firsts: dict[tuple[int, int], dict[str, datetime]] = defaultdict(dict)
    for workspace_id, contact_id, stage, moment in moves:
        if stage not in RANK:
            continue
        known = firsts[(workspace_id, contact_id)]
        if stage not in known or moment < known[stage]:
            known[stage] = moment
    by_workspace: dict[int, list[int]] = defaultdict(list)
    for workspace_id, contact_id in firsts:
        by_workspace[workspace_id].append(contact_id)
    rows: list[StageEntry] = []
    for workspace_id, contact_ids in by_workspace.items():
        existing = StageEntry.objects.for_workspace(workspace_id).filter(contact_id__in=contact_ids)
        for contact_id, stage, entered in existing.values_list("contact_id", "stage", "entered_at"):
            known = firsts[(workspace_id, contact_id)]
            if stage not in known or entered < known[stage]:
                known[stage] = entered
        existing.delete()
        for contact_id in contact_ids:
            rows += entries_for(workspace_id, contact_id, firsts[(workspace_id, contact_id)])
    StageEntry.objects.bulk_create(rows, batch_size=INSERT_BATCH)
    return len(rows)


def _handle(events: list[Event]) -> None:
    _merge(
        (e.workspace_id, e.contact_id, str((e.properties or {}).get("to", "")), e.occurred_at)
        for e in events
        if e.contact_id is not None
    )


def refresh_stage_entries(batch_size: int = 5000) -> int:
    """Fold every new lifecycle move into the rollup; returns the moves handled.

    The first run on a log that already holds events does not read it batch by
    batch from the start: it places the checkpoint at the log's end and
    rebuilds each workspace that has moves in one grouped query.
    """
    handled = 0
    if not ConsumerCheckpoint.objects.filter(name=CONSUMER).exists():
        with transaction.atomic():
            checkpoint, created = ConsumerCheckpoint.objects.select_for_update().get_or_create(
                name=CONSUMER
            )
            if created:
                last = Event.objects.unscoped().aggregate(last=Max("id"))["last"] or 0
                checkpoint.position = last
                checkpoint.save(update_fields=["position"])
                workspaces = (
                    Event.objects.unscoped()
                    .filter(kind=KIND, id__lte=last)
                    .values_list("workspace_id", flat=True)
                    .distinct()
                )
                for workspace_id in list(workspaces):
                    handled += rebuild_stage_entries(workspace_id)
    while True:
        before = ConsumerCheckpoint.objects.filter(name=CONSUMER).values_list("position").first()
        handled += consume(CONSUMER, _handle, batch_size=batch_size, kinds=[KIND])
        after = ConsumerCheckpoint.objects.filter(name=CONSUMER).values_list("position").first()
        if before == after:
            return handled


def rebuild_stage_entries(workspace_id: int) -> int:
    """Recompute a workspace's rollup from its whole activity log; returns the rows made.

    Runs under the consumer's lock, so no refresh writes meanwhile. The
    checkpoint stays where it is: a move read here and again by the next
    refresh changes nothing (the earliest time is kept).
    """
    with transaction.atomic():
        # Under the consumer's lock when it has run (its first run rebuilds everything).
        list(ConsumerCheckpoint.objects.select_for_update().filter(name=CONSUMER))
        StageEntry.objects.for_workspace(workspace_id).delete()
        firsts = (
            Event.objects.for_workspace(workspace_id)
            .filter(kind=KIND, contact_id__isnull=False, properties__to__in=list(FUNNEL))
            .annotate(to_stage=KeyTextTransform("to", "properties"))
            .values("contact_id", "to_stage")
            .order_by("contact_id")
            .annotate(entered=Min("occurred_at"))
            .values_list("contact_id", "to_stage", "entered")
        )
        made, rows = 0, []
        current: int | None = None
        stages: dict[str, datetime] = {}
        # Grouped and ordered by contact: one contact's stages at a time, written in batches.
        for contact_id, stage, entered in firsts.iterator(chunk_size=INSERT_BATCH):
            if contact_id != current:
                if current is not None:
                    rows += entries_for(workspace_id, current, stages)
                current, stages = contact_id, {}
            stages[stage] = entered
            if len(rows) >= INSERT_BATCH:
                made += len(StageEntry.objects.bulk_create(rows))
                rows = []
        if current is not None:
            rows += entries_for(workspace_id, current, stages)
        made += len(StageEntry.objects.bulk_create(rows, batch_size=INSERT_BATCH))
        return made
