"""Catalog: bookables, validation, authorization, availability edits, sessions, search."""
from __future__ import annotations

import datetime as dt

import pytest

from booking_app.services import availability, booking_queries, bookings, catalog
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, InvalidInput, NotAvailable, NotFound
from tests.factories import ALL_WEEK, actor_for, make_admin, make_bookable, make_customer, make_event, make_provider

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


def base(**kw):
    params = dict(name="Room A", kind="room", duration_minutes=60, capacity=1, price_cents=1000, currency="eur",
                  timezone="Europe/Madrid")
    params.update(kw)
    return params


def test_create_get_update_deactivate(db_url):
    p = make_provider(full_name="Pat")
    a = actor_for(p)
    b = catalog.create_bookable(actor=a, **base(description="Nice", location="Madrid", buffer_minutes=10,
                                                refund_percent=50, cancel_cutoff_hours=24))
    assert (b.currency, b.provider_id, b.provider_name, b.buffer_before_minutes, b.buffer_after_minutes) == \
        ("EUR", p.id, "Pat", 10, 10)
    assert catalog.get_bookable(bookable_id=b.id) == b
    u = catalog.update_bookable(actor=a, bookable_id=b.id, price_cents=1500, buffer_after_minutes=0)
    assert (u.price_cents, u.buffer_before_minutes, u.buffer_after_minutes, u.name) == (1500, 10, 0, "Room A")
    d = catalog.deactivate(actor=a, bookable_id=b.id)
    assert d.is_active is False
    with pytest.raises(NotFound):
        catalog.get_bookable(bookable_id=b.id)  # hidden from the public
    assert catalog.get_bookable(bookable_id=b.id, actor=a).is_active is False  # not from its provider
    assert catalog.update_bookable(actor=a, bookable_id=b.id, is_active=True).is_active


@pytest.mark.parametrize("bad", [
    dict(name=""), dict(name="x" * 201), dict(kind="boat"), dict(duration_minutes=0), dict(duration_minutes=24 * 60 + 1),
    dict(duration_minutes="abc"), dict(duration_minutes=1.5), dict(capacity=0), dict(price_cents=-1),
    dict(currency="EURO"), dict(currency="€"), dict(timezone="Mars/Olympus"), dict(timezone="../etc/passwd"),
    dict(refund_percent=101), dict(refund_percent=-1), dict(buffer_minutes=-5), dict(min_notice_minutes=-1),
    dict(max_advance_days=0), dict(cancel_cutoff_hours=-1), dict(capacity=True),
])
def test_create_rejects_bad_input(sqlite_db, bad):
    p = make_provider()
    with pytest.raises(InvalidInput):
        catalog.create_bookable(actor=actor_for(p), **base(**bad))


def test_update_rejects_unknown_and_bad_fields(sqlite_db):
    p = make_provider()
    b = make_bookable(p)
    for changes in (dict(kind="event"), dict(provider_id=1), dict(capacity=0), dict(name=None), dict(timezone="X/Y")):
        with pytest.raises(InvalidInput):
            catalog.update_bookable(actor=actor_for(p), bookable_id=b.id, **changes)


def test_reminder_offsets_set_normalised_and_cleared(db_url):
    p = make_provider()
    a = actor_for(p)
    b = catalog.create_bookable(actor=a, **base(reminder_offsets=[60, 2880, 60]))
    assert b.reminder_offsets == [2880, 60]  # distinct, largest first
    assert catalog.get_bookable(bookable_id=b.id).reminder_offsets == [2880, 60]
    u = catalog.update_bookable(actor=a, bookable_id=b.id, reminder_offsets=" 15, 1440 ")
    assert u.reminder_offsets == [1440, 15]
    assert catalog.update_bookable(actor=a, bookable_id=b.id, name="Other").reminder_offsets == [1440, 15]
    assert catalog.search_bookables(q="Other")[0][0].reminder_offsets == [1440, 15]
    for empty in ([], "", None):  # back to the defaults
        catalog.update_bookable(actor=a, bookable_id=b.id, reminder_offsets=[30])
        assert catalog.update_bookable(actor=a, bookable_id=b.id, reminder_offsets=empty).reminder_offsets == []
    assert catalog.create_bookable(actor=a, **base()).reminder_offsets == []
    assert catalog.default_reminder_offsets() == [1440, 60]  # DEFAULT_REMINDER_OFFSETS_MINUTES


