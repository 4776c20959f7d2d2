from django.urls import path

from patron.automation import workflow_views as views
from patron.core.tenancy import register_url_parameter

app_name = "workflows"

register_url_parameter("workflow_id", "automation.Workflow")
register_url_parameter("enrolment_id", "automation.Enrolment")

urlpatterns = [
    path("workflows/", views.workflow_list, name="list"),
    path("workflows/new/", views.workflow_new, name="new"),
    path("workflows/install/", views.workflow_install, name="install"),
    path("workflows/<int:workflow_id>/", views.workflow_builder, name="builder"),
    path(
        "workflows/<int:workflow_id>/steps/delete/", views.workflow_step_delete, name="step_delete"
    ),
    path("workflows/<int:workflow_id>/publish/", views.workflow_publish, name="publish"),
    path("workflows/<int:workflow_id>/pause/", views.workflow_pause, name="pause"),
    path("workflows/<int:workflow_id>/test/", views.workflow_test, name="test"),
    path("workflows/<int:workflow_id>/enrolments/", views.workflow_enrolments, name="enrolments"),
    path("workflows/<int:workflow_id>/enrolments/add/", views.workflow_enrol, name="enrol"),
    path(
        "workflows/<int:workflow_id>/enrolments/<int:enrolment_id>/remove/",
        views.workflow_enrolment_remove,
        name="enrolment_remove",
    ),
    path("workflows/<int:workflow_id>/delete/", views.workflow_delete, name="delete"),
]
