"""The service-level clock arithmetic in crm/sla.py, on arbitrary schedules and time zones."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from patron.crm import sla

ZONES = [ZoneInfo(name) for name in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")]
NEW_YORK = ZoneInfo("America/New_York")


@st.composite
def schedules(draw: st.DrawFn) -> dict[int, tuple[time, time]]:
    """One to seven open days, each with opening hours on the quarter hour."""
    days = draw(st.sets(st.integers(0, 6), min_size=1, max_size=7))
    schedule = {}
    for day in days:
        opens = draw(st.integers(0, 22 * 4))
        closes = draw(st.integers(opens + 1, 24 * 4 - 1))
        schedule[day] = (
            time(opens // 4, opens % 4 * 15),
            time(closes // 4, closes % 4 * 15),
        )
    return schedule


moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1))


def _aware(moment: datetime, zone: ZoneInfo) -> datetime:
    """A local time as the database gives it back: in UTC.

    A wall-clock time that does not exist (skipped by a DST change) is still a
    valid instant; fold=0 picks the offset before the change.
    """
    return moment.replace(tzinfo=zone).astimezone(UTC)


def _within_a_year(schedule: dict[int, tuple[time, time]], minutes: int) -> int:
    """Targets are at most a year of open time (the settings refuse more)."""
    return min(minutes, sla.weekly_open_minutes(schedule) * 52)


@settings(max_examples=150, deadline=None)
@given(
    schedule=schedules(),
    zone=st.sampled_from(ZONES),
    start=moments,
    minutes=st.integers(min_value=0, max_value=20 * 24 * 60),
)
def test_adding_then_measuring_gives_back_the_minutes(schedule, zone, start, minutes):
    start = _aware(start, zone)
    minutes = _within_a_year(schedule, minutes)
    due = sla.add_business_minutes(start, minutes, schedule, zone)
    assert due >= start
    assert sla.business_seconds_between(start, due, schedule, zone) == minutes * 60


@settings(max_examples=150, deadline=None)
@given(
    schedule=schedules(),
    zone=st.sampled_from(ZONES),
    start=moments,
    first=st.integers(min_value=0, max_value=5 * 24 * 60),
    more=st.integers(min_value=1, max_value=5 * 24 * 60),
)
def test_more_minutes_are_never_due_earlier(schedule, zone, start, first, more):
    start = _aware(start, zone)
    first = _within_a_year(schedule, first)
    assume(first + more <= sla.weekly_open_minutes(schedule) * 52)
    sooner = sla.add_business_minutes(start, first, schedule, zone)
    later = sla.add_business_minutes(start, first + more, schedule, zone)
    assert later > sooner


@settings(max_examples=150, deadline=None)
@given(
    schedule=schedules(),
    zone=st.sampled_from(ZONES),
    a=moments,
    b=moments,
    c=moments,
)
def test_measuring_is_monotonic_and_adds_up(schedule, zone, a, b, c):
    a, b, c = sorted(_aware(moment, zone) for moment in (a, b, c))
    first = sla.business_seconds_between(a, b, schedule, zone)
    second = sla.business_seconds_between(b, c, schedule, zone)
    whole = sla.business_seconds_between(a, c, schedule, zone)
    assert 0 <= first <= whole
    assert second <= whole
    # Each measure drops its fraction of a second.
    assert whole - 1 <= first + second <= whole
    # Never more open time than time that passed.
    assert whole <= (c - a).total_seconds()
    assert sla.business_seconds_between(c, a, schedule, zone) == 0


@settings(max_examples=100, deadline=None)
@given(
    schedule=schedules(),
    zone=st.sampled_from(ZONES),
    start=moments,
    minutes=st.integers(min_value=1, max_value=5 * 24 * 60),
)
def test_a_due_time_falls_in_open_hours(schedule, zone, start, minutes):
    start = _aware(start, zone)
    minutes = _within_a_year(schedule, minutes)
    due = sla.add_business_minutes(start, minutes, schedule, zone)
    local = due.astimezone(zone)
    # The due moment closes some open interval: the minute before it was open.
    just_before = due - timedelta(minutes=1)
    assert sla.business_seconds_between(just_before, due, schedule, zone) > 0
    hours = schedule.get(local.weekday())
    assume(hours is not None)  # a close at midnight lands on the next day
    assert hours[0] < local.time() <= hours[1] or local.time() == time(0)


def test_a_night_and_a_weekend_are_skipped_in_new_york():
    schedule = {day: (time(8, 0), time(18, 0)) for day in range(5)}
    friday_5pm = datetime(2026, 6, 5, 17, 0, tzinfo=NEW_YORK)
    # One hour on Friday, nothing on the weekend, two hours on Monday.
    due = sla.add_business_minutes(friday_5pm, 180, schedule, NEW_YORK)
    assert due == datetime(2026, 6, 8, 10, 0, tzinfo=NEW_YORK)
    clock = sla.Clock(business_hours=True, schedule=schedule, zone=NEW_YORK)
    assert clock.due(friday_5pm, 180) == due
    assert clock.elapsed(friday_5pm, due) == 3 * 3600


def test_calendar_hours_count_every_minute():
    clock = sla.Clock(business_hours=False, schedule={}, zone=NEW_YORK)
    saturday_night = datetime(2026, 6, 6, 23, 0, tzinfo=NEW_YORK)
    assert clock.due(saturday_night, 90) == saturday_night + timedelta(minutes=90)
    assert clock.elapsed(saturday_night, saturday_night + timedelta(hours=2)) == 7200
    assert clock.elapsed(saturday_night, saturday_night - timedelta(hours=2)) == 0


def test_stored_schedules_are_parsed_and_closed_days_left_out():
    assert sla.parse_schedule(None) == sla.DEFAULT_SCHEDULE
    assert sla.parse_schedule({"0": ["08:30", "12:00"], "6": ["10:00", "10:00"]}) == {
        0: (time(8, 30), time(12, 0))
    }
    with pytest.raises(sla.ScheduleNeverOpen):
        sla.add_business_minutes(datetime(2026, 1, 1, tzinfo=NEW_YORK), 1, {}, NEW_YORK)
