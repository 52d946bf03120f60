"""Deposits (issue 26, point 2) through the real `stripe` SDK against the local stub: the
deposit Checkout at booking, the balance Checkout later (and on site), paid / due, refunds
on what was paid, the rounding rule at its edges, and the bookable's policy fields."""
from __future__ import annotations

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Booking, Notification, Payment
from booking_app.services import bookings, catalog, deposits, messages, payments, refunds
from booking_app.services.errors import Conflict, InvalidInput, NotFound
from tests.factories import actor_for, make_bookable, make_customer, make_provider, next_day_at
from tests.test_payments import booking_row, pay, session_creates, stripe_on, stub  # noqa: F401 (fixtures)

PRICE = 5000


def _world(**policy):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, **policy)
    return provider, customer, b


def _book(customer, b, method="card"):
    return bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method=method)


def _summary(booking_id):
    with db.read_session() as s:
        return deposits.money_summary(s, s.get(Booking, booking_id))


# ---------------------------------------------------------------------------------------
# the rule
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("price, percent, fixed, expected", [
    (1225, 10, None, 123),   # 122.5 → 123: half a cent goes up
    (1235, 10, None, 124),   # 123.5 → 124 (banker's rounding would give 124 here and 122 above)
    (5, 50, None, 3),        # 2.5 → 3
    (1, 10, None, 0),        # 0.1 → 0: no deposit, the whole price at once
    (999, 100, None, 999),   # the whole price
    (5000, None, 1500, 1500),
    (1000, None, 1500, 1000),  # a fixed deposit above the price is the price
    (0, 50, None, 0),
    (5000, None, None, 0),
])
def test_deposit_rounding_edges(price, percent, fixed, expected):
    assert deposits.deposit_of(price, deposit_percent=percent, deposit_cents=fixed) == expected


def test_policy_fields_are_validated(sqlite_db):
    provider = make_provider()
    with pytest.raises(InvalidInput) as e:
        make_bookable(provider, price_cents=PRICE, deposit_percent=20, deposit_cents=100)
    assert e.value.field == "deposit_cents"
    for bad in ({"deposit_percent": 0}, {"deposit_percent": 101}, {"deposit_cents": -1}, {"no_show_fee_cents": -5},
                {"late_cancel_fee_cents": "x"}, {"deposit_percent": True}):
        with pytest.raises(InvalidInput):
            make_bookable(provider, price_cents=PRICE, **bad)
    b = make_bookable(provider, price_cents=PRICE, deposit_percent=20, no_show_fee_cents=1500)
    assert (b.deposit_percent, b.deposit_cents, b.no_show_fee_cents, b.late_cancel_fee_cents) == (20, None, 1500, 0)
    # a fixed amount replaces the percent; null clears it
    b = catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, deposit_cents=700)
    assert (b.deposit_percent, b.deposit_cents) == (None, 700)
    b = catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, deposit_cents=None)
    assert (b.deposit_percent, b.deposit_cents) == (None, None)


# ---------------------------------------------------------------------------------------
# deposit + balance through Stripe
# ---------------------------------------------------------------------------------------

