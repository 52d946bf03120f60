"""The provider's outcome marks and "charge again" over HTTP: POST /api/bookings/{id}/complete,
POST /api/bookings/{id}/no-show (the no-show fee charged as by the provider's button) and
POST /api/fees/{id}/charge — who may (its provider, admin; the customer 403, others 404),
409 before the start, once marked, once cancelled, or once paid; 422 for bad ids. On SQLite
and PostgreSQL (the `client` fixture); the real `stripe` SDK against the stub."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from freezegun import freeze_time

from tests.api.conftest import Account, assert_problem, make_account, open_room, set_env
from tests.test_payments_api import stripe_on, webhook  # noqa: F401 (fixture)

FEE = 900


@pytest.fixture(autouse=True)
def _no_limits(monkeypatch):
    set_env(monkeypatch, RATE_LIMITS_ENABLED="false")


def _fresh(*accounts: Account) -> list[Account]:
    """The accounts signed in again now (after a jump in time their tokens and staff
    sessions would have expired)."""
    from booking_app import db
    from booking_app.services import auth

    out = []
    for acct in accounts:
        with db.unit_of_work() as s:
            token, _ = auth.issue_token(s, user_id=acct.id)
        out.append(dataclasses.replace(acct, token=token))
    return out


def _start(days: int = 1, hour: int = 10) -> dt.datetime:
    day = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc)


def _book(client, room, customer, start: dt.datetime, **extra) -> dict:
    r = client.post("/api/bookings", headers=customer.headers,
                    json={"service_id": room["id"], "start": start.isoformat(), **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_complete_and_no_show_marks(client, fast_hash):
    room = open_room(client)
    provider, customer, admin = room["provider"], make_account("customer"), make_account("admin")
    start = _start()
    done, absent, cancelled = (_book(client, room, customer, start + dt.timedelta(hours=h)) for h in (0, 2, 4))
    path = lambda b, mark: f"/api/bookings/{b['id']}/{mark}"  # noqa: E731

    # before the start: not yet
    for mark in ("complete", "no-show"):
        body = assert_problem(client.post(path(done, mark), headers=provider.headers), 409)
        assert body["detail"] == "This booking has not started yet."
    assert client.delete(f"/api/bookings/{cancelled['id']}", headers=provider.headers).status_code == 200

    with freeze_time(start + dt.timedelta(hours=5), tick=True):
        provider, customer, admin = _fresh(provider, customer, admin)
        # who may: its provider and admins; the customer sees the booking (403), others don't (404)
        for mark in ("complete", "no-show"):
            assert_problem(client.post(path(done, mark)), 401)
            assert_problem(client.post(path(done, mark), headers=customer.headers), 403)
            assert_problem(client.post(path(done, mark), headers=make_account("provider").headers), 404)
            assert_problem(client.post(path(done, mark), headers=make_account("customer").headers), 404)
            assert_problem(client.post(f"/api/bookings/999999999/{mark}", headers=provider.headers), 404)
            for bad in ("abc", "0", "-1", "1.5", "99999999999999999999"):
                assert_problem(client.post(f"/api/bookings/{bad}/{mark}", headers=provider.headers), 422)
            # a cancelled booking can't be marked
            assert_problem(client.post(path(cancelled, mark), headers=admin.headers), 409)

        r = client.post(path(done, "complete"), headers=provider.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["id"], r.json()["status"]) == (done["id"], "completed")
        r = client.post(path(absent, "no-show"), headers=admin.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["fees_cents"]) == ("no_show", 0)  # a free room charges no fee
        # marked once: the other mark (or the same again) is a conflict
        for b in (done, absent):
            for mark in ("complete", "no-show"):
                assert_problem(client.post(path(b, mark), headers=provider.headers), 409)
        got = client.get(f"/api/bookings/{done['id']}", headers=customer.headers).json()
        assert got["status"] == "completed"


def test_no_show_over_http_charges_the_fee_and_a_declined_fee_is_charged_again(client, stripe_on, fast_hash):
    room = open_room(client, price_cents=4000, no_show_fee_cents=FEE)
    provider, customer = room["provider"], make_account("customer")
    start = _start(hour=11)
    booking = _book(client, room, customer, start, payment_method="card")
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                    headers=customer.headers)
    assert r.status_code == 201, r.text
    session = stripe_on.complete_session(next(iter(stripe_on.sessions)))
    assert webhook(client, stripe_on, "checkout.session.completed", session).json()["outcome"] == "processed"
    stripe_on.off_session_outcome[session["customer"]] = "card_declined"

    with freeze_time(start + dt.timedelta(minutes=30), tick=True):
        [marker] = _fresh(provider)
        r = client.post(f"/api/bookings/{booking['id']}/no-show", headers=marker.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["fees_cents"]) == ("no_show", FEE)
    money = client.get(f"/api/payments/{booking['id']}/money", headers=provider.headers).json()
    [fee] = money["fees"]
    assert (fee["kind"], fee["amount_cents"], fee["status"]) == ("no_show", FEE, "failed")
    assert len(stripe_on.calls("POST", "/v1/payment_intents")) == 1  # tried once, as the button does

    charge = f"/api/fees/{fee['id']}/charge"
    assert_problem(client.post(charge), 401)
    assert_problem(client.post(charge, headers=customer.headers), 403)
    assert_problem(client.post(charge, headers=make_account("provider").headers), 404)
    assert_problem(client.post("/api/fees/999999999/charge", headers=provider.headers), 404)
    for bad in ("abc", "0", "99999999999999999999"):
        assert_problem(client.post(f"/api/fees/{bad}/charge", headers=provider.headers), 422)

    # declined again: 200, still failed, the reason said
    r = client.post(charge, headers=provider.headers)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["id"], got["booking_id"], got["status"], got["attempts"]) == (fee["id"], booking["id"], "failed", 2)
    assert "card_declined" in got["last_error"]

    stripe_on.off_session_outcome[session["customer"]] = "succeeded"
    r = client.post(charge, headers=provider.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"], r.json()["last_error"]) == ("charged", 3, None)
    body = assert_problem(client.post(charge, headers=make_account("admin").headers), 409)
    assert body["detail"] == "This fee is paid already."
    assert len(stripe_on.calls("POST", "/v1/payment_intents")) == 3
    money = client.get(f"/api/payments/{booking['id']}/money", headers=customer.headers).json()
    assert (money["fees_due_cents"], money["fees"][0]["status"]) == (0, "charged")


def test_a_fee_problem_is_translated(client, fast_hash):
    provider = make_account("provider", locale="es")
    r = client.post("/api/fees/999999999/charge", headers=provider.headers)
    assert assert_problem(r, 404)["detail"] == "Este cargo no existe."
