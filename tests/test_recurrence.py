"""Pure tests of the recurrence rules of a booking series (services/recurrence.py)."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from booking_app.services import recurrence
from booking_app.services.errors import InvalidInput

UTC = dt.timezone.utc
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
FAR = dt.datetime(2100, 1, 1, tzinfo=UTC)


def expand(start, tz=PARIS, horizon=FAR, max_count=52, **rule):
    return recurrence.expand(start, recurrence.parse(rule, max_count=max_count), tz, horizon=horizon,
                             horizon_days=365, max_count=max_count)


def local(values, tz=PARIS):
    return [v.astimezone(tz).strftime("%Y-%m-%d %H:%M") for v in values]


def test_weekly_keeps_the_local_time_across_spring_forward():
    start = dt.datetime(2026, 3, 22, 10, 0, tzinfo=PARIS)  # CET; DST starts on March 29
    got = expand(start, frequency="weekly", count=3)
    assert local(got) == ["2026-03-22 10:00", "2026-03-29 10:00", "2026-04-05 10:00"]
    assert [g.hour for g in got] == [9, 8, 8]  # UTC moves by an hour, the wall time does not


def test_daily_keeps_the_local_time_across_fall_back():
    start = dt.datetime(2026, 10, 31, 10, 0, tzinfo=NEW_YORK)  # DST ends on Nov 1 in the US
    got = expand(start, tz=NEW_YORK, frequency="daily", count=3)
    assert local(got, NEW_YORK) == ["2026-10-31 10:00", "2026-11-01 10:00", "2026-11-02 10:00"]
    assert [g.hour for g in got] == [14, 15, 15]


def test_a_time_in_the_spring_forward_gap_moves_forward_like_the_slots():
    start = dt.datetime(2026, 3, 28, 1, 30, tzinfo=UTC)  # 02:30 Paris on March 28 exists
    got = expand(start, frequency="daily", count=2)
    assert got[0] == start and got[1] == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST


def test_every_two_weeks():
    start = dt.datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert [g.date() for g in expand(start, tz=zoneinfo.ZoneInfo("UTC"), frequency="weekly", interval=2, count=3)] == [
        dt.date(2026, 1, 6), dt.date(2026, 1, 20), dt.date(2026, 2, 3)]


def test_monthly_by_date_skips_months_without_that_date():
    start = dt.datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    got = expand(start, tz=zoneinfo.ZoneInfo("UTC"), frequency="monthly", count=4)
    assert [g.date() for g in got] == [dt.date(2026, 1, 31), dt.date(2026, 3, 31), dt.date(2026, 5, 31),
                                       dt.date(2026, 7, 31)]


def test_monthly_by_weekday_second_tuesday():
    start = dt.datetime(2026, 1, 13, 9, 0, tzinfo=UTC)  # the 2nd Tuesday of January 2026
    got = expand(start, tz=zoneinfo.ZoneInfo("UTC"), frequency="monthly", by="weekday", count=3)
    assert [g.date() for g in got] == [dt.date(2026, 1, 13), dt.date(2026, 2, 10), dt.date(2026, 3, 10)]
    assert all(g.weekday() == 1 for g in got)


def test_monthly_fifth_weekday_only_in_months_that_have_one():
    start = dt.datetime(2026, 1, 29, 9, 0, tzinfo=UTC)  # the 5th Thursday of January 2026
    got = expand(start, tz=zoneinfo.ZoneInfo("UTC"), frequency="monthly", by="weekday", count=3)
    assert [g.date() for g in got] == [dt.date(2026, 1, 29), dt.date(2026, 4, 30), dt.date(2026, 7, 30)]


def test_until_is_inclusive_and_equivalent_to_count():
    start = dt.datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    by_until = expand(start, frequency="weekly", until="2026-05-25")
    by_count = expand(start, frequency="weekly", count=4)
    assert by_until == by_count and len(by_until) == 4


def test_until_before_the_start_is_refused():
    with pytest.raises(InvalidInput) as err:
        expand(dt.datetime(2026, 5, 4, 9, tzinfo=UTC), frequency="weekly", until="2026-05-01")
    assert err.value.field == "recurrence.until"


def test_bounded_by_the_horizon_and_the_maximum_count():
    start = dt.datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    horizon = start + dt.timedelta(days=30)
    assert len(expand(start, horizon=horizon, frequency="weekly", count=5)) == 5  # day 28 is inside
    with pytest.raises(InvalidInput) as err:
        expand(start, horizon=horizon, frequency="weekly", count=6)
    assert err.value.message == recurrence.BEYOND_HORIZON
    with pytest.raises(InvalidInput):
        expand(start, horizon=horizon, frequency="weekly", until="2026-06-30")
    with pytest.raises(InvalidInput) as err:
        expand(start, frequency="daily", until="2026-12-31", max_count=52)
    assert err.value.message == recurrence.TOO_MANY
    with pytest.raises(InvalidInput):
        expand(start, frequency="daily", count=53, max_count=52)


@pytest.mark.parametrize("raw", [
    None, "weekly", [], {"frequency": "hourly", "count": 2}, {"frequency": "weekly"},
    {"frequency": "weekly", "count": 2, "until": "2026-06-01"}, {"frequency": "weekly", "count": 0},
    {"frequency": "weekly", "count": 10**12}, {"frequency": "weekly", "count": True},
    {"frequency": "weekly", "count": 2, "interval": 0}, {"frequency": "weekly", "count": 2, "interval": 53},
    {"frequency": "weekly", "count": "2\x00"}, {"frequency": "weekly", "until": "2026-06-01\r\nX"},
    {"frequency": "weekly", "until": "9999-12-31"}, {"frequency": "weekly", "count": 2, "mode": "some"},
    {"frequency": "monthly", "count": 2, "by": "day"}, {"frequency": "weekly", "count": 2, "extra": 1},
    {"frequency": "weekly\x00", "count": 2}, {"frequency": "x" * 100_000, "count": 2},
])
def test_hostile_rules_are_invalid_input(raw):
    with pytest.raises(InvalidInput):
        recurrence.parse(raw, max_count=52)


def test_defaults():
    rule = recurrence.parse({"frequency": "weekly", "count": 2}, max_count=52)
    assert (rule.interval, rule.mode, rule.by) == (1, "all_or_nothing", "date")
