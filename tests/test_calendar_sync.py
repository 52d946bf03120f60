"""Busy times from outside calendars (services/calendar_expand.py, services/calendar_sync.py):
expansion of the ICS fixtures, sync over HTTP (conditional GET, failures keep the last good
set, the job's claim), URL safety, and slots and bookings blocked by busy intervals —
including a booking racing a freshly imported interval (the engine's re-check)."""
from __future__ import annotations

import datetime as dt
import http.server
import pathlib
import threading
import zoneinfo

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import CalendarBusyInterval, CalendarSubscription
from booking_app.services import availability, bookings, calendar_sync, capacity, url_safety
from booking_app.services.actors import Actor
from booking_app.services.calendar_expand import FeedError, busy_intervals, pieces
from booking_app.services.errors import InvalidInput, NotAvailable, NotFound
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_provider
from tests.threads import run_together

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "ics"
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
WIDE = dict(window_start=dt.datetime(2027, 1, 1, tzinfo=UTC), window_end=dt.datetime(2028, 1, 1, tzinfo=UTC))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# the busy time of tests/fixtures/ics/busy.ics
EXPECTED = [
    (utc(2027, 3, 9, 8), utc(2027, 3, 9, 9)),  # Tue/Thu until the 18th (BYDAY + UNTIL)
    (utc(2027, 3, 11, 8), utc(2027, 3, 11, 9)),
    (utc(2027, 3, 15, 9), utc(2027, 3, 15, 10)),  # 10:00 Berlin in winter time
    (utc(2027, 3, 16, 8), utc(2027, 3, 16, 9)),
    (utc(2027, 3, 18, 8), utc(2027, 3, 18, 9)),
    (utc(2027, 3, 19, 23), utc(2027, 3, 20, 23)),  # all-day, Berlin midnight to midnight
    # 22 March: EXDATE
    (utc(2027, 3, 29, 8), utc(2027, 3, 29, 9)),  # after the DST change: still 10:00 Berlin
    (utc(2027, 4, 6, 12), utc(2027, 4, 6, 13)),  # 5 April's occurrence moved (RECURRENCE-ID)
    # 12 April: cancelled override; transparent and cancelled events: nothing
]


def test_fixture_expands_to_the_expected_busy_intervals():
    got = busy_intervals((FIXTURES / "busy.ics").read_bytes(), zone=BERLIN, **WIDE)
    assert got == EXPECTED


def test_window_cuts_and_long_events_are_split_into_pieces_of_a_day():
    got = busy_intervals((FIXTURES / "busy.ics").read_bytes(), zone=BERLIN,
                         window_start=utc(2027, 3, 15, 9, 30), window_end=utc(2027, 3, 29, 8, 30))
    assert got[0] == (utc(2027, 3, 15, 9, 30), utc(2027, 3, 15, 10))
    assert got[-1] == (utc(2027, 3, 29, 8), utc(2027, 3, 29, 8, 30))
    assert pieces([(utc(2027, 1, 1), utc(2027, 1, 3, 12)), (utc(2027, 1, 3), utc(2027, 1, 4))]) == [
        (utc(2027, 1, 1), utc(2027, 1, 2)), (utc(2027, 1, 2), utc(2027, 1, 3)), (utc(2027, 1, 3), utc(2027, 1, 4))]


def test_all_day_and_floating_times_are_read_in_the_given_zone():
    ics = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:f\r\nDTSTART:20270601T090000\r\n"
           b"DTEND:20270601T100000\r\nRRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:d\r\n"
           b"DTSTART;VALUE=DATE:20270327\r\nDTEND;VALUE=DATE:20270329\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    got = busy_intervals(ics, zone=BERLIN, **WIDE)
    # the two days around the DST change: 47 hours from Berlin midnight to Berlin midnight
    assert got[:2] == [(utc(2027, 3, 26, 23), utc(2027, 3, 27, 23)), (utc(2027, 3, 27, 23), utc(2027, 3, 28, 22))]
    assert got[2:] == [(utc(2027, 6, 1, 7), utc(2027, 6, 1, 8)), (utc(2027, 6, 2, 7), utc(2027, 6, 2, 8))]


