"""Pages of the insights app: dashboards, widgets, report pages and CSV exports."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from patron.core.decorators import workspace_view
from patron.core.http import WorkspaceRequest
from patron.core.models import AuditAction
from patron.core.roles import DATA_EXPORT
from patron.core.selectors import active_users
from patron.core.services import record_audit
from patron.insights import catalog, results, selectors, services
from patron.insights.forms import DashboardForm, ScheduleForm, WidgetForm, report_choices
from patron.insights.models import Dashboard, DashboardSchedule, Widget
from patron.insights.periods import RANGES, Filters, InvalidPeriod, period_for, workspace_zone


def _editable(request: WorkspaceRequest, dashboard: Dashboard) -> None:
    if not services.can_edit(dashboard, request.membership):
        raise PermissionDenied


def _dashboard(request: WorkspaceRequest, dashboard_id: int) -> Dashboard:
    found = selectors.visible_dashboard(request.workspace, request.membership, dashboard_id)
    if found is None:
        raise Http404
    return found


def _widget(request: WorkspaceRequest, widget_id: int) -> Widget:
    widget = get_object_or_404(
        Widget.objects.for_workspace(request.workspace).select_related("dashboard"), pk=widget_id
    )
    _dashboard(request, widget.dashboard_id)
    _editable(request, widget.dashboard)
    return widget


def dashboard_context(
    request: WorkspaceRequest, dashboard: Dashboard, today: date | None = None
) -> dict[str, Any]:
    """What ``insights/_dashboard.html`` needs (the home page shows it too)."""
    shown = [
        selectors.show_widget(widget, request.membership, request=request, today=today)
        for widget in selectors.widgets(dashboard)
    ]
    return {
        "dashboard": dashboard,
        "shown_widgets": shown,
        "editable": services.can_edit(dashboard, request.membership),
        "report_choices": report_choices(request.membership),
        "displays": catalog.DISPLAYS.items(),
        "ranges": RANGES.items(),
    }


@workspace_view()
def index(request: WorkspaceRequest) -> HttpResponse:
    home = services.ensure_home_dashboard(
        workspace=request.workspace, membership=request.membership
    )
    areas: dict[str, list[catalog.ReportSpec]] = {}
    for spec in catalog.available_reports(request.membership):
        areas.setdefault(spec.area, []).append(spec)
    return render(
        request,
        "insights/index.html",
        {
            "home": home,
            "shared": selectors.dashboards(request.workspace, request.membership).filter(
                owner__isnull=True
            ),
            "areas": [(catalog.AREAS[key], specs) for key, specs in areas.items()],
            "form": DashboardForm(),
        },
    )


@workspace_view()
@require_POST
def dashboard_create(request: WorkspaceRequest) -> HttpResponse:
    form = DashboardForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the dashboard a name."))
        return redirect("insights:index")
    dashboard = services.create_dashboard(
        workspace=request.workspace, name=form.cleaned_data["name"], created_by=request.user
    )
    messages.success(request, _("Dashboard created: add its widgets."))
    return redirect("insights:dashboard", dashboard_id=dashboard.pk)


@workspace_view()
def dashboard_detail(request: WorkspaceRequest, dashboard_id: int) -> HttpResponse:
    dashboard = _dashboard(request, dashboard_id)
    schedule = (
        DashboardSchedule.objects.for_workspace(request.workspace)
        .filter(dashboard=dashboard)
        .prefetch_related("recipients")
        .first()
    )
    schedule_form = ScheduleForm(
        membership=request.membership,
        initial={
            "frequency": schedule.frequency if schedule else "weekly",
            "recipients": [str(u.pk) for u in schedule.recipients.all()] if schedule else [],
        },
    )
    return render(
        request,
        "insights/dashboard.html",
        {
            **dashboard_context(request, dashboard),
            "schedule": schedule,
            "schedule_form": schedule_form,
        },
    )


@workspace_view()
@require_POST
def dashboard_delete(request: WorkspaceRequest, dashboard_id: int) -> HttpResponse:
    dashboard = _dashboard(request, dashboard_id)
    _editable(request, dashboard)
    if dashboard.is_home:
        messages.error(request, _("Your home dashboard stays; remove its widgets instead."))
        return redirect("insights:dashboard", dashboard_id=dashboard.pk)
    services.delete_dashboard(dashboard=dashboard)
    messages.success(request, _("Dashboard deleted."))
    return redirect("insights:index")


def _back(request: WorkspaceRequest, dashboard: Dashboard) -> HttpResponse:
    """Back where the person was: the home page for a home dashboard shown there."""
    if request.POST.get("next") == "home" and dashboard.is_home:
        return redirect("home")
    return redirect("insights:dashboard", dashboard_id=dashboard.pk)


@workspace_view()
@require_POST
def widget_add(request: WorkspaceRequest, dashboard_id: int) -> HttpResponse:
    dashboard = _dashboard(request, dashboard_id)
    _editable(request, dashboard)
    form = WidgetForm(request.POST, membership=request.membership)
    if not form.is_valid():
        messages.error(request, _("Choose a report or a saved view."))
        return _back(request, dashboard)
    try:
        widget = services.add_widget(
            dashboard=dashboard, membership=request.membership, settings=form.settings()
        )
    except services.WidgetInvalid as error:
        messages.error(request, str(error))
        return _back(request, dashboard)
    messages.success(request, _("Widget added."))
    response = _back(request, dashboard)
    response["Location"] += f"#widget-{widget.pk}"
    return response


@workspace_view()
def widget_edit(request: WorkspaceRequest, widget_id: int) -> HttpResponse:
    widget = _widget(request, widget_id)
    if request.method == "POST":
        form = WidgetForm(request.POST, membership=request.membership)
        if form.is_valid():
            try:
                services.update_widget(
                    widget=widget, membership=request.membership, settings=form.settings()
                )
            except services.WidgetInvalid as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("Widget saved."))
                response = redirect("insights:dashboard", dashboard_id=widget.dashboard_id)
                response["Location"] += f"#widget-{widget.pk}"
                return response
    else:
        form = WidgetForm(initial=WidgetForm.initial_for(widget), membership=request.membership)
    spec = catalog.REPORTS.get(widget.report)
    return render(
        request,
        "insights/widget_form.html",
        {
            "widget": widget,
            "form": form,
            "measures": [(m, spec.column(m).label) for m in spec.measures] if spec else [],
        },
    )


@workspace_view()
@require_POST
def widget_move(request: WorkspaceRequest, widget_id: int) -> HttpResponse:
    widget = _widget(request, widget_id)
    try:
        services.move_widget(widget=widget, direction=request.POST.get("direction", ""))
    except services.WidgetInvalid as error:
        messages.error(request, str(error))
    response = _back(request, widget.dashboard)
    response["Location"] += f"#widget-{widget.pk}"
    return response


@workspace_view()
@require_POST
def widget_delete(request: WorkspaceRequest, widget_id: int) -> HttpResponse:
    widget = _widget(request, widget_id)
    dashboard = widget.dashboard
    services.remove_widget(widget=widget)
    messages.success(request, _("Widget removed."))
    return _back(request, dashboard)


@workspace_view()
@require_POST
def dashboard_schedule(request: WorkspaceRequest, dashboard_id: int) -> HttpResponse:
    dashboard = _dashboard(request, dashboard_id)
    _editable(request, dashboard)
    form = ScheduleForm(request.POST, membership=request.membership)
    if not form.is_valid():
        messages.error(request, _("Choose how often and who receives the dashboard."))
        return redirect("insights:dashboard", dashboard_id=dashboard.pk)
    try:
        schedule = services.schedule_dashboard(
            dashboard=dashboard,
            frequency=form.cleaned_data["frequency"],
            recipient_ids=[int(pk) for pk in form.cleaned_data["recipients"]],
            actor=request.user,
        )
    except services.ScheduleInvalid as error:
        messages.error(request, str(error))
    else:
        if schedule is None:
            messages.success(request, _("The dashboard is no longer emailed."))
        else:
            messages.success(request, _("The dashboard will be emailed %(frequency)s.") % {
                "frequency": schedule.get_frequency_display().lower()
            })  # fmt: skip
    return redirect("insights:dashboard", dashboard_id=dashboard.pk)


# --- Report pages ------------------------------------------------------------------------------


def _report_request(
    request: WorkspaceRequest, report: str
) -> tuple[catalog.ReportSpec, Any, Filters]:
    try:
        spec = catalog.get_report(report)
    except catalog.UnknownReport:
        raise Http404 from None
    if not request.membership.can(spec.permission):
        raise PermissionDenied
    name = request.GET.get("range") or spec.default_range

    def day(key: str) -> date | None:
        try:
            return date.fromisoformat(request.GET.get(key, ""))
        except ValueError:
            return None

    try:
        period = period_for(
            name, zone=workspace_zone(request.workspace), start=day("start"), end=day("end")
        )
    except InvalidPeriod as error:
        messages.error(request, str(error))
        period = period_for(spec.default_range, zone=workspace_zone(request.workspace))
    filters = Filters.from_mapping(request.GET)
    filters = Filters.from_mapping(
        {k: v for k, v in filters.as_dict().items() if k in spec.filters}
    )
    return spec, period, filters


@workspace_view()
def report(request: WorkspaceRequest, report: str) -> HttpResponse:
    spec, period, filters = _report_request(request, report)
    display = request.GET.get("display", "")
    if display not in spec.displays or display == "number":
        display = spec.default_display if spec.default_display != "number" else "table"
    measure = request.GET.get("measure", "")
    if measure not in spec.measures:
        measure = spec.measures[0]
    shown = selectors.show_report(
        spec, request.workspace, period, filters, display=display, measure=measure
    )
    home = services.ensure_home_dashboard(
        workspace=request.workspace, membership=request.membership
    )
    return render(
        request,
        "insights/report.html",
        {
            "spec": spec,
            "shown": shown,
            "period": period,
            "filters": filters.as_dict(),
            "ranges": RANGES.items(),
            "displays": [(d, catalog.DISPLAYS[d]) for d in spec.displays if d != "number"],
            "measures": [(m, spec.column(m).label) for m in spec.measures],
            "members": active_users(request.workspace),
            "home": home,
            "today": timezone.localdate(),
        },
    )


@workspace_view(DATA_EXPORT)
def report_export(request: WorkspaceRequest, report: str) -> HttpResponseBase:
    spec, period, filters = _report_request(request, report)
    result = results.run(spec, request.workspace, period, filters)
    record_audit(
        action=AuditAction.DATA_EXPORTED,
        actor=request.user,
        workspace=request.workspace,
        target=f"report {spec.key}",
        data={"rows": len(result.rows), "range": period.name},
    )
    response = HttpResponse(result.csv(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="{spec.key}-{stamp}.csv"'
    return response


def report_link(key: str) -> str:
    return reverse("insights:report", args=[key])
