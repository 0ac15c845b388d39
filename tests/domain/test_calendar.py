"""The business-hours calendar and the SLA clock: hand-computed figures, DST, pauses, config.

Dates used: 2026-03-02 is a Monday; Europe/Paris springs forward on Sunday 2026-03-29 and
falls back on Sunday 2026-10-25; America/New_York on Sundays 2026-03-08 and 2026-11-01.
"""

from __future__ import annotations

import ast
import json
import math
import random
import sys
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import domain.calendar as calendar_module
from domain.calendar import BusinessCalendar, Pause, business_elapsed, due_at, sla_state
from domain.sla import SlaState, SlaTarget

HOUR = 3600.0
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
DEFAULT = BusinessCalendar()
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
ROUND_THE_CLOCK: dict[str, Any] = {"workdays": EVERY_DAY, "start": time(0), "end": time(0)}


def at(zone: tzinfo, year: int, month: int, day: int, *clock: int) -> datetime:
    hour, minute, second, microsecond = (*clock, 0, 0, 0, 0)[:4]
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)


def utc(year: int, month: int, day: int, *clock: int) -> datetime:
    return at(UTC, year, month, day, *clock)


def paris(year: int, month: int, day: int, *clock: int) -> datetime:
    return at(PARIS, year, month, day, *clock)


def new_york(year: int, month: int, day: int, *clock: int) -> datetime:
    return at(NEW_YORK, year, month, day, *clock)


# Reference implementations, deliberately naive: they only hold where no window boundary
# falls in a skipped or repeated wall-clock hour, which is how the cases below are chosen.


def sampled_business_seconds(
    cal: BusinessCalendar, start: datetime, end: datetime, step: timedelta
) -> float:
    """Business time by checking the wall clock at every step; exact when all edges are on it."""
    zone = ZoneInfo(cal.timezone)
    total = 0
    moment = start
    while moment < end:
        local = moment.astimezone(zone)
        closes_at_midnight = cal.end == time(0)
        if (
            local.weekday() in cal.workdays
            and local.date() not in cal.holidays
            and local.time() >= cal.start
            and (closes_at_midnight or local.time() < cal.end)
        ):
            total += 1
        moment += step
    return total * step.total_seconds()


def daily_business_seconds(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Business time by converting each day's opening and closing to UTC."""
    zone = ZoneInfo(cal.timezone)
    total = timedelta(0)
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date():
        if day.weekday() in cal.workdays and day not in cal.holidays:
            # In UTC: subtracting two datetimes of one zone would give wall-clock time.
            opens = datetime.combine(day, cal.start, tzinfo=zone).astimezone(UTC)
            if cal.end == time(0):
                closes = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
            else:
                closes = datetime.combine(day, cal.end, tzinfo=zone)
            closes = closes.astimezone(UTC)
            overlap = min(closes, end) - max(opens, start)
            if overlap > timedelta(0):
                total += overlap
        day += timedelta(days=1)
    return total.total_seconds()


# Plain weeks in UTC.


def test_friday_afternoon_plus_two_hours_is_monday_morning() -> None:
    assert DEFAULT.add_business_seconds(utc(2026, 3, 6, 16), 2 * HOUR) == utc(2026, 3, 9, 10)
    assert DEFAULT.business_seconds_between(utc(2026, 3, 6, 16), utc(2026, 3, 9, 10)) == 2 * HOUR


def test_time_that_runs_out_at_closing_ends_at_closing_not_next_opening() -> None:
    assert DEFAULT.add_business_seconds(utc(2026, 3, 6, 16), HOUR) == utc(2026, 3, 6, 17)


def test_a_request_filed_on_saturday_counts_from_monday_morning() -> None:
    filed = utc(2026, 3, 7, 10, 30)
    assert DEFAULT.next_business_start(filed) == utc(2026, 3, 9, 9)
    assert DEFAULT.add_business_seconds(filed, 4 * HOUR) == utc(2026, 3, 9, 13)
    assert DEFAULT.business_seconds_between(filed, utc(2026, 3, 9, 9)) == 0
    assert DEFAULT.business_seconds_between(filed, utc(2026, 3, 9, 10)) == HOUR


def test_twenty_four_business_hours_are_three_business_days() -> None:
    monday = utc(2026, 3, 2, 9)
    assert DEFAULT.add_business_seconds(monday, 24 * HOUR) == utc(2026, 3, 4, 17)
    assert DEFAULT.business_seconds_between(monday, utc(2026, 3, 5, 9)) == 24 * HOUR
    # From Wednesday noon, three business days run into the next week.
    assert DEFAULT.add_business_seconds(utc(2026, 3, 4, 13), 24 * HOUR) == utc(2026, 3, 9, 13)


def test_a_full_week_has_forty_business_hours() -> None:
    assert DEFAULT.business_seconds_between(utc(2026, 3, 2), utc(2026, 3, 9)) == 40 * HOUR
    assert DEFAULT.business_seconds_between(utc(2026, 3, 2), utc(2026, 3, 30)) == 160 * HOUR


def test_holidays_are_skipped() -> None:
    cal = BusinessCalendar(holidays=(date(2026, 3, 9), date(2026, 3, 10)))
    assert cal.add_business_seconds(utc(2026, 3, 6, 16), 2 * HOUR) == utc(2026, 3, 11, 10)
    assert cal.business_seconds_between(utc(2026, 3, 2), utc(2026, 3, 16)) == 64 * HOUR
    assert cal.next_business_start(utc(2026, 3, 9, 12)) == utc(2026, 3, 11, 9)
    assert not cal.is_business_time(utc(2026, 3, 9, 12))


def test_a_holiday_on_a_weekend_changes_nothing() -> None:
    cal = BusinessCalendar(holidays=(date(2026, 3, 7),))
    assert cal.business_seconds_between(utc(2026, 3, 2), utc(2026, 3, 9)) == 40 * HOUR


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (utc(2026, 3, 2, 7), utc(2026, 3, 2, 8), 0),  # before opening
        (utc(2026, 3, 2, 18), utc(2026, 3, 3, 8), 0),  # overnight
        (utc(2026, 3, 2, 8), utc(2026, 3, 2, 18), 8),  # around a whole day
        (utc(2026, 3, 2, 12), utc(2026, 3, 2, 12), 0),  # empty
        (utc(2026, 3, 2, 13), utc(2026, 3, 2, 12), 0),  # backwards
        (utc(2026, 3, 2, 16, 30), utc(2026, 3, 3, 9, 30), 1),  # across the night
        (utc(2026, 3, 6, 18), utc(2026, 3, 9, 8), 0),  # a whole weekend
    ],
)
def test_business_seconds_between_edges(start: datetime, end: datetime, hours: float) -> None:
    assert DEFAULT.business_seconds_between(start, end) == hours * HOUR


