"""Campaign pages: the list, a new campaign, the draft editor, progress, and the report."""

from django.urls import path

from patron.core.tenancy import register_url_parameter
from patron.mail import views_campaigns as views
from patron.mail import views_reports

app_name = "campaigns"

register_url_parameter("campaign_id", "mail.Campaign")

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("audience-count/", views.audience_count, name="audience_count"),
    path("compare/", views_reports.compare_campaigns, name="compare"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/save/", views.campaign_save, name="save"),
    path("<int:campaign_id>/progress/", views.campaign_progress, name="progress"),
    path("<int:campaign_id>/preview/", views.campaign_preview, name="preview"),
    path("<int:campaign_id>/preview/html/", views.campaign_preview_html, name="preview_html"),
    path("<int:campaign_id>/test/", views.campaign_test, name="test"),
    path("<int:campaign_id>/schedule/", views.campaign_schedule, name="schedule"),
    path("<int:campaign_id>/unschedule/", views.campaign_unschedule, name="unschedule"),
    path("<int:campaign_id>/pause/", views.campaign_pause, name="pause"),
    path("<int:campaign_id>/resume/", views.campaign_resume, name="resume"),
    path("<int:campaign_id>/cancel/", views.campaign_cancel, name="cancel"),
    path("<int:campaign_id>/duplicate/", views.campaign_duplicate, name="duplicate"),
    path("<int:campaign_id>/delete/", views.campaign_delete, name="delete"),
    path("<int:campaign_id>/recipients/", views.campaign_recipients, name="recipients"),
    path("<int:campaign_id>/report/", views_reports.campaign_report, name="report"),
    path(
        "<int:campaign_id>/report/recipients/",
        views_reports.report_recipients,
        name="report_recipients",
    ),
    path("<int:campaign_id>/report/segment/", views_reports.report_segment, name="report_segment"),
]
