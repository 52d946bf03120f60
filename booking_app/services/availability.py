"""Slot queries: read the rows the slot math (services/slots.py) needs, in as few
statements as possible, and hand them to it.

- `slots(bookable_id=, date_from=, date_to=)`: the free slots of one bookable (the calendar).
- `bookables_with_free_slot` / `free_on_day`: which of many bookables have a free slot on a
  date (search by date), batched: a few IN queries per chunk, never one per bookable.
- `resolve_start*`, `seats_used`, `slot_queries_pg`: the booking service's checks of one
  requested start (prebuilt statements; see docs/performance.md for why they look so).
- Busy times from outside calendars (services/calendar_sync.py) are read with the bookings:
  each busy interval of the provider (all their bookables, or the one it names) is an
  occupant of no bookable (BUSY_BOOKABLE), which the slot math counts as taking the whole
  capacity; the usage statements fold it into their "other" column (an EXISTS).
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (BigInteger, Integer, and_, any_, bindparam, case, cast, exists, func, literal, literal_column,
                        null, or_, tuple_, union_all)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import (
    ACTIVE_STATUSES,
    AvailabilityException,
    AvailabilityRule,
    Bookable,
    Booking,
    CalendarBusyInterval,
    EventSession,
)
from booking_app.models.base import UTCDateTime, utcnow
from booking_app.models.booking import HELD_STATUSES
from booking_app.models.calendar_subscription import MAX_BUSY_PIECE as MAX_PIECE
from booking_app.services.actors import Actor
from booking_app.services.bookable_access import load_bookable
from booking_app.services.errors import InvalidInput, NotAvailable
from booking_app.services.slots import (
    LOOKAHEAD,
    LOOKBACK,
    MAX_BUFFER_MINUTES,
    UTC,
    Occupant,
    SlotShape,
    SlotView,
    check_booking_window,
    compute_slots,
    day_bounds,
    open_ranges,
    shape_at,
    starts_slot,
)
from booking_app.services.validation import parse_date, zone

MAX_RANGE_DAYS = 366
# date search: up to this many candidates open that day are all checked (exact total);
# beyond, only until the page is full (total = upper bound, see free_on_day)
EXACT_DATE_TOTAL_MAX = 1000
DATE_CHUNK_MIN = 64  # first chunk of the lazy scan: at least this many (then doubling, ≤ 800)

def _epoch(session: Session, column: Any) -> Any:
    """A timestamp column as integer epoch seconds, computed in SQL."""
    if db.is_postgres(session):
        return cast(func.extract("epoch", column), BigInteger)
    return cast(func.strftime("%s", column), Integer)


def booking_columns(session: Session) -> tuple:
    return (Booking.bookable_id, Booking.session_id, _epoch(session, Booking.block_start_at),
            _epoch(session, Booking.block_end_at), Booking.quantity)


def active_clause(now: dt.datetime):
    """SQL for "holds capacity at `now`": confirmed, or pending / awaiting approval with an
    unexpired hold (an approval request's hold_expires_at is its approval_expires_at)."""
    return or_(Booking.status == "confirmed",
               and_(_status_held(),
                    or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now)))  # type: ignore[union-attr,operator]


def _scope_window(service: bool, key: Any, lo: Any, hi: Any) -> list:
    """Bookings that compete with a bookable (its own; for a service, the provider's
    services: `key` is then the provider's id) starting in [lo, hi).

    The start range is a row comparison on (bookable_id | provider_id, start_at), so only
    the index leading with those two columns can serve it (why: docs/performance.md)."""
    col = Booking.provider_id if service else Booking.bookable_id
    cond = [col == key, tuple_(col, Booking.start_at) >= tuple_(key, lo), tuple_(col, Booking.start_at) < tuple_(key, hi)]
    if service:
        services = select(Bookable.id).where(Bookable.provider_id == key, Bookable.kind == "service")
        cond.append(Booking.bookable_id.in_(services))  # type: ignore[attr-defined]
    return cond


#: the Occupant.bookable_id of a busy interval: no bookable's, so it takes the whole capacity
BUSY_BOOKABLE = 0


def _busy_overlap(lo: Any, a: Any, z: Any) -> list:
    """Busy pieces overlapping [a, z): as each is at most MAX_PIECE long, they start in
    [a - MAX_PIECE, z) — `lo` ≤ a - MAX_PIECE bounds the (provider_id, start_at) index range."""
    B = CalendarBusyInterval
    return [B.start_at >= lo, B.start_at < z, B.end_at > a]


def _busy_for(provider_id: Any, bookable_id: Any) -> Any:
    B = CalendarBusyInterval
    return and_(B.provider_id == provider_id, or_(B.bookable_id.is_(None), B.bookable_id == bookable_id))  # type: ignore[union-attr]


