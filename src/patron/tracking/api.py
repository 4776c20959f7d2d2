"""API: recognise a web visitor as a contact (servers and headless sites)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from ninja import Field, Router, Schema

from patron.api.errors import ApiError
from patron.core.http import ApiRequest
from patron.tracking import stitching, web

router = Router(tags=["web tracking"])


class IdentifyIn(Schema):
    visitor_id: str = Field(..., examples=["v8Qm2x0bLr4kTq9sZ1yWcA"])
    email: str = Field(..., max_length=254, examples=["ada@example.com"])


class IdentifyOut(Schema):
    contact_id: int
    created: bool
    events_moved: int


@router.post("/visitors/identify", response=IdentifyOut)
def identify(request: ApiRequest, payload: IdentifyIn) -> stitching.Identified:
    """Link a web visitor id (the tracker's ``window.patronVisitorId``) to the contact with
    this email, made if there is none: the visitor's earlier anonymous events become the
    contact's, and later ones carry the contact."""
    errors: dict[str, list[str]] = {}
    if not web.VISITOR_PATTERN.match(payload.visitor_id):
        errors["visitor_id"] = ["8 to 64 letters, digits, - or _"]
    email = payload.email.strip().lower()
    try:
        EmailValidator()(email)
    except ValidationError:
        errors["email"] = ["a valid email address"]
    if errors:
        raise ApiError(422, "invalid", "The visitor id or the email is not valid.", errors)
    identified = stitching.identify_visitor(
        workspace_id=request.workspace.pk,
        visitor_id=payload.visitor_id,
        email=email,
        create=True,
        source="API: web visitor",
    )
    assert identified is not None  # create=True always finds or makes the contact
    return identified
