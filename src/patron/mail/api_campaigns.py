"""API: campaigns — write drafts, check them, send a test, schedule, and follow the send.

A campaign is created and changed as a draft (``PATCH`` answers 409 once it is
scheduled or sending); ``POST /campaigns/{id}/schedule`` sends it now (no
``at``) or at a time, optionally at that wall-clock time in each recipient's
time zone (``local_time``); blocking problems of the checks refuse it with 422
naming the part at fault. ``pause``, ``resume`` and ``cancel`` answer 409 when
the campaign's status does not allow them. Validation errors name the field:
``{"error": {"code": "invalid", "fields": {"subject": ["..."]}}}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.core.http import ApiRequest
from patron.crm.models import Contact
from patron.mail import ab_tests, campaigns, rendering
from patron.mail.models import Campaign, CampaignStatus

router = Router(tags=["campaigns"])


class AudiencePart(Schema):
    lists: list[int] = []
    segments: list[int] = []


class AudienceSchema(Schema):
    include: AudiencePart = AudiencePart()
    exclude: AudiencePart = AudiencePart()


class VariantSchema(Schema):
    subject: str = Field("", description="Empty: as variant A (the campaign's subject)")
    preheader: str = Field("", description="Empty: as variant A")
    from_name: str = Field("", description="Empty: the sender address's name")


class CampaignOut(Schema):
    id: int
    name: str
    status: str
    sender_id: int | None
    reply_to: str
    subject: str
    preheader: str
    format: str
    body: str
    blocks: Any
    text: str
    audience: dict[str, Any]
    automated: bool = Field(description="Sent by a workflow's email step")
    send_at: datetime | None
    local_time: bool
    track_opens: bool
    track_clicks: bool
    utm: bool
    utm_source: str
    utm_medium: str
    utm_campaign: str
    ab_test: bool = Field(description="Send variants to a test share first, then the winner")
    ab_variants: list[VariantSchema] = Field(
        description="Variants B, C and D; A is the campaign's own subject, preheader, sender"
    )
    ab_share: int = Field(description="Percent of the audience in the test (10 to 50)")
    ab_metric: str = Field(description="open_rate, click_rate or revenue")
    ab_wait_hours: int = Field(description="Hours from the start until the winner (1 to 336)")
    ab_decide_at: datetime | None
    ab_winner: str | None = Field(description="The winning variant's letter, once chosen")
    ab_confidence: float | None = Field(description="0 to 1; below 0.95 not significant")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    total: int
    sent: int
    failed: int

    @staticmethod
    def resolve_ab_winner(obj: Campaign) -> str | None:
        return None if obj.ab_winner is None else ab_tests.letter(obj.ab_winner)


class CampaignPage(Schema):
    items: list[CampaignOut]
    next_cursor: str | None


class CampaignIn(Schema):
    name: str
    sender_id: int | None = None
    reply_to: str = ""
    subject: str = ""
    preheader: str = ""
    format: str = "mjml"
    body: str = ""
    blocks: Any = None
    text: str = ""
    audience: AudienceSchema | None = None
    track_opens: bool = True
    track_clicks: bool = True
    utm: bool = False
    utm_source: str = "patron"
    utm_medium: str = "email"
    utm_campaign: str = ""
    ab_test: bool = False
    ab_variants: list[VariantSchema] = []
    ab_share: int = 20
    ab_metric: str = "open_rate"
    ab_wait_hours: int = 4


class CampaignPatch(Schema):
    name: str | None = None
    sender_id: int | None = None
    reply_to: str | None = None
    subject: str | None = None
    preheader: str | None = None
    format: str | None = None
    body: str | None = None
    blocks: Any = None
    text: str | None = None
    audience: AudienceSchema | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    utm: bool | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    ab_test: bool | None = None
    ab_variants: list[VariantSchema] | None = None
    ab_share: int | None = None
    ab_metric: str | None = None
    ab_wait_hours: int | None = None


class CampaignFilters(Schema):
    status: str | None = None
    q: str | None = Field(None, description="Name or subject contains")
    automated: bool | None = Field(None, description="Only workflows' (true) or people's (false)")
    cursor: str | None = None
    limit: int = 50


class ScheduleIn(Schema):
    at: datetime | None = Field(None, description="With its time zone; none: now")
    local_time: bool = False


class TestIn(Schema):
    addresses: list[str]
    contact_id: int | None = None


class ProblemOut(Schema):
    code: str
    message: str
    part: str
    line: int | None
    column: int | None
    blocking: bool


class ProgressOut(Schema):
    status: str
    total: int
    sent: int
    failed: int
    pending: int
    rate_per_second: float
    eta_seconds: int | None


def _campaign(request: ApiRequest, campaign_id: int) -> Campaign:
    found: Campaign = get_object_or_404(campaigns.campaigns_for(request.workspace), pk=campaign_id)
    return found


def _invalid(exc: campaigns.CampaignInvalid) -> ApiError:
    fields = {(name or "__all__"): [message] for name, message in exc.errors.items()}
    if "sender" in fields:
        fields["sender_id"] = fields.pop("sender")
    if isinstance(exc, campaigns.CampaignStateError):
        return ApiError(409, "conflict", str(exc), fields)
    message = "; ".join(exc.errors.values()) or "The campaign is not valid."
    return ApiError(422, "invalid", message, fields)


def _values(payload: Schema, *, exclude_unset: bool) -> dict[str, Any]:
    values = payload.dict(exclude_unset=exclude_unset)
    if "sender_id" in values:
        values["sender"] = values.pop("sender_id")
    if "blocks" in values and values["blocks"] is None:
        values["blocks"] = []
    if "audience" in values and values["audience"] is not None:
        audience = values["audience"]
        empty = not any(ids for part in audience.values() for ids in part.values())
        values["audience"] = {} if empty else audience
    elif "audience" in values:
        values["audience"] = {}
    return values


@router.get("/campaigns", response=CampaignPage)
def list_campaigns(request: ApiRequest, filters: Query[CampaignFilters]) -> dict[str, Any]:
    """Newest first; ``?status=sent``, ``?q=`` (name or subject contains), ``?automated=``."""
    rows = campaigns.campaigns_for(request.workspace)
    if filters.automated is not None:
        rows = rows.filter(automated=filters.automated)
    if filters.status:
        if filters.status not in CampaignStatus.values:
            message = f"status must be one of {', '.join(CampaignStatus.values)}."
            raise ApiError(422, "invalid", message, {"status": [message]})
        rows = rows.filter(status=filters.status)
    if filters.q:
        rows = rows.filter(Q(name__icontains=filters.q) | Q(subject__icontains=filters.q))
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


@router.post("/campaigns", response={201: CampaignOut})
def create_campaign(request: ApiRequest, payload: CampaignIn) -> Status:
    """A new draft; without ``sender_id`` the workspace's default sender address."""
    values = _values(payload, exclude_unset=True)
    values.setdefault("name", payload.name)
    try:
        campaign = campaigns.create_campaign(request.workspace, user=None, values=values)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc
    return Status(201, campaign)