def busy_occupants_by_provider(s: Session, provider_ids: Sequence[int], a: dt.datetime, z: dt.datetime
                               ) -> dict[int, list[tuple[int | None, Occupant]]]:
    """The busy intervals of these providers overlapping [a, z): provider → [(the bookable it
    is limited to or None, occupant)]. One query per chunk of providers."""
    B = CalendarBusyInterval
    out: dict[int, list[tuple[int | None, Occupant]]] = defaultdict(list)
    for chunk in _chunks(list(provider_ids)):
        rows = s.connection().execute(select(B.provider_id, B.bookable_id, _epoch(s, B.start_at), _epoch(s, B.end_at)).where(
            _in_ids(s, B.provider_id, chunk), *_busy_overlap(a - MAX_PIECE, a, z))).all()
        for pid, bid, bs, be in rows:
            out[pid].append((bid, Occupant(BUSY_BOOKABLE, None, bs, be, 1)))
    return out


def busy_for_bookable(busy: dict[int, list[tuple[int | None, Occupant]]], b: Any) -> list[Occupant]:
    """The occupants of `busy_occupants_by_provider` that concern bookable `b` (not an event:
    event sessions are scheduled by the provider, outside calendars don't move them)."""
    if b.kind == "event":
        return []
    return [o for bid, o in busy.get(b.provider_id, ()) if bid is None or bid == b.id]


def load_occupants(session: Session, bookable: Bookable, a: dt.datetime, b: dt.datetime, now: dt.datetime,
                   *, exclude_booking_id: int | None = None, session_id: int | None = None) -> list[Occupant]:
    """One query: the active bookings competing with `bookable` whose block overlaps [a, b),
    and (rooms, services) the busy intervals from outside calendars overlapping it."""
    active = [Booking.status.in_(ACTIVE_STATUSES), active_clause(now)]  # type: ignore[attr-defined]
    if session_id is not None:  # (a session is of one bookable: its own index, whatever the statistics)
        cond = [Booking.session_id == session_id, *active]
    else:
        service = bookable.kind == "service"
        cond = [*_scope_window(service, bookable.provider_id if service else bookable.id, a - LOOKBACK, b + LOOKAHEAD),
                Booking.block_start_at < b, Booking.block_end_at > a, *active]
    if exclude_booking_id is not None:
        cond.append(Booking.id != exclude_booking_id)
    stmt: Any = select(*booking_columns(session)).where(*cond)
    if session_id is None and bookable.kind != "event":
        B = CalendarBusyInterval
        stmt = union_all(stmt, select(literal(BUSY_BOOKABLE), cast(null(), Integer), _epoch(session, B.start_at),
                                      _epoch(session, B.end_at), literal(1)).where(
            _busy_for(bookable.provider_id, bookable.id), *_busy_overlap(a - MAX_PIECE, a, b)))
    rows = session.connection().execute(stmt).all()  # Core: no ORM overhead
    return [Occupant(*r) for r in rows]


def validate_range(date_from: Any, date_to: Any) -> tuple[dt.date, dt.date]:
    """Two local dates (inclusive, at most MAX_RANGE_DAYS days) → (from, to); else InvalidInput."""
    d1 = parse_date(date_from, field="from")
    d2 = parse_date(date_to, field="to")
    if d2 < d1:
        raise InvalidInput(N_("The end date must not be before the start date."), field="to")
    if (d2 - d1).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(N_("Ask for at most {days} days at a time."), field="to", days=MAX_RANGE_DAYS)
    return d1, d2


def slots(
    *,
    bookable_id: int,
    date_from: dt.date | str,
    date_to: dt.date | str,
    now: dt.datetime | None = None,
    actor: Actor | None = None,
    include_full: bool = False,
) -> list[SlotView]:
    """Free slots of a bookable between two local dates (both inclusive), ordered by start;
    with `include_full` also its full ones (remaining 0: the waitlist's "join" targets).

    Inactive/unknown bookable → NotFound; bad or too long range (> 366 days) → InvalidInput."""
    d1, d2 = validate_range(date_from, date_to)
    now = now or utcnow()
    with db.read_session() as s:
        b = load_bookable(s, bookable_id, actor)
        return _slots_in_session(s, b, d1, d2, now, include_full=include_full)