@pytest.mark.parametrize("bad", [
    [0], [-5], "0", "-5", "abc", "60,,15", [catalog.MAX_REMINDER_OFFSET_MINUTES + 1], [1, 2, 3, 4, 5, 6],
    "1,2,3,4,5,6", [True], [1.5], [None], [[60]], 60, 1.5, {"a": 1}, "\u00b2", ["\u00b2"], "9" * 5000,
    [60] * 1000,
])
def test_reminder_offsets_reject_bad_values(sqlite_db, bad):
    p = make_provider()
    b = catalog.create_bookable(actor=actor_for(p), **base(reminder_offsets=[120]))
    with pytest.raises(InvalidInput) as exc:
        catalog.create_bookable(actor=actor_for(p), **base(reminder_offsets=bad))
    assert exc.value.field == "reminder_offsets"
    with pytest.raises(InvalidInput) as exc:
        catalog.update_bookable(actor=actor_for(p), bookable_id=b.id, reminder_offsets=bad)
    assert exc.value.field == "reminder_offsets"
    assert catalog.get_bookable(bookable_id=b.id).reminder_offsets == [120]


def test_a_booking_queues_reminders_at_the_bookable_offsets(db_url):
    from freezegun import freeze_time

    from tests.stubs.notify_helpers import outbox_rows

    p = make_provider()
    b = make_bookable(p, weekly=ALL_WEEK, reminder_offsets=[2880, 15, 180])
    default = make_bookable(p, weekly=ALL_WEEK)
    cust = make_customer(locale="en", timezone="UTC")
    start = dt.datetime(2027, 3, 10, 14, 0, tzinfo=UTC)
    with freeze_time(start - dt.timedelta(days=5)):
        own = bookings.book(actor=actor_for(cust), service_id=b.id, start=start)
        other = bookings.book(actor=actor_for(cust), service_id=default.id, start=start)
    due = sorted((r.next_attempt_at for r in outbox_rows(booking_id=own.id, template="reminder")))
    assert due == [start - dt.timedelta(minutes=m) for m in (2880, 180, 15)]
    due = sorted((r.next_attempt_at for r in outbox_rows(booking_id=other.id, template="reminder")))
    assert due == [start - dt.timedelta(minutes=m) for m in (1440, 60)]


def test_authorization(db_url):
    owner, other, admin, customer = make_provider(), make_provider(), make_admin(), make_customer()
    with pytest.raises(Forbidden):
        catalog.create_bookable(actor=actor_for(customer), **base())
    with pytest.raises(Forbidden):
        catalog.create_bookable(actor=Actor.guest(), **base())
    with pytest.raises(Forbidden):
        catalog.create_bookable(actor=actor_for(other), provider_id=owner.id, **base())
    b = make_bookable(owner)
    for who in (other, customer):
        with pytest.raises(Forbidden):
            catalog.update_bookable(actor=actor_for(who), bookable_id=b.id, name="Mine")
        with pytest.raises(Forbidden):
            catalog.set_availability(actor=actor_for(who), bookable_id=b.id, weekly=[])
        with pytest.raises(Forbidden):
            catalog.deactivate(actor=actor_for(who), bookable_id=b.id)
    assert catalog.update_bookable(actor=actor_for(admin), bookable_id=b.id, name="By admin").name == "By admin"
    made = catalog.create_bookable(actor=actor_for(admin), provider_id=owner.id, **base())
    assert made.provider_id == owner.id
    with pytest.raises(InvalidInput):  # a customer can't be made a provider of a bookable
        catalog.create_bookable(actor=actor_for(admin), provider_id=customer.id, **base())
    with pytest.raises(NotFound):
        catalog.update_bookable(actor=actor_for(owner), bookable_id=999_999, name="x")


