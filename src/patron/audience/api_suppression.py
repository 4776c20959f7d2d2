"""API: the workspace's suppression list, and the sending gate's answer for one address.

Addresses are normalised (trimmed, lower-cased) on the way in; suppressing an
address that is suppressed already keeps its first reason and date. A request
with any invalid address writes nothing and answers 422 naming each one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.audience import sending, suppression
from patron.audience.models import Suppression, SuppressionReason
from patron.core.http import ApiRequest

router = Router(tags=["audience"])


class SuppressionOut(Schema):
    id: int
    email: str
    reason: str
    note: str
    created_at: datetime
    created_by: str | None

    @staticmethod
    def resolve_created_by(row: Suppression) -> str | None:
        return row.created_by.email if row.created_by else None


class SuppressionPage(Schema):
    items: list[SuppressionOut]
    next_cursor: str | None


class SuppressionFilters(Schema):
    email: str | None = None
    reason: str | None = None
    cursor: str | None = None
    limit: int = 50


class SuppressionIn(Schema):
    """One address (``email``) or many (``emails``), with one reason and note."""

    email: str | None = None
    emails: list[str] | None = None
    reason: str = SuppressionReason.MANUAL
    note: str = ""


class SuppressResultOut(Schema):
    added: list[str]
    already: list[str]


class RemoveFilters(Schema):
    email: str | None = None


class CheckFilters(Schema):
    email: str
    list: int | None = None


class DecisionOut(Schema):
    allowed: bool
    reason: str
    message: str
    suppression_reason: str
    subscription_status: str


def _invalid(field: str, messages: list[str]) -> ApiError:
    return ApiError(422, "invalid", messages[0], {field: messages})


@router.get("/suppressions", response=SuppressionPage)
def list_suppressions(request: ApiRequest, filters: Query[SuppressionFilters]) -> dict[str, Any]:
    """Suppressed addresses, newest first; ``?email=`` (any case) and ``?reason=`` filter."""
    if filters.reason and filters.reason not in SuppressionReason.values:
        raise _invalid("reason", [f"one of {', '.join(SuppressionReason.values)}"])
    rows = suppression.suppressions(request.workspace, reason=filters.reason or "")
    if filters.email is not None:
        rows = rows.filter(email=filters.email.strip().lower())
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


@router.post("/suppressions", response={200: SuppressResultOut, 201: SuppressResultOut})
def create_suppressions(request: ApiRequest, payload: SuppressionIn) -> Status:
    """Suppress addresses: 201 when any was added, 200 when all were suppressed already."""
    given = [*([payload.email] if payload.email is not None else []), *(payload.emails or [])]
    if not given:
        raise _invalid("emails", ["Give an address in “email” or addresses in “emails”."])
    if len(given) > suppression.MAX_ADDRESSES:
        raise _invalid("emails", [f"At most {suppression.MAX_ADDRESSES} addresses at once."])
    _valid, invalid = suppression.parse_addresses(given)
    if invalid:
        raise _invalid("emails", [message for _value, message in invalid])
    try:
        reason = suppression.clean_reason(payload.reason)
    except suppression.SuppressionInvalid as exc:
        raise _invalid("reason", [str(exc)]) from exc
    try:
        note = suppression.clean_note(payload.note)
    except suppression.SuppressionInvalid as exc:
        raise _invalid("note", [str(exc)]) from exc
    result = suppression.suppress_addresses(
        workspace=request.workspace,
        emails=given,
        reason=reason,
        note=note,
        details={"source": "api"},
    )
    body = {"added": result.added, "already": result.already}
    return Status(201 if result.added else 200, body)


@router.delete("/suppressions", response={204: None})
def delete_suppression_by_email(request: ApiRequest, filters: Query[RemoveFilters]) -> Status:
    """Take ``?email=`` off the list; 404 when it is not on it."""
    if not (filters.email or "").strip():
        raise _invalid("email", ["Name the address to remove: ?email=…"])
    if not suppression.unsuppress(workspace=request.workspace, emails=[filters.email or ""]):
        raise ApiError(404, "not_found", "This address is not on the suppression list.")
    return Status(204, None)


@router.get("/suppressions/check", response=DecisionOut)
def check_address(request: ApiRequest, filters: Query[CheckFilters]) -> dict[str, Any]:
    """Whether bulk or automated mail may reach ``?email=`` (for list ``?list=``), and why."""
    decision = sending.may_send(request.workspace, filters.email, mailing_list=filters.list)
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "message": decision.message,
        "suppression_reason": decision.suppression_reason,
        "subscription_status": decision.subscription_status,
    }


@router.get("/suppressions/{suppression_id}", response=SuppressionOut)
def get_suppression(request: ApiRequest, suppression_id: int) -> Suppression:
    return get_object_or_404(
        Suppression.objects.for_workspace(request.workspace).select_related("created_by"),
        pk=suppression_id,
    )


@router.delete("/suppressions/{suppression_id}", response={204: None})
def delete_suppression(request: ApiRequest, suppression_id: int) -> Status:
    row = get_object_or_404(Suppression.objects.for_workspace(request.workspace), pk=suppression_id)
    suppression.unsuppress(workspace=request.workspace, ids=[row.pk])
    return Status(204, None)