def test_deposit_checkout_then_balance_checkout(db_url, stripe_on):
    provider, customer, b = _world(deposit_percent=25)
    bk = _book(customer, b)
    assert (bk.status, bk.price_cents) == ("pending", PRICE)
    row = booking_row(bk.id)
    assert (row.deposit_cents, row.balance_due_cents) == (1250, 3750)

    view = payments.process(actor=actor_for(customer), booking_id=bk.id, method="card")
    assert view.amount_cents == 1250 and view.purpose == "booking"
    item = session_creates(stripe_on)[-1].params["line_items"][0]
    assert item["price_data"]["unit_amount"] == "1250"
    assert pay(stripe_on, view).outcome == "processed"
    row = booking_row(bk.id)
    assert row.status == "confirmed" and row.balance_due_cents == 3750
    s = _summary(bk.id)
    assert (s.paid_cents, s.balance_due_cents, s.due_cents) == (1250, 3750, 3750)

    # the balance: a second Checkout for the rest, reused while open
    bal = payments.pay_balance(actor=actor_for(customer), booking_id=bk.id)
    assert bal.purpose == "balance" and bal.amount_cents == 3750 and bal.checkout_url
    assert payments.pay_balance(actor=actor_for(customer), booking_id=bk.id).payment_id == bal.payment_id
    assert session_creates(stripe_on)[-1].params["line_items"][0]["price_data"]["unit_amount"] == "3750"
    with pytest.raises(NotFound):  # only its customer
        payments.pay_balance(actor=actor_for(make_customer()), booking_id=bk.id)
    assert pay(stripe_on, bal).outcome == "processed"  # not a "duplicate" of the deposit
    row = booking_row(bk.id)
    assert row.balance_due_cents == 0 and row.status == "confirmed"
    s = _summary(bk.id)
    assert (s.paid_cents, s.balance_due_cents, s.due_cents) == (PRICE, 0, 0)
    with db.read_session() as sess:
        pays = sess.exec(select(Payment).where(Payment.booking_id == bk.id).order_by(Payment.id)).all()
        assert [(p.purpose, p.status, p.amount_cents) for p in pays] == [
            ("booking", "succeeded", 1250), ("balance", "succeeded", 3750)]
        receipts = [n for n in sess.exec(select(Notification).where(Notification.booking_id == bk.id,
                                                                      Notification.template == "payment_received"))]
    assert len(receipts) == 2
    first, second = (messages.render_email("payment_received", "en", n.context).text for n in receipts)
    assert "We received your payment of €12.50" in first and "Balance to pay: €37.50." in first
    assert "We received your payment of €37.50" in second and "Balance to pay" not in second
    with pytest.raises(Conflict):
        payments.pay_balance(actor=actor_for(customer), booking_id=bk.id)


def test_balance_paid_on_site(sqlite_db, stripe_on):
    provider, customer, b = _world(deposit_cents=1000)
    bk = _book(customer, b)
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk.id, method="card"))
    view = payments.mark_paid(actor=actor_for(provider), booking_id=bk.id)
    assert (view.purpose, view.method, view.status, view.amount_cents) == ("balance", "on_site", "succeeded", 4000)
    assert booking_row(bk.id).balance_due_cents == 0
    with pytest.raises(Conflict):
        payments.mark_paid(actor=actor_for(provider), booking_id=bk.id)


def test_on_site_booking_pays_the_whole_price(sqlite_db, stripe_on):
    provider, customer, b = _world(deposit_percent=20)
    bk = _book(customer, b, method="on_site")
    row = booking_row(bk.id)
    assert (row.deposit_cents, row.balance_due_cents) == (0, 0)
    view = payments.process(actor=actor_for(customer), booking_id=bk.id, method="on_site")
    assert view.amount_cents == PRICE


def test_plain_booking_has_no_deposit(sqlite_db, stripe_on):
    provider, customer, b = _world()
    bk = _book(customer, b)
    assert (booking_row(bk.id).deposit_cents, booking_row(bk.id).balance_due_cents) == (0, 0)
    assert payments.process(actor=actor_for(customer), booking_id=bk.id, method="card").amount_cents == PRICE


@pytest.mark.parametrize("who, percent, expected", [("customer", 50, 625), ("customer", 100, 1250),
                                                    ("provider", 0, 1250)])
def test_refund_follows_the_policy_on_what_was_paid(db_url, stripe_on, who, percent, expected):
    provider, customer, b = _world(deposit_percent=25, refund_percent=percent)
    bk = _book(customer, b)
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk.id, method="card"))
    actor = actor_for(customer if who == "customer" else provider)
    quote = payments.cancellation_quote(actor=actor, booking_id=bk.id)
    assert quote.paid_cents == 1250 and quote.amount_cents == expected
    view = payments.cancel_and_refund(actor=actor, booking_id=bk.id)
    assert view.refund_due_cents == expected
    refunded = [int(r.params["amount"]) for r in stripe_on.calls("POST", "/v1/refunds")
                if r.params.get("metadata", {}).get("booking_id") == str(bk.id)]
    assert refunded == [expected]
    assert _summary(bk.id).balance_due_cents == 0  # a cancelled booking owes no balance


