from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from patron.core import views
from patron.core.forms_auth import LoginForm, PasswordResetForm
from patron.core.tenancy import register_public_url_parameter, register_url_parameter

app_name = "core"

register_url_parameter("membership_id", "core.Membership")
register_url_parameter("invitation_id", "core.Invitation")
register_url_parameter("api_key_id", "core.ApiKey")
# Installation-level rows, for installation administrators only.
register_public_url_parameter("failure_id")
# Secrets checked by the views themselves.
register_public_url_parameter("token")
register_public_url_parameter("uidb64")

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="core/login.html",
            authentication_form=LoginForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            template_name="core/password_reset.html",
            form_class=PasswordResetForm,
            email_template_name="core/email/password_reset.txt",
            html_email_template_name="core/email/password_reset.html",
            subject_template_name="core/email/password_reset_subject.txt",
            success_url=reverse_lazy("core:password_reset_done"),
            # Links are built from the configured base URL, never from the Host header.
            extra_email_context={"base_url": settings.BASE_URL},
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="core/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="core/password_reset_confirm.html",
            success_url=reverse_lazy("core:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="core/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="core/password_change.html",
            success_url=reverse_lazy("core:profile"),
        ),
        name="password_change",
    ),
    path("no-workspace/", views.no_workspace, name="no_workspace"),
    path("workspace/switch/", views.switch_workspace, name="switch_workspace"),
    path("invitations/<token>/", views.accept_invitation, name="accept_invitation"),
    path("settings/", views.workspace_settings, name="settings"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/<int:membership_id>/role/", views.change_role, name="change_role"),
    path("settings/members/<int:membership_id>/remove/", views.remove_member, name="remove_member"),
    path(
        "settings/invitations/<int:invitation_id>/revoke/",
        views.revoke_invitation,
        name="revoke_invitation",
    ),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<int:api_key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
    path("settings/audit-log/", views.audit_log, name="audit_log"),
    path("profile/", views.profile, name="profile"),
    path("notifications/", views.notifications, name="notifications"),
    path("system/tasks/", views.background_tasks, name="background_tasks"),
    path("system/tasks/<int:failure_id>/retry/", views.retry_task, name="retry_task"),
    path("system/tasks/<int:failure_id>/dismiss/", views.dismiss_task, name="dismiss_task"),
]
