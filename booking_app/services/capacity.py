"""The capacity engine: how bookings, payments (and later waitlists, series) change what a
slot holds without ever overselling (ARCHITECTURE.md, "One capacity engine").

- `transaction()`: the unit of work of a capacity change — `db.unit_of_work()` with its lock
  waits bounded; a lock wait that ran out → `Busy(retry_after=1)` (nothing changed, the
  client may retry with the same idempotency key), the PostgreSQL exclusion backstop
  (migration 0002) → `NotAvailable`.
- Locks: an advisory lock per capacity key (`lock_key`: (1, bookable) for rooms and
  events, (2, provider) for services, whose services share the provider's time), taken in
  sorted order; an event session's counter row (migration 0003) is its lock;
  `lock_booking` locks a booking row; `lock_capacity_of` the capacity a booking uses.
- `recount_or_fail()`: the transaction's batched writes (`BookingWrites`), then under the
  lock the competing active bookings + ours must fit. On PostgreSQL writes, lock, re-count
  and COMMIT go out in one round trip (psycopg pipeline), so the lock is never held across
  a client round trip; SQLite holds its single write lock since BEGIN IMMEDIATE.

Performance notes and history: docs/performance.md.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg.types.json import Json
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql import sqltypes
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import Np_
from booking_app.models import ACTIVE_STATUSES, Bookable, Booking
from booking_app.services import availability, live_slots, outbox
from booking_app.services.availability import seats_used
from booking_app.services.slots import LOOKAHEAD, LOOKBACK, SlotShape
from booking_app.services.errors import Busy, NotAvailable

MAX_QUANTITY = 1000
AT_MOST_SEATS = Np_("At most {max} seat can be booked at once.", "At most {max} seats can be booked at once.", "max")

#: Test-only switches. `LOCKING = False` skips the advisory lock (the control test shows
#: the race then oversells); `RACE_HOOK` runs between the insert and the re-count.
LOCKING = True
RACE_HOOK: Callable[[], None] | None = None


def busy_error(exc: BaseException) -> Busy | None:
    """The one "lock wait → Busy" rule: a lock wait that ran out (OperationalError,
    `db.is_busy`) or no pooled connection free in time (PoolTimeout) is `Busy(retry_after=1)`
    — nothing was changed, a retry may work; None for any other error."""
    if isinstance(exc, PoolTimeout) or (isinstance(exc, OperationalError) and db.is_busy(exc)):
        return Busy(retry_after=1)
    return None


@contextlib.contextmanager
def busy_on_lock_wait() -> Iterator[None]:
    """Inside: lock waits that ran out and pool timeouts → Busy (`busy_error`)."""
    try:
        yield
    except (OperationalError, PoolTimeout) as exc:
        busy = busy_error(exc)
        if busy is None:
            raise
        raise busy from None


@contextlib.contextmanager
def transaction(*, set_lock_timeout: bool = True) -> Iterator[Session]:
    """The unit of work of a capacity change: `db.unit_of_work()` with its lock waits
    bounded; lock trouble → Busy (`busy_error`), an exclusion constraint violation (the
    PostgreSQL backstop) → NotAvailable. `set_lock_timeout=False`: the caller bounds lock
    waits itself in the statement that takes its first lock (`pg_writes_then_lock_sql`;
    saves a statement)."""
    try:  # (busy_on_lock_wait, inline: one context manager less on the hot path)
        with db.unit_of_work(lock_timeout=set_lock_timeout) as s:
            live_slots.begin(s)  # (open pages learn what changed, after commit: live_slots.py)
            yield s
    except (OperationalError, PoolTimeout) as exc:
        busy = busy_error(exc)
        if busy is None:
            raise
        raise busy from None
    except IntegrityError as exc:
        if db.sqlstate(exc) == "23P01" or "exclusion" in str(exc.orig).lower():
            raise NotAvailable() from None
        raise
    live_slots.publish_noted(s)  # committed: fire-and-forget


def lock_booking(s: Session, booking_id: Any, *, set_lock_timeout: bool = True) -> Booking | None:
    """The booking row, locked for this transaction (PostgreSQL `FOR UPDATE`, its wait
    bounded by the lock timeout — set here unless `set_lock_timeout=False`, for a
    `transaction()` that bounds it already; SQLite: the unit of work holds the write lock);
    None when there is no such booking. A lock wait that ran out → Busy(retry_after=1)."""
    if isinstance(booking_id, bool) or not isinstance(booking_id, int):
        return None
    stmt = select(Booking).where(Booking.id == booking_id)
    with busy_on_lock_wait():
        if db.is_postgres(s):
            if set_lock_timeout:
                db.set_local_lock_timeout(s)
            stmt = stmt.with_for_update()
        return s.exec(stmt).first()


def advisory_lock(s: Session, key_class: int, key: int) -> None:
    """PostgreSQL: a transaction-scoped advisory lock on (key_class, key) (classes 1, 2:
    capacity, `lock_key`; 3, 4: guest counters)."""
    s.connection().execute(LOCK_SQL, {"a": key_class, "b": key})


def lock_key(b: Bookable) -> tuple[int, int]:
    """The advisory-lock key guarding `b`'s capacity: provider time for services."""
    if b.kind == "service":
        return (2, b.provider_id)
    return (1, b.id)  # type: ignore[return-value]


