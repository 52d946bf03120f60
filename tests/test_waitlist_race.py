"""Waitlist under concurrency, on SQLite and PostgreSQL (issue 24 acceptance): 50 clients
race a freed seat while a waitlist offer is pending or being made — the offered person keeps
it, nobody else gets it, nothing is oversold. Races as in tests/test_concurrency.py."""
from __future__ import annotations

import random
import threading
import time

from booking_app import db
from booking_app.models import WaitlistEntry
from booking_app.services import bookings, waitlist, waitlist_accept
from booking_app.services.actors import Actor
from booking_app.services.errors import Busy, Conflict
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_customer, make_event, next_day_at
from tests.test_concurrency import active_rows, race, report, unexpected

N = 50


def _entry(entry_id: int) -> WaitlistEntry:
    with db.read_session() as s:
        e = s.get(WaitlistEntry, entry_id)
        assert e is not None
        return e


def _guest_book(bookable_id, start):
    return bookings.book(actor=Actor.guest(), service_id=bookable_id, start=start,
                         guest={"name": "Racer", "email": f"racer-{random.random():.8f}@example.com"})


def test_a_cancellation_racing_50_bookers_goes_to_the_waitlist(db_url, capsys):
    room = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(10)
    holder, alice = make_customer(), make_customer()
    first = bookings.book(actor=actor_for(holder), service_id=room.id, start=start)
    entry = waitlist.join(actor=actor_for(alice), service_id=room.id, start=start)

    done_at = [0.0] * (N + 1)
    cancelled = threading.Event()

    def attempt(i: int):
        try:
            if i == 0:  # the seat is freed while 50 others try to book it
                try:
                    for _ in range(50):
                        try:
                            return bookings.cancel(actor=actor_for(holder), booking_id=first.id)
                        except Busy:
                            time.sleep(0.05)
                    raise Busy()
                finally:
                    cancelled.set()
            # some before, some after the cancellation (every fourth waits for it: on a slow
            # machine the cancellation may come after all random delays have run out)
            if i % 4 == 3:
                cancelled.wait(30)
            time.sleep(random.random() * 0.3 if i % 2 else 0)
            return _guest_book(room.id, start)
        finally:
            done_at[i] = time.perf_counter()

    counts, _results, outcomes, elapsed = race(N + 1, attempt)
    assert any(t > done_at[0] for t in done_at[1:])  # bookers did try the freed seat
    assert counts["ok"] == 1, unexpected(outcomes)  # the cancellation, and no booker
    assert outcomes[0] == "ok"
    assert counts["not_available"] + counts["busy"] == N, unexpected(outcomes)
    offered = _entry(entry.id)
    assert offered.status == "offered"
    rows = active_rows(room.id)
    assert [r.id for r in rows] == [offered.booking_id]  # the seat is held for alice, nobody else
    accepted = waitlist_accept.accept(actor=actor_for(alice), entry_id=entry.id)
    assert accepted.booking.status == "confirmed" and [r.id for r in active_rows(room.id)] == [offered.booking_id]
    report(capsys, "cancellation + 50 bookers racing a waitlisted slot", db_url, N + 1, elapsed, counts)


def test_50_bookers_race_the_offered_person_accepting(db_url, capsys):
    start = next_day_at(18)
    event, _ = make_event(sessions=[start], capacity=3)
    holder = make_customer()
    two = bookings.book(actor=actor_for(holder), service_id=event.id, start=start, quantity=2)
    bookings.book(actor=actor_for(make_customer()), service_id=event.id, start=start, quantity=1)
    people = [make_customer() for _ in range(3)]
    entries = [waitlist.join(actor=actor_for(p), service_id=event.id, start=start) for p in people]
    bookings.cancel(actor=actor_for(holder), booking_id=two.id)  # two seats freed: two offers, never three
    assert [_entry(e.id).status for e in entries] == ["offered", "offered", "waiting"]

    def attempt(i: int):
        if i < 2:  # the two offered people accept while 50 others try to book
            for _ in range(50):
                try:
                    return waitlist_accept.accept(actor=actor_for(people[i]), entry_id=entries[i].id)
                except Busy:
                    time.sleep(0.05)
            raise Busy()
        return _guest_book(event.id, start)

    counts, _results, outcomes, elapsed = race(N + 2, attempt)
    assert outcomes[:2] == ["ok", "ok"], unexpected(outcomes)
    assert counts["ok"] == 2 and counts["not_available"] + counts["busy"] == N, unexpected(outcomes)
    rows = active_rows(event.id)
    assert sum(r.quantity for r in rows) == 3  # nothing oversold
    assert {r.user_id for r in rows if r.status == "confirmed"} >= {people[0].id, people[1].id}
    assert _entry(entries[2].id).status == "waiting"
    try:
        waitlist_accept.accept(actor=actor_for(people[2]), entry_id=entries[2].id)
        raise AssertionError("a waiting entry was accepted")
    except Conflict:
        pass
    report(capsys, "2 offered accepting + 50 bookers on a full session", db_url, N + 2, elapsed, counts)
