"""Date ranges and filters: the two things every report takes besides its workspace.

A ``Period`` is a range of whole days in the workspace's time zone, both ends
included; ``since``/``until`` turn it into the aware moments a query compares
with (``until`` is the start of the day after ``end``, excluded). An open end
(``None``) means "no limit": the ``all_time`` range.

Ranges are named (``last_30_days``, ``this_month``...) so that a widget stored
today still means "the last 30 days" tomorrow; ``custom`` carries its dates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.core.models import Workspace

RANGES: dict[str, Any] = {
    "today": _("Today"),
    "last_7_days": _("Last 7 days"),
    "last_30_days": _("Last 30 days"),
    "last_90_days": _("Last 90 days"),
    "this_month": _("This month"),
    "last_month": _("Last month"),
    "this_quarter": _("This quarter"),
    "this_year": _("This year"),
    "last_12_months": _("Last 12 months"),
    "next_12_months": _("Next 12 months"),
    "all_time": _("All time"),
    "custom": _("Custom dates"),
}


class InvalidPeriod(ValueError):
    pass


def workspace_zone(workspace: Workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Whole days ``start``..``end`` (both included) in ``zone``; None: unbounded."""

    start: date | None
    end: date | None
    zone: ZoneInfo
    name: str = "custom"

    @property
    def since(self) -> datetime | None:
        if self.start is None:
            return None
        return datetime.combine(self.start, time.min, self.zone)

    @property
    def until(self) -> datetime | None:
        """The first moment after the period (excluded)."""
        if self.end is None:
            return None
        return datetime.combine(self.end + timedelta(days=1), time.min, self.zone)

    @property
    def label(self) -> str:
        if self.name != "custom":
            return str(RANGES[self.name])
        return f"{self.start or '…'} to {self.end or '…'}"

    def previous(self) -> Period | None:
        """The period of the same length just before this one (None when unbounded)."""
        if self.start is None or self.end is None:
            return None
        length = (self.end - self.start).days + 1
        return replace(
            self,
            start=self.start - timedelta(days=length),
            end=self.start - timedelta(days=1),
            name="custom",
        )

    def moment_filter(self, field: str) -> dict[str, datetime]:
        """``{field__gte: since, field__lt: until}`` for a date-and-time column."""
        found: dict[str, datetime] = {}
        if self.since is not None:
            found[f"{field}__gte"] = self.since
        if self.until is not None:
            found[f"{field}__lt"] = self.until
        return found

    def day_filter(self, field: str) -> dict[str, date]:
        """``{field__gte: start, field__lte: end}`` for a date column."""
        found: dict[str, date] = {}
        if self.start is not None:
            found[f"{field}__gte"] = self.start
        if self.end is not None:
            found[f"{field}__lte"] = self.end
        return found

    def months(self) -> list[date]:
        """The first day of every month the period touches (empty when unbounded)."""
        if self.start is None or self.end is None:
            return []
        months, month = [], self.start.replace(day=1)
        while month <= self.end:
            months.append(month)
            month = (month + timedelta(days=32)).replace(day=1)
        return months


def period_for(
    name: str,
    *,
    zone: ZoneInfo,
    today: date | None = None,
    start: date | None = None,
    end: date | None = None,
) -> Period:
    """The period a range name means today; ``custom`` takes ``start`` and ``end``."""
    if name not in RANGES:
        raise InvalidPeriod(f"Unknown date range {name!r}")
    today = today or timezone.localdate(timezone=zone)
    first_of_month = today.replace(day=1)
    bounds: dict[str, tuple[date | None, date | None]] = {
        "today": (today, today),
        "last_7_days": (today - timedelta(days=6), today),
        "last_30_days": (today - timedelta(days=29), today),
        "last_90_days": (today - timedelta(days=89), today),
        "this_month": (first_of_month, _month_start(today, -1) - timedelta(days=1)),
        "last_month": (_month_start(today, 1), first_of_month - timedelta(days=1)),
        "this_quarter": (
            date(today.year, (today.month - 1) // 3 * 3 + 1, 1),
            _month_start(date(today.year, (today.month - 1) // 3 * 3 + 1, 1), -3)
            - timedelta(days=1),
        ),
        "this_year": (date(today.year, 1, 1), date(today.year, 12, 31)),
        "last_12_months": (_month_start(today, 11), _month_start(today, -1) - timedelta(days=1)),
        "next_12_months": (first_of_month, _month_start(today, -12) - timedelta(days=1)),
        "all_time": (None, None),
        "custom": (start, end),
    }
    first, last = bounds[name]
    if first is not None and last is not None and last < first:
        raise InvalidPeriod("The end of the date range is before its start.")
    return Period(start=first, end=last, zone=zone, name=name)


@dataclass(frozen=True)
class Filters:
    """What a report may be narrowed to; an empty value means "any"."""

    owner_id: int | None = None
    pipeline_id: int | None = None
    outcome: str = ""
    source: str = ""
    campaign_id: int | None = None
    priority: str = ""

    @classmethod
    def from_mapping(cls, data: Any) -> Filters:
        """From stored JSON or query parameters; values of the wrong shape are ignored."""

        def number(key: str) -> int | None:
            value = str(data.get(key) or "")
            return int(value) if value.isdigit() else None

        def text(key: str) -> str:
            return str(data.get(key) or "")[:100]

        return cls(
            owner_id=number("owner"),
            pipeline_id=number("pipeline"),
            outcome=text("outcome") if text("outcome") in ("open", "won", "lost") else "",
            source=text("source"),
            campaign_id=number("campaign"),
            priority=text("priority"),
        )

    def as_dict(self) -> dict[str, str]:
        """The filters as stored and as query parameters (empty ones left out)."""
        values = {
            "owner": self.owner_id,
            "pipeline": self.pipeline_id,
            "outcome": self.outcome,
            "source": self.source,
            "campaign": self.campaign_id,
            "priority": self.priority,
        }
        return {key: str(value) for key, value in values.items() if value not in (None, "")}