def lock(s: Session, *keys: tuple[int, int]) -> None:
    """Transaction-scoped lock(s) on capacity keys, in sorted order (PostgreSQL; SQLite
    already holds the single write lock since BEGIN IMMEDIATE)."""
    if not LOCKING or not db.is_postgres(s):
        return
    conn = s.connection()
    for a, b in sorted(set(keys)):
        conn.execute(LOCK_SQL, {"a": a, "b": b})


LOCK_SQL = text("SELECT pg_advisory_xact_lock(:a, :b)")
LOCK_SESSIONS_SQL = text("SELECT id FROM event_sessions WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE")


def lock_session_counters(s: Session, session_ids: Iterable[int]) -> None:
    """PostgreSQL: the counter rows of these event sessions (migration 0003), in id order —
    the order a booking moved between two sessions locks them in (its trigger)."""
    ids = sorted(set(session_ids))
    if ids and db.is_postgres(s):
        s.connection().execute(LOCK_SESSIONS_SQL, {"ids": ids})


def lock_capacity_of(s: Session, booking: Booking) -> None:
    """PostgreSQL: the lock a booking's seats are counted under — its session's counter row,
    else the advisory lock on its bookable (provider, for services). For a caller about to
    change what the booking holds outside this module (a payment extending its hold), so
    that it can't race with a booking counting the seats. SQLite: nothing (the unit of work
    holds the single write lock). A lock wait that ran out → Busy(retry_after=1)."""
    if not db.is_postgres(s):
        return
    with busy_on_lock_wait():
        if booking.session_id is not None:
            lock_session_counters(s, [booking.session_id])
            return
        bookable = s.get(Bookable, booking.bookable_id)
        assert bookable is not None
        advisory_lock(s, *lock_key(bookable))


# The re-count of availability.seats_used in plain PostgreSQL SQL, for the pipeline below.
_PG_ACTIVE = ("status IN (" + ", ".join(f"'{v}'" for v in ACTIVE_STATUSES) + ") AND id <> %(excl)s AND (status = 'confirmed' OR "
              "hold_expires_at IS NULL OR hold_expires_at > %(now)s)")
# (The start range as a row comparison: only the (bookable_id | provider_id, start_at) index
# serves it, whatever the planner's statistics say — see availability._scope_window.)
_PG_RECOUNT_SESSION = ("SELECT coalesce(sum(quantity), 0) AS own, 0 AS other FROM bookings "
                       "WHERE session_id = %(sid)s AND " + _PG_ACTIVE)
_PG_RECOUNT_BLOCK = ("SELECT coalesce(sum(CASE WHEN bookable_id = %(bid)s THEN quantity ELSE 0 END), 0) AS own, "
                     "coalesce(max(CASE WHEN bookable_id <> %(bid)s THEN 1 ELSE 0 END), 0) AS other FROM bookings "
                     "WHERE {scope} AND block_start_at < %(z)s AND block_end_at > %(a)s AND " + _PG_ACTIVE)