def test_is_business_time_at_the_edges() -> None:
    assert DEFAULT.is_business_time(utc(2026, 3, 2, 9))
    assert DEFAULT.is_business_time(utc(2026, 3, 2, 16, 59, 59, 999999))
    assert not DEFAULT.is_business_time(utc(2026, 3, 2, 17))
    assert not DEFAULT.is_business_time(utc(2026, 3, 2, 8, 59, 59))
    assert not DEFAULT.is_business_time(utc(2026, 3, 7, 12))  # Saturday


def test_next_business_start() -> None:
    assert DEFAULT.next_business_start(utc(2026, 3, 2, 11, 15)) == utc(2026, 3, 2, 11, 15)
    assert DEFAULT.next_business_start(utc(2026, 3, 2, 6)) == utc(2026, 3, 2, 9)
    assert DEFAULT.next_business_start(utc(2026, 3, 2, 17)) == utc(2026, 3, 3, 9)
    assert DEFAULT.next_business_start(utc(2026, 3, 6, 17)) == utc(2026, 3, 9, 9)


def test_results_are_utc_whatever_zone_the_input_is_in() -> None:
    start = datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("Asia/Tokyo"))  # Monday 01:00 UTC
    due = DEFAULT.add_business_seconds(start, HOUR)
    assert due == utc(2026, 3, 2, 10)
    assert due.tzinfo is UTC
    assert DEFAULT.next_business_start(start).tzinfo is UTC


def test_adding_zero_returns_the_start_even_outside_hours() -> None:
    saturday = paris(2026, 3, 7, 10)
    assert DEFAULT.add_business_seconds(saturday, 0) == saturday
    assert DEFAULT.add_business_seconds(utc(2026, 3, 2, 10), 0) == utc(2026, 3, 2, 10)


