"""'Charge fee again' in the provider's booking list (issue 26 follow-up): a no-show fee whose
card was declined shows as due with the button; after the customer's card works again, one
click charges it (services/fees.charge_again, as POST /api/fees/{id}/charge) and the row says
charged. The booking is paid by card through the local Stripe stub (API calls), so the card is
saved; the declines are the stub's `off_session_outcome`."""
from __future__ import annotations

import datetime as dt
import pathlib
import sqlite3
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import goto, sign_in
from tests.browser.test_deposit_fee_ui import _pay_on_stripe, _service
from tests.browser.test_provider import api_token

pytestmark = pytest.mark.browser


def test_a_declined_no_show_fee_is_charged_again(page, live_server, stripe_stub, open_page, tmp_path_factory):
    sid = _service(page, f"Retry studio {uuid.uuid4().hex[:6]}")
    tag = uuid.uuid4().hex[:8]
    password = f"Pw-{tag}-long-enough"
    resp = page.request.post("/api/users/register", data={"username": f"u{tag}", "email": f"u{tag}@example.com",
                                                          "password": password})
    assert resp.status == 201, resp.text()
    auth = {"Authorization": f"Bearer {api_token(page, f'u{tag}', password)}"}
    day = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    slots = page.request.get(f"/api/services/{sid}/slots?from={day}&to={day}").json()["slots"]
    resp = page.request.post("/api/bookings", headers=auth, data={"service_id": sid, "start": slots[0]["start"],
                                                                   "payment_method": "card"})
    assert resp.status == 201, resp.text()
    booking = resp.json()
    before = set(stripe_stub.sessions)
    resp = page.request.post("/api/payments/process", headers=auth, data={"booking_id": booking["id"],
                                                                           "method": "card"})
    assert resp.status == 201, resp.text()
    (session_id,) = set(stripe_stub.sessions) - before
    _pay_on_stripe(live_server, stripe_stub, session_id)
    customer_ref = stripe_stub.sessions[session_id]["customer"]
    stripe_stub.off_session_outcome[customer_ref] = "card_declined"

    # the hour went by without the customer (the booking is moved into the past in the test database)
    start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=2)
    stamps = [(start + dt.timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S.%f") for h in (0, 1)]
    (database,) = sorted(pathlib.Path(tmp_path_factory.getbasetemp()).glob("live-server*/browser.db"))[-1:]
    with sqlite3.connect(database, timeout=30) as conn:
        conn.execute("UPDATE bookings SET start_at = ?, block_start_at = ?, end_at = ?, block_end_at = ? WHERE id = ?",
                     (stamps[0], stamps[0], stamps[1], stamps[1], int(booking["id"])))

    provider = open_page()
    sign_in(provider, "provider", "demo-provider-pass")
    goto(provider, "/provider/bookings")
    row = provider.locator(f'[data-testid="booking-row"][data-reference="{booking["reference"]}"]')
    row.get_by_test_id("no-show").click()
    expect(row.get_by_test_id("status")).to_have_text("No-show")
    expect(row.get_by_test_id("money")).to_contain_text("No-show fee: €9.00, due (the card was declined)")
    retry = row.get_by_test_id("charge-fee-again")
    expect(retry).to_be_visible()

    stripe_stub.off_session_outcome[customer_ref] = "succeeded"
    retry.click()
    expect(row.get_by_test_id("money")).to_contain_text("No-show fee: €9.00, charged")
    expect(provider.get_by_text("The fee is charged.")).to_be_visible()
    expect(row.get_by_test_id("charge-fee-again")).to_have_count(0)
    charges = [r for r in stripe_stub.calls("POST", "/v1/payment_intents")
               if r.params.get("metadata", {}).get("booking_id") == str(booking["id"])]
    assert [c.params["amount"] for c in charges] == ["900", "900"]  # declined, then charged once
    assert provider.console_errors == []
