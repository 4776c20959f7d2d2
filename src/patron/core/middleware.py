"""Request glue: which workspace a request acts in, and its language and time zone."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation

from patron.core.models import Membership

SESSION_WORKSPACE_KEY = "patron_workspace_id"


def _activate_time_zone(name: str) -> None:
    try:
        timezone.activate(zoneinfo.ZoneInfo(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        timezone.deactivate()


class WorkspaceMiddleware:
    """Sets ``request.workspace`` and ``request.membership`` for logged-in users.

    The workspace is the one chosen in the session (the switcher), else the
    user's first. Language and time zone come from the user, then the workspace.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.workspace = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        request.memberships = []  # type: ignore[attr-defined]
        user = request.user
        language = None
        zone = "UTC"
        if user.is_authenticated:
            memberships = list(
                Membership.objects.unscoped()
                .filter(user=user, is_active=True)
                .select_related("workspace")
                .order_by("workspace__name")
            )
            request.memberships = memberships  # type: ignore[attr-defined]
            chosen = request.session.get(SESSION_WORKSPACE_KEY)
            current = next((m for m in memberships if m.workspace_id == chosen), None)
            if current is None and memberships:
                # The workspace the person joined first (usually their own business).
                current = min(memberships, key=lambda m: (m.created_at, m.pk))
                request.session[SESSION_WORKSPACE_KEY] = current.workspace_id
            if current is not None:
                request.workspace = current.workspace  # type: ignore[attr-defined]
                request.membership = current  # type: ignore[attr-defined]
                language = user.language or current.workspace.language
                zone = user.time_zone or current.workspace.time_zone
            else:
                language = user.language or None
                zone = user.time_zone or "UTC"
        if language is None:
            language = translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()  # type: ignore[attr-defined]
        _activate_time_zone(zone)
        try:
            response = self.get_response(request)
        finally:
            timezone.deactivate()
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)  # type: ignore[attr-defined]
        return response