@pytest.mark.parametrize("weekly", [
    [{"weekday": 7, "start": "09:00", "end": "10:00"}],
    [{"weekday": -1, "start": "09:00", "end": "10:00"}],
    [{"weekday": 0, "start": "9:00", "end": "10:00"}],
    [{"weekday": 0, "start": "10:00", "end": "09:00"}],
    [{"weekday": 0, "start": "10:00", "end": "10:00"}],
    [{"weekday": 0, "start": "25:00", "end": "26:00"}],
    [{"weekday": 0, "start": "09:00", "end": "12:00"}, {"weekday": 0, "start": "11:00", "end": "13:00"}],
    [{"weekday": 0, "start": "09:00"}],
])
def test_set_availability_rejects_bad_weekly(sqlite_db, weekly):
    p = make_provider()
    b = make_bookable(p)
    before = catalog.get_availability(bookable_id=b.id)
    with pytest.raises(InvalidInput):
        catalog.set_availability(actor=actor_for(p), bookable_id=b.id, weekly=weekly)
    assert catalog.get_availability(bookable_id=b.id) == before  # nothing half-written


@pytest.mark.parametrize("exceptions", [
    [{"date": "2027-02-30", "closed": True}],
    [{"date": "tomorrow", "closed": True}],
    [{"date": "2027-02-01"}],
    [{"date": "2027-02-01", "closed": True, "start": "09:00", "end": "10:00"}],
    [{"date": "2027-02-01", "closed": True}, {"date": "2027-02-01", "start": "09:00", "end": "10:00"}],
    [{"date": "2027-02-01", "start": "09:00", "end": "11:00"}, {"date": "2027-02-01", "start": "10:00", "end": "12:00"}],
    [{"date": "2027-02-01", "closed": "yes"}],
])
def test_set_availability_rejects_bad_exceptions(sqlite_db, exceptions):
    p = make_provider()
    b = make_bookable(p)
    with pytest.raises(InvalidInput):
        catalog.set_availability(actor=actor_for(p), bookable_id=b.id, weekly=[], exceptions=exceptions)


def test_changing_hours_reports_bookings_outside_and_keeps_them(db_url):
    p = make_provider()
    b = make_bookable(p, weekly=ALL_WEEK)
    now = dt.datetime.now(UTC)
    day = now.date() + dt.timedelta(days=3)
    early = bookings.book(actor=Actor.guest(), service_id=b.id, start=dt.datetime.combine(day, dt.time(7), tzinfo=UTC),
                          guest={"name": "G", "email": "g1@example.com"})
    inside = bookings.book(actor=Actor.guest(), service_id=b.id, start=dt.datetime.combine(day, dt.time(10), tzinfo=UTC),
                           guest={"name": "G", "email": "g2@example.com"})
    view = catalog.set_availability(actor=actor_for(p), bookable_id=b.id,
                                    weekly=[{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)])
    assert [x.id for x in view.outside_bookings] == [early.id]
    view = catalog.set_availability(actor=actor_for(p), bookable_id=b.id, weekly=ALL_WEEK,
                                    exceptions=[{"date": day.isoformat(), "closed": True}])
    assert {x.id for x in view.outside_bookings} == {early.id, inside.id}
    assert booking_queries.get_booking(actor=actor_for(p), booking_id=early.id).status == "confirmed"  # never dropped
    assert view.weekly[0].end == "24:00" and view.exceptions[0].closed


def test_event_sessions(db_url):
    p = make_provider()
    start = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(days=2)
    ev, (s1,) = make_event(p, sessions=[start], capacity=8)
    assert (s1.capacity, s1.end - s1.start) == (8, dt.timedelta(minutes=60))
    with pytest.raises(InvalidInput):  # duplicate
        catalog.add_event_session(actor=actor_for(p), bookable_id=ev.id, start=start)
    with pytest.raises(InvalidInput):  # naive
        catalog.add_event_session(actor=actor_for(p), bookable_id=ev.id, start="2030-01-01T10:00:00")
    with pytest.raises(InvalidInput):  # past
        catalog.add_event_session(actor=actor_for(p), bookable_id=ev.id, start="2020-01-01T10:00:00Z")
    with pytest.raises(InvalidInput):
        catalog.add_event_session(actor=actor_for(p), bookable_id=ev.id, start=start + dt.timedelta(hours=1), capacity=0)
    room = make_bookable(p)
    with pytest.raises(InvalidInput):  # only events have sessions
        catalog.add_event_session(actor=actor_for(p), bookable_id=room.id, start=start)
    with pytest.raises(Forbidden):
        catalog.add_event_session(actor=actor_for(make_provider()), bookable_id=ev.id, start=start + dt.timedelta(hours=2))
    s2 = catalog.add_event_session(actor=actor_for(p), bookable_id=ev.id, start=(start + dt.timedelta(hours=3)).isoformat(),
                                   capacity=3)
    assert [x.id for x in catalog.list_event_sessions(bookable_id=ev.id)] == [s1.id, s2.id]