@pytest.mark.parametrize("seconds", [-1, -0.000001, math.nan, math.inf])
def test_adding_negative_or_non_finite_time_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        DEFAULT.add_business_seconds(utc(2026, 3, 2, 10), seconds)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 2, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.business_seconds_between(naive, utc(2026, 3, 2, 11))
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.add_business_seconds(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.is_business_time(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.next_business_start(naive)


def test_sub_second_amounts_are_kept_to_the_microsecond() -> None:
    start = utc(2026, 3, 2, 16, 59, 59)
    assert DEFAULT.add_business_seconds(start, 1.5) == utc(2026, 3, 3, 9, 0, 0, 500000)
    assert DEFAULT.business_seconds_between(start, utc(2026, 3, 3, 9, 0, 0, 500000)) == 1.5


# Time zones and DST.


def test_hours_are_wall_clock_hours_in_the_calendar_zone() -> None:
    cal = BusinessCalendar(timezone="Europe/Paris")
    assert cal.next_business_start(utc(2026, 3, 2, 6)) == utc(2026, 3, 2, 8)  # 09:00 CET
    assert cal.add_business_seconds(utc(2026, 3, 6, 15), 2 * HOUR) == utc(2026, 3, 9, 9)


@pytest.mark.parametrize(
    ("friday_16h", "monday_10h"),
    [
        (paris(2026, 3, 27, 16), utc(2026, 3, 30, 8)),  # CET to CEST
        (paris(2026, 10, 23, 16), utc(2026, 10, 26, 9)),  # CEST to CET
    ],
)
def test_paris_weekend_dst_change_keeps_wall_clock_hours(
    friday_16h: datetime, monday_10h: datetime
) -> None:
    cal = BusinessCalendar(timezone="Europe/Paris")
    assert cal.add_business_seconds(friday_16h, 2 * HOUR) == monday_10h
    assert cal.business_seconds_between(friday_16h, monday_10h) == 2 * HOUR


@pytest.mark.parametrize(
    ("friday_16h", "monday_10h"),
    [
        (new_york(2026, 3, 6, 16), utc(2026, 3, 9, 14)),  # EST to EDT
        (new_york(2026, 10, 30, 16), utc(2026, 11, 2, 15)),  # EDT to EST
    ],
)
def test_new_york_weekend_dst_change_keeps_wall_clock_hours(
    friday_16h: datetime, monday_10h: datetime
) -> None:
    cal = BusinessCalendar(timezone="America/New_York")
    assert cal.add_business_seconds(friday_16h, 2 * HOUR) == monday_10h
    assert cal.business_seconds_between(friday_16h, monday_10h) == 2 * HOUR


@pytest.mark.parametrize(
    ("zone", "factory", "first_monday"),
    [
        ("Europe/Paris", paris, date(2026, 3, 23)),
        ("Europe/Paris", paris, date(2026, 10, 19)),
        ("America/New_York", new_york, date(2026, 3, 2)),
        ("America/New_York", new_york, date(2026, 10, 26)),
    ],
)
def test_every_day_around_a_dst_change_has_eight_business_hours(
    zone: str, factory: Any, first_monday: date
) -> None:
    cal = BusinessCalendar(timezone=zone)
    for offset in range(14):
        day = first_monday + timedelta(days=offset)
        opens = factory(day.year, day.month, day.day, 9)
        closes = factory(day.year, day.month, day.day, 17)
        expected = 8 * HOUR if day.weekday() < 5 else 0
        assert cal.business_seconds_between(opens, closes) == expected, day
        if expected:
            assert cal.add_business_seconds(opens, 8 * HOUR) == closes
            assert cal.next_business_start(factory(day.year, day.month, day.day, 7)) == opens
    start = factory(first_monday.year, first_monday.month, first_monday.day)
    # Aware arithmetic is wall-clock arithmetic: this is local midnight two weeks on.
    assert cal.business_seconds_between(start, start + timedelta(days=14)) == 80 * HOUR


def test_paris_calendar_in_the_weeks_new_york_has_changed_and_paris_has_not() -> None:
    cal = BusinessCalendar(timezone="Europe/Paris")
    monday = paris(2026, 3, 9, 9)
    assert cal.business_seconds_between(monday, paris(2026, 3, 16, 9)) == 40 * HOUR
    assert cal.add_business_seconds(new_york(2026, 3, 9, 4), HOUR) == utc(2026, 3, 9, 9)


def test_round_the_clock_day_lasts_as_long_as_the_clock_says() -> None:
    cal = BusinessCalendar(timezone="Europe/Paris", **ROUND_THE_CLOCK)
    assert cal.business_seconds_between(paris(2026, 3, 29), paris(2026, 3, 30)) == 23 * HOUR
    assert cal.business_seconds_between(paris(2026, 10, 25), paris(2026, 10, 26)) == 25 * HOUR
    assert cal.add_business_seconds(paris(2026, 3, 29), 23 * HOUR) == paris(2026, 3, 30)


def test_a_window_spanning_a_dst_change_counts_real_time() -> None:
    night_shift = BusinessCalendar(
        timezone="America/New_York", workdays=EVERY_DAY, start=time(0), end=time(8)
    )
    assert night_shift.business_seconds_between(utc(2026, 3, 8), utc(2026, 3, 9)) == 7 * HOUR
    assert night_shift.business_seconds_between(utc(2026, 11, 1), utc(2026, 11, 2)) == 9 * HOUR
    assert night_shift.add_business_seconds(new_york(2026, 3, 8), 7 * HOUR) == new_york(
        2026, 3, 8, 8
    )


def test_opening_at_a_skipped_wall_time_opens_when_the_clock_jumps() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Paris", workdays=EVERY_DAY, start=time(2, 30), end=time(17)
    )
    # 02:30 does not exist on 29 March: the clock goes from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert cal.next_business_start(utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 1)
    assert not cal.is_business_time(utc(2026, 3, 29, 0, 59, 59))
    assert cal.is_business_time(utc(2026, 3, 29, 1))
    assert cal.business_seconds_between(utc(2026, 3, 29), utc(2026, 3, 30)) == 14 * HOUR


def test_a_window_wholly_inside_a_skipped_hour_is_empty() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Paris", workdays=EVERY_DAY, start=time(2, 15), end=time(2, 45)
    )
    assert cal.business_seconds_between(utc(2026, 3, 29), utc(2026, 3, 30)) == 0
    # Saturday's window (01:15-01:45 UTC) is followed by Monday's (00:15-00:45 UTC).
    assert cal.next_business_start(utc(2026, 3, 28, 1, 45)) == utc(2026, 3, 30, 0, 15)
    assert cal.add_business_seconds(utc(2026, 3, 28, 1, 30), 20 * 60) == utc(2026, 3, 30, 0, 20)


