"""services/money.py (typed prices ↔ minor units) and services/opening_hours.py (a provider's
merged open hours per local date, as the provider calendars show them)."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from booking_app.services import money, opening_hours
from booking_app.services.errors import InvalidInput
from tests.factories import actor_for, make_bookable, make_provider


@pytest.mark.parametrize("text, currency, minor", [
    ("", "EUR", 0), ("12.50", "EUR", 1250), ("12,5", "EUR", 1250), (" 7 ", "EUR", 700),
    ("1200", "JPY", 1200), ("1.234", "KWD", 1234), ("3", "eur", 300), ("3.10", "XX", 310),
])
def test_parse_price_reads_the_currency_minor_unit(text, currency, minor):
    assert money.parse_price(text, currency) == minor
    assert money.parse_price(money.format_price(minor, currency), currency) == minor


@pytest.mark.parametrize("text, currency", [
    ("12.505", "EUR"), ("-1", "EUR"), ("abc", "EUR"), ("NaN", "EUR"), ("Infinity", "EUR"), ("12.5", "JPY"),
])
def test_parse_price_refuses_what_is_not_an_amount_of_the_currency(text, currency):
    with pytest.raises(InvalidInput) as err:
        money.parse_price(text, currency)
    assert err.value.field == "price_cents"


def test_format_price_and_to_decimal():
    assert money.format_price(1250, "EUR") == "12.50"
    assert money.format_price(0, "EUR") == "0.00"
    assert money.format_price(1200, "JPY") == "1200"
    assert money.to_decimal(1250, "EUR") == Decimal("12.50")
    assert money.to_decimal(1200, "JPY") == Decimal(1200)
    assert money.to_decimal(1234, "KWD") == Decimal("1.234")


def test_open_hours_merge_the_providers_rooms_and_services_in_the_viewers_zone(db_url):
    provider = make_provider()
    make_bookable(provider, weekly=[{"weekday": d, "start": "09:00", "end": "12:00"} for d in range(7)])
    make_bookable(provider, kind="service", weekly=[{"weekday": d, "start": "11:00", "end": "14:00"} for d in range(7)])
    # an end at "24:00" (the next midnight); 22:00-24:00 Berlin = 21:00-23:00 UTC in winter
    make_bookable(provider, timezone="Europe/Berlin",
                  weekly=[{"weekday": d, "start": "22:00", "end": "24:00"} for d in range(7)],
                  exceptions=[{"date": "2030-01-09", "closed": True}])
    make_bookable(make_provider())  # another provider's room
    first, last = dt.date(2030, 1, 8), dt.date(2030, 1, 10)
    hours = opening_hours.provider_open_hours(actor=actor_for(provider), provider_id=provider.id,
                                              date_from=first, date_to=last, tz="UTC")
    assert sorted(hours) == [first, first + dt.timedelta(days=1), last]
    utc = zoneinfo.ZoneInfo("UTC")

    def at(day: int, hour: int) -> dt.datetime:
        return dt.datetime(2030, 1, day, hour, tzinfo=utc)

    assert hours[dt.date(2030, 1, 8)] == [(at(8, 9), at(8, 14)), (at(8, 21), at(8, 23))]
    # the 9th is closed in Berlin: no 21:00-23:00 that evening
    assert hours[dt.date(2030, 1, 9)] == [(at(9, 9), at(9, 14))]
    assert hours[dt.date(2030, 1, 10)] == [(at(10, 9), at(10, 14)), (at(10, 21), at(10, 23))]


def test_open_hours_leave_events_out_and_default_to_utc(db_url):
    provider = make_provider()
    make_bookable(provider, kind="event")
    hours = opening_hours.provider_open_hours(actor=actor_for(provider), provider_id=provider.id,
                                              date_from=dt.date(2030, 1, 8), date_to=dt.date(2030, 1, 8),
                                              tz="Not/AZone")
    assert hours == {dt.date(2030, 1, 8): []}


@pytest.mark.parametrize("minor, percent, share", [
    (1225, 10, 123),     # exactly half a cent: up (banker's would give 122)
    (1235, 10, 124),     # half a cent after an odd digit: up as well
    (1234, 10, 123),     # below half: down
    (5, 50, 3),          # 2.5 → 3
    (1, 50, 1),          # 0.5 → 1
    (1, 49, 0),
    (0, 30, 0),
    (9999, 100, 9999),
    (10000, "12.5", 1250),
    (333, Decimal("33.3333"), 111),
])
def test_percent_of_rounds_half_up_to_a_whole_minor_unit(minor, percent, share):
    assert money.percent_of(minor, percent) == share