def test_search_text_kind_location_paging(db_url):
    p = make_provider()
    make_bookable(p, name="Yoga class", kind="event", location="Madrid Centro")
    make_bookable(p, name="Meeting room Atlas", location="Madrid Norte", description="with a whiteboard")
    make_bookable(p, name="Haircut", kind="service", location="Sevilla")
    hidden = make_bookable(p, name="Old room")
    catalog.deactivate(actor=actor_for(p), bookable_id=hidden.id)
    names = lambda r: [x.name for x in r[0]]  # noqa: E731
    assert names(catalog.search_bookables(q="ROOM")) == ["Meeting room Atlas"]
    assert names(catalog.search_bookables(q="whiteboard")) == ["Meeting room Atlas"]
    assert names(catalog.search_bookables(location="madrid")) == ["Meeting room Atlas", "Yoga class"]
    assert names(catalog.search_bookables(kind="service")) == ["Haircut"]
    assert catalog.search_bookables(q="100%_")[1] == 0  # wildcards are literal
    items, total = catalog.search_bookables(limit=2, offset=1)
    assert total == 3 and [x.name for x in items] == ["Meeting room Atlas", "Yoga class"]
    assert catalog.search_bookables(actor=actor_for(p), include_inactive=True)[1] == 4
    assert catalog.search_bookables(include_inactive=True)[1] == 3  # the public never sees inactive ones
    for bad in (dict(kind="boat"), dict(limit=0), dict(limit=1000), dict(offset=-1), dict(date="2027-13-01")):
        with pytest.raises(InvalidInput):
            catalog.search_bookables(**bad)


def test_search_by_date_means_a_free_slot_that_day(db_url):
    p = make_provider()
    day = dt.date(2027, 2, 1)  # a Monday
    open_mon = make_bookable(p, name="A open on mondays", weekly=[{"weekday": 0, "start": "09:00", "end": "10:00"}])
    make_bookable(p, name="B closed on mondays", weekly=[{"weekday": 1, "start": "09:00", "end": "17:00"}])
    make_bookable(p, name="C closed that date", exceptions=[{"date": day.isoformat(), "closed": True}])
    make_bookable(p, name="D special hours", weekly=[], exceptions=[{"date": day.isoformat(), "start": "12:00", "end": "13:00"}])
    full = make_bookable(p, name="E full", weekly=[{"weekday": 0, "start": "09:00", "end": "10:00"}])
    bookings.book(actor=Actor.guest(), service_id=full.id, start=dt.datetime(2027, 2, 1, 9, tzinfo=UTC),
                  guest={"name": "G", "email": "g@example.com"}, now=NOW)
    items, total = catalog.search_bookables(date=day, now=NOW)
    assert [x.name for x in items] == ["A open on mondays", "D special hours"] and total == 2
    # the provider's own service booked at that hour makes a same-provider service full too
    svc = make_bookable(p, name="F service", kind="service", weekly=[{"weekday": 0, "start": "09:00", "end": "10:00"}])
    svc2 = make_bookable(p, name="G service", kind="service", weekly=[{"weekday": 0, "start": "09:00", "end": "10:00"}])
    assert {x.name for x in catalog.search_bookables(date=day, now=NOW, kind="service")[0]} == {"F service", "G service"}
    bookings.book(actor=Actor.guest(), service_id=svc.id, start=dt.datetime(2027, 2, 1, 9, tzinfo=UTC),
                  guest={"name": "G", "email": "g2@example.com"}, now=NOW)
    assert catalog.search_bookables(date=day, now=NOW, kind="service")[1] == 0
    assert open_mon.id and svc2.id


