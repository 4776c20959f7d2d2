"""The funnel's rollup: first entries per stage, kept incrementally, equal to a rebuild."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from patron.activity.models import Event
from patron.insights import reports_funnel
from patron.insights.models import StageDay, StageEntry
from patron.insights.periods import Filters, Period
from patron.insights.rollups import FUNNEL, rebuild_stage_entries, refresh_stage_entries
from tests.factories import ContactFactory
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db


def rows(workspace) -> set[tuple]:
    return set(
        StageEntry.objects.for_workspace(workspace).values_list(
            "contact_id", "stage", "rank", "entered_at", "next_entered_at", "seconds_to_next"
        )
    )


def move(workspace, contact, stage, when) -> None:
    Event.objects.create(
        workspace=workspace,
        kind="contact.lifecycle_changed",
        contact_id=contact.pk,
        properties={"from": "", "to": stage, "reason": ""},
        occurred_at=when,
    )


def test_first_entries_and_the_next_stage(workspace):
    contact = ContactFactory(workspace=workspace)
    move(workspace, contact, "lead", at(1, 10))
    move(workspace, contact, "customer", at(1, 20))
    assert refresh_stage_entries() == 2
    # Arriving later, an earlier move into lead and a move into MQL between the two.
    move(workspace, contact, "lead", at(1, 5))
    move(workspace, contact, "mql", at(1, 15))
    move(workspace, contact, "other", at(1, 16))  # not a funnel stage
    assert refresh_stage_entries() == 3
    assert refresh_stage_entries() == 0  # each move folded in once
    got = {stage: (entered, following) for _c, stage, _r, entered, following, _s in rows(workspace)}
    assert got == {
        "lead": (at(1, 5), at(1, 15)),
        "mql": (at(1, 15), at(1, 20)),
        "customer": (at(1, 20), None),
    }


def test_incremental_refresh_equals_a_rebuild(workspace):
    rng = random.Random(5)
    contacts = [ContactFactory(workspace=workspace) for _ in range(12)]
    for _round in range(3):
        for _ in range(25):
            move(
                workspace,
                rng.choice(contacts),
                rng.choice(FUNNEL),
                at(rng.randint(1, 12), rng.randint(1, 28)),
            )
        refresh_stage_entries(batch_size=7)
    incremental = rows(workspace)
    assert incremental
    rebuilt = rebuild_stage_entries(workspace.pk)
    assert rebuilt == len(incremental)
    assert rows(workspace) == incremental
    assert refresh_stage_entries() == 0  # nothing new since the last refresh


def test_the_first_refresh_on_an_existing_log_rebuilds_instead_of_reading_it_all(workspace):
    from patron.activity.models import ConsumerCheckpoint
    from patron.core.models import Workspace

    contact = ContactFactory(workspace=workspace)
    other = Workspace.objects.create(name="Other", slug="other")
    someone = ContactFactory(workspace=other)
    move(workspace, contact, "lead", at(1, 1))
    move(other, someone, "mql", at(1, 2))
    assert not ConsumerCheckpoint.objects.filter(name="insights.funnel").exists()
    assert refresh_stage_entries() == 2  # rows made by the two rebuilds
    assert StageEntry.objects.for_workspace(other).get().stage == "mql"
    # A rebuild of one workspace leaves the other's pending moves to the consumer.
    move(other, someone, "customer", at(1, 3))
    rebuild_stage_entries(workspace.pk)
    assert refresh_stage_entries() == 1
    assert StageEntry.objects.for_workspace(other).get(stage="mql").next_entered_at == at(1, 3)


def days(workspace) -> dict[tuple, int]:
    return {
        (day, rank, wait): n
        for day, rank, wait, n in StageDay.objects.for_workspace(workspace).values_list(
            "day", "rank", "wait_days", "entries"
        )
    }


def random_moves(workspace, contacts, rng, count) -> None:
    """Moves at any second of 2026 (so near midnight in every zone too)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            kind="contact.lifecycle_changed",
            contact_id=rng.choice(contacts).pk,
            properties={"from": "", "to": rng.choice(FUNNEL), "reason": ""},
            occurred_at=start + timedelta(seconds=rng.randrange(300 * 86400)),
        )
        for _ in range(count)
    )


def test_the_days_kept_incrementally_equal_a_rebuild(workspace):
    rng = random.Random(11)
    contacts = [ContactFactory(workspace=workspace) for _ in range(15)]
    for _round in range(4):
        random_moves(workspace, contacts, rng, 30)
        refresh_stage_entries(batch_size=9)
    kept = days(workspace)
    assert kept and all(n > 0 for n in kept.values())  # rows brought to zero went
    assert sum(kept.values()) == StageEntry.objects.for_workspace(workspace).count()
    rebuild_stage_entries(workspace.pk)
    assert days(workspace) == kept


def test_the_funnel_from_the_days_equals_the_funnel_from_the_entries(workspace):
    rng = random.Random(23)
    contacts = [ContactFactory(workspace=workspace) for _ in range(40)]
    random_moves(workspace, contacts, rng, 160)
    refresh_stage_entries()
    zones = [ZoneInfo(z) for z in ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")]
    periods = [Period(start=None, end=None, zone=zones[0], name="all_time")]
    periods += [Period(start=None, end=date(2026, 12, 31), zone=z) for z in zones]
    periods += [Period(start=date(2026, 3, 1), end=None, zone=z) for z in zones]
    for _ in range(60):
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
        end = start + timedelta(days=rng.choice([0, 1, 2, 30, 90, 400]))
        periods.append(Period(start=start, end=end, zone=rng.choice(zones)))
    answered = 0
    for period in periods:
        from_days = reports_funnel._figures_from_days(workspace, period)
        if from_days is not None:
            answered += 1
            assert from_days == reports_funnel._figures_from_entries(workspace, period, Filters())
    # Periods ending before a later move, and those shorter than a whole UTC day, are
    # counted from the entries; the others (most) from the days.
    assert len(periods) > answered > len(periods) / 3


def test_the_rebuild_command(workspace):
    contact = ContactFactory(workspace=workspace)
    move(workspace, contact, "lead", at(1, 10))
    refresh_stage_entries()
    StageDay.objects.for_workspace(workspace).delete()
    out = StringIO()
    call_command("rebuild_funnel", workspace=workspace.slug, stdout=out)
    assert out.getvalue() == "acme: 1 stage entries.\n"
    assert days(workspace) == {(date(2026, 1, 10), 1, -1): 1}
