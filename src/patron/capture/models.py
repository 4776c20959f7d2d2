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
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("form submission")
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["workspace", "form", "-submitted_at"], name="form_submission_form")
        ]

    def __str__(self) -> str:
        return f"{self.form_id} at {self.submitted_at:%Y-%m-%d %H:%M}"
