"""Report periods and the SQL that buckets rows by local day or by bookable, on PostgreSQL
and SQLite alike (services/reports.py builds the reports from these).

Periods: `date_from`/`date_to` are inclusive calendar dates in the report timezone, at most
MAX_RANGE_DAYS apart; they become the half-open UTC interval [date_from 00:00 tz,
date_to + 1 day 00:00 tz), which is what the indexed timestamp columns are filtered on.

Daily buckets in the report timezone: PostgreSQL `CAST(timezone('<tz>', ts) AS DATE)`;
SQLite has no time-zone database, so the local days' UTC bounds (or the UTC offsets in force
during the period) are computed in Python once (`day_grid`, `local_day`). Both are exact,
whatever the zone. Why the SQL takes these shapes: docs/performance.md ("Reports").
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Date, String, and_, case, cast, column, func, literal, select, text
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlmodel import Session

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import Bookable, Booking, BookingStatus, UTCDateTime
from booking_app.services import validation
from booking_app.services.errors import InvalidInput

MAX_RANGE_DAYS = 366
BOOKING_STATUSES = tuple(s.value for s in BookingStatus)
TZ_NAME_RE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")


@dataclass(frozen=True)
class Period:
    date_from: dt.date
    date_to: dt.date
    tz: str

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    @property
    def start_utc(self) -> dt.datetime:
        return local_midnight_utc(self.date_from, self.zone)

    @property
    def end_utc(self) -> dt.datetime:
        """Exclusive end: midnight after `date_to`."""
        return local_midnight_utc(self.date_to + dt.timedelta(days=1), self.zone)

    @property
    def days(self) -> list[dt.date]:
        n = (self.date_to - self.date_from).days + 1
        return [self.date_from + dt.timedelta(days=i) for i in range(n)]

    def within(self, column) -> ColumnElement[bool]:
        return and_(column >= self.start_utc, column < self.end_utc)

    def in_zone(self, tz: str) -> "Period":
        return Period(self.date_from, self.date_to, tz)


def local_midnight_utc(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone).astimezone(dt.timezone.utc)


def _parse_date(value: dt.date | str | None, field_name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value.strip():
        return validation.date(value, field=field_name)
    raise InvalidInput(N_("This field is required."), field=field_name)


def make_period(date_from: dt.date | str | None, date_to: dt.date | str | None, tz: str | None = None) -> Period:
    """Validate a report period: both dates, from ≤ to, at most 366 days, a known timezone."""
    start = _parse_date(date_from, "from")
    end = _parse_date(date_to, "to")
    tz = tz or "UTC"
    validation.timezone(tz, field="tz")
    if not TZ_NAME_RE.match(tz):
        raise InvalidInput(N_("Unknown time zone."), field="tz")
    for value, name in ((start, "from"), (end, "to")):
        validation.bounded_date(value, field=name)  # the dates any input may name
    if start > end:
        raise InvalidInput(N_("The start date must not be after the end date."), field="from")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(N_("The date range may span at most {max} days."), field="to", max=MAX_RANGE_DAYS)
    return Period(start, end, tz)


@functools.lru_cache(maxsize=256)
def _offset_segments(zone: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime) -> tuple[tuple[dt.datetime, int], ...]:
    """((utc instant from which it applies, utc offset in minutes), …) covering [start, end).
    Cached: a year takes a few milliseconds of zoneinfo look-ups, and reports ask again."""

    def offset(t: dt.datetime) -> int:
        return int(t.astimezone(zone).utcoffset().total_seconds() // 60)

    segments = [(start, offset(start))]
    t = start
    step = dt.timedelta(hours=6)
    while t < end:
        nxt = min(t + step, end)
        if offset(nxt) != offset(t):
            lo, hi = t, nxt  # offset(lo) != offset(hi): find the first second of the new offset
            while (hi - lo) > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if offset(mid) == offset(lo):
                    lo = mid
                else:
                    hi = mid
            segments.append((hi, offset(hi)))
        t = nxt
    return tuple(segments)


def _modifier(minutes: int) -> str:
    return f"{minutes:+d} minutes"


def local_day(session: Session, column, period: Period) -> ColumnElement:
    """The calendar date of a UTC timestamp column in the period's timezone, as SQL."""
    if db.is_postgres(session):
        tz = literal(period.tz, literal_execute=True)
        return cast(func.timezone(tz, column), Date)
    segments = _offset_segments(period.zone, period.start_utc, period.end_utc)
    if len(segments) == 1:
        minutes = segments[0][1]
        return func.date(column) if minutes == 0 else func.date(column, _modifier(minutes))
    whens = [(column < literal(segments[i + 1][0], UTCDateTime()), _modifier(segments[i][1]))
             for i in range(len(segments) - 1)]
    return func.date(column, case(*whens, else_=_modifier(segments[-1][1])))


