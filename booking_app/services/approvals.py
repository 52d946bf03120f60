"""Bookings that need the provider's approval (issue 24, point 2; docs/approval.md).

A bookable with `requires_approval` takes bookings as `awaiting_approval`: they hold their
seats like any active booking until `approval_expires_at` (mirrored in `hold_expires_at`,
the column every capacity count reads, so the counts need only the status:
models.booking.HELD_STATUSES). The provider (or an admin) approves — the booking becomes
`confirmed` when nothing is to be paid online (free, pay on site, no Stripe), else
`pending` with a payment hold, the customer's approval email linking to the payment — or
declines; a request nobody answered lapses (`expire_requests`, a job sweep). Declining and
lapsing free the seats in one place, `release_request`.

The seats never change hands here: approving keeps the held seats (the row stays active
under its row lock), releasing only frees them. The only seat-taking path is the booking
itself (services/bookings.py → capacity.py).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Bookable, Booking, BookingStatus
from booking_app.models.base import utcnow
from booking_app.services import audit, capacity, notify, validation
from booking_app.services import waitlist  # waitlist (issue 24): freed seats offered to the queue
from booking_app.services.actors import Actor
from booking_app.services.approval_links import token_grants
from booking_app.services.booking_queries import BookingView, access, full_view, list_bookings
from booking_app.services.errors import Conflict, Forbidden, NotFound
from booking_app.services.manage_links import token_id

AWAITING = BookingStatus.awaiting_approval.value
#: cancel_reason of a declined request without a reason given, and of a lapsed one
DECLINED = "approval_declined"
EXPIRED = "approval_expired"

NOT_AWAITING = N_("This booking is not waiting for approval.")
REQUEST_EXPIRED = N_("This request has expired: its places are free again.")
PROVIDER_ONLY = N_("Only the provider can approve or decline a booking.")
LINK_NOT_VALID = N_("This approval link is not valid any more. Open the approvals page instead.")


def expiry_hours(b: Any) -> int:
    """How long a request for bookable `b` waits for an answer (APPROVAL_EXPIRY_HOURS unless set)."""
    return int(getattr(b, "approval_expiry_hours", None) or get_settings().approval_expiry_hours)


def request_fields(b: Any, start_at: dt.datetime, now: dt.datetime, method: str | None, *,
                   by_staff: bool = False) -> dict[str, Any] | None:
    """The new booking's status columns when `b` requires approval (None otherwise): it
    awaits approval, its seats held until the expiry — never past the start. A booking
    its provider or an admin makes (a walk-in) needs no approval: `by_staff`."""
    if by_staff or not getattr(b, "requires_approval", False):
        return None
    until = min(now + dt.timedelta(hours=expiry_hours(b)), start_at)
    return {"status": AWAITING, "hold_expires_at": until, "approval_expires_at": until, "approval_method": method}


def _deciding(actor: Actor, bk: Booking | None, token: str | None) -> Actor:
    """Who decides: the provider or an admin (the customer: Forbidden; anyone else:
    NotFound), or whoever holds the email's approval link (acting as the provider)."""
    if token is not None:
        if bk is None or not token_grants(token, bk):
            raise NotFound(LINK_NOT_VALID)
        return Actor(id=bk.provider_id, role="provider")
    _owner, manager = access(actor, bk, None)
    if not manager:
        raise Forbidden(PROVIDER_ONLY)
    return actor


def approve(*, actor: Actor, booking_id: Any, token: str | None = None, now: dt.datetime | None = None) -> BookingView:
    """Approve a request still holding its seats: `confirmed` when nothing is paid online,
    else `pending` with a payment hold of the bookable's approval expiry (at most until
    the start). A request already decided or lapsed → Conflict."""
    now = now or utcnow()
    with capacity.transaction() as s:
        bk = capacity.lock_booking(s, booking_id, set_lock_timeout=False)
        who = _deciding(actor, bk, token)
        assert bk is not None and bk.id is not None
        if bk.status != AWAITING:
            raise Conflict(NOT_AWAITING)
        if bk.hold_expires_at is not None and bk.hold_expires_at <= now:
            raise Conflict(REQUEST_EXPIRED)
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None
        method = bk.approval_method
        confirmed = bk.price_cents <= 0 or method == "on_site" or (method is None and not get_settings().stripe_enabled)
        if confirmed:
            bk.status, bk.hold_expires_at = BookingStatus.confirmed.value, None
        else:
            bk.status = BookingStatus.pending.value
            bk.hold_expires_at = min(now + dt.timedelta(hours=expiry_hours(b)), bk.start_at)
        bk.version += 1
        bk.sequence += 1
        bk.updated_at = now
        s.add(bk)
        s.flush()
        audit.record(s, actor_id=who.id, action="booking.approved", entity="booking", entity_id=bk.id,
                     data={"status": bk.status, "by_link": token is not None})
        notify.booking_event(s, booking=bk, event="booking_approved" if confirmed else "booking_approved_pay",
                             bookable=b, extra={"actor_id": who.id})
        s.flush()
        return full_view(s, bk, b)


