"""Workspaces (tenants), users and their memberships, API keys, the audit log,
and the installation-level records of background work."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.roles import Role, has_permission
from patron.core.tenancy import TenantModel


class Workspace(models.Model):
    """One business: everything tenant-owned hangs from a workspace."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("short name"), max_length=60, unique=True)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    # Bulk mail skips role addresses (abuse@, postmaster@, noreply@, ... see
    # patron.audience.suppression.ROLE_LOCAL_PARTS) as if each were suppressed.
    suppress_role_addresses = models.BooleanField(
        _("treat role addresses as suppressed"), default=False
    )
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in. ``is_staff`` marks the installation's administrators."""

    email = models.EmailField(_("email"), unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_("Empty: the workspace's language."),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, help_text=_("Empty: the workspace's time zone.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("installation administrator"), default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()  # type: ignore[misc]

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.name or self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]


class Membership(TenantModel):
    """A user's seat in a workspace, with the role that decides what they may do."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")
        ]
        indexes = [models.Index(fields=["workspace", "role"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"

    def can(self, permission: str) -> bool:
        return self.is_active and has_permission(self.role, permission)


class Invitation(TenantModel):
    """An emailed invitation to join a workspace; the link carries a token we keep hashed."""

    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "email"])]

    def __str__(self) -> str:
        return self.email

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class ApiKey(TenantModel):
    """A workspace's key for the REST API. Only a SHA-256 of the secret is stored."""

    name = models.CharField(_("name"), max_length=100)
    # The first characters of the key, shown so people can tell keys apart.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditAction(models.TextChoices):
    LOGIN = "auth.login", _("Logged in")
    LOGIN_FAILED = "auth.login_failed", _("Failed login")
    LOGOUT = "auth.logout", _("Logged out")
    PASSWORD_RESET_REQUESTED = "auth.password_reset_requested", _("Password reset requested")
    PASSWORD_CHANGED = "auth.password_changed", _("Password changed")
    WORKSPACE_CREATED = "workspace.created", _("Workspace created")
    SETTINGS_CHANGED = "workspace.settings_changed", _("Workspace settings changed")
    MEMBER_INVITED = "member.invited", _("Member invited")
    INVITATION_REVOKED = "member.invitation_revoked", _("Invitation revoked")
    MEMBER_JOINED = "member.joined", _("Member joined")
    ROLE_CHANGED = "member.role_changed", _("Role changed")
    MEMBER_REMOVED = "member.removed", _("Member removed")
    API_KEY_CREATED = "api_key.created", _("API key created")
    API_KEY_REVOKED = "api_key.revoked", _("API key revoked")
    DATA_EXPORTED = "data.exported", _("Data exported")
    RECORDS_DELETED = "records.deleted", _("Records deleted")
    TASK_RETRIED = "task.retried", _("Background task retried")


class AuditEntry(models.Model):
    """A security-relevant action. Entries are written once and never changed.

    ``workspace`` is empty for actions of a person rather than a workspace
    (logins, password changes); those show in every workspace the person
    belongs to.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    target = models.CharField(max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["actor", "-created_at"]),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"


class TaskFailure(models.Model):
    """A background task that failed: kept until it is retried or dismissed."""

    task_path = models.CharField(max_length=255)
    task_result_id = models.CharField(max_length=64, blank=True)
    backend = models.CharField(max_length=32)
    queue_name = models.CharField(max_length=64, default="default")
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    error_class = models.CharField(max_length=255)
    traceback = models.TextField()
    failed_at = models.DateTimeField(default=timezone.now)
    retried_at = models.DateTimeField(null=True, blank=True)
    retried_as = models.CharField(max_length=64, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at", "-id"]
        indexes = [models.Index(fields=["retried_at", "dismissed_at", "-failed_at"])]

    def __str__(self) -> str:
        return f"{self.task_path}: {self.error_class}"

    @property
    def is_open(self) -> bool:
        return self.retried_at is None and self.dismissed_at is None


class ScheduledJob(models.Model):
    """When each periodic job is next due. A row per job, claimed with a conditional update."""

    name = models.CharField(max_length=128, unique=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_task_result_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return self.name


class Notification(TenantModel):
    """A message for one person in one workspace (reminders, hand-offs), shown in the app."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    text = models.CharField(max_length=300)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "user", "read_at"], name="notification_inbox")]

    def __str__(self) -> str:
        return self.text
