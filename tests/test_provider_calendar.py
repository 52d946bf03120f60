"""The provider's month calendar, pure parts: the grid of dates of a month (whole Monday–Sunday
weeks across month and year boundaries), month steps, free time per day (opening hours minus
booked time, DST days counted on the clock) and the localised month title."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from booking_app.ui.state.calendar_math import add_months, free_spans, month_grid, month_title, span_minutes

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def at(day: dt.date, hh: int, mm: int = 0, tz=BERLIN) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=tz)


# ---- the grid ---------------------------------------------------------------------------------

@pytest.mark.parametrize("month, first, last, weeks", [
    (dt.date(2025, 12, 1), dt.date(2025, 12, 1), dt.date(2026, 1, 4), 5),    # starts on a Monday
    (dt.date(2026, 3, 1), dt.date(2026, 2, 23), dt.date(2026, 4, 5), 6),     # starts on a Sunday: 6 weeks
    (dt.date(2021, 2, 1), dt.date(2021, 2, 1), dt.date(2021, 2, 28), 4),     # 28 days Monday–Sunday: 4 weeks
    (dt.date(2024, 2, 1), dt.date(2024, 1, 29), dt.date(2024, 3, 3), 5),     # leap February
    (dt.date(2026, 1, 1), dt.date(2025, 12, 29), dt.date(2026, 2, 1), 5),    # across the new year
    (dt.date(2025, 8, 1), dt.date(2025, 7, 28), dt.date(2025, 8, 31), 5),    # ends on a Sunday
])
def test_month_grid_is_whole_weeks_around_the_month(month, first, last, weeks):
    grid = month_grid(month)
    assert grid[0] == first and grid[-1] == last
    assert len(grid) == 7 * weeks
    assert grid[0].weekday() == 0 and grid[-1].weekday() == 6
    assert all(b - a == dt.timedelta(days=1) for a, b in zip(grid, grid[1:]))  # no gaps, no repeats
    # every day of the month is there, once, and at most 6 days of each neighbour
    in_month = [d for d in grid if d.month == month.month]
    assert in_month[0] == month and (in_month[-1] + dt.timedelta(days=1)).day == 1
    assert len(grid) - len(in_month) <= 12


def test_month_grid_takes_any_day_of_the_month():
    assert month_grid(dt.date(2026, 3, 17)) == month_grid(dt.date(2026, 3, 1))


def test_month_grid_spanning_a_dst_change_keeps_calendar_days():
    # Europe switches on the last Sunday of March/October; the grid is local dates, one per day
    grid = month_grid(dt.date(2026, 10, 1))
    assert dt.date(2026, 10, 25) in grid and grid.count(dt.date(2026, 10, 25)) == 1
    assert len(grid) == 35


def test_month_grid_at_the_ends_of_the_calendar():
    last = month_grid(dt.date(9999, 12, 5))
    assert last[0] == dt.date(9999, 11, 29) and last[-1] == dt.date.max  # a Friday: the grid stops there
    first = month_grid(dt.date(1, 1, 20))
    assert first[0] == dt.date.min and first[-1] == dt.date(1, 2, 4)


@pytest.mark.parametrize("day, months, expected", [
    (dt.date(2026, 11, 27), 1, dt.date(2026, 12, 1)),
    (dt.date(2026, 12, 31), 1, dt.date(2027, 1, 1)),
    (dt.date(2027, 1, 31), -1, dt.date(2026, 12, 1)),
    (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 1)),  # no "February 31st"
    (dt.date(2026, 5, 15), -17, dt.date(2024, 12, 1)),
    (dt.date(2026, 5, 15), 0, dt.date(2026, 5, 1)),
])
def test_add_months_goes_to_the_first_of_the_month(day, months, expected):
    assert add_months(day, months) == expected


def test_add_months_beyond_the_calendar_is_an_error():
    with pytest.raises(ValueError):
        add_months(dt.date(9999, 12, 1), 1)
    with pytest.raises(ValueError):
        add_months(dt.date(1, 1, 1), -1)


# ---- free time --------------------------------------------------------------------------------

def test_free_time_is_open_hours_minus_bookings():
    day = dt.date(2026, 12, 2)
    opened = [(at(day, 9), at(day, 13)), (at(day, 14), at(day, 18))]
    busy = [(at(day, 10), at(day, 11)), (at(day, 12, 30), at(day, 14, 30))]  # the second spans the lunch break
    free = free_spans(opened, busy)
    assert free == [(at(day, 9), at(day, 10)), (at(day, 11), at(day, 12, 30)), (at(day, 14, 30), at(day, 18))]
    assert span_minutes(opened) == 8 * 60
    assert span_minutes(free) == 60 + 90 + 210


def test_overlapping_and_unsorted_bookings_count_once():
    day = dt.date(2026, 12, 2)
    opened = [(at(day, 9), at(day, 17))]
    busy = [(at(day, 15), at(day, 16)), (at(day, 9), at(day, 10)), (at(day, 9, 30), at(day, 10, 30)),
            (at(day, 9), at(day, 10))]  # a room of capacity 2: two bookings at the same time
    assert span_minutes(free_spans(opened, busy)) == 8 * 60 - 90 - 60


def test_bookings_outside_the_open_hours_do_not_count():
    day = dt.date(2026, 12, 2)
    opened = [(at(day, 9), at(day, 12))]
    busy = [(at(day, 7), at(day, 8)), (at(day, 12), at(day, 13)), (at(day, 22), at(day + dt.timedelta(days=1), 2))]
    assert free_spans(opened, busy) == opened


def test_a_fully_booked_day_has_no_free_time():
    day = dt.date(2026, 12, 2)
    opened = [(at(day, 9), at(day, 10)), (at(day, 11), at(day, 12))]
    busy = [(at(day, 8), at(day, 10, 30)), (at(day, 10, 30), at(day, 12))]
    assert free_spans(opened, busy) == []
    assert span_minutes([]) == 0


def test_closed_day_has_no_free_time():
    day = dt.date(2026, 12, 2)
    assert free_spans([], [(at(day, 9), at(day, 10))]) == []


def test_bookings_in_another_timezone_are_compared_on_the_clock():
    day = dt.date(2026, 12, 2)
    opened = [(at(day, 9), at(day, 17))]  # Berlin, UTC+1 in December
    busy = [(dt.datetime(2026, 12, 2, 4, 0, tzinfo=NEW_YORK), dt.datetime(2026, 12, 2, 5, 0, tzinfo=NEW_YORK)),  # 10–11
            (dt.datetime(2026, 12, 2, 15, 0, tzinfo=UTC), dt.datetime(2026, 12, 2, 16, 0, tzinfo=UTC))]  # 16–17
    free = free_spans(opened, busy)
    assert free == [(at(day, 9), at(day, 10)), (at(day, 11), at(day, 16))]
    assert all(a.tzinfo is BERLIN and b.tzinfo is BERLIN for a, b in free)  # shown in the open hours' zone
    assert span_minutes(free) == 6 * 60


@pytest.mark.parametrize("day, hours", [
    (dt.date(2026, 3, 29), 23),  # clocks go forward: 02:00 → 03:00
    (dt.date(2026, 10, 25), 25),  # clocks go back: 03:00 → 02:00
    (dt.date(2026, 10, 26), 24),
])
def test_a_whole_dst_day_counts_its_real_hours(day, hours):
    opened = [(at(day, 0), at(day + dt.timedelta(days=1), 0))]
    assert span_minutes(opened) == hours * 60
    busy = [(at(day, 1), at(day, 4))]  # on the clock: 2 h (spring), 4 h (autumn), 3 h
    real = int((at(day, 4).astimezone(UTC) - at(day, 1).astimezone(UTC)).total_seconds() // 60)
    assert real == {23: 120, 25: 240, 24: 180}[hours]
    assert span_minutes(free_spans(opened, busy)) == hours * 60 - real


def test_free_time_across_the_autumn_fold():
    # 01:30–02:30 CEST then 02:00–03:00 CET: the repeated hour is one real hour more
    day = dt.date(2026, 10, 25)
    opened = [(at(day, 0), at(day, 6))]  # 7 real hours (the 02:00–03:00 hour happens twice)
    assert span_minutes(opened) == 7 * 60
    first = dt.datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)  # fold=0: the first 02:30 (CEST)
    second = dt.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)  # the second 02:30 (CET)
    assert span_minutes(free_spans(opened, [(first, second)])) == 6 * 60


# ---- the title ---------------------------------------------------------------------------------

@pytest.mark.parametrize("locale, expected", [
    ("en", "December 2026"), ("es", "Diciembre de 2026"), ("fr", "Décembre 2026"), ("de", "Dezember 2026"),
    ("ar", "ديسمبر 2026"),
])
def test_month_title_by_locale(locale, expected):
    assert month_title(dt.date(2026, 12, 1), locale) == expected
