"""/api/discount-codes and `discount_code` on POST /api/bookings (issue 26, point 1), on
SQLite and PostgreSQL: CRUD with `uses`, who may do what, 422 problem+json for bad input and
for an unusable code (`code: discount_code_invalid`, translated), the price computed by the
server (a client-sent price is refused), the discounted price sent to Stripe Checkout, and
the discount report."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import assert_problem, make_account
from tests.factories import ALL_WEEK, make_bookable, next_day_at
from tests.test_payments_api import stripe_on  # noqa: F401 - the Stripe stub fixture


@pytest.fixture
def shop(client, fast_hash):
    provider = make_account("provider")
    room = make_bookable(provider.row(), weekly=ALL_WEEK, price_cents=4000, capacity=5)
    return provider, room


def book(client, headers, room, hour, **extra):
    return client.post("/api/bookings", headers=headers,
                       json={"service_id": room.id, "start": next_day_at(hour).isoformat(), **extra})


def test_crud_with_uses_and_a_booking_with_a_code(client, shop):
    provider, room = shop
    r = client.post("/api/discount-codes", headers=provider.headers,
                    json={"code": " welcome-25 ", "percent_off": 25, "max_uses": 3, "kinds": ["room"],
                          "service_ids": [room.id]})
    assert r.status_code == 201, r.text
    code = r.json()
    assert (code["code"], code["percent_off"], code["amount_off_cents"], code["uses"], code["active"],
            code["provider_id"]) == ("WELCOME-25", 25, None, 0, True, provider.id)
    cust = make_account("customer")
    r = book(client, cust.headers, room, 10, discount_code="Welcome-25", quantity=2)
    assert r.status_code == 201, r.text
    bk = r.json()
    assert (bk["list_price_cents"], bk["discount_cents"], bk["price_cents"]) == (8000, 2000, 6000)
    got = client.get(f"/api/bookings/{bk['id']}", headers=cust.headers).json()
    assert (got["list_price_cents"], got["discount_cents"], got["price_cents"]) == (8000, 2000, 6000)
    plain = book(client, cust.headers, room, 11).json()
    assert (plain["list_price_cents"], plain["discount_cents"], plain["price_cents"]) == (4000, 0, 4000)

    assert client.get(f"/api/discount-codes/{code['id']}", headers=provider.headers).json()["uses"] == 1
    r = client.put(f"/api/discount-codes/{code['id']}", headers=provider.headers, json={"max_uses": 1})
    assert r.status_code == 200 and (r.json()["max_uses"], r.json()["percent_off"]) == (1, 25)
    body = assert_problem(book(client, cust.headers, room, 12, discount_code="WELCOME-25"), 422)
    assert body["code"] == "discount_code_invalid" and body["field"] == "discount_code"
    assert client.delete(f"/api/bookings/{bk['id']}", headers=cust.headers).status_code == 200
    assert client.get("/api/discount-codes", headers=provider.headers).json()["items"][0]["uses"] == 0
    r = client.delete(f"/api/discount-codes/{code['id']}", headers=provider.headers)
    assert r.status_code == 200 and r.json()["active"] is False
    assert assert_problem(book(client, cust.headers, room, 12, discount_code="WELCOME-25"), 422)["code"] == \
        "discount_code_invalid"


def test_who_may_do_what(client, shop):
    provider, room = shop
    other = make_account("provider")
    admin = make_account("admin")
    cust = make_account("customer")
    r = client.post("/api/discount-codes", headers=provider.headers, json={"code": "MINE", "percent_off": 10})
    cid = r.json()["id"]
    assert assert_problem(client.post("/api/discount-codes", json={"code": "X12", "percent_off": 10}), 401)
    assert_problem(client.post("/api/discount-codes", headers=cust.headers, json={"code": "X12", "percent_off": 10}), 403)
    assert_problem(client.get(f"/api/discount-codes/{cid}", headers=other.headers), 404)
    assert_problem(client.put(f"/api/discount-codes/{cid}", headers=other.headers, json={"active": False}), 404)
    assert_problem(client.delete(f"/api/discount-codes/{cid}", headers=other.headers), 404)
    assert client.get("/api/discount-codes", headers=other.headers).json()["items"] == []
    assert client.get(f"/api/discount-codes/{cid}", headers=admin.headers).json()["code"] == "MINE"
    assert_problem(client.post("/api/discount-codes", headers=other.headers,
                               json={"code": "THEIRS", "percent_off": 10, "service_ids": [room.id]}), 422)
    r = client.post("/api/discount-codes", headers=admin.headers,
                    json={"code": "HOUSE", "amount_off_cents": 1500, "currency": "eur", "service_ids": [room.id]})
    assert r.status_code == 201 and (r.json()["provider_id"], r.json()["currency"]) == (None, "EUR")


@pytest.mark.parametrize("body", [
    {"code": "AB", "percent_off": 10},
    {"code": "with space", "percent_off": 10},
    {"code": "OK1", "percent_off": 10, "amount_off_cents": 100, "currency": "EUR"},
    {"code": "OK1"},
    {"code": "OK1", "amount_off_cents": 100},
    {"code": "OK1", "percent_off": 150},
    {"code": "OK1", "percent_off": "10"},
    {"code": "OK1", "percent_off": 10, "kinds": ["spa"]},
    {"code": "OK1", "percent_off": 10, "valid_until": "2027-01-01T00:00:00"},
    {"code": "OK1", "percent_off": 10, "valid_from": "2027-02-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z"},
    {"code": "OK1\u0000", "percent_off": 10},
    {"code": "OK1", "percent_off": 10, "service_ids": [2**31 - 1]},
    {"code": "OK1", "percent_off": 10, "uses": 5},
])
def test_bad_input_is_422(client, shop, body):
    provider, _room = shop
    assert_problem(client.post("/api/discount-codes", headers=provider.headers, json=body), 422)
    assert client.get("/api/discount-codes", headers=provider.headers).json()["items"] == []


def test_price_tampering_is_refused_and_the_invalid_code_detail_is_translated(client, shop):
    provider, room = shop
    cust = make_account("customer")
    for forged in ({"price_cents": 1}, {"discount_cents": 3999}, {"list_price_cents": 1}):
        assert_problem(book(client, cust.headers, room, 10, **forged), 422)
    r = book(client, {"Accept-Language": "fr"}, room, 10, discount_code="NOPE-NOPE",
             guest={"name": "Invité", "email": "invite@example.com"})
    body = assert_problem(r, 422)
    assert (body["code"], body["detail"]) == ("discount_code_invalid", "Ce code de réduction n'est pas valide.")
    r = book(client, cust.headers, room, 10, discount_code="NOPE-NOPE")
    assert assert_problem(r, 422)["detail"] == "This discount code is not valid."
    assert client.get("/api/bookings", headers=cust.headers).json()["total"] == 0  # nothing was booked


def test_stripe_checkout_charges_the_discounted_price(client, shop, stripe_on):  # noqa: F811
    provider, room = shop
    client.post("/api/discount-codes", headers=provider.headers, json={"code": "HALF", "percent_off": 50})
    cust = make_account("customer")
    bk = book(client, cust.headers, room, 10, discount_code="half", payment_method="card").json()
    assert (bk["status"], bk["price_cents"]) == ("pending", 2000)
    r = client.post("/api/payments/process", json={"booking_id": bk["id"], "method": "card"}, headers=cust.headers)
    assert r.status_code == 201 and r.json()["amount_cents"] == 2000, r.text
    session = next(iter(stripe_on.sessions.values()))
    assert session["amount_total"] == 2000


def test_discount_report_over_http(client, shop):
    provider, room = shop
    admin = make_account("admin")
    client.post("/api/discount-codes", headers=provider.headers, json={"code": "TENNER", "amount_off_cents": 1000,
                                                                       "currency": "EUR"})
    cust = make_account("customer")
    book(client, cust.headers, room, 10, discount_code="TENNER")
    book(client, cust.headers, room, 11)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    r = client.get("/api/reports/discounts", headers=admin.headers, params={"from": today, "to": today, "tz": "UTC"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["summary"]["totals"] == [{"currency": "EUR", "bookings": 2, "gross_cents": 8000,
                                         "discount_cents": 1000, "net_cents": 7000}]
    assert [(x["code"], x["uses"], x["discount_cents"]) for x in rep["rows"]] == [("TENNER", 1, 1000)]
    csv = client.get("/api/reports/discounts", headers=admin.headers,
                     params={"from": today, "to": today, "tz": "UTC", "format": "csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("code_id,code,currency,uses")
    assert_problem(client.get("/api/reports/discounts", headers=provider.headers), 403)
