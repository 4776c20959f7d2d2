"""Automation: workflows (and, beside them, scoring, lifecycle and hand-off)."""

from __future__ import annotations

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