def test_a_repeated_wall_time_means_its_first_occurrence() -> None:
    opens_in_repeat = BusinessCalendar(
        timezone="Europe/Paris", workdays=EVERY_DAY, start=time(2, 30), end=time(17)
    )
    # 02:30 CEST is 00:30 UTC; 17:00 CET is 16:00 UTC.
    assert opens_in_repeat.next_business_start(utc(2026, 10, 25)) == utc(2026, 10, 25, 0, 30)
    assert (
        opens_in_repeat.business_seconds_between(utc(2026, 10, 25), utc(2026, 10, 26))
        == 15.5 * HOUR
    )
    closes_in_repeat = BusinessCalendar(
        timezone="Europe/Paris", workdays=EVERY_DAY, start=time(0), end=time(2, 30)
    )
    assert (
        closes_in_repeat.business_seconds_between(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
        == 2.5 * HOUR
    )
    assert not closes_in_repeat.is_business_time(utc(2026, 10, 25, 1, 10))  # 02:10 CET


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        ("Europe/Paris", utc(2026, 3, 1), utc(2026, 6, 1)),  # springs forward only
        ("Europe/Paris", utc(2025, 12, 1), utc(2026, 12, 31)),
        ("America/New_York", utc(2026, 10, 1), utc(2026, 12, 15)),  # falls back only
        ("Australia/Lord_Howe", utc(2026, 3, 20), utc(2026, 5, 20)),  # half-hour change
        ("Asia/Gaza", utc(2040, 9, 1), utc(2040, 12, 1)),  # two changes 6.96 days apart
        ("Pacific/Apia", utc(2011, 12, 1), utc(2012, 1, 31)),  # skipped 30 December 2011
    ],
)
def test_round_the_clock_business_time_is_real_elapsed_time(
    zone: str, start: datetime, end: datetime
) -> None:
    cal = BusinessCalendar(timezone=zone, **ROUND_THE_CLOCK)
    for hour_offset in (0, 5, 13, 24 * 3 + 7):
        a = start + timedelta(hours=hour_offset)
        assert cal.business_seconds_between(a, end) == (end - a).total_seconds()
        assert cal.add_business_seconds(a, (end - a).total_seconds()) == end


def test_an_offset_change_and_its_reversal_within_one_week_are_both_seen() -> None:
    # Freetown went from -01:00 to -00:40 at midnight starting Friday 1 September 1939 and back
    # at midnight ending Monday 4 September, 3.99 days later. A Friday-only night shift loses
    # the 20 skipped minutes that Friday, and nothing comes back on the Monday.
    cal = BusinessCalendar(timezone="Africa/Freetown", workdays=(4,), start=time(0), end=time(8))
    friday = datetime(1939, 9, 1, tzinfo=ZoneInfo("Africa/Freetown"))
    assert cal.business_seconds_between(friday, friday + timedelta(days=1)) == 7 * HOUR + 40 * 60
    for offset in range(7):  # every alignment of the whole weeks with the change
        start = utc(1939, 7, 1) + timedelta(days=offset)
        end = utc(1939, 10, 15) + timedelta(days=offset)
        assert cal.business_seconds_between(start, end) == daily_business_seconds(cal, start, end)
        assert cal.add_business_seconds(start, cal.business_seconds_between(start, end)) <= end


def test_a_window_that_gains_the_repeated_hour_is_counted_in_long_additions() -> None:
    # Sundays 02:30-03:00 in Paris: half an hour, except on 25 October 2026, when 02:30 CEST to
    # 03:00 CET is an hour and a half, more than a whole ordinary week of business time.
    cal = BusinessCalendar(timezone="Europe/Paris", workdays=(6,), start=time(2, 30), end=time(3))
    assert cal.business_seconds_between(utc(2026, 10, 24), utc(2026, 10, 26)) == 1.5 * HOUR
    # Three Sundays of half an hour, then the long one: done at its close, 02:00 UTC.
    assert cal.add_business_seconds(utc(2026, 10, 1), 3 * HOUR) == utc(2026, 10, 25, 2)
    assert cal.add_business_seconds(utc(2026, 10, 1), 3.5 * HOUR) == utc(2026, 11, 1, 2)


# Long spans: the week-by-week arithmetic agrees with a day-by-day count.

LONG_SPAN_CALENDARS = [
    BusinessCalendar(),
    BusinessCalendar(
        timezone="Europe/Paris",
        holidays=tuple(
            date(year, month, day)
            for year in range(2026, 2037)
            for month, day in ((1, 1), (5, 1), (7, 14), (12, 25), (12, 26))
        ),
    ),
    BusinessCalendar(timezone="America/New_York", start=time(8, 30), end=time(18)),
    BusinessCalendar(timezone="America/New_York", workdays=EVERY_DAY, end=time(0)),
    BusinessCalendar(timezone="America/New_York", workdays=EVERY_DAY, start=time(0), end=time(8)),
    BusinessCalendar(timezone="Europe/Paris", workdays=(0, 1, 2, 3, 4), start=time(0), end=time(0)),
    BusinessCalendar(timezone="Asia/Kolkata", workdays=(6, 0, 1, 2, 3), start=time(10)),
]


