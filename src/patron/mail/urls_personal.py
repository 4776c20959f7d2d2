"""One-to-one email from a contact's page."""

from django.urls import path

from patron.mail import views_personal

app_name = "personal"

urlpatterns = [
    path("contacts/<int:contact_id>/email/", views_personal.compose, name="compose"),
]
