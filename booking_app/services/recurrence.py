"""Recurrence rules of a booking series (issue 24, point 3): parse a hostile
`{frequency, interval, count | until, by, mode}` mapping and expand it into occurrence
starts. Pure: no database, no clock — the caller passes the zone, the horizon and the limit.

Occurrences keep the first one's local wall time in the bookable's zone, so 10:00 stays
10:00 across DST changes (the UTC instant moves by an hour). Dates that don't exist (a
monthly "31st" in April, a "5th Tuesday" in a month with four) are left out and don't count
towards `count`, as in RFC 5545. More in docs/series.md.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from booking_app.i18n import N_, Np_
from booking_app.services.errors import InvalidInput
from booking_app.services.slots import local_to_utc
from booking_app.services.validation import parse_date, parse_int

FREQUENCIES = ("daily", "weekly", "monthly")
MODES = ("all_or_nothing", "skip_taken")
MONTHLY_BY = ("date", "weekday")
MAX_INTERVAL = 52
_FIELDS = frozenset({"frequency", "interval", "count", "until", "mode", "by"})

BAD_CHOICE = N_("Choose one of the offered options.")
COUNT_OR_UNTIL = N_("Give either a number of occurrences or an end date, not both.")
COUNT_OR_UNTIL_MISSING = N_("Give a number of occurrences or an end date.")
TOO_MANY = Np_("A series has at most {max} occurrence.", "A series has at most {max} occurrences.", "max")
BEYOND_HORIZON = Np_("The series reaches beyond the booking horizon ({days} day ahead).",
                     "The series reaches beyond the booking horizon ({days} days ahead).", "days")
UNTIL_BEFORE_START = N_("The end date must not be before the first occurrence.")
UNKNOWN_FIELD = N_("Unknown field.")


@dataclass(frozen=True)
class Recurrence:
    """A validated recurrence rule (exactly one of `count`, `until`)."""

    frequency: str
    interval: int = 1
    count: int | None = None
    until: dt.date | None = None
    mode: str = "all_or_nothing"
    by: str = "date"

    def as_dict(self) -> dict[str, Any]:
        return {"frequency": self.frequency, "interval": self.interval, "count": self.count,
                "until": self.until.isoformat() if self.until else None, "mode": self.mode, "by": self.by}


def _choice(value: Any, choices: tuple[str, ...], *, field: str, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(BAD_CHOICE, field=field)
    return value


def parse(raw: Any, *, max_count: int) -> Recurrence:
    """A recurrence mapping (API body, UI form) → Recurrence; InvalidInput (field
    `recurrence.<name>`) for anything else: unknown keys, wrong types, out-of-range numbers,
    both or neither of count/until, a count above `max_count`."""
    if isinstance(raw, Recurrence):
        raw = raw.as_dict()
    if not isinstance(raw, Mapping):
        raise InvalidInput(field="recurrence")
    for key in raw:
        if key not in _FIELDS:
            raise InvalidInput(UNKNOWN_FIELD, field="recurrence")
    frequency = _choice(raw.get("frequency"), FREQUENCIES, field="recurrence.frequency")
    interval = parse_int(1 if raw.get("interval") is None else raw.get("interval"),
                         field="recurrence.interval", lo=1, hi=MAX_INTERVAL)
    mode = _choice(raw.get("mode"), MODES, field="recurrence.mode", default="all_or_nothing")
    by = _choice(raw.get("by"), MONTHLY_BY, field="recurrence.by", default="date")
    count_raw, until_raw = raw.get("count"), raw.get("until")
    if count_raw is not None and until_raw is not None:
        raise InvalidInput(COUNT_OR_UNTIL, field="recurrence.count")
    if count_raw is None and until_raw is None:
        raise InvalidInput(COUNT_OR_UNTIL_MISSING, field="recurrence.count")
    count = until = None
    if count_raw is not None:
        count = parse_int(count_raw, field="recurrence.count", lo=1, hi=max_count)
    else:
        until = parse_date(until_raw, field="recurrence.until")
    return Recurrence(frequency=frequency, interval=interval, count=count, until=until, mode=mode, by=by)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    m = month - 1 + n
    return year + m // 12, m % 12 + 1


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> dt.date | None:
    """The `nth` (1..5) `weekday` of a month, or None when the month has no such day."""
    first = dt.date(year, month, 1)
    day = 1 + (weekday - first.weekday()) % 7 + 7 * (nth - 1)
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _local_date(first: dt.date, rule: Recurrence, k: int) -> dt.date | None:
    """The k-th step's local date (None: no such date that month)."""
    if rule.frequency == "daily":
        return first + dt.timedelta(days=k * rule.interval)
    if rule.frequency == "weekly":
        return first + dt.timedelta(weeks=k * rule.interval)
    year, month = _add_months(first.year, first.month, k * rule.interval)
    if rule.by == "weekday":
        return _nth_weekday(year, month, first.weekday(), (first.day - 1) // 7 + 1)
    try:
        return dt.date(year, month, first.day)
    except ValueError:
        return None


def expand(start: dt.datetime, rule: Recurrence, tz: zoneinfo.ZoneInfo, *, horizon: dt.datetime,
           horizon_days: int, max_count: int) -> list[dt.datetime]:
    """The occurrence starts (aware UTC, ascending), the first being `start`.

    Each keeps `start`'s local wall time in `tz` (a time in a spring-forward gap moves
    forward, as slots do: `slots.local_to_utc`). `horizon`: no occurrence may start after it
    (the bookable's max advance) — InvalidInput(BEYOND_HORIZON, `horizon_days`); more than
    `max_count` occurrences → InvalidInput(TOO_MANY)."""
    local = start.astimezone(tz)
    first, wall = local.date(), local.time().replace(tzinfo=None, fold=0)
    if rule.until is not None:
        if rule.until < first:
            raise InvalidInput(UNTIL_BEFORE_START, field="recurrence.until")
        if local_to_utc(rule.until, wall, tz) > horizon:
            raise InvalidInput(BEYOND_HORIZON, field="recurrence.until", days=horizon_days)
    out: list[dt.datetime] = []
    want = rule.count if rule.count is not None else max_count + 1
    k = 0
    # (a month without the date is skipped; a run of 12 such steps can't happen for a valid
    # date, so the loop ends within want + a bounded number of empty steps)
    while len(out) < want and k <= 13 * (max_count + 1):
        day = _local_date(first, rule, k)
        k += 1
        if day is None:
            continue
        if rule.until is not None and day > rule.until:
            break
        at = start if not out else local_to_utc(day, wall, tz)
        if at > horizon:
            raise InvalidInput(BEYOND_HORIZON, field="recurrence.count", days=horizon_days)
        out.append(at.astimezone(dt.timezone.utc))
    if len(out) > max_count:
        raise InvalidInput(TOO_MANY, field="recurrence.until", max=max_count)
    return out
