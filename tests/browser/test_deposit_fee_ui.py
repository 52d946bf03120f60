"""Deposits and fees in the browser (issue 26): a booking with a deposit (the review step says
what is paid now and that the card is saved for a no-show fee) → Stripe Checkout for the
deposit → the booking page shows paid / due → "Pay the balance" → a second Checkout → nothing
due; then the provider marks the customer a no-show and the fee is charged to the saved card.
Checkout is the local Stripe stub (its hosted page answered by a route); one size: the lines
are plain text in the booking card, laid out as the rest of it."""
from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import sqlite3
import urllib.request
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in, sign_up, unique_user
from tests.browser.test_booking_flow import pick_slot, roomy_day
from tests.browser.test_provider import api_token

pytestmark = pytest.mark.browser


def _service(page: Page, name: str) -> int:
    token = api_token(page, "provider", "demo-provider-pass")
    auth = {"Authorization": f"Bearer {token}"}
    resp = page.request.post("/api/services", headers=auth, data={
        "name": name, "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 4000, "currency": "EUR",
        "timezone": "UTC", "deposit_percent": 25, "no_show_fee_cents": 900})
    assert resp.status == 201, resp.text()
    sid = resp.json()["id"]
    resp = page.request.put(f"/api/services/{sid}/availability", headers=auth, data={
        "weekly": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)], "exceptions": []})
    assert resp.ok, resp.text()
    return sid


def _pay_on_stripe(live_server: str, stripe_stub, session_id: str) -> None:
    """The customer pays on the hosted page; Stripe sends the signed webhook."""
    payload, header = stripe_stub.event("checkout.session.completed", stripe_stub.complete_session(session_id))
    request = urllib.request.Request(f"{live_server}/api/payments/webhook/stripe", data=payload.encode(),
                                     method="POST",
                                     headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as resp:
        assert json.loads(resp.read())["outcome"] == "processed"


def _to_checkout(page: Page, stripe_stub, click) -> dict:
    before = set(stripe_stub.sessions)
    click()
    page.wait_for_url(re.compile(r"^https://checkout\.stripe\.com/"))
    (session_id,) = set(stripe_stub.sessions) - before
    return stripe_stub.sessions[session_id]


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_deposit_then_balance_then_a_no_show_fee(page, size, live_server, stripe_stub, open_page, tmp_path_factory):
    page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<html><body>Stripe Checkout (stub)</body></html>"))
    name = f"Deposit studio {uuid.uuid4().hex[:6]}"
    sid = _service(page, name)
    sign_up(page, unique_user())
    goto(page, f"/service?id={sid}")
    expect(page.get_by_test_id("bookable-name")).to_have_text(name)
    expect(page.get_by_test_id("slot").first).to_be_visible()
    roomy_day(page)
    pick_slot(page, 0)
    page.get_by_test_id("continue").click()
    page.wait_for_url(re.compile(r"/book\?"))
    page.get_by_role("radio", name="Card").click()
    consent = page.locator("#payment-consent")
    expect(consent).to_contain_text("You pay a deposit of €10.00 now; the rest, €30.00, later.")
    expect(consent).to_contain_text("your card is saved to charge a no-show fee of €9.00")

    deposit = _to_checkout(page, stripe_stub, page.get_by_test_id("confirm").click)
    assert deposit["amount_total"] == 1000 and deposit["setup_future_usage"] == "off_session"
    _pay_on_stripe(live_server, stripe_stub, deposit["id"])
    booking_id = deposit["metadata"]["booking_id"]
    goto(page, f"/booking?id={booking_id}")
    expect(page.get_by_test_id("money-paid")).to_have_text("Paid: €10.00")
    expect(page.get_by_test_id("money-balance")).to_have_text("Balance to pay: €30.00")
    assert_no_horizontal_scroll(page)

    balance = _to_checkout(page, stripe_stub, page.get_by_test_id("pay-balance").click)
    assert balance["amount_total"] == 3000
    _pay_on_stripe(live_server, stripe_stub, balance["id"])
    goto(page, f"/booking?id={booking_id}")
    expect(page.get_by_test_id("money-paid")).to_have_text("Paid: €40.00")
    expect(page.get_by_test_id("money-due")).to_have_text("Due: €0.00")
    expect(page.get_by_test_id("pay-balance")).to_have_count(0)
    reference = page.get_by_test_id("reference").inner_text()

    # the hour went by without the customer (the booking is moved into the past in the test database)
    start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=2)
    stamps = [(start + dt.timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S.%f") for h in (0, 1)]
    (database,) = sorted(pathlib.Path(tmp_path_factory.getbasetemp()).glob("live-server*/browser.db"))[-1:]
    with sqlite3.connect(database, timeout=30) as conn:
        conn.execute("UPDATE bookings SET start_at = ?, block_start_at = ?, end_at = ?, block_end_at = ? WHERE id = ?",
                     (stamps[0], stamps[0], stamps[1], stamps[1], int(booking_id)))

    provider = open_page()
    sign_in(provider, "provider", "demo-provider-pass")
    goto(provider, "/provider/bookings")
    row = provider.locator(f'[data-testid="booking-row"][data-reference="{reference}"]')
    row.get_by_test_id("no-show").click()
    expect(row.get_by_test_id("status")).to_have_text("No-show")
    expect(row.get_by_test_id("money")).to_have_text("No-show fee: €9.00, charged")
    [charge] = [r for r in stripe_stub.calls("POST", "/v1/payment_intents")
                if r.params.get("metadata", {}).get("booking_id") == booking_id]
    assert charge.params["off_session"] == "true" and charge.params["amount"] == "900"

    goto(page, f"/booking?id={booking_id}")
    expect(page.get_by_test_id("money-fee")).to_have_text("No-show fee: €9.00, charged")
    assert page.console_errors == [] and provider.console_errors == []
