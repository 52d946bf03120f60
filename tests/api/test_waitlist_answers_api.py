"""POST /api/waitlist takes the booking questions' `answers` (422 naming `answers.<id>`), the
entry JSON returns them, and the booking made from the offer carries them."""
from __future__ import annotations

import datetime as dt

from tests.api.conftest import assert_problem, make_account

QUESTIONS = [{"id": "badge", "type": "short_text", "label": "Name on the badge", "required": True},
             {"id": "first", "type": "yes_no", "label": "First visit?"}]


def test_join_with_answers_offer_accept(client, fast_hash):
    provider = make_account("provider")
    r = client.post("/api/services", headers=provider.headers, json={
        "name": "Room Quiz", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 0,
        "currency": "EUR", "timezone": "UTC", "questions": QUESTIONS})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    r = client.put(f"/api/services/{sid}/availability", headers=provider.headers,
                   json={"weekly": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]})
    assert r.status_code == 200, r.text
    start = f"{(dt.date.today() + dt.timedelta(days=10)).isoformat()}T10:00:00Z"
    holder, alice = make_account("customer"), make_account("customer")
    r = client.post("/api/bookings", headers=holder.headers,
                    json={"service_id": sid, "start": start, "answers": {"badge": "Holder"}})
    assert r.status_code == 201, r.text
    held = r.json()["id"]
    body = assert_problem(client.post("/api/waitlist", headers=alice.headers, json={"service_id": sid, "start": start}),
                          422)
    assert body["field"] == "answers.badge"
    body = assert_problem(client.post("/api/waitlist", headers=alice.headers, json={
        "service_id": sid, "start": start, "answers": {"badge": "Alice", "first": "maybe"}}), 422)
    assert body["field"] == "answers.first"
    assert_problem(client.post("/api/waitlist", headers=alice.headers, json={
        "service_id": sid, "start": start, "answers": {"badge": "A\x00"}}), 422)
    assert client.get("/api/waitlist", headers=alice.headers).json()["items"] == []
    r = client.post("/api/waitlist", headers=alice.headers, json={
        "service_id": sid, "start": start, "answers": {"badge": "Alice", "first": True}})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["answers"] == {"badge": "Alice", "first": True}
    assert client.get(f"/api/waitlist/{entry['id']}", headers=alice.headers).json()["answers"] == entry["answers"]
    assert client.delete(f"/api/bookings/{held}", headers=holder.headers).status_code == 200
    r = client.post(f"/api/waitlist/{entry['id']}/accept", headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "confirmed" and r.json()["answers"] == {"badge": "Alice", "first": True}
    r = client.get(f"/api/bookings/{r.json()['id']}", headers=alice.headers)
    assert r.status_code == 200 and r.json()["answers"] == {"badge": "Alice", "first": True}
