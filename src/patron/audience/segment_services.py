"""Writing segments, and keeping their memberships current.

Counting or sending to a segment always runs its compiled query, so it is
never stale. ``SegmentMembership`` is a different thing: who was in the segment
at its last evaluation, kept so that **entering** and **leaving** can be
recorded as events (``segment.entered``/``segment.left``, what workflows
trigger on).

A segment is evaluated

* in full when it is created or changed, and periodically (time windows such
  as "in the last 30 days" move without any event arriving): one
  ``INSERT ... SELECT`` for those who entered and one ``DELETE`` for those who
  left, both returning the contacts they touched;
* incrementally when new activity arrives: the activity-log consumer hands the
  contacts that new events are about to ``refresh_for_contacts``, which runs
  the same two statements restricted to those contacts, so the work follows
  the number of affected contacts, not the size of the workspace.

The first evaluation of a segment sets its baseline silently: the people who
already match did not *enter* it just now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.activity.models import Event
from patron.activity.services import consume, record_for_contacts
from patron.audience import segments
from patron.audience.models import Segment, SegmentMembership
from patron.core.models import User, Workspace
from patron.core.services import record_audit
from patron.crm.models import Contact

CONSUMER = "audience.segments"
# Events that cannot change a segment's membership (and that a refresh itself writes).
IGNORED_KINDS = ("segment.entered", "segment.left")
# Contacts re-evaluated per statement (their ids travel as one parameter).
REFRESH_CHUNK = 20_000


class SegmentNameTaken(ValueError):
    pass


@dataclass(frozen=True)
class Refresh:
    entered: int = 0
    left: int = 0


def _clean_name(workspace: Workspace, name: str, exclude: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise segments.SegmentInvalid("", "", _("Give the segment a name."))
    if len(name) > 100:
        raise segments.SegmentInvalid("", "", _("Keep the name under 100 characters."))
    taken = Segment.objects.for_workspace(workspace).filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise SegmentNameTaken(_("A segment named “%(name)s” exists already.") % {"name": name})
    return name


@transaction.atomic
def create_segment(
    *,
    workspace: Workspace,
    name: str,
    definition: Any,
    description: str = "",
    actor: User | None = None,
) -> Segment:
    clean = segments.validate(workspace, definition)
    segment = Segment.objects.create(
        workspace=workspace,
        name=_clean_name(workspace, name),
        description=(description or "").strip()[:300],
        definition=clean,
        created_by=actor,
    )
    record_audit(workspace=workspace, actor=actor, action="segment.created", target=segment.name)
    _evaluate_later(segment)
    return segment


@transaction.atomic
def update_segment(
    *,
    segment: Segment,
    name: str | None = None,
    definition: Any = None,
    description: str | None = None,
    actor: User | None = None,
) -> Segment:
    workspace = segment.workspace
    if name is not None:
        segment.name = _clean_name(workspace, name, exclude=segment.pk)
    if description is not None:
        segment.description = description.strip()[:300]
    changed = False
    if definition is not None:
        clean = segments.validate(workspace, definition)
        changed = clean != segment.definition
        segment.definition = clean
    segment.updated_at = timezone.now()
    segment.save()
    record_audit(workspace=workspace, actor=actor, action="segment.updated", target=segment.name)
    if changed:
        _evaluate_later(segment)
    return segment


@transaction.atomic
def delete_segment(*, segment: Segment, actor: User | None = None) -> None:
    record_audit(
        workspace=segment.workspace, actor=actor, action="segment.deleted", target=segment.name
    )
    segment.delete()


def _evaluate_later(segment: Segment) -> None:
    from patron.audience.tasks import evaluate_segment

    segment_id = segment.pk
    transaction.on_commit(lambda: evaluate_segment.enqueue(segment_id))


# --- Membership ---------------------------------------------------------------------------


@transaction.atomic
def refresh_segment(
    segment: Segment,
    *,
    contact_ids: Sequence[int] | None = None,
    vocab: segments.Vocabulary | None = None,
) -> Refresh:
    """Bring the memberships of ``segment`` up to date (for some contacts, or all).

    Records ``segment.entered``/``segment.left`` for the contacts that changed,
    except on the segment's first evaluation, which only sets the baseline.
    """
    workspace = segment.workspace
    # One refresh of a segment at a time: the periodic one and the consumer may meet.
    segment = Segment.objects.for_workspace(workspace).select_for_update().get(pk=segment.pk)
    segments.roomy_aggregates()
    vocab = vocab or segments.vocabulary(workspace)
    vocab.only_contacts = list(contact_ids) if contact_ids is not None else None
    try:
        query = segments.compile_definition(workspace, segment.definition, vocab=vocab)
    except segments.SegmentInvalid:
        # A tag, list or field it names was deleted: nobody matches until it is fixed.
        query = None
    baseline = segment.evaluated_at is None
    now = timezone.now()

    members = Contact.objects.for_workspace(workspace)
    members = members.filter(query) if query is not None else members.none()
    kept = SegmentMembership.objects.for_workspace(workspace).filter(segment=segment)
    if contact_ids is not None:
        # A few contacts: evaluate the definition once, and insert and delete by id.
        matching = list(members.filter(pk__in_ids=contact_ids).values_list("pk", flat=True))
        members = Contact.objects.for_workspace(workspace).filter(pk__in_ids=matching)
        kept = kept.filter(contact_id__in_ids=contact_ids)
    newcomers = members.exclude(
        Exists(
            SegmentMembership.objects.for_workspace(workspace).filter(
                segment=segment, contact_id=OuterRef("pk")
            )
        )
    )
    entered = _insert_memberships(segment, newcomers, now)
    leavers = kept.exclude(contact_id__in=members.values("pk"))
    left = _delete_memberships(leavers)

    if not baseline:
        source = ("audience.segment", segment.pk)
        properties = {"segment": segment.name}
        for chunk in _chunks(entered):
            record_for_contacts(
                workspace=workspace,
                kind="segment.entered",
                contact_ids=chunk,
                source=source,
                properties=properties,
            )
        for chunk in _chunks(left):
            record_for_contacts(
                workspace=workspace,
                kind="segment.left",
                contact_ids=chunk,
                source=source,
                properties=properties,
            )
    if contact_ids is None:
        segment.member_count = (
            SegmentMembership.objects.for_workspace(workspace).filter(segment=segment).count()
        )
    else:
        segment.member_count = max(segment.member_count + len(entered) - len(left), 0)
    segment.evaluated_at = now
    segment.save(update_fields=["member_count", "evaluated_at"])
    return Refresh(entered=len(entered), left=len(left))


def _insert_memberships(segment: Segment, newcomers: Any, now: Any) -> list[int]:
    """INSERT ... SELECT the newcomers; returns their contact ids."""
    try:
        select_sql, params = (
            newcomers.annotate(row_id=F("pk")).values_list("row_id").query.sql_with_params()
        )
    except EmptyResultSet:  # a definition that matches no one by construction
        return []
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    moment = connection.ops.adapt_datetimefield_value(now)
    sql = (
        f"INSERT INTO {table} (workspace_id, segment_id, contact_id, entered_at) "  # noqa: S608
        f"SELECT %s, %s, newcomer.row_id, %s FROM ({select_sql}) AS newcomer "
        "ON CONFLICT DO NOTHING RETURNING contact_id"
    )
    if connection.vendor == "sqlite":
        # SQLite reads "SELECT ... ON CONFLICT" as a join constraint without a WHERE.
        sql = sql.replace("AS newcomer ON CONFLICT", "AS newcomer WHERE true ON CONFLICT")
    with connection.cursor() as cursor:
        cursor.execute(sql, [segment.workspace_id, segment.pk, moment, *params])
        return [row[0] for row in cursor.fetchall()]


def _delete_memberships(leavers: Any) -> list[int]:
    """DELETE the leavers' memberships; returns their contact ids."""
    select_sql, params = (
        leavers.annotate(row_id=F("pk")).values_list("row_id").query.sql_with_params()
    )
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    sql = (
        f"DELETE FROM {table} WHERE id IN (SELECT leaver.row_id FROM ({select_sql}) AS leaver) "  # noqa: S608
        "RETURNING contact_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _chunks(ids: list[int], size: int = 5000) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def refresh_all(workspace: Workspace | None = None) -> int:
    """Evaluate every segment (of one workspace, or all) in full; returns how many."""
    done = 0
    query = Segment.objects.unscoped().select_related("workspace").order_by("workspace_id", "id")
    if workspace is not None:
        query = query.filter(workspace=workspace)
    vocab: segments.Vocabulary | None = None
    for segment in query:
        if vocab is None or vocab.workspace.pk != segment.workspace_id:
            vocab = segments.vocabulary(segment.workspace)
        refresh_segment(segment, vocab=vocab)
        done += 1
    return done


def refresh_for_contacts(workspace: Workspace, contact_ids: Iterable[int]) -> Refresh:
    """Re-evaluate every segment of a workspace for some contacts only."""
    ids = sorted(set(contact_ids))
    entered = left = 0
    if not ids:
        return Refresh()
    vocab = segments.vocabulary(workspace)
    for segment in Segment.objects.for_workspace(workspace).exclude(evaluated_at=None):
        for chunk in _chunks(ids, REFRESH_CHUNK):
            result = refresh_segment(segment, contact_ids=chunk, vocab=vocab)
            entered += result.entered
            left += result.left
    return Refresh(entered=entered, left=left)


def _handle_events(events: list[Event]) -> None:
    by_workspace: dict[int, set[int]] = defaultdict(set)
    for event in events:
        if event.contact_id is not None and event.kind not in IGNORED_KINDS:
            by_workspace[event.workspace_id].add(event.contact_id)
    with_segments = set(
        Segment.objects.unscoped()
        .filter(workspace_id__in=list(by_workspace))
        .values_list("workspace_id", flat=True)
    )
    for workspace in Workspace.objects.filter(pk__in=with_segments):
        refresh_for_contacts(workspace, by_workspace[workspace.pk])


def consume_activity(batch_size: int = 5000) -> int:
    """Re-evaluate segments for the contacts that new events are about; returns events read."""
    total = 0
    while True:
        handled = consume(CONSUMER, _handle_events, batch_size=batch_size)
        total += handled
        if handled < batch_size:
            return total
