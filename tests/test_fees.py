"""No-show and late-cancel fees (issue 26, point 3) through the real `stripe` SDK against the
local stub: the card saved at Checkout (setup_future_usage) or in setup mode, the fee charged
off-session (success), a decline (recorded, due), Strong Customer Authentication (the
customer gets a Checkout link through the outbox; paying it settles the fee), and without
Stripe (recorded as due)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import BookingFee, Notification
from booking_app.services import bookings, payments
from booking_app.services.errors import Forbidden
from booking_app.ui.state.booking_common import refund_preview_text
from tests.factories import actor_for, make_bookable, make_customer, make_provider, next_day_at
from tests.test_deposits import _summary
from tests.test_payments import booking_row, deliver, pay, session_creates, stripe_on, stub  # noqa: F401 (fixtures)

PRICE = 4000
FEE = 1500


def _paid_booking(stub, **policy):
    """A booking paid by card at Checkout with the card saved for a fee."""
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, no_show_fee_cents=FEE, **policy)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="card")
    view = payments.process(actor=actor_for(customer), booking_id=bk.id, method="card")
    pay(stub, view)
    return provider, customer, bk


def _no_show(provider, bk):
    return payments.mark_no_show(actor=actor_for(provider), booking_id=bk.id,
                                 now=bk.start + dt.timedelta(minutes=30))


def _fee_rows(booking_id):
    with db.read_session() as s:
        return list(s.exec(select(BookingFee).where(BookingFee.booking_id == booking_id)).all())


def _mails(booking_id):
    with db.read_session() as s:
        return [n for n in s.exec(select(Notification).where(Notification.booking_id == booking_id,
                                                              Notification.channel == "email"))]


def test_card_saved_at_checkout_and_no_show_fee_charged_off_session(db_url, stripe_on):
    provider, customer, bk = _paid_booking(stripe_on)
    create = session_creates(stripe_on)[-1].params
    assert create["payment_intent_data"]["setup_future_usage"] == "off_session"
    assert create["customer"].startswith("cus_") and "customer_email" not in create
    row = booking_row(bk.id)
    assert row.stripe_customer_ref == create["customer"]

    view = _no_show(provider, bk)
    assert view.status == "no_show"
    [fee] = _fee_rows(bk.id)
    assert (fee.kind, fee.amount_cents, fee.status, fee.currency) == ("no_show", FEE, "charged", "EUR")
    [charge] = stripe_on.calls("POST", "/v1/payment_intents")
    assert charge.params["off_session"] == "true" and charge.params["confirm"] == "true"
    assert charge.params["amount"] == str(FEE) and charge.params["customer"] == row.stripe_customer_ref
    assert charge.params["metadata"]["fee_id"] == str(fee.id)
    assert fee.payment_intent_ref == stripe_on.payment_intents[fee.payment_intent_ref]["id"]
    assert booking_row(bk.id).fees_cents == FEE
    s = _summary(bk.id)
    assert (s.fees_cents, s.fees_paid_cents, s.fees_due_cents) == (FEE, FEE, 0)
    assert "fee_charged" in [m.template for m in _mails(bk.id)]
    # marking again: nothing more is charged
    with pytest.raises(Exception):
        _no_show(provider, bk)
    assert len(stripe_on.calls("POST", "/v1/payment_intents")) == 1


def test_declined_fee_is_recorded_as_due(sqlite_db, stripe_on):
    provider, customer, bk = _paid_booking(stripe_on)
    stripe_on.off_session_outcome[booking_row(bk.id).stripe_customer_ref] = "card_declined"
    _no_show(provider, bk)
    [fee] = _fee_rows(bk.id)
    assert fee.status == "failed" and "card_declined" in (fee.last_error or "")
    s = _summary(bk.id)
    assert (s.fees_due_cents, s.fees_paid_cents) == (FEE, 0)
    assert "fee_due" in [m.template for m in _mails(bk.id)]


def test_authentication_required_sends_a_link_that_settles_the_fee(db_url, stripe_on):
    provider, customer, bk = _paid_booking(stripe_on)
    stripe_on.off_session_outcome[booking_row(bk.id).stripe_customer_ref] = "authentication_required"
    _no_show(provider, bk)
    [fee] = _fee_rows(bk.id)
    assert fee.status == "requires_action" and fee.checkout_url and fee.checkout_ref
    link = stripe_on.sessions[fee.checkout_ref]
    assert link["amount_total"] == FEE and link["metadata"]["fee_id"] == str(fee.id)
    [mail] = [m for m in _mails(bk.id) if m.template == "fee_action_required"]
    assert mail.context["fee_url"] == fee.checkout_url
    assert _summary(bk.id).fees_due_cents == FEE

    # the customer authenticates and pays on the hosted page
    result = deliver(stripe_on, "checkout.session.completed", stripe_on.complete_session(fee.checkout_ref))
    assert result.outcome == "processed"
    [fee] = _fee_rows(bk.id)
    assert fee.status == "charged" and fee.checkout_url is None
    assert _summary(bk.id).fees_due_cents == 0
    assert booking_row(bk.id).status == "no_show"  # the booking itself is untouched


def test_without_stripe_the_fee_is_recorded_as_due(sqlite_db):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, no_show_fee_cents=FEE)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="on_site")
    _no_show(provider, bk)
    [fee] = _fee_rows(bk.id)
    assert fee.status == "due" and fee.attempts == 1
    assert _summary(bk.id).fees_due_cents == FEE


def test_on_site_booking_saves_the_card_in_setup_mode(sqlite_db, stripe_on):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, no_show_fee_cents=FEE)
    result = payments.book_and_pay(actor=actor_for(customer), service_id=b.id, start=next_day_at(10),
                                   payment_method="on_site")
    assert result.booking.status == "confirmed" and result.card_setup_url
    assert result.checkout_url == result.card_setup_url
    setup = session_creates(stripe_on)[-1].params
    assert setup["mode"] == "setup" and setup["customer"].startswith("cus_") and "line_items" not in setup
    session_id = next(k for k, v in stripe_on.sessions.items() if v["mode"] == "setup")
    assert deliver(stripe_on, "checkout.session.completed", stripe_on.complete_session(session_id)).outcome == "processed"
    _no_show(provider, result.booking)
    [fee] = _fee_rows(result.booking.id)
    assert fee.status == "charged"


def test_no_saved_card_leaves_the_fee_due(sqlite_db, stripe_on):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, no_show_fee_cents=FEE)
    result = payments.book_and_pay(actor=actor_for(customer), service_id=b.id, start=next_day_at(10),
                                   payment_method="on_site")  # the customer never completes the setup page
    _no_show(provider, result.booking)
    [fee] = _fee_rows(result.booking.id)
    assert fee.status == "due" and fee.last_error == "no saved card"
    assert stripe_on.calls("POST", "/v1/payment_intents") == []


def test_a_bookable_without_fees_saves_no_card_and_charges_nothing(sqlite_db, stripe_on):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="card")
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk.id, method="card"))
    create = session_creates(stripe_on)[-1].params
    assert "setup_future_usage" not in create["payment_intent_data"] and "customer" not in create
    _no_show(provider, bk)
    assert _fee_rows(bk.id) == [] and booking_row(bk.id).fees_cents == 0


def test_late_cancellation_costs_the_fee(db_url, stripe_on):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, late_cancel_fee_cents=700, cancel_cutoff_hours=72,
                      refund_percent=50)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="card")
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk.id, method="card"))
    quote = payments.cancellation_quote(actor=actor_for(customer), booking_id=bk.id)
    assert quote.cutoff_passed and quote.may_cancel and quote.late_fee_cents == 700 and quote.amount_cents == 2000
    assert refund_preview_text(quote, bk.start, "en") == (
        "Cancelling now costs the late cancellation fee of €7.00. You get €20.00 back.")
    view = payments.cancel_and_refund(actor=actor_for(customer), booking_id=bk.id)
    assert view.status == "cancelled" and view.refund_due_cents == 2000
    [fee] = _fee_rows(bk.id)
    assert (fee.kind, fee.amount_cents, fee.status) == ("late_cancel", 700, "charged")


def test_without_a_late_cancel_fee_the_cutoff_still_forbids(sqlite_db, stripe_on):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, no_show_fee_cents=FEE, cancel_cutoff_hours=72)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="on_site")
    with pytest.raises(Forbidden):
        payments.cancel_and_refund(actor=actor_for(customer), booking_id=bk.id)
    # the provider may cancel any time, and owes nothing
    payments.cancel_and_refund(actor=actor_for(provider), booking_id=bk.id)
    assert _fee_rows(bk.id) == []


def test_cancellation_before_the_cutoff_costs_nothing(sqlite_db, stripe_on):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, late_cancel_fee_cents=700, cancel_cutoff_hours=1)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10, days=3),
                       payment_method="on_site")
    payments.cancel_and_refund(actor=actor_for(customer), booking_id=bk.id)
    assert _fee_rows(bk.id) == []



def test_fees_in_the_revenue_report_and_the_csv_export(sqlite_db, stripe_on):
    """Hand-computed: a paid 40.00 booking with a 15.00 no-show fee charged, a 7.00 late
    cancellation fee charged, and a declined 15.00 fee (due, not revenue) → fees 22.00."""
    import csv
    import io

    from booking_app.services import booking_questions, reports
    from tests.factories import make_admin

    provider, customer, bk = _paid_booking(stripe_on)
    _no_show(provider, bk)
    b2 = make_bookable(provider, price_cents=PRICE, late_cancel_fee_cents=700, cancel_cutoff_hours=72)
    bk2 = bookings.book(actor=actor_for(customer), service_id=b2.id, start=next_day_at(11), payment_method="card")
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk2.id, method="card"))
    payments.cancel_and_refund(actor=actor_for(customer), booking_id=bk2.id)
    _, other, bk3 = _paid_booking(stripe_on)
    stripe_on.off_session_outcome[booking_row(bk3.id).stripe_customer_ref] = "card_declined"
    _no_show(_, bk3)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    admin = actor_for(make_admin())
    rep = reports.revenue(actor=admin, date_from=today, date_to=today, group_by="service", tz="UTC")
    by_service = {r["service_id"]: (r["gross_cents"], r["refunds_cents"], r["fees_cents"]) for r in rep.rows}
    assert by_service[bk.service_id] == (PRICE, 0, FEE)
    assert by_service[b2.id] == (PRICE, PRICE, 700)  # refunded in full (refund_percent 100), fee charged
    assert by_service[bk3.service_id] == (PRICE, 0, 0)  # declined: due, not collected
    assert rep.summary["totals"][0]["fees_cents"] == FEE + 700
    rep = reports.revenue(actor=admin, date_from=today, date_to=today, group_by="method", tz="UTC")
    assert [(r["method"], r["fees_cents"]) for r in rep.rows] == [("card", FEE + 700)]
    assert "fees_cents" in reports.to_csv(rep).splitlines()[0]

    text = booking_questions.export_bookings_csv(actor=actor_for(provider), scope="provider")
    rows = list(csv.DictReader(io.StringIO(text)))
    got = {r["reference"]: (r["price_cents"], r["deposit_cents"], r["balance_due_cents"], r["fees_cents"])
           for r in rows}
    assert got[bk.reference] == (str(PRICE), "0", "0", str(FEE))
