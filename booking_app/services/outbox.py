"""The outbox: notifications written inside the business transaction.

Services call `booking_event(session, booking=..., event=...)` (or `enqueue` directly); the
relay job (booking_app/jobs) delivers the rows after commit. A rolled-back transaction
leaves no row; the unique `dedupe_key` makes every message at-most-once per key.
"""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from booking_app.models import Booking, Notification, User

BOOKING_EVENTS = (
    "booking_confirmed",
    "booking_pending",
    "booking_rescheduled",
    "booking_cancelled",
    "booking_completed",
    "booking_no_show",
)


def enqueue(
    session: Session,
    *,
    channel: str,
    to: str,
    template: str,
    locale: str,
    context: dict[str, Any],
    dedupe_key: str,
    booking_id: int | None = None,
    user_id: int | None = None,
) -> Notification | None:
    """Add one outbox row unless one with the same dedupe key exists already."""
    existing = session.exec(select(Notification.id).where(Notification.dedupe_key == dedupe_key)).first()
    if existing is not None:
        return None
    row = Notification(channel=channel, to=to, template=template, locale=locale, context=context,
                       dedupe_key=dedupe_key, booking_id=booking_id, user_id=user_id)
    session.add(row)
    return row


def booking_event(session: Session, *, booking: Booking, event: str, extra: dict[str, Any] | None = None) -> None:
    """Queue the customer's message for a booking state change (email; SMS if opted in)."""
    if event not in BOOKING_EVENTS:
        raise ValueError(f"unknown booking event {event}")
    user = session.get(User, booking.user_id) if booking.user_id else None
    email = user.email if user else booking.guest_email
    locale = (user.locale if user else booking.locale) or "en"
    context = {"booking_id": booking.id, "reference": booking.reference, "event": event, **(extra or {})}
    key = f"{event}:{booking.id}:{booking.version}"
    if email and (user is None or user.notify_email):
        enqueue(session, channel="email", to=email, template=event, locale=locale, context=context,
                dedupe_key=f"email:{key}", booking_id=booking.id, user_id=booking.user_id)