def test_a_broken_feed_is_a_feed_error():
    with pytest.raises(FeedError):
        busy_intervals((FIXTURES / "broken.ics").read_bytes(), zone=BERLIN, **WIDE)


def test_a_feed_that_would_expand_without_bound_is_an_error_not_a_silent_cut(monkeypatch):
    from booking_app.services import calendar_expand

    monkeypatch.setattr(calendar_expand, "MAX_OCCURRENCE_STEPS", 1000)
    every_minute = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20000101T000000Z\r\n"
                    b"DURATION:PT1M\r\nRRULE:FREQ=MINUTELY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    with pytest.raises(FeedError, match="too many occurrences"):
        busy_intervals(every_minute, zone=BERLIN, **WIDE)


# --- over HTTP ---------------------------------------------------------------------------------

class Feed:
    """A local feed server: `body`, `status`, an ETag; it records the requests' headers."""

    def __init__(self) -> None:
        self.body = (FIXTURES / "busy.ics").read_bytes()
        self.status = 200
        self.etag = '"v1"'
        self.redirect: str | None = None
        self.requests: list[dict[str, str]] = []
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                feed.requests.append({k.lower(): v for k, v in self.headers.items()})
                if feed.redirect:
                    self.send_response(302)
                    self.send_header("Location", feed.redirect)
                    self.end_headers()
                    return
                if feed.status == 200 and self.headers.get("If-None-Match") == feed.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(feed.status)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("ETag", feed.etag)
                self.send_header("Content-Length", str(len(feed.body)))
                self.end_headers()
                self.wfile.write(feed.body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/calendar.ics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed(monkeypatch):
    from tests.api.conftest import set_env

    set_env(monkeypatch, WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    f = Feed()
    yield f
    f.close()


def berlin_room(provider=None, **kw):
    return make_bookable(provider, weekly=ALL_WEEK, timezone="Europe/Berlin", max_advance_days=730, **kw)


def stored(sub_id: int) -> list[tuple[dt.datetime, dt.datetime]]:
    with db.read_session() as s:
        B = CalendarBusyInterval
        return [(a, z) for a, z in s.exec(select(B.start_at, B.end_at).where(B.subscription_id == sub_id)
                                          .order_by(B.start_at)).all()]


def starts(bookable_id: int, day: str) -> set[dt.datetime]:
    return {v.start for v in availability.slots(bookable_id=bookable_id, date_from=day, date_to=day)}


def test_sync_stores_busy_intervals_and_their_slots_are_gone(db_url, feed):
    provider = make_provider()
    room = berlin_room(provider)
    sub = calendar_sync.add(actor=actor_for(provider), url=feed.url)
    assert sub["last_error"] is None and sub["last_synced_at"] is not None
    assert [iv for iv in stored(sub["id"]) if iv in EXPECTED] == stored(sub["id"]) == [
        iv for iv in EXPECTED if iv[0] >= utc(2027, 1, 1)]
    assert utc(2027, 3, 15, 9) not in starts(room.id, "2027-03-15")  # 10:00 Berlin
    assert utc(2027, 3, 15, 10) in starts(room.id, "2027-03-15")
    assert utc(2027, 3, 22, 9) in starts(room.id, "2027-03-22")  # EXDATE: free
    assert utc(2027, 3, 29, 8) not in starts(room.id, "2027-03-29")  # 10:00 Berlin in summer time
    assert utc(2027, 4, 5, 8) in starts(room.id, "2027-04-05")  # moved away...
    assert utc(2027, 4, 6, 12) not in starts(room.id, "2027-04-06")  # ...to here
    assert starts(room.id, "2027-03-20") == set()  # the day off
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=utc(2027, 3, 15, 9), quantity=1,
                      guest={"name": "G", "email": "g@example.com"})


def test_not_modified_keeps_the_intervals_and_failures_keep_the_last_good_set(db_url, feed):
    provider = make_provider()
    berlin_room(provider)
    sub = calendar_sync.add(actor=actor_for(provider), url=feed.url)
    good = stored(sub["id"])
    assert good

    assert calendar_sync.sync_now(sub["id"]) == "unchanged"
    assert feed.requests[-1]["if-none-match"] == '"v1"'
    assert stored(sub["id"]) == good

    feed.status = 500
    assert calendar_sync.sync_now(sub["id"]) == "failed"
    after = calendar_sync.get(actor=actor_for(provider), subscription_id=sub["id"])
    assert after["last_error"] == "HTTP 500" and stored(sub["id"]) == good

    feed.status, feed.etag, feed.body = 200, '"v2"', (FIXTURES / "broken.ics").read_bytes()
    assert calendar_sync.sync_now(sub["id"]) == "failed"
    assert "iCalendar" in calendar_sync.get(actor=actor_for(provider), subscription_id=sub["id"])["last_error"]
    assert stored(sub["id"]) == good

    feed.etag, feed.body = '"v3"', (FIXTURES / "single.ics").read_bytes()
    assert calendar_sync.sync_now(sub["id"]) == "synced"
    assert stored(sub["id"]) == [(utc(2027, 3, 10, 9), utc(2027, 3, 10, 10))]
    assert calendar_sync.get(actor=actor_for(provider), subscription_id=sub["id"])["last_error"] is None


def test_the_job_claims_due_subscriptions_once(db_url, feed):
    provider = make_provider()
    berlin_room(provider)
    a = calendar_sync.add(actor=actor_for(provider), url=feed.url, sync=False)
    b = calendar_sync.add(actor=actor_for(provider), url=feed.url + "?b", sync=False)
    now = calendar_sync.utcnow()
    assert calendar_sync.sync_due(now=now) == 2
    assert calendar_sync.sync_due(now=now) == 0  # next sync in CALENDAR_SYNC_INTERVAL_MINUTES
    assert calendar_sync.sync_due(now=now + dt.timedelta(minutes=16)) == 2
    assert stored(a["id"]) and stored(b["id"])
    # a claim held by another process is skipped
    assert calendar_sync.claim(now=now + dt.timedelta(minutes=40), limit=1)
    assert len(calendar_sync.claim(now=now + dt.timedelta(minutes=40))) == 1


def test_credentials_are_sealed_and_sent_only_to_the_feed_host(db_url, feed):
    provider = make_provider()
    sub = calendar_sync.add(actor=actor_for(provider), url=feed.url, username="me", password="sécret pass")
    assert feed.requests[-1]["authorization"] == "Basic bWU6c8OpY3JldCBwYXNz"
    with db.read_session() as s:
        sealed = s.get(CalendarSubscription, sub["id"]).credentials_sealed
    assert sealed and "cret" not in sealed and sub["has_credentials"]
    with pytest.raises(InvalidInput):
        calendar_sync.add(actor=actor_for(provider), url=feed.url, password="only a password")


def test_a_subscription_for_one_bookable_blocks_only_that_one(db_url, feed):
    provider = make_provider()
    room, other = berlin_room(provider), berlin_room(provider)
    calendar_sync.add(actor=actor_for(provider), url=feed.url, service_id=room.id)
    assert utc(2027, 3, 15, 9) not in starts(room.id, "2027-03-15")
    assert utc(2027, 3, 15, 9) in starts(other.id, "2027-03-15")
    stranger = make_provider()
    with pytest.raises(Exception) as err:
        calendar_sync.add(actor=actor_for(stranger), url=feed.url, service_id=room.id)
    assert getattr(err.value, "status", None) == 403


def test_owner_lists_and_removes_others_get_not_found(db_url, feed):
    provider, other = make_provider(), make_provider()
    room = berlin_room(provider)
    sub = calendar_sync.add(actor=actor_for(provider), url="webcal://127.0.0.1:%d/calendar.ics"
                            % feed.server.server_address[1])
    assert sub["url"].startswith("https://")  # webcal:// is https (this server speaks http: an error)
    assert sub["last_error"]
    assert [s["id"] for s in calendar_sync.list_for(actor=actor_for(provider))] == [sub["id"]]
    assert calendar_sync.list_for(actor=actor_for(other)) == []
    with pytest.raises(NotFound):
        calendar_sync.remove(actor=actor_for(other), subscription_id=sub["id"])
    good = calendar_sync.add(actor=actor_for(provider), url=feed.url)
    assert utc(2027, 3, 15, 9) not in starts(room.id, "2027-03-15")
    calendar_sync.remove(actor=actor_for(provider), subscription_id=good["id"])
    assert utc(2027, 3, 15, 9) in starts(room.id, "2027-03-15")
    assert stored(good["id"]) == []


# --- URL safety ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1/x.ics", "http://10.1.2.3/x.ics", "http://169.254.169.254/x.ics",
                                 "http://[::1]/x.ics", "webcal://localhost/x.ics", "ftp://example.com/x.ics"])
