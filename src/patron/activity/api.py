"""API: read the activity log, and record custom events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.apps import apps
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from patron.activity.kinds import EVENT_KINDS
from patron.activity.models import Event
from patron.activity.services import record
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
