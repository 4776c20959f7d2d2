from django.urls import path

from patron.capture import views, views_pages, views_popups
from patron.core.tenancy import register_url_parameter

app_name = "capture"

register_url_parameter("form_id", "capture.Form")
register_url_parameter("landing_page_id", "capture.LandingPage")
register_url_parameter("download_file_id", "capture.DownloadFile")
register_url_parameter("popup_id", "capture.Popup")

urlpatterns = [
    path("forms/", views.form_list, name="form_list"),
    path("forms/new/", views.form_new, name="form_new"),
    path("forms/<int:form_id>/", views.form_edit, name="form_edit"),
    path("forms/<int:form_id>/publish/", views.form_publish, name="form_publish"),
    path("forms/<int:form_id>/submissions/", views.form_submissions, name="form_submissions"),
    path(
        "forms/<int:form_id>/submissions/export/",
        views.form_submissions_export,
        name="form_submissions_export",
    ),
    path("forms/<int:form_id>/delete/", views.form_delete, name="form_delete"),
    path("popups/", views_popups.popup_list, name="popup_list"),
    path("popups/new/", views_popups.popup_new, name="popup_new"),
    path("popups/<int:popup_id>/", views_popups.popup_edit, name="popup_edit"),
    path("popups/<int:popup_id>/delete/", views_popups.popup_delete, name="popup_delete"),
    path("downloads/", views_pages.file_list, name="file_list"),
    path("downloads/<int:download_file_id>/delete/", views_pages.file_delete, name="file_delete"),
    path("landing-pages/", views_pages.page_list, name="page_list"),
    path("landing-pages/new/", views_pages.page_new, name="page_new"),
    path("landing-pages/preview/", views_pages.page_preview, name="page_preview"),
    path("landing-pages/<int:landing_page_id>/", views_pages.page_edit, name="page_edit"),
    path(
        "landing-pages/<int:landing_page_id>/publish/",
        views_pages.page_publish,
        name="page_publish",
    ),
    path(
        "landing-pages/<int:landing_page_id>/unpublish/",
        views_pages.page_unpublish,
        name="page_unpublish",
    ),
    path(
        "landing-pages/<int:landing_page_id>/delete/", views_pages.page_delete, name="page_delete"
    ),
]
