"""Service-level clocks: due times and elapsed time in business or calendar hours.

A schedule maps a weekday (Monday is 0) to its opening and closing time, in
the workspace's time zone; a missing day is closed. Opening intervals are laid
out day by day in local time and then compared and subtracted in UTC, so nights,
weekends and daylight-saving changes fall out of the arithmetic instead of
being special cases, and every second counted is a second that really passed
(Python subtracts two datetimes of the same zone by their wall clocks).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

Schedule = Mapping[int, tuple[time, time]]

DEFAULT_SCHEDULE: dict[int, tuple[time, time]] = {
    day: (time(9, 0), time(17, 0)) for day in range(5)
}
# Ten years of closed days is a schedule that never opens, not a long wait.
MAX_DAYS = 3660


class ScheduleNeverOpen(ValueError):
    pass


def parse_schedule(raw: Mapping[str, list[str]] | None) -> dict[int, tuple[time, time]]:
    """The stored JSON form ({"0": ["09:00", "17:00"]}) as a Schedule."""
    if not raw:
        return dict(DEFAULT_SCHEDULE)
    schedule = {}
    for day, (opens, closes) in raw.items():
        start, end = time.fromisoformat(opens), time.fromisoformat(closes)
        if end > start:
            schedule[int(day)] = (start, end)
    return schedule


def _open_intervals(
    start: datetime, schedule: Schedule, zone: ZoneInfo
) -> Iterator[tuple[datetime, datetime]]:
    """Opening intervals (in UTC) from the local day of ``start`` onwards."""
    day = start.astimezone(zone).date()
    for _ in range(MAX_DAYS):
        hours = schedule.get(day.weekday())
        if hours is not None:
            opens = datetime.combine(day, hours[0], zone).astimezone(UTC)
            closes = datetime.combine(day, hours[1], zone).astimezone(UTC)
            yield opens, closes
        day += timedelta(days=1)


def weekly_open_minutes(schedule: Schedule) -> int:
    """Open minutes in an ordinary week (no daylight-saving change)."""
    return sum(
        (closes.hour * 60 + closes.minute) - (opens.hour * 60 + opens.minute)
        for opens, closes in schedule.values()
    )


def add_business_minutes(
    start: datetime, minutes: int, schedule: Schedule, zone: ZoneInfo
) -> datetime:
    """The moment ``minutes`` of open time after ``start``."""
    if not schedule:
        raise ScheduleNeverOpen("The business hours have no open day.")
    start = start.astimezone(UTC)
    remaining = timedelta(minutes=minutes)
    for opens, closes in _open_intervals(start, schedule, zone):
        begin = max(opens, start)
        if begin >= closes:
            continue
        available = closes - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise ScheduleNeverOpen("The target lies more than ten years of open time away.")


def business_seconds_between(
    start: datetime, end: datetime, schedule: Schedule, zone: ZoneInfo
) -> int:
    """Open seconds between two moments (0 when ``end`` is not after ``start``)."""
    if end <= start or not schedule:
        return 0
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = timedelta()
    for opens, closes in _open_intervals(start, schedule, zone):
        if opens >= end:
            break
        begin, finish = max(opens, start), min(closes, end)
        if finish > begin:
            total += finish - begin
    return int(total.total_seconds())


@dataclass(frozen=True)
class Clock:
    """How to count time for one ticket: business hours or around the clock."""

    business_hours: bool
    schedule: Schedule
    zone: ZoneInfo

    def due(self, start: datetime, minutes: int) -> datetime:
        if not self.business_hours:
            return start.astimezone(UTC) + timedelta(minutes=minutes)
        return add_business_minutes(start, minutes, self.schedule, self.zone)

    def elapsed(self, start: datetime, end: datetime) -> int:
        if not self.business_hours:
            return max(0, int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()))
        return business_seconds_between(start, end, self.schedule, self.zone)
