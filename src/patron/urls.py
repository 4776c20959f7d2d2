from django.urls import include, path
from django.views.generic import RedirectView

from patron.api.urls import api
from patron.capture import urls_public as _capture_converters  # noqa: F401 (formkey)
from patron.capture.views_public import api_submit
from patron.home import home

urlpatterns = [
    path("", home, name="home"),
    path("", include("patron.core.urls")),
    path("activity/", include("patron.activity.urls")),
    path("outbox/", include("patron.mail.urls")),
    path("campaigns/", include("patron.mail.urls_campaigns")),
    path("", include("patron.mail.urls_senders")),
    path("", include("patron.mail.urls_public")),
    path("", include("patron.tracking.urls")),
    path("", include("patron.tracking.urls_sites")),
    path("", include("patron.mail.urls_delivery")),
    path("", include("patron.mail.urls_templates")),
    path("", include("patron.mail.urls_unsubscribe")),
    path("", include("patron.mail.urls_personal")),
    path("", include("patron.mail.urls_esp_webhooks")),
    path("", include("patron.crm.urls")),
    path("", include("patron.audience.urls")),
    path("", include("patron.capture.urls")),
    path("", include("patron.capture.urls_public")),
    path("", include("patron.automation.urls_workflows")),
    path("", include("patron.automation.urls_scoring")),
    path("", include("patron.insights.urls")),
    # Before the API's own routes: a public endpoint (no key) with its own CORS answer.
    path(
        "api/v1/forms/<formkey:form_key>/submissions",
        api_submit,
        name="capture_api_submit",
    ),
    path("api/v1/", api.urls),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False), name="api_docs"),
]
