"""REST API of the Payment Service: /api/payments/… over both databases, with the real
`stripe` SDK talking to the local Stripe stub."""
from __future__ import annotations

import pytest

from booking_app.integrations import stripe_gateway
from tests.api.conftest import assert_problem, make_account
from tests.factories import make_bookable, next_day_at
from tests.stubs.stripe_stub import StripeStub

PRICE = 4200


@pytest.fixture
def stripe_on(monkeypatch):
    from booking_app.config import reset_settings_cache

    with StripeStub() as stub:
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_api")
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", stub.webhook_secret)
        monkeypatch.setenv("STRIPE_API_BASE", stub.url)
        monkeypatch.setenv("STRIPE_PAYMENT_METHODS", "card,paypal")
        reset_settings_cache()
        stripe_gateway.set_gateway(None)
        yield stub
    stripe_gateway.set_gateway(None)


@pytest.fixture
def sqlite_client(sqlite_db):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    with TestClient(create_api(), raise_server_exceptions=False) as c:
        yield c


def setup_booking(client, *, refund_percent: int = 100, method: str | None = "card"):
    provider = make_account("provider")
    customer = make_account("customer")
    b = make_bookable(provider.row(), price_cents=PRICE, refund_percent=refund_percent)
    body = {"service_id": b.id, "start": next_day_at(11).isoformat()}
    if method:
        body["payment_method"] = method
    r = client.post("/api/bookings", json=body, headers=customer.headers)
    assert r.status_code == 201, r.text
    return provider, customer, r.json()


def webhook(client, stub: StripeStub, event_type: str, obj: dict, **kw):
    payload, header = stub.event(event_type, obj, **kw)
    return client.post("/api/payments/webhook/stripe", content=payload,
                       headers={"Stripe-Signature": header, "Content-Type": "application/json"})


def test_card_flow_over_http(client, stripe_on):
    provider, customer, booking = setup_booking(client)
    assert booking["status"] == "pending"
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                    headers=customer.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"payment_id", "booking_id", "status", "method", "amount_cents", "currency", "checkout_url"}
    assert (body["status"], body["method"], body["amount_cents"], body["currency"]) == ("pending", "card", PRICE, "EUR")
    assert body["checkout_url"].startswith("https://checkout.stripe.com/")
    assert body["created_at"].endswith("Z")

    session_id = next(iter(stripe_on.sessions))
    session = stripe_on.complete_session(session_id)
    r = webhook(client, stripe_on, "checkout.session.completed", session, event_id="evt_api_1")
    assert r.status_code == 200 and r.json()["outcome"] == "processed"
    r = webhook(client, stripe_on, "checkout.session.completed", session, event_id="evt_api_1")
    assert r.status_code == 200 and r.json()["outcome"] == "replayed"

    got = client.get(f"/api/payments/{booking['id']}", headers=customer.headers)
    assert got.status_code == 200 and got.json()["status"] == "succeeded" and got.json()["checkout_url"] is None
    assert client.get(f"/api/bookings/{booking['id']}", headers=customer.headers).json()["status"] == "confirmed"
    assert client.get(f"/api/payments/{booking['id']}", headers=provider.headers).status_code == 200

    # provider refunds part, then the rest
    r = client.post(f"/api/payments/{booking['id']}/refund", json={"amount_cents": 200}, headers=provider.headers)
    assert r.status_code == 200 and r.json()["status"] == "partially_refunded"
    r = client.post(f"/api/payments/{booking['id']}/refund", headers=provider.headers)
    assert r.status_code == 200 and r.json()["status"] == "refunded" and r.json()["refunded_cents"] == PRICE


def test_on_site_and_mark_paid_over_http(sqlite_client, stripe_on):
    client = sqlite_client
    provider, customer, booking = setup_booking(client, method="on_site")
    assert booking["status"] == "confirmed"
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "on_site"},
                    headers=customer.headers)
    assert r.status_code == 201 and r.json()["checkout_url"] is None and r.json()["status"] == "pending"
    assert_problem(client.post(f"/api/payments/{booking['id']}/mark-paid", headers=customer.headers), 403)
    other = make_account("provider")
    assert_problem(client.post(f"/api/payments/{booking['id']}/mark-paid", headers=other.headers), 404)
    r = client.post(f"/api/payments/{booking['id']}/mark-paid", headers=provider.headers)
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    assert_problem(client.post(f"/api/payments/{booking['id']}/mark-paid", headers=provider.headers), 409)


def test_bad_signature_is_400(sqlite_client, stripe_on):
    client = sqlite_client
    payload, header = stripe_on.event("checkout.session.completed", {"id": "cs_1", "metadata": {}})
    for headers in ({}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": header.replace("v1=", "v1=f")}):
        assert_problem(client.post("/api/payments/webhook/stripe", content=payload, headers=headers), 400)
    tampered = payload.replace('"cs_1"', '"cs_2"')
    assert_problem(client.post("/api/payments/webhook/stripe", content=tampered,
                               headers={"Stripe-Signature": header}), 400)
    assert_problem(client.post("/api/payments/webhook/stripe", content=b"x" * (600 * 1024),
                               headers={"Stripe-Signature": header}), 413)


def test_webhook_without_stripe_configured_is_400(sqlite_client):
    r = sqlite_client.post("/api/payments/webhook/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"})
    assert_problem(r, 400)


