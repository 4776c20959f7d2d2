"""Dashboards: a person's home dashboard and the workspace's shared ones, their
widgets, and the schedules that email a dashboard to chosen people."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.tenancy import TenantModel


class Dashboard(TenantModel):
    """Widgets on a page. ``owner`` set: that person's home dashboard (one per
    person and workspace); empty: shared with everyone in the workspace."""

    name = models.CharField(_("name"), max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("dashboard")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "owner"],
                condition=models.Q(owner__isnull=False),
                name="dashboard_one_home_per_person",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_home(self) -> bool:
        return self.owner_id is not None


class WidgetDisplay(models.TextChoices):
    NUMBER = "number", _("Number")
    BAR = "bar", _("Bar chart")
    STACKED_BAR = "stacked_bar", _("Stacked bar chart")
    LINE = "line", _("Line chart")
    FUNNEL = "funnel", _("Funnel")
    PIE = "pie", _("Pie chart")
    TABLE = "table", _("Table")
    SAVED_VIEW = "saved_view", _("Saved view")


class Widget(TenantModel):
    """One report (or saved view) on a dashboard, with its own date range and filters."""

    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="widgets")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(_("title"), max_length=100, blank=True)
    # A key of patron.insights.catalog.REPORTS; empty for a saved view.
    report = models.CharField(_("report"), max_length=50, blank=True)
    display = models.CharField(_("show as"), max_length=20, choices=WidgetDisplay.choices)
    # The column a chart or a number shows (a key of the report's measures).
    measure = models.CharField(_("value"), max_length=50, blank=True)
    # A key of patron.insights.periods.RANGES; "custom" uses the two dates.
    date_range = models.CharField(_("date range"), max_length=20, default="last_30_days")
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    saved_view = models.ForeignKey(
        "crm.SavedView", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("widget")
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["workspace", "dashboard", "position"], name="widget_order")]

    def __str__(self) -> str:
        return self.title or self.report


class Frequency(models.TextChoices):
    DAILY = "daily", _("Every day")
    WEEKLY = "weekly", _("Every week")


class DashboardSchedule(TenantModel):
    """A dashboard emailed to chosen members every day or week."""

    dashboard = models.OneToOneField(Dashboard, on_delete=models.CASCADE, related_name="schedule")
    frequency = models.CharField(_("how often"), max_length=10, choices=Frequency.choices)
    recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", verbose_name=_("send to")
    )
    next_send_at = models.DateTimeField()
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        verbose_name = _("dashboard email")
        # The periodic job looks across workspaces for the schedules due.
        indexes = [models.Index(fields=["next_send_at"], name="dashboard_schedule_due")]

    def __str__(self) -> str:
        return f"{self.dashboard} ({self.frequency})"


class StageEntry(TenantModel):
    """The first time a contact entered a lifecycle stage: the funnel's rollup.

    Kept from the ``contact.lifecycle_changed`` events by an activity consumer
    (``patron.insights.rollups``), so that the funnel reads one narrow table
    instead of the activity log. ``next_entered_at`` is the first time the
    contact entered any stage further down the funnel at or after
    ``entered_at``; ``seconds_to_next`` the time between the two.
    """

    contact_id = models.BigIntegerField()
    stage = models.CharField(max_length=20)
    rank = models.PositiveSmallIntegerField()  # place in the funnel, subscriber = 0
    entered_at = models.DateTimeField()
    next_entered_at = models.DateTimeField(null=True, blank=True)
    seconds_to_next = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "contact_id", "stage"], name="stage_entry_once"
            )
        ]
        indexes = [
            # Covering the funnel's reads on both databases (SQLite has no INCLUDE).
            models.Index(
                fields=[
                    "workspace",
                    "entered_at",
                    "rank",
                    "next_entered_at",
                    "seconds_to_next",
                    "contact_id",
                ],
                name="stage_entry_entered",
            ),
            # The funnel's medians read one day-wide slice of waits per stage.
            models.Index(
                fields=["workspace", "rank", "seconds_to_next", "entered_at"],
                name="stage_entry_wait",
            ),
            # Whether any move lies at or after a period's end (then its days do not answer).
            models.Index(fields=["workspace", "next_entered_at"], name="stage_entry_next"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.stage} {self.entered_at:%Y-%m-%d}"


class StageDay(TenantModel):
    """How many contacts first entered a stage on a day (UTC), by whole days waited
    until a later stage: the rollup of ``StageEntry`` the unfiltered funnel reads.

    ``wait_days`` is ``seconds_to_next // 86400``, or -1 for the entries with
    no later stage yet. A year of a million contacts' 1.3 million entries is
    81,000 rows here, so a funnel over months sums days instead of counting
    entries; kept with ``StageEntry`` in the same transaction
    (``patron.insights.rollups``).
    """

    day = models.DateField()
    rank = models.PositiveSmallIntegerField()
    wait_days = models.IntegerField()
    # Not a positive-only column: a refresh adds its changes as signed numbers.
    entries = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "rank", "wait_days"], name="stage_day_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.rank} {self.wait_days}: {self.entries}"
