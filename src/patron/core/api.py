"""API: the workspace the key belongs to, and its members."""

from __future__ import annotations

from datetime import datetime

from ninja import Router, Schema

from patron.core.http import ApiRequest
from patron.core.models import Membership

router = Router(tags=["workspace"])


class WorkspaceOut(Schema):
    id: int
    name: str
    slug: str
    language: str
    time_zone: str
    currency: str


class MemberOut(Schema):
    id: int
    email: str
    name: str
    role: str
    is_active: bool
    created_at: datetime


@router.get("/workspace", response=WorkspaceOut)
def get_workspace(request: ApiRequest) -> object:
    """The workspace of the API key."""
    return request.workspace


@router.get("/members", response=list[MemberOut])
def list_members(request: ApiRequest) -> list[dict[str, object]]:
    members = (
        Membership.objects.for_workspace(request.workspace)
        .select_related("user")
        .order_by("user__email")
    )
    return [
        {
            "id": m.pk,
            "email": m.user.email,
            "name": m.user.name,
            "role": m.role,
            "is_active": m.is_active,
            "created_at": m.created_at,
        }
        for m in members
    ]
