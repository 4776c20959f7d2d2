"""API: sender identities (the From addresses campaigns may use) and their verification.

Creating an identity, or changing its address, emails the address a
verification link; ``verified_at`` is set only by following that link, never
by the API. ``POST /senders/{id}/verification`` sends the link again. When the
mail server fails, the identity is kept and the answer is 502 ``mail_failed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.core.http import ApiRequest
from patron.mail import senders
from patron.mail.models import SenderIdentity

router = Router(tags=["mail"])


class SenderOut(Schema):
    id: int
    from_name: str
    from_email: str
    reply_to: str
    postal_address: str
    is_default: bool
    verified_at: datetime | None
    verification_sent_at: datetime | None
    created_at: datetime


class SenderPage(Schema):
    items: list[SenderOut]
    next_cursor: str | None


class SenderIn(Schema):
    from_name: str
    from_email: str
    reply_to: str = ""
    postal_address: str


class SenderPatch(Schema):
    from_name: str | None = None
    from_email: str | None = None
    reply_to: str | None = None
    postal_address: str | None = None
    is_default: bool | None = None


class SenderFilters(Schema):
    verified: bool | None = None
    cursor: str | None = None
    limit: int = 50


def _identities(request: ApiRequest) -> Any:
    return senders.sender_identities(request.workspace)


def _invalid(exc: senders.SenderInvalid) -> ApiError:
    status, code = (
        (409, "conflict") if isinstance(exc, senders.SenderEmailTaken) else (422, "invalid")
    )
    return ApiError(status, code, str(exc), {exc.field: [str(exc)]})


def _send(identity: SenderIdentity) -> None:
    try:
        senders.send_verification(identity=identity)
    except senders.VerificationNotSent as exc:
        raise ApiError(
            502,
            "mail_failed",
            f"{exc} The sender is saved; send the link again with "
            f"POST /api/v1/senders/{identity.pk}/verification.",
        ) from exc


@router.get("/senders", response=SenderPage)
def list_senders(request: ApiRequest, filters: Query[SenderFilters]) -> dict[str, Any]:
    """The workspace's identities; ``?verified=true`` gives those campaigns may use."""
    rows = _identities(request)
    if filters.verified is not None:
        rows = rows.filter(verified_at__isnull=not filters.verified)
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


@router.post("/senders", response={201: SenderOut})
def create_sender(request: ApiRequest, payload: SenderIn) -> Status:
    """Add an identity; its address is emailed a verification link."""
    try:
        identity = senders.create_sender(workspace=request.workspace, **payload.dict())
    except senders.SenderInvalid as exc:
        raise _invalid(exc) from exc
    _send(identity)
    return Status(201, identity)


@router.get("/senders/{sender_id}", response=SenderOut)
def get_sender(request: ApiRequest, sender_id: int) -> SenderIdentity:
    return get_object_or_404(_identities(request), pk=sender_id)  # type: ignore[no-any-return]


@router.patch("/senders/{sender_id}", response=SenderOut)
def update_sender(request: ApiRequest, sender_id: int, payload: SenderPatch) -> SenderIdentity:
    """Change an identity; a new ``from_email`` is unverified until its link is followed.
    ``"is_default": true`` makes a verified identity the default."""
    identity = get_object_or_404(_identities(request), pk=sender_id)
    values = payload.dict(exclude_unset=True)
    make_default = values.pop("is_default", None)
    if make_default is False:
        message = "Make another identity the default instead."
        raise ApiError(422, "invalid", message, {"is_default": [message]})
    new_address = values.get("from_email")
    if make_default and new_address is not None and new_address.strip() != identity.from_email:
        message = "A new address must be verified before it can be the default."
        raise ApiError(422, "invalid", message, {"is_default": [message]})
    try:
        identity, address_changed = senders.update_sender(identity=identity, **values)
    except senders.SenderInvalid as exc:
        raise _invalid(exc) from exc
    if make_default:
        try:
            identity = senders.set_default_sender(identity=identity)
        except senders.SenderNotVerified as exc:
            raise ApiError(422, "invalid", str(exc), {"is_default": [str(exc)]}) from exc
    if address_changed:
        _send(identity)
    return identity


@router.delete("/senders/{sender_id}", response={204: None})
def delete_sender(request: ApiRequest, sender_id: int) -> Status:
    senders.delete_sender(identity=get_object_or_404(_identities(request), pk=sender_id))
    return Status(204, None)


@router.post("/senders/{sender_id}/verification", response={202: SenderOut})
def resend_verification(request: ApiRequest, sender_id: int) -> Status:
    """Email the verification link again; 409 when the identity is verified already."""
    identity = get_object_or_404(_identities(request), pk=sender_id)
    if identity.is_verified:
        raise ApiError(409, "conflict", f"{identity.from_email} is verified already.")
    _send(identity)
    return Status(202, identity)
