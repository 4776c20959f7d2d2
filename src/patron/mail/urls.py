from django.urls import path

from patron.core.tenancy import register_url_parameter
from patron.mail import views

app_name = "mail"

register_url_parameter("message_id", "mail.OutboxMessage")

urlpatterns = [
    path("", views.outbox, name="outbox"),
    path("<int:message_id>/", views.message_detail, name="message"),
    path("<int:message_id>/html/", views.message_html, name="message_html"),
]
