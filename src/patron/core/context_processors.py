from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The current workspace, membership and the user's other workspaces."""
    from patron.core.models import Notification

    workspace = getattr(request, "workspace", None)
    unread = 0
    if workspace is not None:
        unread = (
            Notification.objects.for_workspace(workspace)
            .filter(user=request.user, read_at__isnull=True)
            .count()
        )
    return {
        "unread_notifications": unread,
        "workspace": workspace,
        "membership": getattr(request, "membership", None),
        "memberships": getattr(request, "memberships", []),
    }
