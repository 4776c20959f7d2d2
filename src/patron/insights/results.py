"""A report run: its rows as a table, a chart, a number, CSV and JSON.

Money is charted and totalled in the workspace's currency only; rows in other
currencies stay in the table (and the CSV), each with its currency, and a
note says so. Nothing here queries the database except the report itself.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from patron.core.models import Workspace
from patron.insights.catalog import Column, ReportSpec
from patron.insights.charts import ChartData, Series
from patron.insights.periods import Filters, Period

SUMMABLE = {"count", "money"}


@dataclass(frozen=True)
class Cell:
    text: str
    link: str = ""
    numeric: bool = False


def format_value(value: Any, column: Column, currency: str, zone: Any = None) -> str:
    if value is None or value == "":
        return "—" if column.kind != "text" else ""
    kind = column.kind
    if kind == "money":
        from patron.core.templatetags.patron import money

        return money(value, currency)
    if kind == "percent":
        return f"{float(value) * 100:.1f} %"
    if kind == "hours":
        return _("%(hours)s h") % {"hours": f"{float(value):.1f}"}
    if kind == "days":
        return _("%(days)s d") % {"days": f"{float(value):.1f}"}
    if kind == "count":
        return f"{int(value):,}"
    if kind == "month" and isinstance(value, date):
        return date_format(value, "M Y")
    if kind == "year" and isinstance(value, date):
        return str(value.year)
    if kind == "moment" and isinstance(value, datetime):
        return date_format(timezone.localtime(value, zone), "DATE_FORMAT")
    if kind == "date" and isinstance(value, date):
        return date_format(value, "DATE_FORMAT")
    return str(value)


def raw_value(value: Any) -> Any:
    """A value as CSV and JSON carry it: plain numbers, ISO dates, "" for nothing."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@dataclass
class ReportResult:
    spec: ReportSpec
    workspace: Workspace
    period: Period
    filters: Filters
    rows: list[Any]

    @property
    def currency(self) -> str:
        return self.workspace.currency

    def row_currency(self, row: Any) -> str:
        return str(getattr(row, "currency", "") or self.currency)

    def in_workspace_currency(self, row: Any) -> bool:
        return self.row_currency(row) == self.currency

    @property
    def other_currencies(self) -> list[str]:
        return sorted({self.row_currency(r) for r in self.rows} - {self.currency})

    def link(self, row: Any) -> str:
        return self.spec.link(row) if self.spec.link else ""

    def table(self) -> list[list[Cell]]:
        """The rows as cells; the first column links to the records behind the row."""
        table = []
        for row in self.rows:
            link = self.link(row)
            cells = []
            for index, column in enumerate(self.spec.columns):
                text = format_value(
                    getattr(row, column.key), column, self.row_currency(row), self.period.zone
                )
                cells.append(
                    Cell(
                        text=text,
                        link=link if index == 0 else "",
                        numeric=column.kind not in ("text", "month", "year", "moment", "date"),
                    )
                )
            table.append(cells)
        return table

    def charted_rows(self, measure: str) -> list[Any]:
        money = self.spec.column(measure).kind == "money" or any(
            c.kind == "money" for c in self.spec.columns
        )
        if money:
            return [row for row in self.rows if self.in_workspace_currency(row)]
        return list(self.rows)

    def chart(self, measure: str, display: str) -> ChartData:
        """The chart of ``measure``: a series per stacked measure or per ``spec.series``."""
        rows = self.charted_rows(measure)
        label = str(self.spec.column(measure).label)
        if display == "stacked_bar" and self.spec.series is not None:
            categories: list[str] = []
            links: list[str] = []
            names: list[str] = []
            values: dict[tuple[str, str], float] = {}
            for row in rows:
                category, name = self.spec.category(row), self.spec.series(row)
                if category not in categories:
                    categories.append(category)
                    links.append(self.link(row))
                if name not in names:
                    names.append(name)
                values[(category, name)] = float(getattr(row, measure) or 0)
            series = [
                Series(name, [values.get((c, name), 0.0) for c in categories]) for name in names
            ]
            return ChartData(categories, series, links, label)
        categories = [self.spec.category(row) for row in rows]
        links = [self.link(row) for row in rows]
        if display == "stacked_bar":
            series = [
                Series(
                    str(self.spec.column(m).label),
                    [float(getattr(row, m) or 0) for row in rows],
                )
                for m in self.spec.measures
                if self.spec.column(m).kind == "count"
            ]
        else:
            series = [Series(label, [float(getattr(row, measure) or 0) for row in rows])]
        return ChartData(categories, series, links, label)

    def total(self, measure: str) -> Decimal | int | None:
        """The sum of ``measure`` over the rows (money: the workspace's currency only)."""
        column = self.spec.column(measure)
        if column.kind not in SUMMABLE:
            return None
        values = [getattr(row, measure) or 0 for row in self.charted_rows(measure)]
        if column.kind == "money":
            return sum((Decimal(v) for v in values), Decimal("0.00"))
        return int(sum(values))

    def format_total(self, measure: str, value: Decimal | int | None) -> str:
        return format_value(value, self.spec.column(measure), self.currency)

    def csv(self) -> str:
        """Every row with raw values (amounts as plain numbers, rates as fractions)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([str(column.label) for column in self.spec.columns])
        for row in self.rows:
            writer.writerow([_csv_safe(raw_value(getattr(row, c.key))) for c in self.spec.columns])
        return out.getvalue()

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {column.key: raw_value(getattr(row, column.key)) for column in self.spec.columns}
            for row in self.rows
        ]


def _csv_safe(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is kept as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def run(spec: ReportSpec, workspace: Workspace, period: Period, filters: Filters) -> ReportResult:
    return ReportResult(
        spec=spec,
        workspace=workspace,
        period=period,
        filters=filters,
        rows=spec.run(workspace, period, filters),
    )


@dataclass(frozen=True)
class Change:
    """A number against the same measure over the period before."""

    previous: Decimal | int
    percent: float | None  # None when the previous value was 0

    @property
    def direction(self) -> str:
        if self.percent is None or self.percent == 0:
            return "flat"
        return "up" if self.percent > 0 else "down"


def change(current: Decimal | int | None, previous: Decimal | int | None) -> Change | None:
    if current is None or previous is None:
        return None
    percent = None
    if previous:
        percent = round(float((Decimal(current) - Decimal(previous)) / Decimal(previous)) * 100, 1)
    return Change(previous=previous, percent=percent)
