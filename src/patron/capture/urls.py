from django.urls import path

from patron.capture import views
from patron.core.tenancy import register_url_parameter

app_name = "capture"

register_url_parameter("form_id", "capture.Form")

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
]