def plain(session: Session, column) -> ColumnElement:
    """`+column` on SQLite: its documented way to keep a term from using an index (here:
    the single-column status indexes, which would make the planner fetch most table rows
    one by one instead of range-scanning a covering index). The column on PostgreSQL."""
    if db.is_postgres(session):
        return column
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _day_bounds(period: Period) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(local day, UTC start, UTC end) for every day of the period in its timezone; the
    intervals are half-open and adjacent (a DST change makes a day 23 or 25 hours long)."""
    zone = period.zone
    days = period.days
    edges = [local_midnight_utc(d, zone) for d in days] + [period.end_utc]
    return [(d.isoformat(), edges[i], edges[i + 1]) for i, d in enumerate(days)]


# Aggregating per day or per bookable: GROUP BY on PostgreSQL; on SQLite the groups are listed
# (the period's days, the bookables) with one correlated scalar subquery each (docs/performance.md).

def day_grid(session: Session, period: Period):
    """SQLite: the period's days as a CTE `days(day, lo, hi)` with each day's half-open UTC
    interval, as stored timestamps are (text). The days travel as one JSON parameter (a
    VALUES list of a year is 1,100 bind parameters, slower to build than the query runs)."""
    dialect = session.get_bind().dialect
    stored = UTCDateTime().dialect_impl(dialect).bind_processor(dialect) or str
    payload = json.dumps([[d, stored(lo), stored(hi)] for d, lo, hi in _day_bounds(period)])
    sql = ("SELECT json_extract(value, '$[0]') AS day, json_extract(value, '$[1]') AS lo, "
           "json_extract(value, '$[2]') AS hi FROM json_each(:grid)")
    return (text(sql).bindparams(grid=payload)
            .columns(column("day", String()), column("lo", UTCDateTime()), column("hi", UTCDateTime())).cte("days"))


def per_day(session: Session, period: Period, ts, measures: list, *where) -> dict[str, list]:
    """{local day: [aggregate values]} of the rows whose timestamp `ts` falls on each day
    of the period (days without rows may be missing, or have a count of 0). On SQLite,
    `ts` must lead an index that covers the measured columns."""
    if db.is_postgres(session):
        day = local_day(session, ts, period).label("day")
        stmt = select(day, *measures).where(period.within(ts), *where).group_by(day)
        return {day_str(r[0]): list(r[1:]) for r in session.execute(stmt)}
    grid = day_grid(session, period)
    cell = select(func.json_array(*measures)).where(ts >= grid.c.lo, ts < grid.c.hi, *where).scalar_subquery()
    return {r.day: json.loads(r.cell) for r in session.execute(select(grid.c.day, cell.label("cell")))}


def seconds_between(session: Session, start_col, end_col) -> ColumnElement:
    """end − start in seconds, as SQL."""
    if db.is_postgres(session):
        return func.extract("epoch", end_col - start_col)
    return (func.julianday(end_col) - func.julianday(start_col)) * 86400.0


def day_str(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return str(value)


def as_int(value: Any) -> int:
    return int(value or 0)


def ratio(num: float, den: float, digits: int = 4) -> float | None:
    return round(num / den, digits) if den else None


def status_sums() -> list:
    return [func.sum(case((Booking.status == s, 1), else_=0)).label(s) for s in BOOKING_STATUSES]


def value_at(values_: list, i: int) -> Any:
    return values_[i] if i < len(values_) else None


def per_bookable(session: Session, period: Period, ts, measures: list, *where) -> list[tuple[int, str, str, list]]:
    """[(bookable id, name, kind, [aggregate values])] over the bookings whose `ts` is in
    the period (bookables without such bookings may be missing, or have a count of 0).
    On SQLite by start_at: one range scan per bookable of the covering (bookable, start)
    index; by created_at: grouped from a range scan of the covering created_at index."""
    if db.is_postgres(session) or ts is not Booking.start_at:
        grouped = (select(Booking.bookable_id.label("bookable_id"), *measures).where(period.within(ts), *where)
                   .group_by(Booking.bookable_id).subquery("per_bookable"))
        stmt = (select(Bookable.id, Bookable.name, Bookable.kind, *list(grouped.c)[1:])
                .join(grouped, grouped.c.bookable_id == Bookable.id))
        return [(r[0], r[1], r[2], list(r[3:])) for r in session.execute(stmt)]
    cell = (select(func.json_array(*measures)).where(Booking.bookable_id == Bookable.id, period.within(ts), *where)
            .scalar_subquery())
    return [(r.id, r.name, r.kind, json.loads(r.cell))
            for r in session.execute(select(Bookable.id, Bookable.name, Bookable.kind, cell.label("cell")))]




def valid_zone_name(tz: str) -> bool:
    try:
        zoneinfo.ZoneInfo(tz)
        return bool(TZ_NAME_RE.match(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
