"""Typed reasons never pass for the system's machine reasons (`hold_expired`, `approval_expired`,
…): a customer's cancellation and a provider's decline refuse them with a translated 422 and
change nothing, while any reason in words is kept as typed. On SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest

from booking_app.services import manage_links
from tests.api.conftest import assert_problem, make_account, open_room

START = f"{(dt.date.today() + dt.timedelta(days=10)).isoformat()}T10:00:00Z"
MACHINE_LIKE = ("hold_expired", "Approval_Expired", " cancelled_by_provider ", "waitlist_declined", "made_up_code")


def _book(client, room, who):
    r = client.post("/api/bookings", headers=who.headers, json={"service_id": room["id"], "start": START})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("reason", MACHINE_LIKE)
def test_a_customer_cannot_cancel_with_a_machine_reason(client, fast_hash, reason):
    room, alice = open_room(client), make_account("customer")
    booking = _book(client, room, alice)
    problem = assert_problem(client.delete(f"/api/bookings/{booking['id']}", headers=alice.headers,
                                           params={"reason": reason}), 422)
    assert "hold_expired" in problem["detail"]
    assert client.get(f"/api/bookings/{booking['id']}", headers=alice.headers).json()["status"] == "confirmed"
    r = client.delete(f"/api/bookings/{booking['id']}", headers=alice.headers,
                      params={"reason": "Hold expired? No: I am ill."})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_reason"]) == ("cancelled", "Hold expired? No: I am ill.")


def test_a_provider_cannot_decline_with_a_machine_reason_and_the_error_is_translated(client, fast_hash):
    room = open_room(client, requires_approval=True)
    booking = _book(client, room, make_account("customer"))
    path = f"/api/bookings/{booking['id']}/decline"
    german_admin = make_account("admin", locale="de")
    problem = assert_problem(client.post(path, headers=german_admin.headers, json={"reason": "approval_expired"}), 422)
    assert "Schreiben Sie den Grund in Worten" in problem["detail"]
    r = client.post(path, headers=room["provider"].headers, json={"reason": "Closed for works"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_reason"]) == ("cancelled", "Closed for works")


def test_a_guest_with_the_manage_link_cannot_cancel_with_a_machine_reason(client, fast_hash):
    """A guest's actor has no id, like the system's, and still writes in words only."""
    room = open_room(client)
    r = client.post("/api/bookings", json={"service_id": room["id"], "start": START,
                                           "guest": {"name": "Gus Guest", "email": "gus-reason@example.com"}})
    assert r.status_code == 201, r.text
    booking_id = r.json()["id"]
    token = manage_links.booking_manage_token(booking_id)
    assert_problem(client.delete(f"/api/bookings/{booking_id}", params={"token": token, "reason": "hold_expired"}),
                   422)
    r = client.delete(f"/api/bookings/{booking_id}", params={"token": token, "reason": "Plans changed"})
    assert r.status_code == 200, r.text
    assert r.json()["cancel_reason"] == "Plans changed"
