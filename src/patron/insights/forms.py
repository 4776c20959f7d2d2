"""Forms of the insights pages: a widget's settings, a dashboard, its email schedule."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from patron.core.models import Membership
from patron.core.selectors import active_users
from patron.crm.models import SavedView
from patron.insights import catalog
from patron.insights.models import Frequency, Widget
from patron.insights.periods import RANGES
from patron.insights.services import WidgetSettings

FILTER_FIELDS = ("owner", "pipeline", "outcome", "source", "campaign", "priority")


class _Choices:
    fields: dict[str, forms.Field]

    def choice_field(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field


def report_choices(membership: Membership) -> list[tuple[Any, Any]]:
    """The reports the member may read, grouped by area (for a <select>)."""
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for spec in catalog.available_reports(membership):
        grouped.setdefault(spec.area, []).append((spec.key, spec.label))
    return [(catalog.AREAS[area], choices) for area, choices in grouped.items()]


class WidgetForm(_Choices, forms.Form):
    report = forms.ChoiceField(label=_("Report"), required=False)
    saved_view = forms.ChoiceField(label=_("Or a saved view"), required=False)
    display = forms.ChoiceField(
        label=_("Show as"),
        required=False,
        choices=[("", _("The report's usual way")), *catalog.DISPLAYS.items()],
    )
    measure = forms.CharField(label=_("Value"), required=False, max_length=50)
    date_range = forms.ChoiceField(label=_("Date range"), required=False, choices=RANGES.items())
    start_date = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end_date = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    title = forms.CharField(label=_("Title"), required=False, max_length=100)
    owner = forms.ChoiceField(label=_("Person"), required=False)
    outcome = forms.ChoiceField(
        label=_("Deals"),
        required=False,
        choices=[("", _("Open, won and lost")), ("open", _("Open")), ("won", _("Won")),
                 ("lost", _("Lost"))],
    )  # fmt: skip
    source = forms.CharField(label=_("Source"), required=False, max_length=100)

    def __init__(self, *args: Any, membership: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        workspace = membership.workspace
        self.choice_field("report").choices = [("", "—"), *report_choices(membership)]
        views = (
            SavedView.objects.for_workspace(workspace)
            .filter(Q(owner_id=membership.user_id) | Q(shared=True))
            .order_by("object_type", "name")
        )
        self.choice_field("saved_view").choices = [
            ("", "—"),
            *[(str(v.pk), f"{v.name} ({v.object_type})") for v in views],
        ]
        self.choice_field("owner").choices = [
            ("", _("Everyone")),
            *[(str(u.pk), u.display_name) for u in active_users(workspace)],
        ]
        for field in self.fields.values():
            is_select = isinstance(field.widget, forms.Select)
            field.widget.attrs.setdefault("class", "form-select" if is_select else "form-control")

    @classmethod
    def initial_for(cls, widget: Widget) -> dict[str, Any]:
        return {
            "report": widget.report,
            "saved_view": str(widget.saved_view_id or ""),
            "display": widget.display if widget.report else "",
            "measure": widget.measure,
            "date_range": widget.date_range,
            "start_date": widget.start_date,
            "end_date": widget.end_date,
            "title": widget.title,
            **{key: widget.filters.get(key, "") for key in ("owner", "outcome", "source")},
        }

    def settings(self) -> WidgetSettings:
        data = self.cleaned_data
        view = data.get("saved_view") or ""
        filters = {key: str(data.get(key) or "") for key in ("owner", "outcome", "source")}
        return WidgetSettings(
            report=data.get("report") or "",
            display=data.get("display") or "",
            measure=data.get("measure") or "",
            date_range=data.get("date_range") or "",
            start_date=data.get("start_date"),
            end_date=data.get("end_date"),
            filters=filters,
            title=data.get("title") or "",
            saved_view_id=int(view) if view.isdigit() else None,
        )


class DashboardForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)


class ScheduleForm(_Choices, forms.Form):
    frequency = forms.ChoiceField(label=_("How often"), choices=Frequency.choices)
    recipients = forms.MultipleChoiceField(
        label=_("Send to"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, membership: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choice_field("recipients").choices = [
            (str(u.pk), f"{u.display_name} <{u.email}>") for u in active_users(membership.workspace)
        ]