def decline(*, actor: Actor, booking_id: Any, reason: str | None = None, token: str | None = None,
            now: dt.datetime | None = None) -> BookingView:
    """Decline a request (also one that lapsed but is not swept yet): its seats are free at
    once and the customer is told, with `reason` when given."""
    now = now or utcnow()
    reason_text = validation.reason(reason)
    with capacity.transaction() as s:
        bk = capacity.lock_booking(s, booking_id, set_lock_timeout=False)
        who = _deciding(actor, bk, token)
        assert bk is not None and bk.id is not None
        if bk.status != AWAITING:
            raise Conflict(NOT_AWAITING)
        capacity.lock_capacity_of(s, bk)
        release_request(s, bk, outcome="declined", reason=reason_text, actor_id=who.id, now=now)
        s.flush()
        return full_view(s, bk)


def release_request(s: Any, bk: Booking, *, outcome: str, reason: str | None, actor_id: int | None,
                    now: dt.datetime) -> None:
    """The one path that frees a request's seats, in the caller's capacity transaction
    (booking row locked): `outcome` "declined" (by the provider) or "expired" (nobody
    answered in time). The booking is cancelled, the customer told (email/SMS), webhook
    endpoints get "booking.declined" / "booking.cancelled"."""
    bk.status = BookingStatus.cancelled.value
    bk.cancel_reason = reason or (DECLINED if outcome == "declined" else EXPIRED)
    bk.cancelled_at = now
    bk.version += 1
    bk.sequence += 1
    bk.updated_at = now
    s.add(bk)
    s.flush()
    audit.record(s, actor_id=actor_id, action="booking.declined" if outcome == "declined" else "booking.approval_expired",
                 entity="booking", entity_id=bk.id, data={"reason": bk.cancel_reason})
    notify.booking_event(s, booking=bk, event="booking_declined" if outcome == "declined" else "booking_approval_expired",
                         extra={"reason": bk.cancel_reason, "actor_id": actor_id})
    s.flush()
    waitlist.offer_freed(s, bk, now=now)  # the freed seats go to the waitlist, in this transaction


def expire_requests(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Job sweep: requests nobody answered before `approval_expires_at` lapse and free their
    seats (`release_request`). Rows are claimed with SKIP LOCKED on PostgreSQL, so several
    processes may run it. Returns how many lapsed."""
    now = now or utcnow()
    with capacity.transaction() as s:
        stmt = (select(Booking).where(Booking.status == AWAITING, Booking.hold_expires_at <= now)  # type: ignore[operator]
                .order_by(Booking.id).limit(limit))
        if db.is_postgres(s):
            stmt = stmt.with_for_update(skip_locked=True)
        rows = s.exec(stmt).all()
        # (the session counters the triggers update: locked first, in id order; see
        # bookings.release_expired_holds)
        capacity.lock_session_counters(s, (bk.session_id for bk in rows if bk.session_id is not None))
        for bk in rows:
            release_request(s, bk, outcome="expired", reason=None, actor_id=None, now=now)
        return len(rows)


def queue(*, actor: Actor, service_id: int | None = None, limit: int = 100) -> list[BookingView]:
    """The requests waiting for `actor`'s answer (a provider: their bookables'; an admin:
    all), soonest first; lapsed ones not yet swept are left out."""
    if not (actor.is_provider or actor.is_admin):
        raise Forbidden(PROVIDER_ONLY)
    rows, _total = list_bookings(actor=actor, scope="provider", status=AWAITING, service_id=service_id, limit=limit)
    now = utcnow()
    return [v for v in rows if v.hold_expires_at is None or v.hold_expires_at > now]


def request_by_token(token: Any) -> BookingView:
    """The booking an emailed approval link names, for the page that asks to decide
    (NotFound when the link is not, or no longer, valid)."""
    booking_id = token_id(token)
    with db.read_session() as s:
        bk = s.get(Booking, booking_id) if booking_id is not None else None
        if bk is None or not token_grants(token, bk):
            raise NotFound(LINK_NOT_VALID)
        return full_view(s, bk)