_PG_SCOPE_BOOKABLE = ("bookable_id = %(bid)s AND (bookable_id, start_at) >= (%(bid)s, %(lo)s) "
                      "AND (bookable_id, start_at) < (%(bid)s, %(hi)s)")
_PG_SCOPE_PROVIDER = ("provider_id = %(pid)s AND (provider_id, start_at) >= (%(pid)s, %(lo)s) "
                      "AND (provider_id, start_at) < (%(pid)s, %(hi)s) AND bookable_id IN "
                      "(SELECT id FROM bookables WHERE provider_id = %(pid)s AND kind = 'service')")
# A busy time from an outside calendar overlapping the block (services/calendar_sync.py;
# pieces are ≤ 1 day, so they start after lo): availability._busy_exists_p in plain SQL. An
# index probe that finds nothing for a provider without subscriptions.
_PG_BUSY = ("EXISTS (SELECT 1 FROM calendar_busy_intervals WHERE provider_id = %(pid)s AND start_at >= %(lo)s "
            "AND start_at < %(z)s AND end_at > %(a)s AND (bookable_id IS NULL OR bookable_id = %(bid)s))")
# Seats used (a booking of the provider's other service overlapping, or a busy time, takes
# them all); when ours don't fit, the division by zero aborts the transaction, so the COMMIT
# queued behind it in the pipeline is skipped and nothing is written. The capacity is read
# here too, under the lock: one lowered since the slot check (a provider's edit) counts.
_PG_CHECK = ("SELECT used, 1 / (CASE WHEN used + %(q)s > cap THEN 0 ELSE 1 END) FROM "
             "(SELECT CASE WHEN other > 0 OR " + _PG_BUSY + " THEN cap ELSE own END AS used, cap FROM ({recount}) r, "
             "(SELECT coalesce(({capacity}), 0) AS cap) c) x")  # (no row: capacity 0)
_PG_BOOKABLE_CAPACITY = "SELECT capacity FROM bookables WHERE id = %(bid)s"
# A session: its counter (migration 0003), which already holds our seats — the trigger
# added them when our booking was written, and locked the counter row until COMMIT, which
# is where the session's bookings queue (no advisory lock). When all fit by the counter
# they fit; only when they seem not to (the counter still holds expired, unswept holds) are
# the session's bookings counted. No session row: capacity 0.
PG_CHECK_SESSION = (
    "SELECT used, 1 / (CASE WHEN used + %(q)s > cap THEN 0 ELSE 1 END) FROM "
    "(SELECT CASE WHEN s.seats_taken IS NULL THEN 0 WHEN s.seats_taken <= s.capacity THEN s.seats_taken - %(q)s "
    "ELSE (SELECT own FROM (" + _PG_RECOUNT_SESSION + ") r) END AS used, coalesce(s.capacity, 0) AS cap "
    "FROM (SELECT 1) one LEFT JOIN event_sessions s ON s.id = %(sid)s) x")
PG_CHECK_ROOM = _PG_CHECK.format(recount=_PG_RECOUNT_BLOCK.format(scope=_PG_SCOPE_BOOKABLE),
                                  capacity=_PG_BOOKABLE_CAPACITY)
PG_CHECK_SERVICE = _PG_CHECK.format(recount=_PG_RECOUNT_BLOCK.format(scope=_PG_SCOPE_PROVIDER),
                                     capacity=_PG_BOOKABLE_CAPACITY)