def _date_names(day, now, **kw):
    items, total = catalog.search_bookables(date=day, now=now, **kw)
    return [x.name for x in items], total


def test_search_by_date_full_closed_holds_and_events(db_url):
    from booking_app import db
    from booking_app.models import Booking
    from booking_app.services import availability

    p = make_provider()
    day = dt.date(2027, 2, 1)  # a Monday
    at9 = dt.datetime(2027, 2, 1, 9, tzinfo=UTC)
    one_hour = [{"weekday": 0, "start": "09:00", "end": "10:00"}]
    full = make_bookable(p, name="R1 full room", capacity=2, weekly=one_hour)
    for i in range(2):
        bookings.book(actor=Actor.guest(), service_id=full.id, start=at9, guest={"name": "G", "email": f"f{i}@example.com"},
                      now=NOW)
    half = make_bookable(p, name="R2 half used", capacity=2, weekly=one_hour)
    bookings.book(actor=Actor.guest(), service_id=half.id, start=at9, guest={"name": "G", "email": "h@example.com"}, now=NOW)
    held = make_bookable(p, name="R3 held", weekly=one_hour, price_cents=500)
    hold = bookings.book(actor=Actor.guest(), service_id=held.id, start=at9,
                         guest={"name": "G", "email": "p@example.com"}, now=NOW)
    with db.unit_of_work() as s:  # an unpaid card booking: a 10-minute hold (Stripe is off in tests)
        row = s.get(Booking, hold.id)
        row.status, row.hold_expires_at = "pending", NOW + dt.timedelta(minutes=10)
        s.add(row)
    make_bookable(p, name="R4 closed that date", weekly=one_hour, exceptions=[{"date": day.isoformat(), "closed": True}])
    make_bookable(p, name="R5 closed on mondays", weekly=[{"weekday": 1, "start": "09:00", "end": "10:00"}])
    make_bookable(p, name="R6 too far ahead", weekly=one_hour, max_advance_days=1)
    make_bookable(p, name="R7 open", weekly=one_hour)
    make_event(p, name="E1 session that day", sessions=[dt.datetime(2027, 2, 1, 18, tzinfo=UTC)])
    make_event(p, name="E2 session another day", sessions=[dt.datetime(2027, 2, 2, 18, tzinfo=UTC)])
    _ev, (sess,) = make_event(p, name="E3 full session", capacity=1, sessions=[dt.datetime(2027, 2, 1, 18, tzinfo=UTC)])
    bookings.book(actor=Actor.guest(), service_id=_ev.id, start=sess.start, guest={"name": "G", "email": "e@example.com"},
                  now=NOW)
    make_event(p, name="E4 session on a closed date", sessions=[dt.datetime(2027, 2, 1, 18, tzinfo=UTC)],
               exceptions=[{"date": day.isoformat(), "closed": True}])
    # Tokyo: local 2027-02-01 18:00 is 09:00 UTC the same day; local 02-02 08:00 is 02-01 23:00 UTC
    make_event(p, name="E5 Tokyo that local day", timezone="Asia/Tokyo", sessions=[dt.datetime(2027, 2, 1, 9, tzinfo=UTC)])
    make_event(p, name="E6 Tokyo next local day", timezone="Asia/Tokyo", sessions=[dt.datetime(2027, 2, 1, 23, tzinfo=UTC)])
    expected = ["E1 session that day", "E5 Tokyo that local day", "R2 half used", "R7 open"]
    assert _date_names(day, NOW) == (expected, len(expected))
    # the hold expires: its seat is free again
    later = NOW + dt.timedelta(days=1)
    assert _date_names(day, later) == (sorted(expected + ["R3 held"]), len(expected) + 1)
    # the same answer as the slot engine, bookable by bookable
    everything = catalog.search_bookables(limit=200)[0]
    for b in everything:
        has_slot = bool(availability.slots(bookable_id=b.id, date_from=day, date_to=day, now=NOW))
        assert has_slot == (b.name in expected), b.name
    assert _date_names(day, NOW, kind="event") == (expected[:2], 2)
    assert _date_names(day, NOW, q="tokyo") == (["E5 Tokyo that local day"], 1)


