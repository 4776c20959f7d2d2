"""Tables of marketing automation: workflows, and beside them scoring, lifecycle and hand-off."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel

# === Workflows ===============================================================================
# A workflow is a JSON graph (``patron.automation.workflow_schema``) edited as a draft and
# published as immutable versions; each contact inside is an ``Enrolment`` moved along by
# the engine (``patron.automation.engine``), each step it ran a ``StepRun``.


class WorkflowStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")


class Workflow(TenantModel):
    """A marketer's program: a trigger, enrolment settings and steps.

    ``draft`` is the graph being edited; ``published`` the version contacts
    now enter (None until the first publish). Editing never changes a
    published version: publishing again makes a new one, and enrolments keep
    the version they entered.
    """

    name = models.CharField(_("name"), max_length=150)
    description = models.CharField(_("description"), max_length=300, blank=True)
    status = models.CharField(
        max_length=10, choices=WorkflowStatus.choices, default=WorkflowStatus.DRAFT
    )
    draft = models.JSONField(default=dict)
    published = models.ForeignKey(
        "automation.WorkflowVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # What the trigger listens to, copied from the published version for the
    # trigger consumer's one-query lookup ("form_submitted", "event", ...).
    trigger_type = models.CharField(max_length=30, blank=True)
    template_key = models.CharField(max_length=50, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("workflow")
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["workspace", "status", "trigger_type"], name="workflow_trigger")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_unpublished_changes(self) -> bool:
        return self.published is None or self.published.graph != self.draft


class WorkflowVersion(TenantModel):
    """One published graph; never changed once written."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", _("In progress")
    COMPLETED = "completed", _("Completed")
    GOAL = "goal", _("Goal reached")
    EXITED = "exited", _("Exited")
    REMOVED = "removed", _("Removed")
    FAILED = "failed", _("Failed")


# Statuses in which a contact is inside the workflow (one such enrolment per contact).
LIVE_STATUSES = [EnrolmentStatus.ACTIVE]


class Enrolment(TenantModel):
    """One contact's way through one version of a workflow.

    ``step`` is the id of the step to run next ("" when the steps are done);
    the engine runs it once ``next_wake_at`` has come. A worker holds the row
    while it runs the step (``lease_until``); a row whose lease ran out (its
    worker died) is taken again, and the step run's unique key stops the step
    from acting twice. ``runs`` counts the steps run so far: with the step id
    it keys each ``StepRun``. ``attempts``/``last_error`` follow the current
    step's failures; ``waiting_for`` names the event a "wait until" waits for.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="enrolments")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="+")
    contact_id = models.BigIntegerField()
    status = models.CharField(
        max_length=10, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE
    )
    step = models.CharField(max_length=40, blank=True)
    next_wake_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    waiting_for = models.CharField(max_length=64, blank=True)
    # Which time this contact entered this workflow (1 the first): keys the email steps'
    # deliveries, so that a re-enrolled contact is mailed again.
    round = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=30, blank=True)
    entered_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-entered_at", "-id"]
        indexes = [
            # The timers: due enrolments of a workspace, earliest first.
            models.Index(
                fields=["workspace", "next_wake_at"],
                name="enrolment_timer",
                condition=models.Q(status="active"),
            ),
            # A contact's enrolments (the re-enrolment rule and the round, per workflow).
            models.Index(fields=["workspace", "contact_id", "workflow"], name="enrolment_contact"),
            models.Index(
                fields=["workspace", "waiting_for", "contact_id"],
                name="enrolment_waiting",
                condition=models.Q(status="active") & ~models.Q(waiting_for=""),
            ),
            models.Index(fields=["workflow", "status", "step"], name="enrolment_step"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "contact_id"],
                condition=models.Q(status="active"),
                name="enrolment_one_live",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id}/{self.contact_id} ({self.status})"


class StepRunStatus(models.TextChoices):
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


class StepRun(TenantModel):
    """A step an enrolment ran, written in the transaction of the step's effects.

    Unique on (enrolment, step, iteration): a step whose run committed never
    acts again for that enrolment, whatever crash or retry follows.
    ``result`` says what came of it (the branch taken, the delivery queued,
    the event that ended a wait).
    """

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="step_runs")
    workflow_id = models.BigIntegerField()
    step_id = models.CharField(max_length=40)
    iteration = models.PositiveIntegerField()
    step_type = models.CharField(max_length=30)
    status = models.CharField(
        max_length=10, choices=StepRunStatus.choices, default=StepRunStatus.COMPLETED
    )
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    ran_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["enrolment", "iteration"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "step_id", "iteration"], name="step_run_once"
            )
        ]
        indexes = [models.Index(fields=["workflow_id", "step_id"], name="step_run_step")]

    def __str__(self) -> str:
        return f"{self.enrolment_id}:{self.step_id}#{self.iteration}"


class WorkflowEmail(TenantModel):
    """The campaign that carries one email step's messages (per version and round).

    The send pipeline sends each (campaign, contact) once: a contact reaching
    the step again after a crash finds its delivery already queued.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="+")
    step_id = models.CharField(max_length=40)
    round = models.PositiveIntegerField(default=1)
    campaign_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "step_id", "round"], name="workflow_email_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id}:{self.step_id} -> {self.campaign_id}"


# === End of workflows ========================================================================


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
    # Count the hours in the workspace's business hours (the SLA schedule), so that a
    # lead passed on Friday evening is not overdue by Monday morning.
    handoff_business_hours = models.BooleanField(_("in business hours"), default=False)

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
