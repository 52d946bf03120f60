"""The background sweeps run by the scheduler (booking_app/jobs/scheduler.py: JOBS).

Each is synchronous, repeat-safe and claims its rows in the database, so any number of
processes may run them at the same time. Each returns how many rows it handled.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import update
from sqlmodel import select

from booking_app import db
from booking_app.models import Booking, BookingStatus, utcnow
from booking_app.services import audit, outbox

log = logging.getLogger(__name__)

#: a confirmed booking becomes `completed` this long after its end, which leaves the
#: provider time to mark a no-show first (only confirmed bookings can be marked so)
COMPLETE_AFTER = dt.timedelta(hours=24)
COMPLETE_BATCH = 500


def relay_outbox() -> int:
    """Deliver the due outbox rows (email/SMS)."""
    from booking_app.services.notifications import relay_once

    stats = relay_once()
    if stats.claimed:
        log.info("outbox relay: %s", stats)
    return stats.sent


def sweep_reminders() -> int:
    from booking_app.services.notifications import sweep_reminders as sweep

    return sweep()


def expire_holds() -> int:
    """Release pending bookings whose payment hold ran out (Booking Service)."""
    from booking_app.services.bookings import release_expired_holds

    return release_expired_holds()


def complete_past_bookings(*, now: dt.datetime | None = None, after: dt.timedelta = COMPLETE_AFTER,
                           limit: int = COMPLETE_BATCH) -> int:
    """Mark confirmed bookings that ended more than `after` ago as completed.

    Conditional UPDATE (`WHERE status='confirmed'`) on rows picked with SKIP LOCKED on
    PostgreSQL, so it never waits for (nor overrides) a booking being changed right now.
    """
    now = now or utcnow()
    cutoff = now - after
    with db.unit_of_work() as s:
        db.set_local_lock_timeout(s)
        pick = (select(Booking.id).where(Booking.status == BookingStatus.confirmed.value, Booking.end_at <= cutoff)
                .order_by(Booking.id).limit(limit))
        if db.is_postgres(s):
            pick = pick.with_for_update(skip_locked=True)
        ids = list(s.exec(pick).all())
        if not ids:
            return 0
        result = s.exec(  # type: ignore[call-overload]
            update(Booking)
            .where(Booking.id.in_(ids), Booking.status == BookingStatus.confirmed.value,  # type: ignore[union-attr]
                   Booking.end_at <= cutoff)
            .values(status=BookingStatus.completed.value, version=Booking.version + 1, updated_at=now)
            .returning(Booking.id)
        )
        done = [row[0] for row in result.all()]
        for booking_id in done:
            outbox.cancel_pending_reminders(s, booking_id, reason="superseded: booking_completed")
            audit.record(s, actor_id=None, action="booking.completed", entity="booking", entity_id=booking_id,
                         data={"by": "job"})
    return len(done)
