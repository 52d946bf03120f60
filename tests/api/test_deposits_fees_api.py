"""REST API of deposits and fees (issue 26): the bookable's policy fields, the booking JSON's
deposit_cents / balance_due_cents / fees_cents, POST /api/payments/{id}/balance and
GET /api/payments/{id}/money — with the real `stripe` SDK against the local stub."""
from __future__ import annotations

import datetime as dt

from booking_app.services import payments
from booking_app.services.actors import Actor
from tests.api.conftest import assert_problem, make_account
from tests.factories import next_day_at
from tests.test_payments_api import stripe_on, webhook  # noqa: F401 (fixture)

PRICE = 4000


def test_policy_fields_round_trip_and_are_validated(client):
    provider = make_account("provider")
    r = client.post("/api/services", headers=provider.headers, json={
        "name": "Room", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": PRICE, "currency": "EUR",
        "timezone": "UTC", "deposit_percent": 30, "no_show_fee_cents": 1500, "late_cancel_fee_cents": 800})
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["deposit_percent"], got["deposit_cents"], got["no_show_fee_cents"], got["late_cancel_fee_cents"]) == (
        30, None, 1500, 800)
    sid = got["id"]
    r = client.put(f"/api/services/{sid}", headers=provider.headers, json={"deposit_cents": 1000})
    assert r.status_code == 200 and (r.json()["deposit_percent"], r.json()["deposit_cents"]) == (None, 1000)
    for bad in ({"deposit_percent": 20, "deposit_cents": 100}, {"deposit_percent": 0}, {"deposit_percent": 101},
                {"deposit_cents": -3}, {"no_show_fee_cents": None}, {"late_cancel_fee_cents": "7"},
                {"no_show_fee_cents": 10**12}):
        assert_problem(client.put(f"/api/services/{sid}", headers=provider.headers, json=bad), 422)
    assert client.get(f"/api/services/{sid}").json()["deposit_cents"] == 1000  # nothing half-written


def test_deposit_booking_balance_and_money_over_http(client, stripe_on):
    provider, customer = make_account("provider"), make_account("customer")
    r = client.post("/api/services", headers=provider.headers, json={
        "name": "Studio", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": PRICE, "currency": "EUR",
        "timezone": "UTC", "deposit_percent": 25, "no_show_fee_cents": 900})
    sid = r.json()["id"]
    client.put(f"/api/services/{sid}/availability", headers=provider.headers,
               json={"weekly": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)], "exceptions": []})
    r = client.post("/api/bookings", headers=customer.headers,
                    json={"service_id": sid, "start": next_day_at(11).isoformat(), "payment_method": "card"})
    assert r.status_code == 201, r.text
    booking = r.json()
    assert (booking["price_cents"], booking["deposit_cents"], booking["balance_due_cents"], booking["fees_cents"]) == (
        PRICE, 1000, 3000, 0)
    bid = booking["id"]
    r = client.post("/api/payments/process", json={"booking_id": bid, "method": "card"}, headers=customer.headers)
    assert r.status_code == 201 and r.json()["amount_cents"] == 1000 and r.json()["purpose"] == "booking"
    session = stripe_on.complete_session(next(iter(stripe_on.sessions)))
    assert webhook(client, stripe_on, "checkout.session.completed", session).json()["outcome"] == "processed"

    money = client.get(f"/api/payments/{bid}/money", headers=customer.headers).json()
    assert (money["paid_cents"], money["balance_due_cents"], money["due_cents"], money["fees"]) == (1000, 3000, 3000, [])
    assert client.get(f"/api/payments/{bid}/money", headers=provider.headers).status_code == 200
    assert_problem(client.get(f"/api/payments/{bid}/money", headers=make_account("customer").headers), 404)

    assert_problem(client.post(f"/api/payments/{bid}/balance", headers=provider.headers), 404)  # the customer pays
    r = client.post(f"/api/payments/{bid}/balance", headers=customer.headers)
    assert r.status_code == 201, r.text
    assert (r.json()["purpose"], r.json()["amount_cents"]) == ("balance", 3000) and r.json()["checkout_url"]
    balance_session = [s for s in stripe_on.sessions if s != session["id"]][0]
    webhook(client, stripe_on, "checkout.session.completed", stripe_on.complete_session(balance_session))
    got = client.get(f"/api/bookings/{bid}", headers=customer.headers).json()
    assert (got["balance_due_cents"], got["payment_status"]) == (0, "succeeded")
    assert_problem(client.post(f"/api/payments/{bid}/balance", headers=customer.headers), 409)

    # the provider marks a no-show: the fee is charged to the card saved at Checkout
    payments.mark_no_show(actor=Actor(id=provider.id, role="provider"), booking_id=bid,
                          now=dt.datetime.fromisoformat(got["start"].replace("Z", "+00:00")) + dt.timedelta(hours=1))
    got = client.get(f"/api/bookings/{bid}", headers=provider.headers).json()
    assert (got["status"], got["fees_cents"]) == ("no_show", 900)
    money = client.get(f"/api/payments/{bid}/money", headers=customer.headers).json()
    assert [(f["kind"], f["amount_cents"], f["status"]) for f in money["fees"]] == [("no_show", 900, "charged")]
    assert money["fees_due_cents"] == 0 and money["paid_cents"] == PRICE


def test_balance_without_stripe_is_refused_cleanly(client):
    provider, customer = make_account("provider"), make_account("customer")
    r = client.post("/api/services", headers=provider.headers, json={
        "name": "Hall", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": PRICE, "currency": "EUR",
        "timezone": "UTC", "deposit_percent": 50})
    sid = r.json()["id"]
    client.put(f"/api/services/{sid}/availability", headers=provider.headers,
               json={"weekly": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)], "exceptions": []})
    r = client.post("/api/bookings", headers=customer.headers,
                    json={"service_id": sid, "start": next_day_at(11).isoformat()})
    booking = r.json()
    assert (booking["status"], booking["deposit_cents"], booking["balance_due_cents"]) == ("confirmed", 0, 0)
    assert_problem(client.post(f"/api/payments/{booking['id']}/balance", headers=customer.headers), 409)
    assert_problem(client.post(f"/api/payments/{booking['id']}/balance"), 401)
    assert_problem(client.post("/api/payments/0/balance", headers=customer.headers), 422)
