"""Booking and catalog routes: the Booking JSON, Idempotency-Key, guests, error mapping."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import assert_problem, make_account, open_room

BOOKING_FIELDS = {"id", "service_id", "user_id", "start", "end", "quantity", "status", "hold_expires_at",
                  "price_cents", "currency", "payment_status", "notes", "created_at", "updated_at"}


@pytest.fixture
def room(client, fast_hash):
    return open_room(client, timezone="Europe/Madrid")


def free_starts(client, service_id, n=3):
    day = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    r = client.get(f"/api/services/{service_id}/slots", params={"from": day, "to": day})
    assert r.status_code == 200, r.text
    slots = r.json()["slots"]
    assert len(slots) >= n and all(s["start"].endswith("Z") and s["remaining"] == 1 for s in slots)
    return [s["start"] for s in slots[:n]]


def test_booking_json_and_lifecycle(client, room):
    cust = make_account("customer")
    start, other, _ = free_starts(client, room["id"])
    r = client.post("/api/bookings", headers=cust.headers, json={"service_id": room["id"], "start": start, "notes": "hi"})
    assert r.status_code == 201, r.text
    bk = r.json()
    assert BOOKING_FIELDS <= set(bk)
    assert bk["status"] == "confirmed" and bk["user_id"] == cust.id and bk["start"] == start
    assert all(bk[k].endswith("Z") for k in ("start", "end", "created_at", "updated_at"))
    # the slot is gone; booking it again is a 409
    assert start not in free_starts(client, room["id"], n=1)
    other_cust = make_account("customer")
    assert_problem(client.post("/api/bookings", headers=other_cust.headers,
                               json={"service_id": room["id"], "start": start}), 409)
    # reschedule, then cancel
    r = client.put(f"/api/bookings/{bk['id']}", headers=cust.headers, json={"start": other})
    assert r.status_code == 200 and r.json()["start"] == other
    listed = client.get("/api/bookings", headers=cust.headers).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == bk["id"]
    r = client.delete(f"/api/bookings/{bk['id']}", headers=cust.headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert_problem(client.delete(f"/api/bookings/{bk['id']}", headers=cust.headers), 409)


def test_idempotency_key_replays_and_rejects_other_bodies(client, room):
    cust = make_account("customer")
    start, other, _ = free_starts(client, room["id"])
    body = {"service_id": room["id"], "start": start}
    headers = {**cust.headers, "Idempotency-Key": "order-123"}
    first = client.post("/api/bookings", headers=headers, json=body)
    again = client.post("/api/bookings", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert client.get("/api/bookings", headers=cust.headers).json()["total"] == 1
    assert_problem(client.post("/api/bookings", headers=headers, json={**body, "start": other}), 422)
    # the key is per user: another customer's same key is a new request (here: slot taken)
    other_cust = make_account("customer")
    assert_problem(client.post("/api/bookings", headers={**other_cust.headers, "Idempotency-Key": "order-123"},
                               json=body), 409)
    assert_problem(client.post("/api/bookings", headers={**cust.headers, "Idempotency-Key": "bad key"},
                               json=body), 422)
    assert_problem(client.post("/api/bookings", headers={**cust.headers, "Idempotency-Key": "k" * 201},
                               json=body), 422)


def test_failed_request_with_a_key_can_be_retried(client, room):
    cust, other = make_account("customer"), make_account("customer")
    start, _, _ = free_starts(client, room["id"])
    body = {"service_id": room["id"], "start": start}
    held = client.post("/api/bookings", headers=other.headers, json=body).json()
    headers = {**cust.headers, "Idempotency-Key": "retry-me"}
    assert_problem(client.post("/api/bookings", headers=headers, json=body), 409)
    client.delete(f"/api/bookings/{held['id']}", headers=other.headers)
    assert client.post("/api/bookings", headers=headers, json=body).status_code == 201


def test_guest_booking_and_manage_token(client, room):
    start, _, _ = free_starts(client, room["id"])
    assert_problem(client.post("/api/bookings", json={"service_id": room["id"], "start": start}), 401)
    assert_problem(client.post("/api/bookings", json={"service_id": room["id"], "start": start,
                                                      "guest": {"name": "Gus", "email": "nope"}}), 422)
    r = client.post("/api/bookings", json={"service_id": room["id"], "start": start,
                                           "guest": {"name": "Gus Guest", "email": "gus@example.com",
                                                     "phone": "+14155550123"}})
    assert r.status_code == 201, r.text
    bk = r.json()
    assert bk["user_id"] is None and bk["status"] == "confirmed"
    from booking_app.services.manage_links import booking_manage_token

    assert_problem(client.get(f"/api/bookings/{bk['id']}"), 401)
    assert_problem(client.get(f"/api/bookings/{bk['id']}", params={"token": "1.forged"}), 404)
    token = booking_manage_token(bk["id"])
    assert client.get(f"/api/bookings/{bk['id']}", params={"token": token}).status_code == 200
    r = client.delete(f"/api/bookings/{bk['id']}", params={"token": token})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # the provider sees it in their list
    listed = client.get("/api/bookings", params={"scope": "provider"}, headers=room["provider"].headers).json()
    assert [b["id"] for b in listed["items"]] == [bk["id"]]


def test_signed_in_customers_cannot_book_for_someone_else(client, room):
    cust = make_account("customer")
    start, _, _ = free_starts(client, room["id"])
    assert_problem(client.post("/api/bookings", headers=cust.headers, json={
        "service_id": room["id"], "start": start, "guest": {"name": "X", "email": "x@example.com"}}), 422)


def test_busy_is_503_with_retry_after(client, room, monkeypatch):
    from booking_app.api import bookings as api_bookings
    from booking_app.services.errors import Busy

    cust = make_account("customer")
    start, _, _ = free_starts(client, room["id"])

    def busy(**_kwargs):
        raise Busy(retry_after=2)

    monkeypatch.setattr(api_bookings.bookings, "book", busy)
    r = client.post("/api/bookings", headers=cust.headers, json={"service_id": room["id"], "start": start})
    assert_problem(r, 503)
    assert r.headers["Retry-After"] == "2"


def test_unknown_service_and_booking_are_404(client, room):
    cust = make_account("customer")
    start, _, _ = free_starts(client, room["id"])
    assert_problem(client.post("/api/bookings", headers=cust.headers, json={"service_id": 999999, "start": start}), 404)
    assert_problem(client.get("/api/bookings/999999", headers=cust.headers), 404)
    assert_problem(client.get("/api/services/999999"), 404)
    assert_problem(client.get("/api/services/99999999999"), 422)


def test_booking_errors_speak_the_users_language(client, room):
    """Problem details of the booking routes are translated: a signed-in user's language
    setting first, else the browser's Accept-Language (guests too)."""
    start = free_starts(client, room["id"], n=1)[0]
    body = {"service_id": room["id"], "start": start}
    assert client.post("/api/bookings", headers=make_account("customer").headers, json=body).status_code == 201
    german = make_account("customer", locale="de")
    r = client.post("/api/bookings", headers={**german.headers, "Accept-Language": "fr"}, json=body)
    assert (r.status_code, r.json()["detail"]) == (409, "Diese Zeit ist nicht mehr verfügbar.")
    guest = {**body, "guest": {"name": "Gaston", "email": "gaston@example.com"}}
    r = client.post("/api/bookings", headers={"Accept-Language": "fr-CA, en;q=0.5"}, json=guest)
    assert (r.status_code, r.json()["detail"]) == (409, "Cet horaire n’est plus disponible.")
    r = client.put("/api/bookings/999999", headers={"Accept-Language": "es"}, json={"start": "soon"})
    assert r.status_code in (401, 422) and r.json()["detail"] not in ("Please sign in.", "Invalid input")


def test_a_count_in_an_error_takes_the_right_plural_form(client, room):
    """"At most 1 seat", not "1 seats" — in the caller's language."""
    start = free_starts(client, room["id"], n=1)[0]
    body = {"service_id": room["id"], "start": start, "quantity": 2}
    english = assert_problem(client.post("/api/bookings", headers=make_account("customer").headers, json=body), 422)
    assert "At most 1 seat can be booked at once." in str(english)
    german = assert_problem(client.post("/api/bookings", headers=make_account("customer", locale="de").headers,
                                        json=body), 422)
    assert "Es kann höchstens 1 Platz auf einmal gebucht werden." in str(german)
    guest = {**body, "guest": {"name": "Salma", "email": "salma@example.com"}}
    arabic = assert_problem(client.post("/api/bookings", headers={"Accept-Language": "ar"}, json=guest), 422)
    assert "يمكن حجز مقعد واحد على الأكثر في المرة الواحدة." in str(arabic)
