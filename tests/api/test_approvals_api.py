"""Approval routes through HTTP (issue 24, point 2): a bookable with `requires_approval`,
bookings created as `awaiting_approval` with `approval_expires_at`, POST …/approve and
…/decline {reason?} by its provider or an admin (others 403/404), 409 once decided,
problem+json for bad input. On SQLite and PostgreSQL (the `client` fixture)."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import assert_problem, make_account, open_room

GUEST = {"name": "Gina Guest", "email": "gina@example.com"}


@pytest.fixture
def room(client, fast_hash):
    """A capacity-1 room that requires approval, open all day, and the start ten days ahead."""
    room = open_room(client, requires_approval=True, approval_expiry_hours=12)
    sid, provider = room["id"], room["provider"]
    assert (room["json"]["requires_approval"], room["json"]["approval_expiry_hours"]) == (True, 12)
    start = f"{(dt.date.today() + dt.timedelta(days=10)).isoformat()}T10:00:00Z"
    return {"id": sid, "provider": provider, "start": start}


def test_request_approve_and_read(client, room):
    alice = make_account("customer")
    r = client.post("/api/bookings", headers=alice.headers, json={"service_id": room["id"], "start": room["start"]})
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["status"] == "awaiting_approval" and booking["approval_expires_at"].endswith("Z")
    assert booking["hold_expires_at"] == booking["approval_expires_at"]
    # the seat is held: someone else gets 409
    bob = make_account("customer")
    assert_problem(client.post("/api/bookings", headers=bob.headers,
                               json={"service_id": room["id"], "start": room["start"]}), 409)
    # the customer may see it, not decide it
    got = client.get(f"/api/bookings/{booking['id']}", headers=alice.headers).json()
    assert got["status"] == "awaiting_approval"
    assert_problem(client.post(f"/api/bookings/{booking['id']}/approve", headers=alice.headers), 403)
    listed = client.get("/api/bookings", headers=room["provider"].headers,
                        params={"scope": "provider", "status": "awaiting_approval"}).json()
    assert [b["id"] for b in listed["items"]] == [booking["id"]]
    r = client.post(f"/api/bookings/{booking['id']}/approve", headers=room["provider"].headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed"
    assert_problem(client.post(f"/api/bookings/{booking['id']}/approve", headers=room["provider"].headers), 409)
    assert_problem(client.post(f"/api/bookings/{booking['id']}/decline", headers=room["provider"].headers), 409)


def test_guest_request_declined_with_a_reason_frees_the_seat(client, room):
    r = client.post("/api/bookings", json={"service_id": room["id"], "start": room["start"], "guest": GUEST})
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["status"] == "awaiting_approval"
    admin = make_account("admin")
    r = client.post(f"/api/bookings/{booking['id']}/decline", headers=admin.headers,
                    json={"reason": "The room is closed for works."})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_reason"]) == ("cancelled", "The room is closed for works.")
    bob = make_account("customer")
    r = client.post("/api/bookings", headers=bob.headers, json={"service_id": room["id"], "start": room["start"]})
    assert r.status_code == 201 and r.json()["status"] == "awaiting_approval"


def test_who_may_decide_and_bad_input(client, room):
    alice = make_account("customer")
    booking = client.post("/api/bookings", headers=alice.headers,
                          json={"service_id": room["id"], "start": room["start"]}).json()
    path = f"/api/bookings/{booking['id']}"
    assert_problem(client.post(f"{path}/approve"), 401)
    assert_problem(client.post(f"{path}/approve", headers=make_account("provider").headers), 404)
    assert_problem(client.post(f"{path}/decline", headers=make_account("customer").headers), 404)
    assert_problem(client.post("/api/bookings/999999999/approve", headers=room["provider"].headers), 404)
    for body in ({"reason": "x" * 501}, {"reason": "bad\u0000"}, {"reason": 5}, {"other": 1}):
        assert_problem(client.post(f"{path}/decline", headers=room["provider"].headers, json=body), 422)
    assert client.get(path, headers=alice.headers).json()["status"] == "awaiting_approval"  # nothing half-done
    # the bookable's setting: validated
    for body in ({"requires_approval": "yes"}, {"approval_expiry_hours": 0}, {"approval_expiry_hours": 10**6}):
        assert_problem(client.put(f"/api/services/{room['id']}", headers=room["provider"].headers, json=body), 422)
    r = client.put(f"/api/services/{room['id']}", headers=room["provider"].headers,
                   json={"requires_approval": False})
    assert r.status_code == 200 and r.json()["requires_approval"] is False
    later = room["start"].replace("T10:", "T12:")
    r = client.post("/api/bookings", headers=alice.headers, json={"service_id": room["id"], "start": later})
    assert r.status_code == 201 and r.json()["status"] == "confirmed"
