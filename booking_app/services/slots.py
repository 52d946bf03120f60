"""Slot math, pure: which slots a bookable offers and how many seats each has left,
from rows already read (no database here; services/availability.py runs the queries).

Rules
- room/service: a slot every `duration_minutes` from the start of each open range (weekly
  hours, or the date exception's special hours; a closed exception closes the day); a slot
  fits when it ends inside the range. Slots are laid out in absolute time from each local
  range start, so DST days (23/25 hours) neither duplicate nor lose one.
- a slot's *block* is [start - buffer_before, end + buffer_after]; seats used = the
  quantities of active bookings whose block overlaps it. For kind=service, an active booking
  of the provider's *other* services overlapping the block makes the slot unavailable.
- event: exactly its sessions (closed-date exceptions apply), seats per session.
- always: no past slots, none inside the minimum notice, none beyond the maximum advance.
- "active booking" = confirmed, or pending with hold_expires_at > now.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from booking_app.i18n import N_, Np_
from booking_app.models import AvailabilityException, AvailabilityRule, Bookable, Booking, EventSession
from booking_app.services.errors import NotAvailable
from booking_app.services.validation import END_OF_DAY

UTC = dt.timezone.utc
# upper bounds of a bookable's duration and buffers (the catalog enforces them)
MAX_DURATION_MINUTES = 24 * 60
MAX_BUFFER_MINUTES = 24 * 60
# A booking's block never spans more than duration + both buffers (each ≤ 1 day), so
# bookings overlapping [a, b) all start in [a - LOOKBACK, b + LOOKAHEAD): the index-friendly
# bound every query of competing bookings uses.
LOOKBACK = dt.timedelta(days=3)
LOOKAHEAD = dt.timedelta(days=1, minutes=1)


@dataclass(frozen=True)
class SlotView:
    start: dt.datetime  # aware UTC
    end: dt.datetime
    remaining: int


@dataclass(frozen=True)
class Occupant:
    """The part of an active booking the engine needs (block in integer epoch seconds,
    computed by the database: parsing thousands of timestamps in Python was the slowest
    part of a slot query)."""

    bookable_id: int
    session_id: int | None
    block_start: int
    block_end: int
    quantity: int


def is_active(status: str, hold_expires_at: dt.datetime | None, now: dt.datetime) -> bool:
    if status == "confirmed":
        return True
    if status in ("pending", "awaiting_approval"):  # (models.booking.HELD_STATUSES)
        return hold_expires_at is None or hold_expires_at > now
    return False


def local_to_utc(day: dt.date, t: dt.time, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A local wall time on a date → aware UTC ("24:00" = next midnight). Times inside a
    spring-forward gap map forward (fold=0), repeated autumn times take the first one."""
    if t == END_OF_DAY:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(UTC)
    return dt.datetime.combine(day, t, tzinfo=tz).astimezone(UTC)


