"""API: segments — their definitions, counts and members.

A definition is the JSON tree documented in ``patron.audience.segments``. An
invalid one is answered with 422 and ``fields: {"definition": ["Condition 2.1
(Tag): Choose a tag of this workspace."]}``, naming the condition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.audience import segment_services, segments
from patron.audience.models import Segment
from patron.core.http import ApiRequest
from patron.crm.api import ContactOut

router = Router(tags=["audience"])


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    definition: dict[str, Any]
    member_count: int
    evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SegmentPage(Schema):
    items: list[SegmentOut]
    next_cursor: str | None


class SegmentIn(Schema):
    name: str
    description: str = ""
    definition: dict[str, Any]


class SegmentPatch(Schema):
    name: str | None = None
    description: str | None = None
    definition: dict[str, Any] | None = None


class DefinitionIn(Schema):
    definition: dict[str, Any]


class CountOut(Schema):
    count: int
    description: str


class ListFilters(Schema):
    cursor: str | None = None
    limit: int = 50


class MemberPage(Schema):
    items: list[ContactOut]
    next_cursor: str | None


def _segments(request: ApiRequest) -> Any:
    return Segment.objects.for_workspace(request.workspace)


def _invalid(exc: Exception) -> ApiError:
    if isinstance(exc, segment_services.SegmentNameTaken):
        return ApiError(409, "conflict", str(exc), {"name": [str(exc)]})
    path = getattr(exc, "path", "")
    field = "definition" if path else "name"
    return ApiError(422, "invalid", str(exc), {field: [str(exc)]})


@router.get("/segments", response=SegmentPage)
def list_segments(request: ApiRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    return paginate(_segments(request), cursor=filters.cursor, limit=filters.limit)


@router.post("/segments", response={201: SegmentOut})
def create_segment(request: ApiRequest, payload: SegmentIn) -> Status:
    try:
        segment = segment_services.create_segment(
            workspace=request.workspace,
            name=payload.name,
            description=payload.description,
            definition=payload.definition,
        )
    except (segments.SegmentInvalid, segment_services.SegmentNameTaken) as exc:
        raise _invalid(exc) from exc
    return Status(201, segment)


@router.post("/segments/count", response=CountOut)
def count_definition(request: ApiRequest, payload: DefinitionIn) -> dict[str, Any]:
    """Count a definition without saving it (what the builder does as one edits)."""
    return _count(request, payload.definition)


@router.get("/segments/{segment_id}", response=SegmentOut)
def get_segment(request: ApiRequest, segment_id: int) -> Segment:
    return get_object_or_404(_segments(request), pk=segment_id)


@router.patch("/segments/{segment_id}", response=SegmentOut)
def update_segment(request: ApiRequest, segment_id: int, payload: SegmentPatch) -> Segment:
    segment = get_object_or_404(_segments(request), pk=segment_id)
    try:
        return segment_services.update_segment(segment=segment, **payload.dict(exclude_unset=True))
    except (segments.SegmentInvalid, segment_services.SegmentNameTaken) as exc:
        raise _invalid(exc) from exc


@router.delete("/segments/{segment_id}", response={204: None})
def delete_segment(request: ApiRequest, segment_id: int) -> Status:
    segment_services.delete_segment(segment=get_object_or_404(_segments(request), pk=segment_id))
    return Status(204, None)


@router.get("/segments/{segment_id}/count", response=CountOut)
def count_segment(request: ApiRequest, segment_id: int) -> dict[str, Any]:
    segment = get_object_or_404(_segments(request), pk=segment_id)
    return _count(request, segment.definition)


@router.get("/segments/{segment_id}/members", response=MemberPage)
def segment_members(
    request: ApiRequest, segment_id: int, filters: Query[ListFilters]
) -> dict[str, Any]:
    """The contacts matching the segment now (not at its last evaluation)."""
    segment = get_object_or_404(_segments(request), pk=segment_id)
    try:
        contacts = segments.matching_contacts(request.workspace, segment.definition)
    except segments.SegmentInvalid as exc:
        raise _invalid(exc) from exc
    contacts = contacts.prefetch_related("other_emails", "other_companies")
    return paginate(contacts, cursor=filters.cursor, limit=filters.limit)


def _count(request: ApiRequest, definition: dict[str, Any]) -> dict[str, Any]:
    vocab = segments.vocabulary(request.workspace)
    try:
        clean = segments.validate(request.workspace, definition, vocab=vocab)
    except segments.SegmentInvalid as exc:
        raise _invalid(exc) from exc
    contacts = segments.matching_contacts(request.workspace, clean, vocab=vocab)
    return {"count": contacts.count(), "description": segments.describe(vocab, clean)}
