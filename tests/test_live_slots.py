"""Live slots' change feed (services/live_slots.py): capacity changes are published after
commit (never for a rollback) to this process's watchers and, with REDIS_URL, through Redis
to the other processes'; a dead Redis neither fails nor delays a booking."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from booking_app.services import bookings, live_slots
from booking_app.services.actors import Actor
from booking_app.services.errors import NotAvailable
from tests.conftest import free_port, point_app_at
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_provider, next_day_at
from tests.test_scaleout import flush_redis_db

REDIS_DB = 11
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def guest_booking(bookable_id: int, start: dt.datetime):
    return bookings.book(actor=Actor.guest(), service_id=bookable_id, start=start,
                         guest={"name": "Guest", "email": f"g{time.monotonic_ns()}@example.com"})


def collect(bookable_id: int, action, *, wait: float = 3.0) -> list[live_slots.Change]:
    """Open a watch on `bookable_id`, run `action` (in a thread, as the app does), and return
    the changes the watch heard within `wait` seconds after it."""
    async def run() -> list[live_slots.Change]:
        w = live_slots.open_watch(bookable_id=bookable_id, loop=asyncio.get_running_loop())
        assert w is not None
        try:
            await asyncio.to_thread(action)
            heard: list[live_slots.Change] = []
            deadline = time.monotonic() + wait
            while not heard and time.monotonic() < deadline:
                heard = await w.wait(timeout=max(0.05, deadline - time.monotonic()))
            return heard
        finally:
            w.close()

    return asyncio.run(run())


def slot_starts(bookable_id: int, day: dt.date) -> list[dt.datetime]:
    found = live_slots.free_slots(bookable_id, "UTC", [day.isoformat()])
    assert found is not None
    return [s.start for s in found[day.isoformat()]]


def test_booking_and_cancel_reach_the_watchers_after_commit(db_url):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK)
    start = next_day_at(10)
    assert start in slot_starts(room.id, start.date())
    made = []
    heard = collect(room.id, lambda: made.append(guest_booking(room.id, start)))
    assert heard and all(c.bookable_id == room.id for c in heard)
    assert any(c.start <= start < c.end for c in heard)
    assert start not in slot_starts(room.id, start.date())  # the cache was dropped by the change
    assert live_slots.days_touched(heard, "UTC", [start.date().isoformat()]) == [start.date().isoformat()]

    heard = collect(room.id, lambda: bookings.cancel(actor=actor_for(provider), booking_id=made[0].id))
    assert heard and any(c.start <= start < c.end for c in heard)
    assert start in slot_starts(room.id, start.date())


def test_a_rollback_publishes_nothing_and_other_bookables_are_not_told(db_url):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK)
    other = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(11)
    guest_booking(room.id, start)

    def refused() -> None:
        with pytest.raises(NotAvailable):
            guest_booking(room.id, start)

    assert collect(room.id, refused, wait=0.5) == []
    assert collect(other.id, lambda: guest_booking(room.id, start + dt.timedelta(hours=2)), wait=0.5) == []


def test_a_reschedule_tells_both_the_old_and_the_new_time(db_url):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK)
    start, later = next_day_at(9), next_day_at(14, days=2)
    bk = guest_booking(room.id, start)
    heard = collect(room.id, lambda: bookings.reschedule(actor=actor_for(provider), booking_id=bk.id, start=later))
    assert any(c.start <= start < c.end for c in heard) and any(c.start <= later < c.end for c in heard)
    touched = live_slots.days_touched(heard, "UTC", [(start.date() + dt.timedelta(days=i)).isoformat()
                                                     for i in range(3)])
    assert start.date().isoformat() in touched and later.date().isoformat() in touched


def test_services_of_one_provider_hear_each_other(db_url):
    provider = make_provider()
    a = make_bookable(provider, kind="service", weekly=ALL_WEEK)
    b = make_bookable(provider, kind="service", weekly=ALL_WEEK)
    heard = collect(b.id, lambda: guest_booking(a.id, next_day_at(15)))
    assert heard and heard[0].provider_id == a.provider_id


def test_messages_and_day_mapping():
    c = live_slots.Change(3, 4, dt.datetime(2030, 1, 1, 23, 30, tzinfo=dt.UTC), dt.datetime(2030, 1, 2, 0, 30,
                                                                                          tzinfo=dt.UTC))
    other = json.dumps({"o": "someone-else", "c": [c.to_wire(), ["x", 1, 2, 3], [1, 2], None, [5, None, None, None]]})
    assert live_slots.parse_message(other.encode()) == [c, live_slots.Change(5, None)]
    for junk in (b"\xff", b"[]", b"{}", b'{"c": 5}', b"not json", b'{"c": [[1, 2, 1e400, 3]]}'):
        assert live_slots.parse_message(junk) == []
    shown = ["2029-12-31", "2030-01-01", "2030-01-02", "2030-01-03"]
    assert live_slots.days_touched([c], "UTC", shown) == shown[:3]
    # Berlin: 00:30-01:30 on Jan 2 local
    assert live_slots.days_touched([c], "Europe/Berlin", shown) == ["2030-01-01", "2030-01-02"]
    assert live_slots.days_touched([live_slots.Change(3, 4)], "UTC", shown) == shown


def test_through_redis_other_processes_hear_and_ours_is_published(db_url):
    flush_redis_db(REDIS_URL)
    import redis

    point_app_at(db_url, REDIS_URL=REDIS_URL)
    room = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(12)
    client = redis.Redis.from_url(REDIS_URL)
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(live_slots.channel(REDIS_URL))
    try:
        # ours: published to Redis (by the publisher thread, after commit)
        made = []
        assert collect(room.id, lambda: made.append(guest_booking(room.id, start)))
        deadline, body = time.monotonic() + 3, None
        while body is None and time.monotonic() < deadline:
            msg = sub.get_message(timeout=0.2)
            if msg and msg["type"] == "message":
                body = json.loads(msg["data"])
        assert body is not None and [room.id, room.provider_id] in [item[:2] for item in body["c"]]
        # another process's: heard through this process's subscriber thread
        foreign = json.dumps({"o": "other-process", "c": [[room.id, room.provider_id, None, None]]})

        def publish_foreign() -> None:
            time.sleep(0.3)  # (the subscriber thread starts with the first watch)
            client.publish(live_slots.channel(REDIS_URL), foreign)

        heard = collect(room.id, publish_foreign)
        assert live_slots.Change(room.id, room.provider_id) in heard
    finally:
        sub.close()
        client.close()


def test_a_dead_redis_neither_fails_nor_delays_a_booking(db_url):
    point_app_at(db_url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    room = make_bookable(weekly=ALL_WEEK)
    times = []

    def book_three() -> None:
        for h in (9, 10, 11):
            t0 = time.perf_counter()
            guest_booking(room.id, next_day_at(h))
            times.append(time.perf_counter() - t0)

    heard = collect(room.id, book_three)
    assert len(times) == 3 and max(times) < 0.5, times  # (a Redis connect timeout would be 1 s)
    assert heard  # this process's pages are still told


def test_catalog_changes_refresh_every_shown_day(db_url):
    from booking_app.services import catalog

    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK)
    heard = collect(room.id, lambda: catalog.set_availability(actor=actor_for(provider), bookable_id=room.id,
                                                              weekly=[], exceptions=[]))
    assert live_slots.Change(room.id, room.provider_id) in heard
    day = next_day_at(10).date()
    assert slot_starts(room.id, day) == []  # closed now: the cache did not keep the old hours