def _pg_lock_recount_commit(s: Session, b: Bookable, shape: SlotShape, quantity: int, booking_id: int,
                            now: dt.datetime, writes: list[tuple[Any, list[Any]]]) -> None:
    """PostgreSQL: the transaction's writes, advisory lock, re-count, COMMIT — sent together
    in one round trip (psycopg pipeline), so the lock is held only while the server runs
    them, never across a client round trip (on a busy machine each one costs scheduling
    delays, and the lock holder's delays are everyone's on a hot slot).

    Three statements: the inserts (data-modifying CTEs) with the lock, the count, COMMIT.
    Under READ COMMITTED every statement takes its own snapshot, so the count, which the
    server runs only once the lock is granted, sees every booking committed by the lock's
    previous holders; our own rows were inserted by the statement before it. When ours
    doesn't fit, the count statement fails (division by zero, see _PG_CHECK), the
    transaction is aborted and the queued COMMIT is skipped →
    NotAvailable, nothing written. On success the transaction is committed here; the unit
    of work's own commit is then a no-op (the connection is idle). Callers do nothing after
    this but return.

    A new booking (`_book`, its connection in autocommit: `implicit_transactions`) sends
    no BEGIN and no COMMIT: in the extended query protocol the statements up to a Sync are
    one transaction, committed at the Sync that ends the pipeline, and a failing statement
    aborts it and skips the rest up to the Sync — the same all-or-nothing, two statements
    fewer. The inserts' statement then sets the lock timeout itself, before it writes (see
    pg_writes_then_lock_sql).

    An event session takes no advisory lock: its counter row is the lock (see
    PG_CHECK_SESSION). The trigger locked it when our booking was written — by the inserts
    here, or by the flush of a reschedule or revival before — so the check, in a statement
    of its own, sees every booking committed before us. Every path that changes a
    session's seats takes its counter row(s) after the booking row it changes (if any) and
    before any other lock, in id order when there are two, and none takes the advisory lock
    after them: no lock-order cycles."""
    session = shape.session_id is not None
    if session:
        sql = PG_CHECK_SESSION
    else:
        sql = PG_CHECK_SERVICE if b.kind == "service" else PG_CHECK_ROOM
    params = {"bid": b.id, "pid": b.provider_id, "sid": shape.session_id, "excl": booking_id, "now": now,
              "lo": shape.block_start - LOOKBACK, "hi": shape.block_end + LOOKAHEAD,
              "a": shape.block_start, "z": shape.block_end, "q": quantity}
    s.flush()  # nothing may be left for after the COMMIT below
    pg = s.connection().connection.driver_connection
    write_params: list[Any] = []
    for _spec, rows in writes:
        for values in rows:  # (each row's values in column order: BookingWrites.insert)
            write_params.extend(values)
    if not session:  # (a session's counter row is its lock)
        write_params += list(lock_key(b))
    write_params.append(f"{int(get_settings().db_lock_timeout_ms)}ms")
    implicit = pg.autocommit  # (see implicit_transactions)
    check_sql, names = _positional(sql)
    try:
        with pg.pipeline():
            # positional $n parameters (RawCursor): psycopg would parse a %s query of over 50
            # parameters anew on every call (it caches only smaller ones); one cursor for the
            # three statements (none of their rows is read: a failed check raises)
            cur = psycopg.RawCursor(pg)
            if writes or not session:  # (inserts and/or the advisory lock)
                cur.execute(
                    pg_writes_then_lock_sql(tuple((*spec, len(rows)) for spec, rows in writes), lock=not session),
                    write_params, prepare=db.PREPARE_IN_PIPELINE)
            cur.execute(check_sql, [params[name] for name in names], prepare=db.PREPARE_IN_PIPELINE)
            if not implicit:
                cur.execute("COMMIT", prepare=False)
    except psycopg.errors.DivisionByZero:
        raise _NoFit() from None
    except psycopg.errors.ExclusionViolation:
        raise NotAvailable() from None  # the backstop (migration 0002) saw an overlap
    except psycopg.errors.UniqueViolation:
        raise DuplicateRequest() from None
    except psycopg.Error as exc:
        if db.is_busy(exc):  # (psycopg's own error: the same rule as busy_error's)
            raise Busy(retry_after=1) from None
        raise


@functools.lru_cache(maxsize=16)
def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """A %(name)s query as a $n query (for a RawCursor) and the names in $n order."""
    names: list[str] = []

    def number(m: Any) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return availability.PG_PARAM.sub(number, sql), tuple(names)


class DuplicateRequest(Exception):
    """A unique key of the batched writes was taken meanwhile (the idempotency record of a
    concurrent request with the same key): the transaction is aborted."""


class _NoFit(Exception):
    """The re-count under the lock found the seats taken (the transaction is aborted)."""


