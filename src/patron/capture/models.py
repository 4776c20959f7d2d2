"""Web forms and what people sent through them.

A **form** is a list of fields (``fields``, JSON), each mapped to where its
value goes: a contact field (``contact.first_name``), the company's name
(``company.name``), a contact custom field (``custom.<key>``), or nowhere
(``""``: the value is kept with the submission and in the event, as UTM
parameters are). What the form does after a valid submission is part of it
too: the lists to subscribe (with the consent text shown next to the
checkbox), the tags to apply, the message or redirect, the member to notify.

A **submission** is what one person sent, as it was accepted: the values, where
from (page, referrer, IP address, browser) and the contact it went to. The
``visitor_id`` is the web tracker's first-party id when the page carried one,
for identity stitching to use.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel


def new_form_key() -> str:
    """The form's public name in URLs: unguessable, so forms cannot be enumerated."""
    while True:
        key = secrets.token_urlsafe(12)
        # Never all digits: /api/v1/forms/<id>/... with a number is the API's, by id.
        if not key.isdigit():
            return key


class FollowUp(models.TextChoices):
    NONE = "", _("Nothing more")
    DEAL = "deal", _("Open a deal")
    TICKET = "ticket", _("Open a ticket")


class Form(TenantModel):
    name = models.CharField(_("name"), max_length=100)
    key = models.CharField(max_length=32, unique=True, default=new_form_key, editable=False)
    title = models.CharField(
        _("heading"),
        max_length=200,
        blank=True,
        help_text=_("Shown above the form on its hosted page and in the snippet."),
    )
    fields = models.JSONField(default=list)
    submit_label = models.CharField(_("button text"), max_length=60, default="Send")
    consent_text = models.TextField(
        _("consent text"),
        blank=True,
        help_text=_(
            "Shown next to a checkbox; recorded with each subscription. Needed when the form "
            "subscribes to lists."
        ),
    )
    consent_required = models.BooleanField(
        _("consent is required to send the form"),
        default=True,
        help_text=_(
            "When off, people may send the form without ticking the box; they are "
            "then not subscribed to the lists."
        ),
    )
    lists = models.ManyToManyField(
        "audience.MailingList", blank=True, related_name="+", verbose_name=_("subscribe to lists")
    )
    tags = models.JSONField(default=list, blank=True)
    success_message = models.TextField(
        _("message after sending"), default="Thank you! We received your message."
    )
    redirect_url = models.URLField(
        _("redirect to"),
        blank=True,
        max_length=2000,
        help_text=_("Instead of the message, send people to this page after they sent the form."),
    )
    notify_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("notify"),
    )
    allowed_origins = models.JSONField(default=list, blank=True)
    # Gated content: the file the thank-you answer links to, and for how long the link works.
    download_file = models.ForeignKey(
        "capture.DownloadFile",
        # The library refuses to delete a file forms deliver (downloads.delete_file); SET_NULL
        # only so that deleting a whole workspace is never blocked.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="forms",
        verbose_name=_("deliver a file"),
    )
    download_days = models.PositiveSmallIntegerField(_("download link works for (days)"), default=7)
    email_download = models.BooleanField(_("also email the download link"), default=False)
    # What else a submission starts in the CRM.
    follow_up = models.CharField(
        _("also"), max_length=10, choices=FollowUp.choices, default="", blank=True
    )
    deal_stage = models.ForeignKey(
        "crm.Stage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("deal stage"),
    )
    ticket_priority = models.CharField(_("ticket priority"), max_length=10, default="normal")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("form")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["workspace", "name"], name="form_name")]

    def __str__(self) -> str:
        return self.name


class FormSubmission(TenantModel):
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="submissions")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    values = models.JSONField(default=dict)
    consent_given = models.BooleanField(default=False)
    page_url = models.CharField(max_length=2000, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    # The web tracker's first-party visitor id, when the page had one (for identity stitching).
    visitor_id = models.CharField(max_length=64, blank=True)
    landing_page = models.ForeignKey(
        "capture.LandingPage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="submissions",
    )
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("form submission")
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(
                fields=["workspace", "form", "-submitted_at"], name="form_submission_form"
            ),
            models.Index(fields=["workspace", "landing_page"], name="form_submission_page"),
        ]

    def __str__(self) -> str:
        return f"{self.form_id} at {self.submitted_at:%Y-%m-%d %H:%M}"


# --- Gated content ----------------------------------------------------------------------


class DownloadFile(TenantModel):
    """A file of the workspace's download library (an e-book, a price list) that forms can
    hand out. Stored in Django's default storage under a random name; served only through a
    signed, expiring link (``/d/<token>``), never at a public address of its own."""

    name = models.CharField(_("name"), max_length=150)
    file = models.FileField(upload_to="downloads/%Y/%m/", max_length=300)
    size = models.PositiveBigIntegerField(default=0)
    content_type = models.CharField(max_length=100)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("download file")
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-uploaded_at"], name="download_file_recent")]

    def __str__(self) -> str:
        return self.name


# --- Landing pages ----------------------------------------------------------------------


class PageStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class LandingPage(TenantModel):
    """A page built from the same blocks as emails, plus form blocks, published at
    ``/p/<workspace slug>/<slug>`` on Patron's public address.

    The slug is unique within the workspace; the workspace's own slug in the path
    keeps one workspace from taking (or guessing at) another's addresses.
    """

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("address"), max_length=80)
    title = models.CharField(_("page title"), max_length=200)
    meta_description = models.CharField(
        _("description for search engines"), max_length=300, blank=True
    )
    blocks = models.JSONField(default=dict)
    # Written from the blocks on every save (MJML compiled once, not per view): the body
    # with its form placeholders, and the style sheets it needs.
    html = models.TextField(blank=True, editable=False)
    styles = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=10, choices=PageStatus.choices, default=PageStatus.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("landing page")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="landing_page_slug")
        ]

    def __str__(self) -> str:
        return self.name


# --- Pop-ups ----------------------------------------------------------------------------


class PopupTrigger(models.TextChoices):
    DELAY = "delay", _("After a number of seconds")
    SCROLL = "scroll", _("At a scroll depth (%)")
    EXIT = "exit", _("When the visitor is about to leave (desktop)")


class Popup(TenantModel):
    """One of the workspace's forms, shown in a dialog on its tracked sites by the tracker.

    ``trigger_value`` is the seconds (delay) or the percentage (scroll) of the trigger;
    ``url_patterns`` are page paths (``*`` any characters) the pop-up is limited to (none:
    every page); ``cap_days`` is how long a visitor who saw or closed it is left alone
    (never again once they sent it).
    """

    name = models.CharField(_("name"), max_length=100)
    form = models.ForeignKey(
        Form, on_delete=models.CASCADE, related_name="popups", verbose_name=_("form")
    )
    sites = models.ManyToManyField(
        "tracking.Site", related_name="popups", verbose_name=_("websites")
    )
    trigger = models.CharField(
        _("show"), max_length=10, choices=PopupTrigger.choices, default=PopupTrigger.DELAY
    )
    trigger_value = models.PositiveSmallIntegerField(_("seconds or scroll %"), default=5)
    url_patterns = models.JSONField(default=list, blank=True)
    cap_days = models.PositiveSmallIntegerField(_("show again after (days)"), default=7)
    hide_from_contacts = models.BooleanField(_("do not show to known contacts"), default=True)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("pop-up")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["workspace", "name"], name="popup_name")]

    def __str__(self) -> str:
        return self.name
