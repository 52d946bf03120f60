"""Slot computation: timezones and DST, hours and exceptions, notice/advance, buffers,
capacity, events, provider time shared between services, set-based queries."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import event

from booking_app import db
from booking_app.config import get_settings
from booking_app.services import availability, bookings, catalog
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput, NotAvailable, NotFound
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_event, make_provider

MADRID = zoneinfo.ZoneInfo("Europe/Madrid")
UTC = dt.timezone.utc
SPRING = dt.date(2027, 3, 28)  # last Sunday of March 2027: 02:00 → 03:00
AUTUMN = dt.date(2027, 10, 31)  # last Sunday of October 2027: 03:00 → 02:00
NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)  # a fixed "now" before both


def local(day: dt.date, h: int, m: int = 0, tz=MADRID) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(h, m), tzinfo=tz).astimezone(UTC)


def slots(b, d1, d2=None, now=NOW):
    return availability.slots(bookable_id=b.id, date_from=d1, date_to=d2 or d1, now=now)


def guest(i=0):
    return {"name": "Guest", "email": f"g{i}@example.com"}


# --- DST ---------------------------------------------------------------------------------

def test_dst_spring_forward_day_has_23_hourly_slots(db_url):
    room = make_bookable(weekly=ALL_WEEK, timezone="Europe/Madrid", max_advance_days=730)
    got = slots(room, SPRING)
    assert len(got) == 23
    hours = [s.start.astimezone(MADRID).hour for s in got]
    assert 2 not in hours and hours[:3] == [0, 1, 3]
    assert all(s.end - s.start == dt.timedelta(hours=1) for s in got)
    assert len(slots(room, SPRING - dt.timedelta(days=1))) == 24


def test_dst_fall_back_day_has_25_hourly_slots(db_url):
    room = make_bookable(weekly=ALL_WEEK, timezone="Europe/Madrid", max_advance_days=730)
    got = slots(room, AUTUMN)
    assert len(got) == 25
    hours = [s.start.astimezone(MADRID).hour for s in got]
    assert hours.count(2) == 2  # 02:00 CEST and 02:00 CET are different instants
    assert len({s.start for s in got}) == 25


def test_office_hours_keep_local_time_across_dst(db_url):
    room = make_bookable(timezone="Europe/Madrid", max_advance_days=730)  # 09-17 every day
    before, after = slots(room, SPRING - dt.timedelta(days=1)), slots(room, SPRING)
    assert before[0].start == dt.datetime(2027, 3, 27, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert after[0].start == dt.datetime(2027, 3, 28, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert len(before) == len(after) == 8
    both = slots(room, SPRING - dt.timedelta(days=1), SPRING)
    assert both == before + after  # a range is the concatenation of its days


def test_booking_on_a_dst_day(db_url):
    room = make_bookable(weekly=ALL_WEEK, timezone="Europe/Madrid", max_advance_days=730)
    with pytest.raises(NotAvailable):  # 02:30 local does not exist that night: not a slot start
        bookings.book(actor=Actor.guest(), service_id=room.id, start=dt.datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
                      guest=guest(), now=NOW)
    bk = bookings.book(actor=Actor.guest(), service_id=room.id, start=local(SPRING, 3), guest=guest(), now=NOW)
    assert bk.end - bk.start == dt.timedelta(hours=1)
    assert local(SPRING, 3) not in {s.start for s in slots(room, SPRING)}


# --- hours, exceptions, notice, advance, past -----------------------------------------------

def test_several_ranges_per_day_and_grid(db_url):
    room = make_bookable(duration_minutes=90, weekly=[{"weekday": d, "start": "09:00", "end": "13:00"} for d in range(7)]
                         + [{"weekday": d, "start": "14:00", "end": "18:00"} for d in range(7)])
    day = dt.date(2027, 2, 1)
    starts = [s.start.strftime("%H:%M") for s in slots(room, day)]
    assert starts == ["09:00", "10:30", "14:00", "15:30"]  # 12:00 and 17:00 would end after closing


def test_closed_day_and_special_hours(db_url):
    day = dt.date(2027, 2, 1)
    room = make_bookable(exceptions=[{"date": day.isoformat(), "closed": True},
                                     {"date": (day + dt.timedelta(days=1)).isoformat(), "start": "12:00", "end": "14:00"}])
    assert slots(room, day) == []
    assert [s.start.hour for s in slots(room, day + dt.timedelta(days=1))] == [12, 13]
    assert len(slots(room, day + dt.timedelta(days=2))) == 8


def test_past_slots_and_minimum_notice(db_url):
    room = make_bookable(min_notice_minutes=120)
    day = dt.date(2027, 2, 1)
    now = dt.datetime(2027, 2, 1, 8, 30, tzinfo=UTC)
    assert [s.start.hour for s in slots(room, day, now=now)][:2] == [11, 12]  # 10:30 earliest → 11:00
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=dt.datetime(2027, 2, 1, 10, tzinfo=UTC),
                      guest=guest(), now=now)
    room2 = make_bookable()
    now = dt.datetime(2027, 2, 1, 12, 10, tzinfo=UTC)
    assert slots(room2, day, now=now)[0].start.hour == 13
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room2.id, start=dt.datetime(2027, 2, 1, 12, tzinfo=UTC),
                      guest=guest(), now=now)


def test_maximum_advance(db_url):
    room = make_bookable(max_advance_days=2)
    got = slots(room, NOW.date(), NOW.date() + dt.timedelta(days=5))
    assert got and max(s.start for s in got) <= NOW + dt.timedelta(days=2)
    assert {s.start.date() for s in got} == {NOW.date() + dt.timedelta(days=i) for i in range(3)}
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=dt.datetime(2027, 1, 14, 9, tzinfo=UTC),
                      guest=guest(), now=NOW)


def test_not_a_grid_start_is_not_available(db_url):
    room = make_bookable()
    for start in (dt.datetime(2027, 2, 1, 9, 30, tzinfo=UTC), dt.datetime(2027, 2, 1, 17, 0, tzinfo=UTC),
                  dt.datetime(2027, 2, 1, 7, 0, tzinfo=UTC)):
        with pytest.raises(NotAvailable):
            bookings.book(actor=Actor.guest(), service_id=room.id, start=start, guest=guest(), now=NOW)


# --- buffers, capacity, holds -----------------------------------------------------------------

def test_buffers_hide_neighbouring_slots(db_url):
    room = make_bookable(buffer_before_minutes=15, buffer_after_minutes=15)
    day = dt.date(2027, 2, 1)
    bookings.book(actor=Actor.guest(), service_id=room.id, start=dt.datetime(2027, 2, 1, 10, tzinfo=UTC),
                  guest=guest(), now=NOW)
    assert [s.start.hour for s in slots(room, day)] == [12, 13, 14, 15, 16]
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=dt.datetime(2027, 2, 1, 11, tzinfo=UTC),
                      guest=guest(1), now=NOW)


def test_single_buffer_minutes_field_sets_both(db_url):
    room = make_bookable(buffer_minutes=30)
    assert (room.buffer_before_minutes, room.buffer_after_minutes, room.buffer_minutes) == (30, 30, 30)


def test_capacity_counts_seats_and_disappears_when_full(db_url):
    room = make_bookable(capacity=3)
    at = dt.datetime(2027, 2, 1, 10, tzinfo=UTC)
    bookings.book(actor=Actor.guest(), service_id=room.id, start=at, quantity=2, guest=guest(), now=NOW)
    by_start = {s.start: s.remaining for s in slots(room, at.date())}
    assert by_start[at] == 1 and by_start[at + dt.timedelta(hours=1)] == 3
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=at, quantity=2, guest=guest(1), now=NOW)
    bookings.book(actor=Actor.guest(), service_id=room.id, start=at, quantity=1, guest=guest(2), now=NOW)
    assert at not in {s.start for s in slots(room, at.date())}


def test_valid_hold_counts_expired_hold_does_not(db_url, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    room = make_bookable(price_cents=500)
    at = dt.datetime(2027, 2, 1, 10, tzinfo=UTC)
    bk = bookings.book(actor=Actor.guest(), service_id=room.id, start=at, payment_method="card", guest=guest(), now=NOW)
    hold = dt.timedelta(minutes=get_settings().guest_hold_minutes)  # a guest's hold (issue 20)
    assert bk.status == "pending" and bk.hold_expires_at == NOW + hold
    assert at not in {s.start for s in slots(room, at.date(), now=NOW + hold - dt.timedelta(minutes=1))}
    assert at in {s.start for s in slots(room, at.date(), now=NOW + hold)}


# --- events -------------------------------------------------------------------------------------

def test_event_slots_are_its_sessions_and_closed_days_apply(db_url):
    provider = make_provider()
    d1 = dt.datetime.now(UTC).date() + dt.timedelta(days=3)
    s1 = dt.datetime.combine(d1, dt.time(18), tzinfo=UTC)
    s2 = s1 + dt.timedelta(days=1)
    s3 = s1 + dt.timedelta(days=2)
    ev, sessions = make_event(provider, sessions=[s1, s2, s3], capacity=4)
    catalog.add_event_session(actor=actor_for(provider), bookable_id=ev.id, start=s1 + dt.timedelta(hours=1),
                              capacity=2)
    catalog.set_availability(actor=actor_for(provider), bookable_id=ev.id, weekly=[],
                             exceptions=[{"date": (d1 + dt.timedelta(days=1)).isoformat(), "closed": True}])
    now = dt.datetime.now(UTC)
    got = availability.slots(bookable_id=ev.id, date_from=d1, date_to=d1 + dt.timedelta(days=5), now=now)
    assert [(s.start, s.remaining) for s in got] == [(s1, 4), (s1 + dt.timedelta(hours=1), 2), (s3, 4)]
    assert got[0].end - got[0].start == dt.timedelta(minutes=60)
    bookings.book(actor=Actor.guest(), service_id=ev.id, start=s1, quantity=3, guest=guest())
    with pytest.raises(NotAvailable):  # closed day
        bookings.book(actor=Actor.guest(), service_id=ev.id, start=s2, guest=guest(1))
    with pytest.raises(NotAvailable):  # no session at that time
        bookings.book(actor=Actor.guest(), service_id=ev.id, start=s1 + dt.timedelta(minutes=30), guest=guest(2))
    got = availability.slots(bookable_id=ev.id, date_from=d1, date_to=d1, now=now)
    assert got[0].remaining == 1
    bookings.book(actor=Actor.guest(), service_id=ev.id, start=s1, guest=guest(3))
    assert s1 not in {s.start for s in availability.slots(bookable_id=ev.id, date_from=d1, date_to=d1, now=now)}


# --- provider time ---------------------------------------------------------------------------------

def test_services_of_one_provider_share_the_provider_time(db_url):
    provider = make_provider()
    a = make_bookable(provider, kind="service", duration_minutes=30)
    b = make_bookable(provider, kind="service", duration_minutes=60)
    other = make_bookable(kind="service", duration_minutes=60)
    room = make_bookable(provider, kind="room", duration_minutes=60)
    day = dt.date(2027, 2, 1)
    bookings.book(actor=Actor.guest(), service_id=a.id, start=dt.datetime(2027, 2, 1, 10, 30, tzinfo=UTC),
                  guest=guest(), now=NOW)
    assert 10 not in [s.start.hour for s in slots(b, day)]
    assert [s.start.hour for s in slots(b, day)] == [9, 11, 12, 13, 14, 15, 16]
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=b.id, start=dt.datetime(2027, 2, 1, 10, tzinfo=UTC),
                      guest=guest(1), now=NOW)
    assert len(slots(other, day)) == 8  # another provider is free
    assert len(slots(room, day)) == 8  # the provider's room is a resource, not the provider's time


# --- input and queries -----------------------------------------------------------------------------

def test_bad_ranges_are_invalid_input(db_url):
    room = make_bookable()
    for d1, d2 in [("2027-02-02", "2027-02-01"), ("2027-01-01", "2028-01-02"), ("nope", "2027-01-01"),
                   ("2027-02-30", "2027-03-01")]:
        with pytest.raises(InvalidInput):
            availability.slots(bookable_id=room.id, date_from=d1, date_to=d2, now=NOW)
    assert len(availability.slots(bookable_id=room.id, date_from="2027-01-11", date_to="2028-01-11", now=NOW)) > 0


def test_unknown_or_inactive_bookable_not_found(db_url):
    provider = make_provider()
    room = make_bookable(provider)
    catalog.deactivate(actor=actor_for(provider), bookable_id=room.id)
    for bid in (room.id, 999_999):
        with pytest.raises(NotFound):
            availability.slots(bookable_id=bid, date_from="2027-02-01", date_to="2027-02-01", now=NOW)


def test_slots_use_a_constant_number_of_queries(db_url):
    room = make_bookable(weekly=ALL_WEEK)
    for h in range(0, 24 * 5, 5):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=dt.datetime(2027, 2, 1, tzinfo=UTC)
                      + dt.timedelta(hours=h), guest=guest(h), now=NOW)
    statements: list[str] = []

    def count(conn, cursor, statement, *a):
        statements.append(statement)

    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        got = slots(room, dt.date(2027, 2, 1), dt.date(2027, 3, 31))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(got) == 59 * 24 - 24
    booking_queries = [q for q in statements if "FROM bookings" in q]
    assert len(booking_queries) == 1 and len(statements) <= 5, statements