def day_bounds(date_from: dt.date, date_to: dt.date, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[local midnight of date_from, local midnight after date_to) in UTC."""
    return (dt.datetime.combine(date_from, dt.time(0), tzinfo=tz).astimezone(UTC),
            dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(UTC))


def open_ranges(day: dt.date, tz: zoneinfo.ZoneInfo, rules_by_weekday: dict[int, list[tuple[dt.time, dt.time]]],
                excs_by_date: dict[dt.date, list[tuple[bool, dt.time | None, dt.time | None]]]) -> list[tuple[dt.datetime, dt.datetime]]:
    """The open ranges of one local date, in UTC."""
    exc = excs_by_date.get(day)
    if exc:
        if any(closed for closed, _s, _e in exc):
            return []
        ranges = [(s, e) for _c, s, e in exc if s is not None and e is not None]
    else:
        ranges = rules_by_weekday.get(day.weekday(), [])
    out = []
    for s, e in sorted(ranges):
        a, b = local_to_utc(day, s, tz), local_to_utc(day, e, tz)
        if b > a:
            out.append((a, b))
    return out


def _dates(date_from: dt.date, date_to: dt.date) -> Iterable[dt.date]:
    d = date_from
    while d <= date_to:
        yield d
        d += dt.timedelta(days=1)


def _ts(value: dt.datetime) -> int:
    return int(value.timestamp())


def _from_ts(t: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=t)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


class _Usage:
    """Seats used over time: sum of quantities of blocks overlapping a query block.
    Works on integer epoch seconds (the grid loop is the hot path of slot computation)."""

    def __init__(self, occupants: Iterable[Occupant]) -> None:
        rows = sorted((o.block_start, o.block_end, o.quantity) for o in occupants)
        self.starts = [r[0] for r in rows]
        self.rows = rows
        self.max_len = max((r[1] - r[0] for r in rows), default=0)

    def used(self, a: int, b: int) -> int:
        if not self.rows:
            return 0
        starts = self.starts
        hi = bisect.bisect_left(starts, b)
        if hi == 0:
            return 0
        lo = bisect.bisect_left(starts, a - self.max_len, 0, hi)
        total = 0
        rows = self.rows
        for i in range(lo, hi):
            if rows[i][1] > a:
                total += rows[i][2]
        return total


def compute_slots(
    bookable: Bookable,
    *,
    date_from: dt.date,
    date_to: dt.date,
    now: dt.datetime,
    rules: Sequence[AvailabilityRule] = (),
    exceptions: Sequence[AvailabilityException] = (),
    sessions: Sequence[EventSession] = (),
    occupants: Sequence[Occupant] = (),
    capacity: int | None = None,
    limit: int | None = None,
    include_full: bool = False,  # waitlist (issue 24): full slots too, with remaining 0
) -> list[SlotView]:
    """Pure slot computation over preloaded rows (the rules are in the module docstring).

    `occupants`: active bookings of this bookable and (kind=service) of the provider's other
    services overlapping the range. Rows may be ORM objects or result rows with the same
    attribute names. `limit`: stop after that many slots (search only needs one)."""
    tz = zoneinfo.ZoneInfo(bookable.timezone)
    earliest = now + dt.timedelta(minutes=bookable.min_notice_minutes)
    latest = now + dt.timedelta(days=bookable.max_advance_days)
    excs_by_date: dict[dt.date, list] = defaultdict(list)
    for e in exceptions:
        excs_by_date[e.date].append((e.closed, e.start_time, e.end_time))
    out: list[SlotView] = []
    if bookable.kind == "event":
        used_by_session: dict[int, int] = defaultdict(int)
        for o in occupants:
            if o.session_id is not None and o.bookable_id == bookable.id:
                used_by_session[o.session_id] += o.quantity
        lo, hi = day_bounds(date_from, date_to, tz)
        for sess in sorted(sessions, key=lambda x: x.start_at):
            if sess.is_cancelled or not (lo <= sess.start_at < hi):
                continue
            if sess.start_at < earliest or sess.start_at > latest:
                continue
            local_day = sess.start_at.astimezone(tz).date()
            if any(closed for closed, _s, _e in excs_by_date.get(local_day, [])):
                continue
            remaining = sess.capacity - used_by_session.get(sess.id, 0)  # type: ignore[arg-type]
            if remaining > 0 or include_full:
                out.append(SlotView(sess.start_at, sess.end_at, max(remaining, 0)))
                if limit is not None and len(out) >= limit:
                    break
        return out
    rules_by_wd: dict[int, list[tuple[dt.time, dt.time]]] = defaultdict(list)
    for r in rules:
        rules_by_wd[r.weekday].append((r.start_time, r.end_time))
    cap = capacity if capacity is not None else bookable.capacity
    own = _Usage(o for o in occupants if o.bookable_id == bookable.id)
    other = _Usage(Occupant(o.bookable_id, None, o.block_start, o.block_end, 1)
                   for o in occupants if o.bookable_id != bookable.id)
    dur_td = dt.timedelta(minutes=bookable.duration_minutes)
    has_other = bool(other.rows)
    dur = bookable.duration_minutes * 60
    before = bookable.buffer_before_minutes * 60
    after = bookable.buffer_after_minutes * 60
    earliest_t, latest_t = math.ceil(earliest.timestamp()), _ts(latest)
    for day in _dates(date_from, date_to):
        for r_start, r_end in open_ranges(day, tz, rules_by_wd, excs_by_date):
            t, end = _ts(r_start), _ts(r_end)
            if t < earliest_t:  # jump over the past in whole steps
                t += -(-(earliest_t - t) // dur) * dur
            while t + dur <= end and t <= latest_t:
                a, b = t - before, t + dur + after
                if not (has_other and other.used(a, b)):
                    remaining = cap - own.used(a, b)
                    if remaining > 0 or include_full:
                        start = _from_ts(t)
                        out.append(SlotView(start, start + dur_td, max(remaining, 0)))
                        if limit is not None and len(out) >= limit:
                            return out
                t += dur
    return out


@dataclass(frozen=True)
class SlotShape:
    """Where a requested start lands: its end, its block (buffers) and, for events, the session."""

    start: dt.datetime
    end: dt.datetime
    block_start: dt.datetime
    block_end: dt.datetime
    capacity: int
    session_id: int | None


def shape_at(b: Any, start: dt.datetime) -> SlotShape:
    """The slot a room/service would have at `start` (its end and buffered block); whether
    it is one of the bookable's slots is `starts_slot`'s question."""
    dur = dt.timedelta(minutes=b.duration_minutes)
    return SlotShape(start, start + dur, start - dt.timedelta(minutes=b.buffer_before_minutes),
                     start + dur + dt.timedelta(minutes=b.buffer_after_minutes), b.capacity, None)


def starts_slot(start: dt.datetime, duration: dt.timedelta, ranges: Iterable[tuple[dt.datetime, dt.datetime]]) -> bool:
    """Whether `start` is on the slot grid of one of the open `ranges` (and the slot fits)."""
    return any(a <= start and start + duration <= z and (start - a) % duration == dt.timedelta(0)
               for a, z in ranges)


def check_booking_window(b: Bookable, start: dt.datetime, now: dt.datetime) -> None:
    """NotAvailable when `start` is past, inside the minimum notice or beyond the maximum advance."""
    if start < now:
        raise NotAvailable(N_("This time is in the past."))
    if start < now + dt.timedelta(minutes=b.min_notice_minutes):
        raise NotAvailable(Np_("This service must be booked at least {minutes} minute in advance.",
                               "This service must be booked at least {minutes} minutes in advance.", "minutes"),
                           minutes=b.min_notice_minutes)
    if start > now + dt.timedelta(days=b.max_advance_days):
        raise NotAvailable(Np_("This service cannot be booked more than {days} day in advance.",
                               "This service cannot be booked more than {days} days in advance.", "days"),
                           days=b.max_advance_days)


def bookings_outside_hours(b: Bookable, rules: Sequence[AvailabilityRule], exceptions: Sequence[AvailabilityException],
                           sessions: Sequence[EventSession], bookings: Sequence[Booking], *,
                           now: dt.datetime) -> list[Booking]:
    """The active future bookings that the given hours (or sessions) no longer cover."""
    tz = zoneinfo.ZoneInfo(b.timezone)
    rules_by_wd: dict[int, list] = defaultdict(list)
    for r in rules:
        rules_by_wd[r.weekday].append((r.start_time, r.end_time))
    excs_by_date: dict[dt.date, list] = defaultdict(list)
    for e in exceptions:
        excs_by_date[e.date].append((e.closed, e.start_time, e.end_time))
    live_sessions = {x.id for x in sessions if not x.is_cancelled}
    out = []
    for bk in bookings:
        if not is_active(bk.status, bk.hold_expires_at, now) or bk.end_at <= now:
            continue
        day = bk.start_at.astimezone(tz).date()
        if b.kind == "event":
            closed = any(c for c, _s, _e in excs_by_date.get(day, []))
            if closed or (bk.session_id is not None and bk.session_id not in live_sessions):
                out.append(bk)
            continue
        ranges = open_ranges(day, tz, rules_by_wd, excs_by_date)
        if not any(a <= bk.start_at and bk.end_at <= z for a, z in ranges):
            out.append(bk)
    return out
