"""The activity log: record(), the kind registry, and consumers that see each event once."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from patron.activity import services
from patron.activity.kinds import UnknownEventKind
from patron.activity.models import ConsumerCheckpoint, Event
from patron.activity.services import NewEvent, consume, record, record_many
from tests.factories import WorkspaceFactory


@pytest.mark.django_db
def test_record_writes_an_event_with_its_source_and_properties(workspace, owner):
    event = record(
        workspace=workspace,
        kind="call.logged",
        contact_id=7,
        actor=owner,
        source=("crm.contact", 7),
        properties={"outcome": "reached"},
    )
    stored = Event.objects.for_workspace(workspace).get()
    assert stored.pk == event.pk
    assert (stored.kind, stored.contact_id, stored.actor, stored.source_type, stored.source_id) == (
        "call.logged",
        7,
        owner,
        "crm.contact",
        "7",
    )
    assert stored.properties == {"outcome": "reached"}


@pytest.mark.django_db
def test_unknown_kinds_are_refused(workspace):
    with pytest.raises(UnknownEventKind):
        record(workspace=workspace, kind="email.opend", contact_id=1)
    with pytest.raises(UnknownEventKind):
        record_many([NewEvent(workspace_id=workspace.pk, kind="nope.nope", contact_id=1)])
    assert not Event.objects.for_workspace(workspace).exists()


@pytest.mark.django_db
def test_record_many_writes_all_rows(workspace):
    written = record_many(
        NewEvent(workspace_id=workspace.pk, kind="page.viewed", visitor_id=f"v{i}")
        for i in range(25)
    )
    assert written == 25
    assert Event.objects.for_workspace(workspace).filter(kind="page.viewed").count() == 25


class Collector:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, events: list[Event]) -> None:
        self.ids.extend(e.pk for e in events)


def _event_with_id(workspace, event_id: int) -> Event:
    return Event.objects.create(id=event_id, workspace=workspace, kind="custom.event")


@pytest.mark.django_db
def test_consumer_reads_each_event_once_and_keeps_its_place(workspace):
    for _ in range(7):
        record(workspace=workspace, kind="custom.event", contact_id=1)
    seen = Collector()
    assert consume("test", seen, batch_size=3) == 3
    assert consume("test", seen, batch_size=3) == 3
    assert consume("test", seen, batch_size=3) == 1
    assert consume("test", seen, batch_size=3) == 0
    assert sorted(seen.ids) == sorted(
        Event.objects.for_workspace(workspace).values_list("pk", flat=True)
    )
    assert len(set(seen.ids)) == 7
    checkpoint = ConsumerCheckpoint.objects.get(name="test")
    assert checkpoint.events_handled == 7
    # Ids below the first event (used by earlier tests' rows) may still be latecomers;
    # none above it.
    assert all(last < min(seen.ids) for _, last, _ in checkpoint.gaps)


@pytest.mark.django_db
def test_an_id_committed_after_a_higher_one_is_not_skipped(workspace):
    """Simulates out-of-order commits with explicit ids (works on every database)."""
    seen = Collector()
    _event_with_id(workspace, 1001)
    consume("late", seen)
    _event_with_id(workspace, 1003)  # 1002 is "in flight"
    consume("late", seen)
    gaps = [g[:2] for g in ConsumerCheckpoint.objects.get(name="late").gaps]
    assert [1002, 1002] in gaps
    _event_with_id(workspace, 1002)  # ... and commits now
    consume("late", seen)
    assert seen.ids == [1001, 1003, 1002]
    gaps = [g[:2] for g in ConsumerCheckpoint.objects.get(name="late").gaps]
    # Only the ids below the first event remain possible latecomers.
    assert gaps == [[1, 1000]]


@pytest.mark.django_db
def test_a_gap_that_never_fills_is_given_up_after_the_timeout(workspace, monkeypatch):
    seen = Collector()
    _event_with_id(workspace, 10)
    _event_with_id(workspace, 12)
    clock = [1_000_000.0]
    monkeypatch.setattr(services.time, "time", lambda: clock[0])
    consume("rollback", seen)
    assert ConsumerCheckpoint.objects.get(name="rollback").gaps != []
    clock[0] += services.GAP_TIMEOUT_SECONDS + 1
    consume("rollback", seen)
    assert ConsumerCheckpoint.objects.get(name="rollback").gaps == []
    assert seen.ids == [10, 12]


@pytest.mark.django_db
def test_a_failing_handler_moves_nothing_and_gets_the_events_again(workspace):
    for _ in range(3):
        record(workspace=workspace, kind="custom.event", contact_id=1)

    def explode(events: list[Event]) -> None:
        record(workspace=workspace, kind="custom.event", contact_id=2)  # rolled back too
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        consume("fragile", explode)
    assert ConsumerCheckpoint.objects.get(name="fragile").position == 0
    assert Event.objects.for_workspace(workspace).filter(contact_id=2).count() == 0
    seen = Collector()
    assert consume("fragile", seen) == 3


@pytest.mark.django_db
def test_consumers_can_listen_to_some_kinds_only(workspace):
    record(workspace=workspace, kind="email.opened", contact_id=1)
    record(workspace=workspace, kind="page.viewed", contact_id=1)
    seen = Collector()
    assert consume("opens", seen, kinds=["email.opened"]) == 1
    assert consume("opens", seen, kinds=["email.opened"]) == 0
    assert len(seen.ids) == 1


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(list(range(1, 16))),
    consume_after=st.sets(st.integers(min_value=0, max_value=14)),
    batch_size=st.integers(min_value=1, max_value=6),
)
def test_any_commit_order_delivers_every_event_exactly_once(order, consume_after, batch_size):
    # Each example runs in its own rolled-back transaction: a clean log every time.
    with transaction.atomic():
        workspace = WorkspaceFactory()
        seen = Collector()
        for step, offset in enumerate(order):
            _event_with_id(workspace, 5000 + offset)
            if step in consume_after:
                consume("property", seen, batch_size=batch_size)
        while consume("property", seen, batch_size=batch_size):
            pass
        assert sorted(seen.ids) == [5000 + i for i in range(1, 16)]
        transaction.set_rollback(True)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_writers_committing_out_of_order_are_each_seen_once():
    """Real concurrency: writer A takes an id first but commits after writer B."""
    if not settings.IS_POSTGRES:
        pytest.skip("SQLite has one writer at a time: commits cannot overtake each other")
    workspace = WorkspaceFactory()
    inserted, may_commit, done = threading.Event(), threading.Event(), threading.Event()
    slow_ids: list[int] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                slow_ids.append(record(workspace=workspace, kind="custom.event", contact_id=1).pk)
                inserted.set()
                assert may_commit.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inserted.wait(10)
    fast = record(workspace=workspace, kind="custom.event", contact_id=2)  # autocommits
    assert fast.pk > slow_ids[0]

    seen = Collector()
    consume("concurrent", seen)
    assert seen.ids == [fast.pk]  # the slow row is not visible yet

    may_commit.set()
    assert done.wait(10)
    thread.join()
    consume("concurrent", seen)
    assert seen.ids == [fast.pk, slow_ids[0]]
    assert consume("concurrent", seen) == 0