@router.get("/campaigns/{campaign_id}", response=CampaignOut)
def get_campaign(request: ApiRequest, campaign_id: int) -> Campaign:
    return _campaign(request, campaign_id)


@router.patch("/campaigns/{campaign_id}", response=CampaignOut)
def update_campaign(request: ApiRequest, campaign_id: int, payload: CampaignPatch) -> Campaign:
    """Change a draft; 409 once it is scheduled (unschedule it first) or sent."""
    campaign = _campaign(request, campaign_id)
    values = _values(payload, exclude_unset=True)
    for name in ("name", "format", "subject", "preheader", "body", "text", "reply_to",
                 *campaigns.TRACKING_FIELDS, *campaigns.AB_FIELDS):  # fmt: skip
        if name in values and values[name] is None:
            message = "This field cannot be null."
            raise ApiError(422, "invalid", message, {name: [message]})
    try:
        return campaigns.update_campaign(campaign, user=None, values=values)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc


@router.delete("/campaigns/{campaign_id}", response={204: None})
def delete_campaign(request: ApiRequest, campaign_id: int) -> Status:
    """Delete a draft; 409 for a campaign that was scheduled or sent (cancel it instead)."""
    campaign = _campaign(request, campaign_id)
    try:
        campaigns.delete_campaign(campaign, user=None)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc
    return Status(204, None)


