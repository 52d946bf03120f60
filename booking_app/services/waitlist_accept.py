"""Accepting a waitlist offer (issue 24, point 1): the held booking becomes the normal
booking — confirmed when free (or payments are on site only), else it stays held while the
customer pays through Stripe Checkout (services/payments.py, the same path as any booking).

Its own module: it needs payments, which import bookings, which import services/waitlist.py.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from booking_app.config import get_settings
from booking_app.models import Bookable, BookingStatus, WaitlistStatus
from booking_app.models.base import utcnow
from booking_app.services import audit, capacity, notify, payments, waitlist
from booking_app.services.actors import Actor
from booking_app.services.booking_queries import BookingView, full_view
from booking_app.services.errors import Conflict
from booking_app.services.manage_links import booking_manage_token
from booking_app.services.waitlist_views import EntryView, entry_view


@dataclass
class AcceptResult:
    entry: EntryView
    booking: BookingView
    #: where the customer pays (priced bookings with online payment), else None
    checkout_url: str | None = None
    #: a guest's manage token of the new booking (for its page)
    manage_token: str | None = None


def accept(*, actor: Actor, entry_id: Any, token: Any = None, now: dt.datetime | None = None) -> AcceptResult:
    """Its customer (or a guest holding the entry's token) takes an open offer, before its
    `offer_expires_at` (its hold runs a little longer, waitlist.OFFER_GRACE) → the booking; Conflict when the offer is not open (lapsed, declined, taken)."""
    now = now or utcnow()
    settings = get_settings()
    with capacity.transaction() as s:
        entry, bk = waitlist.locked_entry_and_hold(s, actor, entry_id, token, owner_only=True)
        if (entry.status != WaitlistStatus.offered.value or bk is None or bk.status != BookingStatus.pending.value
                or entry.offer_expires_at is None or entry.offer_expires_at <= now):
            raise Conflict(waitlist.NOT_OFFERED)
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None and bk.id is not None
        pay_online = bk.price_cents > 0 and settings.stripe_enabled and bool(settings.online_payment_methods)
        entry.status = WaitlistStatus.accepted.value
        entry.decided_at = now
        entry.updated_at = now
        s.add(entry)
        bk.version += 1
        bk.updated_at = now
        if pay_online:  # still held, now for paying (Checkout extends it as it needs)
            bk.hold_expires_at = max(bk.hold_expires_at or now, now + dt.timedelta(minutes=settings.hold_minutes))
        else:
            bk.status = BookingStatus.confirmed.value
            bk.hold_expires_at = None
            bk.sequence += 1
        s.add(bk)
        s.flush()
        audit.record(s, actor_id=actor.id, action="waitlist.accepted", entity="waitlist_entry", entity_id=entry.id,
                     data={"booking_id": bk.id, "pay_online": pay_online})
        notify.booking_event(s, booking=bk, event="booking_pending" if pay_online else "booking_confirmed",
                             bookable=b)
        waitlist.notify_entry(s, entry, bk, b, "waitlist.accepted")
        s.flush()
        booking_id, user_id, version = bk.id, bk.user_id, bk.manage_link_version
        result = AcceptResult(entry=entry_view(s, entry, b), booking=full_view(s, bk, b))
    if user_id is None:
        result.manage_token = booking_manage_token(booking_id, version)
    if pay_online:
        paid = payments.process(actor=actor, booking_id=booking_id, method=settings.online_payment_methods[0],
                                manage_token=result.manage_token)
        result.checkout_url = paid.checkout_url
    return result
