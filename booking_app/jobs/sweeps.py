"""The background sweeps run by the scheduler (booking_app/jobs/scheduler.py: JOBS).

Each is synchronous, repeat-safe and claims its rows in the database, so any number of
processes may run them at the same time. Each returns how many rows it handled. The work
itself is the services' (booking state changes only through the booking service); these
only call them and log.
"""
from __future__ import annotations

import datetime as dt
import logging

from booking_app.services import approvals, bookings, fees, relay, reminders

log = logging.getLogger(__name__)


def relay_outbox() -> int:
    """Deliver the due outbox rows (email/SMS)."""
    stats = relay.relay_once()
    if stats.claimed:
        log.info("outbox relay: %s", stats)
    return stats.sent


def sweep_reminders() -> int:
    return reminders.sweep_reminders()


def expire_holds() -> int:
    """Release pending bookings whose payment hold ran out (Booking Service)."""
    return bookings.release_expired_holds()


def expire_approval_requests() -> int:
    """Release bookings whose approval request nobody answered in time (issue 24)."""
    return approvals.expire_requests()


def complete_past_bookings(*, now: dt.datetime | None = None, after: dt.timedelta = bookings.COMPLETE_AFTER,
                           limit: int = bookings.COMPLETE_BATCH) -> int:
    """Mark confirmed bookings that ended more than `after` ago as completed (Booking Service)."""
    return bookings.complete_past_bookings(now=now, after=after, limit=limit)


def recover_fee_charges() -> int:
    """Finish the fee charges a dead process left `charging` (services/fees.py)."""
    return fees.recover_stale_charges()
