"""The funnel's rollup: when each contact first entered each lifecycle stage.

``StageEntry`` rows are kept from ``contact.lifecycle_changed`` events by an
activity consumer with a durable checkpoint (``refresh_stage_entries``, run
every minute by ``tasks.refresh_funnel``): each batch of new moves is merged
into the rows of the contacts it is about (first entry per stage, and for each
stage the first entry further down the funnel after it), in the consumer's
transaction, so a crash neither loses nor doubles a move. The funnel then reads
one narrow table: at 100,000 contacts its read of the activity log took
seconds on SQLite; the rollup answers in milliseconds.

``StageDay`` counts those rows per day, stage and whole days waited; every
change to ``StageEntry`` is added to it in the same transaction (as signed
counts, upserted), so the two always agree. At a million contacts the funnel
over a year counted 1.3 million entries and read the waits of the converted
ones for its medians; their days are 81,000 rows.

``rebuild_stage_entries`` recomputes a workspace's rows of both from the whole
log (after an import of history, or when contacts were merged: a merge moves
events to the surviving contact, and only a rebuild moves the rollup with
them); ``patron manage rebuild_funnel`` runs it for every workspace.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.db.models import Max, Min
from django.db.models.fields.json import KeyTextTransform

from patron.activity.models import ConsumerCheckpoint, Event
from patron.activity.services import consume
from patron.insights.models import StageDay, StageEntry

CONSUMER = "insights.funnel"
KIND = "contact.lifecycle_changed"
FUNNEL = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
RANK = {stage: rank for rank, stage in enumerate(FUNNEL)}
INSERT_BATCH = 5000
DAY_SECONDS = 86400
NOT_CONVERTED = -1  # StageDay.wait_days of the entries with no later stage yet

DayKey = tuple[date, int, int]  # (UTC day entered, rank, whole days waited)


def day_key(entered_at: datetime, rank: int, seconds_to_next: int | None) -> DayKey:
    """The ``StageDay`` row an entry is counted in."""
    wait = NOT_CONVERTED if seconds_to_next is None else seconds_to_next // DAY_SECONDS
    return (entered_at.astimezone(UTC).date(), rank, wait)


def _add_to_days(workspace_id: int, changes: Counter[DayKey]) -> None:
    """Add signed counts to the workspace's ``StageDay`` rows (made when missing);
    rows left at zero go."""
    changed = [(key, n) for key, n in changes.items() if n]
    if not changed:
        return
    table = connection.ops.quote_name(StageDay._meta.db_table)
    adapt = connection.ops.adapt_datefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (workspace_id, day, rank, wait_days, entries) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (workspace_id, day, rank, wait_days) "
            f"DO UPDATE SET entries = {table}.entries + excluded.entries",
            [(workspace_id, adapt(day), rank, wait, n) for (day, rank, wait), n in changed],
        )
    if any(n < 0 for _key, n in changed):
        days = {day for (day, _rank, _wait), n in changed if n < 0}
        StageDay.objects.for_workspace(workspace_id).filter(day__in=days, entries=0).delete()


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
    made = 0
    for workspace_id, contact_ids in by_workspace.items():
        days: Counter[DayKey] = Counter()
        existing = StageEntry.objects.for_workspace(workspace_id).filter(contact_id__in=contact_ids)
        for contact_id, stage, rank, entered, seconds in existing.values_list(
            "contact_id", "stage", "rank", "entered_at", "seconds_to_next"
        ):
            days[day_key(entered, rank, seconds)] -= 1
            known = firsts[(workspace_id, contact_id)]
            if stage not in known or entered < known[stage]:
                known[stage] = entered
        existing.delete()
        rows: list[StageEntry] = []
        for contact_id in contact_ids:
            rows += entries_for(workspace_id, contact_id, firsts[(workspace_id, contact_id)])
        for row in rows:
            days[day_key(row.entered_at, row.rank, row.seconds_to_next)] += 1
        StageEntry.objects.bulk_create(rows, batch_size=INSERT_BATCH)
        _add_to_days(workspace_id, days)
        made += len(rows)
    return made


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
    """Recompute a workspace's rollup (``StageEntry`` and its ``StageDay`` counts) from
    its whole activity log; returns the entries made.

    Runs under the consumer's lock, so no refresh writes meanwhile. The
    checkpoint stays where it is: a move read here and again by the next
    refresh changes nothing (the earliest time is kept).
    """
    with transaction.atomic():
        # Under the consumer's lock when it has run (its first run rebuilds everything).
        list(ConsumerCheckpoint.objects.select_for_update().filter(name=CONSUMER))
        StageEntry.objects.for_workspace(workspace_id).delete()
        StageDay.objects.for_workspace(workspace_id).delete()
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
        days: Counter[DayKey] = Counter()
        current: int | None = None
        stages: dict[str, datetime] = {}

        def write(rows: list[StageEntry]) -> int:
            for row in rows:
                days[day_key(row.entered_at, row.rank, row.seconds_to_next)] += 1
            return len(StageEntry.objects.bulk_create(rows, batch_size=INSERT_BATCH))

        # Grouped and ordered by contact: one contact's stages at a time, written in batches.
        for contact_id, stage, entered in firsts.iterator(chunk_size=INSERT_BATCH):
            if contact_id != current:
                if current is not None:
                    rows += entries_for(workspace_id, current, stages)
                current, stages = contact_id, {}
            stages[stage] = entered
            if len(rows) >= INSERT_BATCH:
                made += write(rows)
                rows = []
        if current is not None:
            rows += entries_for(workspace_id, current, stages)
        made += write(rows)
        StageDay.objects.bulk_create(
            (
                StageDay(workspace_id=workspace_id, day=day, rank=rank, wait_days=wait, entries=n)
                for (day, rank, wait), n in days.items()
            ),
            batch_size=INSERT_BATCH,
        )
        return made