@pytest.mark.parametrize("cal", LONG_SPAN_CALENDARS, ids=lambda cal: cal.timezone)
def test_ten_year_spans_match_a_day_by_day_count(cal: BusinessCalendar) -> None:
    start = utc(2026, 1, 1, 11, 17)
    end = utc(2035, 7, 1, 15, 43)  # mid-year, so spring and autumn changes do not cancel out
    total = cal.business_seconds_between(start, end)
    assert total == daily_business_seconds(cal, start, end)
    finish = cal.add_business_seconds(start, total)
    assert finish <= end
    assert cal.business_seconds_between(start, finish) == total
    assert cal.business_seconds_between(finish, end) == 0


def test_long_spans_starting_on_every_weekday_match_a_day_by_day_count() -> None:
    cal = LONG_SPAN_CALENDARS[1]
    for offset in range(7):
        start = utc(2026, 3, 2, 10) + timedelta(days=offset, hours=offset)
        end = start + timedelta(days=400, hours=3 * offset)
        assert cal.business_seconds_between(start, end) == daily_business_seconds(cal, start, end)


# Inverses and cross-checks on deterministic tables of cases.

INVERSE_CALENDARS = [
    BusinessCalendar(holidays=(date(2026, 3, 9), date(2026, 12, 25))),
    BusinessCalendar(timezone="Europe/Paris", holidays=(date(2026, 3, 30),)),
    BusinessCalendar(timezone="America/New_York", workdays=(0, 2, 4), start=time(7, 45)),
    BusinessCalendar(timezone="Europe/Paris", **ROUND_THE_CLOCK),
    BusinessCalendar(timezone="Asia/Kolkata", start=time(9, 30), end=time(18, 15, 30)),
]
STARTS = [
    utc(2026, 3, 6, 16, 59, 59, 999999),
    utc(2026, 3, 7, 12),
    paris(2026, 3, 27, 12, 34, 56),
    new_york(2026, 3, 8, 2, 30),
    utc(2026, 10, 24, 23, 59),
    new_york(2026, 10, 30, 23),
    utc(2026, 12, 24, 16, 30),
]
AMOUNTS = [0, 0.000001, 1, 59.5, HOUR, 8 * HOUR, 8 * HOUR + 1, 40 * HOUR, 1000 * HOUR, 20000 * HOUR]


@pytest.mark.parametrize("cal", INVERSE_CALENDARS, ids=lambda cal: cal.timezone)
def test_adding_then_measuring_gives_back_the_amount(cal: BusinessCalendar) -> None:
    for start in STARTS:
        for seconds in AMOUNTS:
            finish = cal.add_business_seconds(start, seconds)
            assert cal.business_seconds_between(start, finish) == seconds, (start, seconds)
            if seconds:
                # The earliest such instant: the clock was running just before it.
                assert cal.is_business_time(finish - timedelta(microseconds=1))


@pytest.mark.parametrize("cal", INVERSE_CALENDARS, ids=lambda cal: cal.timezone)
def test_measuring_then_adding_gives_back_the_end_or_the_last_close_before_it(
    cal: BusinessCalendar,
) -> None:
    for start in STARTS:
        for hours in (0, 1, 7.25, 30, 100, 2000):
            end = start + timedelta(hours=hours)
            measured = cal.business_seconds_between(start, end)
            finish = cal.add_business_seconds(start, measured)
            assert finish <= end
            assert cal.business_seconds_between(start, finish) == measured
            assert cal.business_seconds_between(finish, end) == 0
            if measured and cal.is_business_time(end - timedelta(microseconds=1)):
                assert finish == end


