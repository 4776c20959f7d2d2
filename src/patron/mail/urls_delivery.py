"""Settings → Email delivery and Settings → Sending domains."""

from django.urls import path

from patron.core.tenancy import register_url_parameter
from patron.mail import views_delivery

app_name = "delivery"

register_url_parameter("smtp_server_id", "mail.WorkspaceSmtpServer")
register_url_parameter("sending_domain_id", "mail.SendingDomain")
register_url_parameter("received_bounce_id", "mail.ReceivedBounce")

urlpatterns = [
    path("settings/delivery/", views_delivery.delivery_settings, name="settings"),
    path("settings/delivery/test/", views_delivery.delivery_test, name="test"),
    path("settings/delivery/webhook-key/", views_delivery.webhook_key, name="webhook_key"),
    path("settings/delivery/servers/", views_delivery.smtp_server_add, name="server_add"),
    path(
        "settings/delivery/servers/<int:smtp_server_id>/",
        views_delivery.smtp_server_edit,
        name="server_edit",
    ),
    path(
        "settings/delivery/servers/<int:smtp_server_id>/delete/",
        views_delivery.smtp_server_delete,
        name="server_delete",
    ),
    path("settings/delivery/reports/", views_delivery.received_reports, name="reports"),
    path(
        "settings/delivery/reports/<int:received_bounce_id>/raw/",
        views_delivery.received_report_raw,
        name="report_raw",
    ),
    path("settings/domains/", views_delivery.sending_domain_list, name="domains"),
    path(
        "settings/domains/<int:sending_domain_id>/",
        views_delivery.sending_domain_detail,
        name="domain",
    ),
    path(
        "settings/domains/<int:sending_domain_id>/delete/",
        views_delivery.sending_domain_delete,
        name="domain_delete",
    ),
]