def _slots_in_session(s: Session, b: Bookable, d1: dt.date, d2: dt.date, now: dt.datetime, *,
                      include_full: bool = False) -> list[SlotView]:
    tz = zone(b.timezone)
    lo, hi = day_bounds(d1, d2, tz)
    earliest = now + dt.timedelta(minutes=b.min_notice_minutes)
    latest = now + dt.timedelta(days=b.max_advance_days)
    if hi <= earliest or lo > latest:
        return []
    excs = s.exec(select(AvailabilityException).where(
        AvailabilityException.bookable_id == b.id, AvailabilityException.date >= d1,
        AvailabilityException.date <= d2)).all()
    if b.kind == "event":
        sessions = s.exec(select(EventSession).where(
            EventSession.bookable_id == b.id, EventSession.start_at >= max(lo, earliest - dt.timedelta(minutes=1)),
            EventSession.start_at < hi, EventSession.is_cancelled == False)).all()  # noqa: E712
        ids = [x.id for x in sessions]
        occ: list[Occupant] = []
        if ids:
            rows = s.connection().execute(select(*booking_columns(s)).where(  # type: ignore[call-overload]
                Booking.bookable_id == b.id, Booking.session_id.in_(ids),  # type: ignore[union-attr]
                Booking.status.in_(ACTIVE_STATUSES), active_clause(now))).all()  # type: ignore[attr-defined]
            occ = [Occupant(*r) for r in rows]
        return compute_slots(b, date_from=d1, date_to=d2, now=now, exceptions=excs, sessions=sessions, occupants=occ,
                             include_full=include_full)
    rules = s.exec(select(AvailabilityRule).where(AvailabilityRule.bookable_id == b.id)).all()
    if not rules and not any(not e.closed for e in excs):
        return []
    a = max(lo, earliest) - dt.timedelta(minutes=b.buffer_before_minutes + b.buffer_after_minutes)
    z = min(hi, latest + dt.timedelta(days=1)) + dt.timedelta(minutes=b.buffer_before_minutes + b.buffer_after_minutes)
    occ = load_occupants(s, b, a, z, now)
    return compute_slots(b, date_from=d1, date_to=d2, now=now, rules=rules, exceptions=excs, occupants=occ,
                         include_full=include_full)


def _chunks(seq: Sequence[Any], n: int = 800) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def bookables_with_free_slot(s: Session, candidates: Sequence[Any], day: dt.date,
                             now: dt.datetime | None = None) -> set[int]:
    """Ids of the candidates (Bookable objects or rows with its columns) with at least one
    free slot on local date `day` (search by date).

    Batched: a handful of IN queries for all candidates, never one query per bookable."""
    now = now or utcnow()
    if not candidates:
        return set()
    ids = [b.id for b in candidates]
    rules: dict[int, list[Any]] = defaultdict(list)
    excs: dict[int, list[Any]] = defaultdict(list)
    sessions: dict[int, list[Any]] = defaultdict(list)
    R, E, S = AvailabilityRule, AvailabilityException, EventSession
    wide_lo = dt.datetime.combine(day, dt.time(0), tzinfo=UTC) - dt.timedelta(days=2)
    wide_hi = dt.datetime.combine(day, dt.time(0), tzinfo=UTC) + dt.timedelta(days=3)
    for chunk in _chunks(ids):
        for r in s.exec(select(R.bookable_id, R.weekday, R.start_time, R.end_time).where(  # type: ignore[call-overload]
                R.bookable_id.in_(chunk), R.weekday == day.weekday())).all():  # type: ignore[attr-defined]
            rules[r.bookable_id].append(r)
        for e in s.exec(select(E.bookable_id, E.date, E.closed, E.start_time, E.end_time).where(  # type: ignore[call-overload]
                E.bookable_id.in_(chunk), E.date == day)).all():  # type: ignore[attr-defined]
            excs[e.bookable_id].append(e)
        for x in s.exec(select(S.id, S.bookable_id, S.start_at, S.end_at, S.capacity, S.is_cancelled).where(  # type: ignore[call-overload]
                S.bookable_id.in_(chunk), S.start_at >= wide_lo, S.start_at < wide_hi,  # type: ignore[attr-defined]
                S.is_cancelled == False)).all():  # noqa: E712
            sessions[x.bookable_id].append(x)
    # only bookables open that day can have a slot
    open_ids = []
    for b in candidates:
        if b.kind == "event":
            if sessions.get(b.id):
                open_ids.append(b.id)
        elif excs.get(b.id):
            if not any(e.closed for e in excs[b.id]):
                open_ids.append(b.id)
        elif rules.get(b.id):
            open_ids.append(b.id)
    if not open_ids:
        return set()
    by_id = {b.id: b for b in candidates}
    providers = sorted({by_id[i].provider_id for i in open_ids if by_id[i].kind == "service"})
    occ: dict[int, list[Occupant]] = defaultdict(list)
    by_provider: dict[int, list[Occupant]] = defaultdict(list)
    for chunk in _chunks(open_ids):
        cond = Booking.bookable_id.in_(chunk)  # type: ignore[attr-defined]
        rows = s.connection().execute(select(*booking_columns(s), Booking.provider_id).where(  # type: ignore[call-overload]
            cond, Booking.status.in_(ACTIVE_STATUSES), active_clause(now),  # type: ignore[attr-defined]
            Booking.start_at >= wide_lo - LOOKBACK, Booking.start_at < wide_hi + LOOKAHEAD)).all()
        for bid, sid, bs, be, q, _pid in rows:
            occ[bid].append(Occupant(bid, sid, bs, be, q))
    for chunk in _chunks(providers):
        services = select(Bookable.id).where(Bookable.provider_id.in_(chunk), Bookable.kind == "service")  # type: ignore[attr-defined]
        rows = s.connection().execute(select(*booking_columns(s), Booking.provider_id).where(  # type: ignore[call-overload]
            Booking.provider_id.in_(chunk), Booking.bookable_id.in_(services),  # type: ignore[attr-defined]
            Booking.status.in_(ACTIVE_STATUSES), active_clause(now),  # type: ignore[attr-defined]
            Booking.start_at >= wide_lo - LOOKBACK, Booking.start_at < wide_hi + LOOKAHEAD)).all()
        for bid, sid, bs, be, q, pid in rows:
            by_provider[pid].append(Occupant(bid, sid, bs, be, q))
    busy = busy_occupants_by_provider(s, sorted({by_id[i].provider_id for i in open_ids if by_id[i].kind != "event"}),
                                      wide_lo - LOOKBACK, wide_hi + LOOKAHEAD)
    found: set[int] = set()
    for i in open_ids:
        b = by_id[i]
        if b.kind == "service":
            competitors = [o for o in by_provider.get(b.provider_id, []) if o.bookable_id != b.id] + occ.get(i, [])
        else:
            competitors = occ.get(i, [])
        competitors += busy_for_bookable(busy, b)
        if compute_slots(b, date_from=day, date_to=day, now=now, rules=rules.get(i, []), exceptions=excs.get(i, []),
                         sessions=sessions.get(i, []), occupants=competitors, limit=1):
            found.add(i)  # type: ignore[arg-type]
    return found




