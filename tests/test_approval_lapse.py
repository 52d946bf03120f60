"""A request nobody answered in time (docs/approval.md, docs/webhooks.md): what the customer
and webhook receivers are told must differ from a customer's cancellation and from a
provider's decline. A lapse fires `booking.cancelled` with `cancel_reason: "approval_expired"`
(the convention of the hold-expiry job's `hold_expired`), never `booking.declined`; the
customer gets the "request expired" message. On SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Notification, utcnow
from booking_app.services import approvals, bookings, messages, webhooks
from tests.factories import actor_for, make_bookable, make_customer, make_provider, next_day_at

HOUR = dt.timedelta(hours=1)
HOOK = "https://93.184.216.34/hook"  # a public address literal: no DNS lookup


def _world():
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, requires_approval=True, approval_expiry_hours=2)
    webhooks.create_endpoint(actor=actor_for(provider), url=HOOK,
                             events=["booking.cancelled", "booking.declined"])
    return provider, customer, b


def _events(booking_id: int) -> list[tuple[str, dict]]:
    """(type, data.booking) of the webhook events queued for the booking, in order."""
    with db.read_session() as s:
        rows = s.exec(select(Notification).where(Notification.channel == "webhook",
                                                 Notification.booking_id == booking_id)
                      .order_by(Notification.id)).all()
        return [(n.template, n.context["event"]["data"]["booking"]) for n in rows]


def _customer_templates(booking_id: int) -> list[str]:
    with db.read_session() as s:
        return [n.template for n in s.exec(select(Notification).where(
            Notification.booking_id == booking_id, Notification.channel.in_(("email", "sms")))).all()]  # type: ignore[attr-defined]


def test_a_lapsed_request_is_told_apart_from_a_decline_and_a_cancellation(db_url):
    provider, customer, b = _world()
    start = next_day_at(10, days=3)
    lapsing = bookings.book(actor=actor_for(customer), service_id=b.id, start=start)
    declined = bookings.book(actor=actor_for(customer), service_id=b.id, start=start + 2 * HOUR)
    withdrawn = bookings.book(actor=actor_for(customer), service_id=b.id, start=start + 4 * HOUR)
    approvals.decline(actor=actor_for(provider), booking_id=declined.id)
    bookings.cancel(actor=actor_for(customer), booking_id=withdrawn.id)
    assert approvals.expire_requests(now=utcnow() + 3 * HOUR) == 1

    [(kind, data)] = _events(lapsing.id)
    assert (kind, data["status"], data["cancel_reason"]) == ("booking.cancelled", "cancelled", "approval_expired")
    assert [(k, d["cancel_reason"]) for k, d in _events(declined.id)] == [("booking.declined", "approval_declined")]
    assert [(k, d["cancel_reason"]) for k, d in _events(withdrawn.id)] == [("booking.cancelled", "cancelled_by_customer")]

    # the customer hears that the request expired unanswered, not that it was cancelled or declined
    assert "booking_approval_expired" in _customer_templates(lapsing.id)
    assert not {"booking_cancelled", "booking_declined"} & set(_customer_templates(lapsing.id))


def test_a_request_swept_by_a_new_booking_fires_the_same_event(db_url):
    """The other path that ends a lapsed request: a new booking overlapping it on a
    capacity-1 bookable sweeps it first (bookings._sweep_overlapping_holds)."""
    provider, customer, b = _world()
    start = next_day_at(10, days=3)
    lapsed = bookings.book(actor=actor_for(customer), service_id=b.id, start=start, now=utcnow() - 3 * HOUR)
    bookings.book(actor=actor_for(make_customer()), service_id=b.id, start=start)
    assert [(k, d["cancel_reason"]) for k, d in _events(lapsed.id)] == [("booking.cancelled", "approval_expired")]
    assert "booking_approval_expired" in _customer_templates(lapsed.id)


@pytest.mark.parametrize("locale", ["en", "es", "fr", "de", "ar", "it", "pt_BR", "nl", "pl", "tr"])
def test_the_expired_message_says_unanswered_in_every_language(locale):
    start = dt.datetime(2027, 3, 1, 10, tzinfo=dt.timezone.utc)
    context = {"service": "Studio", "reference": "ABCD2345", "start": start.isoformat(),
               "end": (start + HOUR).isoformat(), "timezone": "Europe/Madrid", "url": "https://x.test/b?id=1"}
    expired = messages.render_email("booking_approval_expired", locale, context)
    cancelled = messages.render_email("booking_cancelled", locale, context)
    assert "{" not in expired.subject + expired.text and expired.subject != cancelled.subject
    assert messages.render_sms("booking_approval_expired", locale, context) != messages.render_sms(
        "booking_cancelled", locale, context)
    if locale == "en":
        assert "not answered in time" in expired.text and "expired" in expired.subject
