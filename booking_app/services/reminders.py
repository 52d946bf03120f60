"""Reminders: when they are due, the outbox rows that schedule them, and the sweep.

A confirmed booking gets one `reminder` row per (channel, offset) with `next_attempt_at =
start - offset` (`expected_reminders`, queued by services/notify.py on confirmation and
reschedule, and by `sweep_reminders` for any that are missing); a change or cancellation
cancels the pending ones. services/relay.py sends them, after `reminder_skips` re-checks
the booking. Offsets are minutes before the start: the bookable's own, else the settings'.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import and_, exists, or_, update
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Bookable, Booking, BookingStatus, Notification, NotificationStatus, utcnow
from booking_app.services import outbox
from booking_app.services.errors import InvalidInput
from booking_app.services.messages import parse_dt

#: the template (and dedupe-key part) of reminder rows
REMINDER = "reminder"
#: reminder offsets are minutes before the start, at most this far ahead (60 days)
MAX_REMINDER_OFFSET_MINUTES = 60 * 24 * 60
#: reminders per booking a bookable may set
MAX_REMINDERS = 5
#: how far ahead the sweep queues missing reminders
SWEEP_LOOKAHEAD = dt.timedelta(minutes=15)

# --- the offset rules ----------------------------------------------------------------------------


def parse_offsets(value: str | None) -> list[int]:
    """'1440, 60' → [1440, 60] (valid minutes only, largest first)."""
    out = set()
    for part in (value or "").split(","):
        part = part.strip()
        if part.isascii() and part.isdigit() and 1 <= int(part) <= MAX_REMINDER_OFFSET_MINUTES:
            out.add(int(part))
    return sorted(out, reverse=True)


def normalize_reminder_offsets(value: Any) -> str:
    """Validate a bookable's reminder offsets for the catalog ('1440,60' or [1440, 60];
    None / '' / [] = the defaults). Returns the stored form (distinct, largest first; ''
    = the defaults); InvalidInput for anything else, whatever its type or size."""
    too_many = InvalidInput(N_("At most {max} reminders per booking."), field="reminder_offsets",
                            max=MAX_REMINDERS)
    bad = InvalidInput(N_("Reminder times must be whole minutes between {min} and {max}."),
                       field="reminder_offsets", min=1, max=MAX_REMINDER_OFFSET_MINUTES)
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, str):
        if len(value) > 200:
            raise bad
        parts: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise bad
    if len(parts) > 10 * MAX_REMINDERS:  # no work on huge inputs (repeats count once below)
        raise too_many
    minutes = []
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, (int, str)):
            raise bad
        text = str(part).strip()
        if len(text) > 20 or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_REMINDER_OFFSET_MINUTES:
            raise bad  # (isascii: "²" passes isdigit() but not int())
        minutes.append(int(text))
    if len(set(minutes)) > MAX_REMINDERS:
        raise too_many
    return ",".join(str(m) for m in sorted(set(minutes), reverse=True))


_HOURS_RE = re.compile(r"^(\d{1,5}(\.\d{0,3})?|\.\d{1,3})$")


def reminder_offsets_from_hours(text: str | None) -> list[int]:
    """Reminder times typed as hours before the start → minutes: "24, 2" → [1440, 120]
    ("0.5" = 30; commas, semicolons or spaces between; "" = [] = the defaults). InvalidInput
    on `reminder_offsets` for anything else; normalize_reminder_offsets checks the rest."""
    parts = [p for p in re.split(r"[,;\u060c\s]+", (text or "").strip()) if p]
    bad = InvalidInput(N_("Enter hours before the start, separated by commas (e.g. 24, 2), each at most {max}."),
                       field="reminder_offsets", max=MAX_REMINDER_OFFSET_MINUTES // 60)
    if len(parts) > 50:
        raise bad
    minutes = []
    for part in parts:
        if not _HOURS_RE.match(part):
            raise bad
        value = int((Decimal(part) * 60).to_integral_value())
        if not 1 <= value <= MAX_REMINDER_OFFSET_MINUTES:
            raise bad
        minutes.append(value)
    return minutes


def reminder_hours_text(minutes: list[int]) -> str:
    """[1440, 120] → "24, 2" (15 minutes → "0.25"; reminder_offsets_from_hours reads it back)."""
    out = []
    for m in minutes:
        hours = (Decimal(int(m)) / 60).quantize(Decimal("0.01"))
        out.append(str(hours.to_integral_value()) if hours == hours.to_integral_value() else str(hours.normalize()))
    return ", ".join(out)


def reminder_offsets(bookable: Bookable | None) -> list[int]:
    """The bookable's own offsets if it has any, else REMINDER defaults from settings."""
    own = parse_offsets(bookable.reminder_offsets) if bookable and bookable.reminder_offsets else []
    if own:
        return own
    return [m for m in get_settings().reminder_offsets if 1 <= m <= MAX_REMINDER_OFFSET_MINUTES]


# --- the rows that schedule them ---------------------------------------------------------------

def reminder_key(channel: str, booking: Booking, offset: int) -> str:
    start = int(booking.start_at.timestamp())
    return f"{channel}:{REMINDER}:{booking.id}:{offset}:{booking.sequence}:{start}"


