"""The funnel's rollup: first entries per stage, kept incrementally, equal to a rebuild."""

from __future__ import annotations

import random

import pytest

from patron.activity.models import Event
from patron.insights.models import StageEntry
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