def test_random_spans_match_the_wall_clock_sampled_count() -> None:
    # Seeded, so the table of cases is the same on every run. All edges lie on half hours.
    rng = random.Random(20260302)
    zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
    step = timedelta(minutes=30)
    for _ in range(150):
        opens = rng.randrange(0, 40)
        closes = rng.randrange(opens + 1, 49)
        cal = BusinessCalendar(
            timezone=rng.choice(zones),
            workdays=tuple(rng.sample(range(7), rng.randrange(1, 8))),
            start=time(opens // 2, 30 * (opens % 2)),
            end=time(0) if closes == 48 else time(closes // 2, 30 * (closes % 2)),
            holidays=tuple(
                date(2026, 3, 1) + timedelta(days=rng.randrange(0, 300)) for _ in range(5)
            ),
        )
        start = utc(2026, 3, 1) + step * rng.randrange(0, 300 * 48)
        end = start + step * rng.randrange(0, 25 * 48)
        expected = sampled_business_seconds(cal, start, end, step)
        assert cal.business_seconds_between(start, end) == expected, (cal, start, end)
        if expected:
            finish = cal.add_business_seconds(start, expected)
            assert cal.business_seconds_between(start, finish) == expected


# Configuration.


def test_default_calendar_is_weekdays_nine_to_five_utc() -> None:
    assert BusinessCalendar.from_config(None) == DEFAULT
    assert DEFAULT.to_config() == {
        "timezone": "UTC",
        "workdays": [0, 1, 2, 3, 4],
        "start": "09:00",
        "end": "17:00",
        "holidays": [],
    }


def test_config_round_trips_through_json() -> None:
    config = {
        "timezone": "Europe/Paris",
        "workdays": [0, 1, 2, 3, 4],
        "start": "08:30",
        "end": "17:45:30",
        "holidays": ["2026-12-25", "2026-01-01"],
    }
    cal = BusinessCalendar.from_config(config)
    assert cal.start == time(8, 30)
    assert cal.end == time(17, 45, 30)
    assert cal.holidays == (date(2026, 1, 1), date(2026, 12, 25))
    again = BusinessCalendar.from_config(json.loads(json.dumps(cal.to_config())))
    assert again == cal
    assert BusinessCalendar.from_config(json.dumps(config)) == cal


def test_partial_config_keeps_the_other_defaults() -> None:
    cal = BusinessCalendar.from_config({"timezone": "America/New_York"})
    assert cal == BusinessCalendar(timezone="America/New_York")


def test_a_bare_string_is_a_time_zone_name() -> None:
    assert BusinessCalendar.from_config("Europe/Paris") == BusinessCalendar(timezone="Europe/Paris")


def test_midnight_closing_is_written_24_00() -> None:
    cal = BusinessCalendar.from_config(
        {"workdays": list(EVERY_DAY), "start": "00:00", "end": "24:00"}
    )
    assert cal.end == time(0)
    assert cal.to_config()["end"] == "24:00"
    assert BusinessCalendar.from_config(cal.to_config()) == cal
    assert cal.business_seconds_between(utc(2026, 3, 2), utc(2026, 3, 9)) == 7 * 24 * HOUR


def test_workdays_and_holidays_are_sorted_and_deduplicated() -> None:
    cal = BusinessCalendar.from_config(
        {"workdays": [4, 0, 0, 2], "holidays": ["2026-05-01", "2026-01-01", "2026-05-01"]}
    )
    assert cal.workdays == (0, 2, 4)
    assert cal.holidays == (date(2026, 1, 1), date(2026, 5, 1))
    assert cal == BusinessCalendar(
        workdays=(0, 2, 4), holidays=(date(2026, 1, 1), date(2026, 5, 1))
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"start": "17:00", "end": "09:00"}, r"end \(09:00\) must be after start \(17:00\)"),
        ({"start": "09:00", "end": "09:00"}, "must be after start"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"timezone": ""}, "IANA zone name"),
        ({"timezone": 1}, "IANA zone name"),
        ({"workdays": [0, 7]}, "workday 7 is not a weekday number"),
        ({"workdays": [-1]}, "workday -1 is not a weekday number"),
        ({"workdays": ["mon"]}, "workday 'mon' is not a weekday number"),
        ({"workdays": [True]}, "workday True is not a weekday number"),
        ({"workdays": []}, "at least one weekday"),
        ({"workdays": "0,1,2"}, "workdays must be a list"),
        ({"start": "9am"}, "start must be a wall-clock time like '09:00'"),
        ({"start": "24:00"}, "start must be a wall-clock time"),
        ({"end": 17}, r"end must be a wall-clock time like '09:00' \(or 24:00\)"),
        ({"start": "09:00+01:00"}, "start must be a wall-clock time"),
        ({"holidays": ["2026-02-30"]}, "holiday '2026-02-30' is not a date like '2026-12-25'"),
        ({"holidays": ["Christmas"]}, "holiday 'Christmas' is not a date"),
        ({"holidays": [20261225]}, "holiday 20261225 is not a date"),
        ({"holidays": "2026-12-25"}, "holidays must be a list"),
        ({"timezone": "UTC", "timezon": "Europe/Paris"}, "unknown calendar setting.*timezon"),
        ("{not json", "not valid JSON"),
        ("", "IANA zone name"),
        ("Nowhere/Special", "unknown time zone"),
        (["UTC"], "must be a mapping"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(config: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.from_config(config)


def test_bad_calendars_are_refused_when_built_directly_too() -> None:
    with pytest.raises(ValueError, match="must be after start"):
        BusinessCalendar(start=time(17), end=time(9))
    with pytest.raises(ValueError, match="not a weekday number"):
        BusinessCalendar(workdays=(5, 6, 7))
    with pytest.raises(ValueError, match="is not a date"):
        BusinessCalendar(holidays=(datetime(2026, 12, 25, tzinfo=UTC),))
    with pytest.raises(ValueError, match="without a time zone"):
        BusinessCalendar(start=time(9, tzinfo=UTC))
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessCalendar(timezone="Europe/Pariss")


# The SLA clock.

MONDAY_9 = utc(2026, 3, 2, 9)


def test_business_elapsed_without_pauses_is_business_time() -> None:
    assert business_elapsed(DEFAULT, MONDAY_9, utc(2026, 3, 3, 12), []) == 11 * HOUR
    assert business_elapsed(DEFAULT, MONDAY_9, utc(2026, 3, 2, 8), []) == 0


def test_pauses_stop_the_clock_only_for_their_business_time() -> None:
    started = utc(2026, 3, 6, 15)  # Friday
    over_the_weekend = [Pause(utc(2026, 3, 6, 16), utc(2026, 3, 9, 10))]
    # Friday 15-16 counts, Friday 16-17 and Monday 9-10 are paused, Monday 10-12 counts.
    assert business_elapsed(DEFAULT, started, utc(2026, 3, 9, 12), over_the_weekend) == 3 * HOUR


def test_overlapping_pauses_are_not_subtracted_twice() -> None:
    pauses = [
        Pause(utc(2026, 3, 2, 10), utc(2026, 3, 2, 12)),
        Pause(utc(2026, 3, 2, 11), utc(2026, 3, 2, 13)),
        Pause(utc(2026, 3, 2, 11), utc(2026, 3, 2, 12)),
        Pause(utc(2026, 3, 2, 10), utc(2026, 3, 2, 12)),
    ]
    assert business_elapsed(DEFAULT, MONDAY_9, utc(2026, 3, 2, 17), pauses) == 5 * HOUR


def test_an_open_pause_swallows_the_pauses_recorded_after_it() -> None:
    pauses = [Pause(utc(2026, 3, 2, 11), utc(2026, 3, 2, 12)), Pause(utc(2026, 3, 2, 10), None)]
    now = utc(2026, 3, 2, 17)
    assert business_elapsed(DEFAULT, MONDAY_9, now, pauses) == HOUR
    assert due_at(DEFAULT, MONDAY_9, 4, pauses, now) is None
    assert sla_state(DEFAULT, MONDAY_9, 4, pauses, now) == SlaState.PAUSED


def test_pauses_are_clipped_to_the_measured_span() -> None:
    pauses = [
        Pause(utc(2026, 2, 27, 9), utc(2026, 2, 27, 17)),  # before the request
        Pause(utc(2026, 3, 2, 8), utc(2026, 3, 2, 10)),  # straddles its start
        Pause(utc(2026, 3, 2, 16), None),  # still open at now
        Pause(utc(2026, 3, 3, 9), utc(2026, 3, 3, 10)),  # after now
    ]
    assert business_elapsed(DEFAULT, MONDAY_9, utc(2026, 3, 2, 17), pauses) == 6 * HOUR


def test_due_time_without_pauses_is_business_hours_from_filing() -> None:
    assert due_at(DEFAULT, MONDAY_9, 4, [], MONDAY_9) == utc(2026, 3, 2, 13)
    assert due_at(DEFAULT, utc(2026, 3, 7, 10), 4, [], utc(2026, 3, 7, 11)) == utc(2026, 3, 9, 13)
    assert due_at(DEFAULT, MONDAY_9, 16, [], MONDAY_9) == utc(2026, 3, 3, 17)
    assert due_at(DEFAULT, MONDAY_9, 24, [], MONDAY_9) == utc(2026, 3, 4, 17)


def test_due_time_moves_out_by_the_paused_business_time() -> None:
    pauses = [Pause(utc(2026, 3, 2, 10), utc(2026, 3, 2, 11, 30))]
    assert due_at(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 2, 12)) == utc(2026, 3, 2, 14, 30)


def test_due_time_is_unknown_while_paused() -> None:
    assert (
        due_at(DEFAULT, MONDAY_9, 4, [Pause(utc(2026, 3, 2, 10), None)], utc(2026, 3, 2, 12))
        is None
    )
    closed_later = [Pause(utc(2026, 3, 2, 10), utc(2026, 3, 2, 15))]
    assert due_at(DEFAULT, MONDAY_9, 4, closed_later, utc(2026, 3, 2, 12)) is None
    # One hour ran before the pause; the other three are 15:00-17:00 and Tuesday 09:00-10:00.
    assert due_at(DEFAULT, MONDAY_9, 4, closed_later, utc(2026, 3, 2, 15)) == utc(2026, 3, 3, 10)


def test_a_target_already_missed_has_its_due_time_in_the_past() -> None:
    pauses = [Pause(utc(2026, 3, 2, 14), utc(2026, 3, 2, 15))]  # after the target was missed
    assert due_at(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 3, 12)) == utc(2026, 3, 2, 13)


