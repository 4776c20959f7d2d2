"""Pages of the core app: signing in, switching workspace, workspace settings,
members and invitations, API keys, the audit log, the profile, background tasks."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from patron.core import selectors, services
from patron.core.background import NotRetryable, dismiss_failed_task, retry_failed_task
from patron.core.decorators import staff_view, workspace_view
from patron.core.forms import (
    AcceptInvitationForm,
    ApiKeyForm,
    InviteForm,
    ProfileForm,
    RoleForm,
    WorkspaceSettingsForm,
)
from patron.core.http import AuthenticatedRequest, WorkspaceRequest
from patron.core.middleware import SESSION_WORKSPACE_KEY
from patron.core.models import (
    ApiKey,
    Invitation,
    Membership,
    Notification,
    ScheduledJob,
    TaskFailure,
    User,
)
from patron.core.roles import (
    API_KEYS_MANAGE,
    AUDIT_VIEW,
    GRANTABLE,
    MEMBERS_MANAGE,
    SENDERS_MANAGE,
    SETTINGS_MANAGE,
)
from patron.core.signals import request_info


@login_required
def no_workspace(request: AuthenticatedRequest) -> HttpResponse:
    if getattr(request, "membership", None) is not None:
        return redirect("home")
    return render(request, "core/no_workspace.html")


@login_required
@require_POST
def switch_workspace(request: AuthenticatedRequest) -> HttpResponse:
    try:
        workspace_id = int(request.POST.get("workspace", ""))
    except ValueError:
        workspace_id = 0
    chosen = next(
        (m for m in request.memberships if m.workspace_id == workspace_id),
        None,
    )
    if chosen is None:
        messages.error(request, _("You are not a member of that workspace."))
        return redirect("home")
    request.session[SESSION_WORKSPACE_KEY] = chosen.workspace_id
    messages.success(request, _("Switched to %(name)s.") % {"name": chosen.workspace.name})
    # Object pages belong to the previous workspace: go to the same area's start.
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    area = "/" + next_url.strip("/").split("/")[0] + "/" if next_url.strip("/") else "/"
    return redirect(area)


@workspace_view()
def workspace_settings(request: WorkspaceRequest) -> HttpResponse:
    if not request.membership.can(SETTINGS_MANAGE):
        # Marketing keeps the sender addresses without the general settings.
        if request.membership.can(SENDERS_MANAGE):
            return redirect("senders:list")
        raise PermissionDenied
    workspace = request.workspace
    initial = {
        "name": workspace.name,
        "language": workspace.language,
        "time_zone": workspace.time_zone,
        "currency": workspace.currency,
    }
    form = WorkspaceSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.update_workspace_settings(
            workspace=workspace, actor=request.user, **form.cleaned_data
        )
        messages.success(request, _("Settings saved."))
        return redirect("core:settings")
    return render(request, "core/settings_general.html", {"form": form, "tab": "general"})


@workspace_view(MEMBERS_MANAGE)
def members(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    membership = request.membership
    grantable = GRANTABLE.get(membership.role, frozenset())
    form = InviteForm(request.POST or None, grantable=grantable)
    if request.method == "POST" and form.is_valid():
        try:
            services.invite_member(
                workspace=workspace,
                actor_membership=membership,
                request_info=request_info(request),
                **form.cleaned_data,
            )
        except services.PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]}
            )
            return redirect("core:members")
    return render(
        request,
        "core/settings_members.html",
        {
            "tab": "members",
            "form": form,
            "members": selectors.members(workspace),
            "invitations": selectors.open_invitations(workspace),
            "role_form": RoleForm(),
            "grantable": grantable,
        },
    )


def _member(request: WorkspaceRequest, membership_id: int) -> Membership:
    return get_object_or_404(
        selectors.members(request.workspace),
        pk=membership_id,
    )


@workspace_view(MEMBERS_MANAGE)
@require_POST
def change_role(request: WorkspaceRequest, membership_id: int) -> HttpResponse:
    target = _member(request, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid role."))
        return redirect("core:members")
    try:
        services.change_member_role(
            membership=target,
            actor_membership=request.membership,
            role=form.cleaned_data["role"],
            request_info=request_info(request),
        )
    except (services.PermissionDenied, services.LastOwner) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Role of %(email)s changed.") % {"email": target.user.email})
    return redirect("core:members")


@workspace_view(MEMBERS_MANAGE)
@require_POST
def remove_member(request: WorkspaceRequest, membership_id: int) -> HttpResponse:
    target = _member(request, membership_id)
    try:
        services.remove_member(
            membership=target,
            actor_membership=request.membership,
            request_info=request_info(request),
        )
    except (services.PermissionDenied, services.LastOwner) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(email)s was removed.") % {"email": target.user.email})
    return redirect("core:members")


@workspace_view(MEMBERS_MANAGE)
@require_POST
def revoke_invitation(request: WorkspaceRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(
        Invitation.objects.for_workspace(request.workspace),
        pk=invitation_id,
    )
    services.revoke_invitation(
        invitation=invitation, actor=request.user, request_info=request_info(request)
    )
    messages.success(request, _("Invitation to %(email)s revoked.") % {"email": invitation.email})
    return redirect("core:members")


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Public: the link from the invitation email."""
    try:
        invitation = services.find_open_invitation(token)
    except services.InvitationInvalid as exc:
        return render(request, "core/invitation_invalid.html", {"error": str(exc)}, status=404)
    user = request.user if isinstance(request.user, User) else None
    needs_account = user is None
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and (not needs_account or form.is_valid()):
        try:
            membership = services.accept_invitation(
                token=token,
                user=user,
                name=form.cleaned_data.get("name", "") if needs_account else "",
                password=form.cleaned_data.get("password") if needs_account else None,
                request_info=request_info(request),
            )
        except services.InvitationInvalid as exc:
            messages.error(request, str(exc))
            return redirect("core:login")
        if needs_account:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_WORKSPACE_KEY] = membership.workspace_id
        messages.success(request, _("Welcome to %(name)s.") % {"name": invitation.workspace.name})
        return redirect("home")
    return render(
        request,
        "core/accept_invitation.html",
        {"invitation": invitation, "form": form, "needs_account": needs_account},
    )


