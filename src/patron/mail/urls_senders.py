"""Sender addresses: the settings pages, and the public page of the verification link."""

from django.urls import path

from patron.core.tenancy import register_url_parameter
from patron.mail import views_senders

app_name = "senders"

register_url_parameter("sender_id", "mail.SenderIdentity")

urlpatterns = [
    path("settings/senders/", views_senders.sender_list, name="list"),
    path("settings/senders/<int:sender_id>/", views_senders.sender_edit, name="edit"),
    path("settings/senders/<int:sender_id>/delete/", views_senders.sender_delete, name="delete"),
    path(
        "settings/senders/<int:sender_id>/verification/",
        views_senders.sender_resend,
        name="resend",
    ),
    path(
        "settings/senders/<int:sender_id>/default/",
        views_senders.sender_make_default,
        name="make_default",
    ),
    # Public: the link of the verification email (the token is checked by the view).
    path("senders/verify/<str:token>/", views_senders.sender_verify, name="verify"),
]
