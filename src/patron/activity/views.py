"""The Activity page: everything that happened in the workspace."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from patron.activity import selectors
from patron.activity.kinds import EVENT_KINDS
from patron.activity.models import Event
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.roles import ACTIVITY_VIEW


@workspace_view(ACTIVITY_VIEW)
def event_list(request: WorkspaceRequest) -> HttpResponse:
    kind = request.GET.get("kind") or None
    if kind not in EVENT_KINDS:
        kind = None
    events = selectors.events_for_workspace(request.workspace, kind=kind)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "activity/event_list.html",
        {
            "page_obj": page,
            "kind": kind or "",
            "kinds": selectors.kind_choices(),
            "query_string": f"kind={kind}" if kind else "",
        },
    )


@workspace_view(ACTIVITY_VIEW)
def event_detail(request: WorkspaceRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(
        Event.objects.for_workspace(request.workspace).select_related("actor"),
        pk=event_id,
    )
    return render(request, "activity/event_detail.html", {"event": event})
