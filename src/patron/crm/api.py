"""API: contacts and companies."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from pydantic import EmailStr

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.core.http import ApiRequest
from patron.core.models import User
from patron.crm import custom_fields, meetings, selectors, services
from patron.crm import quotes as quotes_service
from patron.crm import tickets as tickets_service
from patron.crm.models import (
    Call,
    CallDirection,
    CallOutcome,
    Company,
    Contact,
    CustomField,
    CustomFieldObject,
    Deal,
    FieldType,
    LifecycleStage,
    Meeting,
    MeetingOutcome,
    Pipeline,
    Quote,
    QuoteLine,
    QuoteStatus,
    Stage,
    StageOutcome,
    Task,
    TaskPriority,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketReply,
    TicketStatus,
)

router = Router(tags=["crm"])


class ContactOut(Schema):
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    job_title: str
    company_id: int | None
    lifecycle_stage: str
    owner_id: int | None
    source: str
    score: int
    mobile_phone: str
    street: str
    postal_code: str
    city: str
    region: str
    country: str
    time_zone: str
    language: str
    birthday: date | None
    other_emails: list[str]
    other_company_ids: list[int]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_other_emails(contact: Contact) -> list[str]:
        return [other.email for other in contact.other_emails.all()]

    @staticmethod
    def resolve_other_company_ids(contact: Contact) -> list[int]:
        return [company.pk for company in contact.other_companies.all()]


class ContactIn(Schema):
    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    email: EmailStr | None = None
    phone: str = Field("", max_length=50)
    job_title: str = Field("", max_length=150)
    company_id: int | None = None
    lifecycle_stage: LifecycleStage = LifecycleStage.SUBSCRIBER
    owner_id: int | None = None
    source: str = Field("", max_length=100)
    mobile_phone: str = Field("", max_length=50)
    street: str = Field("", max_length=200)
    postal_code: str = Field("", max_length=20)
    city: str = Field("", max_length=100)
    region: str = Field("", max_length=100)
    country: str = Field("", max_length=100)
    time_zone: str = Field("", max_length=64)
    language: str = Field("", max_length=10)
    birthday: date | None = None
    other_emails: list[EmailStr] = Field(default_factory=list, max_length=20)
    other_company_ids: list[int] = Field(default_factory=list, max_length=50)
    custom: dict[str, Any] = Field(default_factory=dict)


class ContactPatch(Schema):
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    email: EmailStr | None = None
    phone: str | None = Field(None, max_length=50)
    job_title: str | None = Field(None, max_length=150)
    company_id: int | None = None
    lifecycle_stage: LifecycleStage | None = None
    owner_id: int | None = None
    source: str | None = Field(None, max_length=100)
    mobile_phone: str | None = Field(None, max_length=50)
    street: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=20)
    city: str | None = Field(None, max_length=100)
    region: str | None = Field(None, max_length=100)
    country: str | None = Field(None, max_length=100)
    time_zone: str | None = Field(None, max_length=64)
    language: str | None = Field(None, max_length=10)
    birthday: date | None = None
    other_emails: list[EmailStr] | None = Field(None, max_length=20)
    other_company_ids: list[int] | None = Field(None, max_length=50)
    custom: dict[str, Any] | None = Field(
        None, description="Only the keys given change; null or empty clears a value."
    )


class ContactPage(Schema):
    items: list[ContactOut]
    next_cursor: str | None


class ContactFilters(Schema):
    q: str | None = None
    email: str | None = None
    company_id: int | None = None
    lifecycle_stage: str | None = None
    cursor: str | None = None
    limit: int = 50


class CompanyOut(Schema):
    id: int
    name: str
    domain: str
    industry: str
    size: int | None
    annual_revenue: Decimal | None
    phone: str
    street: str
    postal_code: str
    city: str
    region: str
    country: str
    owner_id: int | None
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class CompanyIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    domain: str = Field("", max_length=253)
    industry: str = Field("", max_length=100)
    size: int | None = Field(None, ge=0)
    annual_revenue: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    phone: str = Field("", max_length=50)
    street: str = Field("", max_length=200)
    postal_code: str = Field("", max_length=20)
    city: str = Field("", max_length=100)
    region: str = Field("", max_length=100)
    country: str = Field("", max_length=100)
    owner_id: int | None = None
    custom: dict[str, Any] = Field(default_factory=dict)


class CompanyPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    domain: str | None = Field(None, max_length=253)
    industry: str | None = Field(None, max_length=100)
    size: int | None = Field(None, ge=0)
    annual_revenue: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    phone: str | None = Field(None, max_length=50)
    street: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=20)
    city: str | None = Field(None, max_length=100)
    region: str | None = Field(None, max_length=100)
    country: str | None = Field(None, max_length=100)
    owner_id: int | None = None
    custom: dict[str, Any] | None = None


class CompanyPage(Schema):
    items: list[CompanyOut]
    next_cursor: str | None


class CompanyFilters(Schema):
    q: str | None = None
    domain: str | None = None
    cursor: str | None = None
    limit: int = 50


def _references(request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
    """Turn company_id/owner_id into rows of this workspace, or a 422 naming the field."""
    workspace = request.workspace
    values = dict(data)
    if "company_id" in values:
        company_id = values.pop("company_id")
        company = None
        if company_id is not None:
            company = Company.objects.for_workspace(workspace).filter(pk=company_id).first()
            if company is None:
                raise ApiError(
                    422,
                    "invalid",
                    "No company with this id in the workspace.",
                    {"company_id": ["unknown company"]},
                )
        values["company"] = company
    if "owner_id" in values:
        owner_id = values.pop("owner_id")
        owner = None
        if owner_id is not None:
            owner = User.objects.filter(
                pk=owner_id, memberships__workspace=workspace, memberships__is_active=True
            ).first()
            if owner is None:
                raise ApiError(
                    422,
                    "invalid",
                    "The owner is not a member of this workspace.",
                    {"owner_id": ["not a member of this workspace"]},
                )
        values["owner"] = owner
    if "other_company_ids" in values:
        ids = values.pop("other_company_ids")
        if ids is not None:
            companies = list(Company.objects.for_workspace(workspace).filter(pk__in=ids))
            if len(companies) != len(set(ids)):
                raise ApiError(
                    422,
                    "invalid",
                    "An other company id is not a company of this workspace.",
                    {"other_company_ids": ["unknown company"]},
                )
            values["other_companies"] = companies
    for name in (
        "mobile_phone",
        "street",
        "postal_code",
        "city",
        "region",
        "country",
        "time_zone",
        "language",
        "phone",
        "job_title",
        "source",
        "first_name",
        "last_name",
        "industry",
        "domain",
    ):
        if name in values and values[name] is None:
            values[name] = ""
    if values.get("email") is None and "email" in values:
        values["email"] = ""
    return values


def _duplicate(exc: services.DuplicateContact) -> ApiError:
    return ApiError(
        409,
        "duplicate",
        f"A contact with this email exists (id {exc.existing.pk}).",
        {"email": [f"already used by contact {exc.existing.pk}"]},
    )


def _contacts(request: ApiRequest):  # type: ignore[no-untyped-def]
    return Contact.objects.for_workspace(request.workspace).prefetch_related(
        "other_emails", "other_companies"
    )


def _custom_filters(request: ApiRequest, records: Any, object_type: str) -> Any:
    """Apply ``?custom.<key>=<value>`` filters (equality; "has" for multi select)."""
    wanted = {
        name.removeprefix("custom."): value
        for name, value in request.GET.items()
        if name.startswith("custom.")
    }
    if not wanted:
        return records
    fields = {f.key: f for f in services.field_definitions(request.workspace, object_type)}
    for key, value in wanted.items():
        field = fields.get(key)
        if field is None:
            raise ApiError(
                422, "invalid", f"No custom field {key!r}.", {f"custom.{key}": ["unknown field"]}
            )
        if field.field_type == FieldType.MULTI_SELECT:
            condition = custom_fields.Condition(field, custom_fields.Operator.HAS_ANY, [value])
        else:
            condition = custom_fields.Condition(field, custom_fields.Operator.EQUALS, value)
        records = records.filter(custom_fields.filter_q(condition))
    return records


def _companies(request: ApiRequest):  # type: ignore[no-untyped-def]
    return Company.objects.for_workspace(request.workspace)


@router.get("/contacts", response=ContactPage)
def list_contacts(request: ApiRequest, filters: Query[ContactFilters]) -> dict[str, Any]:
    contacts = _contacts(request)
    if filters.q:
        from django.db.models import Q

        q = filters.q.strip()
        contacts = contacts.filter(
            Q(email__istartswith=q) | Q(first_name__istartswith=q) | Q(last_name__istartswith=q)
        )
    if filters.email:
        contacts = contacts.filter(email=filters.email.strip().lower())
    if filters.company_id is not None:
        contacts = contacts.filter(company_id=filters.company_id)
    if filters.lifecycle_stage:
        contacts = contacts.filter(lifecycle_stage=filters.lifecycle_stage)
    contacts = _custom_filters(request, contacts, CustomFieldObject.CONTACT)
    return paginate(contacts, cursor=filters.cursor, limit=filters.limit)


@router.get("/contacts/{contact_id}", response=ContactOut)
def get_contact(request: ApiRequest, contact_id: int) -> Contact:
    return get_object_or_404(_contacts(request), pk=contact_id)


@router.post("/contacts", response={201: ContactOut})
def create_contact(request: ApiRequest, payload: ContactIn) -> Status:
    values = _references(request, payload.dict())
    try:
        contact = services.create_contact(
            workspace=request.workspace,
            **values,
        )
    except services.DuplicateContact as exc:
        raise _duplicate(exc) from exc
    return Status(201, contact)


@router.patch("/contacts/{contact_id}", response=ContactOut)
def update_contact(request: ApiRequest, contact_id: int, payload: ContactPatch) -> Contact:
    contact = get_object_or_404(_contacts(request), pk=contact_id)
    values = _references(request, payload.dict(exclude_unset=True))
    try:
        return services.update_contact(contact=contact, **values)
    except services.DuplicateContact as exc:
        raise _duplicate(exc) from exc


@router.delete("/contacts/{contact_id}", response={204: None})
def delete_contact(request: ApiRequest, contact_id: int) -> Status:
    services.delete_contact(contact=get_object_or_404(_contacts(request), pk=contact_id))
    return Status(204, None)


@router.get("/companies", response=CompanyPage)
def list_companies(request: ApiRequest, filters: Query[CompanyFilters]) -> dict[str, Any]:
    companies = _companies(request)
    if filters.q:
        companies = companies.filter(name__istartswith=filters.q.strip())
    if filters.domain:
        companies = companies.filter(domain=filters.domain.strip().lower())
    companies = _custom_filters(request, companies, CustomFieldObject.COMPANY)
    return paginate(companies, cursor=filters.cursor, limit=filters.limit)


@router.get("/companies/{company_id}", response=CompanyOut)
def get_company(request: ApiRequest, company_id: int) -> Company:
    return get_object_or_404(_companies(request), pk=company_id)


@router.post("/companies", response={201: CompanyOut})
def create_company(request: ApiRequest, payload: CompanyIn) -> Status:
    values = _references(request, payload.dict())
    return Status(
        201,
        services.create_company(
            workspace=request.workspace,
            **values,
        ),
    )


@router.patch("/companies/{company_id}", response=CompanyOut)
def update_company(request: ApiRequest, company_id: int, payload: CompanyPatch) -> Company:
    company = get_object_or_404(_companies(request), pk=company_id)
    values = _references(request, payload.dict(exclude_unset=True))
    return services.update_company(company=company, **values)


@router.delete("/companies/{company_id}", response={204: None})
def delete_company(request: ApiRequest, company_id: int) -> Status:
    services.delete_company(company=get_object_or_404(_companies(request), pk=company_id))
    return Status(204, None)


# --- Pipelines and deals -------------------------------------------------------------


class StageOut(Schema):
    id: int
    name: str
    position: int
    probability: int
    outcome: str


class PipelineOut(Schema):
    id: int
    name: str
    stages: list[StageOut]


class PipelineIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)


class DealOut(Schema):
    id: int
    name: str
    pipeline_id: int
    stage_id: int
    stage: str
    outcome: str
    amount: Decimal
    currency: str
    expected_revenue: Decimal
    expected_close_date: date | None
    owner_id: int | None
    company_id: int | None
    contact_ids: list[int]
    source: str
    lost_reason: str
    custom: dict[str, Any]
    created_at: datetime
    stage_changed_at: datetime
    closed_at: datetime | None

    @staticmethod
    def resolve_stage(deal: Deal) -> str:
        return deal.stage.name

    @staticmethod
    def resolve_contact_ids(deal: Deal) -> list[int]:
        return [c.pk for c in deal.contacts.all()]


class DealIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    pipeline_id: int | None = None
    stage_id: int | None = None
    amount: Decimal = Field(Decimal("0"), ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(None, min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")
    expected_close_date: date | None = None
    owner_id: int | None = None
    company_id: int | None = None
    contact_ids: list[int] = Field(default_factory=list)
    source: str = Field("", max_length=100)
    custom: dict[str, Any] = Field(default_factory=dict)


class DealPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(None, min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")
    expected_close_date: date | None = None
    owner_id: int | None = None
    company_id: int | None = None
    contact_ids: list[int] | None = None
    source: str | None = Field(None, max_length=100)
    custom: dict[str, Any] | None = None


class DealMove(Schema):
    stage_id: int
    lost_reason: str = Field("", max_length=300)


class DealPage(Schema):
    items: list[DealOut]
    next_cursor: str | None


class DealFilters(Schema):
    pipeline_id: int | None = None
    stage_id: int | None = None
    outcome: StageOutcome | None = None
    company_id: int | None = None
    contact_id: int | None = None
    cursor: str | None = None
    limit: int = 50


def _deals(request: ApiRequest) -> QuerySet[Deal]:
    return (
        Deal.objects.for_workspace(request.workspace)
        .select_related("stage")
        .prefetch_related("contacts")
    )


def _stage(request: ApiRequest, stage_id: int, field: str = "stage_id") -> Stage:
    stage = Stage.objects.for_workspace(request.workspace).filter(pk=stage_id).first()
    if stage is None:
        raise ApiError(
            422, "invalid", "No stage with this id in the workspace.", {field: ["unknown stage"]}
        )
    return stage


def _deal_contacts(request: ApiRequest, ids: list[int]) -> list[Contact]:
    contacts = list(Contact.objects.for_workspace(request.workspace).filter(pk__in=ids))
    if len(contacts) != len(set(ids)):
        raise ApiError(
            422,
            "invalid",
            "Some contacts are not in the workspace.",
            {"contact_ids": ["unknown contact"]},
        )
    return contacts


@router.get("/pipelines", response=list[PipelineOut])
def list_pipelines(request: ApiRequest) -> list[Pipeline]:
    return list(
        Pipeline.objects.for_workspace(request.workspace)
        .prefetch_related("stages")
        .order_by("position", "id")
    )


@router.post("/pipelines", response={201: PipelineOut})
def create_pipeline(request: ApiRequest, payload: PipelineIn) -> Status:
    if Pipeline.objects.for_workspace(request.workspace).filter(name=payload.name).exists():
        raise ApiError(
            409, "duplicate", "A pipeline with this name exists.", {"name": ["already used"]}
        )
    return Status(201, services.create_pipeline(workspace=request.workspace, name=payload.name))


@router.get("/deals", response=DealPage)
def list_deals(request: ApiRequest, filters: Query[DealFilters]) -> dict[str, Any]:
    deals = _deals(request)
    if filters.pipeline_id is not None:
        deals = deals.filter(pipeline_id=filters.pipeline_id)
    if filters.stage_id is not None:
        deals = deals.filter(stage_id=filters.stage_id)
    if filters.outcome:
        deals = deals.filter(stage__outcome=filters.outcome)
    if filters.company_id is not None:
        deals = deals.filter(company_id=filters.company_id)
    if filters.contact_id is not None:
        deals = deals.filter(contacts=filters.contact_id)
    deals = _custom_filters(request, deals, CustomFieldObject.DEAL)
    return paginate(deals, cursor=filters.cursor, limit=filters.limit)


@router.get("/deals/{deal_id}", response=DealOut)
def get_deal(request: ApiRequest, deal_id: int) -> Deal:
    return get_object_or_404(_deals(request), pk=deal_id)


@router.post("/deals", response={201: DealOut})
def create_deal(request: ApiRequest, payload: DealIn) -> Status:
    data = payload.dict()
    pipeline = None
    if data.pop("pipeline_id") is not None:
        pipeline = (
            Pipeline.objects.for_workspace(request.workspace).filter(pk=payload.pipeline_id).first()
        )
        if pipeline is None:
            raise ApiError(
                422,
                "invalid",
                "No pipeline with this id in the workspace.",
                {"pipeline_id": ["unknown pipeline"]},
            )
    stage_id = data.pop("stage_id")
    stage = _stage(request, stage_id) if stage_id is not None else None
    contacts = _deal_contacts(request, data.pop("contact_ids"))
    if data.get("currency"):
        data["currency"] = data["currency"].upper()
    else:
        data.pop("currency", None)
    values = _references(request, data)
    try:
        deal = services.create_deal(
            workspace=request.workspace, pipeline=pipeline, stage=stage, contacts=contacts, **values
        )
    except services.InvalidStage as exc:
        raise ApiError(422, "invalid", str(exc), {"stage_id": [str(exc)]}) from exc
    return Status(201, get_object_or_404(_deals(request), pk=deal.pk))


@router.patch("/deals/{deal_id}", response=DealOut)
def update_deal(request: ApiRequest, deal_id: int, payload: DealPatch) -> Deal:
    deal = get_object_or_404(_deals(request), pk=deal_id)
    data = payload.dict(exclude_unset=True)
    contacts = None
    if data.get("contact_ids") is not None:
        contacts = _deal_contacts(request, data.pop("contact_ids"))
    data.pop("contact_ids", None)
    if data.get("currency"):
        data["currency"] = data["currency"].upper()
    services.update_deal(deal=deal, contacts=contacts, **_references(request, data))
    return get_object_or_404(_deals(request), pk=deal.pk)


@router.post("/deals/{deal_id}/move", response=DealOut)
def move_deal(request: ApiRequest, deal_id: int, payload: DealMove) -> Deal:
    """Move the deal to another stage of its pipeline (recorded as deal.stage_changed)."""
    deal = get_object_or_404(_deals(request), pk=deal_id)
    try:
        services.move_deal(
            deal=deal, stage=_stage(request, payload.stage_id), lost_reason=payload.lost_reason
        )
    except services.InvalidStage as exc:
        raise ApiError(422, "invalid", str(exc), {"stage_id": [str(exc)]}) from exc
    return get_object_or_404(_deals(request), pk=deal.pk)


@router.delete("/deals/{deal_id}", response={204: None})
def delete_deal(request: ApiRequest, deal_id: int) -> Status:
    services.delete_deal(deal=get_object_or_404(_deals(request), pk=deal_id))
    return Status(204, None)


# --- Custom field definitions --------------------------------------------------------


class CustomFieldOut(Schema):
    id: int
    object_type: str
    key: str
    label: str
    field_type: str
    options: list[str]
    required: bool
    help_text: str
    position: int


class CustomFieldIn(Schema):
    object_type: CustomFieldObject
    label: str = Field(..., min_length=1, max_length=100)
    field_type: FieldType
    key: str = Field("", max_length=50)
    options: list[str] = Field(default_factory=list, max_length=200)
    required: bool = False
    help_text: str = Field("", max_length=200)


class CustomFieldPatch(Schema):
    label: str | None = Field(None, min_length=1, max_length=100)
    options: list[str] | None = Field(None, max_length=200)
    required: bool | None = None
    help_text: str | None = Field(None, max_length=200)


def _custom_field_errors(exc: custom_fields.CustomFieldInvalid) -> ApiError:
    return ApiError(
        422,
        "invalid",
        "The custom field definition is not valid.",
        {name: [message] for name, message in exc.errors.items()},
    )


def _custom_field(request: ApiRequest, custom_field_id: int) -> CustomField:
    return get_object_or_404(
        CustomField.objects.for_workspace(request.workspace), pk=custom_field_id
    )


@router.get("/custom-fields", response=list[CustomFieldOut])
def list_custom_fields(request: ApiRequest, object_type: CustomFieldObject | None = None) -> Any:
    """The workspace's custom fields; values appear under ``custom`` on each record."""
    fields = CustomField.objects.for_workspace(request.workspace).order_by(
        "object_type", "position", "id"
    )
    if object_type:
        fields = fields.filter(object_type=object_type)
    return fields


