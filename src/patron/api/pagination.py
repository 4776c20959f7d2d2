"""Cursor pagination, the one convention of every list endpoint.

A list answers ``{"items": [...], "next_cursor": "<opaque>" | null}``; the
client passes ``?cursor=<next_cursor>`` for the next page and ``?limit=``
(1-200, default 50). Cursors are signed, so a client cannot forge one.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from django.core import signing
from django.db.models import QuerySet
from ninja import Schema

from patron.api.errors import ApiError

T = TypeVar("T")
MAX_LIMIT = 200
_SALT = "patron.api.cursor"


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None


def paginate(queryset: QuerySet[Any], *, cursor: str | None, limit: int) -> dict[str, Any]:
    """Newest first by id; ``queryset`` must already be scoped and filtered."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(
            422,
            "invalid",
            f"limit must be between 1 and {MAX_LIMIT}.",
            {"limit": [f"between 1 and {MAX_LIMIT}"]},
        )
    queryset = queryset.order_by("-id")
    if cursor:
        try:
            before_id = int(signing.loads(cursor, salt=_SALT))
        except (signing.BadSignature, ValueError, TypeError) as exc:
            raise ApiError(
                422,
                "invalid",
                "The cursor is not valid.",
                {"cursor": ["not a cursor this API gave out"]},
            ) from exc
        queryset = queryset.filter(id__lt=before_id)
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = signing.dumps(rows[-1].pk, salt=_SALT) if has_more and rows else None
    return {"items": rows, "next_cursor": next_cursor}
