"""Recurring series through the REST API: preview, POST /api/bookings with `recurrence`,
GET /api/series/{id}, DELETE /api/series/{id}[?from_booking_id=], and bad input → 422."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import assert_problem, make_account, open_room


@pytest.fixture
def room(client, fast_hash):
    return open_room(client, timezone="Europe/Madrid")


def first_start(days: int = 10) -> str:
    return f"{(dt.date.today() + dt.timedelta(days=days)).isoformat()}T10:00:00+01:00"


def test_preview_book_read_and_cancel_a_series(client, room):
    cust = make_account("customer")
    body = {"service_id": room["id"], "start": first_start(), "recurrence": {"frequency": "weekly", "count": 4}}
    other = make_account("customer")
    taken = client.post("/api/bookings", headers=other.headers, json={**{k: body[k] for k in ("service_id",)},
                                                                      "start": client.post("/api/series/preview", json=body)
                                                                      .json()["occurrences"][2]["start"]})
    assert taken.status_code == 201, taken.text
    preview = client.post("/api/series/preview", headers=cust.headers, json=body)
    assert preview.status_code == 200, preview.text
    occ = preview.json()["occurrences"]
    assert [o["available"] for o in occ] == [True, True, False, True] and occ[2]["reason"] == "taken"
    # all-or-nothing: 409, nothing booked
    problem = assert_problem(client.post("/api/bookings", headers=cust.headers, json=body), 409)
    assert "skip" in problem["detail"]
    assert client.get("/api/bookings", headers=cust.headers).json()["total"] == 0
    # skip-taken: the three free dates
    body["recurrence"]["mode"] = "skip_taken"
    r = client.post("/api/bookings", headers=cust.headers, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert len(out["bookings"]) == 3 and out["skipped"] == [{"start": occ[2]["start"], "reason": "taken"}]
    assert all(b["start"].endswith("Z") and b["status"] == "confirmed" for b in out["bookings"])
    sid = out["series_id"]
    got = client.get(f"/api/series/{sid}", headers=cust.headers)
    assert got.status_code == 200 and [b["id"] for b in got.json()["bookings"]] == [b["id"] for b in out["bookings"]]
    assert got.json()["frequency"] == "weekly" and got.json()["mode"] == "skip_taken"
    assert_problem(client.get(f"/api/series/{sid}", headers=other.headers), 404)
    assert_problem(client.get(f"/api/series/{sid}"), 401)
    # this and the following
    second = out["bookings"][1]["id"]
    r = client.delete(f"/api/series/{sid}", headers=cust.headers, params={"from_booking_id": second})
    assert r.status_code == 200, r.text
    assert r.json()["cancelled"] == [b["id"] for b in out["bookings"][1:]]
    assert [b["status"] for b in r.json()["bookings"]] == ["confirmed", "cancelled", "cancelled"]
    # all (what is left)
    r = client.delete(f"/api/series/{sid}", headers=room["provider"].headers)
    assert r.status_code == 200 and r.json()["cancelled"] == [out["bookings"][0]["id"]]
    assert_problem(client.delete(f"/api/series/{sid}", headers=cust.headers, params={"from_booking_id": 999999}), 422)


def test_a_guest_books_a_series_and_a_plain_booking_still_works(client, room):
    body = {"service_id": room["id"], "start": first_start(12), "guest": {"name": "Ann", "email": "ann@example.com"},
            "recurrence": {"frequency": "daily", "interval": 2, "until": (dt.date.today() + dt.timedelta(days=16)).isoformat()}}
    r = client.post("/api/bookings", json=body)
    assert r.status_code == 201, r.text
    assert len(r.json()["bookings"]) == 3 and r.json()["bookings"][0]["user_id"] is None
    plain = client.post("/api/bookings", json={"service_id": room["id"], "start": first_start(13),
                                               "guest": {"name": "Bo", "email": "bo@example.com"}})
    assert plain.status_code == 201 and "series_id" not in plain.json()


@pytest.mark.parametrize("recurrence", [
    {"frequency": "hourly", "count": 2}, {"frequency": "weekly"}, {"frequency": "weekly", "count": 2, "until": "2030-01-01"},
    {"frequency": "weekly", "count": 0}, {"frequency": "weekly", "count": 53}, {"frequency": "weekly", "count": 1000},
    {"frequency": "weekly", "count": "2"}, {"frequency": "weekly", "interval": 99, "count": 2},
    {"frequency": "weekly", "until": "9999-12-31"}, {"frequency": "weekly", "until": "2026-01-01\u0000"},
    {"frequency": "monthly", "by": "moon", "count": 2}, {"frequency": "weekly", "count": 2, "mode": "some"},
    {"frequency": "weekly", "count": 2, "extra": True}, {"frequency": "daily", "count": 52 * 8},
    {"frequency": "monthly", "count": 52},  # past the 365-day horizon
])
def test_hostile_recurrence_is_422_on_both_endpoints(client, room, recurrence):
    cust = make_account("customer")
    body = {"service_id": room["id"], "start": first_start(), "recurrence": recurrence}
    assert_problem(client.post("/api/series/preview", headers=cust.headers, json=body), 422)
    assert_problem(client.post("/api/bookings", headers=cust.headers, json=body), 422)
    assert client.get("/api/bookings", headers=cust.headers).json()["total"] == 0


def test_an_idempotency_key_replays_the_series(client, room):
    cust = make_account("customer")
    body = {"service_id": room["id"], "start": first_start(20), "quantity": 1,
            "recurrence": {"frequency": "weekly", "count": 2, "mode": "skip_taken"}}
    headers = {**cust.headers, "Idempotency-Key": "series-retry-1"}
    first = client.post("/api/bookings", headers=headers, json=body)
    again = client.post("/api/bookings", headers=headers, json=body)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert client.get("/api/bookings", headers=cust.headers).json()["total"] == 2
    assert_problem(client.post("/api/bookings", headers=headers, json={**body, "quantity": 2}), 422)