def test_refund_after_the_balance_covers_both_payments(sqlite_db, stripe_on):
    provider, customer, b = _world(deposit_percent=25)
    bk = _book(customer, b)
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk.id, method="card"))
    pay(stripe_on, payments.pay_balance(actor=actor_for(customer), booking_id=bk.id))
    payments.cancel_and_refund(actor=actor_for(provider), booking_id=bk.id)
    refunded = sorted(int(r.params["amount"]) for r in stripe_on.calls("POST", "/v1/refunds")
                      if r.params.get("metadata", {}).get("booking_id") == str(bk.id))
    assert refunded == [1250, 3750]
    with db.read_session() as s:
        assert refunds.paid_cents(s, bk.id) == 0


def test_review_note_and_booking_page_lines():
    """The review step's note (deposit now, card saved for a fee) and the booking page's paid /
    due lines are the services' figures, formatted."""
    from booking_app.services.fees import FeeView
    from booking_app.ui.components.payment_summary import consent_text, money_lines

    svc = {"price_cents": 1225, "currency": "EUR", "deposit_percent": 10, "deposit_cents": None,
           "no_show_fee_cents": 500, "late_cancel_fee_cents": 0}
    text = consent_text(svc, "en", online=True)
    assert "deposit of €1.23 now; the rest, €11.02, later" in text  # 122.5 → 123: half-up
    assert "your card is saved to charge a no-show fee of €5.00" in text
    assert "deposit" not in consent_text(svc, "en", online=False)  # paying on site: the whole price
    assert consent_text(svc, "en", online=False, saves_card=False) == ""  # no Stripe: no card is saved
    summary = deposits.MoneySummary(price_cents=5000, deposit_cents=1250, paid_cents=1250, balance_due_cents=3750,
                                    fees_cents=900, fees_paid_cents=0, fees_due_cents=900, currency="EUR")
    import datetime as dt
    fee = FeeView(id=1, booking_id=1, kind="no_show", amount_cents=900, currency="EUR", status="failed",
                  checkout_url=None, last_error="card_declined", created_at=dt.datetime.now(dt.timezone.utc))
    lines = money_lines(payments.BookingMoney(summary=summary, fees=[fee]), "en")
    assert (lines["paid"], lines["due"], lines["balance"]) == ("Paid: €12.50", "Due: €46.50", "Balance to pay: €37.50")
    assert lines["fees"][0]["text"] == "No-show fee: €9.00, due (the card was declined)"
    assert lines["can_pay_balance"] is True


def test_the_reminder_says_the_balance_due_when_it_is_sent(sqlite_db, stripe_on):
    from booking_app.models import utcnow
    from booking_app.services import reminders

    provider, customer, b = _world(deposit_percent=25)
    bk = _book(customer, b)
    pay(stripe_on, payments.process(actor=actor_for(customer), booking_id=bk.id, method="card"))

    def reminder_text() -> str:
        with db.read_session() as s:
            rows = list(s.exec(select(Notification).where(Notification.booking_id == bk.id,
                                                          Notification.template == reminders.REMINDER)))
        assert rows
        assert set(reminders.reminder_skips(rows, utcnow()).values()) == {None}
        return messages.render_email(reminders.REMINDER, "en", rows[0].context).text

    assert "Balance to pay: €37.50. You can pay it online from your booking page." in reminder_text()
    pay(stripe_on, payments.pay_balance(actor=actor_for(customer), booking_id=bk.id))
    assert "Balance to pay" not in reminder_text()
