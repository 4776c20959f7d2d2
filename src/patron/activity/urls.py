from django.urls import path

from patron.activity import views
from patron.core.tenancy import register_url_parameter

app_name = "activity"

register_url_parameter("event_id", "activity.Event")

urlpatterns = [
    path("", views.event_list, name="event_list"),
    path("<int:event_id>/", views.event_detail, name="event_detail"),
]