def test_a_target_reached_just_as_a_pause_begins_is_due_then() -> None:
    pauses = [Pause(utc(2026, 3, 2, 13), utc(2026, 3, 2, 16))]
    assert due_at(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 2, 17)) == utc(2026, 3, 2, 13)


def test_a_future_pause_is_ignored() -> None:
    pauses = [Pause(utc(2026, 3, 2, 11), None)]
    assert due_at(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 2, 10)) == utc(2026, 3, 2, 13)


def test_a_zero_target_is_due_at_filing() -> None:
    assert due_at(DEFAULT, utc(2026, 3, 7, 10), 0, [], utc(2026, 3, 7, 10)) == utc(2026, 3, 7, 10)


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (utc(2026, 3, 2, 10), SlaState.OK),
        (utc(2026, 3, 2, 11, 59, 59), SlaState.OK),
        (utc(2026, 3, 2, 12), SlaState.AT_RISK),  # exactly 75 %
        (utc(2026, 3, 2, 12, 59, 59, 999999), SlaState.AT_RISK),
        (utc(2026, 3, 2, 13), SlaState.BREACHED),  # the due time itself
        (utc(2026, 3, 3, 10), SlaState.BREACHED),
    ],
)
def test_sla_state_over_a_four_hour_target(now: datetime, state: SlaState) -> None:
    assert sla_state(DEFAULT, MONDAY_9, 4, [], now) == state