def test_search_by_date_pages_lazily_and_stays_exact(db_url, monkeypatch):
    p = make_provider()
    day = dt.date(2027, 2, 1)
    one_hour = [{"weekday": 0, "start": "09:00", "end": "10:00"}]
    made = [make_bookable(p, name=f"Room {i}", weekly=one_hour) for i in range(7)]
    for i in (1, 4):  # full
        bookings.book(actor=Actor.guest(), service_id=made[i].id, start=dt.datetime(2027, 2, 1, 9, tzinfo=UTC),
                      guest={"name": "G", "email": f"g{i}@example.com"}, now=NOW)
    free = [f"Room {i}" for i in (0, 2, 3, 5, 6)]
    assert _date_names(day, NOW) == (free, 5)  # few candidates: exact total
    monkeypatch.setattr(availability, "EXACT_DATE_TOTAL_MAX", 2)  # force the lazy scan, in small chunks
    monkeypatch.setattr(availability, "DATE_CHUNK_MIN", 1)
    first = _date_names(day, NOW, limit=2)
    assert first[0] == free[:2] and len(free) <= first[1] < 7  # upper bound, only open bookables counted
    seen, offset = [], 0
    while True:
        names, total = _date_names(day, NOW, limit=2, offset=offset)
        assert total >= len(free) and total <= 7  # an upper bound that only counts open bookables
        seen += names
        if len(names) < 2:
            break
        offset += 2
    assert seen == free and total == len(free)  # pages are exact; the last page knows the total
    assert _date_names(day, NOW, limit=5) == (free, 5)
    assert _date_names(day, NOW, limit=2, offset=10) == ([], 5)


def test_an_events_new_capacity_applies_to_its_upcoming_sessions(db_url, monkeypatch):
    """Sessions that had the event's capacity follow it; one given its own capacity, and
    past ones, keep theirs; seats already sold stay sold, and the new capacity is what new
    bookings are checked against."""
    from booking_app.config import reset_settings_cache

    # one guest address books six times here: above the guest caps and rate (issue 20)
    monkeypatch.setenv("GUEST_MAX_HOLDS_PER_EMAIL", "10")
    monkeypatch.setenv("RATE_LIMITS_ENABLED", "false")
    reset_settings_cache()
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import AuditEvent, EventSession

    p = make_provider()
    start = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(days=2)
    ev, (s1, s2, past) = make_event(p, sessions=[start, start + dt.timedelta(hours=2), start + dt.timedelta(hours=4)],
                                    capacity=5)
    own = catalog.add_event_session(actor=actor_for(p), bookable_id=ev.id, start=start + dt.timedelta(hours=6), capacity=9)
    with db.unit_of_work() as s:
        row = s.get(EventSession, past.id)
        row.start_at, row.end_at = start - dt.timedelta(days=4), start - dt.timedelta(days=4, hours=-1)
        s.add(row)
    guest = {"name": "G", "email": "g@example.com"}
    for _ in range(3):
        bookings.book(actor=Actor.guest(), service_id=ev.id, start=start, guest=guest)
    catalog.update_bookable(actor=actor_for(p), bookable_id=ev.id, capacity=2)
    caps = {x.id: x.capacity for x in catalog.list_event_sessions(bookable_id=ev.id, actor=actor_for(p))}
    assert (caps[s1.id], caps[s2.id], caps[own.id]) == (2, 2, 9)
    with db.read_session() as s:
        assert s.get(EventSession, past.id).capacity == 5
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "bookable.updated")).all()[-1]
    assert audit.data["sessions_updated"] == 2
    # the three seats sold before stay; no new one in the full session, two in the next
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=ev.id, start=start, guest=guest)
    for _ in range(2):
        bookings.book(actor=Actor.guest(), service_id=ev.id, start=start + dt.timedelta(hours=2), guest=guest)
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=ev.id, start=start + dt.timedelta(hours=2), guest=guest)
    assert bookings.book(actor=Actor.guest(), service_id=ev.id, start=start + dt.timedelta(hours=6),
                         guest=guest, quantity=9).quantity == 9
