"""API: email templates (``/email-templates``) and their checks; the image library
(``/images``).

``blocks`` is the builder's document (see ``patron.mail.blocks``); when given,
the body is generated from it and any ``body`` sent with it is ignored.
Sending ``body`` alone on a template made in the builder turns it into a code
template (the design is dropped), as the code view's switch does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.shortcuts import get_object_or_404
from ninja import File, Query, Router, Schema, Status, UploadedFile

from patron.api.errors import ApiError
from patron.api.pagination import paginate
from patron.core.http import ApiRequest
from patron.mail import images, templates_service
from patron.mail.models import EmailTemplate, MailImage

router = Router(tags=["mail"])


class TemplateOut(Schema):
    id: int
    name: str
    kind: str
    format: str
    subject: str
    preheader: str
    body: str
    text: str
    blocks: dict[str, Any]
    starter: str
    created_at: datetime
    updated_at: datetime


class TemplatePage(Schema):
    items: list[TemplateOut]
    next_cursor: str | None


class TemplateIn(Schema):
    name: str
    kind: str = "marketing"
    format: str | None = None
    subject: str = ""
    preheader: str = ""
    body: str | None = None
    text: str = ""
    blocks: dict[str, Any] | None = None
    starter: str | None = None


class TemplatePatch(Schema):
    name: str | None = None
    kind: str | None = None
    format: str | None = None
    subject: str | None = None
    preheader: str | None = None
    body: str | None = None
    text: str | None = None
    blocks: dict[str, Any] | None = None


class ProblemOut(Schema):
    code: str
    message: str
    part: str
    line: int | None
    column: int | None
    blocking: bool


class TemplateFilters(Schema):
    kind: str | None = None
    cursor: str | None = None
    limit: int = 50


def _templates(request: ApiRequest) -> Any:
    return templates_service.templates_for(request.workspace)


def _invalid(error: templates_service.TemplateInvalid) -> ApiError:
    return ApiError(
        422, "invalid", str(error), {field: [message] for field, message in error.errors.items()}
    )


@router.get("/email-templates", response=TemplatePage)
def list_templates(request: ApiRequest, filters: Query[TemplateFilters]) -> dict[str, Any]:
    """The workspace's templates; ``?kind=marketing`` or ``personal``."""
    rows = _templates(request)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    return paginate(rows.order_by("id"), cursor=filters.cursor, limit=filters.limit)


@router.post("/email-templates", response={201: TemplateOut})
def create_template(request: ApiRequest, payload: TemplateIn) -> Status:
    """A new template; ``starter`` (e.g. "newsletter") copies a starter design first."""
    values = {key: value for key, value in payload.dict().items() if value is not None}
    starter = values.pop("starter", "")
    try:
        if starter:
            template = templates_service.create_from_starter(
                request.workspace, user=None, key=starter, name=values.get("name", "")
            )
        else:
            template = templates_service.create_template(
                request.workspace, user=None, values=values
            )
    except templates_service.TemplateInvalid as error:
        raise _invalid(error) from error
    return Status(201, template)


@router.get("/email-templates/{template_id}", response=TemplateOut)
def get_template(request: ApiRequest, template_id: int) -> EmailTemplate:
    return get_object_or_404(_templates(request), pk=template_id)  # type: ignore[no-any-return]


@router.patch("/email-templates/{template_id}", response=TemplateOut)
def update_template(request: ApiRequest, template_id: int, payload: TemplatePatch) -> EmailTemplate:
    template = get_object_or_404(_templates(request), pk=template_id)
    try:
        return templates_service.update_template(
            template, user=None, values=payload.dict(exclude_unset=True)
        )
    except templates_service.TemplateInvalid as error:
        raise _invalid(error) from error


@router.delete("/email-templates/{template_id}", response={204: None})
def delete_template(request: ApiRequest, template_id: int) -> Status:
    template = get_object_or_404(_templates(request), pk=template_id)
    templates_service.delete_template(template, user=None)
    return Status(204, None)


@router.get("/email-templates/{template_id}/checks", response=list[ProblemOut])
def check_template(request: ApiRequest, template_id: int) -> list[Any]:
    """What would stop or spoil a send: blocking problems first, then warnings."""
    template = get_object_or_404(_templates(request), pk=template_id)
    return templates_service.check_content(request.workspace, template)


# --- The image library ---------------------------------------------------------------------


class ImageOut(Schema):
    id: int
    name: str
    url: str
    width: int
    height: int
    size: int
    content_type: str
    created_at: datetime

    @staticmethod
    def resolve_url(image: MailImage) -> str:
        return images.public_url(image)


class ImagePage(Schema):
    items: list[ImageOut]
    next_cursor: str | None


class ImageFilters(Schema):
    cursor: str | None = None
    limit: int = 50


@router.get("/images", response=ImagePage)
def list_images(request: ApiRequest, filters: Query[ImageFilters]) -> dict[str, Any]:
    """The image library; ``url`` is the public address to use in mail."""
    rows = images.images_for(request.workspace).order_by("id")
    return paginate(rows, cursor=filters.cursor, limit=filters.limit)


@router.post("/images", response={201: ImageOut})
def upload_image(request: ApiRequest, file: File[UploadedFile]) -> Status:
    """Upload one image (multipart field ``file``): PNG, JPEG, GIF or WebP up to 5 MB."""
    try:
        image = images.upload_image(request.workspace, user=None, file=file, name=file.name or "")
    except images.ImageInvalid as error:
        raise ApiError(422, "invalid", str(error), {"file": [str(error)]}) from error
    return Status(201, image)


@router.get("/images/{image_id}", response=ImageOut)
def get_image(request: ApiRequest, image_id: int) -> MailImage:
    return get_object_or_404(images.images_for(request.workspace), pk=image_id)  # type: ignore[no-any-return]


@router.delete("/images/{image_id}", response={204: None})
def delete_image(request: ApiRequest, image_id: int) -> Status:
    images.delete_image(get_object_or_404(images.images_for(request.workspace), pk=image_id))
    return Status(204, None)
