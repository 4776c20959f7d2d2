"""What the tracking endpoints record: the links of a campaign and every open and click.

A ``Hit`` is written by the open pixel or the click redirect as the request
arrives (nothing else happens in that request), then read once by
``patron.tracking.services.process_hits()``: it decides whether a machine made
it (``machine`` holds the reason) and records a human's open or click on the
contact's timeline. Reports count hits; the timeline shows only human ones.

A ``Site`` is a website running the web tracker; a ``VisitorLink`` says which
contact a first-party visitor id belongs to (``patron.tracking.stitching``).
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel


class TrackedLink(TenantModel):
    """A link of a campaign, rewritten to pass through the click redirect.

    Numbered from 0 in the order the links first appear in the message (the
    same address twice is one link). ``url`` is where a click goes, with the
    campaign's UTM parameters already added. Rows are written when the
    campaign is compiled for sending and never change afterwards.
    """

    campaign_id = models.BigIntegerField()
    index = models.PositiveSmallIntegerField()
    url = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign_id", "index"], name="tracked_link_index"),
        ]
        indexes = [models.Index(fields=["workspace", "campaign_id"], name="tracked_link_campaign")]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.index}: {self.url}"


class HitKind(models.TextChoices):
    OPEN = "open", _("Open")
    CLICK = "click", _("Click")


class MachineReason(models.TextChoices):
    """Why a hit is counted as a machine's, not a person's."""

    PRIVACY_PROXY = "privacy_proxy", _("Mail privacy proxy")
    SCANNER_AGENT = "scanner_agent", _("Link scanner (its browser name)")
    TOO_SOON = "too_soon", _("Seconds after sending")
    ALL_LINKS = "all_links", _("Every link at once")
    HEAD_REQUEST = "head_request", _("Checked, not opened (HEAD)")


class Hit(TenantModel):
    """One request to the open pixel or the click redirect, kept as it came."""

    kind = models.CharField(max_length=5, choices=HitKind.choices)
    campaign_id = models.BigIntegerField()
    delivery_id = models.BigIntegerField()
    contact_id = models.BigIntegerField()
    # The link clicked (``TrackedLink.index``); None for opens.
    link = models.PositiveSmallIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    # When the message was rendered for sending, from the token: the scanner test.
    sent_at = models.DateTimeField(null=True, blank=True)
    method = models.CharField(max_length=7, default="GET")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    machine = models.CharField(max_length=20, choices=MachineReason.choices, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "campaign_id", "kind", "delivery_id"],
                name="hit_campaign_kind",
            ),
            models.Index(
                fields=["occurred_at"],
                name="hit_unprocessed",
                condition=models.Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of delivery {self.delivery_id}"


def new_site_key() -> str:
    """A site's public key, written into its snippet: unguessable, so sites cannot be listed."""
    return secrets.token_urlsafe(12)


class Site(TenantModel):
    """A website of the workspace that runs the web tracker.

    ``key`` is public (it is in the page's snippet); what makes a collect
    request authentic is the key together with the browser's ``Origin``, which
    must be one of ``allowed_origins``. The three switches are the site's
    privacy choices, applied by the tracker in the page and checked again by
    the collect endpoint.
    """

    name = models.CharField(_("name"), max_length=100)
    key = models.CharField(max_length=32, unique=True, default=new_site_key, editable=False)
    allowed_origins = models.JSONField(default=list)
    consent_required = models.BooleanField(
        _("track only after consent"),
        default=False,
        help_text=_(
            "Nothing is sent until the page calls patron.consent(true), e.g. from your "
            "cookie banner."
        ),
    )
    honour_dnt = models.BooleanField(
        _("honour Do Not Track"),
        default=True,
        help_text=_("Browsers that send Do Not Track are not tracked at all."),
    )
    allow_identify = models.BooleanField(
        _("allow identify(email) from the page"),
        default=False,
        help_text=_(
            "Lets the page link a visitor to a known contact by email, e.g. after a login."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("website")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["workspace", "name"], name="site_name")]

    def __str__(self) -> str:
        return self.name


class VisitorLink(TenantModel):
    """A first-party visitor id (one browser on one site's domain) known to be a contact.

    One contact may have many (devices, browsers, sites); a visitor id has one
    contact at a time (the last identification wins for what follows).
    """

    visitor_id = models.CharField(max_length=64)
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    # How the visitor was recognised: "form", "email_click", "identify", "api".
    method = models.CharField(max_length=20)
    linked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "visitor_id"], name="visitor_link_unique")
        ]
        indexes = [models.Index(fields=["workspace", "contact"], name="visitor_link_contact")]

    def __str__(self) -> str:
        return f"{self.visitor_id} -> {self.contact_id}"