def test_private_targets_are_refused_at_registration(sqlite_db, url):
    provider = make_provider()
    with pytest.raises(InvalidInput) as err:
        calendar_sync.add(actor=actor_for(provider), url=url)
    assert err.value.field == "url"


def test_a_redirect_to_a_private_target_is_refused_at_fetch_time(db_url, feed, monkeypatch):
    """The feed's own address passes (here: 127.0.0.1 counted as public), its redirect to
    another local address does not: the rule is checked again for each hop."""
    from tests.api.conftest import set_env

    set_env(monkeypatch, WEBHOOK_ALLOW_PRIVATE_TARGETS="false")
    monkeypatch.setattr(url_safety, "is_public_ip", lambda ip: str(ip) == "127.0.0.1")
    provider = make_provider()
    sub = calendar_sync.add(actor=actor_for(provider), url=feed.url)
    assert sub["last_error"] is None and stored(sub["id"])
    feed.redirect = "http://[::1]:1/elsewhere.ics"
    assert calendar_sync.sync_now(sub["id"]) == "failed"
    assert "address refused" in calendar_sync.get(actor=actor_for(provider), subscription_id=sub["id"])["last_error"]


def test_an_oversized_feed_is_refused(db_url, feed, monkeypatch):
    monkeypatch.setattr(calendar_sync, "MAX_BYTES", 100)
    provider = make_provider()
    sub = calendar_sync.add(actor=actor_for(provider), url=feed.url)
    assert "larger than" in sub["last_error"]


