"""The public unsubscribe page (``/u/<token>/``) and preference centre
(``/u/<token>/preferences/``): the token is checked by the views."""

from django.urls import path

from patron.mail import views_unsubscribe

app_name = "unsubscribe"

urlpatterns = [
    path("u/<str:token>/", views_unsubscribe.unsubscribe, name="page"),
    path("u/<str:token>/preferences/", views_unsubscribe.preferences, name="preferences"),
]
