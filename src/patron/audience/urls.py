from django.urls import path

from patron.audience import views_segments, views_suppression
from patron.core.tenancy import register_url_parameter

app_name = "audience"

register_url_parameter("segment_id", "audience.Segment")
register_url_parameter("suppression_id", "audience.Suppression")

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
    path("suppression/", views_suppression.suppression_list, name="suppression_list"),
    path("suppression/add/", views_suppression.suppression_add, name="suppression_add"),
    path(
        "suppression/role-addresses/",
        views_suppression.suppression_role_setting,
        name="suppression_role_setting",
    ),
    path("suppression/import/", views_suppression.suppression_import, name="suppression_import"),
    path(
        "suppression/import/report/",
        views_suppression.suppression_import_report,
        name="suppression_import_report",
    ),
    path("suppression/export/", views_suppression.suppression_export, name="suppression_export"),
    path(
        "suppression/<int:suppression_id>/remove/",
        views_suppression.suppression_remove,
        name="suppression_remove",
    ),
]
