"""iCalendar feed → busy intervals (UTC), pure: no database, no network.

- Every VEVENT that is busy (not TRANSP:TRANSPARENT, not STATUS:CANCELLED) takes time.
- Recurrence: RRULE (any number, COUNT/UNTIL/BY* through dateutil), RDATE, EXDATE; an
  override (same UID + RECURRENCE-ID) replaces the occurrence it names — moved, cancelled
  or made transparent.
- Time zones: TZID (IANA, Windows names and VTIMEZONE blocks, as icalendar resolves them)
  keep their wall time across DST (a weekly 10:00 Europe/Berlin stays 10:00 local);
  floating times and all-day dates are in `zone` (the bookable's or provider's zone), an
  all-day event from local midnight to local midnight.
- Output: merged, cut into pieces of at most MAX_PIECE, inside [window_start, window_end).
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import icalendar
from dateutil.rrule import rruleset, rrulestr
from icalendar import vRecur

from booking_app.models.calendar_subscription import MAX_BUSY_PIECE

UTC = dt.timezone.utc
MAX_PIECE = MAX_BUSY_PIECE  # (the overlap queries rely on it)
#: bounds of the work one feed may cause
MAX_OCCURRENCE_STEPS = 200_000
MAX_PIECES = 20_000

Interval = tuple[dt.datetime, dt.datetime]


class FeedError(ValueError):
    """The feed can't be read as iCalendar (the message is shown as the sync's error)."""


def _aware(value: Any, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A DTSTART-like value as an aware datetime: dates at local midnight, floating in `zone`."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return dt.datetime.combine(value, dt.time(0), tzinfo=zone)


def _like(value: Any, start: Any, zone: zoneinfo.ZoneInfo) -> Any:
    """`value` (an EXDATE, RDATE, RECURRENCE-ID, UNTIL) in the form of the series' `start`:
    naive for dates and floating times, aware otherwise (what dateutil compares)."""
    if isinstance(value, tuple):  # an RDATE period: its start
        value = value[0]
    naive = not isinstance(start, dt.datetime) or start.tzinfo is None
    clock = start.time() if isinstance(start, dt.datetime) else dt.time(0)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, clock)
    if naive:
        return value.astimezone(zone).replace(tzinfo=None) if value.tzinfo is not None else value
    return value if value.tzinfo is not None else value.replace(tzinfo=start.tzinfo)


def _values(prop: Any) -> list[Any]:
    """The date values of a (possibly repeated) EXDATE/RDATE property."""
    if prop is None:
        return []
    out = []
    for item in prop if isinstance(prop, list) else [prop]:
        out += [d.dt for d in getattr(item, "dts", [])]
    return out


def _busy(ev: Any) -> bool:
    return (str(ev.get("TRANSP", "OPAQUE")).upper() != "TRANSPARENT"
            and str(ev.get("STATUS", "")).upper() != "CANCELLED")


def _length(ev: Any, start: Any) -> dt.timedelta | None:
    """DTEND - DTSTART, or DURATION; all-day default one day. None: no time taken."""
    if ev.get("DTEND") is not None:
        end = ev.decoded("DTEND")
        if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
            if (start.tzinfo is None) != (end.tzinfo is None):
                end = end.replace(tzinfo=start.tzinfo)
            length = end - start if start.tzinfo is None or end.tzinfo is None else (
                end.astimezone(UTC) - start.astimezone(UTC))
        elif isinstance(start, dt.datetime):
            length = dt.datetime.combine(end, dt.time(0), tzinfo=start.tzinfo) - start
        else:
            length = dt.timedelta(days=(_day(end) - _day(start)).days)
    elif ev.get("DURATION") is not None:
        length = ev.decoded("DURATION")
    else:
        length = dt.timedelta(days=1) if not isinstance(start, dt.datetime) else dt.timedelta(0)
    return length if length > dt.timedelta(0) else None


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _end(start_repr: Any, length: dt.timedelta, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """An occurrence's end: whole days of an all-day event end at local midnight (23 or 25
    hours across DST), timed ones add the length to the wall time."""
    if isinstance(start_repr, dt.date) and not isinstance(start_repr, dt.datetime):
        return _aware(start_repr + dt.timedelta(days=length.days), zone) + (length - dt.timedelta(days=length.days))
    return _aware(start_repr, zone) + length


def _series(ev: Any, start: Any, skip: Iterable[Any], zone: zoneinfo.ZoneInfo) -> Iterable[Any]:
    """The occurrence starts of a master VEVENT, in the form of `start` (dates for all-day)."""
    all_day = not isinstance(start, dt.datetime)
    base = dt.datetime.combine(start, dt.time(0)) if all_day else start
    rules = ev.get("RRULE")
    rs = rruleset()
    rs.rdate(base)
    for rule in (rules if isinstance(rules, list) else [rules] if rules is not None else []):
        parts = {k: v for k, v in rule.items() if k != "UNTIL"}
        try:
            r = rrulestr(vRecur(parts).to_ical().decode(), dtstart=base)
            if rule.get("UNTIL"):
                until = _like(rule["UNTIL"][0], base, zone)
                if not isinstance(rule["UNTIL"][0], dt.datetime):
                    until = until.replace(hour=23, minute=59, second=59)
                r = r.replace(until=until)
        except (ValueError, TypeError) as exc:
            raise FeedError(f"recurrence rule not understood: {exc}") from None
        rs.rrule(r)
    for value in _values(ev.get("RDATE")):
        rs.rdate(_like(value, base, zone))
    for value in _values(ev.get("EXDATE")):
        rs.exdate(_like(value, base, zone))
    for value in skip:
        rs.exdate(_like(value, base, zone))
    for occ in rs:
        yield occ.date() if all_day else occ


def busy_intervals(data: bytes | str, *, zone: zoneinfo.ZoneInfo, window_start: dt.datetime,
                   window_end: dt.datetime) -> list[Interval]:
    """The busy time of an iCalendar feed within [window_start, window_end) (aware UTC),
    merged and cut into pieces of at most MAX_PIECE. Raises FeedError."""
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError and friends on broken input
        raise FeedError(f"not an iCalendar feed: {str(exc)[:200]}") from None
    if getattr(cal, "name", "") != "VCALENDAR":
        raise FeedError("not an iCalendar feed: no VCALENDAR")
    masters: list[Any] = []
    overrides: dict[str, list[Any]] = defaultdict(list)
    for ev in cal.walk("VEVENT"):
        if ev.get("DTSTART") is None:
            continue
        if ev.get("RECURRENCE-ID") is not None:
            overrides[str(ev.get("UID", ""))].append(ev)
        else:
            masters.append(ev)
    found: list[Interval] = []
    steps = 0

    def add(start_repr: Any, length: dt.timedelta) -> bool:
        """Keep one occurrence; False once past the window (a series is sorted)."""
        begin = _aware(start_repr, zone).astimezone(UTC)
        if begin >= window_end:
            return False
        end = _end(start_repr, length, zone).astimezone(UTC)
        if end > window_start:
            found.append((max(begin, window_start), min(end, window_end)))
        return True

    try:
        for ev in masters:
            start = ev.decoded("DTSTART")
            length = _length(ev, start)
            if length is None or not _busy(ev):  # (its overrides decide for themselves)
                continue
            moved = [o.decoded("RECURRENCE-ID") for o in overrides.get(str(ev.get("UID", "")), [])]
            if not ev.get("RRULE") and not ev.get("RDATE"):
                if not any(_like(m, start, zone) == _like(start, start, zone) for m in moved):
                    add(start, length)
                continue
            for occ in _series(ev, start, moved, zone):
                steps += 1
                if steps > MAX_OCCURRENCE_STEPS:
                    raise FeedError(f"too many occurrences to expand (over {MAX_OCCURRENCE_STEPS})")
                if not add(occ, length):
                    break
        for evs in overrides.values():
            for ev in evs:
                start = ev.decoded("DTSTART")
                length = _length(ev, start)
                if length is not None and _busy(ev):
                    add(start, length)
    except FeedError:
        raise
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        raise FeedError(f"event not understood: {str(exc)[:200]}") from None
    out = pieces(found)
    if len(out) >= MAX_PIECES:
        raise FeedError(f"too many busy times (over {MAX_PIECES} in the booking horizon)")
    return out


def pieces(intervals: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping intervals, then cut them into pieces of at most MAX_PIECE."""
    merged: list[list[dt.datetime]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out: list[Interval] = []
    for a, b in merged:
        while a < b and len(out) < MAX_PIECES:
            z = min(b, a + MAX_PIECE)
            out.append((a, z))
            a = z
    return out
