"""One error format for the whole API: ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from patron.core.services import PermissionDenied
from patron.core.tenancy import UnscopedQuery
from patron.crm.custom_fields import CustomFieldInvalid
from patron.crm.services import InvalidField


class ApiError(Exception):
    """Raised by endpoints for a domain error with its own code and status."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _field_errors(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for err in errors:
        # ninja's loc is ("body", "payload", "email") / ("query", "limit"): keep the field path.
        # Only the leading location is dropped, so a field named "body" keeps its name.
        loc = [str(p) for p in err.get("loc", [])]
        if loc and loc[0] in {"body", "query", "path"}:
            loc = loc[1:]
            if loc and loc[0] == "payload":
                loc = loc[1:]
        fields.setdefault(".".join(loc) or "__all__", []).append(str(err.get("msg", "invalid")))
    return fields


def install_error_handlers(api: NinjaAPI) -> None:
    def respond(request: HttpRequest, status: int, body: dict) -> HttpResponse:
        return api.create_response(request, body, status=status)

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return respond(request, exc.status, error_body(exc.code, exc.message, exc.fields))

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return respond(
            request,
            422,
            error_body("invalid", "The request is not valid.", _field_errors(exc.errors)),
        )

    @api.exception_handler(AuthenticationError)
    def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return respond(
            request,
            401,
            error_body(
                "unauthenticated",
                "A valid API key is required in the Authorization header (Bearer <key>).",
            ),
        )

    @api.exception_handler(PermissionDenied)
    def permission_error(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return respond(request, 403, error_body("forbidden", str(exc)))

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, error_body("not_found", "Not found."))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = {
            400: "bad_request",
            401: "unauthenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            429: "rate_limited",
        }
        return respond(
            request, exc.status_code, error_body(code.get(exc.status_code, "error"), str(exc))
        )

    @api.exception_handler(CustomFieldInvalid)
    def custom_field_invalid(request: HttpRequest, exc: CustomFieldInvalid) -> HttpResponse:
        fields = {f"custom.{key}": [message] for key, message in exc.errors.items()}
        return respond(
            request, 422, error_body("invalid", "A custom field value is not valid.", fields)
        )

    @api.exception_handler(InvalidField)
    def invalid_field(request: HttpRequest, exc: InvalidField) -> HttpResponse:
        return respond(request, 422, error_body("invalid", str(exc), {exc.field: [str(exc)]}))

    @api.exception_handler(UnscopedQuery)
    def unscoped(request: HttpRequest, exc: UnscopedQuery) -> HttpResponse:
        # A programming error; never answer with data that might not be scoped.
        raise exc
