"""Tables of marketing automation."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel

# --- Scoring, lifecycle and hand-off to sales ---------------------------------------------
# (automation/scoring.py, automation/lifecycle.py and automation/handoff.py)


class ScoringRuleKind(models.TextChoices):
    BEHAVIOUR = "behaviour", _("Behaviour (an event)")
    FIRMOGRAPHIC = "firmographic", _("Firmographic (a field of the contact or company)")


class CapPeriod(models.TextChoices):
    NONE = "", _("No cap")
    DAY = "day", _("per day")
    WEEK = "week", _("per week")


class ScoringRule(TenantModel):
    """Points for behaviour (an event of a kind, with property filters) or for who someone is.

    A behaviour rule gives ``points`` for each matching event, at most
    ``cap_points`` (in absolute value) per contact per ``cap_period`` when a cap
    is set. A firmographic rule gives ``points`` once while its ``condition`` (a
    segment definition of one contact or company condition) holds, and takes
    them back when it stops holding.
    """

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=ScoringRuleKind.choices)
    event_kind = models.CharField(_("event"), max_length=64, blank=True)
    # [{"property": "url", "op": "contains" | "starts" | "is", "value": "/pricing"}]
    filters = models.JSONField(default=list, blank=True)
    condition = models.JSONField(default=dict, blank=True)
    points = models.IntegerField(_("points"))
    cap_points = models.PositiveIntegerField(_("at most"), null=True, blank=True)
    cap_period = models.CharField(
        _("cap period"), max_length=10, choices=CapPeriod.choices, default="", blank=True
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "kind", "event_kind"], name="scoring_rule_kind")
        ]

    def __str__(self) -> str:
        return self.name


# The period of a firmographic rule's points: they last while its condition holds.
WHILE_TRUE = date(1970, 1, 1)


class RulePoints(TenantModel):
    """Points a rule gave a contact in one period (the cap's counter, and re-apply's ledger).

    Firmographic rules keep one row per contact while their condition holds,
    with ``period_start`` at ``WHILE_TRUE`` (they have no periods).
    """

    rule = models.ForeignKey(ScoringRule, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    points = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "contact", "period_start"], name="rule_points_once"
            )
        ]
        indexes = [models.Index(fields=["workspace", "contact"], name="rule_points_contact")]


class ScoringSettings(TenantModel):
    """A workspace's decay and hand-off settings (one row, made on first use)."""

    decay_percent = models.PositiveSmallIntegerField(
        _("decay (percent)"),
        default=0,
        help_text=_("Take this share of a positive score away after a quiet period; 0 is off."),
    )
    decay_days = models.PositiveSmallIntegerField(
        _("quiet period (days)"), default=30, help_text=_("Days without activity before decay.")
    )
    handoff_due_hours = models.PositiveSmallIntegerField(
        _("follow-up due within (hours)"), default=4
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="scoring_settings_once")]


class ScoreDecay(TenantModel):
    """When a contact's score last decayed: the next decay waits for another quiet period."""

    contact = models.OneToOneField("crm.Contact", on_delete=models.CASCADE, related_name="+")
    decayed_at = models.DateTimeField()


class RecomputeStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ScoreRecompute(TenantModel):
    """One re-application of the rules to every contact, with its progress."""

    status = models.CharField(
        max_length=10, choices=RecomputeStatus.choices, default=RecomputeStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    @property
    def percent(self) -> int:
        if self.status == RecomputeStatus.DONE:
            return 100
        return int(self.done * 100 / self.total) if self.total else 0


class LifecycleTrigger(models.TextChoices):
    SCORE = "score", _("Score reaches")
    FORM = "form", _("Form submitted")
    DEAL_OPENED = "deal_opened", _("Deal opened")
    DEAL_WON = "deal_won", _("Deal won")


class LifecycleRule(TenantModel):
    """Moves contacts forward through the lifecycle when something happens."""

    trigger = models.CharField(_("when"), max_length=20, choices=LifecycleTrigger.choices)
    threshold = models.IntegerField(_("score"), null=True, blank=True)
    form = models.ForeignKey(
        "capture.Form",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("form"),
    )
    stage = models.CharField(_("move to"), max_length=20)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)


class HandoffStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")


class Handoff(TenantModel):
    """A marketing-qualified lead passed to sales, and what sales made of it."""

    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    task = models.ForeignKey(
        "crm.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=HandoffStatus.choices, default=HandoffStatus.PENDING
    )
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    first_touch_kind = models.CharField(max_length=64, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rejection_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "status", "-created_at"], name="handoff_status"),
            models.Index(fields=["workspace", "contact"], name="handoff_contact"),
        ]

    @property
    def time_to_touch(self) -> float | None:
        """Seconds from MQL to the first sales touch (None while untouched)."""
        if self.first_touch_at is None:
            return None
        return max((self.first_touch_at - self.created_at).total_seconds(), 0.0)


# --- End of scoring, lifecycle and hand-off -------------------------------------------------