def test_a_target_due_at_friday_close_is_breached_all_weekend() -> None:
    friday = utc(2026, 3, 6, 9)
    saturday = utc(2026, 3, 7, 12)
    assert due_at(DEFAULT, friday, 8, [], saturday) == utc(2026, 3, 6, 17)
    assert sla_state(DEFAULT, friday, 8, [], utc(2026, 3, 6, 16, 59)) == SlaState.AT_RISK
    assert sla_state(DEFAULT, friday, 8, [], utc(2026, 3, 6, 17)) == SlaState.BREACHED
    assert sla_state(DEFAULT, friday, 8, [], saturday) == SlaState.BREACHED
    assert sla_state(DEFAULT, friday, 8, [], saturday, met_at=saturday) == SlaState.BREACHED


def test_sla_state_while_paused() -> None:
    pauses = [Pause(utc(2026, 3, 2, 10), None)]
    assert sla_state(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 4, 12)) == SlaState.PAUSED


def test_a_breach_outranks_a_pause() -> None:
    pauses = [Pause(utc(2026, 3, 2, 14), None)]
    assert sla_state(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 2, 15)) == SlaState.BREACHED


def test_at_risk_once_the_pause_ends_if_the_clock_is_past_the_ratio() -> None:
    pauses = [Pause(utc(2026, 3, 2, 12), utc(2026, 3, 2, 14))]
    assert sla_state(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 2, 13)) == SlaState.PAUSED
    assert sla_state(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 2, 14)) == SlaState.AT_RISK
    assert sla_state(DEFAULT, MONDAY_9, 4, pauses, utc(2026, 3, 2, 15)) == SlaState.BREACHED


@pytest.mark.parametrize(
    ("met_at", "state"),
    [
        (utc(2026, 3, 2, 9, 30), SlaState.MET),
        (utc(2026, 3, 2, 13), SlaState.MET),  # at the due time itself
        (utc(2026, 3, 2, 13, 0, 1), SlaState.BREACHED),
        (utc(2026, 3, 5, 10), SlaState.BREACHED),
    ],
)
def test_a_met_target_stays_met_or_breached_for_good(met_at: datetime, state: SlaState) -> None:
    much_later = utc(2026, 4, 1)
    assert sla_state(DEFAULT, MONDAY_9, 4, [], much_later, met_at=met_at) == state


def test_met_during_a_pause_before_the_target_is_met() -> None:
    pauses = [Pause(utc(2026, 3, 2, 10), None)]
    met = utc(2026, 3, 9, 12)
    assert sla_state(DEFAULT, MONDAY_9, 4, pauses, met, met_at=met) == SlaState.MET


def test_a_custom_at_risk_ratio() -> None:
    assert sla_state(DEFAULT, MONDAY_9, 4, [], utc(2026, 3, 2, 11), at_risk_ratio=0.5) == (
        SlaState.AT_RISK
    )
    assert sla_state(DEFAULT, MONDAY_9, 4, [], utc(2026, 3, 2, 11)) == SlaState.OK


def test_due_time_and_state_agree_at_every_quarter_hour() -> None:
    pauses = [
        Pause(utc(2026, 3, 2, 11), utc(2026, 3, 2, 14)),
        Pause(utc(2026, 3, 3, 16), utc(2026, 3, 4, 10)),
    ]
    now = MONDAY_9
    while now < utc(2026, 3, 6):
        due = due_at(DEFAULT, MONDAY_9, 8, pauses, now)
        state = sla_state(DEFAULT, MONDAY_9, 8, pauses, now)
        if due is None:
            assert state in (SlaState.PAUSED, SlaState.BREACHED)
        else:
            assert (state == SlaState.BREACHED) == (now >= due), now
        now += timedelta(minutes=15)


def test_sla_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="target_hours"):
        due_at(DEFAULT, MONDAY_9, -1, [], MONDAY_9)
    with pytest.raises(ValueError, match="target_hours"):
        sla_state(DEFAULT, MONDAY_9, math.nan, [], MONDAY_9)
    with pytest.raises(ValueError, match="at_risk_ratio"):
        sla_state(DEFAULT, MONDAY_9, 4, [], MONDAY_9, at_risk_ratio=1.5)
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        Pause(utc(2026, 3, 2, 12), utc(2026, 3, 2, 11))
    with pytest.raises(ValueError, match="timezone-aware"):
        Pause(datetime(2026, 3, 2, 12), None)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_elapsed(DEFAULT, datetime(2026, 3, 2, 9), MONDAY_9, [])
    with pytest.raises(ValueError, match="resolution_hours"):
        SlaTarget(first_response_hours=4, resolution_hours=-16)


def test_sla_states_are_plain_strings() -> None:
    assert [state.value for state in SlaState] == ["ok", "at_risk", "breached", "paused", "met"]
    assert SlaState.AT_RISK == "at_risk"
    assert SlaTarget(4, 16) == SlaTarget(first_response_hours=4.0, resolution_hours=16.0)


# Fit for workflow code.


def test_domain_uses_only_the_standard_library_and_never_the_clock() -> None:
    """Every module of `domain` (the calendar among them) is fit for workflow code."""
    for path in Path(calendar_module.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert imported <= {*sys.stdlib_module_names, "domain"}, path.name
        assert not imported & {"random", "time", "os", "secrets", "uuid"}, path.name
        clock_calls = {"now", "today", "utcnow", "time", "monotonic"}
        assert not [
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in clock_calls
        ], path.name