def recount_or_fail(s: Session, b: Bookable, shape: SlotShape, quantity: int, booking_id: int,
                     now: dt.datetime, writes: list[tuple[Any, list[Any]]] | None = None) -> None:
    """Run the transaction's batched `writes` (from `BookingWrites`), then, under the lock: the
    competing active bookings + ours must fit. On PostgreSQL this also commits (see
    _pg_lock_recount_commit): call it last in the transaction."""
    writes = writes or []
    live_slots.note_block(s, b, shape.block_start, shape.block_end)  # (published only after commit)
    if pipelined(s):
        if RACE_HOOK is not None:
            RACE_HOOK()
        try:
            _pg_lock_recount_commit(s, b, shape, quantity, booking_id, now, writes)
            return
        except _NoFit:
            used = _seats_left_for_message(b, shape, quantity, booking_id, now)
    else:
        conn = s.connection()
        for statement, rows in writes:
            conn.execute(statement, rows if len(rows) > 1 else rows[0])
        if RACE_HOOK is not None:
            RACE_HOOK()
        lock(s, lock_key(b))
        used = seats_used(s, b, shape, now, exclude_booking_id=booking_id)
        if used + quantity <= shape.capacity:
            return
    remaining = max(shape.capacity - used, 0)
    if remaining and quantity > 1:
        raise NotAvailable(Np_("Only {remaining} seat is left at that time.",
                                   "Only {remaining} seats are left at that time.", "remaining"), remaining=remaining)
    raise NotAvailable()


@contextlib.contextmanager
def implicit_transactions(s: Session) -> Iterator[bool]:
    """A new booking's connection, PostgreSQL with the lock on: in autocommit (db.autocommit),
    so that its first statement needs no BEGIN (a round trip of its own in psycopg) and its
    writes, lock and re-count are one implicit transaction ending at the final pipeline's
    Sync (_pg_lock_recount_commit). Yields whether it did so."""
    if not pipelined(s):
        yield False
        return
    with db.autocommit(s.connection()):
        yield True


def explicit_transaction(s: Session) -> None:
    """Leave `implicit_transactions` for the rest of this unit of work: what follows (the
    sweep of expired holds, then the booking) commits together, its lock waits bounded."""
    db.leave_autocommit(s.connection())
    db.set_local_lock_timeout(s)


def pipelined(s: Session) -> bool:
    """PostgreSQL with the lock on: the hot path's writes go out with lock + re-count + COMMIT."""
    return LOCKING and db.is_postgres(s)


class BookingWrites:
    """The inserts of one booking transaction, collected to be sent together: as psycopg
    statements in the final pipeline on PostgreSQL (`_pg_lock_recount_commit`), as
    SQLAlchemy Core inserts before the re-count elsewhere."""

    def __init__(self, s: Session) -> None:
        self.pipelined = pipelined(s)
        self._session = s
        # (pipelined: each row's values in column order; else the row dicts, for Core inserts)
        self.items: list[tuple[Any, list[Any]]] = []

    def insert(self, table: Any, rows: list[dict[str, Any]], *, on_conflict: str | None = None) -> None:
        if not rows:
            return
        if self.pipelined:  # each row as its values in column order, JSON columns' dicts/lists as Json
            columns = tuple(rows[0])
            values_of, json_at = _pg_row_values(table, columns)
            values = [values_of(r) for r in rows]
            if json_at:
                values = [_with_json(v, json_at) for v in values]
            self.items.append(((table.name, columns, pg_types(table, columns), on_conflict), values))
        else:
            stmt = table.insert()
            if on_conflict:
                stmt = outbox.dialect_insert(self._session)(table).on_conflict_do_nothing(index_elements=[on_conflict])
            self.items.append((stmt, rows))


@functools.lru_cache(maxsize=64)
def _pg_row_values(table: Any, columns: tuple[str, ...]) -> tuple[Callable[[dict[str, Any]], tuple], tuple[int, ...]]:
    """(a row dict → its values in `columns` order — one C call, not a loop per column —,
    the positions of `table`'s JSON columns among them)."""
    getter = operator.itemgetter(*columns) if len(columns) > 1 else (lambda r: (r[columns[0]],))
    return getter, tuple(i for i, c in enumerate(columns) if isinstance(table.c[c].type, sqltypes.JSON))


