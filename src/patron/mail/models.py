"""Captured outgoing mail (the Outbox of the embedded transport), the
workspace's sender identities (verified From addresses for campaigns), and
campaigns with their deliveries (the recipient snapshot the send pipeline works
through, in chunks)."""

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


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class AbMetric(models.TextChoices):
    """How an A/B test's winner is chosen (see ``patron.mail.ab_tests``)."""

    OPEN_RATE = "open_rate", _("Unique open rate")
    CLICK_RATE = "click_rate", _("Click-through rate")
    REVENUE = "revenue", _("Revenue per recipient")


class Campaign(TenantModel):
    """One email sent to an audience: its content, its sender, when, and how far it got.

    The status moves draft -> scheduled -> sending -> sent, with paused <->
    sending, and cancelled from scheduled, sending or paused; only
    ``patron.mail.campaigns`` changes it (see ``TRANSITIONS`` there). The
    counters are kept by the send pipeline; ``total`` is the number of
    recipients in the snapshot taken when sending starts.
    """

    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(
        _("status"), max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    sender = models.ForeignKey(
        SenderIdentity,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sender address"),
    )
    reply_to = models.EmailField(_("reply-to address"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    preheader = models.CharField(_("preheader"), max_length=300, blank=True)
    format = models.CharField(
        _("format"),
        max_length=8,
        choices=[("mjml", "MJML"), ("html", "HTML")],
        default="mjml",
    )
    body = models.TextField(_("body"), blank=True)
    blocks = models.JSONField(default=list, blank=True)
    text = models.TextField(_("plain text"), blank=True)
    audience = models.JSONField(default=dict, blank=True)
    # Carries a workflow's email step (``patron.mail.automated``): contacts are added as
    # they reach the step; listed apart from the campaigns people send.
    automated = models.BooleanField(default=False)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    local_time = models.BooleanField(_("in each recipient's time zone"), default=False)
    track_opens = models.BooleanField(_("track opens"), default=True)
    track_clicks = models.BooleanField(_("track clicks"), default=True)
    # UTM parameters added to every web link of the message when ``utm`` is on;
    # an empty ``utm_campaign`` means the campaign's name made into a slug.
    utm = models.BooleanField(_("add UTM parameters to links"), default=False)
    utm_source = models.CharField(_("utm_source"), max_length=100, default="patron")
    utm_medium = models.CharField(_("utm_medium"), max_length=100, default="email")
    utm_campaign = models.CharField(_("utm_campaign"), max_length=100, blank=True)
    # An A/B test (``patron.mail.ab_tests``): the campaign's own subject, preheader and
    # sender name are variant A; ``ab_variants`` lists the others (B, C, D), each a
    # {"subject", "preheader", "from_name"} whose empty values mean "as variant A".
    # ``ab_share`` percent of the recipients, split evenly, get a variant at the start;
    # ``ab_wait_hours`` later the variant with the best ``ab_metric`` wins and the rest
    # get it. ``ab_decide_at``, ``ab_winner`` (0 is A), ``ab_confidence`` (0..1) and
    # ``ab_decided_at`` are written by the send.
    ab_test = models.BooleanField(_("A/B test"), default=False)
    ab_variants = models.JSONField(default=list, blank=True)
    ab_share = models.PositiveSmallIntegerField(_("test share (%)"), default=20)
    ab_metric = models.CharField(
        _("winner by"), max_length=12, choices=AbMetric.choices, default=AbMetric.OPEN_RATE
    )
    ab_wait_hours = models.PositiveSmallIntegerField(_("hours before the winner"), default=4)
    ab_decide_at = models.DateTimeField(null=True, blank=True)
    ab_winner = models.SmallIntegerField(null=True, blank=True)
    ab_confidence = models.FloatField(null=True, blank=True)
    ab_decided_at = models.DateTimeField(null=True, blank=True)
    # When the scheduler starts the send: ``send_at``, or for a local-time send the
    # moment ``send_at``'s wall-clock time first arrives anywhere (UTC+14).
    start_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.IntegerField(default=0)
    sent = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    # Why the last start or send step could not go on (shown beside the status).
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("campaign")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="campaign_created"),
            # The scheduler's "what is due / what is sending" reads span workspaces.
            models.Index(fields=["status", "start_at"], name="campaign_due"),
            # The scheduler's "which A/B tests are due" read.
            models.Index(
                fields=["ab_decide_at"],
                name="campaign_ab_due",
                condition=models.Q(ab_decide_at__isnull=False, ab_decided_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class BounceType(models.TextChoices):
    """A permanent failure (the address does not work) or a temporary one."""

    HARD = "hard", _("Hard")
    SOFT = "soft", _("Soft")


class Delivery(TenantModel):
    """One message to one contact: a row of a campaign's recipient snapshot.

    Rows are written set-based when the send starts and each is sent once.
    A worker claims a row by setting ``status = sending`` with a lease
    (``lease_until``); a row whose lease expired (its worker died) is claimed
    again. ``not_before`` holds the row back: the recipient's local send time,
    the backoff after a temporary failure, or (``ab_tests.HELD``) until an A/B
    test's winner is known. ``variant`` is the A/B test variant the row was
    picked for (0 is A); empty for the rest of the audience (they get the winner)
    and for campaigns without a test. ``contact_id`` is a plain column,
    like the activity log's: the record of what was sent outlives the contact.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    contact_id = models.BigIntegerField()
    email = models.CharField(max_length=254)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    attempts = models.SmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    smtp_code = models.SmallIntegerField(null=True, blank=True)
    reply = models.CharField(max_length=1000, blank=True)
    # What became of the message after it left: set by bounce and complaint
    # processing and by unsubscribes that name the campaign.
    bounce = models.CharField(
        max_length=4, choices=BounceType.choices, blank=True, default="", db_default=""
    )
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    variant = models.SmallIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(fields=["workspace", "contact_id"], name="delivery_contact"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contact_id"], name="delivery_one_per_contact"
            ),
            models.UniqueConstraint(fields=["campaign", "email"], name="delivery_one_per_address"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"


class ChunkState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    WAITING = "waiting", _("Waiting")
    DONE = "done", _("Done")


class SendChunk(TenantModel):
    """An id range of a campaign's deliveries, the unit of work handed to a worker.

    ``queued``: a task (``task_id``) was enqueued at ``touched_at``; ``running``: a worker
    works on it and refreshes ``touched_at`` after each batch; ``waiting``:
    its remaining rows are held back until ``wake_at`` (local send times,
    retry backoff) or the campaign is paused; ``done``: every row is final.
    The scheduler re-enqueues a running chunk whose worker stopped refreshing
    it, a queued chunk whose task a worker took but never started (it died
    first), and wakes waiting chunks when they are due.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    state = models.CharField(max_length=10, choices=ChunkState.choices, default=ChunkState.QUEUED)
    touched_at = models.DateTimeField(default=timezone.now)
    wake_at = models.DateTimeField(null=True, blank=True)
    # The result id of the task last enqueued for the chunk (empty: none known).
    task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["state", "touched_at"], name="send_chunk_state")]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.first_id}-{self.last_id} ({self.state})"


class BounceResult(models.TextChoices):
    """What reading a received report led to."""

    HARD = "hard", _("Hard bounce")
    SOFT = "soft", _("Soft bounce")
    COMPLAINT = "complaint", _("Spam complaint")
    DELAYED = "delayed", _("Delayed, still trying")
    REPEATED = "repeated", _("Known already")
    IGNORED = "ignored", _("Nothing to do")
    UNREADABLE = "unreadable", _("Could not be read")


class ReceivedBounce(TenantModel):
    """A message that arrived at a ``bounce+<token>`` (VERP) address, or a feedback report
    (ARF) that arrived at ``fbl@``/``abuse@``, kept as received.

    The inbound server stores it; bounce processing (``patron.mail.feedback``)
    reads it, applies it to the delivery, and marks the row ``processed_at``
    with its ``result``; a report it could not read or apply keeps ``problem``
    (why), for a person to look at: nothing is dropped.
    """

    # The delivery the VERP token names (the message that bounced).
    delivery_id = models.BigIntegerField()
    recipient = models.CharField(max_length=320)
    envelope_from = models.CharField(max_length=320, blank=True)
    raw = models.BinaryField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=12, choices=BounceResult.choices, blank=True)
    problem = models.TextField(blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            models.Index(
                fields=["workspace", "received_at"],
                name="received_bounce_pending",
                condition=models.Q(processed_at__isnull=True),
            ),
            # A report received again (a retrying sender, a mailbox polled twice) is found
            # among its delivery's reports, not by reading them all.
            models.Index(fields=["workspace", "delivery_id"], name="received_bounce_delivery"),
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


# --- Delivery: how a workspace's mail leaves, and its DKIM keys ------------------------------


class DeliveryMode(models.TextChoices):
    DEFAULT = "default", _("Installation default")
    CAPTURE = "capture", _("Keep in the Outbox (send nothing)")
    SMTP = "smtp", _("SMTP servers")
    ESP = "esp", _("Email service provider")


class EspProvider(models.TextChoices):
    AMAZON_SES = "amazon_ses", _("Amazon SES")
    SENDGRID = "sendgrid", _("SendGrid")
    MAILGUN = "mailgun", _("Mailgun")
    POSTMARK = "postmark", _("Postmark")


class DeliveryConfig(TenantModel):
    """How one workspace's mail is delivered (at most one row per workspace; none means
    the installation default).

    The ESP fields keep the last provider's settings while another mode is chosen, so
    switching back does not ask for the key again. ``esp_secret`` is encrypted
    (``patron.core.crypto``): the SES secret access key, the SendGrid or Mailgun API
    key, or the Postmark server token.
    """

    mode = models.CharField(
        _("delivery method"), max_length=10, choices=DeliveryMode.choices, default="default"
    )
    esp_provider = models.CharField(max_length=20, choices=EspProvider.choices, blank=True)
    esp_region = models.CharField(max_length=40, blank=True)
    esp_access_key_id = models.CharField(max_length=128, blank=True)
    esp_domain = models.CharField(max_length=253, blank=True)
    esp_secret = models.TextField(blank=True)
    # Encrypted like ``esp_secret``: the key that proves the provider's event webhooks
    # (Mailgun's HTTP webhook signing key, SendGrid's signed event webhook public key).
    esp_webhook_key = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="delivery_config_one_per_workspace")
        ]

    def __str__(self) -> str:
        return self.get_mode_display()


