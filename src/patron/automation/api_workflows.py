"""API: workflows, their enrolments, and enrolling or removing a contact.

Custom events that trigger workflows come in through ``POST /events``
(``patron.activity.api``), e.g. ``{"kind": "custom.event", "contact_id": 7,
"properties": {"name": "cart_abandoned", "cart_url": "..."}}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.automation import workflows
from patron.automation.models import Enrolment, EnrolmentStatus, Workflow
from patron.core.http import ApiRequest
from patron.crm.models import Contact

router = Router(tags=["workflows"])


class WorkflowOut(Schema):
    id: int
    name: str
    description: str
    status: str
    trigger_type: str
    published_version: int | None
    graph: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_published_version(workflow: Workflow) -> int | None:
        return workflow.published.number if workflow.published else None

    @staticmethod
    def resolve_graph(workflow: Workflow) -> dict[str, Any]:
        return workflow.published.graph if workflow.published else workflow.draft


class WorkflowPage(Schema):
    items: list[WorkflowOut]
    next_cursor: str | None


class EnrolmentOut(Schema):
    id: int
    workflow_id: int
    version: int
    contact_id: int
    status: str
    step: str
    next_wake_at: datetime | None
    attempts: int
    last_error: str
    source: str
    entered_at: datetime
    finished_at: datetime | None

    @staticmethod
    def resolve_version(enrolment: Enrolment) -> int:
        return enrolment.version.number


class EnrolmentPage(Schema):
    items: list[EnrolmentOut]
    next_cursor: str | None


class EnrolmentFilters(Schema):
    status: str | None = None
    contact_id: int | None = None
    cursor: str | None = None
    limit: int = 50


class PageFilters(Schema):
    cursor: str | None = None
    limit: int = 50


class EnrolIn(Schema):
    contact_id: int


def _workflow(request: ApiRequest, workflow_id: int) -> Workflow:
    return get_object_or_404(
        Workflow.objects.for_workspace(request.workspace).select_related("published"),
        pk=workflow_id,
    )


@router.get("/workflows", response=WorkflowPage)
def list_workflows(request: ApiRequest, filters: Query[PageFilters]) -> dict[str, Any]:
    rows = Workflow.objects.for_workspace(request.workspace).select_related("published")
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


@router.get("/workflows/{workflow_id}", response=WorkflowOut)
def get_workflow(request: ApiRequest, workflow_id: int) -> Workflow:
    return _workflow(request, workflow_id)


@router.get("/workflows/{workflow_id}/enrolments", response=EnrolmentPage)
def list_enrolments(
    request: ApiRequest, workflow_id: int, filters: Query[EnrolmentFilters]
) -> dict[str, Any]:
    workflow = _workflow(request, workflow_id)
    rows = (
        Enrolment.objects.for_workspace(request.workspace)
        .filter(workflow=workflow)
        .select_related("version")
    )
    if filters.status:
        if filters.status not in EnrolmentStatus.values:
            raise ApiError(
                422,
                "invalid",
                "Unknown status.",
                {"status": [f"one of: {', '.join(EnrolmentStatus.values)}"]},
            )
        rows = rows.filter(status=filters.status)
    if filters.contact_id is not None:
        rows = rows.filter(contact_id=filters.contact_id)
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


@router.post("/workflows/{workflow_id}/enrolments", response={201: EnrolmentOut})
def enrol(request: ApiRequest, workflow_id: int, payload: EnrolIn) -> Status:
    """Enrol a contact (the workflow must be active; its re-enrolment rule applies)."""
    workflow = _workflow(request, workflow_id)
    contact = Contact.objects.for_workspace(request.workspace).filter(pk=payload.contact_id).first()
    if contact is None:
        raise ApiError(
            422, "invalid", "No contact with this id.", {"contact_id": ["unknown contact"]}
        )
    try:
        enrolment = workflows.enrol_contact(workflow=workflow, contact=contact, source="api")
    except workflows.WorkflowInvalid as error:
        raise ApiError(409, "conflict", str(error)) from None
    return Status(201, enrolment)


@router.post("/workflows/{workflow_id}/enrolments/{enrolment_id}/remove", response=EnrolmentOut)
def remove(request: ApiRequest, workflow_id: int, enrolment_id: int) -> Enrolment:
    """Take the contact out: the steps it has not run yet will not run."""
    workflow = _workflow(request, workflow_id)
    enrolment = get_object_or_404(
        Enrolment.objects.for_workspace(request.workspace)
        .filter(workflow=workflow)
        .select_related("version"),
        pk=enrolment_id,
    )
    try:
        return workflows.remove_enrolment(enrolment=enrolment)
    except workflows.WorkflowInvalid as error:
        raise ApiError(409, "conflict", str(error)) from None
