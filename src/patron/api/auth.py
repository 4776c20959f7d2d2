"""API-key authentication: ``Authorization: Bearer <key>`` (or ``X-API-Key: <key>``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from patron.core.models import ApiKey
from patron.core.services import authenticate_api_key


class ApiKeyAuth(HttpBearer):
    def __call__(self, request: HttpRequest) -> Any:
        header_key = request.headers.get("X-API-Key")
        if header_key:
            return self.authenticate(request, header_key)
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        api_key = authenticate_api_key(token)
        if api_key is not None:
            request.workspace = api_key.workspace  # type: ignore[attr-defined]
        return api_key
