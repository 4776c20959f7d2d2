from django.urls import path

from patron.core.tenancy import register_public_url_parameter, register_url_parameter
from patron.insights import views

app_name = "insights"

register_url_parameter("dashboard_id", "insights.Dashboard")
register_url_parameter("widget_id", "insights.Widget")
# A report's name (a key of patron.insights.catalog.REPORTS), not a row.
register_public_url_parameter("report")

urlpatterns = [
    path("reports/", views.index, name="index"),
    path("reports/dashboards/new/", views.dashboard_create, name="dashboard_create"),
    path("reports/dashboards/<int:dashboard_id>/", views.dashboard_detail, name="dashboard"),
    path(
        "reports/dashboards/<int:dashboard_id>/delete/",
        views.dashboard_delete,
        name="dashboard_delete",
    ),
    path("reports/dashboards/<int:dashboard_id>/widgets/new/", views.widget_add, name="widget_add"),
    path(
        "reports/dashboards/<int:dashboard_id>/email/",
        views.dashboard_schedule,
        name="dashboard_schedule",
    ),
    path("reports/widgets/<int:widget_id>/", views.widget_edit, name="widget_edit"),
    path("reports/widgets/<int:widget_id>/move/", views.widget_move, name="widget_move"),
    path("reports/widgets/<int:widget_id>/delete/", views.widget_delete, name="widget_delete"),
    path("reports/<slug:report>/", views.report, name="report"),
    path("reports/<slug:report>/export.csv", views.report_export, name="report_export"),
]
