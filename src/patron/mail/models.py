"""Captured outgoing mail (the Outbox of the embedded transport), and the
workspace's sender identities (verified From addresses for campaigns)."""

from __future__ import annotations

from email.utils import formataddr

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel


class OutboxMessage(models.Model):
    """A message the capture transport kept instead of sending.

    ``workspace`` is set for mail sent on a workspace's behalf and empty for
    the installation's own mail (password resets), which only installation
    administrators see.
    """

    workspace = models.ForeignKey(
        "core.Workspace", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    message_id = models.CharField(max_length=255, blank=True)
    from_address = models.CharField(max_length=320)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=list, blank=True)
    raw = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="outbox_workspace")]

    def __str__(self) -> str:
        return self.subject or "(no subject)"

    @property
    def recipients(self) -> str:
        return ", ".join([*self.to, *self.cc, *self.bcc])


class SenderIdentity(TenantModel):
    """An address campaigns may send from, once its owner proved it by a link.

    ``from_email`` keeps the local part as typed and the domain in lower case;
    it is unique per workspace in any case. Changing it clears ``verified_at``,
    since the proof was for the old address. At most one identity per workspace
    is the default (a partial unique constraint keeps it so).
    """

    from_name = models.CharField(_("from name"), max_length=100)
    from_email = models.EmailField(_("from address"), max_length=254)
    reply_to = models.EmailField(_("reply-to address"), max_length=254, blank=True)
    postal_address = models.TextField(
        _("postal address"),
        help_text=_("Printed in every campaign from this address, as the law asks."),
    )
    is_default = models.BooleanField(_("default"), default=False)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    verification_sent_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("sender address")
        ordering = ["-is_default", "from_email", "id"]
        constraints = [
            models.UniqueConstraint(
                "workspace", Lower("from_email"), name="sender_identity_unique_email"
            ),
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(is_default=True),
                name="sender_identity_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.formatted

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def formatted(self) -> str:
        """The From header: ``"Name" <address>``, quoted and encoded as mail needs."""
        return formataddr((self.from_name, self.from_email))


class ReceivedBounce(TenantModel):
    """A message that arrived at a ``bounce+<token>`` (VERP) address, kept as received.

    The inbound server stores it and nothing more; reading the delivery report
    (which address, hard or soft, the code) is the bounce processing's work,
    which marks the row ``processed_at`` when done.
    """

    # The delivery the VERP token names (the message that bounced).
    delivery_id = models.BigIntegerField()
    recipient = models.CharField(max_length=320)
    envelope_from = models.CharField(max_length=320, blank=True)
    raw = models.BinaryField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            models.Index(
                fields=["workspace", "received_at"],
                name="received_bounce_pending",
                condition=models.Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"bounce of delivery {self.delivery_id}"


class SendLimitBucket(models.Model):
    """A token bucket of the sending speed limits, when they are kept in the database.

    Installation-wide (not a tenant table): the limits protect the mail
    servers, whichever workspace sends. ``tokens`` were left at ``updated_at``
    (Unix time); ``patron.mail.throttle`` refills them at the limit's rate.
    """

    key = models.CharField(max_length=300, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.FloatField()

    def __str__(self) -> str:
        return self.key


class SendLimitSlot(models.Model):
    """One sender holding one of a recipient domain's concurrent slots, until ``expires_at``."""

    key = models.CharField(max_length=300)
    holder = models.CharField(max_length=64, unique=True)
    expires_at = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["key", "expires_at"], name="send_slot_key")]

    def __str__(self) -> str:
        return f"{self.key} {self.holder}"
