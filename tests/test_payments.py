"""Payment Service against the real `stripe` SDK talking to a local Stripe stub.

Happy path per method (card, paypal, async methods, on site, free), gateway failures
(5xx, timeouts, declines: booking stays pending, retry possible, nothing charged twice),
webhooks (replays, out of order, late payment after the hold expired and the seat was
resold → automatic refund), refunds per policy and manual refunds, the refund sweep.
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.integrations import stripe_gateway
from booking_app.models import Booking, Notification, Payment, ProcessedWebhookEvent, Refund
from booking_app.services import bookings, payment_records, payments, refunds, stripe_webhooks
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, Forbidden, InvalidInput, NotAvailable, NotFound, PaymentError
from booking_app.ui.state.booking_common import refund_preview_text
from tests.factories import (actor_for, booking_row, make_admin, make_bookable, make_customer, make_event,
                             make_provider, next_day_at)
from tests.stubs.stripe_stub import StripeStub
from tests.threads import run_together

PRICE = 2500


@pytest.fixture
def stub():
    with StripeStub() as s:
        yield s


@pytest.fixture
def stripe_on(stub, monkeypatch):
    """Stripe configured through the settings, pointed at the stub."""
    from booking_app.config import reset_settings_cache

    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_payments")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", stub.webhook_secret)
    monkeypatch.setenv("STRIPE_API_BASE", stub.url)
    monkeypatch.setenv("STRIPE_PAYMENT_METHODS", "card,paypal,sepa_debit")
    reset_settings_cache()
    stub.clear_faults()
    stripe_gateway.set_gateway(None)
    yield stub
    stub.clear_faults()
    stripe_gateway.set_gateway(None)


@pytest.fixture
def fast_gateway(stripe_on):
    """The real gateway with a short timeout and no SDK retries (for timeout tests)."""
    g = stripe_gateway.StripeGateway(secret_key="sk_test_payments", webhook_secret=stripe_on.webhook_secret,
                         api_base=stripe_on.url, timeout=0.4, max_network_retries=0)
    stripe_gateway.set_gateway(g)
    return g


class World:
    def __init__(self, *, price: int = PRICE, refund_percent: int = 100, capacity: int = 1) -> None:
        self.provider = make_provider()
        self.customer = make_customer()
        self.bookable = make_bookable(self.provider, price_cents=price, refund_percent=refund_percent,
                                      capacity=capacity)
        self.start = next_day_at(10)

    @property
    def customer_actor(self) -> Actor:
        return actor_for(self.customer)

    def book(self, customer=None, *, method: str | None = "card", start: dt.datetime | None = None):
        who = actor_for(customer or self.customer)
        return bookings.book(actor=who, service_id=self.bookable.id, start=start or self.start,
                             payment_method=method)


def expire_hold(booking_id: int) -> None:
    """The booking's hold ran out a second ago (not yet released)."""
    with db.unit_of_work() as s:
        row = s.get(Booking, booking_id)
        row.hold_expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        s.add(row)


def payment_rows(booking_id: int) -> list[Payment]:
    with db.read_session() as s:
        return list(s.exec(select(Payment).where(Payment.booking_id == booking_id).order_by(Payment.id)).all())


def refund_rows(payment_id: int) -> list[Refund]:
    with db.read_session() as s:
        return list(s.exec(select(Refund).where(Refund.payment_id == payment_id).order_by(Refund.id)).all())


def deliver(stub: StripeStub, event_type: str, obj: dict, *, event_id: str | None = None) -> stripe_webhooks.WebhookResult:
    payload, header = stub.event(event_type, obj, event_id=event_id)
    return stripe_webhooks.handle_stripe_webhook(payload=payload.encode(), signature=header)


def pay(stub: StripeStub, view: payment_records.PaymentView, *, event_id: str | None = None) -> stripe_webhooks.WebhookResult:
    """The customer pays on the hosted page; Stripe sends checkout.session.completed."""
    with db.read_session() as s:
        session_id = s.get(Payment, view.payment_id).provider_ref
    session = stub.complete_session(session_id)
    return deliver(stub, "checkout.session.completed", session, event_id=event_id)


def session_creates(stub: StripeStub) -> list:
    return [r for r in stub.calls("POST", "/v1/checkout/sessions") if not r.path.endswith("/expire")]


# ---------------------------------------------------------------------------------------
# happy paths
# ---------------------------------------------------------------------------------------