@router.post("/custom-fields", response={201: CustomFieldOut})
def create_custom_field(request: ApiRequest, payload: CustomFieldIn) -> Status:
    try:
        field = services.create_custom_field(workspace=request.workspace, **payload.dict())
    except custom_fields.CustomFieldInvalid as exc:
        raise _custom_field_errors(exc) from exc
    return Status(201, field)


@router.patch("/custom-fields/{custom_field_id}", response=CustomFieldOut)
def update_custom_field(
    request: ApiRequest, custom_field_id: int, payload: CustomFieldPatch
) -> CustomField:
    field = _custom_field(request, custom_field_id)
    try:
        return services.update_custom_field(field=field, **payload.dict(exclude_unset=True))
    except custom_fields.CustomFieldInvalid as exc:
        raise _custom_field_errors(exc) from exc


@router.delete("/custom-fields/{custom_field_id}", response={204: None})
def delete_custom_field(request: ApiRequest, custom_field_id: int) -> Status:
    """Delete the field and every value records hold in it."""
    services.delete_custom_field(field=_custom_field(request, custom_field_id))
    return Status(204, None)


# --- Calls and meetings -------------------------------------------------------------


class CallOut(Schema):
    id: int
    contact_id: int
    company_id: int | None
    deal_id: int | None
    direction: str
    outcome: str
    occurred_at: datetime
    duration_minutes: int
    notes: str
    logged_by_id: int | None