def expected_reminders(session: Session, booking: Booking, bookable: Bookable | None, *,
                       now: dt.datetime, customer: outbox.Recipient | None = None,
                       base: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The reminder rows a confirmed booking should have that are still in the future.
    `customer`, `base` (its snapshot): when the caller has them already."""
    if booking.status != BookingStatus.confirmed.value or booking.start_at <= now:
        return []
    customer = customer or outbox.customer_of(session, booking, bookable)
    channels = [("email", customer.email)] if customer.wants_email else []
    if customer.wants_sms:
        channels.append(("sms", customer.phone))
    if not channels:
        return []
    base = base if base is not None else outbox.booking_snapshot(session, booking, bookable, customer=customer)
    rows = []
    for offset in reminder_offsets(bookable):
        due = booking.start_at - dt.timedelta(minutes=offset)
        if due <= now:  # its time has passed: a late "24 hours before" would be wrong
            continue
        for channel, to in channels:
            rows.append({
                "channel": channel, "to": to, "template": REMINDER, "locale": customer.locale,
                "context": outbox.personal(base, customer, offset_minutes=offset),  # (JSON-safe parts)
                "dedupe_key": reminder_key(channel, booking, offset), "booking_id": booking.id,
                "user_id": customer.user_id, "next_attempt_at": due,
            })
    return rows


def cancel_pending_reminders(session: Session, booking_id: int, *, reason: str) -> int:
    """Cancel the booking's pending reminders (it moved, was cancelled or ended), in the caller's transaction."""
    result = session.exec(  # type: ignore[call-overload]
        update(Notification)
        .where(Notification.booking_id == booking_id, Notification.template == REMINDER,
               Notification.status == NotificationStatus.pending.value)
        .values(status=NotificationStatus.cancelled.value, last_error=reason[:2000])
    )
    return result.rowcount or 0


def schedule_reminders(session: Session, booking: Booking, bookable: Bookable | None = None,
                       *, now: dt.datetime | None = None) -> int:
    """Queue the reminders of a confirmed booking (after cancelling outdated ones)."""
    bookable = bookable or session.get(Bookable, booking.bookable_id)
    return outbox.enqueue_many(session, expected_reminders(session, booking, bookable, now=now or utcnow()))


# --- the sweep -----------------------------------------------------------------------------------

def sweep_reminders(*, now: dt.datetime | None = None, lookahead: dt.timedelta = SWEEP_LOOKAHEAD) -> int:
    """Keep the queued reminders in line with the bookings (repeat-safe, any number of processes).

    - pending reminders of bookings that are no longer confirmed are cancelled;
    - reminders due within `lookahead` that are missing (a booking confirmed by a path
      that queued none, or offsets changed) are queued; duplicates are ignored by the
      unique dedupe key, so a reminder is queued once whoever runs the sweep.
    Returns the number of rows changed.
    """
    now = now or utcnow()
    changed = 0
    with db.unit_of_work() as s:
        stale = exists().where(Booking.id == Notification.booking_id, Booking.status != BookingStatus.confirmed.value)
        result = s.exec(  # type: ignore[call-overload]
            update(Notification)
            .where(Notification.template == REMINDER, Notification.status == NotificationStatus.pending.value,
                   stale)
            .values(status=NotificationStatus.cancelled.value, last_error="skipped: booking no longer confirmed")
        )
        changed += result.rowcount or 0

        offsets = set(get_settings().reminder_offsets)
        for value in s.exec(select(Bookable.reminder_offsets).where(Bookable.reminder_offsets != "").distinct()).all():
            offsets.update(parse_offsets(value))
        windows = [
            and_(Booking.start_at > now + dt.timedelta(minutes=o), Booking.start_at <= now + dt.timedelta(minutes=o) + lookahead)
            for o in sorted(offsets)
        ]
        if not windows:
            return changed
        candidates = s.exec(
            select(Booking).where(Booking.status == BookingStatus.confirmed.value, or_(*windows)).order_by(Booking.id)
        ).all()
        horizon = now + lookahead
        rows: list[dict[str, Any]] = []
        for booking in candidates:
            bookable = s.get(Bookable, booking.bookable_id)
            rows.extend(r for r in expected_reminders(s, booking, bookable, now=now) if r["next_attempt_at"] <= horizon)
        changed += outbox.insert_values(s, outbox.notification_values(rows, json_safe=True))
    return changed


# --- the check before sending ----------------------------------------------------------------------

class QueuedReminder(Protocol):
    """What `reminder_skips` reads of a claimed outbox row."""
    id: int
    template: str
    booking_id: int | None
    context: dict[str, Any]


def reminder_skips(rows: list[QueuedReminder], now: dt.datetime) -> dict[int, str | None]:
    """Reminder row id → None if it should go out, else why it is skipped (the booking is
    gone, no longer confirmed, moved, or already started). Other rows are left out."""
    reminders = [r for r in rows if r.template == REMINDER]
    if not reminders:
        return {}
    booking_ids = {r.booking_id for r in reminders if r.booking_id is not None}
    with db.read_session() as s:
        bookings = {b.id: b for b in s.exec(select(Booking).where(Booking.id.in_(booking_ids))).all()} if booking_ids else {}  # type: ignore[union-attr]
    out: dict[int, str | None] = {}
    for r in reminders:
        b = bookings.get(r.booking_id)
        start = parse_dt(r.context.get("start"))
        if b is None:
            out[r.id] = "skipped: booking not found"
        elif b.status != BookingStatus.confirmed.value:
            out[r.id] = f"skipped: booking is {b.status}"
        elif start is None or b.start_at != start or b.sequence != int(r.context.get("sequence") or 0):
            out[r.id] = "skipped: booking was changed"
        elif b.start_at <= now:
            out[r.id] = "skipped: booking already started"
        else:
            out[r.id] = None
            r.context["balance_due_cents"] = b.balance_due_cents  # deposits (issue 26): the balance now
    return out