def _with_json(values: tuple, json_at: tuple[int, ...]) -> list[Any]:
    """`values` with the dicts and lists at `json_at` wrapped as psycopg Json."""
    out = list(values)
    for i in json_at:
        if isinstance(out[i], (dict, list)):
            out[i] = Json(out[i])
    return out


@functools.lru_cache(maxsize=64)
def pg_types(table: Any, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The PostgreSQL types of `table`'s `columns`, without lengths (an explicit cast to
    varchar(n) would cut a long value; the insert's own assignment still refuses it)."""
    dialect = postgresql.dialect()
    return tuple(re.sub(r"\(\d+\)", "", table.c[c].type.compile(dialect=dialect)) for c in columns)


@functools.lru_cache(maxsize=64)
def pg_writes_then_lock_sql(specs: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str | None, int], ...],
                             lock: bool = True) -> str:
    """One statement: the transaction's lock timeout, each (table, columns, their types,
    on-conflict column, row count) insert as a data-modifying CTE, then the advisory lock
    (`lock`); parameters $1… in that order: each row's values in column order, the two lock
    keys (`lock`), the lock timeout ('3000ms').

    The lock timeout comes first by construction, not by the order PostgreSQL happens to run
    CTEs in: every insert reads its rows from `lt` (the VALUES typed by casts, as a subquery
    does not take the target columns' types), so no row is written — no trigger locks a
    session's counter row, no exclusion check waits — before set_config has run; the
    advisory lock is taken in the main query, which reads `lt` too."""
    n_param = sum(len(columns) * n for _t, columns, _types, _c, n in specs)
    timeout = f"${n_param + (3 if lock else 1)}"
    ctes = [f"lt AS MATERIALIZED (SELECT set_config('lock_timeout', {timeout}, true) AS v)"]
    n_param = 0
    for i, (table, columns, types, on_conflict, n) in enumerate(specs):
        values = []
        for _ in range(n):
            values.append("(" + ", ".join(f"${n_param + j + 1}::{types[j]}" for j in range(len(columns))) + ")")
            n_param += len(columns)
        sql = (f'INSERT INTO {table} ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
               f'SELECT v.* FROM lt, (VALUES {", ".join(values)}) AS v')
        ctes.append(f"w{i} AS ({sql}{f' ON CONFLICT ({chr(34)}{on_conflict}{chr(34)}) DO NOTHING' if on_conflict else ''})")
    main = f"SELECT pg_advisory_xact_lock(${n_param + 1}, ${n_param + 2}) FROM lt" if lock else "SELECT 1 FROM lt"
    return "WITH " + ", ".join(ctes) + " " + main


def _seats_left_for_message(b: Bookable, shape: SlotShape, quantity: int, booking_id: int, now: dt.datetime) -> int:
    """After a failed re-count (its transaction is aborted): the seats used, read again for
    the "only N seats left" message, which only a multi-seat request shows."""
    if quantity <= 1:
        return shape.capacity
    with db.read_session() as rs:
        return seats_used(rs, b, shape, now, exclude_booking_id=booking_id)



def recount_each(s: Session, b: Bookable, items: list[tuple[SlotShape, int]], quantity: int,
                 now: dt.datetime) -> list[bool]:
    """A recurring series (services/series.py): the transaction's bookings are flushed; then,
    under the capacity lock (an event: its sessions' counter rows, in id order, as the
    triggers take them), for each (shape, booking id): do the competing active bookings +
    ours fit? Not pipelined: the caller's unit of work commits (or rolls back) after."""
    s.flush()
    if RACE_HOOK is not None:
        RACE_HOOK()
    with busy_on_lock_wait():
        if b.kind == "event":
            lock_session_counters(s, (shape.session_id for shape, _id in items if shape.session_id is not None))
        else:
            lock(s, lock_key(b))
        return [seats_used(s, b, shape, now, exclude_booking_id=booking_id) + quantity <= shape.capacity
                for shape, booking_id in items]
