"""Public tracking addresses (tokens are checked by the views)."""

from django.urls import path

from patron.tracking import views

app_name = "tracking"

urlpatterns = [
    path("t/o/<str:token>", views.open_pixel, name="open"),
    path("t/c/<str:token>", views.click, name="click"),
    path("t/e", views.collect, name="collect"),
]
