"""Writing to the activity log, and reading it as a consumer with a durable checkpoint."""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from patron.activity.kinds import get_kind
from patron.activity.models import ConsumerCheckpoint, Event
from patron.core.models import User, Workspace

# How long a skipped id may still turn up: longer than any transaction that
# writes events is allowed to stay open. After that the id is given up.
GAP_TIMEOUT_SECONDS = 300.0
# A read returning more distinct gap ranges than this keeps only the newest.
MAX_GAP_RANGES = 1000


def record(
    *,
    workspace: Workspace | int,
    kind: str,
    contact_id: int | None = None,
    visitor_id: str = "",
    actor: User | None = None,
    source: tuple[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Append one event to the log. The kind must be registered."""
    get_kind(kind)
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    source_type, source_id = source if source else ("", "")
    return Event.objects.create(
        workspace_id=workspace_id,
        kind=kind,
        contact_id=contact_id,
        visitor_id=visitor_id,
        actor=actor,
        source_type=source_type,
        source_id=str(source_id) if source_id != "" else "",
        properties=properties or {},
        occurred_at=occurred_at or timezone.now(),
    )


@dataclass(frozen=True)
class NewEvent:
    workspace_id: int
    kind: str
    contact_id: int | None = None
    visitor_id: str = ""
    properties: dict[str, Any] | None = None
    occurred_at: datetime | None = None
    source_type: str = ""
    source_id: str = ""
    actor_id: int | None = None


def record_many(events: Iterable[NewEvent], *, batch_size: int = 1000) -> int:
    """Append many events in bulk (ingestion paths). Returns how many were written."""
    now = timezone.now()
    rows = []
    for event in events:
        get_kind(event.kind)
        rows.append(
            Event(
                workspace_id=event.workspace_id,
                kind=event.kind,
                contact_id=event.contact_id,
                visitor_id=event.visitor_id,
                properties=event.properties or {},
                occurred_at=event.occurred_at or now,
                recorded_at=now,
                source_type=event.source_type,
                source_id=event.source_id,
                actor_id=event.actor_id,
            )
        )
    Event.objects.bulk_create(rows, batch_size=batch_size)
    return len(rows)


_APPEND_COLUMNS = (
    "workspace_id",
    "kind",
    "contact_id",
    "visitor_id",
    "properties",
    "occurred_at",
    "recorded_at",
    "source_type",
    "source_id",
    "actor_id",
)


def append_events(events: Sequence[NewEvent]) -> int:
    """Append events in one statement, for the ingestion hot paths (the web tracker's
    collect endpoint): COPY on PostgreSQL, one executemany elsewhere. The same rows as
    ``record_many`` writes, without building a model instance per event."""
    import json

    from django.db import connection

    if not events:
        return 0
    now = timezone.now()
    rows = []
    for event in events:
        get_kind(event.kind)
        rows.append(
            (
                event.workspace_id,
                event.kind,
                event.contact_id,
                event.visitor_id,
                json.dumps(event.properties or {}),
                event.occurred_at or now,
                now,
                event.source_type,
                event.source_id,
                event.actor_id,
            )
        )
    table = Event._meta.db_table
    names = ", ".join(_APPEND_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The driver's own cursor: Django's wrapper has no COPY (nor its error mapping).
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(_APPEND_COLUMNS))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608 - fixed names
                [
                    (
                        *row[:5],
                        connection.ops.adapt_datetimefield_value(row[5]),
                        connection.ops.adapt_datetimefield_value(row[6]),
                        *row[7:],
                    )
                    for row in rows
                ],
            )
    return len(rows)


def record_for_contacts(
    *,
    workspace: Workspace | int,
    kind: str,
    contact_ids: Sequence[int],
    actor: User | None = None,
    source: tuple[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
) -> int:
    """The same event for many contacts (an import, a bulk action), in one statement.

    Bypasses the ORM's per-object work: this is the bulk path of CRM writes,
    where ``record_many`` would cost more than the writes it describes.
    """
    from django.db import connection

    get_kind(kind)
    if not contact_ids:
        return 0
    fixed = _fixed_values(workspace, kind, actor, source, properties)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {Event._meta.db_table} ({_BULK_COLUMNS}) "  # noqa: S608 - fixed identifiers
                f"SELECT {_BULK_FIXED}, c.id FROM unnest(%s::bigint[]) AS c(id)",
                [*fixed, list(contact_ids)],
            )
        else:
            placeholders = ", ".join(["%s"] * 10)
            cursor.executemany(
                f"INSERT INTO {Event._meta.db_table} ({_BULK_COLUMNS}) VALUES ({placeholders})",  # noqa: S608
                [[*fixed, "", contact_id] for contact_id in contact_ids],
            )
    return len(contact_ids)


def record_per_contact(
    *,
    workspace: Workspace | int,
    kind: str,
    rows: Sequence[tuple[int, dict[str, Any], datetime | None]],
    source_type: str = "",
    source_id: str | None = None,
    actor_id: int | None = None,
) -> int:
    """One event per row — (contact id, properties, occurred_at) — in one statement.

    The hot-path form of ``record_many`` for events of one kind that differ only
    in their contact, properties and time (the scores a scoring batch changed,
    the subjects a campaign's batch sent): it skips the ORM's per-object work.
    With ``source_type``, ``source_id`` is the one given, else the contact's id.
    Returns how many were written.
    """
    import json

    from django.db import connection

    get_kind(kind)
    if not rows:
        return 0
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    now = timezone.now()
    table = Event._meta.db_table
    contact_ids = [row[0] for row in rows]
    if source_id is not None:
        source_ids = [source_id] * len(rows)
    else:
        source_ids = [str(row[0]) if source_type else "" for row in rows]
    properties = [json.dumps(row[1]) for row in rows]
    moments = [row[2] or now for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} ({_BULK_COLUMNS}) "  # noqa: S608 - fixed identifiers
                "SELECT %s, %s, %s, %s, r.source_id, r.properties::jsonb, r.occurred_at, %s, "
                "'', r.contact_id FROM unnest(%s::bigint[], %s::text[], %s::text[], "
                "%s::timestamptz[]) AS r(contact_id, source_id, properties, occurred_at)",
                [
                    workspace_id,
                    kind,
                    actor_id,
                    source_type,
                    now,
                    contact_ids,
                    source_ids,
                    properties,
                    moments,
                ],
            )
        else:
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"INSERT INTO {table} ({_BULK_COLUMNS}) "  # noqa: S608 - fixed identifiers
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', %s)",
                [
                    [
                        workspace_id,
                        kind,
                        actor_id,
                        source_type,
                        source_id,
                        encoded,
                        adapt(moment),
                        adapt(now),
                        contact_id,
                    ]
                    for contact_id, source_id, encoded, moment in zip(
                        contact_ids, source_ids, properties, moments, strict=True
                    )
                ],
            )
    return len(rows)


def record_for_selected_contacts(
    *,
    workspace: Workspace | int,
    kind: str,
    contacts_sql: str,
    params: Sequence[Any] = (),
    actor: User | None = None,
    source: tuple[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
) -> int:
    """The same event for each contact a query selects, without the ids leaving the database.

    ``contacts_sql`` is a query whose one column, ``contact_id``, gives the
    contacts (in the order the events are to be written); it runs inside the
    INSERT, so a set-based writer (an import's staging table) records its
    events in one statement. The caller owns the query: it must keep to the
    workspace's contacts.
    """
    from django.db import connection

    get_kind(kind)
    fixed = _fixed_values(workspace, kind, actor, source, properties)
    with connection.cursor() as cursor:
        fixed_sql = _BULK_FIXED if connection.vendor == "postgresql" else _BULK_FIXED_SQLITE
        cursor.execute(
            f"INSERT INTO {Event._meta.db_table} ({_BULK_COLUMNS}) "  # noqa: S608 - fixed identifiers
            f"SELECT {fixed_sql}, q.contact_id FROM ({contacts_sql}) AS q",
            [*fixed, *params],
        )
        return max(cursor.rowcount, 0)


_BULK_COLUMNS = (
    "workspace_id, kind, actor_id, source_type, source_id, properties, occurred_at, "
    "recorded_at, visitor_id, contact_id"
)
# The values shared by every event of a bulk write; the contact id follows.
_BULK_FIXED = "%s, %s, %s, %s, %s, %s::jsonb, %s, %s, ''"
_BULK_FIXED_SQLITE = "%s, %s, %s, %s, %s, %s, %s, %s, ''"


def _fixed_values(
    workspace: Workspace | int,
    kind: str,
    actor: User | None,
    source: tuple[str, Any] | None,
    properties: dict[str, Any] | None,
) -> list[Any]:
    import json

    from django.db import connection

    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    source_type, source_id = source if source else ("", "")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    encoded = json.dumps(properties or {})
    return [
        workspace_id,
        kind,
        actor.pk if actor else None,
        source_type,
        str(source_id) if source_id != "" else "",
        encoded,
        now,
        now,
    ]


def move_contact_events(
    *, workspace: Workspace | int, from_contact_id: int, to_contact_id: int
) -> int:
    """Give one contact's history to another (a merge); returns how many events moved.

    Events keep their ids, so consumers that read them already do not see
    them again.
    """
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    return (
        Event.objects.for_workspace(workspace_id)
        .filter(contact_id=from_contact_id)
        .update(contact_id=to_contact_id)
    )


def assign_visitor_events(*, workspace: Workspace | int, visitor_id: str, contact_id: int) -> int:
    """Give a visitor's anonymous events to the contact the visitor turned out to be (identity
    stitching); returns how many. Events already about a contact keep theirs."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    if not visitor_id:
        return 0
    return (
        Event.objects.for_workspace(workspace_id)
        .filter(visitor_id=visitor_id, contact_id__isnull=True)
        .update(contact_id=contact_id)
    )


# --- Consumers ---------------------------------------------------------------------


def _next_gaps(
    *,
    position: int,
    old_gaps: list[list[float]],
    seen_ids: list[int],
    now: float,
) -> list[list[float]]:
    """Gaps after a read: old gaps minus the ids that appeared, plus new holes."""
    seen = sorted(set(seen_ids))
    gaps: list[list[float]] = []
    for first, last, first_seen in old_gaps:
        if now - first_seen > GAP_TIMEOUT_SECONDS:
            continue  # the writer rolled back or died: that id will never appear
        start = int(first)
        # The ids that appeared inside this gap split it into smaller gaps.
        for event_id in seen[bisect_left(seen, int(first)) : bisect_right(seen, int(last))]:
            if event_id > start:
                gaps.append([start, event_id - 1, first_seen])
            start = event_id + 1
        if start <= int(last):
            gaps.append([start, int(last), first_seen])
    # New holes: ids above the old position that were not returned.
    expected = position + 1
    for event_id in sorted(i for i in seen if i > position):
        if event_id > expected:
            gaps.append([expected, event_id - 1, now])
        expected = event_id + 1
    return gaps[-MAX_GAP_RANGES:]


def consume(
    name: str,
    handler: Callable[[list[Event]], None],
    *,
    batch_size: int = 500,
    kinds: Sequence[str] | None = None,
) -> int:
    """Hand the next batch of unseen events to ``handler``; returns how many.

    The handler runs inside the same transaction that advances the
    checkpoint: if it raises, neither its writes nor the checkpoint move, and
    the same events come again next time. Each event is therefore applied
    exactly once as long as the handler's effects are database writes.
    Consumers of one name run one at a time (the checkpoint row is locked).
    """
    ConsumerCheckpoint.objects.get_or_create(name=name)
    with transaction.atomic():
        checkpoint = ConsumerCheckpoint.objects.select_for_update().get(name=name)
        # One range query per gap and one for what is new, each an id range the
        # database reads from its primary key: "id > x OR id BETWEEN ..." in one
        # WHERE made SQLite scan the whole log (2.5 s a batch at 20,000,000 events).
        rows = Event.objects.unscoped().order_by("id")
        found = {event.pk: event for event in rows.filter(id__gt=checkpoint.position)[:batch_size]}
        for first, last, _seen in checkpoint.gaps:
            gap = rows.filter(id__gte=int(first), id__lte=int(last))[:batch_size]
            found.update((event.pk, event) for event in gap)
        events = [found[pk] for pk in sorted(found)[:batch_size]]
        now = time.time()
        seen_ids = [e.pk for e in events]
        if kinds is not None:
            wanted = set(kinds)
            to_handle = [e for e in events if e.kind in wanted]
        else:
            to_handle = events
        if to_handle:
            handler(to_handle)
        new_position = max([checkpoint.position, *seen_ids])
        gaps = _next_gaps(
            position=checkpoint.position,
            old_gaps=checkpoint.gaps,
            seen_ids=seen_ids,
            now=now,
        )
        # The batch may have been cut short by batch_size: ids above the last
        # one returned are simply not read yet, so no gap is recorded for them.
        checkpoint.position = new_position
        checkpoint.gaps = [g for g in gaps if g[0] <= new_position]
        checkpoint.updated_at = timezone.now()
        checkpoint.events_handled += len(to_handle)
        checkpoint.save(update_fields=["position", "gaps", "updated_at", "events_handled"])
        return len(to_handle)
