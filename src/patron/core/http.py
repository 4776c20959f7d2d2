"""Request types that the views of a workspace receive (for type checking)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from patron.core.models import ApiKey, Membership, User, Workspace


class AuthenticatedRequest(HttpRequest):
    """A request of a logged-in person (``login_required`` ran)."""

    user: User  # type: ignore[assignment]
    memberships: list[Membership]
    htmx: HtmxDetails


class WorkspaceRequest(AuthenticatedRequest):
    """A request that ``workspace_view`` let through: a member acting in a workspace."""

    workspace: Workspace
    membership: Membership


class ApiRequest(HttpRequest):
    """An API request authenticated by a workspace key."""

    auth: ApiKey
    workspace: Workspace