def test_customer_cannot_pay_or_see_anothers_payment(sqlite_client, stripe_on):
    client = sqlite_client
    _provider, customer, booking = setup_booking(client)
    stranger = make_account("customer")
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                    headers=stranger.headers)
    assert_problem(r, 404)
    assert stripe_on.sessions == {}
    client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                headers=customer.headers)
    assert_problem(client.get(f"/api/payments/{booking['id']}", headers=stranger.headers), 404)
    assert_problem(client.get(f"/api/payments/{booking['id']}"), 401)
    assert_problem(client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"}), 401)
    assert_problem(client.post(f"/api/payments/{booking['id']}/refund", headers=stranger.headers), 404)
    assert_problem(client.post(f"/api/payments/{booking['id']}/refund", headers=customer.headers), 403)


def test_amount_cannot_be_tampered_with(sqlite_client, stripe_on):
    client = sqlite_client
    _provider, customer, booking = setup_booking(client)
    for extra in ({"amount_cents": 1}, {"amount": 1}, {"currency": "JPY"}):
        r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card", **extra},
                        headers=customer.headers)
        assert_problem(r, 422)
    assert stripe_on.sessions == {}
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                    headers=customer.headers)
    assert r.json()["amount_cents"] == PRICE
    (session,) = stripe_on.sessions.values()
    assert session["amount_total"] == PRICE and session["currency"] == "eur"


def test_invalid_bodies_are_422(sqlite_client, stripe_on):
    customer = make_account("customer")
    for body in ({}, {"booking_id": "x", "method": "card"}, {"booking_id": 0, "method": "card"},
                 {"booking_id": 2**40, "method": "card"}, {"booking_id": 1, "method": "bitcoin"},
                 {"booking_id": 1, "method": "CARD!"}, {"booking_id": 1}, {"booking_id": 1, "method": None}):
        assert_problem(sqlite_client.post("/api/payments/process", json=body, headers=customer.headers), 422)
    assert_problem(sqlite_client.post("/api/payments/process", content=b"{not json",
                                      headers={**customer.headers, "Content-Type": "application/json"}), 422)
    assert_problem(sqlite_client.post("/api/payments/1/refund", json={"amount_cents": -1},
                                      headers=customer.headers), 422)


def test_gateway_down_is_502_and_retry_succeeds(sqlite_client, stripe_on):
    client = sqlite_client
    _provider, customer, booking = setup_booking(client)
    stripe_on.fail_next(503, times=4)
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                    headers=customer.headers)
    body = assert_problem(r, 502)
    assert body["type"] == "/problems/payment_error"
    assert client.get(f"/api/bookings/{booking['id']}", headers=customer.headers).json()["status"] == "pending"
    stripe_on.clear_faults()
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                    headers=customer.headers)
    assert r.status_code == 201 and r.json()["checkout_url"]


def test_idempotency_key_replays_and_rejects_other_body(sqlite_client, stripe_on):
    client = sqlite_client
    _provider, customer, booking = setup_booking(client)
    headers = {**customer.headers, "Idempotency-Key": "pay-123"}
    first = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"}, headers=headers)
    again = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    other = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "paypal"},
                        headers=headers)
    assert_problem(other, 422)
    assert len(stripe_on.sessions) == 1


def test_methods_listing(sqlite_client, stripe_on):
    r = sqlite_client.get("/api/payments/methods")
    assert r.status_code == 200
    assert [(m["method"], m["online"]) for m in r.json()["items"]] == [("card", True), ("paypal", True),
                                                                       ("on_site", False)]


def test_cancel_then_refund_for_cancellation(sqlite_client, stripe_on):
    """What the DELETE /api/bookings/{id} route is expected to trigger after the cancel."""
    from booking_app.services import refunds

    client = sqlite_client
    _provider, customer, booking = setup_booking(client, refund_percent=50)
    client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "card"},
                headers=customer.headers)
    session = stripe_on.complete_session(next(iter(stripe_on.sessions)))
    assert webhook(client, stripe_on, "checkout.session.completed", session).status_code == 200
    r = client.delete(f"/api/bookings/{booking['id']}", headers=customer.headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    refunds.refund_for_cancellation(booking_id=booking["id"])  # idempotent if the route did it already
    got = client.get(f"/api/payments/{booking['id']}", headers=customer.headers).json()
    assert got["status"] == "partially_refunded" and got["refunded_cents"] == PRICE // 2


def test_guest_pays_with_the_manage_token(sqlite_client, stripe_on):
    from booking_app.services import manage_links

    client = sqlite_client
    b = make_bookable(make_account("provider").row(), price_cents=PRICE)
    r = client.post("/api/bookings", json={"service_id": b.id, "start": next_day_at(12).isoformat(),
                                           "payment_method": "card",
                                           "guest": {"name": "Gus Guest", "email": "gus@example.com"}})
    assert r.status_code == 201, r.text
    booking_id = r.json()["id"]
    body = {"booking_id": booking_id, "method": "card"}
    assert_problem(client.post("/api/payments/process", json=body), 401)
    assert_problem(client.post("/api/payments/process?token=1.bad", json=body), 404)
    token = manage_links.booking_manage_token(booking_id)
    r = client.post(f"/api/payments/process?token={token}", json=body)
    assert r.status_code == 201 and r.json()["checkout_url"]
    (session,) = stripe_on.sessions.values()
    assert session["customer_email"] == "gus@example.com"
    assert client.get(f"/api/payments/{booking_id}?token={token}").json()["status"] == "pending"
    other = manage_links.booking_manage_token(booking_id + 1)
    assert_problem(client.get(f"/api/payments/{booking_id}?token={other}"), 404)
