"""Public URLs of campaign mail (tokens are checked by the views)."""

from django.urls import path

from patron.mail import views_public

app_name = "mail_public"

urlpatterns = [
    path("m/<str:token>/", views_public.view_in_browser, name="view"),
]