# --- the booking engine ------------------------------------------------------------------------

def _insert_busy(provider_id: int, start: dt.datetime, end: dt.datetime) -> None:
    with db.unit_of_work() as s:
        sub = CalendarSubscription(owner_id=provider_id, url="https://example.com/x.ics")
        s.add(sub)
        s.flush()
        s.add(CalendarBusyInterval(subscription_id=sub.id, provider_id=provider_id, start_at=start, end_at=end))


def test_a_stale_slot_list_does_not_get_a_busy_slot_booked(db_url):
    provider = make_provider()
    room = berlin_room(provider, buffer_after_minutes=15)
    service = make_bookable(provider, kind="service", weekly=ALL_WEEK, timezone="Europe/Berlin", max_advance_days=730)
    start = utc(2027, 3, 15, 9)
    assert start in starts(room.id, "2027-03-15") and start in starts(service.id, "2027-03-15")
    _insert_busy(provider.id, utc(2027, 3, 15, 10), utc(2027, 3, 15, 10, 30))  # in room's buffer
    for b, at, used in ((room, start, 1), (service, start + dt.timedelta(hours=1), 1), (service, start, 0)):
        with db.read_session() as s:  # the re-count under the lock (SQLite: availability.seats_used)
            bk = s.get(availability.Bookable, b.id)
            assert availability.seats_used(s, bk, availability.shape_at(bk, at), availability.utcnow()) == used
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=start, quantity=1,
                      guest={"name": "G", "email": "g@example.com"})
    # the service's block has no buffer: 10:00-11:00 UTC is busy, 09:00-10:00 is free
    assert bookings.book(actor=Actor.guest(), service_id=service.id, start=start, quantity=1,
                         guest={"name": "G", "email": "g2@example.com"}).status == "confirmed"