class SmtpSecurity(models.TextChoices):
    STARTTLS = "starttls", _("STARTTLS (usually port 587)")
    TLS = "tls", _("TLS from the start (usually port 465)")
    NONE = "none", _("None (only on a trusted network)")


class WorkspaceSmtpServer(TenantModel):
    """One SMTP server of a workspace. Active servers are used in ``position`` order for
    fail-over; ``weight`` shares the load among them. ``password`` is encrypted."""

    host = models.CharField(_("host"), max_length=253)
    port = models.PositiveIntegerField(_("port"), default=587)
    security = models.CharField(
        _("security"), max_length=10, choices=SmtpSecurity.choices, default="starttls"
    )
    username = models.CharField(_("username"), max_length=254, blank=True)
    password = models.TextField(blank=True)
    weight = models.PositiveSmallIntegerField(_("weight"), default=1)
    verify_certificate = models.BooleanField(_("verify the certificate"), default=True)
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["workspace", "position"], name="smtp_server_order")]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class DnsCheck(models.TextChoices):
    FOUND = "found", _("Found")
    NOT_FOUND = "not_found", _("Not found")
    MISMATCH = "mismatch", _("Different key")
    ERROR = "error", _("Lookup failed")


class SendingDomain(TenantModel):
    """A domain a workspace sends from, with its DKIM key pair.

    The public key is published by the domain's owner as a TXT record at
    ``selector._domainkey.domain``; mail from the domain is signed once a check
    found that record (``dkim_status`` found). ``private_key`` is the PEM,
    encrypted like every stored secret.
    """

    domain = models.CharField(_("domain"), max_length=253)
    selector = models.CharField(_("selector"), max_length=63)
    private_key = models.TextField()
    public_key = models.TextField()  # base64 DER (SubjectPublicKeyInfo), the p= tag
    dkim_status = models.CharField(max_length=10, choices=DnsCheck.choices, blank=True)
    check_detail = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "domain"], name="sending_domain_unique")
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record_value(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key}"

    @property
    def is_verified(self) -> bool:
        return self.dkim_status == DnsCheck.FOUND


