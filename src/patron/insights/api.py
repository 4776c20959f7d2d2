"""API: every report's rows, as the report pages and CSV exports show them.

``GET /api/v1/reports`` lists the reports; ``GET /api/v1/reports/{report}`` runs
one for a date range (``range``: a named range such as ``last_30_days``, or
``custom`` with ``start`` and ``end`` as ISO dates) and the report's filters.
Amounts are strings with two decimals, each row with its ``currency`` where
money is involved; rates are fractions (0.25 is 25 %); moments are ISO 8601.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ninja import Field, Query, Router, Schema

from patron.api.errors import ApiError
from patron.core.http import ApiRequest
from patron.insights import catalog, results
from patron.insights.periods import RANGES, Filters, InvalidPeriod, period_for, workspace_zone

router = Router(tags=["reports"])


class ColumnOut(Schema):
    key: str
    label: str
    kind: str = Field(description="text, count, money, percent, hours, days, month, year or moment")


class ReportInfo(Schema):
    key: str
    label: str
    area: str
    default_range: str
    filters: list[str]
    columns: list[ColumnOut]


class PeriodOut(Schema):
    range: str
    start: date | None
    end: date | None
    time_zone: str


class ReportOut(Schema):
    report: ReportInfo
    period: PeriodOut
    currency: str = Field(description="The workspace's currency")
    rows: list[dict[str, Any]]


class ReportQuery(Schema):
    range: str = ""
    start: date | None = None
    end: date | None = None
    owner: int | None = None
    pipeline: int | None = None
    outcome: str = ""
    source: str = ""
    campaign: int | None = None
    priority: str = ""


def _info(spec: catalog.ReportSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "label": str(spec.label),
        "area": spec.area,
        "default_range": spec.default_range,
        "filters": list(spec.filters),
        "columns": [{"key": c.key, "label": str(c.label), "kind": c.kind} for c in spec.columns],
    }


@router.get("", response=list[ReportInfo])
def list_reports(request: ApiRequest) -> list[dict[str, Any]]:
    """Every report, with its columns and the filters it takes."""
    return [_info(spec) for spec in catalog.SPECS]


@router.get("/{report}", response=ReportOut)
def run_report(request: ApiRequest, report: str, query: Query[ReportQuery]) -> dict[str, Any]:
    """One report's rows for the date range and filters asked for."""
    try:
        spec = catalog.get_report(report)
    except catalog.UnknownReport:
        raise ApiError(404, "not_found", f"There is no report {report!r}.") from None
    name = query.range or spec.default_range
    if name not in RANGES:
        raise ApiError(
            422,
            "invalid",
            "The request is not valid.",
            {"range": [f"range must be one of {', '.join(RANGES)}."]},
        )
    if name == "custom" and (query.start is None or query.end is None):
        raise ApiError(
            422, "invalid", "The request is not valid.", {"range": ["custom needs start and end."]}
        )
    zone = workspace_zone(request.workspace)
    try:
        period = period_for(name, zone=zone, start=query.start, end=query.end)
    except InvalidPeriod as error:
        raise ApiError(422, "invalid", "The request is not valid.", {"end": [str(error)]}) from None
    asked = Filters.from_mapping(query.dict()).as_dict()
    filters = Filters.from_mapping({k: v for k, v in asked.items() if k in spec.filters})
    result = results.run(spec, request.workspace, period, filters)
    return {
        "report": _info(spec),
        "period": {
            "range": period.name,
            "start": period.start,
            "end": period.end,
            "time_zone": str(zone),
        },
        "currency": request.workspace.currency,
        "rows": result.as_json(),
    }
