"""Reads of the insights app: dashboards a person may see, and widgets ready to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from patron.core.models import Membership, Workspace
from patron.insights import catalog, charts, results
from patron.insights.models import Dashboard, Widget, WidgetDisplay
from patron.insights.periods import Filters, Period, period_for, workspace_zone

# Saved views: the list each kind of record opens in, and its query function.
SAVED_VIEW_LISTS = {
    "contact": ("crm:contact_list", "patron.crm.list_views.contact_query", "crm.view_contacts"),
    "company": ("crm:company_list", "patron.crm.list_views.company_query", "crm.view_contacts"),
    "deal": ("crm:deal_list", "patron.crm.list_views.deal_query", "crm.view_deals"),
    "task": ("crm:task_list", "patron.crm.views.task_query", "crm.view_contacts"),
    "ticket": ("crm:ticket_list", "patron.crm.views_tickets.ticket_query", "crm.view_tickets"),
}
SAVED_VIEW_COUNT_CAP = 10_000


def dashboards(workspace: Workspace, membership: Membership) -> QuerySet[Dashboard]:
    """The person's home dashboard and the workspace's shared ones."""
    return Dashboard.objects.for_workspace(workspace).filter(
        Q(owner__isnull=True) | Q(owner_id=membership.user_id)
    )


def visible_dashboard(
    workspace: Workspace, membership: Membership, dashboard_id: int
) -> Dashboard | None:
    return dashboards(workspace, membership).filter(pk=dashboard_id).first()


def widgets(dashboard: Dashboard) -> list[Widget]:
    return list(
        Widget.objects.for_workspace(dashboard.workspace_id)
        .filter(dashboard=dashboard)
        .select_related("saved_view")
        .order_by("position", "id")
    )


def widget_period(widget: Widget, workspace: Workspace, today: date | None = None) -> Period:
    return period_for(
        widget.date_range,
        zone=workspace_zone(workspace),
        today=today,
        start=widget.start_date,
        end=widget.end_date,
    )


def report_url(key: str, period: Period, filters: Filters, **extra: str) -> str:
    params: dict[str, Any] = {"range": period.name, **filters.as_dict(), **extra}
    if period.name == "custom":
        params.update(start=period.start or "", end=period.end or "")
    return reverse("insights:report", args=[key]) + "?" + urlencode(params)


@dataclass
class Shown:
    """A widget or a report page, run and ready for a template or an email."""

    title: str
    display: str
    widget: Widget | None = None
    spec: catalog.ReportSpec | None = None
    period: Period | None = None
    measure: str = ""
    result: results.ReportResult | None = None
    error: str = ""
    chart: SafeString | None = None
    number: str = ""
    change: results.Change | None = None
    previous_number: str = ""
    table: list[list[results.Cell]] = field(default_factory=list)
    url: str = ""  # the full report (or the saved view's list)
    export_url: str = ""
    count: int | None = None  # saved views: the records they hold (capped)

    @property
    def columns(self) -> list[Any]:
        return [c.label for c in self.spec.columns] if self.spec else []

    @property
    def numeric_columns(self) -> list[bool]:
        if not self.spec:
            return []
        return [
            c.kind not in ("text", "month", "year", "moment", "date") for c in self.spec.columns
        ]

    @property
    def measure_label(self) -> str:
        return str(self.spec.column(self.measure).label) if self.spec and self.measure else ""


def show_report(
    spec: catalog.ReportSpec,
    workspace: Workspace,
    period: Period,
    filters: Filters,
    *,
    display: str,
    measure: str,
    title: str = "",
    widget: Widget | None = None,
) -> Shown:
    """Run one report and shape it as ``display`` (the table is always there too)."""
    result = results.run(spec, workspace, period, filters)
    shown = Shown(
        title=title or str(spec.label),
        display=display,
        widget=widget,
        spec=spec,
        period=period,
        measure=measure,
        result=result,
        table=result.table(),
        url=report_url(spec.key, period, filters, display=display, measure=measure),
        export_url=reverse("insights:report_export", args=[spec.key])
        + "?"
        + urlencode({"range": period.name, **filters.as_dict()})
        + (f"&start={period.start}&end={period.end}" if period.name == "custom" else ""),
    )
    if display == "number":
        total = result.total(measure)
        shown.number = result.format_total(measure, total)
        previous = period.previous()
        if previous is not None:
            before = results.run(spec, workspace, previous, filters).total(measure)
            shown.change = results.change(total, before)
            shown.previous_number = result.format_total(measure, before)
    elif display in catalog.CHARTS:
        data = result.chart(measure, display)
        description = _("%(value)s by %(what)s, %(period)s.") % {
            "value": shown.measure_label,
            "what": str(spec.columns[0].label).lower(),
            "period": period.label,
        }
        if result.other_currencies:
            description += " " + _(
                "Amounts in %(currencies)s are in the table only, not added to %(currency)s."
            ) % {"currencies": ", ".join(result.other_currencies), "currency": result.currency}
        if not data.empty:
            shown.chart = charts.render(data, display, title=shown.title, description=description)
    return shown


def show_widget(
    widget: Widget,
    membership: Membership,
    *,
    request: Any = None,
    today: date | None = None,
) -> Shown:
    """A widget run for ``membership`` (a report their role cannot read says so)."""
    workspace = membership.workspace
    if widget.display == WidgetDisplay.SAVED_VIEW:
        return _show_saved_view(widget, membership, request)
    try:
        spec = catalog.get_report(widget.report)
    except catalog.UnknownReport:
        return Shown(title=widget.title or widget.report, display="", widget=widget,
                     error=_("This report no longer exists."))  # fmt: skip
    if not membership.can(spec.permission):
        return Shown(title=widget.title or str(spec.label), display="", widget=widget,
                     error=_("Your role cannot see this report."))  # fmt: skip
    period = widget_period(widget, workspace, today)
    return show_report(
        spec,
        workspace,
        period,
        Filters.from_mapping(widget.filters),
        display=widget.display,
        measure=widget.measure or spec.measures[0],
        title=widget.title,
        widget=widget,
    )


def _show_saved_view(widget: Widget, membership: Membership, request: Any) -> Shown:
    from django.utils.module_loading import import_string

    view = widget.saved_view
    title = widget.title or (view.name if view else "")
    if view is None or view.object_type not in SAVED_VIEW_LISTS:
        return Shown(title=title, display="saved_view", widget=widget,
                     error=_("This saved view no longer exists."))  # fmt: skip
    list_name, query_path, permission = SAVED_VIEW_LISTS[view.object_type]
    if not membership.can(permission):
        return Shown(title=title, display="saved_view", widget=widget,
                     error=_("Your role cannot see these records."))  # fmt: skip
    shown = Shown(
        title=title,
        display="saved_view",
        widget=widget,
        url=reverse(list_name) + "?" + urlencode({"view": view.pk}),
    )
    if request is not None:
        data = QueryDict(mutable=True)
        data["view"] = str(view.pk)
        records, _context = import_string(query_path)(request, data)
        shown.count = records[: SAVED_VIEW_COUNT_CAP + 1].count()
    return shown
