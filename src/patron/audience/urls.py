from django.urls import path

from patron.audience import views_segments
from patron.core.tenancy import register_url_parameter

app_name = "audience"

register_url_parameter("segment_id", "audience.Segment")

urlpatterns = [
    path("segments/", views_segments.segment_list, name="segment_list"),
    path("segments/new/", views_segments.segment_new, name="segment_new"),
    path("segments/count/", views_segments.segment_count, name="segment_count"),
    path("segments/<int:segment_id>/", views_segments.segment_detail, name="segment_detail"),
    path(
        "segments/<int:segment_id>/delete/",
        views_segments.segment_delete,
        name="segment_delete",
    ),
]
