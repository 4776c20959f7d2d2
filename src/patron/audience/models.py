"""Who receives what: lists, subscriptions with their consent history, suppression, segments.

A **list** is a static set of contacts with a public face (the name and
description shown in the preference centre). A contact's place on a list is a
**subscription** with a status; every change of that status appends a
**consent record** (source, time, IP, user agent, the text shown), which is
never updated or deleted, so the history of who agreed to what survives.

The **suppression** list is workspace-wide and keyed by address, not contact:
an address that bounced or complained stays unmailable whichever contact
carries it, and whatever list it is on.

A **segment** is a filter tree (``definition``) compiled to one SQL query by
``patron.audience.segments``; ``SegmentMembership`` keeps who was in it at the
last evaluation so entering and leaving can be recorded as events.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel

DEFAULT_CONFIRMATION_SUBJECT = "Please confirm your subscription to {{ list.name }}"
DEFAULT_CONFIRMATION_BODY = (
    'Hello {{ contact.first_name | default: "there" }},\n\n'
    "please confirm that you want to receive {{ list.name }} from {{ workspace.name }}:\n\n"
    "{{ confirm_url }}\n\n"
    "If you did not ask for this, ignore this message and you will not hear from us.\n"
)


class MailingList(TenantModel):
    """A static list of contacts people subscribe to."""

    name = models.CharField(_("name"), max_length=100)
    public_name = models.CharField(
        _("public name"),
        max_length=100,
        blank=True,
        help_text=_("What subscribers see in the preference centre; the name when empty."),
    )
    description = models.TextField(_("public description"), blank=True)
    double_opt_in = models.BooleanField(
        _("double opt-in"),
        default=False,
        help_text=_("New subscribers confirm by a link in an email before they are mailed."),
    )
    confirmation_subject = models.CharField(
        _("confirmation subject"), max_length=200, default=DEFAULT_CONFIRMATION_SUBJECT
    )
    confirmation_body = models.TextField(
        _("confirmation message"), default=DEFAULT_CONFIRMATION_BODY
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("list")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="mailing_list_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.public_name or self.name


class SubscriptionStatus(models.TextChoices):
    SUBSCRIBED = "subscribed", _("Subscribed")
    PENDING = "pending", _("Pending confirmation")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    CLEANED = "cleaned", _("Cleaned")


class ConsentSource(models.TextChoices):
    MANUAL = "manual", _("Added by a user")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    FORM = "form", _("Form")
    WORKFLOW = "workflow", _("Workflow")
    CONFIRMATION = "confirmation", _("Confirmation link")
    PREFERENCES = "preferences", _("Preference centre")
    UNSUBSCRIBE_LINK = "unsubscribe_link", _("Unsubscribe link")
    BOUNCE = "bounce", _("Bounce")
    COMPLAINT = "complaint", _("Spam complaint")


class Subscription(TenantModel):
    """One contact on one list, with its current status."""

    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="subscriptions"
    )
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="subscriptions"
    )
    status = models.CharField(_("status"), max_length=20, choices=SubscriptionStatus.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        constraints = [
            models.UniqueConstraint(
                fields=["mailing_list", "contact"], name="subscription_unique_contact"
            )
        ]
        indexes = [
            models.Index(
                fields=["workspace", "mailing_list", "status"], name="subscription_list_status"
            ),
            models.Index(fields=["workspace", "contact"], name="subscription_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} on {self.mailing_list_id}: {self.status}"


class ConsentRecord(TenantModel):
    """One change of a subscription, as it happened. Appended, never changed."""

    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The list's name when the record was written, kept when the list is deleted.
    list_name = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=SubscriptionStatus.choices)
    source = models.CharField(max_length=20, choices=ConsentSource.choices)
    consent_text = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What else is known: the campaign an unsubscribe came from, the form, the import.
    details = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("consent record")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "contact", "-occurred_at"], name="consent_contact")
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.status} ({self.source})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError("Consent records are appended, never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("Consent records are kept; they are deleted only with their contact.")


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed from all")
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    SOFT_BOUNCE = "soft_bounce", _("Repeated soft bounces")
    COMPLAINT = "complaint", _("Spam complaint")
    MANUAL = "manual", _("Added by hand")
    ROLE = "role", _("Role address")


class Suppression(TenantModel):
    """An address the workspace never mails in bulk, whichever contact or list it is on."""

    email = models.CharField(_("email"), max_length=254)  # stored lower-cased
    reason = models.CharField(_("reason"), max_length=20, choices=SuppressionReason.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("suppressed address")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email"], name="suppression_unique_email")
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class Segment(TenantModel):
    """A saved filter tree over contacts, compiled to SQL whenever it is used."""

    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=300, blank=True)
    definition = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Membership bookkeeping: size and time of the last full or partial evaluation.
    member_count = models.PositiveIntegerField(default=0)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("segment")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("name"), name="segment_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(TenantModel):
    """A contact that was in a segment at its last evaluation."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="segment_membership_unique")
        ]
        indexes = [models.Index(fields=["workspace", "contact"], name="segment_membership_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"
