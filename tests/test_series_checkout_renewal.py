"""A series paid online, one date cancelled before the payment (docs/series.md, "Payment"):
the shared Checkout is ended (its amount can't be lowered), and its expiry renews the
payment for the dates kept — a new Checkout for their sum, the customer emailed its link —
instead of releasing the whole series. The real `stripe` SDK against the stub, on SQLite and
PostgreSQL."""
from __future__ import annotations

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Notification
from booking_app.services import messages, payments, series_payments
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_customer, make_provider
from tests.test_payments import deliver, session_creates, stripe_on, stub  # noqa: F401 (fixtures)
from tests.test_series_payments import PRICE, _book, _bookings, _payments, _session_of


def _expired(stub, session_id: str) -> dict:
    assert stub.sessions[session_id]["status"] == "expired"  # we ended it at Stripe
    return dict(stub.sessions[session_id])


def _renewal_mails(booking_ids: list[int]) -> list[Notification]:
    with db.read_session() as s:
        return list(s.exec(select(Notification).where(Notification.template == series_payments.RENEWED_TEMPLATE,
                                                      Notification.booking_id.in_(booking_ids))).all())  # type: ignore[attr-defined]


def test_cancelling_one_unpaid_date_keeps_the_rest_payable(db_url, stripe_on):
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE)
    done = _book(customer, room, count=3)
    first_session = _session_of(done.booked.series_id)
    rows = _bookings(done.booked.series_id)

    view = payments.cancel_and_refund(actor=actor_for(customer), booking_id=rows[1].id)
    assert view.status == "cancelled" and view.refund_due_cents == 0
    creates = len(session_creates(stripe_on))
    result = deliver(stripe_on, "checkout.session.expired", _expired(stripe_on, first_session))
    assert result.outcome == "processed"

    # the other two dates are still held, with a new Checkout for their sum
    rows = _bookings(done.booked.series_id)
    assert [bk.status for bk in rows] == ["pending", "cancelled", "pending"]
    assert len(session_creates(stripe_on)) == creates + 1
    params = session_creates(stripe_on)[-1].params
    assert params["line_items"][0]["price_data"]["unit_amount"] == str(2 * PRICE)
    assert params["metadata"]["series_id"] == str(done.booked.series_id)
    kept = [rows[0], rows[2]]
    new_refs = {p.provider_ref for bk in kept for p in _payments(bk.id) if p.status == "pending"}
    assert len(new_refs) == 1 and first_session not in new_refs
    new_session = new_refs.pop()
    assert [[p.status for p in _payments(bk.id)] for bk in kept] == [["cancelled", "pending"]] * 2
    [mail] = _renewal_mails([bk.id for bk in rows])
    assert mail.context["pay_url"] == stripe_on.sessions[new_session]["url"]
    assert mail.context["amount_cents"] == 2 * PRICE and mail.booking_id == rows[0].id
    text = messages.render_email(series_payments.RENEWED_TEMPLATE, "en", mail.context).text
    assert "covers only the dates you kept" in text and "€80.00" in text
    # the booking page's "pay" hands out the renewed session (payments.process reuses it)
    again = payments.process(actor=actor_for(customer), booking_id=rows[2].id, method="card")
    assert again.checkout_url == stripe_on.sessions[new_session]["url"]

    # a replayed expiry changes nothing
    assert deliver(stripe_on, "checkout.session.expired", _expired(stripe_on, first_session)).outcome == "ignored"
    assert len(session_creates(stripe_on)) == creates + 1

    # paid: the two dates kept are confirmed; nothing is refunded
    session = stripe_on.complete_session(new_session)
    assert deliver(stripe_on, "checkout.session.completed", session).outcome == "processed"
    rows = _bookings(done.booked.series_id)
    assert [bk.status for bk in rows] == ["confirmed", "cancelled", "confirmed"]
    assert [p.refunded_cents for bk in rows for p in _payments(bk.id)] == [0] * 5
    assert stripe_on.calls("POST", "/v1/refunds") == []


def test_an_abandoned_renewal_releases_the_dates_kept(sqlite_db, stripe_on):
    """The renewal is for a date's cancellation only: its own expiry (the customer never
    paid) releases the rest, as any abandoned Checkout."""
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE)
    done = _book(customer, room, count=2)
    first_session = _session_of(done.booked.series_id)
    rows = _bookings(done.booked.series_id)
    payments.cancel_and_refund(actor=actor_for(customer), booking_id=rows[0].id)
    deliver(stripe_on, "checkout.session.expired", _expired(stripe_on, first_session))
    [renewed] = [p.provider_ref for p in _payments(rows[1].id) if p.status == "pending"]
    creates = len(session_creates(stripe_on))
    expired = dict(stripe_on.sessions[renewed], status="expired")
    assert deliver(stripe_on, "checkout.session.expired", expired).outcome == "processed"
    assert [bk.status for bk in _bookings(done.booked.series_id)] == ["cancelled", "cancelled"]
    assert len(session_creates(stripe_on)) == creates


def test_a_renewal_that_cannot_start_releases_the_dates(sqlite_db, stripe_on):
    customer = make_customer()
    room = make_bookable(make_provider(), weekly=ALL_WEEK, price_cents=PRICE)
    done = _book(customer, room, count=3)
    first_session = _session_of(done.booked.series_id)
    rows = _bookings(done.booked.series_id)
    payments.cancel_and_refund(actor=actor_for(customer), booking_id=rows[0].id)
    stripe_on.fail_next(400, error_type="invalid_request_error", code="parameter_invalid",
                        path_contains="/v1/checkout/sessions")
    assert deliver(stripe_on, "checkout.session.expired", _expired(stripe_on, first_session)).outcome == "processed"
    assert [bk.status for bk in _bookings(done.booked.series_id)] == ["cancelled"] * 3
    assert _renewal_mails([bk.id for bk in rows]) == []
    assert not [p for bk in rows for p in _payments(bk.id) if p.status == "pending"]


@pytest.mark.parametrize("locale", ["en", "es", "fr", "de", "ar", "it", "pt_BR", "nl", "pl", "tr"])
def test_the_renewal_message_renders_in_every_language(locale):
    context = {"service": "Studio", "reference": "ABCD2345", "start": "2027-03-01T10:00:00+00:00",
               "end": "2027-03-01T11:00:00+00:00", "timezone": "Europe/Madrid", "amount_cents": 8000,
               "amount_currency": "EUR", "hold_expires_at": "2027-02-27T10:00:00+00:00",
               "pay_url": "https://checkout.stripe.com/c/pay/cs_1"}
    mail = messages.render_email(series_payments.RENEWED_TEMPLATE, locale, context)
    assert "{" not in mail.subject + mail.text
    assert "https://checkout.stripe.com/c/pay/cs_1" in mail.text
