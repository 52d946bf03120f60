"""Calendar subscriptions over HTTP (SQLite and PostgreSQL): add → sync → the busy slot is gone
from the slot list and refused by POST /api/bookings (409) → remove → free again; URL safety
(422); who may see and remove what."""
from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem, make_account
from tests.test_calendar_sync import feed  # noqa: F401  (fixture: a local feed the app may fetch)

DAY = "2027-03-15"
BUSY_START = "2027-03-15T09:00:00Z"  # 10:00 Berlin: the weekly meeting of tests/fixtures/ics/busy.ics


def _room(provider) -> int:
    from booking_app.services import catalog
    from booking_app.services.actors import Actor

    actor = Actor(id=provider.id, role="provider")
    room = catalog.create_bookable(actor=actor, name="Room", kind="room", duration_minutes=60, capacity=1,
                                   price_cents=0, currency="EUR", timezone="Europe/Berlin", max_advance_days=730)
    catalog.set_availability(actor=actor, bookable_id=room.id,
                             weekly=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
    return room.id


def _starts(client, room: int) -> set[str]:
    r = client.get(f"/api/services/{room}/slots", params={"from": DAY, "to": DAY})
    assert r.status_code == 200, r.text
    return {s["start"] for s in r.json()["slots"]} if isinstance(r.json(), dict) else {s["start"] for s in r.json()}


def test_add_sync_block_remove(client, fast_hash, feed):
    provider, customer = make_account("provider"), make_account("customer")
    room = _room(provider)
    assert BUSY_START in _starts(client, room)

    r = client.post("/api/calendar/subscriptions", json={"url": feed.url}, headers=provider.headers)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert set(sub) >= {"id", "url", "last_synced_at", "last_error"} and sub["last_synced_at"] is None
    r = client.post(f"/api/calendar/subscriptions/{sub['id']}/sync", headers=provider.headers)
    assert r.status_code == 200 and r.json()["last_synced_at"] and r.json()["last_error"] is None

    assert BUSY_START not in _starts(client, room)
    r = client.post("/api/bookings", json={"service_id": room, "start": BUSY_START}, headers=customer.headers)
    assert_problem(r, 409)

    listed = client.get("/api/calendar/subscriptions", headers=provider.headers).json()["items"]
    assert [x["id"] for x in listed] == [sub["id"]] and "password" not in listed[0]
    other = make_account("provider")
    assert client.get("/api/calendar/subscriptions", headers=other.headers).json()["items"] == []
    assert_problem(client.delete(f"/api/calendar/subscriptions/{sub['id']}", headers=other.headers), 404)
    assert_problem(client.post("/api/calendar/subscriptions", json={"url": feed.url}, headers=customer.headers), 403)

    assert client.delete(f"/api/calendar/subscriptions/{sub['id']}", headers=provider.headers).status_code == 204
    assert BUSY_START in _starts(client, room)
    r = client.post("/api/bookings", json={"service_id": room, "start": BUSY_START}, headers=customer.headers)
    assert r.status_code == 201, r.text


def test_a_failing_feed_shows_its_error(client, fast_hash, feed):
    provider = make_account("provider")
    feed.status = 404
    sub = client.post("/api/calendar/subscriptions", json={"url": feed.url}, headers=provider.headers).json()
    r = client.post(f"/api/calendar/subscriptions/{sub['id']}/sync", headers=provider.headers)
    assert r.json()["last_error"] == "HTTP 404" and r.json()["last_synced_at"] is None


@pytest.mark.parametrize("url", ["http://127.0.0.1/x.ics", "https://10.0.0.8/x.ics", "http://169.254.169.254/latest",
                                 "http://[::1]/x.ics", "webcal://[::ffff:127.0.0.1]/x.ics", "not a url"])
def test_private_and_bad_targets_are_422(client, fast_hash, url):
    provider = make_account("provider")
    body = assert_problem(client.post("/api/calendar/subscriptions", json={"url": url}, headers=provider.headers), 422)
    assert "url" in str(body)


def test_limited_to_a_bookable_of_someone_else_is_403(client, fast_hash, feed):
    provider, other = make_account("provider"), make_account("provider")
    room = _room(provider)
    r = client.post("/api/calendar/subscriptions", json={"url": feed.url, "service_id": room}, headers=other.headers)
    assert_problem(r, 403)
    r = client.post("/api/calendar/subscriptions", json={"url": feed.url, "service_id": room},
                    headers=provider.headers)
    assert r.status_code == 201 and r.json()["service_id"] == room