class TemplateKind(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    PERSONAL = "personal", _("Personal (CRM)")


class ContentFormat(models.TextChoices):
    MJML = "mjml", _("MJML")
    HTML = "html", _("HTML")


class EmailTemplate(TenantModel):
    """A reusable email: subject, preheader, body (MJML or HTML), plain text, and the
    builder's document when it was designed with blocks.

    When ``blocks`` holds a builder document, ``body`` is generated from it on
    save (``patron.mail.blocks.blocks_to_mjml``); an empty ``blocks`` means the
    body is written by hand in the code view. An empty ``text`` is generated
    from the HTML when the mail is sent.
    """

    name = models.CharField(_("name"), max_length=150)
    kind = models.CharField(
        _("kind"), max_length=20, choices=TemplateKind.choices, default=TemplateKind.MARKETING
    )
    format = models.CharField(
        _("format"), max_length=10, choices=ContentFormat.choices, default=ContentFormat.MJML
    )
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    preheader = models.CharField(_("preheader"), max_length=300, blank=True)
    body = models.TextField(_("body"), blank=True)
    text = models.TextField(_("plain text"), blank=True)
    blocks = models.JSONField(_("builder design"), default=dict, blank=True)
    starter = models.CharField(max_length=50, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("email template")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["workspace", "kind", "name"], name="email_template_kind")]

    def __str__(self) -> str:
        return self.name


def _image_path(instance: MailImage, filename: str) -> str:
    return f"mail-images/{instance.workspace_id}/{instance.key}{filename[filename.rfind('.') :]}"


class MailImage(TenantModel):
    """An image uploaded for use in mail, served publicly at ``/mail-images/<key>/<name>``
    (mail clients fetch it without logging in; ``key`` is random and unguessable)."""

    key = models.CharField(max_length=32, unique=True)
    file = models.FileField(upload_to=_image_path, max_length=255)
    name = models.CharField(_("name"), max_length=150)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text=_("bytes"))
    content_type = models.CharField(max_length=50)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("image")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="mail_image_recent")]

    def __str__(self) -> str:
        return self.name
