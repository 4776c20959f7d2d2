"""The public unsubscribe page (``/u/<token>/``): the token is checked by the view."""

from django.urls import path

from patron.mail import views_unsubscribe

app_name = "unsubscribe"

urlpatterns = [
    path("u/<str:token>/", views_unsubscribe.unsubscribe, name="page"),
]