@router.get("/campaigns/{campaign_id}/checks", response=list[ProblemOut])
def check_campaign(request: ApiRequest, campaign_id: int) -> list[rendering.Problem]:
    """The checks before sending, blocking problems first; empty: ready to send."""
    return campaigns.check_campaign(_campaign(request, campaign_id))


@router.post("/campaigns/{campaign_id}/schedule", response=CampaignOut)
def schedule_campaign(request: ApiRequest, campaign_id: int, payload: ScheduleIn) -> Campaign:
    """Send now (no ``at``) or at ``at``; ``local_time``: at that wall-clock time in each
    recipient's time zone (``at`` required)."""
    campaign = _campaign(request, campaign_id)
    if payload.local_time and payload.at is None:
        message = "A local-time send needs the time: give at."
        raise ApiError(422, "invalid", message, {"at": [message]})
    try:
        return campaigns.schedule_campaign(
            campaign, user=None, at=payload.at, local_time=payload.local_time
        )
    except campaigns.CampaignInvalid as exc:
        error = _invalid(exc)
        if "send_at" in error.fields:
            error.fields["at"] = error.fields.pop("send_at")
        raise error from exc


@router.post("/campaigns/{campaign_id}/unschedule", response=CampaignOut)
def unschedule_campaign(request: ApiRequest, campaign_id: int) -> Campaign:
    """A scheduled campaign back to draft, to change it before it starts."""
    try:
        return campaigns.unschedule_campaign(_campaign(request, campaign_id), user=None)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc


@router.post("/campaigns/{campaign_id}/pause", response=CampaignOut)
def pause_campaign(request: ApiRequest, campaign_id: int) -> Campaign:
    try:
        return campaigns.pause_campaign(_campaign(request, campaign_id), user=None)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc


@router.post("/campaigns/{campaign_id}/resume", response=CampaignOut)
def resume_campaign(request: ApiRequest, campaign_id: int) -> Campaign:
    try:
        return campaigns.resume_campaign(_campaign(request, campaign_id), user=None)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc


@router.post("/campaigns/{campaign_id}/cancel", response=CampaignOut)
def cancel_campaign(request: ApiRequest, campaign_id: int) -> Campaign:
    """Stop for good: what is not sent yet is not sent."""
    try:
        return campaigns.cancel_campaign(_campaign(request, campaign_id), user=None)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc


@router.post("/campaigns/{campaign_id}/duplicate", response={201: CampaignOut})
def duplicate_campaign(request: ApiRequest, campaign_id: int) -> Status:
    """A new draft with the same content, sender and audience."""
    return Status(201, campaigns.duplicate_campaign(_campaign(request, campaign_id), user=None))


@router.get("/campaigns/{campaign_id}/progress", response=ProgressOut)
def campaign_progress(request: ApiRequest, campaign_id: int) -> campaigns.Progress:
    """Sent and failed of total, the rate over the last minute, and seconds left."""
    return campaigns.progress(_campaign(request, campaign_id))


@router.post("/campaigns/{campaign_id}/test", response={202: None})
def send_test(request: ApiRequest, campaign_id: int, payload: TestIn) -> Status:
    """Send the message, subject marked [Test], to up to 10 addresses; merge tags as
    ``contact_id`` (a sample person without it)."""
    campaign = _campaign(request, campaign_id)
    contact = None
    if payload.contact_id is not None:
        contact = (
            Contact.objects.for_workspace(request.workspace)
            .select_related("company", "owner")
            .filter(pk=payload.contact_id)
            .first()
        )
        if contact is None:
            message = f"There is no contact {payload.contact_id}."
            raise ApiError(422, "invalid", message, {"contact_id": [message]})
    try:
        campaigns.send_test(campaign, user=None, addresses=payload.addresses, contact=contact)
    except campaigns.CampaignInvalid as exc:
        raise _invalid(exc) from exc
    return Status(202, None)