def test_card_checkout_then_webhook_confirms(db_url, stripe_on):
    w = World()
    bk = w.book()
    assert bk.status == "pending"
    before = len(session_creates(stripe_on))
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert view.status == "pending" and view.method == "card" and view.provider == "stripe"
    assert view.amount_cents == PRICE and view.currency == "EUR"
    assert view.checkout_url and view.checkout_url.startswith("https://checkout.stripe.com/")

    request = session_creates(stripe_on)[before]
    p = request.params
    assert request.headers["idempotency-key"].startswith(f"checkout-{view.payment_id}-")
    assert p["payment_method_types"] == ["card"] and p["mode"] == "payment"
    item = p["line_items"][0]
    assert item["price_data"]["unit_amount"] == str(PRICE) and item["price_data"]["currency"] == "eur"
    assert p["metadata"] == {"booking_id": str(bk.id), "payment_id": str(view.payment_id)}
    assert p["client_reference_id"] == str(bk.id)
    assert p["success_url"].endswith(f"/bookings/{bk.id}/payment?result=success")
    assert p["cancel_url"].endswith(f"/bookings/{bk.id}/payment?result=cancel")
    expires = dt.datetime.fromtimestamp(int(p["expires_at"]), dt.timezone.utc)
    now = dt.datetime.now(dt.timezone.utc)
    assert expires >= now + dt.timedelta(minutes=30)  # Stripe's minimum
    hold = booking_row(bk.id).hold_expires_at
    assert hold is not None and hold >= expires  # the seat stays held while the page can be paid

    assert pay(stripe_on, view).outcome == "processed"
    assert booking_row(bk.id).status == "confirmed"
    got = payments.get_payment(actor=w.customer_actor, booking_id=bk.id)
    assert got.status == "succeeded" and got.checkout_url is None
    with db.read_session() as s:
        templates = [n.template for n in s.exec(select(Notification).where(Notification.booking_id == bk.id))]
    assert "booking_confirmed" in templates


def test_paypal_and_async_method(sqlite_db, stripe_on):
    w = World()
    bk = w.book(method="paypal")
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="paypal")
    assert session_creates(stripe_on)[-1].params["payment_method_types"] == ["paypal"]
    pay(stripe_on, view)
    assert booking_row(bk.id).status == "confirmed"

    # SEPA debit: completed but unpaid → wait; async success → confirmed
    bk2 = w.book(start=w.start + dt.timedelta(hours=2))
    view2 = payments.process(actor=w.customer_actor, booking_id=bk2.id, method="sepa_debit")
    sid = payment_rows(bk2.id)[-1].provider_ref
    session = stripe_on.complete_session(sid, payment_status="unpaid")
    assert deliver(stripe_on, "checkout.session.completed", session).outcome == "processed"
    assert booking_row(bk2.id).status == "pending"
    assert payments.get_payment(actor=w.customer_actor, booking_id=bk2.id).status == "pending"
    session = stripe_on.complete_session(sid, payment_status="paid")
    deliver(stripe_on, "checkout.session.async_payment_succeeded", session)
    assert booking_row(bk2.id).status == "confirmed"
    assert payment_records.get_payment_by_id(view2.payment_id).status == "succeeded"

    # async failure of a third booking → payment failed, hold released
    bk3 = w.book(start=w.start + dt.timedelta(hours=4))
    payments.process(actor=w.customer_actor, booking_id=bk3.id, method="sepa_debit")
    sid3 = payment_rows(bk3.id)[-1].provider_ref
    session = stripe_on.complete_session(sid3, payment_status="unpaid")
    deliver(stripe_on, "checkout.session.completed", session)
    deliver(stripe_on, "checkout.session.async_payment_failed", session)
    assert payment_rows(bk3.id)[-1].status == "failed"
    assert booking_row(bk3.id).status == "cancelled"


def test_on_site_confirms_and_provider_marks_paid(db_url, stripe_on):
    w = World()
    bk = w.book()  # pending: the customer first meant to pay online
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="on_site")
    assert view.status == "pending" and view.provider == "manual" and view.checkout_url is None
    assert booking_row(bk.id).status == "confirmed"
    # asking again changes nothing
    assert payments.process(actor=w.customer_actor, booking_id=bk.id, method="on_site").payment_id == view.payment_id
    with pytest.raises(Forbidden):
        payments.mark_paid(actor=w.customer_actor, booking_id=bk.id)
    with pytest.raises(NotFound):
        payments.mark_paid(actor=actor_for(make_provider()), booking_id=bk.id)
    paid = payments.mark_paid(actor=actor_for(w.provider), booking_id=bk.id)
    assert paid.status == "succeeded"
    with pytest.raises(Conflict):
        payments.mark_paid(actor=actor_for(w.provider), booking_id=bk.id)


def test_on_site_works_without_stripe(sqlite_db):
    w = World()
    bk = w.book(method=None)  # Stripe off: confirmed at once, pay at the venue
    assert bk.status == "confirmed"
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="on_site")
    assert view.method == "on_site" and view.status == "pending"
    with pytest.raises(InvalidInput) as err:
        payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert err.value.field == "method"
    assert [m.method for m in payments.available_methods()] == ["on_site"]


def test_free_booking_needs_no_payment(sqlite_db, stripe_on):
    w = World(price=0)
    bk = w.book(method=None)
    assert bk.status == "confirmed"
    with pytest.raises(Conflict):
        payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert payment_rows(bk.id) == []


def test_unknown_or_disabled_method_is_invalid(sqlite_db, stripe_on, monkeypatch):
    w = World()
    bk = w.book()
    for bad in ("klarna", "", None, 12, "CARD; drop"):
        with pytest.raises(InvalidInput):
            payments.process(actor=w.customer_actor, booking_id=bk.id, method=bad)
    from booking_app.config import reset_settings_cache

    monkeypatch.setenv("STRIPE_PAYMENT_METHODS", "card")
    reset_settings_cache()
    with pytest.raises(InvalidInput):
        payments.process(actor=w.customer_actor, booking_id=bk.id, method="paypal")
    assert payment_rows(bk.id) == []


