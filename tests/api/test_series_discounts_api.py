"""A recurring series with a discount code over HTTP (POST /api/bookings with `recurrence` and
`discount_code`), on SQLite and PostgreSQL: each date discounted and one use each; a code
that cannot cover every date → 422 discount_code_invalid and nothing booked (both modes); the
preview's prices; and an approval request with a code and answers. The service-level cases:
tests/test_feature_interplay.py."""
from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem, make_account
from tests.factories import ALL_WEEK, make_bookable, next_day_at


@pytest.fixture
def shop(client, fast_hash):
    provider = make_account("provider")
    room = make_bookable(provider.row(), weekly=ALL_WEEK, price_cents=4000, capacity=1)
    return provider, room


def series_body(room, count: int, mode: str = "all_or_nothing", **extra) -> dict:
    return {"service_id": room.id, "start": next_day_at(10).isoformat(), "payment_method": "on_site",
            "recurrence": {"frequency": "weekly", "count": count, "mode": mode}, **extra}


def code_uses(client, provider, code_id: int) -> int:
    return client.get(f"/api/discount-codes/{code_id}", headers=provider.headers).json()["uses"]


def test_a_series_with_a_code_is_discounted_per_date(client, shop):
    provider, room = shop
    r = client.post("/api/discount-codes", headers=provider.headers, json={"code": "SERIES-25", "percent_off": 25})
    assert r.status_code == 201, r.text
    code_id = r.json()["id"]
    cust = make_account("customer")
    r = client.post("/api/bookings", headers=cust.headers, json=series_body(room, 3, discount_code="series-25"))
    assert r.status_code == 201, r.text
    out = r.json()
    assert [(b["list_price_cents"], b["discount_cents"], b["price_cents"]) for b in out["bookings"]] == \
        [(4000, 1000, 3000)] * 3
    assert code_uses(client, provider, code_id) == 3
    got = client.get(f"/api/series/{out['series_id']}", headers=cust.headers).json()
    assert [b["price_cents"] for b in got["bookings"]] == [3000] * 3
    assert client.delete(f"/api/series/{out['series_id']}", headers=cust.headers).status_code == 200
    assert code_uses(client, provider, code_id) == 0


@pytest.mark.parametrize("mode", ["all_or_nothing", "skip_taken"])
def test_a_code_short_of_uses_is_422_and_books_nothing(client, shop, mode):
    provider, room = shop
    r = client.post("/api/discount-codes", headers=provider.headers,
                    json={"code": "TWO-LEFT", "percent_off": 10, "max_uses": 2})
    code_id = r.json()["id"]
    cust = make_account("customer")
    body = assert_problem(client.post("/api/bookings", headers=cust.headers,
                                      json=series_body(room, 3, mode, discount_code="TWO-LEFT")), 422)
    assert body["code"] == "discount_code_invalid" and body["field"] == "discount_code"
    assert client.get("/api/bookings", headers=cust.headers).json()["total"] == 0
    assert code_uses(client, provider, code_id) == 0
    # unknown code: the same answer, nothing booked
    body = assert_problem(client.post("/api/bookings", headers=cust.headers,
                                      json=series_body(room, 2, mode, discount_code="NO-SUCH")), 422)
    assert body["code"] == "discount_code_invalid"
    assert client.get("/api/bookings", headers=cust.headers).json()["total"] == 0
    r = client.post("/api/bookings", headers=cust.headers, json=series_body(room, 2, mode, discount_code="two-left"))
    assert r.status_code == 201, r.text
    assert [b["price_cents"] for b in r.json()["bookings"]] == [3600, 3600]
    assert code_uses(client, provider, code_id) == 2


def test_the_preview_shows_the_discounted_price_per_free_date(client, shop):
    provider, room = shop
    client.post("/api/discount-codes", headers=provider.headers, json={"code": "LOOK-10", "percent_off": 10,
                                                                       "max_uses": 2})
    cust = make_account("customer")
    body = {k: v for k, v in series_body(room, 2, discount_code="look-10").items() if k != "payment_method"}
    r = client.post("/api/series/preview", headers=cust.headers, json=body)
    assert r.status_code == 200, r.text
    assert [(o["list_price_cents"], o["discount_cents"], o["price_cents"]) for o in r.json()["occurrences"]] == \
        [(4000, 400, 3600)] * 2
    body["recurrence"]["count"] = 3
    problem = assert_problem(client.post("/api/series/preview", headers=cust.headers, json=body), 422)
    assert problem["code"] == "discount_code_invalid"
    body["discount_code"] = "bad\r\ncode"
    assert assert_problem(client.post("/api/series/preview", headers=cust.headers, json=body), 422)


def test_an_approval_request_with_a_code_and_answers(client, fast_hash):
    """Approval + discount code + booking questions in one request: the discounted price, the
    answers kept, the seat held as awaiting_approval; declining it gives the code's use back."""
    provider = make_account("provider")
    r = client.post("/api/services", headers=provider.headers, json={
        "name": "Studio", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 5000,
        "currency": "EUR", "timezone": "UTC", "requires_approval": True,
        "questions": [{"id": "size", "type": "single_choice", "label": "Size", "required": True,
                       "options": ["S", "L"]}]})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert client.put(f"/api/services/{sid}/availability", headers=provider.headers, json={
        "weekly": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]}).status_code == 200
    r = client.post("/api/discount-codes", headers=provider.headers,
                    json={"code": "ONE-SHOT", "percent_off": 20, "max_uses": 1})
    code_id = r.json()["id"]
    start = next_day_at(10).isoformat()
    alice, bob = make_account("customer"), make_account("customer")
    r = client.post("/api/bookings", headers=alice.headers, json={
        "service_id": sid, "start": start, "discount_code": "one-shot", "answers": {"size": "L"},
        "payment_method": "on_site"})
    assert r.status_code == 201, r.text
    bk = r.json()
    assert bk["status"] == "awaiting_approval" and bk["answers"] == {"size": "L"}
    assert (bk["list_price_cents"], bk["discount_cents"], bk["price_cents"]) == (5000, 1000, 4000)
    assert code_uses(client, provider, code_id) == 1
    # the seat is held and the code's only use is taken
    assert_problem(client.post("/api/bookings", headers=bob.headers, json={"service_id": sid, "start": start,
                                                                          "answers": {"size": "S"}}), 409)
    assert assert_problem(client.post("/api/bookings", headers=bob.headers, json={
        "service_id": sid, "start": next_day_at(12).isoformat(), "discount_code": "ONE-SHOT",
        "answers": {"size": "S"}}), 422)["code"] == "discount_code_invalid"
    got = client.get(f"/api/bookings/{bk['id']}", headers=alice.headers).json()
    assert (got["status"], got["price_cents"], got["answers"]) == ("awaiting_approval", 4000, {"size": "L"})
    # declined: the seat and the use come back
    r = client.post(f"/api/bookings/{bk['id']}/decline", headers=provider.headers, json={"reason": "Closed"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert code_uses(client, provider, code_id) == 0
    r = client.post("/api/bookings", headers=bob.headers, json={
        "service_id": sid, "start": start, "discount_code": "ONE-SHOT", "answers": {"size": "S"},
        "payment_method": "on_site"})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["price_cents"]) == ("awaiting_approval", 4000)
