"""Paying a recurring series online (services/series_payments.py) through the real `stripe`
SDK against the local stub, on SQLite and PostgreSQL: one Checkout for the series, one
payment row per occurrence; paid → all confirmed; one occurrence cancelled → only its share
refunded by the policy; abandoned Checkout → all released; a deposit bookable's series pays
each occurrence's deposit."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Booking, Notification
from booking_app.services import payments, series, series_payments
from booking_app.services.errors import InvalidInput, PaymentError
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_customer, make_provider, next_day_at
from tests.test_payments import deliver, payment_rows, session_creates, stripe_on, stub  # noqa: F401 (fixtures)

PRICE = 4000


def weekly(count: int) -> dict:
    return {"frequency": "weekly", "interval": 1, "count": count, "mode": "all_or_nothing"}


def _book(customer, room, count=3, method="card", **kw):
    return series_payments.book_series_and_pay(actor=actor_for(customer), service_id=room.id, start=next_day_at(10),
                                               recurrence_rule=weekly(count), payment_method=method, **kw)


def _bookings(series_id: int) -> list[Booking]:
    with db.read_session() as s:
        return list(s.exec(select(Booking).where(Booking.series_id == series_id).order_by(Booking.start_at)).all())


_payments = payment_rows  # (the name tests/test_series_checkout_renewal.py imports)


def _session_of(series_id: int) -> str:
    refs = {p.provider_ref for bk in _bookings(series_id) for p in payment_rows(bk.id)}
    assert len(refs) == 1
    return refs.pop()


def test_series_paid_by_card_confirms_all_with_one_checkout(db_url, stripe_on):
    provider, customer = make_provider(), make_customer()
    room = make_bookable(provider, weekly=ALL_WEEK, price_cents=PRICE)
    before = len(session_creates(stripe_on))
    done = _book(customer, room)
    assert done.checkout_url.startswith("https://checkout.stripe.com/")
    assert len(session_creates(stripe_on)) == before + 1  # one Checkout for the series
    params = session_creates(stripe_on)[-1].params
    assert params["line_items"][0]["price_data"]["unit_amount"] == str(3 * PRICE)
    assert params["metadata"]["series_id"] == str(done.booked.series_id)
    rows = _bookings(done.booked.series_id)
    assert [bk.status for bk in rows] == ["pending"] * 3
    assert all(bk.hold_expires_at is not None for bk in rows)
    assert [[p.amount_cents for p in payment_rows(bk.id)] for bk in rows] == [[PRICE]] * 3  # one payment each
    with db.read_session() as s:  # no confirmation before the payment
        assert not s.exec(select(Notification).where(Notification.template == "series_confirmed",
                                                     Notification.booking_id.in_([bk.id for bk in rows]))).all()

    session = stripe_on.complete_session(_session_of(done.booked.series_id))
    assert deliver(stripe_on, "checkout.session.completed", session).outcome == "processed"
    rows = _bookings(done.booked.series_id)
    assert [bk.status for bk in rows] == ["confirmed"] * 3 and all(bk.hold_expires_at is None for bk in rows)
    assert all(payment_rows(bk.id)[0].status == "succeeded" for bk in rows)
    with db.read_session() as s:
        templates = [n.template for n in s.exec(select(Notification).where(
            Notification.booking_id.in_([bk.id for bk in rows]))).all()]
    assert templates.count("series_confirmed") == 1

    # cancel the second date: only its share comes back, by the policy (100 % here)
    payments.cancel_and_refund(actor=actor_for(customer), booking_id=rows[1].id)
    assert payment_rows(rows[1].id)[0].refunded_cents == PRICE and payment_rows(rows[1].id)[0].status == "refunded"
    assert [payment_rows(bk.id)[0].refunded_cents for bk in (rows[0], rows[2])] == [0, 0]
    pi = payment_rows(rows[0].id)[0].payment_intent_ref
    assert stripe_on.payment_intent(pi)["amount_refunded"] == PRICE
    # Stripe's charge.refunded reports the intent's total: each row keeps its own figure
    assert deliver(stripe_on, "charge.refunded", stripe_on.charge_for(pi)).outcome == "processed"
    assert [payment_rows(bk.id)[0].refunded_cents for bk in rows] == [0, PRICE, 0]


def test_cancelling_one_date_refunds_its_share_by_the_policy(db_url, stripe_on):
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE, refund_percent=50)
    done = _book(customer, room, count=2)
    deliver(stripe_on, "checkout.session.completed", stripe_on.complete_session(_session_of(done.booked.series_id)))
    rows = _bookings(done.booked.series_id)
    view = payments.cancel_and_refund(actor=actor_for(customer), booking_id=rows[0].id)
    assert view.refund_due_cents == PRICE // 2
    assert [payment_rows(bk.id)[0].refunded_cents for bk in rows] == [PRICE // 2, 0]
    assert _bookings(done.booked.series_id)[1].status == "confirmed"


def test_abandoned_checkout_releases_every_date(db_url, stripe_on):
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE)
    done = _book(customer, room)
    session_id = _session_of(done.booked.series_id)
    expired = dict(stripe_on.sessions[session_id], status="expired")
    assert deliver(stripe_on, "checkout.session.expired", expired).outcome == "processed"
    rows = _bookings(done.booked.series_id)
    assert [bk.status for bk in rows] == ["cancelled"] * 3
    assert all(payment_rows(bk.id)[0].status == "cancelled" for bk in rows)
    # the dates are free again: the same series can be booked on site
    again = series.book_series(actor=actor_for(customer), service_id=room.id, start=next_day_at(10),
                               recurrence_rule=weekly(3), payment_method="on_site")
    assert len(again.bookings) == 3


def test_deposit_bookable_series_pays_each_deposit(sqlite_db, stripe_on):
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE, deposit_percent=25)
    done = _book(customer, room, count=2)
    assert session_creates(stripe_on)[-1].params["line_items"][0]["price_data"]["unit_amount"] == str(2 * PRICE // 4)
    deliver(stripe_on, "checkout.session.completed", stripe_on.complete_session(_session_of(done.booked.series_id)))
    rows = _bookings(done.booked.series_id)
    assert [bk.status for bk in rows] == ["confirmed"] * 2
    assert [bk.balance_due_cents for bk in rows] == [PRICE - PRICE // 4] * 2


def test_on_site_and_unknown_methods_keep_their_rules(sqlite_db, stripe_on):
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE)
    on_site = _book(customer, room, method="on_site")
    assert on_site.checkout_url is None and {b.status for b in on_site.booked.bookings} == {"confirmed"}
    with pytest.raises(InvalidInput):  # the plain series call still asks for pay-on-site
        series.book_series(actor=actor_for(customer), service_id=room.id, start=next_day_at(10) + dt.timedelta(days=1),
                           recurrence_rule=weekly(2), payment_method="card")


def test_checkout_that_cannot_start_releases_the_dates(sqlite_db, stripe_on):
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE)
    stripe_on.fail_next(400, error_type="invalid_request_error", code="parameter_invalid")
    with pytest.raises(PaymentError):
        _book(customer, room, count=2)
    with db.read_session() as s:
        rows = s.exec(select(Booking).where(Booking.bookable_id == room.id)).all()
    assert rows and {bk.status for bk in rows} == {"cancelled"}