NEW_API_KEY_SESSION_KEY = "patron_new_api_key"


@workspace_view(API_KEYS_MANAGE)
def api_keys(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        created = services.create_api_key(
            workspace=workspace,
            name=form.cleaned_data["name"],
            created_by=request.user,
            request_info=request_info(request),
        )
        # Kept in the session only until the next page shows it once; redirecting
        # means a reload cannot create a second key.
        request.session[NEW_API_KEY_SESSION_KEY] = created.secret
        return redirect("core:api_keys")
    new_secret = request.session.pop(NEW_API_KEY_SESSION_KEY, None)
    response = render(
        request,
        "core/settings_api_keys.html",
        {
            "tab": "api_keys",
            "form": form,
            "keys": selectors.api_keys(workspace),
            "new_secret": new_secret,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@workspace_view(API_KEYS_MANAGE)
@require_POST
def revoke_api_key(request: WorkspaceRequest, api_key_id: int) -> HttpResponse:
    api_key = get_object_or_404(
        ApiKey.objects.for_workspace(request.workspace),
        pk=api_key_id,
    )
    services.revoke_api_key(api_key=api_key, actor=request.user, request_info=request_info(request))
    messages.success(request, _("API key “%(name)s” revoked.") % {"name": api_key.name})
    return redirect("core:api_keys")


@workspace_view(AUDIT_VIEW)
def audit_log(request: WorkspaceRequest) -> HttpResponse:
    entries = selectors.audit_log(request.workspace).select_related("actor")
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "core/settings_audit.html", {"tab": "audit", "page_obj": page})


@login_required
def profile(request: AuthenticatedRequest) -> HttpResponse:
    user = request.user
    initial = {"name": user.name, "language": user.language, "time_zone": user.time_zone}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.set_user_preferences(user=user, **form.cleaned_data)  # type: ignore[arg-type]
        messages.success(request, _("Profile saved."))
        return redirect("core:profile")
    return render(request, "core/profile.html", {"form": form})


@staff_view
def background_tasks(request: AuthenticatedRequest) -> HttpResponse:
    failures = Paginator(selectors.open_task_failures(), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "core/background_tasks.html",
        {"page_obj": failures, "jobs": ScheduledJob.objects.order_by("name")},
    )


@staff_view
@require_POST
def retry_task(request: AuthenticatedRequest, failure_id: int) -> HttpResponse:
    failure = get_object_or_404(TaskFailure, pk=failure_id)
    try:
        result_id = retry_failed_task(failure=failure, actor=request.user)
    except NotRetryable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Task queued again (%(id)s).") % {"id": result_id})
    return redirect("core:background_tasks")


@staff_view
@require_POST
def dismiss_task(request: AuthenticatedRequest, failure_id: int) -> HttpResponse:
    failure = get_object_or_404(TaskFailure, pk=failure_id)
    dismiss_failed_task(failure=failure)
    messages.success(request, _("Failure dismissed."))
    return redirect("core:background_tasks")


@workspace_view()
def notifications(request: WorkspaceRequest) -> HttpResponse:
    if request.method == "POST":
        services.mark_notifications_read(workspace=request.workspace, user=request.user)
        return redirect("core:notifications")
    items = Notification.objects.for_workspace(request.workspace).filter(user=request.user)
    page = Paginator(items, 50).get_page(request.GET.get("page"))
    return render(request, "core/notifications.html", {"page_obj": page})
