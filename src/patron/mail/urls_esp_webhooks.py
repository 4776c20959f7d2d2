"""Event webhooks of the email service providers (``/hooks/esp/<provider>/<token>/``):
the signed token and the provider's own checks are verified by the view."""

from django.urls import path

from patron.core.tenancy import register_public_url_parameter
from patron.mail import esp_webhooks

app_name = "esp_webhooks"

register_public_url_parameter("provider")

urlpatterns = [
    path("hooks/esp/<str:provider>/<str:token>/", esp_webhooks.esp_webhook, name="receive"),
]
