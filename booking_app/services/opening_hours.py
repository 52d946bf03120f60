"""Opening hours of a provider's rooms and services, merged per local date of one zone.

The provider's calendars show them behind the bookings (week bands, a month's free time).
Each bookable's weekly hours and date exceptions are read through the catalog (which checks
who may see them) and expanded by `slots.open_ranges`, the same rule the slots use. Events have sessions, not hours, and are left out.
"""
from __future__ import annotations

import datetime as dt

from booking_app.services import catalog
from booking_app.services.actors import Actor
from booking_app.services.slots import open_ranges
from booking_app.services.validation import parse_end_time, parse_hhmm, zone

Span = tuple[dt.datetime, dt.datetime]
MAX_BOOKABLES = 50  # the provider's bookables read (catalog.search_bookables' page)


def _bookable_spans(actor: Actor, bookable_id: int, timezone: str, first: dt.date, last: dt.date) -> list[Span]:
    """The open ranges (UTC) of one bookable on the local dates `first`…`last` of its zone."""
    av = catalog.get_availability(bookable_id=bookable_id, actor=actor)
    rules: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for r in av.weekly:  # (an end may be "24:00": the next midnight)
        rules.setdefault(r.weekday, []).append((parse_hhmm(r.start, field="start"), parse_end_time(r.end, field="end")))
    excs: dict[dt.date, list[tuple[bool, dt.time | None, dt.time | None]]] = {}
    for e in av.exceptions:
        excs.setdefault(e.date, []).append((e.closed, parse_hhmm(e.start, field="start") if e.start else None,
                                            parse_end_time(e.end, field="end") if e.end else None))
    bookable_zone = zone(timezone)
    spans: list[Span] = []
    day = first
    while day <= last:
        spans += open_ranges(day, bookable_zone, rules, excs)
        day += dt.timedelta(days=1)
    return spans


def provider_open_hours(*, actor: Actor, provider_id: int, date_from: dt.date, date_to: dt.date,
                        tz: str) -> dict[dt.date, list[Span]]:
    """date → the sorted, non-overlapping open (start, end) in `tz` of the provider's own
    rooms and services, for every local date `date_from`…`date_to` of `tz` (the hours of
    all of them merged; a range past midnight is split at it)."""
    view_zone = zone(tz)
    views, _total = catalog.search_bookables(actor=actor, provider_id=provider_id, limit=MAX_BOOKABLES)
    spans: list[Span] = []
    for v in views:
        if v.kind != "event":
            # a day either side: a bookable's zone shifts its hours across `tz`'s midnight
            spans += _bookable_spans(actor, v.id, v.timezone, date_from - dt.timedelta(days=1),
                                     date_to + dt.timedelta(days=1))
    out: dict[dt.date, list[Span]] = {}
    day = date_from
    while day <= date_to:
        lo = dt.datetime.combine(day, dt.time(0), tzinfo=view_zone)
        hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=view_zone)
        merged: list[list[dt.datetime]] = []
        for a, b in sorted((max(a.astimezone(view_zone), lo), min(b.astimezone(view_zone), hi)) for a, b in spans):
            if b <= a:
                continue
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out[day] = [(a, b) for a, b in merged]
        day += dt.timedelta(days=1)
    return out
