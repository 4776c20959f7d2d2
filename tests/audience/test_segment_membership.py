"""Segment services: writing segments, and entering/leaving recorded as events."""

from __future__ import annotations

import pytest

from patron.activity.models import Event
from patron.activity.services import record
from patron.audience import segment_services
from patron.audience.models import Segment, SegmentMembership
from patron.audience.segments import SegmentInvalid
from patron.core.models import AuditEntry
from patron.crm import services
from patron.crm.models import Tag
from tests.factories import ContactFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def members(segment):
    return sorted(
        SegmentMembership.objects.for_workspace(segment.workspace)
        .filter(segment=segment)
        .values_list("contact__first_name", flat=True)
    )


def events(workspace, kind):
    return sorted(
        Event.objects.for_workspace(workspace)
        .filter(kind=kind)
        .values_list("contact_id", flat=True)
    )


@pytest.fixture
def vip_segment(workspace, owner):
    ann = ContactFactory(workspace=workspace, first_name="Ann")
    bob = ContactFactory(workspace=workspace, first_name="Bob")
    tag = services.add_tags(record_=ann, names=["vip"])[0]
    segment = segment_services.create_segment(
        workspace=workspace,
        name="VIPs",
        definition={"match": "all", "conditions": [{"type": "tag", "op": "has", "tag": tag.pk}]},
        actor=owner,
    )
    return segment, ann, bob, tag


def test_first_evaluation_sets_a_silent_baseline(workspace, vip_segment):
    segment, _ann, _bob, _tag = vip_segment
    result = segment_services.refresh_segment(segment)
    assert (result.entered, result.left) == (1, 0)
    assert members(segment) == ["Ann"]
    assert events(workspace, "segment.entered") == []
    segment.refresh_from_db()
    assert segment.member_count == 1 and segment.evaluated_at is not None
    assert AuditEntry.objects.filter(action="segment.created", target="VIPs").exists()


def test_entering_and_leaving_are_recorded(workspace, vip_segment):
    segment, ann, bob, tag = vip_segment
    segment_services.refresh_segment(segment)
    services.add_tags(record_=bob, names=["vip"])
    ann.tags.remove(tag)
    result = segment_services.refresh_segment(segment)
    assert (result.entered, result.left) == (1, 1)
    assert members(segment) == ["Bob"]
    assert events(workspace, "segment.entered") == [bob.pk]
    assert events(workspace, "segment.left") == [ann.pk]
    entered = Event.objects.for_workspace(workspace).get(kind="segment.entered")
    assert entered.properties == {"segment": "VIPs"}
    assert (entered.source_type, entered.source_id) == ("audience.segment", str(segment.pk))
    # Nothing changed: nothing recorded.
    assert segment_services.refresh_segment(segment) == segment_services.Refresh(0, 0)
    assert len(events(workspace, "segment.entered")) == 1


def test_incremental_refresh_touches_only_the_contacts_events_are_about(workspace, owner):
    ann = ContactFactory(workspace=workspace, first_name="Ann")
    bob = ContactFactory(workspace=workspace, first_name="Bob")
    segment = segment_services.create_segment(
        workspace=workspace,
        name="Openers",
        definition={
            "match": "all",
            "conditions": [{"type": "event", "kind": "email.opened"}],
        },
    )
    segment_services.refresh_segment(segment)
    segment_services.consume_activity()  # read past what exists so far
    assert members(segment) == []
    record(workspace=workspace, kind="email.opened", contact_id=ann.pk)
    record(workspace=workspace, kind="email.opened", contact_id=bob.pk)
    # Restricted to Ann, Bob's open is not looked at.
    result = segment_services.refresh_for_contacts(workspace, [ann.pk])
    assert (result.entered, result.left) == (1, 0)
    assert members(segment) == ["Ann"]
    assert events(workspace, "segment.entered") == [ann.pk]
    # The consumer hands both new events' contacts over; Ann is already in.
    assert segment_services.consume_activity() == 3  # two opens, one segment.entered read
    assert members(segment) == ["Ann", "Bob"]
    assert events(workspace, "segment.entered") == sorted([ann.pk, bob.pk])
    segment.refresh_from_db()
    assert segment.member_count == 2


def test_segment_events_do_not_feed_back(workspace, vip_segment):
    segment, _ann, bob, _tag = vip_segment
    segment_services.refresh_segment(segment)
    segment_services.consume_activity()
    services.add_tags(record_=bob, names=["vip"])
    segment_services.refresh_segment(segment)  # records segment.entered for Bob
    before = Event.objects.for_workspace(workspace).count()
    segment_services.consume_activity()
    assert Event.objects.for_workspace(workspace).count() == before


def test_a_segment_naming_a_deleted_tag_empties(workspace, vip_segment):
    segment, _ann, _bob, tag = vip_segment
    segment_services.refresh_segment(segment)
    Tag.objects.for_workspace(workspace).filter(pk=tag.pk).delete()
    result = segment_services.refresh_segment(segment)
    assert result.left == 1 and members(segment) == []


def test_names_are_unique_and_definitions_checked(workspace, vip_segment):
    with pytest.raises(segment_services.SegmentNameTaken):
        segment_services.create_segment(workspace=workspace, name="vips", definition={})
    with pytest.raises(SegmentInvalid, match="name"):
        segment_services.create_segment(workspace=workspace, name=" ", definition={})
    with pytest.raises(SegmentInvalid, match="Condition 1"):
        segment_services.create_segment(
            workspace=workspace, name="Bad", definition={"conditions": [{"type": "tag"}]}
        )
    # The same name in another workspace is fine.
    other = WorkspaceFactory()
    assert segment_services.create_segment(workspace=other, name="VIPs", definition={}).pk


def test_update_reevaluates_only_when_the_definition_changes(
    workspace, vip_segment, django_capture_on_commit_callbacks
):
    segment, _ann, _bob, _tag = vip_segment
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        segment_services.update_segment(segment=segment, name="Very important")
    assert callbacks == []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        segment_services.update_segment(segment=segment, definition={"match": "any"})
    assert len(callbacks) == 1
    segment.refresh_from_db()
    assert segment.name == "Very important"
    assert segment.definition == {"match": "any", "conditions": []}
    assert segment.evaluated_at is not None  # the task ran (inline in tests)
    segment_services.delete_segment(segment=segment)
    assert not Segment.objects.for_workspace(workspace).exists()
