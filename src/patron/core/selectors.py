"""Reads for the core app."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from patron.core.models import (
    ApiKey,
    AuditEntry,
    Invitation,
    Membership,
    TaskFailure,
    User,
    Workspace,
)


def members(workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.for_workspace(workspace).select_related("user").order_by("user__email")
    )


def active_users(workspace: Workspace | int) -> QuerySet[User]:
    """The people who can act in the workspace now, by name: owners, assignees, organizers."""
    return User.objects.filter(
        memberships__workspace=workspace, memberships__is_active=True
    ).order_by("name", "email")


def open_invitations(workspace: Workspace) -> QuerySet[Invitation]:
    return (
        Invitation.objects.for_workspace(workspace)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def api_keys(workspace: Workspace) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.for_workspace(workspace)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )


def audit_log(workspace: Workspace) -> QuerySet[AuditEntry]:
    """The workspace's entries, plus personal ones (logins) of its members."""
    member_ids = Membership.objects.for_workspace(workspace).values("user_id")
    return AuditEntry.objects.filter(
        Q(workspace=workspace) | Q(workspace__isnull=True, actor_id__in=member_ids)
    ).order_by("-created_at", "-id")


def open_task_failures() -> QuerySet[TaskFailure]:
    return TaskFailure.objects.filter(retried_at__isnull=True, dismissed_at__isnull=True)
