"""The home page: where the day starts: the person's dashboard and the latest activity."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from patron.activity.models import Event
from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.crm.models import Company, Contact
from patron.insights.services import ensure_home_dashboard
from patron.insights.views import dashboard_context


@workspace_view()
def home(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    membership = request.membership
    demo = next(
        (m.workspace for m in request.memberships if m.workspace.is_demo),
        None,
    )
    context = {
        "demo_workspace": demo if demo is not None and demo != workspace else None,
        "contact_count": Contact.objects.for_workspace(workspace).count(),
        "company_count": Company.objects.for_workspace(workspace).count(),
        "recent_events": (
            Event.objects.for_workspace(workspace).order_by("-occurred_at", "-id")[:10]
            if membership.can("activity.view")
            else []
        ),
    }
    dashboard = ensure_home_dashboard(workspace=workspace, membership=membership)
    context.update(dashboard_context(request, dashboard))
    context["next"] = "home"
    return render(request, "home.html", context)
