"""Calendar arithmetic of the provider's bookings calendar: months, the weeks that show
a month, and free time (open spans minus busy ones), all with aware datetimes."""
from __future__ import annotations

import datetime as dt

from babel.dates import format_skeleton

from booking_app.i18n import babel_locale

Span = tuple[dt.datetime, dt.datetime]


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` months after `day`'s month (before, if negative);
    ValueError beyond the years 1–9999."""
    index = day.year * 12 + day.month - 1 + int(months)
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, 1)


def month_grid(month: dt.date) -> list[dt.date]:
    """The dates of the whole weeks (Monday–Sunday) that cover `month`'s month, in order:
    4, 5 or 6 weeks of 7 days, with the adjacent months' days that complete them (the
    calendar's very last week stops at 31 December 9999)."""
    first = month.replace(day=1)
    try:
        last = add_months(first, 1) - dt.timedelta(days=1)
    except ValueError:  # December 9999
        last = dt.date.max
    start = first - dt.timedelta(days=first.weekday())  # 1 January of year 1 is a Monday
    days = (last - start).days + 1 + min(6 - last.weekday(), (dt.date.max - last).days)
    return [start + dt.timedelta(days=i) for i in range(days)]


def span_minutes(spans: list[Span]) -> int:
    """The length of `spans` in whole minutes, on the clock (a 23- or 25-hour DST day counts
    as such: aware datetimes of one zone are compared in UTC, not by their wall time)."""
    utc = dt.timezone.utc
    return int(sum((b.astimezone(utc) - a.astimezone(utc)).total_seconds() for a, b in spans) // 60)


def free_spans(open_spans: list[Span], busy: list[Span]) -> list[Span]:
    """`open_spans` (sorted, not overlapping) minus every `busy` span (any order, may
    overlap or reach outside): the free spans, in the open spans' timezone."""
    utc = dt.timezone.utc
    # in UTC: aware datetimes of one zone compare by wall time, which a DST fold repeats
    taken = sorted(span for span in ((a.astimezone(utc), b.astimezone(utc)) for a, b in busy) if span[1] > span[0])
    out: list[Span] = []
    for a, b in open_spans:
        tz = a.tzinfo
        cursor, end = a.astimezone(utc), b.astimezone(utc)
        for x, y in taken:
            if y <= cursor:
                continue
            if x >= end:
                break
            if x > cursor:
                out.append((cursor.astimezone(tz), x.astimezone(tz)))
            cursor = max(cursor, y)
            if cursor >= end:
                break
        if cursor < end:
            out.append((cursor.astimezone(tz), end.astimezone(tz)))
    return out


def month_title(month: dt.date, locale: str) -> str:
    """"December 2025" in the locale's own order and words (first letter capitalised)."""
    text = format_skeleton("yMMMM", month, locale=babel_locale(locale))
    return text[:1].upper() + text[1:]
