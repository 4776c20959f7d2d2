"""API: read the activity log, and record custom events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.apps import apps
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from patron.activity.kinds import EVENT_KINDS
from patron.activity.models import Event
from patron.activity.services import NewEvent, record, record_many
from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.core.http import ApiRequest

router = Router(tags=["events"])


class EventOut(Schema):
    id: int
    kind: str
    contact_id: int | None
    visitor_id: str
    source_type: str
    source_id: str
    properties: dict[str, Any]
    occurred_at: datetime


class EventPage(Schema):
    items: list[EventOut]
    next_cursor: str | None


class EventFilters(Schema):
    kind: str | None = None
    contact_id: int | None = None
    cursor: str | None = None
    limit: int = 50


MAX_BATCH = 500


class EventIn(Schema):
    kind: str = Field(..., max_length=64, examples=["custom.event"])
    contact_id: int | None = None
    visitor_id: str = Field("", max_length=64)
    properties: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = None


def _contact_exists(request: ApiRequest, contact_id: int) -> bool:
    # Looked up by name: the activity log sits below the CRM in the app layers.
    contact_model = apps.get_model("crm", "Contact")
    return bool(
        contact_model.objects.for_workspace(request.workspace).filter(pk=contact_id).exists()
    )


@router.get("", response=EventPage)
def list_events(request: ApiRequest, filters: Query[EventFilters]) -> dict[str, Any]:
    """Events of the workspace, newest first."""
    events = Event.objects.for_workspace(request.workspace)
    if filters.kind:
        events = events.filter(kind=filters.kind)
    if filters.contact_id is not None:
        events = events.filter(contact_id=filters.contact_id)
    return paginate(events, cursor=filters.cursor, limit=filters.limit)


class EventBatchIn(Schema):
    events: list[EventIn] = Field(..., min_length=1, max_length=MAX_BATCH)


class EventBatchOut(Schema):
    recorded: int


def _visitor_contacts(request: ApiRequest, visitor_ids: set[str]) -> dict[str, int]:
    """The contacts web visitors are known to be (identity stitching, by the tracker)."""
    if not visitor_ids:
        return {}
    # Looked up by name: the tracker's visitor links sit above the activity log.
    link_model = apps.get_model("tracking", "VisitorLink")
    return dict(
        link_model.objects.for_workspace(request.workspace)
        .filter(visitor_id__in=visitor_ids)
        .values_list("visitor_id", "contact_id")
    )


@router.post("/batch", response={201: EventBatchOut})
def create_events(request: ApiRequest, payload: EventBatchIn) -> Status:
    """Record up to 500 events at once (a headless site, a server): all of them or, when
    any is not valid, none, with the errors as ``events.<n>.<field>``.

    An event with a ``visitor_id`` the web tracker has linked to a contact gets that
    contact. Custom events are ``custom.event`` with their name in ``properties.name``.
    """
    errors: dict[str, list[str]] = {}
    contact_model = apps.get_model("crm", "Contact")
    named = {e.contact_id for e in payload.events if e.contact_id is not None}
    existing = set(
        contact_model.objects.for_workspace(request.workspace)
        .filter(pk__in=named)
        .values_list("pk", flat=True)
    )
    for position, event in enumerate(payload.events):
        where = f"events.{position}"
        if event.kind not in EVENT_KINDS:
            errors[f"{where}.kind"] = [f"unknown event kind {event.kind!r}"]
        if event.contact_id is None and not event.visitor_id:
            errors[f"{where}.contact_id"] = ["required without visitor_id"]
        elif event.contact_id is not None and event.contact_id not in existing:
            errors[f"{where}.contact_id"] = ["unknown contact"]
    if errors:
        raise ApiError(422, "invalid", "Some events are not valid; none was recorded.", errors)
    known = _visitor_contacts(
        request, {e.visitor_id for e in payload.events if e.contact_id is None and e.visitor_id}
    )
    recorded = record_many(
        NewEvent(
            workspace_id=request.workspace.pk,
            kind=event.kind,
            contact_id=event.contact_id
            if event.contact_id is not None
            else known.get(event.visitor_id),
            visitor_id=event.visitor_id,
            properties=event.properties,
            occurred_at=event.occurred_at,
        )
        for event in payload.events
    )
    return Status(201, {"recorded": recorded})


# After the batch route: /batch is not an event's id.
@router.get("/{event_id}", response=EventOut)
def get_event(request: ApiRequest, event_id: int) -> Event:
    return get_object_or_404(
        Event.objects.for_workspace(request.workspace),
        pk=event_id,
    )


@router.post("", response={201: EventOut})
def create_event(request: ApiRequest, payload: EventIn) -> Status:
    """Record one event (``custom.event`` and the other registered kinds)."""
    if payload.kind not in EVENT_KINDS:
        raise ApiError(
            422,
            "invalid",
            f"Unknown event kind {payload.kind!r}.",
            {"kind": [f"one of: {', '.join(sorted(EVENT_KINDS))}"]},
        )
    if payload.contact_id is None and not payload.visitor_id:
        raise ApiError(
            422,
            "invalid",
            "An event needs a contact_id or a visitor_id.",
            {"contact_id": ["required without visitor_id"]},
        )
    if payload.contact_id is not None and not _contact_exists(request, payload.contact_id):
        raise ApiError(
            422,
            "invalid",
            "No contact with this id in the workspace.",
            {"contact_id": ["unknown contact"]},
        )
    event = record(
        workspace=request.workspace,
        kind=payload.kind,
        contact_id=payload.contact_id,
        visitor_id=payload.visitor_id,
        properties=payload.properties,
        occurred_at=payload.occurred_at,
    )
    return Status(201, event)
