"""The REST API: ``/api/v1/``, OpenAPI docs at ``/api/v1/docs`` (and ``/api/docs``)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI, Schema

from patron.activity.api import router as activity_router
from patron.api.auth import ApiKeyAuth
from patron.api.errors import install_error_handlers
from patron.audience.api_lists import router as lists_router
from patron.audience.api_segments import router as segments_router
from patron.audience.api_suppression import router as suppression_router
from patron.automation.api_workflows import router as workflows_router
from patron.capture.api import router as forms_router
from patron.core.api import router as core_router
from patron.crm.api import router as crm_router
from patron.insights.api import router as insights_router
from patron.mail.api_campaigns import router as campaigns_router
from patron.mail.api_delivery import router as delivery_router
from patron.mail.api_reports import router as reports_router
from patron.mail.api_senders import router as senders_router
from patron.mail.api_templates import router as templates_router
from patron.tracking.api import router as tracking_router

api = NinjaAPI(
    title="Patron API",
    version="1",
    urls_namespace="api",
    auth=ApiKeyAuth(),
    docs_url="/docs",
    description=(
        "Every request carries a workspace API key: `Authorization: Bearer <key>`. "
        'Errors answer `{"error": {"code", "message", "fields"}}`; lists answer '
        '`{"items", "next_cursor"}` and take `?cursor=` and `?limit=`.'
    ),
)
install_error_handlers(api)


class Health(Schema):
    status: str


@api.get("/health", auth=None, response=Health, tags=["health"])
def health(request: HttpRequest) -> dict[str, str]:
    """Liveness and database reachability; no key needed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok"}


api.add_router("/", core_router)
api.add_router("/events", activity_router)
api.add_router("/", tracking_router)
api.add_router("/", crm_router)
api.add_router("/", segments_router)
api.add_router("/", lists_router)
api.add_router("/", suppression_router)
api.add_router("/", senders_router)
# Before the campaigns' routes: /campaigns/compare is not a campaign's id.
api.add_router("/", reports_router)
api.add_router("/", campaigns_router)
api.add_router("/", delivery_router)
api.add_router("/", templates_router)
api.add_router("/", forms_router)
api.add_router("/", workflows_router)
api.add_router("/reports", insights_router)