def test_open_session_is_reused_and_switching_expires_it(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    before = len(session_creates(stripe_on))
    first = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    again = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert again.payment_id == first.payment_id and again.checkout_url == first.checkout_url
    assert len(session_creates(stripe_on)) == before + 1

    paypal = payments.process(actor=w.customer_actor, booking_id=bk.id, method="paypal")
    assert paypal.payment_id != first.payment_id
    old_session = payment_rows(bk.id)[0].provider_ref
    assert stripe_on.sessions[old_session]["status"] == "expired"
    assert payment_records.get_payment_by_id(first.payment_id).status == "cancelled"
    # the expiry event of the superseded session does not release the hold
    deliver(stripe_on, "checkout.session.expired", stripe_on.sessions[old_session])
    assert booking_row(bk.id).status == "pending"
    # switching to on site ends the PayPal session too
    on_site = payments.process(actor=w.customer_actor, booking_id=bk.id, method="on_site")
    assert stripe_on.sessions[payment_rows(bk.id)[1].provider_ref]["status"] == "expired"
    assert on_site.method == "on_site" and booking_row(bk.id).status == "confirmed"


def test_concurrent_process_calls_make_one_session(pg_db, stripe_on):
    w = World()
    bk = w.book()
    before = {r.path for r in session_creates(stripe_on)}
    results, errors = run_together(4, lambda i: payments.process(actor=w.customer_actor, booking_id=bk.id,
                                                                 method="card"))
    assert not errors, errors
    assert len({r.payment_id for r in results}) == 1
    assert len({r.checkout_url for r in results}) == 1
    assert len(payment_rows(bk.id)) == 1
    sessions = {sid for sid, sess in stripe_on.sessions.items() if sess["metadata"].get("booking_id") == str(bk.id)}
    assert len(sessions) == 1
    del before


# ---------------------------------------------------------------------------------------
# gateway failures
# ---------------------------------------------------------------------------------------

def test_stripe_5xx_is_502_booking_stays_pending_and_retry_works(db_url, stripe_on):
    w = World()
    bk = w.book()
    stripe_on.fail_next(500, times=4, path_contains="/checkout/sessions")
    with pytest.raises(PaymentError) as err:
        payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert err.value.status == 502
    assert booking_row(bk.id).status == "pending"
    failed = payment_rows(bk.id)
    assert [p.status for p in failed] == ["failed"] and failed[0].provider_ref is None
    stripe_on.clear_faults()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    # Stripe keeps a 5xx answer under its idempotency key: the retry is a new attempt
    assert view.checkout_url and view.payment_id != failed[0].id
    sessions = [s for s in stripe_on.sessions.values() if s["metadata"].get("booking_id") == str(bk.id)]
    assert len(sessions) == 1  # nothing created by the failed attempt, one live session now


def test_timeout_retry_reuses_the_idempotency_key(sqlite_db, fast_gateway, stripe_on):
    w = World()
    bk = w.book()
    stripe_on.delay_next(1.0, path_contains="/checkout/sessions")  # Stripe creates it, answers too late
    with pytest.raises(PaymentError):
        payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert booking_row(bk.id).status == "pending"
    rows = payment_rows(bk.id)
    assert len(rows) == 1 and rows[0].status == "pending" and rows[0].provider_ref is None
    import time

    time.sleep(0.8)  # the slow request has now been carried out by "Stripe"
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert view.payment_id == rows[0].id
    keys = [r.headers["idempotency-key"] for r in session_creates(stripe_on)
            if r.params.get("metadata", {}).get("booking_id") == str(bk.id)]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith(f"checkout-{view.payment_id}-")
    sessions = [s for s in stripe_on.sessions.values() if s["metadata"].get("booking_id") == str(bk.id)]
    assert len(sessions) == 1  # the retry got the session the lost answer carried


def test_declined_is_422_and_next_attempt_is_new(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    stripe_on.fail_next(402, code="card_declined", path_contains="/checkout/sessions")
    with pytest.raises(InvalidInput) as err:
        payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    assert err.value.status == 422 and err.value.field == "method"
    assert booking_row(bk.id).status == "pending"
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    rows = payment_rows(bk.id)
    assert [p.status for p in rows] == ["failed", "pending"] and view.payment_id == rows[1].id


def test_expired_hold_cannot_start_a_payment(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    expire_hold(bk.id)
    with pytest.raises(NotAvailable):
        payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")


@pytest.mark.postgres
def test_paying_for_a_session_seat_waits_for_a_booking_of_that_session_in_flight(pg_db, stripe_on):
    """Starting an online payment may extend the hold, so it takes the lock the session's
    bookings take — the session's counter row (migration 0003) — before it reads the clock:
    a booking that is counting the seats meanwhile is never raced by a hold coming back."""
    import time

    import psycopg

    start = next_day_at(10)
    event, (sess,) = make_event(sessions=[start], capacity=2, price_cents=PRICE)
    customer = make_customer()
    held = bookings.book(actor=actor_for(customer), service_id=event.id, start=start, payment_method="card")
    assert held.status == "pending"
    released = threading.Event()
    release_at: list[float] = []

    def booking_in_flight() -> None:  # holds the counter row as a booking of the session does until COMMIT
        with psycopg.connect(pg_db.replace("postgresql+psycopg://", "postgresql://")) as conn:
            conn.execute("UPDATE event_sessions SET seats_taken = seats_taken WHERE id = %s", (sess.id,))
            released.set()
            time.sleep(1.0)
            release_at.append(time.monotonic())
            conn.commit()

    holder = threading.Thread(target=booking_in_flight)
    holder.start()
    assert released.wait(10)
    view = payments.process(actor=actor_for(customer), booking_id=held.id, method="card")
    done_at = time.monotonic()
    holder.join()
    assert view.status == "pending" and view.checkout_url
    assert done_at >= release_at[0]  # it waited for the booking's COMMIT


# ---------------------------------------------------------------------------------------
# webhooks
# ---------------------------------------------------------------------------------------

def test_bad_signature_is_rejected(sqlite_db, stripe_on):
    payload, header = stripe_on.event("checkout.session.completed", {"id": "cs_x", "metadata": {}})
    for sig in (None, "", "t=1,v1=abc", header.replace("v1=", "v1=00"),
                stripe_on.event("checkout.session.completed", {"id": "cs_x"}, secret="whsec_other")[1]):
        with pytest.raises(stripe_webhooks.WebhookRejected) as err:
            stripe_webhooks.handle_stripe_webhook(payload=payload.encode(), signature=sig)
        assert err.value.status == 400
    old = stripe_gateway.sign_webhook(payload, stripe_on.webhook_secret, timestamp=1_000_000)
    with pytest.raises(stripe_webhooks.WebhookRejected):
        stripe_webhooks.handle_stripe_webhook(payload=payload.encode(), signature=old)
    with db.read_session() as s:
        assert s.exec(select(ProcessedWebhookEvent)).all() == []


def test_replayed_event_has_no_second_effect(db_url, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    sid = payment_rows(bk.id)[0].provider_ref
    session = stripe_on.complete_session(sid)
    payload, header = stripe_on.event("checkout.session.completed", session, event_id="evt_replay_1")
    first = stripe_webhooks.handle_stripe_webhook(payload=payload.encode(), signature=header)
    second = stripe_webhooks.handle_stripe_webhook(payload=payload.encode(), signature=header)
    assert (first.outcome, second.outcome) == ("processed", "replayed")
    assert booking_row(bk.id).version == booking_row(bk.id).version
    with db.read_session() as s:
        assert len(s.exec(select(ProcessedWebhookEvent).where(
            ProcessedWebhookEvent.event_id == "evt_replay_1")).all()) == 1
    assert payment_records.get_payment_by_id(view.payment_id).status == "succeeded"


def test_out_of_order_events_are_harmless(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    sid = payment_rows(bk.id)[0].provider_ref
    session = stripe_on.complete_session(sid)
    pi = session["payment_intent"]
    # a failed first card attempt arrives late, after the success: ignored
    deliver(stripe_on, "checkout.session.completed", session)
    assert deliver(stripe_on, "payment_intent.payment_failed",
                   {"id": pi, "object": "payment_intent", "metadata": session["metadata"],
                    "last_payment_error": {"code": "card_declined"}}).outcome == "ignored"
    # expired after completed: ignored, the booking stays confirmed
    assert deliver(stripe_on, "checkout.session.expired", {**session, "status": "expired"}).outcome == "ignored"
    assert booking_row(bk.id).status == "confirmed"
    assert payment_rows(bk.id)[0].status == "succeeded"
    # an unknown type is acknowledged and recorded
    assert deliver(stripe_on, "customer.created", {"id": "cus_1"}).outcome == "ignored"


def test_failed_card_attempt_keeps_the_session_and_expiry_releases(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    p = payment_rows(bk.id)[0]
    deliver(stripe_on, "payment_intent.payment_failed",
            {"id": "pi_attempt", "object": "payment_intent", "metadata": {"payment_id": str(p.id)},
             "last_payment_error": {"message": "Your card was declined."}})
    p = payment_rows(bk.id)[0]
    assert p.status == "requires_action" and "declined" in (p.last_error or "")
    assert booking_row(bk.id).status == "pending"  # the customer may try another card
    deliver(stripe_on, "checkout.session.expired", {**stripe_on.sessions[p.provider_ref], "status": "expired"})
    assert payment_rows(bk.id)[0].status == "cancelled"
    released = booking_row(bk.id)
    assert released.status == "cancelled" and released.cancel_reason == "payment_expired"


def test_late_payment_after_hold_expired_and_seat_resold_is_refunded(db_url, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    # the hold runs out and the expiry job releases it
    expire_hold(bk.id)
    assert bookings.release_expired_holds() >= 1
    # someone else takes the seat
    other = make_customer()
    resold = w.book(other, method="on_site")
    assert resold.status == "confirmed"
    # … and then the first customer's payment lands
    assert pay(stripe_on, view).outcome == "processed"
    assert booking_row(bk.id).status == "cancelled"
    assert booking_row(resold.id).status == "confirmed"  # never an overbooking
    p = payment_records.get_payment_by_id(view.payment_id)
    assert p.status == "refunded" and p.refunded_cents == PRICE
    assert [(r.reason, r.status, r.amount_cents) for r in p.refunds] == [("unavailable", "succeeded", PRICE)]
    refund_calls = [r for r in stripe_on.calls("POST", "/v1/refunds")
                    if r.params.get("metadata", {}).get("payment_id") == str(view.payment_id)]
    assert len(refund_calls) == 1 and refund_calls[0].params["amount"] == str(PRICE)
    with db.read_session() as s:
        msgs = s.exec(select(Notification).where(
            Notification.template.in_([stripe_webhooks.UNAVAILABLE_TEMPLATE, "payment_refunded"]),
            Notification.booking_id == bk.id)).all()
    assert len(msgs) == 1 and msgs[0].to == w.customer.email  # the customer is told, once


def test_concurrent_duplicate_deliveries_have_one_effect(pg_db, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    bookings.cancel(actor=w.customer_actor, booking_id=bk.id)  # paid after cancelling: refund
    session = stripe_on.complete_session(payment_rows(bk.id)[0].provider_ref)
    payload, header = stripe_on.event("checkout.session.completed", session, event_id="evt_dup")
    outcomes, errors = run_together(4, lambda i: stripe_webhooks.handle_stripe_webhook(
        payload=payload.encode(), signature=header).outcome)
    assert not errors, errors
    assert sorted(outcomes) == ["processed", "replayed", "replayed", "replayed"]
    p = payment_records.get_payment_by_id(view.payment_id)
    assert p.status == "refunded" and len(p.refunds) == 1
    assert stripe_on.payment_intent(session["payment_intent"])["amount_refunded"] == PRICE


def test_late_payment_with_seat_still_free_confirms(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    expire_hold(bk.id)
    bookings.release_expired_holds()
    pay(stripe_on, view)
    assert booking_row(bk.id).status == "confirmed"
    assert payment_records.get_payment_by_id(view.payment_id).refunds == ()


def test_second_payment_for_a_paid_booking_is_refunded(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    card = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    card_session = payment_rows(bk.id)[0].provider_ref
    # the customer switched to PayPal but had the card page still open and paid both
    paypal = payments.process(actor=w.customer_actor, booking_id=bk.id, method="paypal")
    stripe_on.sessions[card_session]["status"] = "open"  # the expiry raced with the payment
    pay(stripe_on, paypal)
    session = stripe_on.complete_session(card_session)
    deliver(stripe_on, "checkout.session.completed", session)
    assert payment_records.get_payment_by_id(paypal.payment_id).status == "succeeded"
    dup = payment_records.get_payment_by_id(card.payment_id)
    assert dup.status == "refunded" and dup.refunds[0].reason == "duplicate"
    assert payments.get_payment(actor=w.customer_actor, booking_id=bk.id).payment_id == paypal.payment_id


def test_refund_made_in_the_dashboard_is_recorded(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    pay(stripe_on, view)
    pi = payment_rows(bk.id)[0].payment_intent_ref
    stripe_on.payment_intents[pi]["amount_refunded"] = 1000
    deliver(stripe_on, "charge.refunded", stripe_on.charge_for(pi))
    p = payment_records.get_payment_by_id(view.payment_id)
    assert p.status == "partially_refunded" and p.refunded_cents == 1000
    assert [(r.reason, r.amount_cents) for r in p.refunds] == [("provider", 1000)]


# ---------------------------------------------------------------------------------------
# refunds
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("percent, expected", [(100, PRICE), (50, PRICE // 2), (0, 0)])
def test_cancellation_refund_follows_policy(sqlite_db, stripe_on, percent, expected):
    w = World(refund_percent=percent)
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    pay(stripe_on, view)
    cancelled = bookings.cancel(actor=w.customer_actor, booking_id=bk.id)
    assert cancelled.refund_due_cents == expected
    made = refunds.refund_for_cancellation(booking_id=bk.id)
    assert sum(r.amount_cents for r in made) == expected
    assert refunds.refund_for_cancellation(booking_id=bk.id) == []  # once only
    p = payment_records.get_payment_by_id(view.payment_id)
    assert p.refunded_cents == expected
    assert p.status == {PRICE: "refunded", 0: "succeeded"}.get(expected, "partially_refunded")
    calls = [r for r in stripe_on.calls("POST", "/v1/refunds")
             if r.params.get("metadata", {}).get("payment_id") == str(view.payment_id)]
    assert [int(c.params["amount"]) for c in calls] == ([expected] if expected else [])


def test_provider_cancellation_refunds_in_full_on_postgres(pg_db, stripe_on):
    w = World(refund_percent=0)
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    pay(stripe_on, view)
    bookings.cancel(actor=actor_for(w.provider), booking_id=bk.id)
    refunds.refund_for_cancellation(booking_id=bk.id)
    assert payment_records.get_payment_by_id(view.payment_id).status == "refunded"


def test_on_site_refund_is_recorded_without_stripe(sqlite_db, stripe_on):
    w = World(refund_percent=50)
    bk = w.book(method="on_site")
    payments.process(actor=w.customer_actor, booking_id=bk.id, method="on_site")
    payments.mark_paid(actor=actor_for(w.provider), booking_id=bk.id)
    n_calls = len(stripe_on.calls("POST", "/v1/refunds"))
    bookings.cancel(actor=w.customer_actor, booking_id=bk.id)
    made = refunds.refund_for_cancellation(booking_id=bk.id)
    assert [(r.amount_cents, r.status) for r in made] == [(PRICE // 2, "succeeded")]
    assert len(stripe_on.calls("POST", "/v1/refunds")) == n_calls
    assert payments.get_payment(actor=w.customer_actor, booking_id=bk.id).status == "partially_refunded"


def test_cancelling_an_unpaid_booking_ends_its_session(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    sid = payment_rows(bk.id)[0].provider_ref
    bookings.cancel(actor=w.customer_actor, booking_id=bk.id)
    assert refunds.refund_for_cancellation(booking_id=bk.id) == []
    assert stripe_on.sessions[sid]["status"] == "expired"
    assert payment_rows(bk.id)[0].status == "cancelled"
    # paid anyway (the page was open): refunded, never confirmed
    stripe_on.sessions[sid]["status"] = "open"
    session = stripe_on.complete_session(sid)
    deliver(stripe_on, "checkout.session.completed", session)
    assert booking_row(bk.id).status == "cancelled"
    assert payment_rows(bk.id)[0].status == "refunded"


def test_manual_refund_by_provider_and_admin(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    with pytest.raises(Conflict):
        refunds.refund(actor=actor_for(w.provider), booking_id=bk.id)  # nothing paid yet
    pay(stripe_on, view)
    with pytest.raises(Forbidden):
        refunds.refund(actor=w.customer_actor, booking_id=bk.id)
    with pytest.raises(NotFound):
        refunds.refund(actor=actor_for(make_provider()), booking_id=bk.id)
    for bad in (0, -5, PRICE + 1, "100", 1.5, True):
        with pytest.raises(InvalidInput):
            refunds.refund(actor=actor_for(w.provider), booking_id=bk.id, amount_cents=bad)
    part = refunds.refund(actor=actor_for(w.provider), booking_id=bk.id, amount_cents=1000, note="late start")
    assert part.status == "partially_refunded" and part.refunded_cents == 1000
    rest = refunds.refund(actor=actor_for(make_admin()), booking_id=bk.id)
    assert rest.status == "refunded" and rest.refunded_cents == PRICE
    with pytest.raises(Conflict):
        refunds.refund(actor=actor_for(w.provider), booking_id=bk.id, amount_cents=1)


def test_refund_while_stripe_is_down_is_retried_by_the_sweep(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    pay(stripe_on, view)
    stripe_on.fail_next(500, times=4, path_contains="/v1/refunds")
    out = refunds.refund(actor=actor_for(w.provider), booking_id=bk.id)
    assert out.status == "succeeded" and out.refunds[0].status == "pending"  # queued, not lost
    stripe_on.clear_faults()
    assert refunds.process_pending_refunds() == 0  # not due yet (backoff)
    with db.unit_of_work() as s:
        for r in s.exec(select(Refund)).all():
            r.claimed_until = None
            s.add(r)
    assert refunds.process_pending_refunds() == 1
    p = payment_records.get_payment_by_id(view.payment_id)
    assert p.status == "refunded" and p.refunds[0].status == "succeeded"
    pi = payment_rows(bk.id)[0].payment_intent_ref
    assert stripe_on.payment_intent(pi)["amount_refunded"] == PRICE  # refunded exactly once


def test_sweep_refunds_cancellations_nobody_refunded(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    pay(stripe_on, view)
    bookings.cancel(actor=w.customer_actor, booking_id=bk.id)  # no refund call after it
    assert refunds.process_pending_refunds() >= 0
    assert payment_records.get_payment_by_id(view.payment_id).status == "refunded"


# ---------------------------------------------------------------------------------------
# who may do what
# ---------------------------------------------------------------------------------------

def test_only_the_owner_pays_and_strangers_see_nothing(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    stranger = actor_for(make_customer())
    with pytest.raises(NotFound):
        payments.process(actor=stranger, booking_id=bk.id, method="card")
    with pytest.raises(NotFound):
        payments.process(actor=actor_for(w.provider), booking_id=bk.id, method="card")
    with pytest.raises(NotFound):
        payments.process(actor=Actor.guest(), booking_id=bk.id, method="on_site")
    payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    with pytest.raises(NotFound):
        payments.get_payment(actor=stranger, booking_id=bk.id)
    with pytest.raises(NotFound):
        payments.get_payment(actor=actor_for(make_provider()), booking_id=bk.id)
    assert payments.get_payment(actor=actor_for(w.provider), booking_id=bk.id).amount_cents == PRICE
    assert payments.get_payment(actor=actor_for(make_admin()), booking_id=bk.id).amount_cents == PRICE
    with pytest.raises(NotFound):
        payments.get_payment(actor=w.customer_actor, booking_id=10**6)


def test_paid_amount_differing_from_the_booking_is_refunded(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    sid = payment_rows(bk.id)[0].provider_ref
    session = stripe_on.complete_session(sid)
    deliver(stripe_on, "checkout.session.completed", {**session, "amount_total": 1})
    assert booking_row(bk.id).status == "pending"
    assert payment_records.get_payment_by_id(view.payment_id).status == "refunded"


def test_refund_whose_answer_was_lost_is_not_made_twice(sqlite_db, fast_gateway, stripe_on):
    w = World()
    bk = w.book()
    view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
    pay(stripe_on, view)
    stripe_on.delay_next(1.0, path_contains="/v1/refunds")  # Stripe refunds, the answer comes too late
    out = refunds.refund(actor=actor_for(w.provider), booking_id=bk.id)
    assert out.refunds[0].status == "pending"
    import time

    time.sleep(0.8)
    with db.unit_of_work() as s:
        for r in s.exec(select(Refund)).all():
            r.claimed_until = None
            s.add(r)
    assert refunds.process_pending_refunds() == 1
    assert payment_records.get_payment_by_id(view.payment_id).status == "refunded"
    pi = payment_rows(bk.id)[0].payment_intent_ref
    assert stripe_on.payment_intent(pi)["amount_refunded"] == PRICE
    assert len(stripe_on.calls("POST", "/v1/refunds")) == 1  # found by its metadata, not sent again


def test_in_memory_fake_gateway_drives_the_same_flow(sqlite_db, monkeypatch):
    from booking_app.config import reset_settings_cache

    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_fake")
    reset_settings_cache()
    fake = stripe_gateway.FakeGateway(webhook_secret="whsec_fake")
    stripe_gateway.set_gateway(fake)
    try:
        w = World()
        bk = w.book()
        fake.fail_with(stripe_gateway.GatewayError("down", kind="network"))
        with pytest.raises(PaymentError):
            payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
        view = payments.process(actor=w.customer_actor, booking_id=bk.id, method="card")
        assert view.checkout_url and len(fake.sessions) == 1
        session = fake.complete(payment_rows(bk.id)[0].provider_ref)
        import json

        payload = json.dumps({"id": "evt_fake_1", "type": "checkout.session.completed", "created": 1,
                              "data": {"object": session}})
        result = stripe_webhooks.handle_stripe_webhook(payload=payload.encode(),
                                                signature=stripe_gateway.sign_webhook(payload, "whsec_fake"))
        assert result.outcome == "processed" and booking_row(bk.id).status == "confirmed"
        refunded = refunds.refund(actor=actor_for(w.provider), booking_id=bk.id, amount_cents=500)
        assert refunded.status == "partially_refunded" and fake.refunds[0]["amount"] == 500
    finally:
        stripe_gateway.set_gateway(None)


# ---------------------------------------------------------------------------------------
# the refund shown before a cancel is the refund made (one rule: refunds.refund_due)
# ---------------------------------------------------------------------------------------

def _refunded_for_cancellation(booking_id: int) -> int:
    with db.read_session() as s:
        rows = s.exec(select(Refund).join(Payment, Payment.id == Refund.payment_id).where(
            Payment.booking_id == booking_id, Refund.reason == "cancellation")).all()
        return sum(r.amount_cents for r in rows)


@pytest.mark.parametrize("who, percent, partly_refunded", [
    ("customer", 50, 0),  # within the cut-off: the policy's share
    ("customer", 50, 700),  # a manual refund was made first: the share of what is left
    ("provider", 0, 700),  # managers refund in full what is left, whatever the policy
    ("admin", 30, 0),
])
def test_cancellation_quote_is_the_refund_made(db_url, stripe_on, who, percent, partly_refunded):
    w = World(refund_percent=percent)
    bk = w.book()
    pay(stripe_on, payments.process(actor=w.customer_actor, booking_id=bk.id, method="card"))
    if partly_refunded:
        refunds.refund(actor=actor_for(w.provider), booking_id=bk.id, amount_cents=partly_refunded)
    actor = {"customer": w.customer_actor, "provider": actor_for(w.provider), "admin": actor_for(make_admin())}[who]
    quote = payments.cancellation_quote(actor=actor, booking_id=bk.id)
    left = PRICE - partly_refunded
    expected = left if who != "customer" else left * percent // 100
    assert (quote.amount_cents, quote.currency, quote.paid_cents) == (expected, "EUR", left)
    assert quote.may_cancel and not quote.cutoff_passed and quote.by_manager == (who != "customer")
    view = payments.cancel_and_refund(actor=actor, booking_id=bk.id)
    assert view.refund_due_cents == quote.amount_cents == _refunded_for_cancellation(bk.id)


def test_cancellation_quote_after_the_cutoff_is_nothing_and_cancel_is_refused(sqlite_db, stripe_on):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, refund_percent=100, cancel_cutoff_hours=72)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="card")
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk.id, method="card"))
    quote = payments.cancellation_quote(actor=actor_for(customer), booking_id=bk.id)
    assert quote.cutoff_passed and not quote.may_cancel and quote.amount_cents == 0 and quote.paid_cents == PRICE
    assert quote.cutoff_at == bk.start - dt.timedelta(hours=72) and quote.cutoff_hours == 72
    with pytest.raises(Forbidden):
        payments.cancel_and_refund(actor=actor_for(customer), booking_id=bk.id)
    assert _refunded_for_cancellation(bk.id) == 0
    # its provider may still cancel, refunding everything: the quote says so first
    manager_quote = payments.cancellation_quote(actor=actor_for(provider), booking_id=bk.id)
    assert manager_quote.may_cancel and manager_quote.amount_cents == PRICE
    payments.cancel_and_refund(actor=actor_for(provider), booking_id=bk.id)
    assert _refunded_for_cancellation(bk.id) == PRICE


def test_cancellation_quote_of_an_unpaid_on_site_booking_is_zero(sqlite_db, stripe_on):
    w = World(refund_percent=100)
    bk = w.book(method="on_site")
    payments.process(actor=w.customer_actor, booking_id=bk.id, method="on_site")
    quote = payments.cancellation_quote(actor=w.customer_actor, booking_id=bk.id)
    assert (quote.amount_cents, quote.paid_cents, quote.may_cancel) == (0, 0, True)
    view = payments.cancel_and_refund(actor=w.customer_actor, booking_id=bk.id)
    assert view.refund_due_cents == 0 and _refunded_for_cancellation(bk.id) == 0


def test_cancellation_quote_needs_access_to_the_booking(sqlite_db, stripe_on):
    w = World()
    bk = w.book()
    with pytest.raises(NotFound):
        payments.cancellation_quote(actor=actor_for(make_customer()), booking_id=bk.id)
    with pytest.raises(NotFound):
        payments.cancellation_quote(actor=actor_for(make_provider()), booking_id=bk.id)


# ---------------------------------------------------------------------------------------
# book then pay: one call; a payment that does not start is reported, never swallowed
# ---------------------------------------------------------------------------------------

def test_book_and_pay_online_returns_the_checkout(sqlite_db, stripe_on):
    w = World()
    result = payments.book_and_pay(actor=w.customer_actor, service_id=w.bookable.id, start=w.start,
                                   payment_method="card", idempotency_key="k-online")
    assert result.booking.status == "pending" and result.payment_error is None and result.manage_token == ""
    assert result.checkout_url and result.payment is not None and result.payment.method == "card"
    again = payments.book_and_pay(actor=w.customer_actor, service_id=w.bookable.id, start=w.start,
                                  payment_method="card", idempotency_key="k-online")
    assert again.booking.id == result.booking.id and again.payment.payment_id == result.payment.payment_id


def test_book_and_pay_on_site_records_the_payment(sqlite_db, stripe_on):
    w = World()
    result = payments.book_and_pay(actor=w.customer_actor, service_id=w.bookable.id, start=w.start,
                                   payment_method="on_site")
    assert result.booking.status == "confirmed" and result.payment_error is None and result.checkout_url is None
    assert [(p.method, p.status) for p in payment_rows(result.booking.id)] == [("on_site", "pending")]


def test_book_and_pay_free_booking_needs_no_payment(sqlite_db, stripe_on):
    w = World(price=0)
    result = payments.book_and_pay(actor=w.customer_actor, service_id=w.bookable.id, start=w.start,
                                   payment_method="on_site")
    assert result.booking.status == "confirmed" and result.payment is None and result.payment_error is None
    assert payment_rows(result.booking.id) == []


def test_book_and_pay_reports_a_gateway_failure_and_keeps_the_booking(sqlite_db, stripe_on):
    w = World()
    stripe_on.fail_next(500, times=4, path_contains="/checkout/sessions")
    result = payments.book_and_pay(actor=w.customer_actor, service_id=w.bookable.id, start=w.start,
                                   payment_method="card")
    assert result.booking.status == "pending" and result.payment is None and result.checkout_url is None
    assert isinstance(result.payment_error, PaymentError)


def test_book_and_pay_reports_an_on_site_failure(sqlite_db, stripe_on, monkeypatch):
    w = World()

    def refuse(**_kw):
        raise Conflict("This booking can no longer be paid.")

    monkeypatch.setattr(payments, "process", refuse)
    result = payments.book_and_pay(actor=w.customer_actor, service_id=w.bookable.id, start=w.start,
                                   payment_method="on_site")
    assert result.booking.status == "confirmed" and isinstance(result.payment_error, Conflict)


def test_book_and_pay_booking_errors_are_raised(sqlite_db, stripe_on):
    w = World()
    w.book(make_customer())
    with pytest.raises(NotAvailable):
        payments.book_and_pay(actor=w.customer_actor, service_id=w.bookable.id, start=w.start, payment_method="card")


def test_the_cancel_dialog_shows_the_quoted_refund(sqlite_db, stripe_on):
    w = World(refund_percent=50)
    bk = w.book()
    pay(stripe_on, payments.process(actor=w.customer_actor, booking_id=bk.id, method="card"))
    quote = payments.cancellation_quote(actor=w.customer_actor, booking_id=bk.id)
    assert refund_preview_text(quote, bk.start, "en") == "You get €12.50 back."
    payments.cancel_and_refund(actor=w.customer_actor, booking_id=bk.id)
    assert _refunded_for_cancellation(bk.id) == 1250


@pytest.mark.parametrize("locale, expected", [("pt_BR", "pt-BR"), ("pl", "pl"), ("tr", "tr"), ("it", "it"),
                                              ("nl", "nl"), ("de", "de"), ("ar", "auto"), (None, "auto")])
def test_checkout_speaks_the_customers_language(locale, expected):
    """Stripe Checkout opens in the customer's language where Checkout has it (pt_BR as pt-BR)."""
    request = stripe_gateway.CheckoutRequest(
        idempotency_key="k", booking_id=1, payment_id=1, amount_cents=1000, currency="EUR", product_name="Room",
        method_types=("card",), success_url="https://x.example/ok", cancel_url="https://x.example/no",
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc), locale=locale)
    assert stripe_gateway.checkout_params(request)["locale"] == expected