class CallIn(Schema):
    contact_id: int
    outcome: CallOutcome
    direction: CallDirection = CallDirection.OUTBOUND
    occurred_at: datetime | None = None
    duration_minutes: int = Field(0, ge=0, le=24 * 60)
    notes: str = Field("", max_length=20_000)
    company_id: int | None = None
    deal_id: int | None = None


class CallPatch(Schema):
    outcome: CallOutcome | None = None
    direction: CallDirection | None = None
    occurred_at: datetime | None = None
    duration_minutes: int | None = Field(None, ge=0, le=24 * 60)
    notes: str | None = Field(None, max_length=20_000)
    company_id: int | None = None
    deal_id: int | None = None


class MeetingOut(Schema):
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    location: str
    description: str
    organizer_id: int | None
    contact_ids: list[int]
    company_id: int | None
    deal_id: int | None
    outcome: str
    created_at: datetime

    @staticmethod
    def resolve_contact_ids(meeting: Meeting) -> list[int]:
        return [contact.pk for contact in meeting.contacts.all()]


class MeetingIn(Schema):
    title: str = Field(..., min_length=1, max_length=200)
    starts_at: datetime
    ends_at: datetime
    location: str = Field("", max_length=300)
    description: str = Field("", max_length=20_000)
    organizer_id: int | None = None
    contact_ids: list[int] = Field(default_factory=list, max_length=100)
    company_id: int | None = None
    deal_id: int | None = None


