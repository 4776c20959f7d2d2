"""Writes of the insights app: dashboards, their widgets, and dashboard emails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from patron.core.models import Membership, User, Workspace
from patron.crm.models import SavedView
from patron.insights import catalog
from patron.insights.models import Dashboard, DashboardSchedule, Frequency, Widget, WidgetDisplay
from patron.insights.periods import RANGES, Filters
from patron.insights.results import SUMMABLE


class WidgetInvalid(ValueError):
    """A widget's settings do not fit together; the message says what to change."""


class ScheduleInvalid(ValueError):
    pass


@dataclass(frozen=True)
class WidgetSettings:
    """What a person chooses for a widget (validated by ``clean_widget``)."""

    report: str = ""
    display: str = ""
    measure: str = ""
    date_range: str = ""
    start_date: date | None = None
    end_date: date | None = None
    filters: dict[str, str] | None = None
    title: str = ""
    saved_view_id: int | None = None


def _clean(
    workspace: Workspace, membership: Membership, settings: WidgetSettings
) -> dict[str, Any]:
    """The widget's field values, or ``WidgetInvalid``."""
    title = settings.title.strip()[:100]
    if settings.display == WidgetDisplay.SAVED_VIEW or settings.saved_view_id is not None:
        view = (
            SavedView.objects.for_workspace(workspace)
            .filter(pk=settings.saved_view_id or 0)
            .first()
        )
        if view is None or not (view.shared or view.owner_id == membership.user_id):
            raise WidgetInvalid(_("Choose one of your saved views or a shared one."))
        return {
            "report": "",
            "display": WidgetDisplay.SAVED_VIEW,
            "measure": "",
            "date_range": "all_time",
            "start_date": None,
            "end_date": None,
            "filters": {},
            "title": title,
            "saved_view": view,
        }
    try:
        spec = catalog.get_report(settings.report)
    except catalog.UnknownReport:
        raise WidgetInvalid(_("Choose a report.")) from None
    if not membership.can(spec.permission):
        raise WidgetInvalid(_("Your role cannot see this report."))
    display = settings.display or spec.default_display
    if display not in spec.displays:
        raise WidgetInvalid(
            _("%(report)s cannot be shown as %(display)s.")
            % {"report": spec.label, "display": catalog.DISPLAYS.get(display, display)}
        )
    measure = settings.measure or spec.measures[0]
    if measure not in spec.measures:
        raise WidgetInvalid(_("Choose one of the report's values."))
    if display == "number" and spec.column(measure).kind not in SUMMABLE:
        numbers = [m for m in spec.measures if spec.column(m).kind in SUMMABLE]
        if settings.measure or not numbers:
            raise WidgetInvalid(_("A number adds up counts or amounts; choose one of those."))
        measure = numbers[0]
    date_range = settings.date_range or spec.default_range
    if date_range not in RANGES:
        raise WidgetInvalid(_("Choose a date range."))
    start, end = settings.start_date, settings.end_date
    if date_range == "custom":
        if start is None or end is None:
            raise WidgetInvalid(_("A custom date range needs a start and an end."))
        if end < start:
            raise WidgetInvalid(_("The end of the date range is before its start."))
    else:
        start = end = None
    filters = Filters.from_mapping(settings.filters or {}).as_dict()
    filters = {key: value for key, value in filters.items() if key in spec.filters}
    return {
        "report": spec.key,
        "display": display,
        "measure": measure,
        "date_range": date_range,
        "start_date": start,
        "end_date": end,
        "filters": filters,
        "title": title,
        "saved_view": None,
    }


@transaction.atomic
def create_dashboard(*, workspace: Workspace, name: str, created_by: User) -> Dashboard:
    """A dashboard shared with the workspace (empty)."""
    name = name.strip()[:100]
    if not name:
        raise WidgetInvalid(_("Give the dashboard a name."))
    return Dashboard.objects.create(workspace=workspace, name=name, created_by=created_by)


def default_widgets(membership: Membership) -> list[WidgetSettings]:
    """A new person's home dashboard: what their role can see of the business."""
    wanted = [
        WidgetSettings(
            report="won_lost", display="number", measure="amount", date_range="this_month",
            filters={"outcome": "won"}, title=_("Won this month"),
        ),
        WidgetSettings(
            report="pipeline_by_stage", display="bar", measure="weighted_amount",
            date_range="all_time", filters={"outcome": "open"}, title=_("Open pipeline"),
        ),
        WidgetSettings(report="expected_revenue", display="bar", date_range="next_12_months"),
        WidgetSettings(report="funnel", display="funnel", date_range="last_12_months"),
        WidgetSettings(report="tickets_by_priority", display="table", date_range="last_30_days"),
        WidgetSettings(report="activities", display="table", date_range="this_month"),
        WidgetSettings(report="campaigns", display="table", date_range="last_90_days"),
    ]  # fmt: skip
    return [
        settings
        for settings in wanted
        if membership.can(catalog.get_report(settings.report).permission)
    ]


