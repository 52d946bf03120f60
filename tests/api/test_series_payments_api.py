"""POST /api/bookings with `recurrence` and an online `payment_method`: the series comes back
pending with the one Stripe Checkout URL paying it (`checkout_url`); the webhook confirms every
date; cancelling one date refunds its share only (real `stripe` SDK against the stub)."""
from __future__ import annotations

from tests.api.conftest import make_account, open_room
from tests.factories import next_day_at
from tests.test_payments_api import stripe_on, webhook  # noqa: F401 (fixture)

PRICE = 2500


def test_series_paid_by_card_over_http(client, stripe_on, fast_hash):
    room = open_room(client, price_cents=PRICE)
    cust = make_account("customer")
    body = {"service_id": room["id"], "start": next_day_at(10).isoformat(), "payment_method": "card",
            "recurrence": {"frequency": "weekly", "count": 3}}
    r = client.post("/api/bookings", headers=cust.headers, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["checkout_url"].startswith("https://checkout.stripe.com/") and len(stripe_on.sessions) == 1
    assert [b["status"] for b in out["bookings"]] == ["pending"] * 3
    session = stripe_on.complete_session(next(iter(stripe_on.sessions)))
    assert webhook(client, stripe_on, "checkout.session.completed", session).json()["outcome"] == "processed"
    got = client.get(f"/api/series/{out['series_id']}", headers=cust.headers).json()
    assert [b["status"] for b in got["bookings"]] == ["confirmed"] * 3
    first = out["bookings"][0]["id"]
    r = client.delete(f"/api/bookings/{first}", headers=cust.headers)
    assert r.status_code == 200, r.text
    assert [client.get(f"/api/payments/{b['id']}", headers=cust.headers).json()["refunded_cents"]
            for b in out["bookings"]] == [PRICE, 0, 0]
    # on site: confirmed at once, no Checkout
    r = client.post("/api/bookings", headers=cust.headers,
                    json={**body, "payment_method": "on_site", "start": next_day_at(12).isoformat()})
    assert r.status_code == 201 and r.json()["checkout_url"] is None, r.text