@pytest.mark.postgres
def test_a_booking_racing_a_freshly_imported_busy_interval_is_refused(pg_db, monkeypatch):
    """The busy interval is committed after the booking's slot check and before its re-count
    under the lock: the engine's re-check under the lock refuses the booking."""
    import psycopg

    provider = make_provider()
    room = berlin_room(provider)
    start = utc(2027, 3, 15, 9)
    raw = pg_db.replace("postgresql+psycopg://", "postgresql://")

    def import_busy() -> None:
        with psycopg.connect(raw, autocommit=True) as conn:
            sub_id = conn.execute("INSERT INTO calendar_subscriptions (owner_id, url, next_sync_at, created_at) "
                                  "VALUES (%s, 'https://example.com/x.ics', now(), now()) RETURNING id",
                                  (provider.id,)).fetchone()[0]
            conn.execute("INSERT INTO calendar_busy_intervals (subscription_id, provider_id, start_at, end_at) "
                         "VALUES (%s, %s, %s, %s)", (sub_id, provider.id, start, start + dt.timedelta(minutes=30)))

    monkeypatch.setattr(capacity, "RACE_HOOK", import_busy)
    with pytest.raises(NotAvailable):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=start, quantity=1,
                      guest={"name": "G", "email": "g@example.com"})
    monkeypatch.setattr(capacity, "RACE_HOOK", None)
    with db.read_session() as s:
        assert s.exec(select(availability.Booking).where(availability.Booking.bookable_id == room.id)).all() == []


def test_search_by_date_leaves_out_a_bookable_whose_only_slot_is_busy(db_url):
    from booking_app.services import catalog

    busy_provider, other_provider = make_provider(), make_provider()
    one_hour = [{"weekday": 0, "start": "09:00", "end": "10:00"}]  # 15 March 2027 is a Monday
    blocked = make_bookable(busy_provider, name="Blocked room", weekly=one_hour, max_advance_days=730)
    free = make_bookable(other_provider, name="Free room", weekly=one_hour, max_advance_days=730)
    event_of_busy = make_bookable(busy_provider, name="Busy provider's event", kind="event", max_advance_days=730)
    catalog.add_event_session(actor=actor_for(busy_provider), bookable_id=event_of_busy.id, start=utc(2027, 3, 15, 9))
    now = utc(2027, 3, 1)
    names = lambda: {x.name for x in catalog.search_bookables(date=dt.date(2027, 3, 15), now=now)[0]}  # noqa: E731
    assert names() == {"Blocked room", "Free room", "Busy provider's event"}
    _insert_busy(busy_provider.id, utc(2027, 3, 15, 9, 30), utc(2027, 3, 15, 10))
    assert names() == {"Free room", "Busy provider's event"}  # event sessions are not blocked
    with db.read_session() as s:
        rows = [s.get(availability.Bookable, b.id) for b in (blocked, free)]
        assert availability.bookables_with_free_slot(s, rows, dt.date(2027, 3, 15), now) == {free.id}


def test_concurrent_claims_never_take_the_same_subscription(db_url):
    """Two job runs at once (PostgreSQL: SKIP LOCKED; SQLite: the conditional UPDATE under its
    single writer) share the due subscriptions out, each one to exactly one of them."""
    provider = make_provider()
    ids = {calendar_sync.add(actor=actor_for(provider), url=f"https://93.184.216.34/{i}.ics", sync=False)["id"]
           for i in range(6)}
    now = calendar_sync.utcnow()
    got, errors = run_together(2, lambda i: [c.id for c in calendar_sync.claim(now=now, limit=4)])
    assert errors == []
    first, second = got
    assert not set(first) & set(second)
    assert set(first) | set(second) <= ids and len(first) + len(second) >= 4
    assert calendar_sync.claim(now=now, ids=first) == []  # held: not claimed again
