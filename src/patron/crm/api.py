"""API: contacts and companies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from pydantic import EmailStr

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.core.http import ApiRequest
from patron.core.models import User
from patron.crm import services
from patron.crm.models import Company, Contact, LifecycleStage

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
    created_at: datetime
    updated_at: datetime


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
    city: str
    country: str
    owner_id: int | None
    created_at: datetime
    updated_at: datetime


class CompanyIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    domain: str = Field("", max_length=253)
    industry: str = Field("", max_length=100)
    size: int | None = Field(None, ge=0)
    annual_revenue: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    phone: str = Field("", max_length=50)
    city: str = Field("", max_length=100)
    country: str = Field("", max_length=100)
    owner_id: int | None = None


class CompanyPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    domain: str | None = Field(None, max_length=253)
    industry: str | None = Field(None, max_length=100)
    size: int | None = Field(None, ge=0)
    annual_revenue: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    phone: str | None = Field(None, max_length=50)
    city: str | None = Field(None, max_length=100)
    country: str | None = Field(None, max_length=100)
    owner_id: int | None = None


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
    return Contact.objects.for_workspace(request.workspace)


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