_SLOT_COLS = (Bookable.id, Bookable.provider_id, Bookable.kind, Bookable.timezone, Bookable.capacity,
              Bookable.duration_minutes, Bookable.buffer_before_minutes, Bookable.buffer_after_minutes,
              Bookable.min_notice_minutes, Bookable.max_advance_days)


def _in_ids(s: Session, column: Any, ids: Sequence[int]) -> Any:
    """`column IN ids`; on PostgreSQL as `= ANY(array)`: one bind parameter instead of one
    per id (rendering hundreds of parameters cost more than the query)."""
    if db.is_postgres(s):
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def free_on_day(s: Session, filters: list[Any], order: tuple, day: dt.date, now: dt.datetime,
                *, need: int) -> tuple[list[int], int]:
    """The bookables matching `filters` with at least one free slot on the local date `day`
    (exactly what slots() would say), scanned lazily in `order` (search by date).

    → (ids of at least the first `need` matches in order — fewer when there are no more, total),
    where `total` is exact when the scan reached the last candidate (always when there are at
    most EXACT_DATE_TOTAL_MAX candidates open that day, and when fewer than `need` match, i.e.
    on the last page) and otherwise an upper bound: the matches found plus the unchecked
    candidates that are open that day (a weekly range on that weekday or an open date
    exception, no closed one; events: a session near that day). It only over-counts
    bookables that are full (or past notice/advance) that day; paging by offset stays exact.

    Set-based, chunk by chunk until `need` match, then `compute_slots(limit=1)` per bookable
    (the query plan: docs/performance.md, "Slot queries").
    """
    R, E, S = AvailabilityRule, AvailabilityException, EventSession
    # the local date `day` lies within [day 00:00 UTC - 14 h, day+1 00:00 UTC + 12 h] in any zone
    wide_lo = dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc) - dt.timedelta(hours=15)
    wide_hi = dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc) + dt.timedelta(days=1, hours=15)
    run = s.connection().execute  # plain rows: the ORM layer costs more than the queries here
    wd = day.weekday()
    has_rule = select(R.bookable_id).where(R.weekday == wd)
    has_open_exc = select(E.bookable_id).where(E.date == day, E.closed == False)  # noqa: E712
    has_closed_exc = select(E.bookable_id).where(E.date == day, E.closed == True)  # noqa: E712
    has_session = select(S.bookable_id).where(S.start_at >= wide_lo, S.start_at < wide_hi,  # type: ignore[operator]
                                              S.is_cancelled == False)  # noqa: E712
    can_open = and_(Bookable.id.not_in(has_closed_exc), or_(  # type: ignore[union-attr]
        (Bookable.kind == "event") & Bookable.id.in_(has_session),  # type: ignore[union-attr]
        (Bookable.kind != "event") & (Bookable.id.in_(has_rule) | Bookable.id.in_(has_open_exc)),  # type: ignore[union-attr]
    ))
    candidate_ids = list(run(select(Bookable.id).where(*filters, can_open).order_by(*order)).scalars())
    n_candidates = len(candidate_ids)
    # a slot's block reaches at most one buffer (≤ 1 day) beyond the day; the bookings whose
    # block overlaps it start within the slot engine's look-back/look-ahead of that
    buffer = dt.timedelta(minutes=MAX_BUFFER_MINUTES)
    b_lo, b_hi = wide_lo - buffer - LOOKBACK, wide_hi + buffer + LOOKAHEAD
    active = [Booking.status.in_(ACTIVE_STATUSES), active_clause(now),  # type: ignore[attr-defined]
              Booking.start_at >= b_lo, Booking.start_at < b_hi]  # type: ignore[operator]
    memo: dict[tuple, bool] = {}

    def check(chunk: Sequence[Any]) -> list[int]:
        ids = [b.id for b in chunk]
        rules: dict[int, list[Any]] = {}
        excs: dict[int, list[Any]] = {}
        sessions: dict[int, list[Any]] = {}
        for r in run(select(R.bookable_id, R.weekday, R.start_time, R.end_time).where(  # type: ignore[call-overload]
                R.weekday == wd, _in_ids(s, R.bookable_id, ids)).order_by(R.bookable_id, R.start_time)).all():  # type: ignore[attr-defined]
            rules.setdefault(r.bookable_id, []).append(r)
        for e in run(select(E.bookable_id, E.date, E.closed, E.start_time, E.end_time).where(  # type: ignore[call-overload]
                E.date == day, _in_ids(s, E.bookable_id, ids)).order_by(E.bookable_id, E.start_time)).all():  # type: ignore[attr-defined]
            excs.setdefault(e.bookable_id, []).append(e)
        event_ids = [b.id for b in chunk if b.kind == "event"]
        if event_ids:
            for x in run(select(S.id, S.bookable_id, S.start_at, S.end_at, S.capacity, S.is_cancelled).where(  # type: ignore[call-overload]
                    S.start_at >= wide_lo, S.start_at < wide_hi, S.is_cancelled == False,  # type: ignore[operator]  # noqa: E712
                    _in_ids(s, S.bookable_id, event_ids)).order_by(S.bookable_id, S.start_at)).all():  # type: ignore[attr-defined]
                sessions.setdefault(x.bookable_id, []).append(x)
        occ: dict[int, list[Any]] = {}
        for bid, sid, bs, be, q in run(select(*booking_columns(s)).where(
                *active, _in_ids(s, Booking.bookable_id, ids))).all():  # type: ignore[attr-defined]
            occ.setdefault(bid, []).append(Occupant(bid, sid, bs, be, q))
        by_provider: dict[int, list[Any]] = {}
        providers = sorted({b.provider_id for b in chunk if b.kind == "service"})
        if providers:
            services = select(Bookable.id).where(Bookable.kind == "service", _in_ids(s, Bookable.provider_id, providers))  # type: ignore[attr-defined]
            for bid, sid, bs, be, q, pid in run(select(*booking_columns(s), Booking.provider_id).where(
                    *active, _in_ids(s, Booking.provider_id, providers), Booking.bookable_id.in_(services))).all():  # type: ignore[attr-defined]
                by_provider.setdefault(pid, []).append(Occupant(bid, sid, bs, be, q))
        busy = busy_occupants_by_provider(s, sorted({b.provider_id for b in chunk if b.kind != "event"}), b_lo, b_hi)
        found: list[int] = []
        for b in chunk:
            i = b.id
            if b.kind == "service":
                competitors = [o for o in by_provider.get(b.provider_id, ()) if o.bookable_id != i] + occ.get(i, [])
            else:
                competitors = occ.get(i, [])
            competitors += busy_for_bookable(busy, b)
            day_rules, day_excs, day_sessions = rules.get(i, []), excs.get(i, []), sessions.get(i, [])
            if competitors:
                free = bool(compute_slots(b, date_from=day, date_to=day, now=now, rules=day_rules,
                                          exceptions=day_excs, sessions=day_sessions, occupants=competitors, limit=1))
            else:
                # rows come ordered by start (SQL), so equal configurations give equal keys
                key = (b.kind, b.timezone, b.min_notice_minutes, b.max_advance_days, b.duration_minutes,
                       tuple((r.start_time, r.end_time) for r in day_rules),
                       tuple((e.closed, e.start_time, e.end_time) for e in day_excs),
                       tuple((x.start_at, x.end_at, x.capacity) for x in day_sessions))
                hit = memo.get(key)
                if hit is None:
                    hit = memo[key] = bool(compute_slots(
                        b, date_from=day, date_to=day, now=now, rules=day_rules, exceptions=day_excs,
                        sessions=day_sessions, occupants=(), limit=1))
                free = hit
            if free:
                found.append(i)
        return found

    matches: list[int] = []
    exact = n_candidates <= EXACT_DATE_TOTAL_MAX
    pos, size = 0, 800 if exact else max(need + need // 4, DATE_CHUNK_MIN)
    while pos < n_candidates and (exact or len(matches) < need):
        ids = candidate_ids[pos:pos + size]
        rows = {r.id: r for r in run(select(*_SLOT_COLS).where(_in_ids(s, Bookable.id, ids))).all()}  # type: ignore[union-attr]
        matches += check([rows[i] for i in ids if i in rows])
        pos += len(ids)
        size = min(size * 2, 800)  # bounded IN lists
    total = len(matches) + max(n_candidates - pos, 0)
    return matches, total



# --- prebuilt statements of the booking hot path ------------------------------------------
# Built once with bind parameters and reused: building SQLAlchemy expressions per request cost
# more CPU than executing them. Parameters: bid (bookable), pid (provider), now, lo/hi (the
# index-friendly start_at bounds), a/z (the block), sid (session), excl (booking to leave out).

_P_NOW = bindparam("now", type_=UTCDateTime())


def _status_active():
    """`status IN ('pending', 'confirmed')` with the values in the SQL text: a list of plain
    values would be an "expanding" parameter, re-rendered into the SQL on every execution."""
    return Booking.status.in_([literal_column(f"'{v}'") for v in ACTIVE_STATUSES])  # type: ignore[attr-defined]


def _status_held():
    """`status IN ('pending', 'awaiting_approval')` (HELD_STATUSES), values in the SQL text."""
    return Booking.status.in_([literal_column(f"'{v}'") for v in HELD_STATUSES])  # type: ignore[attr-defined]


def _active_p():
    return active_clause(_P_NOW)


def _usage_cols_p(*, expired_holds: bool) -> list:
    """Aggregates over the competing bookings (rows pre-filtered by overlap): seats of our
    bookable's active bookings; 1 if an active booking of another service of the provider
    overlaps; [1 if an expired, not yet swept hold of ours overlaps]."""
    own = Booking.bookable_id == bindparam("bid")
    cols = [
        func.coalesce(func.sum(case((and_(own, _active_p()), Booking.quantity), else_=0)), 0),
        func.coalesce(func.max(case((and_(Booking.bookable_id != bindparam("bid"), _active_p()), 1), else_=0)), 0),
    ]
    if expired_holds:
        cols.append(func.coalesce(func.max(case((and_(
            own, _status_held(), Booking.hold_expires_at <= _P_NOW), 1), else_=0)), 0))  # type: ignore[operator]
    return cols


def _busy_exists_p():
    """Whether a busy interval from an outside calendar overlaps the block (parameters pid,
    bid, lo, a, z): an index probe, and nothing to find for a provider without subscriptions."""
    return exists().where(_busy_for(bindparam("pid"), bindparam("bid")), *_busy_overlap(
        bindparam("lo", type_=UTCDateTime()), bindparam("a", type_=UTCDateTime()), bindparam("z", type_=UTCDateTime())))


@functools.lru_cache(maxsize=None)
def _usage_stmt(*, service: bool, by_session: bool, exclude: bool, expired_holds: bool):
    cols = _usage_cols_p(expired_holds=expired_holds)
    if by_session:
        cond = [Booking.session_id == bindparam("sid")]
    else:  # a service: the provider's services share the provider's time
        cond = [*_scope_window(service, bindparam("pid" if service else "bid"), bindparam("lo", type_=UTCDateTime()),
                               bindparam("hi", type_=UTCDateTime())),
                Booking.block_start_at < bindparam("z", type_=UTCDateTime()),
                Booking.block_end_at > bindparam("a", type_=UTCDateTime())]
        # a busy interval from an outside calendar counts like another service's booking
        cols[1] = case((_busy_exists_p(), 1), else_=cols[1])
    cond.append(_status_active())
    if exclude:
        cond.append(Booking.id != bindparam("excl"))
    return select(*cols).where(*cond)


def _usage_params(b: Bookable, shape: "SlotShape", now: dt.datetime, exclude_booking_id: int | None) -> dict:
    return {"bid": b.id, "pid": b.provider_id, "now": now, "sid": shape.session_id,
            "lo": shape.block_start - LOOKBACK, "hi": shape.block_end + LOOKAHEAD,
            "a": shape.block_start, "z": shape.block_end, "excl": exclude_booking_id}


def _usage(s: Session, b: Bookable, shape: "SlotShape", now: dt.datetime, *, exclude_booking_id: int | None = None,
           expired_holds: bool = False) -> tuple[int, bool]:
    """(seats used by competing active bookings, expired holds overlap) in one query."""
    stmt = _usage_stmt(service=b.kind == "service", by_session=shape.session_id is not None,
                       exclude=exclude_booking_id is not None, expired_holds=expired_holds)
    own, other, *expired = s.connection().execute(stmt, _usage_params(b, shape, now, exclude_booking_id)).one()
    # a booking of the provider's other service overlapping the block takes the whole capacity
    return (shape.capacity if other else int(own or 0)), bool(expired and expired[0])


@functools.lru_cache(maxsize=None)
def _event_stmt():
    closed = select(AvailabilityException.id).where(
        AvailabilityException.bookable_id == bindparam("bid"), AvailabilityException.date == bindparam("day"),
        AvailabilityException.closed == True).exists()  # noqa: E712
    counted = (select(*_usage_cols_p(expired_holds=False)[:1]).where(
        Booking.session_id == EventSession.id, _status_active())
        .correlate(EventSession).scalar_subquery())
    # the session's counter (migration 0003) when the seats wanted fit by it — it can only
    # over-state, by holds expired but not yet swept — else the bookings themselves
    used = case((EventSession.seats_taken + bindparam("q") <= EventSession.capacity, EventSession.seats_taken),
                else_=counted)
    return select(EventSession.id, EventSession.start_at, EventSession.end_at, EventSession.capacity, closed, used).where(
        EventSession.bookable_id == bindparam("bid"), EventSession.start_at == bindparam("start", type_=UTCDateTime()),
        EventSession.is_cancelled == False)  # noqa: E712


@functools.lru_cache(maxsize=None)
def _hours_stmt():
    """The weekly hours of one weekday and the exceptions of one date, in one query."""
    R, E = AvailabilityRule, AvailabilityException
    return union_all(
        select(literal(0).label("exc"), literal(0).label("closed"), R.start_time, R.end_time).where(
            R.bookable_id == bindparam("bid"), R.weekday == bindparam("wd")),
        select(literal(1), cast(E.closed, Integer), E.start_time, E.end_time).where(
            E.bookable_id == bindparam("bid"), E.date == bindparam("day")))


def resolve_start(s: Session, b: Bookable, start: dt.datetime, now: dt.datetime, *,
                  check_window: bool = True) -> SlotShape:
    """Check that `start` is a real slot start of `b` (grid start inside the open hours, or
    an event session start), outside the past/minimum notice and inside the maximum advance.
    Capacity is NOT checked here (the booking service re-counts under its lock).
    Raises NotAvailable otherwise."""
    return _resolve(s, b, start, now, check_window=check_window, usage=False, quantity=1)[0]


def resolve_start_with_usage(s: Session, b: Bookable, start: dt.datetime, now: dt.datetime, *, quantity: int = 1,
                             prefetched: list[list[tuple]] | None = None) -> tuple[SlotShape, int, bool]:
    """`resolve_start` plus, in the same or one more query, the seats competing active
    bookings take (`seats_used`) and whether expired, not yet swept holds overlap the block
    (capacity-1 rooms/services only): (shape, seats used, expired holds). One query for
    events; for rooms/services the hours and the usage — in one round trip on PostgreSQL,
    one after the other elsewhere. Not authoritative on PostgreSQL: the booking service
    re-counts under its lock. `quantity`: the seats wanted (for an event, the seats used are
    exact whenever they decide: the session's counter when they fit by it, else the count
    of its bookings). `prefetched`: on PostgreSQL, the rows of
    `slot_queries_pg(b, start, now, quantity)` already read in this transaction (no query here)."""
    return _resolve(s, b, start, now, check_window=True, usage=True, quantity=quantity, prefetched=prefetched)


#: the bookable's fields that the slot queries depend on (see slot_queries_pg)
SLOT_QUERY_FIELDS = ("id", "provider_id", "kind", "capacity", "timezone", "duration_minutes",
                     "buffer_before_minutes", "buffer_after_minutes")


def _slot_queries(b: Bookable, start: dt.datetime, now: dt.datetime, quantity: int
                  ) -> tuple[SlotShape, dt.date, list[tuple[Any, dict[str, Any]]]]:
    """The block a room/service slot at `start` would take (it follows from the start
    alone; the hours only say whether it is one, so its usage can be read together with
    them), the bookable's local day, and the statements reading the hours and the usage
    (an event: its session with the usage)."""
    local_day = start.astimezone(zone(b.timezone)).date()
    block = shape_at(b, start)
    if b.kind == "event":
        return block, local_day, [(_event_stmt(), {"bid": b.id, "day": local_day, "start": start, "now": now,
                                                   "q": quantity})]
    usage_stmt = _usage_stmt(service=b.kind == "service", by_session=False, exclude=False,
                             expired_holds=b.capacity == 1)
    return block, local_day, [(_hours_stmt(), {"bid": b.id, "wd": local_day.weekday(), "day": local_day}),
                              (usage_stmt, _usage_params(b, block, now, None))]


def slot_queries_pg(b: Any, start: dt.datetime, now: dt.datetime, quantity: int = 1
                    ) -> list[tuple[str, dict[str, Any], int, bool]]:
    """PostgreSQL: the statements that `resolve_start_with_usage` would run for `b` (any
    object with SLOT_QUERY_FIELDS), for a caller to send ahead with its own query and pass
    the rows back as `prefetched` — valid only if `b`'s SLOT_QUERY_FIELDS are those of the
    bookable it then resolves. Each is (sql, params, number of columns, at most one row);
    a statement of at most one row never returns NULL in its first column (an event's
    session id, a count), so a caller joining it can tell "no row" from a NULL."""
    return [(_pg_sql_literals_inline(stmt, frozenset(params)), params, len(stmt.selected_columns),
             stmt is not _hours_stmt()) for stmt, params in _slot_queries(b, start, now, quantity)[2]]


def _resolve(s: Session, b: Bookable, start: dt.datetime, now: dt.datetime, *, check_window: bool,
             usage: bool, quantity: int, prefetched: list[list[tuple]] | None = None) -> tuple[SlotShape, int, bool]:
    if check_window:
        check_booking_window(b, start, now)
    block, local_day, statements = _slot_queries(b, start, now, quantity)
    tz = zone(b.timezone)
    dur = block.end - block.start
    usage_row: Any = None
    if usage and db.is_postgres(s):
        results = prefetched if prefetched is not None else _pg_pipeline(s, statements)
        if b.kind == "event":
            row = results[0][0] if results[0] else None
        else:
            hours, (usage_row,) = results
    else:
        stmt, params = statements[0]
        if b.kind == "event":
            row = s.connection().execute(stmt, params).first()
        else:
            hours = s.connection().execute(stmt, params).all()
    if b.kind == "event":
        if row is None:
            raise NotAvailable(N_("This event has no session at that time."))
        if row[4]:
            raise NotAvailable(N_("This day is closed."))
        shape = SlotShape(row[1], row[2], row[1], row[2], row[3], row[0])
        return shape, (int(row[5] or 0) if usage else 0), False
    rules_by_wd: dict[int, list] = defaultdict(list)
    excs_by_date: dict[dt.date, list] = defaultdict(list)
    for exc, closed_flag, st, en in hours:
        if exc:
            excs_by_date[local_day].append((bool(closed_flag), _as_time(st), _as_time(en)))
        else:
            rules_by_wd[local_day.weekday()].append((_as_time(st), _as_time(en)))
    if not starts_slot(start, dur, open_ranges(local_day, tz, rules_by_wd, excs_by_date)):
        raise NotAvailable(N_("This time is not one of the available slots."))
    if not usage:
        return block, 0, False
    if usage_row is None:
        usage_row = s.connection().execute(*statements[1]).one()
    own, other, *expired = usage_row
    # a booking of the provider's other service overlapping the block takes the whole capacity
    return block, (block.capacity if other else int(own or 0)), bool(expired and expired[0])


def _pg_pipeline(s: Session, statements: list[tuple[Any, dict[str, Any]]]) -> list[list[tuple]]:
    """PostgreSQL: run prebuilt SQLAlchemy statements in one round trip (psycopg pipeline)
    on the session's connection → each one's rows. For the booking hot path: one round
    trip, and none of SQLAlchemy's per-execution work (the SQL text is compiled once)."""
    pg = s.connection().connection.driver_connection
    cursors = []
    with pg.pipeline():
        for stmt, params in statements:
            sql, defaults = _pg_sql(stmt)
            cursors.append(pg.execute(sql, {**defaults, **params}, binary=True, prepare=db.PREPARE_IN_PIPELINE))
    return [cur.fetchall() for cur in cursors]


_PG_DIALECT: Any = None


@functools.lru_cache(maxsize=None)
def _pg_sql(stmt: Any) -> tuple[str, dict[str, Any]]:
    """A statement's PostgreSQL SQL text (psycopg's %(name)s style) and its literal values."""
    global _PG_DIALECT
    if _PG_DIALECT is None:
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        _PG_DIALECT = PGDialect_psycopg()
    compiled = stmt.compile(dialect=_PG_DIALECT)
    return str(compiled), dict(compiled.params)


@functools.lru_cache(maxsize=None)
def _pg_sql_literals_inline(stmt: Any, bound: frozenset[str]) -> str:
    """`_pg_sql(stmt)` with the statement's own literal values (the 'confirmed', 0 and 1
    that SQLAlchemy sends as parameters) written into the SQL text: only the `bound`
    parameters are left to send (each parameter costs psycopg work on every call)."""
    sql, defaults = _pg_sql(stmt)

    def literal(m: re.Match) -> str:
        name, value = m.group(1), defaults.get(m.group(1))
        if name in bound or value is None:
            return m.group(0)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        return m.group(0)

    return PG_PARAM.sub(literal, sql)


#: a named parameter (psycopg's %(name)s style) in the SQL of `_pg_sql`
PG_PARAM = re.compile(r"%\((\w+)\)s")


def _as_time(value: Any) -> dt.time | None:
    """A TIME column read through UNION ALL (SQLite hands back the stored text)."""
    if value is None or isinstance(value, dt.time):
        return value
    return dt.time.fromisoformat(str(value))


def seats_used(s: Session, b: Bookable, shape: SlotShape, now: dt.datetime, *,
               exclude_booking_id: int | None = None) -> int:
    """Seats taken by competing active bookings (one aggregate query). A booking of the
    provider's other service overlapping the block takes the whole capacity."""
    return _usage(s, b, shape, now, exclude_booking_id=exclude_booking_id)[0]


