"""The Outbox: mail the capture transport kept instead of sending."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import OUTBOX_VIEW
from patron.mail.selectors import outbox_for


def _messages(request: WorkspaceRequest):  # type: ignore[no-untyped-def]
    return outbox_for(workspace=request.workspace, user=request.user)


@workspace_view(OUTBOX_VIEW)
def outbox(request: WorkspaceRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    messages_qs = _messages(request)
    if query:
        messages_qs = messages_qs.filter(subject__icontains=query) | messages_qs.filter(
            to__icontains=query
        )
    page = Paginator(messages_qs.order_by("-created_at", "-id"), 50).get_page(
        request.GET.get("page")
    )
    template = "mail/_outbox_rows.html" if request.htmx else "mail/outbox.html"
    return render(
        request,
        template,
        {"page_obj": page, "query": query, "query_string": f"q={query}" if query else ""},
    )


@workspace_view(OUTBOX_VIEW)
def message_detail(request: WorkspaceRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(_messages(request).defer(None), pk=message_id)
    return render(
        request,
        "mail/message.html",
        {"message": message, "raw": bytes(message.raw).decode("utf-8", "replace")},
    )


# Mail HTML shown in Patron's pages (the Outbox, previews) is untrusted content:
# no scripts, no forms, no same-origin access; images, styles and fonts load.
SANDBOX_POLICY = (
    "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *"
)


def sandboxed_html(html: str) -> HttpResponse:
    """``html`` as a page for a sandboxed iframe of one of Patron's own pages."""
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = SANDBOX_POLICY
    return response


@xframe_options_sameorigin
@workspace_view(OUTBOX_VIEW)
def message_html(request: WorkspaceRequest, message_id: int) -> HttpResponse:
    """The HTML part alone, for the sandboxed iframe of the message page."""
    message = get_object_or_404(_messages(request), pk=message_id)
    return sandboxed_html(message.html_body or "")
