"""Marketing → Landing pages (list, builder, preview, publishing) and Marketing → Downloads
(the file library forms hand out)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from patron.capture import downloads, pages
from patron.capture.models import DownloadFile, LandingPage, PageStatus
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import MARKETING_EDIT
from patron.mail import blocks as builder

# The preview frame: the page's styles and images, nothing that runs.
PREVIEW_POLICY = (
    "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *"
)

# --- Downloads ------------------------------------------------------------------------


@workspace_view(MARKETING_EDIT)
def file_list(request: WorkspaceRequest) -> HttpResponse:
    """The download library; POST uploads a file."""
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise downloads.FileInvalid(_("Choose a file to upload."))
            item = downloads.upload_file(
                workspace=request.workspace,
                file=upload,
                name=upload.name or "",
                uploaded_by=request.user,
            )
        except downloads.FileInvalid as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("“%(name)s” uploaded.") % {"name": item.name})
        return redirect("capture:file_list")
    rows = downloads.files_for(request.workspace).select_related("uploaded_by")
    return render(
        request,
        "capture/file_list.html",
        {
            "rows": rows,
            "max_mb": downloads.max_bytes() // (1024 * 1024),
            "kinds": ", ".join(sorted({k.upper() for k in downloads.KINDS if k != "jpeg"})),
        },
    )


@workspace_view(MARKETING_EDIT)
@require_POST
def file_delete(request: WorkspaceRequest, download_file_id: int) -> HttpResponse:
    item = get_object_or_404(
        DownloadFile.objects.for_workspace(request.workspace), pk=download_file_id
    )
    name = item.name
    try:
        downloads.delete_file(file=item)
    except downloads.FileInUse as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("“%(name)s” deleted.") % {"name": name})
    return redirect("capture:file_list")


# --- Landing pages --------------------------------------------------------------------


class PageSettings(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    slug = forms.CharField(
        label=gettext_lazy("Address"),
        max_length=80,
        help_text=gettext_lazy("Lower-case letters, digits and hyphens, e.g. free-ebook."),
    )
    title = forms.CharField(
        label=gettext_lazy("Page title"),
        max_length=200,
        help_text=gettext_lazy("Shown in the browser tab, search results and shared links."),
    )
    meta_description = forms.CharField(
        label=gettext_lazy("Description"),
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("The text search engines and shared links show under the title."),
    )


def _page(request: WorkspaceRequest, landing_page_id: int) -> LandingPage:
    return get_object_or_404(
        LandingPage.objects.for_workspace(request.workspace).select_related("workspace"),
        pk=landing_page_id,
    )


def public_url(page: LandingPage) -> str:
    return settings.BASE_URL + reverse(
        "capture_public:landing_page", args=[page.workspace.slug, page.slug]
    )


@workspace_view(MARKETING_EDIT)
def page_list(request: WorkspaceRequest) -> HttpResponse:
    rows = list(LandingPage.objects.for_workspace(request.workspace).select_related("workspace"))
    stats = pages.page_stats(request.workspace, rows)
    return render(
        request,
        "capture/page_list.html",
        {"rows": [(page, stats[page.pk], public_url(page)) for page in rows]},
    )


def _editor(request: WorkspaceRequest, page: LandingPage | None, document: Any) -> dict[str, Any]:
    return {
        "document": json.dumps(document),
        "schema": builder.builder_schema(builder.PAGE),
        "segments": [],
        "forms": pages.form_choices(request.workspace),
        "images_url": reverse("mail_images:picker"),
        "upload_url": reverse("mail_images:list"),
        "preview_url": reverse("capture:page_preview"),
    }


@workspace_view(MARKETING_EDIT)
def page_new(request: WorkspaceRequest) -> HttpResponse:
    return _builder(request, None)


@workspace_view(MARKETING_EDIT)
def page_edit(request: WorkspaceRequest, landing_page_id: int) -> HttpResponse:
    return _builder(request, _page(request, landing_page_id))


def _posted_blocks(request: WorkspaceRequest) -> Any:
    try:
        return json.loads(request.POST.get("blocks") or "{}")
    except ValueError:
        return {}


def _builder(request: WorkspaceRequest, page: LandingPage | None) -> HttpResponse:
    if page is None:
        initial: dict[str, Any] = {}
        document: Any = pages.starter_document()
    else:
        initial = {
            "name": page.name,
            "slug": page.slug,
            "title": page.title,
            "meta_description": page.meta_description,
        }
        document = page.blocks
    errors: dict[str, str] = {}
    invalid_block = 0
    data = request.POST if request.method == "POST" else None
    settings_form = PageSettings(data, initial=initial)
    if data is not None:
        document = _posted_blocks(request)
        if settings_form.is_valid():
            values = {**settings_form.cleaned_data, "blocks": document}
            try:
                if page is None:
                    page = pages.create_page(
                        workspace=request.workspace, created_by=request.user, **values
                    )
                    messages.success(request, _("Page “%(name)s” created.") % {"name": page.name})
                else:
                    pages.update_page(page=page, actor=request.user, **values)
                    messages.success(request, _("Page “%(name)s” saved.") % {"name": page.name})
            except pages.PageInvalid as exc:
                invalid_block = exc.invalid_block
                for key, message in exc.errors.items():
                    if key in settings_form.fields:
                        settings_form.add_error(key, message)
                    else:
                        errors[key] = message
            else:
                return redirect("capture:page_edit", landing_page_id=page.pk)
    editor = _editor(request, page, document)
    editor["invalid_block"] = invalid_block
    return render(
        request,
        "capture/page_edit.html",
        {
            "page_obj": page,
            "settings_form": settings_form,
            "editor": editor,
            "errors": errors,
            "public_url": public_url(page) if page is not None else "",
            "published": page is not None and page.status == PageStatus.PUBLISHED,
        },
        status=400 if data is not None else 200,
    )


@xframe_options_sameorigin
@workspace_view(MARKETING_EDIT)
@require_POST
def page_preview(request: WorkspaceRequest) -> HttpResponse:
    """The page as built so far (posted by the builder into its sandboxed frame)."""
    from patron.capture.views_public import render_landing_page

    try:
        cleaned, html, styles = pages.compile_page(request.workspace, _posted_blocks(request))
    except pages.PageInvalid as exc:
        response = render(
            request, "mail/_preview_problem.html", {"problem": exc.errors.get("blocks", "")}
        )
    else:
        page = LandingPage(
            workspace=request.workspace,
            name=request.POST.get("name", ""),
            title=request.POST.get("title", "") or _("Preview"),
            meta_description=request.POST.get("meta_description", ""),
            blocks=cleaned,
            html=html,
            styles=styles,
        )
        response = render_landing_page(request, page, preview=True)
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *"
    )
    return response


@workspace_view(MARKETING_EDIT)
@require_POST
def page_publish(request: WorkspaceRequest, landing_page_id: int) -> HttpResponse:
    page = _page(request, landing_page_id)
    try:
        pages.publish_page(page=page, actor=request.user)
    except pages.PageInvalid as exc:
        messages.error(request, exc.errors.get("blocks", str(exc)))
    else:
        messages.success(
            request,
            _("Page “%(name)s” is published at %(url)s.")
            % {"name": page.name, "url": public_url(page)},
        )
    return redirect("capture:page_edit", landing_page_id=page.pk)


@workspace_view(MARKETING_EDIT)
@require_POST
def page_unpublish(request: WorkspaceRequest, landing_page_id: int) -> HttpResponse:
    page = _page(request, landing_page_id)
    pages.unpublish_page(page=page, actor=request.user)
    messages.success(request, _("Page “%(name)s” is a draft again.") % {"name": page.name})
    return redirect("capture:page_edit", landing_page_id=page.pk)


@workspace_view(MARKETING_EDIT)
@require_POST
def page_delete(request: WorkspaceRequest, landing_page_id: int) -> HttpResponse:
    page = _page(request, landing_page_id)
    name = page.name
    pages.delete_page(page=page, actor=request.user)
    messages.success(request, _("Page “%(name)s” deleted.") % {"name": name})
    return redirect("capture:page_list")