def ensure_home_dashboard(*, workspace: Workspace, membership: Membership) -> Dashboard:
    """The person's home dashboard, made with the default widgets on first use.

    Two first requests at once both try to make it; the unique constraint lets
    one win and the other reads the winner's.
    """
    found = Dashboard.objects.for_workspace(workspace).filter(owner_id=membership.user_id)
    dashboard = found.first()
    if dashboard is not None:
        return dashboard
    try:
        with transaction.atomic():
            dashboard = Dashboard.objects.create(
                workspace=workspace,
                name=_("My dashboard"),
                owner_id=membership.user_id,
                created_by_id=membership.user_id,
            )
            for position, settings in enumerate(default_widgets(membership)):
                Widget.objects.create(
                    workspace=workspace,
                    dashboard=dashboard,
                    position=position,
                    **_clean(workspace, membership, settings),
                )
    except IntegrityError:
        return found.get()
    return dashboard


def can_edit(dashboard: Dashboard, membership: Membership) -> bool:
    """A home dashboard is its owner's; a shared one its creator's and the admins'."""
    if dashboard.owner_id is not None:
        return dashboard.owner_id == membership.user_id
    return dashboard.created_by_id == membership.user_id or membership.can(
        "workspace.manage_settings"
    )


@transaction.atomic
def add_widget(*, dashboard: Dashboard, membership: Membership, settings: WidgetSettings) -> Widget:
    """A widget at the end of the dashboard; raises ``WidgetInvalid``."""
    values = _clean(dashboard_workspace(dashboard), membership, settings)
    last = (
        Widget.objects.for_workspace(dashboard.workspace_id)
        .filter(dashboard=dashboard)
        .aggregate(last=Max("position"))["last"]
    )
    return Widget.objects.create(
        workspace_id=dashboard.workspace_id,
        dashboard=dashboard,
        position=0 if last is None else last + 1,
        **values,
    )


def dashboard_workspace(dashboard: Dashboard) -> Workspace:
    return dashboard.workspace


@transaction.atomic
def update_widget(*, widget: Widget, membership: Membership, settings: WidgetSettings) -> Widget:
    values = _clean(widget.workspace, membership, settings)
    for name, value in values.items():
        setattr(widget, name, value)
    widget.save()
    return widget


@transaction.atomic
def move_widget(*, widget: Widget, direction: str) -> Widget:
    """One place up or down (swapping with the neighbour); the ends stay where they are."""
    if direction not in ("up", "down"):
        raise WidgetInvalid(_("Move a widget up or down."))
    siblings = list(
        Widget.objects.for_workspace(widget.workspace_id)
        .select_for_update()
        .filter(dashboard_id=widget.dashboard_id)
        .order_by("position", "id")
    )
    index = next(i for i, w in enumerate(siblings) if w.pk == widget.pk)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(siblings):
        siblings[index], siblings[other] = siblings[other], siblings[index]
    for position, sibling in enumerate(siblings):
        if sibling.position != position:
            Widget.objects.for_workspace(widget.workspace_id).filter(pk=sibling.pk).update(
                position=position
            )
    widget.refresh_from_db()
    return widget


@transaction.atomic
def remove_widget(*, widget: Widget) -> None:
    Widget.objects.for_workspace(widget.workspace_id).filter(
        dashboard_id=widget.dashboard_id, position__gt=widget.position
    ).update(position=F("position") - 1)
    widget.delete()


@transaction.atomic
def delete_dashboard(*, dashboard: Dashboard) -> None:
    dashboard.delete()


# --- Dashboard emails --------------------------------------------------------------------------

PERIODS = {Frequency.DAILY: timedelta(days=1), Frequency.WEEKLY: timedelta(days=7)}


@transaction.atomic
def schedule_dashboard(
    *,
    dashboard: Dashboard,
    frequency: str,
    recipient_ids: list[int],
    actor: User,
    now: datetime | None = None,
) -> DashboardSchedule | None:
    """Email the dashboard to these members every day or week (no one: stop emailing).

    Recipients must be active members of the workspace; the first email goes
    out at the next run of the periodic job.
    """
    workspace = dashboard.workspace
    if not recipient_ids:
        DashboardSchedule.objects.for_workspace(workspace).filter(dashboard=dashboard).delete()
        return None
    if frequency not in Frequency.values:
        raise ScheduleInvalid(_("Choose every day or every week."))
    members = list(
        User.objects.filter(
            pk__in=recipient_ids,
            memberships__workspace=workspace,
            memberships__is_active=True,
        ).distinct()
    )
    if len(members) != len(set(recipient_ids)):
        raise ScheduleInvalid(_("Send the dashboard only to members of this workspace."))
    schedule, _created = DashboardSchedule.objects.for_workspace(workspace).update_or_create(
        dashboard=dashboard,
        defaults={
            "workspace": workspace,
            "frequency": frequency,
            "next_send_at": now or timezone.now(),
            "created_by": actor,
            "last_error": "",
        },
    )
    schedule.recipients.set(members)
    return schedule