class MeetingPatch(Schema):
    title: str | None = Field(None, min_length=1, max_length=200)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    location: str | None = Field(None, max_length=300)
    description: str | None = Field(None, max_length=20_000)
    organizer_id: int | None = None
    contact_ids: list[int] | None = Field(None, max_length=100)
    company_id: int | None = None
    deal_id: int | None = None
    outcome: MeetingOutcome | None = None


class MeetingOutcomeIn(Schema):
    outcome: MeetingOutcome
    notes: str = Field("", max_length=20_000)


class CallPage(Schema):
    items: list[CallOut]
    next_cursor: str | None


class MeetingPage(Schema):
    items: list[MeetingOut]
    next_cursor: str | None


class DateRangeFilters(Schema):
    contact_id: int | None = None
    company_id: int | None = None
    deal_id: int | None = None
    after: datetime | None = Field(None, description="From this moment (inclusive).")
    before: datetime | None = Field(None, description="Until this moment (exclusive).")
    cursor: str | None = None
    limit: int = 50


def _date_range(filters: DateRangeFilters) -> None:
    if filters.after and filters.before and filters.before <= filters.after:
        raise ApiError(
            422, "invalid", "before must be later than after.", {"before": ["not after 'after'"]}
        )


def _activity_references(request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
    """company_id/owner_id/deal_id into rows of this workspace, or a 422 naming the field."""
    values = _references(request, data)
    if "deal_id" in values:
        deal_id = values.pop("deal_id")
        deal = None
        if deal_id is not None:
            deal = Deal.objects.for_workspace(request.workspace).filter(pk=deal_id).first()
            if deal is None:
                raise ApiError(
                    422,
                    "invalid",
                    "No deal with this id in the workspace.",
                    {"deal_id": ["unknown deal"]},
                )
        values["deal"] = deal
    return values


def _calls(request: ApiRequest) -> QuerySet[Call]:
    return Call.objects.for_workspace(request.workspace)


@router.get("/calls", response=CallPage)
def list_calls(request: ApiRequest, filters: Query[DateRangeFilters]) -> dict[str, Any]:
    """Logged calls, newest first; ``after``/``before`` bound the time of the call."""
    _date_range(filters)
    calls = _calls(request)
    for name in ("contact_id", "company_id", "deal_id"):
        if getattr(filters, name) is not None:
            calls = calls.filter(**{name: getattr(filters, name)})
    if filters.after:
        calls = calls.filter(occurred_at__gte=filters.after)
    if filters.before:
        calls = calls.filter(occurred_at__lt=filters.before)
    return paginate(calls, cursor=filters.cursor, limit=filters.limit)


@router.post("/calls", response={201: CallOut})
def create_call(request: ApiRequest, payload: CallIn) -> Status:
    contact = Contact.objects.for_workspace(request.workspace).filter(pk=payload.contact_id).first()
    if contact is None:
        raise ApiError(
            422, "invalid", "No contact with this id.", {"contact_id": ["unknown contact"]}
        )
    values = _activity_references(request, payload.dict(exclude={"contact_id"}))
    call = meetings.log_call(workspace=request.workspace, contact=contact, **values)
    return Status(201, call)


@router.get("/calls/{call_id}", response=CallOut)
def get_call(request: ApiRequest, call_id: int) -> Call:
    return get_object_or_404(_calls(request), pk=call_id)


@router.patch("/calls/{call_id}", response=CallOut)
def update_call(request: ApiRequest, call_id: int, payload: CallPatch) -> Call:
    call = get_object_or_404(_calls(request), pk=call_id)
    values = _activity_references(request, payload.dict(exclude_unset=True))
    for name in ("outcome", "direction", "duration_minutes", "notes", "occurred_at"):
        if name in values and values[name] is None:
            raise ApiError(422, "invalid", f"{name} cannot be null.", {name: ["cannot be null"]})
    return meetings.update_call(call=call, **values)


@router.delete("/calls/{call_id}", response={204: None})
def delete_call(request: ApiRequest, call_id: int) -> Status:
    meetings.delete_call(call=get_object_or_404(_calls(request), pk=call_id))
    return Status(204, None)


def _meetings(request: ApiRequest) -> QuerySet[Meeting]:
    return Meeting.objects.for_workspace(request.workspace).prefetch_related("contacts")


@router.get("/meetings", response=MeetingPage)
def list_meetings(request: ApiRequest, filters: Query[DateRangeFilters]) -> dict[str, Any]:
    """Meetings, newest first; ``after``/``before`` keep those that overlap the window."""
    _date_range(filters)
    found = _meetings(request)
    if filters.contact_id is not None:
        found = found.filter(contacts=filters.contact_id)
    if filters.company_id is not None:
        found = found.filter(company_id=filters.company_id)
    if filters.deal_id is not None:
        found = found.filter(deal_id=filters.deal_id)
    if filters.after:
        found = found.filter(ends_at__gt=filters.after)
    if filters.before:
        found = found.filter(starts_at__lt=filters.before)
    return paginate(found, cursor=filters.cursor, limit=filters.limit)


@router.post("/meetings", response={201: MeetingOut})
def create_meeting(request: ApiRequest, payload: MeetingIn) -> Status:
    data = payload.dict(exclude={"contact_ids", "organizer_id"})
    values = _activity_references(request, {**data, "owner_id": payload.organizer_id})
    values["organizer"] = values.pop("owner")
    meeting = meetings.schedule_meeting(
        workspace=request.workspace,
        contacts=_deal_contacts(request, payload.contact_ids),
        **values,
    )
    return Status(201, get_object_or_404(_meetings(request), pk=meeting.pk))


@router.get("/meetings/{meeting_id}", response=MeetingOut)
def get_meeting(request: ApiRequest, meeting_id: int) -> Meeting:
    return get_object_or_404(_meetings(request), pk=meeting_id)


@router.patch("/meetings/{meeting_id}", response=MeetingOut)
def update_meeting(request: ApiRequest, meeting_id: int, payload: MeetingPatch) -> Meeting:
    """Change the given fields; ``contact_ids`` replaces the attendees, ``outcome``
    records the outcome (as ``POST .../outcome`` does)."""
    meeting = get_object_or_404(_meetings(request), pk=meeting_id)
    data = payload.dict(exclude_unset=True)
    outcome = data.pop("outcome", None)
    contact_ids = data.pop("contact_ids", None)
    if "organizer_id" in data:
        data["owner_id"] = data.pop("organizer_id")
    for name in ("title", "starts_at", "ends_at", "location", "description"):
        if name in data and data[name] is None:
            raise ApiError(422, "invalid", f"{name} cannot be null.", {name: ["cannot be null"]})
    values = _activity_references(request, data)
    if "owner" in values:
        values["organizer"] = values.pop("owner")
    contacts = _deal_contacts(request, contact_ids) if contact_ids is not None else None
    meetings.update_meeting(meeting=meeting, contacts=contacts, **values)
    if outcome is not None and outcome != meeting.outcome:
        meetings.record_meeting_outcome(meeting=meeting, outcome=outcome)
    return get_object_or_404(_meetings(request), pk=meeting_id)


@router.post("/meetings/{meeting_id}/outcome", response=MeetingOut)
def record_meeting_outcome(
    request: ApiRequest, meeting_id: int, payload: MeetingOutcomeIn
) -> Meeting:
    meeting = get_object_or_404(_meetings(request), pk=meeting_id)
    meetings.record_meeting_outcome(meeting=meeting, outcome=payload.outcome, notes=payload.notes)
    return get_object_or_404(_meetings(request), pk=meeting_id)


@router.delete("/meetings/{meeting_id}", response={204: None})
def delete_meeting(request: ApiRequest, meeting_id: int) -> Status:
    meetings.delete_meeting(meeting=get_object_or_404(_meetings(request), pk=meeting_id))
    return Status(204, None)


# --- Tickets ----------------------------------------------------------------------------


class TicketOut(Schema):
    id: int
    subject: str
    description: str
    contact_id: int | None
    company_id: int | None
    status: str
    priority: str
    channel: str
    assignee_id: int | None
    created_at: datetime
    updated_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_responded_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    first_response_seconds: int | None
    resolution_seconds: int | None
    sla_state: str
    custom: dict[str, Any]

    @staticmethod
    def resolve_sla_state(ticket: Ticket) -> str:
        return tickets_service.sla_state(ticket)


class TicketIn(Schema):
    subject: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    contact_id: int | None = None
    company_id: int | None = None
    priority: TicketPriority = TicketPriority.NORMAL
    channel: TicketChannel = TicketChannel.API
    assignee_id: int | None = None
    custom: dict[str, Any] = Field(default_factory=dict)


class TicketPatch(Schema):
    """The fields to change; a null ``assignee_id``, ``contact_id`` or ``company_id`` clears it."""

    subject: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    channel: TicketChannel | None = None
    assignee_id: int | None = None
    contact_id: int | None = None
    company_id: int | None = None
    custom: dict[str, Any] | None = None


class TicketReplyIn(Schema):
    body: str = Field(..., min_length=1, max_length=20_000)
    internal: bool = False


class TicketReplyOut(Schema):
    id: int
    author_id: int | None
    body: str
    is_internal: bool
    created_at: datetime


class TicketPage(Schema):
    items: list[TicketOut]
    next_cursor: str | None


class TicketFilters(Schema):
    """As the ticket list filters; ``custom.<key>=<value>`` filters on custom fields too."""

    status: TicketStatus | None = None
    unsolved: bool | None = None
    priority: TicketPriority | None = None
    assignee_id: int | None = None
    unassigned: bool | None = None
    contact_id: int | None = None
    sla: str | None = Field(None, pattern="^(breached|at_risk|on_track)$")
    q: str | None = Field(None, max_length=200)
    cursor: str | None = None
    limit: int = 50


def _tickets(request: ApiRequest) -> Any:
    return Ticket.objects.for_workspace(request.workspace).select_related("workspace")


def _ticket_references(request: ApiRequest, data: dict[str, Any]) -> dict[str, Any]:
    """contact_id/company_id/assignee_id as rows of this workspace, or a 422 naming the field."""
    workspace = request.workspace
    values: dict[str, Any] = {}
    if "contact_id" in data:
        contact_id = data.pop("contact_id")
        values["contact"] = None
        if contact_id is not None:
            values["contact"] = (
                Contact.objects.for_workspace(workspace).filter(pk=contact_id).first()
            )
            if values["contact"] is None:
                raise ApiError(
                    422,
                    "invalid",
                    "No contact with this id in the workspace.",
                    {"contact_id": ["unknown contact"]},
                )
    if "company_id" in data:
        values["company"] = _references(request, {"company_id": data.pop("company_id")})["company"]
    if "assignee_id" in data:
        assignee_id = data.pop("assignee_id")
        values["assignee"] = None
        if assignee_id is not None:
            values["assignee"] = User.objects.filter(
                pk=assignee_id, memberships__workspace=workspace, memberships__is_active=True
            ).first()
            if values["assignee"] is None:
                raise ApiError(
                    422,
                    "invalid",
                    "The assignee is not a member of this workspace.",
                    {"assignee_id": ["not a member of this workspace"]},
                )
    return values


@router.get("/tickets", response=TicketPage)
def list_tickets(request: ApiRequest, filters: Query[TicketFilters]) -> dict[str, Any]:
    found = _tickets(request)
    for name in ("status", "priority", "assignee_id", "contact_id"):
        value = getattr(filters, name)
        if value is not None:
            found = found.filter(**{name: value})
    if filters.unsolved is not None:
        unsolved = Q(status__in=selectors.OPEN_TICKET_STATUSES)
        found = found.filter(unsolved if filters.unsolved else ~unsolved)
    if filters.unassigned is not None:
        found = found.filter(assignee__isnull=filters.unassigned)
    if filters.sla:
        found = tickets_service.filter_by_sla(found, filters.sla)
    if filters.q and filters.q.strip():
        found = found.filter(subject__icontains=filters.q.strip())
    found = _custom_filters(request, found, CustomFieldObject.TICKET)
    return paginate(found, cursor=filters.cursor, limit=filters.limit)


@router.post("/tickets", response={201: TicketOut})
def create_ticket(request: ApiRequest, payload: TicketIn) -> Status:
    """Open a ticket; without ``assignee_id`` the assignment rules for tickets apply."""
    data = payload.dict()
    references = _ticket_references(request, data)
    ticket = tickets_service.open_ticket(
        workspace=request.workspace, actor=request.auth.created_by, **data, **references
    )
    return Status(201, get_object_or_404(_tickets(request), pk=ticket.pk))


@router.get("/tickets/{ticket_id}", response=TicketOut)
def get_ticket(request: ApiRequest, ticket_id: int) -> Ticket:
    return get_object_or_404(_tickets(request), pk=ticket_id)


@router.patch("/tickets/{ticket_id}", response=TicketOut)
def update_ticket(request: ApiRequest, ticket_id: int, payload: TicketPatch) -> Ticket:
    ticket = get_object_or_404(_tickets(request), pk=ticket_id)
    data = payload.dict(exclude_unset=True)
    for name in ("subject", "description", "status", "priority", "channel", "custom"):
        if name in data and data[name] is None:
            raise ApiError(422, "invalid", f"{name} cannot be null.", {name: ["cannot be null"]})
    references = _ticket_references(request, data)
    tickets_service.update_ticket(
        ticket=ticket, actor=request.auth.created_by, **data, **references
    )
    return get_object_or_404(_tickets(request), pk=ticket_id)


@router.get("/tickets/{ticket_id}/replies", response=list[TicketReplyOut])
def list_ticket_replies(request: ApiRequest, ticket_id: int) -> Any:
    """The conversation, oldest first, internal notes included."""
    ticket = get_object_or_404(_tickets(request), pk=ticket_id)
    return TicketReply.objects.for_workspace(request.workspace).filter(ticket=ticket)


@router.post("/tickets/{ticket_id}/replies", response={201: TicketOut})
def reply_to_ticket(request: ApiRequest, ticket_id: int, payload: TicketReplyIn) -> Status:
    """Add a reply (or internal note) in the name of the API key's creator."""
    ticket = get_object_or_404(_tickets(request), pk=ticket_id)
    author = request.auth.created_by
    if author is None:
        raise ApiError(422, "invalid", "This API key has no person to reply as.", {})
    try:
        tickets_service.reply_to_ticket(
            ticket=ticket, author=author, body=payload.body, internal=payload.internal
        )
    except services.CrossWorkspaceReference as exc:
        raise ApiError(403, "forbidden", str(exc), {}) from exc
    return Status(201, get_object_or_404(_tickets(request), pk=ticket_id))


@router.delete("/tickets/{ticket_id}", response={204: None})
def delete_ticket(request: ApiRequest, ticket_id: int) -> Status:
    tickets_service.delete_ticket(ticket=get_object_or_404(_tickets(request), pk=ticket_id))
    return Status(204, None)


# --- Tasks and quotes ---------------------------------------------------------------------


class TaskOut(Schema):
    id: int
    title: str
    description: str
    due_at: datetime | None
    remind_at: datetime | None
    priority: str
    assignee_id: int | None
    contact_id: int | None
    company_id: int | None
    deal_id: int | None
    ticket_id: int | None
    completed_at: datetime | None
    created_at: datetime


class TaskIn(Schema):
    title: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    due_at: datetime | None = None
    remind_at: datetime | None = None
    priority: TaskPriority = TaskPriority.NORMAL
    assignee_id: int | None = None
    contact_id: int | None = None
    deal_id: int | None = None
    ticket_id: int | None = None


class TaskDone(Schema):
    done: bool


class TaskPage(Schema):
    items: list[TaskOut]
    next_cursor: str | None


class TaskFilters(Schema):
    """As the task list filters: ``due`` is one of its tabs (in the workspace's time zone)."""

    assignee_id: int | None = None
    unassigned: bool | None = None
    contact_id: int | None = None
    deal_id: int | None = None
    ticket_id: int | None = None
    done: bool | None = None
    due_before: datetime | None = None
    due: str | None = Field(None, pattern="^(overdue|today|upcoming|someday|open|done)$")
    priority: TaskPriority | None = None
    q: str | None = Field(None, max_length=200)
    cursor: str | None = None
    limit: int = 50


def _tasks(request: ApiRequest) -> Any:
    return Task.objects.for_workspace(request.workspace)


def _one(request: ApiRequest, model: Any, pk: int | None, field: str) -> Any:
    if pk is None:
        return None
    row = model.objects.for_workspace(request.workspace).filter(pk=pk).first()
    if row is None:
        raise ApiError(422, "invalid", f"No such record for {field}.", {field: ["unknown id"]})
    return row


@router.get("/tasks", response=TaskPage)
def list_tasks(request: ApiRequest, filters: Query[TaskFilters]) -> dict[str, Any]:
    found = _tasks(request)
    for name in ("assignee_id", "contact_id", "deal_id", "ticket_id"):
        value = getattr(filters, name)
        if value is not None:
            found = found.filter(**{name: value})
    if filters.done is not None:
        found = found.filter(completed_at__isnull=not filters.done)
    if filters.due_before is not None:
        found = found.filter(due_at__lt=filters.due_before)
    if filters.unassigned is not None:
        found = found.filter(assignee__isnull=filters.unassigned)
    if filters.due:
        found = selectors.filter_tasks_due(found, filters.due)
    if filters.priority:
        found = found.filter(priority=filters.priority)
    if filters.q and filters.q.strip():
        found = found.filter(title__icontains=filters.q.strip())
    return paginate(found, cursor=filters.cursor, limit=filters.limit)


@router.post("/tasks", response={201: TaskOut})
def create_task(request: ApiRequest, payload: TaskIn) -> Status:
    contact = _one(request, Contact, payload.contact_id, "contact_id")
    task = services.create_task(
        workspace=request.workspace,
        created_by=request.auth.created_by,
        title=payload.title,
        description=payload.description,
        due_at=payload.due_at,
        remind_at=payload.remind_at,
        priority=payload.priority,
        assignee=_references(request, {"owner_id": payload.assignee_id})["owner"],
        contact=contact,
        company=contact.company if contact else None,
        deal=_one(request, Deal, payload.deal_id, "deal_id"),
        ticket=_one(request, Ticket, payload.ticket_id, "ticket_id"),
    )
    return Status(201, task)


@router.get("/tasks/{task_id}", response=TaskOut)
def get_task(request: ApiRequest, task_id: int) -> Task:
    return get_object_or_404(_tasks(request), pk=task_id)


@router.post("/tasks/{task_id}/done", response=TaskOut)
def mark_task(request: ApiRequest, task_id: int, payload: TaskDone) -> Task:
    """Mark the task done (``{"done": true}``) or not done again."""
    task = get_object_or_404(_tasks(request), pk=task_id)
    if payload.done:
        return services.complete_task(task=task, actor=request.auth.created_by)
    return services.reopen_task(task=task, actor=request.auth.created_by)


@router.delete("/tasks/{task_id}", response={204: None})
def delete_task(request: ApiRequest, task_id: int) -> Status:
    get_object_or_404(_tasks(request), pk=task_id).delete()
    return Status(204, None)


class QuoteLineSchema(Schema):
    description: str = Field(..., min_length=1, max_length=300)
    quantity: Decimal = Field(..., gt=0, max_digits=12, decimal_places=2)
    unit_price: Decimal = Field(..., ge=0, max_digits=14, decimal_places=2)
    discount_percent: Decimal = Field(Decimal("0"), ge=0, le=100, max_digits=5, decimal_places=2)
    tax_percent: Decimal = Field(Decimal("0"), ge=0, le=100, max_digits=5, decimal_places=2)


class QuoteLineOut(QuoteLineSchema):
    amount: Decimal = Field(description="After discount, before tax; rounded half-up to cents.")
    tax: Decimal

    @staticmethod
    def resolve_amount(line: QuoteLine) -> Decimal:
        return quotes_service.line_amounts(line).net

    @staticmethod
    def resolve_tax(line: QuoteLine) -> Decimal:
        return quotes_service.line_amounts(line).tax


class QuoteOut(Schema):
    id: int
    number: str
    deal_id: int
    contact_id: int | None
    title: str
    currency: str
    valid_until: date
    status: str
    terms: str
    lines: list[QuoteLineOut]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal
    created_at: datetime
    sent_at: datetime | None
    viewed_at: datetime | None
    answered_at: datetime | None
    answered_by_name: str
    decline_reason: str

    @staticmethod
    def resolve_lines(quote: Quote) -> list[QuoteLine]:
        return list(quote.lines.all())

    @staticmethod
    def resolve_subtotal(quote: Quote) -> Decimal:
        return quotes_service.totals(list(quote.lines.all())).subtotal

    @staticmethod
    def resolve_discount_total(quote: Quote) -> Decimal:
        return quotes_service.totals(list(quote.lines.all())).discount

    @staticmethod
    def resolve_tax_total(quote: Quote) -> Decimal:
        return quotes_service.totals(list(quote.lines.all())).tax

    @staticmethod
    def resolve_total(quote: Quote) -> Decimal:
        return quotes_service.totals(list(quote.lines.all())).total

    @staticmethod
    def resolve_status(quote: Quote) -> str:
        # A sent quote past its date is expired even before the hourly job marks it.
        return str(QuoteStatus.EXPIRED if quote.is_expired else quote.status)


class QuoteIn(Schema):
    deal_id: int
    contact_id: int | None = None
    title: str = Field(..., min_length=1, max_length=200)
    valid_until: date
    terms: str = Field("", max_length=10_000)
    lines: list[QuoteLineSchema] = Field(..., min_length=1, max_length=100)


class QuotePatch(Schema):
    """Only a draft changes; ``lines``, when given, replace all the lines."""

    contact_id: int | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    valid_until: date | None = None
    terms: str | None = Field(None, max_length=10_000)
    lines: list[QuoteLineSchema] | None = Field(None, min_length=1, max_length=100)


class QuotePage(Schema):
    items: list[QuoteOut]
    next_cursor: str | None


class QuoteFilters(Schema):
    deal_id: int | None = None
    contact_id: int | None = None
    status: QuoteStatus | None = None
    cursor: str | None = None
    limit: int = 50


def _quotes(request: ApiRequest) -> Any:
    return (
        Quote.objects.for_workspace(request.workspace)
        .select_related("workspace")
        .prefetch_related("lines")
    )


def _quote_error(exc: quotes_service.QuoteInvalid) -> ApiError:
    if exc.field == "status":
        return ApiError(409, "conflict", str(exc), {})
    return ApiError(422, "invalid", str(exc), {exc.field: [str(exc)]})


@router.get("/quotes", response=QuotePage)
def list_quotes(request: ApiRequest, filters: Query[QuoteFilters]) -> dict[str, Any]:
    """Quotes, newest first; filter by deal, contact and status."""
    found = _quotes(request)
    if filters.deal_id is not None:
        found = found.filter(deal_id=filters.deal_id)
    if filters.contact_id is not None:
        found = found.filter(contact_id=filters.contact_id)
    if filters.status:
        found = selectors.quotes_in_status(found, request.workspace, filters.status)
    return paginate(found, cursor=filters.cursor, limit=filters.limit)


@router.post("/quotes", response={201: QuoteOut})
def create_quote(request: ApiRequest, payload: QuoteIn) -> Status:
    """A draft quote on a deal; the number is given out by Patron."""
    deal = _one(request, Deal, payload.deal_id, "deal_id")
    try:
        quote = quotes_service.create_quote(
            deal=deal,
            title=payload.title,
            valid_until=payload.valid_until,
            contact=_one(request, Contact, payload.contact_id, "contact_id"),
            terms=payload.terms,
            lines=[line.dict() for line in payload.lines],
            actor=request.auth.created_by,
        )
    except quotes_service.QuoteInvalid as exc:
        raise _quote_error(exc) from exc
    return Status(201, get_object_or_404(_quotes(request), pk=quote.pk))


@router.get("/quotes/{quote_id}", response=QuoteOut)
def get_quote(request: ApiRequest, quote_id: int) -> Quote:
    return get_object_or_404(_quotes(request), pk=quote_id)


@router.patch("/quotes/{quote_id}", response=QuoteOut)
def update_quote(request: ApiRequest, quote_id: int, payload: QuotePatch) -> Quote:
    """Change a draft (409 once it was sent: copy it instead)."""
    quote = get_object_or_404(_quotes(request), pk=quote_id)
    data = payload.dict(exclude_unset=True)
    for name in ("title", "valid_until", "lines"):
        if name in data and data[name] is None:
            raise ApiError(422, "invalid", f"{name} cannot be null.", {name: ["cannot be null"]})
    try:
        quotes_service.update_quote(
            quote=quote,
            title=data.get("title"),
            valid_until=data.get("valid_until"),
            terms=data.get("terms"),
            contact=_one(request, Contact, data.get("contact_id"), "contact_id"),
            lines=[line.dict() for line in payload.lines] if payload.lines is not None else None,
        )
    except quotes_service.QuoteInvalid as exc:
        raise _quote_error(exc) from exc
    return get_object_or_404(_quotes(request), pk=quote_id)


@router.post("/quotes/{quote_id}/send", response=QuoteOut)
def send_quote(request: ApiRequest, quote_id: int) -> Quote:
    """Email the quote to its contact with the link to accept or decline it."""
    quote = get_object_or_404(_quotes(request), pk=quote_id)
    try:
        quotes_service.send_quote(quote=quote, actor=request.auth.created_by)
    except quotes_service.QuoteInvalid as exc:
        raise _quote_error(exc) from exc
    return get_object_or_404(_quotes(request), pk=quote_id)


@router.post("/quotes/{quote_id}/copy", response={201: QuoteOut})
def copy_quote(request: ApiRequest, quote_id: int) -> Status:
    """A new draft with the same lines (the way to change an offer once sent)."""
    quote = get_object_or_404(_quotes(request), pk=quote_id)
    copy = quotes_service.copy_quote(quote=quote, actor=request.auth.created_by)
    return Status(201, get_object_or_404(_quotes(request), pk=copy.pk))


@router.delete("/quotes/{quote_id}", response={204: None})
def delete_quote(request: ApiRequest, quote_id: int) -> Status:
    """Only a draft can be deleted: a sent quote is part of the deal's record."""
    quote = get_object_or_404(_quotes(request), pk=quote_id)
    try:
        quotes_service.delete_quote(quote=quote)
    except quotes_service.QuoteInvalid as exc:
        raise _quote_error(exc) from exc
    return Status(204, None)
