"""The live dashboard's chart series: bookings made, net revenue (per currency), outbox
backlog, requests/s and p95 latency, per minute over the last hour or per quarter hour over
the last day. The one place these series are computed (the dashboard page and
`GET /api/reports/dashboard/series` both call `dashboard_series`).

Periods are wall-clock UTC periods (minute / quarter hour); the last one is the current,
unfinished period. Database figures: one grouped query each over the window (bookings by
`created_at` and paid payments by `created_at` read through their covering indexes; the
money movements are those of the revenue report, `reports.money_lines`). Request figures:
`request_stats.request_history` (every app process with REDIS_URL set, else this one).

Outbox backlog at the end of each period = messages waiting then: notifications that are
waiting now or were sent, created by then and not yet sent then (failed and cancelled
messages are left out: when they stopped waiting isn't recorded).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, cast, func, literal, literal_column, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import Booking, Notification, NotificationStatus, utcnow
from booking_app.models.base import UTCDateTime
from booking_app.services import reports, request_stats
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, InvalidInput

#: window name → (period length in seconds, number of periods)
WINDOWS: dict[str, tuple[int, int]] = {"hour": (60, 60), "day": (900, 96)}
WAITING_STATUSES = (NotificationStatus.pending.value, NotificationStatus.sending.value)


@dataclass(frozen=True)
class Span:
    """[start_utc, end_utc) of a series window (what `reports.money_lines` needs of a period)."""
    start_utc: dt.datetime
    end_utc: dt.datetime

    def within(self, column) -> ColumnElement[bool]:
        return and_(column >= self.start_utc, column < self.end_utc)


def _period_index(s: Session, column, start: dt.datetime, seconds: int) -> ColumnElement:
    """Which period of the window (0, 1, …) a UTC timestamp column falls in, as SQL."""
    if db.is_postgres(s):
        return cast(func.floor(func.extract("epoch", column - literal(start, UTCDateTime())) / seconds), Integer)
    # SQLite stores naive UTC text: whole seconds since the start, integer division
    # (constants written literally: GROUP BY then matches the selected expression)
    offset = cast(func.strftime("%s", column), Integer) - literal_column(str(int(start.timestamp())))
    return offset / literal_column(str(int(seconds)))


def _as_int(value: Any) -> int:
    return int(value or 0)


def dashboard_series(*, actor: Actor, window: str = "hour", now: dt.datetime | None = None) -> dict[str, Any]:
    """The chart series of `window` ("hour": per minute, "day": per quarter hour), ending
    with the period that contains `now`. Admins only.

    Returns {window, period_seconds, start, end, periods: [UTC ISO start of each period],
    bookings: [count], revenue: [{currency, net_cents: [...]}], backlog: [count at each
    period's end (the last: now)], requests_per_second: [...], p95_ms: [... or None],
    requests_shared: bool (all app processes), generated_at}."""
    if actor is None or not actor.is_admin:
        raise Forbidden(N_("Only administrators can see reports."))
    if window not in WINDOWS:
        raise InvalidInput(N_("Unknown window {value}."), field="window", value=window)
    seconds, count = WINDOWS[window]
    now = now or utcnow()
    if now.tzinfo is None:
        raise InvalidInput(N_("The input is not valid."), field="now")
    now = now.astimezone(dt.timezone.utc)
    last = int(now.timestamp()) // seconds
    first = last - count + 1
    start = dt.datetime.fromtimestamp(first * seconds, dt.timezone.utc)
    end = dt.datetime.fromtimestamp((last + 1) * seconds, dt.timezone.utc)
    span = Span(start, end)
    bookings = [0] * count
    revenue: dict[str, list[int]] = {}
    created = [0] * count
    sent = [0] * count
    with db.read_session() as s:
        idx = _period_index(s, Booking.created_at, start, seconds)
        for row in s.execute(select(idx.label("i"), func.count(Booking.id).label("n"))
                             .where(span.within(Booking.created_at)).group_by(idx)):
            if 0 <= _as_int(row.i) < count:
                bookings[_as_int(row.i)] += _as_int(row.n)
        lines = union_all(*reports.money_lines(s, span)).subquery("lines")
        idx = _period_index(s, lines.c.ts, start, seconds)
        for row in s.execute(select(idx.label("i"), lines.c.currency,
                                    func.sum(lines.c.gross - lines.c.refund).label("net"))
                             .group_by(idx, lines.c.currency)):
            i = _as_int(row.i)
            if 0 <= i < count:
                revenue.setdefault(row.currency, [0] * count)[i] += _as_int(row.net)
        counted = or_(Notification.status.in_(WAITING_STATUSES), Notification.sent_at.is_not(None))
        waiting_now = _as_int(s.execute(select(func.count(Notification.id))
                                        .where(Notification.status.in_(WAITING_STATUSES))).scalar())
        events = union_all(
            select(Notification.created_at.label("ts"), literal(1).label("made"), literal(0).label("gone"))
            .where(counted, Notification.created_at >= start),
            select(Notification.sent_at.label("ts"), literal(0).label("made"), literal(1).label("gone"))
            .where(Notification.sent_at >= start),
        ).subquery("events")
        idx = _period_index(s, events.c.ts, start, seconds)
        for row in s.execute(select(idx.label("i"), func.sum(events.c.made).label("made"),
                                    func.sum(events.c.gone).label("gone")).group_by(idx)):
            i = _as_int(row.i)
            if 0 <= i < count:
                created[i] += _as_int(row.made)
                sent[i] += _as_int(row.gone)
    # backlog(end of period i) = waiting now − made after it + sent after it
    backlog = [0] * count
    level = waiting_now
    for i in range(count - 1, -1, -1):
        backlog[i] = max(0, level)
        level += sent[i] - created[i]
    history = request_stats.request_history(seconds, first, count, now.timestamp())
    points = history["points"]
    return {
        "window": window,
        "period_seconds": seconds,
        "start": _iso(start),
        "end": _iso(end),
        "periods": [_iso(start + dt.timedelta(seconds=seconds * i)) for i in range(count)],
        "bookings": bookings,
        "revenue": [{"currency": c, "net_cents": revenue[c]} for c in sorted(revenue)],
        "backlog": backlog,
        "requests_per_second": [p["requests_per_second"] for p in points],
        "p95_ms": [p["p95_ms"] for p in points],
        "requests_shared": history["shared"],
        "generated_at": _iso(now),
    }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


__all__ = ["WINDOWS", "Span", "dashboard_series"]
