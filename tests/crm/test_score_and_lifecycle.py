"""Score changes and lifecycle moves: the events scoring, workflows and the funnel read."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.crm import services
from patron.crm.models import Contact

pytestmark = pytest.mark.django_db


def test_score_changes_add_up_and_each_is_an_event_with_its_reason(workspace, owner):
    contact = services.create_contact(workspace=workspace, first_name="Ann", email="a@x.test")
    assert services.change_score(contact=contact, points=10, reason="Email opened") == 10
    stale = Contact.objects.for_workspace(workspace).get(pk=contact.pk)
    # A second writer holding an older copy still adds to the stored score.
    stale.score = 0
    assert services.change_score(contact=stale, points=-3, reason="Unsubscribed", rule="7") == 7
    contact.refresh_from_db()
    assert contact.score == 7
    history = list(
        Event.objects.for_workspace(workspace)
        .filter(kind="contact.score_changed", contact_id=contact.pk)
        .order_by("id")
        .values_list("properties", flat=True)
    )
    assert history == [
        {"from": 0, "to": 10, "points": 10, "reason": "Email opened", "rule": ""},
        {"from": 10, "to": 7, "points": -3, "reason": "Unsubscribed", "rule": "7"},
    ]


def test_zero_points_change_nothing(workspace):
    events = Event.objects.for_workspace(workspace)
    contact = services.create_contact(workspace=workspace, first_name="Bo", email="b@x.test")
    assert services.change_score(contact=contact, points=0, reason="nothing") == 0
    assert not events.filter(kind="contact.score_changed").exists()


def test_a_lifecycle_move_is_recorded_once_with_its_reason(workspace, owner):
    contact = services.create_contact(workspace=workspace, first_name="Cy", email="c@x.test")
    assert services.set_lifecycle_stage(contact=contact, stage="mql", reason="Score reached 100")
    assert not services.set_lifecycle_stage(contact=contact, stage="mql", reason="again")
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "mql"
    moves = Event.objects.for_workspace(workspace).filter(
        kind="contact.lifecycle_changed", contact_id=contact.pk
    )
    assert [e.properties for e in moves] == [
        {"from": "subscriber", "to": "mql", "reason": "Score reached 100"}
    ]
    changed = Event.objects.for_workspace(workspace).get(
        kind="contact.field_changed", contact_id=contact.pk
    )
    assert changed.properties == {"changes": {"lifecycle_stage": ["subscriber", "mql"]}}


def test_an_edit_of_the_stage_is_a_lifecycle_move_too(workspace, owner):
    contact = services.create_contact(workspace=workspace, first_name="Di", email="d@x.test")
    services.update_contact(contact=contact, actor=owner, lifecycle_stage="customer", city="Oslo")
    move = Event.objects.for_workspace(workspace).get(
        kind="contact.lifecycle_changed", contact_id=contact.pk
    )
    assert move.properties == {"from": "subscriber", "to": "customer", "reason": ""}
    assert move.actor == owner


def test_an_unknown_stage_is_refused(workspace):
    contact = services.create_contact(workspace=workspace, first_name="Ed", email="e@x.test")
    with pytest.raises(services.InvalidField):
        services.set_lifecycle_stage(contact=contact, stage="champion")
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "subscriber"
