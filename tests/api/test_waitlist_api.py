"""Waitlist routes through HTTP (issue 24, point 1): join (201 + position, 409 with room),
list, the offer on cancellation, accept → 201 booking, decline passes it on, leave, guests
with the entry's token, provider's queue / offer now / close, problem+json errors."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import assert_problem, make_account, open_room

GUEST = {"name": "Gina Guest", "email": "gina@example.com"}


@pytest.fixture
def full_room(client, fast_hash):
    """A capacity-1 room whose 10:00 slot ten days ahead is booked by `holder`."""
    room = open_room(client)
    sid, provider = room["id"], room["provider"]
    start = f"{(dt.date.today() + dt.timedelta(days=10)).isoformat()}T10:00:00Z"
    holder = make_account("customer")
    r = client.post("/api/bookings", headers=holder.headers, json={"service_id": sid, "start": start})
    assert r.status_code == 201, r.text
    return {"id": sid, "provider": provider, "start": start, "holder": holder, "booking": r.json()["id"]}


def test_join_list_offer_accept(client, full_room):
    sid, start = full_room["id"], full_room["start"]
    alice, bob = make_account("customer"), make_account("customer")
    free = start.replace("T10:", "T12:")
    assert_problem(client.post("/api/waitlist", headers=alice.headers, json={"service_id": sid, "start": free}), 409)
    r = client.post("/api/waitlist", headers=alice.headers, json={"service_id": sid, "start": start})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert (entry["status"], entry["position"], entry["start"], entry["service_id"]) == ("waiting", 1, start, sid)
    r = client.post("/api/waitlist", json={"service_id": sid, "start": start, "guest": GUEST})
    assert r.status_code == 201 and r.json()["position"] == 2 and r.json()["token"]
    guest_entry = r.json()
    r = client.post("/api/waitlist", headers=bob.headers, json={"service_id": sid, "start": start})
    bob_entry = r.json()
    assert [e["id"] for e in client.get("/api/waitlist", headers=alice.headers).json()["items"]] == [entry["id"]]
    queue = client.get("/api/waitlist", headers=full_room["provider"].headers, params={"service_id": sid}).json()
    assert [(e["id"], e["position"]) for e in queue["items"]] == [(entry["id"], 1), (guest_entry["id"], 2),
                                                                  (bob_entry["id"], 3)]
    # accepting before any offer: 409
    assert_problem(client.post(f"/api/waitlist/{entry['id']}/accept", headers=alice.headers), 409)
    # the holder cancels: the seat is offered to alice at once, nobody else may book it
    r = client.delete(f"/api/bookings/{full_room['booking']}", headers=full_room["holder"].headers)
    assert r.status_code == 200, r.text
    mine = client.get(f"/api/waitlist/{entry['id']}", headers=alice.headers).json()
    assert mine["status"] == "offered" and mine["offer_expires_at"].endswith("Z")
    assert_problem(client.post("/api/bookings", headers=bob.headers, json={"service_id": sid, "start": start}), 409)
    # the guest may not take alice's offer; alice declines it → the guest's turn
    assert_problem(client.post(f"/api/waitlist/{entry['id']}/accept", params={"token": guest_entry["token"]}), 404)
    r = client.post(f"/api/waitlist/{entry['id']}/decline", headers=alice.headers)
    assert r.status_code == 200 and r.json()["status"] == "declined"
    r = client.post(f"/api/waitlist/{guest_entry['id']}/accept", params={"token": guest_entry["token"]})
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["status"] == "confirmed" and booking["start"] == start and booking["manage_token"]
    assert_problem(client.post(f"/api/waitlist/{guest_entry['id']}/accept", params={"token": guest_entry["token"]}),
                   409)
    assert client.get(f"/api/waitlist/{bob_entry['id']}", headers=bob.headers).json()["position"] == 1


def test_leave_close_offer_now_and_errors(client, full_room):
    sid, start, provider = full_room["id"], full_room["start"], full_room["provider"]
    alice = make_account("customer")
    entry = client.post("/api/waitlist", headers=alice.headers, json={"service_id": sid, "start": start}).json()
    assert client.delete(f"/api/waitlist/{entry['id']}", headers=alice.headers).status_code == 204
    assert_problem(client.delete(f"/api/waitlist/{entry['id']}", headers=alice.headers), 409)
    assert_problem(client.get(f"/api/waitlist/{entry['id']}"), 401)
    assert_problem(client.get(f"/api/waitlist/{entry['id']}", params={"token": f"{entry['id']}.nope"}), 404)
    assert_problem(client.post("/api/waitlist", json={"service_id": sid, "start": start}), 401)
    assert_problem(client.post("/api/waitlist", headers=alice.headers,
                               json={"service_id": sid, "start": "2030-01-01T10:00:00"}), 422)  # no offset
    assert_problem(client.post("/api/waitlist", json={"service_id": sid, "start": start,
                                                      "guest": {"name": "Bad\r\nName", "email": "x@example.com"}}),
                   422)
    # provider: offer now (nothing free) and close → nobody can join
    r = client.post("/api/waitlist/offer-now", headers=provider.headers, json={"service_id": sid})
    assert r.status_code == 200 and r.json() == {"offers": 0}
    r = client.post("/api/waitlist", headers=alice.headers, json={"service_id": sid, "start": start})
    assert r.status_code == 201
    r = client.post("/api/waitlist/close", headers=provider.headers, json={"service_id": sid})
    assert r.status_code == 200 and r.json() == {"closed": True, "entries_ended": 1}
    assert_problem(client.post("/api/waitlist", headers=make_account("customer").headers,
                               json={"service_id": sid, "start": start}), 409)
    assert_problem(client.post("/api/waitlist/close", headers=make_account("provider").headers,
                               json={"service_id": sid}), 403)
