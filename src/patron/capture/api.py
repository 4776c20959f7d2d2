"""API: forms and their submissions (read). Submitting is public: see ``views_public``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Query, Router, Schema

from patron.api.pagination import paginate
from patron.capture import services
from patron.capture.models import Form
from patron.core.http import ApiRequest

router = Router(tags=["forms"])


class FieldOut(Schema):
    key: str
    label: str
    maps_to: str
    required: bool
    hidden: bool
    placeholder: str = ""
    default: str = ""
    source: str = ""


class FormOut(Schema):
    id: int
    name: str
    key: str
    title: str
    fields: list[FieldOut]
    submit_label: str
    consent_text: str
    consent_required: bool
    list_ids: list[int]
    tags: list[str]
    success_message: str
    redirect_url: str
    notify_user_id: int | None
    allowed_origins: list[str]
    download_file_id: int | None
    download_days: int
    email_download: bool
    follow_up: str
    deal_stage_id: int | None
    ticket_priority: str
    hosted_url: str
    submit_url: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_list_ids(form: Form) -> list[int]:
        return sorted(item.pk for item in form.lists.all())

    @staticmethod
    def resolve_hosted_url(form: Form) -> str:
        return settings.BASE_URL + reverse("capture_public:hosted", args=[form.key])

    @staticmethod
    def resolve_submit_url(form: Form) -> str:
        return settings.BASE_URL + reverse("capture_api_submit", args=[form.key])


class FormPage(Schema):
    items: list[FormOut]
    next_cursor: str | None


class SubmissionOut(Schema):
    id: int
    form_id: int
    contact_id: int | None
    values: dict[str, Any]
    consent_given: bool
    page_url: str
    referrer: str
    ip_address: str | None
    user_agent: str
    visitor_id: str
    submitted_at: datetime


class SubmissionPage(Schema):
    items: list[SubmissionOut]
    next_cursor: str | None


class PageFilters(Schema):
    cursor: str | None = None
    limit: int = 50


def _forms(request: ApiRequest) -> Any:
    return Form.objects.for_workspace(request.workspace).prefetch_related("lists")


@router.get("/forms", response=FormPage)
def list_forms(request: ApiRequest, filters: Query[PageFilters]) -> dict[str, Any]:
    return paginate(_forms(request), cursor=filters.cursor, limit=filters.limit)


@router.get("/forms/{form_id}", response=FormOut)
def get_form(request: ApiRequest, form_id: int) -> Form:
    return get_object_or_404(_forms(request), pk=form_id)


@router.get("/forms/{form_id}/submissions", response=SubmissionPage)
def list_submissions(
    request: ApiRequest, form_id: int, filters: Query[PageFilters]
) -> dict[str, Any]:
    form = get_object_or_404(_forms(request), pk=form_id)
    rows: Any = services.submissions(form)
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


# --- Download library and landing pages (read) ------------------------------------------


class DownloadFileOut(Schema):
    id: int
    name: str
    size: int
    content_type: str
    uploaded_at: datetime


class DownloadFilePage(Schema):
    items: list[DownloadFileOut]
    next_cursor: str | None


class LandingPageOut(Schema):
    id: int
    name: str
    slug: str
    title: str
    meta_description: str
    status: str
    published_at: datetime | None
    url: str
    views: int
    visitors: int
    submissions: int
    conversion: float | None
    created_at: datetime
    updated_at: datetime


class LandingPagePage(Schema):
    items: list[LandingPageOut]
    next_cursor: str | None


def _describe_pages(workspace: Any, rows: list[Any]) -> list[dict[str, Any]]:
    from patron.capture import pages

    stats = pages.page_stats(workspace, rows)
    return [
        {
            **{
                name: getattr(page, name)
                for name in (
                    "id",
                    "name",
                    "slug",
                    "title",
                    "meta_description",
                    "status",
                    "published_at",
                    "created_at",
                    "updated_at",
                )
            },
            "url": settings.BASE_URL
            + reverse("capture_public:landing_page", args=[page.workspace.slug, page.slug]),
            "views": stats[page.pk].views,
            "visitors": stats[page.pk].visitors,
            "submissions": stats[page.pk].submissions,
            "conversion": stats[page.pk].conversion,
        }
        for page in rows
    ]


def _landing_pages(request: ApiRequest) -> Any:
    from patron.capture.models import LandingPage

    return LandingPage.objects.for_workspace(request.workspace).select_related("workspace")


@router.get("/download-files", response=DownloadFilePage)
def list_download_files(request: ApiRequest, filters: Query[PageFilters]) -> dict[str, Any]:
    """The download library (files are given out only through forms' signed links)."""
    from patron.capture.models import DownloadFile

    rows = DownloadFile.objects.for_workspace(request.workspace)
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


@router.get("/landing-pages", response=LandingPagePage)
def list_landing_pages(request: ApiRequest, filters: Query[PageFilters]) -> dict[str, Any]:
    """Landing pages with their address and numbers (views, unique visitors, submissions,
    conversion = submissions per unique visitor)."""
    result = paginate(_landing_pages(request), cursor=filters.cursor, limit=filters.limit)
    result["items"] = _describe_pages(request.workspace, list(result["items"]))
    return result


@router.get("/landing-pages/{landing_page_id}", response=LandingPageOut)
def get_landing_page(request: ApiRequest, landing_page_id: int) -> dict[str, Any]:
    page = get_object_or_404(_landing_pages(request), pk=landing_page_id)
    return _describe_pages(request.workspace, [page])[0]
