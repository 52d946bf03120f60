"""Booking Service: book, reschedule, cancel, complete / no-show, holds, listings.

Never oversell (ARCHITECTURE.md, "No double booking"):
- SQLite: `db.unit_of_work()` starts with BEGIN IMMEDIATE (one writer at a time).
- PostgreSQL: every writing transaction bounds lock waits (`SET LOCAL lock_timeout`) before its first lock,
  fails fast when a plain count already shows the slot full (no write, no lock),
  writes its rows (booking, audit, outbox, idempotency record), then takes a
  transaction-scoped advisory lock on the capacity it consumes and re-counts the competing
  active bookings from the source of truth before committing. Writes, lock, re-count and
  COMMIT are sent in one round trip (psycopg pipeline; the count's snapshot is taken after
  the lock is granted; a count that doesn't fit aborts the transaction, so the COMMIT is
  skipped), so the lock is never held across a client round trip. Because every
  transaction inserts before it counts and the counts are serialised by the lock, a later
  transaction always sees the earlier one's committed row; the earlier one never needed to
  see the later one.
- The booking hot path (`book`) is 2 round trips on PostgreSQL (3 the first time a process
  books a bookable), its connection in autocommit (`_implicit_transactions`): (1) the
  bookable, provider and customer and the new booking's id from its sequence, in one
  statement outside the write transaction, and with it (2) the slot check
  with the seats already used (an event session with its usage; a room's/service's day
  hours and its usage + any expired hold in the way: the block follows from the start
  alone) — built from the bookable's duration, buffers, capacity… as this process last
  saw them, and used only if the row just read still has those values (else sent as a
  round trip of its own); (3) the lock timeout, the booking, outbox, audit (and
  idempotency) inserts and the lock in one statement, then the re-count: one implicit
  transaction, committed at the pipeline's Sync (no BEGIN, no COMMIT). Rows are read into plain row objects,
  statements are prebuilt and the writes are psycopg statements (`_Writes`); elsewhere
  (SQLite) the same writes are SQLAlchemy Core inserts run before the re-count.
  Lock key: (1, bookable id) for rooms and events, (2, provider id) for services (a
  provider's services share the provider's time). Keys are taken in sorted order.
- Capacity-1 rooms/services also have a database backstop: an exclusion constraint on
  the buffered block (migration 0002). Expired-but-unswept holds are cancelled in the same
  transaction before inserting so that they don't trip it.
- A lock wait beyond the timeout (or SQLite's busy timeout) → `Busy(retry_after=1)`:
  nothing was changed and the client may retry with the same idempotency key.

Every state change bumps `version` (and `sequence` when the customer's calendar must
follow), writes an AuditEvent and an outbox row in the same transaction.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psycopg
from pydantic_core import PydanticUndefined
from psycopg.types.json import Json
from sqlalchemy import bindparam, delete, func, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_, Np_
from booking_app.models import (
    ACTIVE_STATUSES,
    AuditEvent,
    Bookable,
    Booking,
    BookingStatus,
    EventSession,
    IdempotencyRecord,
    Notification,
    Payment,
    User,
)
from booking_app.models.base import utcnow
from booking_app.models.booking import GuestBookingRequest
from booking_app.services import audit, availability, capacity, outbox, ratelimit, validation
from booking_app.services.actors import Actor
from booking_app.services.availability import (
    _LOOKAHEAD,
    _LOOKBACK,
    SlotShape,
    is_active,
    resolve_start,
    resolve_start_with_usage,
    seats_used,
)
from booking_app.services.catalog import _int, parse_aware_datetime, parse_date
from booking_app.services.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    NotAvailable,
    NotFound,
    Unauthorized,
)

MAX_QUANTITY = 1000
MAX_PAGE = 200
STATUSES = tuple(s.value for s in BookingStatus)
PAYMENT_METHODS = ("on_site", "card", "paypal")

#: Test-only switches. `_LOCKING = False` skips the advisory lock (the control test shows
#: the race then oversells); `_RACE_HOOK` runs between the insert and the re-count.
_LOCKING = True
_RACE_HOOK: Callable[[], None] | None = None

_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


# ---------------------------------------------------------------------------------------
# read model
# ---------------------------------------------------------------------------------------

@dataclass
class BookingView:
    id: int
    reference: str
    service_id: int
    service_name: str
    service_kind: str
    timezone: str  # the bookable's
    provider_id: int
    session_id: int | None
    user_id: int | None
    guest_name: str | None
    guest_email: str | None
    guest_phone: str | None
    start: dt.datetime
    end: dt.datetime
    quantity: int
    status: str
    hold_expires_at: dt.datetime | None
    price_cents: int
    currency: str
    payment_status: str  # latest Payment's status, "none" without one
    notes: str
    refund_due_cents: int
    cancel_reason: str | None
    cancelled_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    sequence: int
    # who booked: the user's full name (or username) and email, the guest's for guests; None
    # where the caller did not load the user (only get_booking/list_bookings do)
    customer_name: str | None = None
    customer_email: str | None = None
    # the version its guest manage links are signed for (booking_manage_token)
    link_version: int = 0


def _view(bk: Booking, b: Bookable, payment_status: str = "none",
          customer: tuple[str | None, str | None, str | None] | None = None) -> BookingView:
    """`customer`: the booking user's (full_name, username, email) when loaded."""
    assert bk.id is not None
    if bk.user_id is None:
        c_name, c_email = bk.guest_name, bk.guest_email
    elif customer is not None:
        c_name, c_email = (customer[0] or customer[1] or None), customer[2]
    else:
        c_name = c_email = None
    return BookingView(
        id=bk.id, reference=bk.reference, service_id=bk.bookable_id, service_name=b.name, service_kind=b.kind,
        timezone=b.timezone, provider_id=bk.provider_id, session_id=bk.session_id, user_id=bk.user_id,
        guest_name=bk.guest_name, guest_email=bk.guest_email, guest_phone=bk.guest_phone, start=bk.start_at,
        end=bk.end_at, quantity=bk.quantity, status=bk.status, hold_expires_at=bk.hold_expires_at,
        price_cents=bk.price_cents, currency=bk.currency, payment_status=payment_status, notes=bk.notes,
        refund_due_cents=bk.refund_due_cents, cancel_reason=bk.cancel_reason, cancelled_at=bk.cancelled_at,
        created_at=bk.created_at, updated_at=bk.updated_at, version=bk.version, sequence=bk.sequence,
        customer_name=c_name, customer_email=c_email, link_version=getattr(bk, "manage_link_version", 0) or 0,
    )


def _payment_statuses(s: Session, ids: list[int]) -> dict[int, str]:
    """booking id → status of its latest Payment (one query)."""
    if not ids:
        return {}
    rows = s.exec(select(Payment.booking_id, Payment.status, Payment.created_at, Payment.id)  # type: ignore[call-overload]
                  .where(Payment.booking_id.in_(ids))).all()  # type: ignore[attr-defined]
    latest: dict[int, tuple] = {}
    for bid, status, created, pid in rows:
        if bid not in latest or (created, pid) > latest[bid][0]:
            latest[bid] = ((created, pid), status)
    return {bid: v[1] for bid, v in latest.items()}


def _full_view(s: Session, bk: Booking, b: Bookable | None = None) -> BookingView:
    b = b or s.get(Bookable, bk.bookable_id)
    assert b is not None and bk.id is not None
    return _view(bk, b, _payment_statuses(s, [bk.id]).get(bk.id, "none"))


# ---------------------------------------------------------------------------------------
# guest links
# ---------------------------------------------------------------------------------------

def _sign(booking_id: int, version: int = 0) -> str:
    key = get_settings().secret_key.encode()
    # (version 0 signs what links signed before versions existed did: those keep working)
    message = f"booking-manage:{booking_id}" if not version else f"booking-manage:{booking_id}:{version}"
    mac = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def booking_manage_token(booking_id: int, version: int = 0) -> str:
    """A signed token that lets whoever holds it (the guest, via the emailed link) view,
    reschedule and cancel one booking: `<id>.<HMAC-SHA256 of id and link version with
    SECRET_KEY>`. `version`: the booking's `manage_link_version` — re-issuing the link bumps
    it, which revokes every older token. Valid until MANAGE_LINK_TTL_DAYS after the end."""
    return f"{int(booking_id)}.{_sign(int(booking_id), int(version or 0))}"


def _token_booking_id(token: Any) -> int | None:
    if not token or not isinstance(token, str) or len(token) > 100 or "." not in token:
        return None
    raw_id, _, _sig = token.partition(".")
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 12:
        return None
    return int(raw_id)


def manage_link_expires_at(end_at: dt.datetime) -> dt.datetime:
    """When the manage links of a booking ending at `end_at` stop working."""
    return end_at + dt.timedelta(days=get_settings().manage_link_ttl_days)


def manage_token_grants(token: str | None, booking: Any, now: dt.datetime | None = None) -> bool:
    """True when `token` is a current manage token of `booking` (a Booking or row with id,
    end_at, manage_link_version): signed for its id and current link version (constant-time
    compare), and not expired. Every other token — wrong, re-issued, expired — is False."""
    booking_id = _token_booking_id(token)
    if booking_id is None or booking is None or booking_id != booking.id:
        return False
    if (now or utcnow()) > manage_link_expires_at(booking.end_at):
        return False
    expected = _sign(booking_id, int(getattr(booking, "manage_link_version", 0) or 0))
    return hmac.compare_digest(str(token).partition(".")[2].encode(), expected.encode())


def verify_manage_token(token: str | None, now: dt.datetime | None = None) -> int | None:
    """The booking id of a current manage token (see manage_token_grants; one read), else None."""
    booking_id = _token_booking_id(token)
    if booking_id is None:
        return None
    with db.read_session() as s:
        bk = s.get(Booking, booking_id)
        return booking_id if manage_token_grants(token, bk, now) else None


# ---------------------------------------------------------------------------------------
# transactions, locks, errors
# ---------------------------------------------------------------------------------------

def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)


def _is_busy(exc: BaseException) -> bool:
    state = _sqlstate(exc)
    if state in ("55P03", "40P01", "40001", "57014"):  # lock timeout, deadlock, serialization, cancel
        return True
    msg = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in msg or "database is busy" in msg or "lock timeout" in msg


_transaction = capacity.transaction


def lock_key(b: Bookable) -> tuple[int, int]:
    """The advisory-lock key guarding `b`'s capacity: provider time for services."""
    if b.kind == "service":
        return (2, b.provider_id)
    return (1, b.id)  # type: ignore[return-value]


def _lock(s: Session, *keys: tuple[int, int]) -> None:
    """Transaction-scoped lock(s) on capacity keys, in sorted order (PostgreSQL; SQLite
    already holds the single write lock since BEGIN IMMEDIATE)."""
    if not _LOCKING or not db.is_postgres(s):
        return
    conn = s.connection()
    for a, b in sorted(set(keys)):
        conn.execute(_LOCK_SQL, {"a": a, "b": b})


_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:a, :b)")
_LOCK_SESSIONS_SQL = text("SELECT id FROM event_sessions WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE")


def _lock_session_counters(s: Session, session_ids: Iterable[int]) -> None:
    """PostgreSQL: the counter rows of these event sessions (migration 0003), in id order —
    the order a booking moved between two sessions locks them in (its trigger)."""
    ids = sorted(set(session_ids))
    if ids and db.is_postgres(s):
        s.connection().execute(_LOCK_SESSIONS_SQL, {"ids": ids})


def lock_capacity_of(s: Session, booking: Booking) -> None:
    """PostgreSQL: the lock a booking's seats are counted under — its session's counter row,
    else the advisory lock on its bookable (provider, for services). For a caller about to
    change what the booking holds outside this module (a payment extending its hold), so
    that it can't race with a booking counting the seats. SQLite: nothing (the unit of work
    holds the single write lock)."""
    if not db.is_postgres(s):
        return
    if booking.session_id is not None:
        _lock_session_counters(s, [booking.session_id])
        return
    bookable = s.get(Bookable, booking.bookable_id)
    assert bookable is not None
    a, b = lock_key(bookable)
    s.connection().execute(_LOCK_SQL, {"a": a, "b": b})

# The re-count of availability.seats_used in plain PostgreSQL SQL, for the pipeline below.
_PG_ACTIVE = ("status IN ('pending', 'confirmed') AND id <> %(excl)s AND (status = 'confirmed' OR "
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
# Seats used (a booking of the provider's other service overlapping takes them all); when
# ours don't fit, the division by zero aborts the transaction, so the COMMIT queued behind
# it in the pipeline is skipped and nothing is written. The capacity is read here too, under
# the lock: one lowered since the slot check (a provider's edit) counts.
_PG_CHECK = ("SELECT used, 1 / (CASE WHEN used + %(q)s > cap THEN 0 ELSE 1 END) FROM "
             "(SELECT CASE WHEN other > 0 THEN cap ELSE own END AS used, cap FROM ({recount}) r, "
             "(SELECT coalesce(({capacity}), 0) AS cap) c) x")  # (no row: capacity 0)
_PG_BOOKABLE_CAPACITY = "SELECT capacity FROM bookables WHERE id = %(bid)s"
# A session: its counter (migration 0003), which already holds our seats — the trigger
# added them when our booking was written, and locked the counter row until COMMIT, which
# is where the session's bookings queue (no advisory lock). When all fit by the counter
# they fit; only when they seem not to (the counter still holds expired, unswept holds) are
# the session's bookings counted. No session row: capacity 0.
_PG_CHECK_SESSION = (
    "SELECT used, 1 / (CASE WHEN used + %(q)s > cap THEN 0 ELSE 1 END) FROM "
    "(SELECT CASE WHEN s.seats_taken IS NULL THEN 0 WHEN s.seats_taken <= s.capacity THEN s.seats_taken - %(q)s "
    "ELSE (SELECT own FROM (" + _PG_RECOUNT_SESSION + ") r) END AS used, coalesce(s.capacity, 0) AS cap "
    "FROM (SELECT 1) one LEFT JOIN event_sessions s ON s.id = %(sid)s) x")
_PG_CHECK_ROOM = _PG_CHECK.format(recount=_PG_RECOUNT_BLOCK.format(scope=_PG_SCOPE_BOOKABLE),
                                  capacity=_PG_BOOKABLE_CAPACITY)
_PG_CHECK_SERVICE = _PG_CHECK.format(recount=_PG_RECOUNT_BLOCK.format(scope=_PG_SCOPE_PROVIDER),
                                     capacity=_PG_BOOKABLE_CAPACITY)
_PG_BUSY_STATES = ("55P03", "40P01", "40001", "57014")


def _pg_lock_recount_commit(s: Session, b: Bookable, shape: SlotShape, quantity: int, booking_id: int,
                            now: dt.datetime, writes: list[tuple[Any, list[dict[str, Any]]]]) -> None:
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

    A new booking (`_book`, its connection in autocommit: `_implicit_transactions`) sends
    no BEGIN and no COMMIT: in the extended query protocol the statements up to a Sync are
    one transaction, committed at the Sync that ends the pipeline, and a failing statement
    aborts it and skips the rest up to the Sync — the same all-or-nothing, two statements
    fewer. The inserts' statement then sets the lock timeout itself, before it writes (see
    _pg_writes_then_lock_sql).

    An event session takes no advisory lock: its counter row is the lock (see
    _PG_CHECK_SESSION). The trigger locked it when our booking was written — by the inserts
    here, or by the flush of a reschedule or revival before — so the check, in a statement
    of its own, sees every booking committed before us. Every path that changes a
    session's seats takes its counter row(s) after the booking row it changes (if any) and
    before any other lock, in id order when there are two, and none takes the advisory lock
    after them: no lock-order cycles."""
    session = shape.session_id is not None
    if session:
        sql = _PG_CHECK_SESSION
    else:
        sql = _PG_CHECK_SERVICE if b.kind == "service" else _PG_CHECK_ROOM
    params = {"bid": b.id, "pid": b.provider_id, "sid": shape.session_id, "excl": booking_id, "now": now,
              "lo": shape.block_start - _LOOKBACK, "hi": shape.block_end + _LOOKAHEAD,
              "a": shape.block_start, "z": shape.block_end, "q": quantity}
    s.flush()  # nothing may be left for after the COMMIT below
    pg = s.connection().connection.driver_connection
    write_params = [row[c] for (_table, columns, _types, _conflict), rows in writes for row in rows for c in columns]
    if not session:  # (a session's counter row is its lock)
        write_params += list(lock_key(b))
    write_params.append(f"{int(get_settings().db_lock_timeout_ms)}ms")
    implicit = pg.autocommit  # (see _implicit_transactions)
    check_sql, names = _positional(sql)
    try:
        with pg.pipeline():
            # positional $n parameters (RawCursor): psycopg would parse a %s query of over 50
            # parameters anew on every call (it caches only smaller ones); one cursor for the
            # three statements (none of their rows is read: a failed check raises)
            cur = psycopg.RawCursor(pg)
            if writes or not session:  # (inserts and/or the advisory lock)
                cur.execute(
                    _pg_writes_then_lock_sql(tuple((*spec, len(rows)) for spec, rows in writes), lock=not session),
                    write_params, prepare=db.PREPARE_IN_PIPELINE)
            cur.execute(check_sql, [params[name] for name in names], prepare=db.PREPARE_IN_PIPELINE)
            if not implicit:
                cur.execute("COMMIT", prepare=False)
    except psycopg.errors.DivisionByZero:
        raise _NoFit() from None
    except psycopg.errors.ExclusionViolation:
        raise NotAvailable() from None  # the backstop (migration 0002) saw an overlap
    except psycopg.errors.UniqueViolation:
        raise _DuplicateRequest() from None
    except psycopg.Error as exc:
        if getattr(exc, "sqlstate", None) in _PG_BUSY_STATES:
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


class _DuplicateRequest(Exception):
    """A unique key of the batched writes was taken meanwhile (the idempotency record of a
    concurrent request with the same key): the transaction is aborted."""


class _NoFit(Exception):
    """The re-count under the lock found the seats taken (the transaction is aborted)."""


def _recount_or_fail(s: Session, b: Bookable, shape: SlotShape, quantity: int, booking_id: int,
                     now: dt.datetime, writes: list[tuple[Any, list[dict[str, Any]]]] | None = None) -> None:
    """Run the transaction's batched `writes` (from `_Writes`), then, under the lock: the
    competing active bookings + ours must fit. On PostgreSQL this also commits (see
    _pg_lock_recount_commit): call it last in the transaction."""
    writes = writes or []
    if _pipelined(s):
        if _RACE_HOOK is not None:
            _RACE_HOOK()
        try:
            _pg_lock_recount_commit(s, b, shape, quantity, booking_id, now, writes)
            return
        except _NoFit:
            used = _seats_left_for_message(b, shape, quantity, booking_id, now)
    else:
        conn = s.connection()
        for statement, rows in writes:
            conn.execute(statement, rows if len(rows) > 1 else rows[0])
        if _RACE_HOOK is not None:
            _RACE_HOOK()
        _lock(s, lock_key(b))
        used = seats_used(s, b, shape, now, exclude_booking_id=booking_id)
        if used + quantity <= shape.capacity:
            return
    remaining = max(shape.capacity - used, 0)
    if remaining and quantity > 1:
        raise NotAvailable(Np_("Only {remaining} seat is left at that time.",
                                   "Only {remaining} seats are left at that time.", "remaining"), remaining=remaining)
    raise NotAvailable()


@contextlib.contextmanager
def _implicit_transactions(s: Session) -> Iterator[bool]:
    """A new booking's connection, PostgreSQL with the lock on: in autocommit (db.autocommit),
    so that its first statement needs no BEGIN (a round trip of its own in psycopg) and its
    writes, lock and re-count are one implicit transaction ending at the final pipeline's
    Sync (_pg_lock_recount_commit). Yields whether it did so."""
    if not _pipelined(s):
        yield False
        return
    with db.autocommit(s.connection()):
        yield True


def _explicit_transaction(s: Session) -> None:
    """Leave `_implicit_transactions` for the rest of this unit of work: what follows (the
    sweep of expired holds, then the booking) commits together, its lock waits bounded."""
    db.leave_autocommit(s.connection())
    db.set_local_lock_timeout(s)


def _pipelined(s: Session) -> bool:
    """PostgreSQL with the lock on: the hot path's writes go out with lock + re-count + COMMIT."""
    return _LOCKING and db.is_postgres(s)


class _Writes:
    """The inserts of one booking transaction, collected to be sent together: as psycopg
    statements in the final pipeline on PostgreSQL (`_pg_lock_recount_commit`), as
    SQLAlchemy Core inserts before the re-count elsewhere."""

    def __init__(self, s: Session) -> None:
        self.pipelined = _pipelined(s)
        self._session = s
        self.items: list[tuple[Any, list[dict[str, Any]]]] = []

    def insert(self, table: Any, rows: list[dict[str, Any]], *, on_conflict: str | None = None) -> None:
        if not rows:
            return
        if self.pipelined:
            columns = tuple(rows[0])
            self.items.append(((table.name, columns, _pg_types(table, columns), on_conflict),
                               [{k: (Json(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()}
                                for r in rows]))
        else:
            stmt = table.insert()
            if on_conflict:
                stmt = outbox.dialect_insert(self._session)(table).on_conflict_do_nothing(index_elements=[on_conflict])
            self.items.append((stmt, rows))


@functools.lru_cache(maxsize=64)
def _pg_types(table: Any, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The PostgreSQL types of `table`'s `columns`, without lengths (an explicit cast to
    varchar(n) would cut a long value; the insert's own assignment still refuses it)."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    return tuple(re.sub(r"\(\d+\)", "", table.c[c].type.compile(dialect=dialect)) for c in columns)


@functools.lru_cache(maxsize=64)
def _pg_writes_then_lock_sql(specs: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str | None, int], ...],
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


def _sweep_overlapping_holds(s: Session, b: Bookable, shape: SlotShape, now: dt.datetime,
                             exclude_id: int | None = None) -> None:
    """Cancel the expired, not yet swept holds that overlap a new block (capacity-1
    bookables only, where the exclusion constraint would otherwise see them)."""
    if b.capacity != 1 or b.kind == "event":
        return
    rows = s.exec(select(Booking).where(
        Booking.bookable_id == b.id, Booking.status == BookingStatus.pending.value,
        Booking.hold_expires_at <= now,  # type: ignore[operator]
        Booking.block_start_at < shape.block_end, Booking.block_end_at > shape.block_start,
    ).with_for_update()).all()
    for bk in rows:
        if bk.id != exclude_id:
            _expire(s, bk, now)


def _expire(s: Session, bk: Booking, now: dt.datetime) -> None:
    bk.status = BookingStatus.cancelled.value
    bk.cancel_reason = "hold_expired"
    bk.cancelled_at = now
    bk.updated_at = now
    bk.version += 1
    bk.sequence += 1
    s.add(bk)
    audit.record(s, actor_id=None, action="booking.hold_expired", entity="booking", entity_id=bk.id)
    outbox.booking_event(s, booking=bk, event="booking_cancelled", extra={"reason": "hold_expired"})


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def _new_reference() -> str:
    # one urandom call; 256 is a multiple of the 32-letter alphabet, so every letter is equally likely
    return "".join(_REF_ALPHABET[x % 32] for x in secrets.token_bytes(8))


def _guest_fields(guest: Any) -> tuple[str, str, str | None]:
    def get(key: str) -> Any:
        return guest.get(key) if isinstance(guest, Mapping) else getattr(guest, key, None)

    name = validation.text(get("name"), field="guest.name", max_length=200, required=True)
    if _LINK_IN_NAME.search(name):
        raise InvalidInput(_NOT_A_LINK, field="guest.name")
    email = _guest_email(get("email"), field="guest.email")
    try:
        phone = validation.phone(get("phone"))
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="guest.phone", **exc.params) from None
    return name, email, phone


def _guest_email(value: Any, *, field: str = "email") -> str:
    try:
        return validation.email(value if isinstance(value, str) else "")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=field, **exc.params) from None


def _payment_method(value: Any) -> str | None:
    if value in (None, ""):
        return None
    allowed = ["on_site", *get_settings().online_payment_methods]
    if value not in allowed:
        raise InvalidInput(N_("This payment method is not available."), field="payment_method")
    return value


def _idempotency_key(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 200 or not value.isprintable():
        raise InvalidInput(N_("The idempotency key must be at most 200 printable characters."), field="idempotency_key")
    return value


def _is_manager(actor: Actor, bk: Booking) -> bool:
    return actor.is_admin or (actor.is_provider and actor.id is not None and actor.id == bk.provider_id)


def _access(actor: Actor, bk: Booking | None, manage_token: str | None) -> tuple[bool, bool]:
    """(may see/change as its customer, may manage as provider/admin); NotFound otherwise."""
    if bk is None:
        raise NotFound(LINK_NOT_VALID if manage_token is not None else N_("This booking does not exist."))
    manager = _is_manager(actor, bk)
    owner = (actor.id is not None and bk.user_id == actor.id) or (
        manage_token is not None and bk.user_id is None and manage_token_grants(manage_token, bk))
    if not (manager or owner):
        if manage_token is not None:  # wrong, re-issued or expired: one answer for all
            raise NotFound(LINK_NOT_VALID)
        raise NotFound(N_("This booking does not exist."))
    return owner, manager


def _load_for_change(s: Session, booking_id: Any) -> Booking | None:
    if isinstance(booking_id, bool) or not isinstance(booking_id, int):
        return None
    return s.exec(select(Booking).where(Booking.id == booking_id).with_for_update()).first()


def _request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _replay(scope: str, key: str, request_hash: str, *, actor: Actor,
            manage_token: str | None = None, trusted: bool = False) -> BookingView | None:
    """The booking an earlier request with this key made, if any — for a caller who may see
    it (`_may_replay`; `trusted`: the caller already proved access, e.g. by a guest's email
    confirmation link); NotFound for anyone else."""
    with db.read_session() as s:
        rec = s.exec(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                     IdempotencyRecord.key == key)).first()
        if rec is None:
            return None
        bk = s.get(Booking, rec.resource_id) if rec.resource_id is not None else None
        if bk is not None and not trusted and not _may_replay(actor, bk, rec.created_at, manage_token):
            # as if the key were unknown to them: before learning whether (or how) it was used
            raise NotFound(N_("This booking does not exist."))
        if rec.request_hash != request_hash:
            raise InvalidInput(N_("This idempotency key was already used for a different request."),
                               field="idempotency_key")
        if bk is None:
            return None
        return _full_view(s, bk)


def _shape_of(s: Session, bk: Booking, b: Bookable) -> SlotShape:
    cap = b.capacity
    if bk.session_id is not None:
        sess = s.get(EventSession, bk.session_id)
        cap = sess.capacity if sess is not None else cap
    return SlotShape(bk.start_at, bk.end_at, bk.block_start_at, bk.block_end_at, cap, bk.session_id)


def _customer_cutoff(bk: Booking, b: Bookable, now: dt.datetime, *, what: str) -> None:
    if now >= bk.start_at:
        raise Forbidden(N_("This booking has already started."))
    if b.cancel_cutoff_hours and now > bk.start_at - dt.timedelta(hours=b.cancel_cutoff_hours):
        if what == "cancel":
            raise Forbidden(Np_("Bookings can no longer be cancelled less than {hours} hour before the start.",
                                "Bookings can no longer be cancelled less than {hours} hours before the start.", "hours"),
                            hours=b.cancel_cutoff_hours)
        raise Forbidden(Np_("Bookings can no longer be changed less than {hours} hour before the start.",
                            "Bookings can no longer be changed less than {hours} hours before the start.", "hours"),
                        hours=b.cancel_cutoff_hours)


def _paid_cents(s: Session, booking_id: int) -> int:
    rows = s.exec(select(Payment.amount_cents, Payment.refunded_cents, Payment.status).where(  # type: ignore[call-overload]
        Payment.booking_id == booking_id)).all()
    return sum(max(a - (r or 0), 0) for a, r, st in rows if st in ("succeeded", "partially_refunded"))


# ---------------------------------------------------------------------------------------
# guests: no hoarding, email confirmation, manage links that end
# ---------------------------------------------------------------------------------------

LINK_NOT_VALID = N_("This booking link is not valid or has expired. You can ask for a new one.")
REQUEST_NOT_VALID = N_("This confirmation link is not valid or has expired. Please book again.")
_GUEST_QUANTITY = Np_("Guests can book at most {max} place at once. Sign in to book more.",
                      "Guests can book at most {max} places at once. Sign in to book more.", "max")
_GUEST_HOLDS_EMAIL = Np_("This email address already has {max} unpaid booking. Pay for or cancel it, or sign in, "
                         "to book more.",
                         "This email address already has {max} unpaid bookings. Pay for or cancel one, or sign in, "
                         "to book more.", "max")
_GUEST_HOLDS_IP = N_("Too many unpaid guest bookings come from your network. Pay for or cancel one, or sign in, "
                     "to book more.")
_CONFIRM_FIRST = N_("Please confirm your email address first: open the link we emailed you.")
_NOT_A_LINK = N_("Please write your name without web or email addresses.")
#: a name carrying a link (scheme, www., an address, a domain such as example.com): our
#: emails greet guests by name, and mail clients turn such text into links
_LINK_IN_NAME = re.compile(r"(?i)(?:://|www\.|@|\b[a-z0-9-]+\.[a-z]{2,24}(?![a-z]))")
#: advisory-lock classes of the guest counters (capacity uses 1 and 2; see lock_key)
_GUEST_EMAIL_LOCK, _GUEST_IP_LOCK = 3, 4


def guest_ip_key(ip: str | None) -> str | None:
    """What a guest's client IP is counted and stored under: a keyed hash (the address is
    never kept), of the /64 for IPv6 (one subscriber's block: a client can't dodge the per-IP
    cap by picking another address of its own block)."""
    if not ip or not isinstance(ip, str):
        return None
    value = ip.strip()[:100]
    try:
        addr = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        value = str(ipaddress.ip_network(f"{addr}/64", strict=False)) if addr.version == 6 else str(addr)
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"guest-ip:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def guest_email_confirmation_required(actor: Actor) -> bool:
    """Whether a booking by `actor` must wait for the guest to confirm their email address
    (GUEST_EMAIL_CONFIRMATION; anonymous visitors only): API and UI then call
    `request_guest_booking` instead of `book`."""
    return actor.role == "guest" and get_settings().guest_email_confirmation


def _lock_number(text_value: str) -> int:
    return int.from_bytes(hashlib.sha256(text_value.encode()).digest()[:4], "big", signed=True)


def _lock_guest(s: Session, email: str, ip_key: str | None) -> None:
    """PostgreSQL: the transaction-scoped locks that serialise one email address's (and one
    client's) guest bookings, so that their counts and caps hold under concurrency. Taken
    before any capacity lock, in a fixed order (class 3, then 4), by every path that takes
    them: no lock-order cycles. SQLite: the unit of work already holds the write lock."""
    if not db.is_postgres(s):
        return
    conn = s.connection()
    conn.execute(_LOCK_SQL, {"a": _GUEST_EMAIL_LOCK, "b": _lock_number(email.lower())})
    if ip_key:
        conn.execute(_LOCK_SQL, {"a": _GUEST_IP_LOCK, "b": _lock_number(ip_key)})


def _guest_rate(s: Session, kind: str, email: str, ip_key: str | None) -> None:
    """Count one guest `kind` of request ("booking", "request", "link") for the email
    address and the client; RateLimited (429 + Retry-After) when either is at its limit
    (GUEST_RATE_PER_EMAIL / _PER_IP per GUEST_RATE_WINDOW_MINUTES; off with
    RATE_LIMITS_ENABLED=false). Counted in the caller's transaction: a request that fails
    later (taken, invalid) is not counted."""
    settings = get_settings()
    window = dt.timedelta(minutes=settings.guest_rate_window_minutes)
    email_keys = [f"guest-{kind}:email:{email.lower()}"]
    ip_keys = [f"guest-{kind}:ip:{ip_key}"] if ip_key else []
    ratelimit.check(s, email_keys, limit=settings.guest_rate_per_email, window=window)
    if ip_keys:
        ratelimit.check(s, ip_keys, limit=settings.guest_rate_per_ip, window=window)
    ratelimit.hit(s, email_keys + ip_keys)


def _unpaid_guest_bookings(s: Session, where: Any, now: dt.datetime) -> int:
    """Active unpaid guest bookings matching `where`: pending with a hold not yet expired,
    or confirmed, still to come, with nothing paid (a free or pay-on-site booking holds its
    seats as surely as an unpaid hold)."""
    paid = select(Payment.id).where(Payment.booking_id == Booking.id,
                                    Payment.status.in_(("succeeded", "partially_refunded")))  # type: ignore[attr-defined]
    active = ((Booking.status == BookingStatus.confirmed.value)
              | ((Booking.status == BookingStatus.pending.value) & (Booking.hold_expires_at > now)))  # type: ignore[operator]
    stmt = select(func.count()).select_from(Booking).where(
        where, Booking.end_at > now, active, ~paid.exists())  # type: ignore[operator]
    return int(s.exec(stmt).one())  # type: ignore[call-overload]


def _check_guest_caps(s: Session, email: str, ip_key: str | None, now: dt.datetime) -> None:
    """Conflict (409) when the email address or the client already has its maximum of
    active unpaid guest bookings (GUEST_MAX_HOLDS_PER_EMAIL / _PER_IP). Call under
    `_lock_guest`. The per-client cap, like the rate limits, is off with
    RATE_LIMITS_ENABLED=false (load tests come from one address); the per-address cap stays."""
    settings = get_settings()
    by_email = (Booking.user_id.is_(None)) & (func.lower(Booking.guest_email) == email.lower())  # type: ignore[union-attr]
    if _unpaid_guest_bookings(s, by_email, now) >= settings.guest_max_holds_per_email:
        raise Conflict(_GUEST_HOLDS_EMAIL, max=settings.guest_max_holds_per_email)
    if (ip_key and ratelimit.enabled()
            and _unpaid_guest_bookings(s, Booking.guest_ip == ip_key, now) >= settings.guest_max_holds_per_ip):
        raise Conflict(_GUEST_HOLDS_IP)


@dataclass
class _GuestLimits:
    """What `_book` checks for an anonymous guest, under `_lock_guest`."""
    email: str
    ip_key: str | None
    count_rate: bool  # False for a booking made by a confirmed request (counted when requested)


@dataclass
class GuestRequestView:
    """A guest's booking request waiting for the email confirmation (holds nothing)."""
    id: int
    service_id: int
    start: dt.datetime
    quantity: int
    email: str
    expires_at: dt.datetime


def _request_sign(request_id: int, expires_at: dt.datetime) -> str:
    key = get_settings().secret_key.encode()
    message = f"guest-request:{request_id}:{int(expires_at.timestamp())}"
    return base64.urlsafe_b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()[:24]).decode().rstrip("=")


def guest_request_token(request_id: int, expires_at: dt.datetime) -> str:
    """The signed token of a booking request's confirmation link: `<id>.<HMAC of id and
    expiry with SECRET_KEY>`; valid until the request's `expires_at`."""
    return f"{int(request_id)}.{_request_sign(int(request_id), expires_at)}"


def confirm_url(token: str) -> str:
    """The page a confirmation link opens (ui/routes.py: CONFIRM_EMAIL)."""
    return f"{get_settings().public_url.rstrip('/')}/booking/confirm?token={token}"


def request_guest_booking(
    *,
    actor: Actor,
    service_id: int,
    start: dt.datetime | str,
    quantity: int = 1,
    notes: str | None = "",
    guest: Mapping[str, Any] | Any | None = None,
    payment_method: str | None = None,
    client_ip: str | None = None,
    now: dt.datetime | None = None,
) -> GuestRequestView:
    """GUEST_EMAIL_CONFIRMATION: record an anonymous guest's booking request and email them
    a short-lived link (GUEST_CONFIRMATION_MINUTES); nothing is held until they open it
    (`confirm_guest_request`). Checked now as far as it can be: the input, the guest rules
    and that the slot has the seats at this moment (NotAvailable otherwise). Rate-limited
    per email address and client (RateLimited)."""
    now = now or utcnow()
    if actor.role != "guest":
        raise Forbidden()
    settings = get_settings()
    start_at = parse_aware_datetime(start, field="start")
    quantity = _int(quantity, field="quantity", lo=1, hi=MAX_QUANTITY)
    if quantity > settings.guest_max_quantity:
        raise InvalidInput(_GUEST_QUANTITY, field="quantity", max=settings.guest_max_quantity)
    notes_text = validation.text(notes, field="notes", max_length=2000, multiline=True)
    method = _payment_method(payment_method)
    if guest is None:
        raise InvalidInput(N_("Give your name and email address to book as a guest."), field="guest")
    name, email, phone = _guest_fields(guest)
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise NotFound(N_("This service does not exist."))
    ip_key = guest_ip_key(client_ip)
    with db.read_session() as rs:
        b = rs.get(Bookable, service_id)
        if b is None or not b.is_active:
            raise NotFound(N_("This service does not exist."))
        shape, used, _expired = resolve_start_with_usage(rs, b, start_at, now, quantity=quantity)
        if quantity > shape.capacity:
            raise InvalidInput(_AT_MOST_SEATS, field="quantity", max=shape.capacity)
        if used + quantity > shape.capacity:
            raise NotAvailable()
        service = {"service": b.name, "location": b.location, "service_timezone": b.timezone,
                   "start": shape.start.isoformat(), "end": shape.end.isoformat()}
    with _transaction() as s:
        _lock_guest(s, email, ip_key)
        _guest_rate(s, "request", email, ip_key)
        expires = now + dt.timedelta(minutes=settings.guest_confirmation_minutes)
        req = GuestBookingRequest(bookable_id=service_id, start_at=shape.start, quantity=quantity, guest_name=name,
                                  guest_email=email, guest_phone=phone, guest_ip=ip_key, notes=notes_text,
                                  payment_method=method, locale=actor.locale or "en", created_at=now,
                                  expires_at=expires)
        s.add(req)
        s.flush()
        assert req.id is not None
        outbox.enqueue(s, channel="email", to=email, template="guest_booking_request", locale=req.locale,
                       context={**service, "name": name, "quantity": quantity,
                                "timezone": service["service_timezone"],
                                "expires_minutes": settings.guest_confirmation_minutes,
                                "confirm_url": confirm_url(guest_request_token(req.id, expires))},
                       dedupe_key=f"guest-request:{req.id}")
        audit.record(s, actor_id=None, action="booking.requested", entity="guest_booking_request", entity_id=req.id,
                     data={"bookable_id": service_id, "start": shape.start.isoformat(), "quantity": quantity})
        return GuestRequestView(id=req.id, service_id=service_id, start=shape.start, quantity=quantity, email=email,
                                expires_at=expires)


def confirm_guest_request(*, token: str | None, now: dt.datetime | None = None) -> BookingView:
    """Open a booking request's confirmation link: the guest has shown they read the
    address, so the booking is made now, through the normal capacity path (NotAvailable
    when the seats went meanwhile) and the guest rules (caps, quantity), then goes on as
    any guest booking (pending until paid, or confirmed). Opening the link again before it
    expires shows the same booking. A wrong or expired token → NotFound."""
    now = now or utcnow()
    request_id = _token_booking_id(token)
    with db.read_session() as rs:
        req = rs.get(GuestBookingRequest, request_id) if request_id is not None else None
        if req is None or not hmac.compare_digest(str(token).partition(".")[2].encode(),
                                                  _request_sign(req.id, req.expires_at).encode()):  # type: ignore[arg-type]
            raise NotFound(REQUEST_NOT_VALID)
        if now > req.expires_at:  # (also once used: the booking's own emails carry its manage link)
            raise NotFound(REQUEST_NOT_VALID)
        if req.booking_id is not None:
            bk = rs.get(Booking, req.booking_id)
            if bk is not None:
                return _full_view(rs, bk)
    view = _book_checked(
        actor=Actor.guest(locale=req.locale), service_id=req.bookable_id, start=req.start_at, quantity=req.quantity,
        notes=req.notes, guest={"name": req.guest_name, "email": req.guest_email, "phone": req.guest_phone},
        idempotency_key=f"guest-request:{req.id}", payment_method=req.payment_method, now=now,
        limits_ip_key=req.guest_ip, email_confirmed=True, replay_trusted=True)  # (the link proved access)
    with _transaction() as s:
        s.exec(update(GuestBookingRequest).where(GuestBookingRequest.id == req.id,  # type: ignore[call-overload, arg-type]
                                                 GuestBookingRequest.booking_id.is_(None))  # type: ignore[union-attr]
               .values(booking_id=view.id))
    return view


def purge_guest_requests(*, now: dt.datetime | None = None, keep: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Job sweep: delete booking requests whose link expired more than `keep` ago (a guest's
    name, address and phone are not kept for requests nobody confirmed; a confirmed one's
    booking has its own copy). Returns how many were deleted."""
    now = now or utcnow()
    with _transaction() as s:
        stale = delete(GuestBookingRequest).where(GuestBookingRequest.expires_at < now - keep)  # type: ignore[arg-type]
        return int(s.exec(stale).rowcount or 0)  # type: ignore[call-overload]


def request_manage_link(*, email: str, reference: str, client_ip: str | None = None,
                        now: dt.datetime | None = None) -> None:
    """A guest lost their link (or fears someone else has it): when `reference` is a guest
    booking made with `email` whose links have not expired, re-issue its manage link (the
    old one stops working) and email it there. Answers the same whether or not it matched
    (nothing is revealed); rate-limited per email address and client (RateLimited)."""
    now = now or utcnow()
    address = _guest_email(email)
    ref = validation.text(reference, field="reference", max_length=32).upper().replace(" ", "").replace("-", "")
    if not ref or not ref.isalnum() or len(ref) > 16:
        raise InvalidInput(N_("Enter the booking reference from your confirmation email."), field="reference")
    ip_key = guest_ip_key(client_ip)
    with _transaction() as s:
        _lock_guest(s, address, ip_key)
        _guest_rate(s, "link", address, ip_key)
        bk = s.exec(select(Booking).where(Booking.reference == ref, Booking.user_id.is_(None))  # type: ignore[union-attr]
                    .with_for_update()).first()
        if bk is None or (bk.guest_email or "").lower() != address.lower() or now > manage_link_expires_at(bk.end_at):
            return
        _reissue(s, bk, actor_id=None, now=now)


def reissue_manage_link(*, actor: Actor, booking_id: int, now: dt.datetime | None = None) -> None:
    """Staff (its provider, an admin): revoke a guest booking's manage link and email the
    guest a new one. Conflict for a customer's booking (they sign in; there is no link)."""
    now = now or utcnow()
    with _transaction() as s:
        bk = _load_for_change(s, booking_id)
        _owner, manager = _access(actor, bk, None)
        assert bk is not None
        if not manager:
            raise Forbidden()
        if bk.user_id is not None or not bk.guest_email:
            raise Conflict(N_("Only guest bookings have a manage link."))
        _reissue(s, bk, actor_id=actor.id, now=now)


def _reissue(s: Session, bk: Booking, *, actor_id: int | None, now: dt.datetime) -> None:
    """Bump the booking's link version (every older link stops working), point the messages
    still waiting in the outbox (reminders) at the new link, and email it to the guest."""
    assert bk.id is not None and bk.guest_email
    bk.manage_link_version = (bk.manage_link_version or 0) + 1
    bk.updated_at = now
    s.add(bk)
    s.flush()
    url = outbox.guest_manage_url(bk)
    waiting = s.exec(select(Notification).where(Notification.booking_id == bk.id,
                                                Notification.status == "pending")).all()
    for n in waiting:
        if isinstance(n.context, dict) and "manage_url" in n.context:
            n.context = {**n.context, "manage_url": url}
            s.add(n)
    b = s.get(Bookable, bk.bookable_id)
    outbox.enqueue(s, channel="email", to=bk.guest_email, template="guest_manage_link", locale=bk.locale or "en",
                   context={**outbox.booking_snapshot(s, bk, b), "name": bk.guest_name or "",
                            "timezone": b.timezone if b is not None else "UTC", "manage_url": url},
                   dedupe_key=f"manage-link:{bk.id}:{bk.manage_link_version}", booking_id=bk.id)
    audit.record(s, actor_id=actor_id, action="booking.manage_link_reissued", entity="booking", entity_id=bk.id,
                 data={"link_version": bk.manage_link_version})


# ---------------------------------------------------------------------------------------
# book
# ---------------------------------------------------------------------------------------

def book(
    *,
    actor: Actor,
    service_id: int,
    start: dt.datetime | str,
    quantity: int = 1,
    notes: str | None = "",
    guest: Mapping[str, Any] | Any | None = None,
    idempotency_key: str | None = None,
    payment_method: str | None = None,
    client_ip: str | None = None,
    manage_token: str | None = None,
    now: dt.datetime | None = None,
) -> BookingView:
    """Book `quantity` seats of bookable `service_id` at `start` (an aware datetime or an
    ISO string with offset; must be a free slot start, or a session start for events).

    Anonymous guests (issue 20): at most GUEST_MAX_QUANTITY seats (InvalidInput), at most
    GUEST_MAX_HOLDS_PER_EMAIL / _PER_IP active unpaid guest bookings (Conflict), rate-limited
    per email address and `client_ip` (RateLimited), held GUEST_HOLD_MINUTES while unpaid;
    with GUEST_EMAIL_CONFIRMATION they can't book directly (`request_guest_booking`).

    Signed-in users book for themselves; guests must give `guest={name, email, phone?}`
    (providers/admins may also pass `guest` to book for a walk-in customer). Status:
    `confirmed` when the price is 0, `payment_method == "on_site"`, or Stripe is disabled
    and no method is given; otherwise `pending` with `hold_expires_at = now + HOLD_MINUTES`.
    `idempotency_key`: the same key and request replays the first booking; the same key
    with a different request → InvalidInput; a replay re-checks access first (`_may_replay`:
    a guest's needs `manage_token` once IDEMPOTENCY_GUEST_REPLAY_SECONDS have passed).
    Errors: NotFound (unknown/inactive bookable),
    InvalidInput, NotAvailable (taken, full, outside hours, past, notice/advance), Busy."""
    return _book_checked(actor=actor, service_id=service_id, start=start, quantity=quantity, notes=notes, guest=guest,
                         idempotency_key=idempotency_key, payment_method=payment_method, now=now,
                         limits_ip_key=guest_ip_key(client_ip), email_confirmed=False, manage_token=manage_token)


def _book_checked(*, actor: Actor, service_id: int, start: dt.datetime | str, quantity: int, notes: str | None,
                  guest: Mapping[str, Any] | Any | None, idempotency_key: str | None, payment_method: str | None,
                  now: dt.datetime | None, limits_ip_key: str | None, email_confirmed: bool,
                  manage_token: str | None = None, replay_trusted: bool = False) -> BookingView:
    """`book`, for a guest whose email address may already be confirmed (a confirmed
    request: `email_confirmed`, not rate-limited again) and whose client is `limits_ip_key`."""
    now = now or utcnow()
    start_at = parse_aware_datetime(start, field="start")
    quantity = _int(quantity, field="quantity", lo=1, hi=MAX_QUANTITY)
    notes_text = validation.text(notes, field="notes", max_length=2000, multiline=True)
    method = _payment_method(payment_method)
    key = _idempotency_key(idempotency_key)
    guest_name = guest_email = guest_phone = None
    limits: _GuestLimits | None = None
    if actor.is_guest:
        if actor.role != "guest":  # Actor.system(): jobs don't book
            raise Forbidden()
        settings = get_settings()
        if settings.guest_email_confirmation and not email_confirmed:
            raise InvalidInput(_CONFIRM_FIRST, field="guest")
        if guest is None:
            raise InvalidInput(N_("Give your name and email address to book as a guest."), field="guest")
        guest_name, guest_email, guest_phone = _guest_fields(guest)
        if quantity > settings.guest_max_quantity:
            raise InvalidInput(_GUEST_QUANTITY, field="quantity", max=settings.guest_max_quantity)
        limits = _GuestLimits(email=guest_email, ip_key=limits_ip_key, count_rate=not email_confirmed)
    elif guest is not None:
        if not (actor.is_admin or actor.is_provider):
            raise InvalidInput(N_("Signed-in customers book for themselves."), field="guest")
        guest_name, guest_email, guest_phone = _guest_fields(guest)
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise NotFound(N_("This service does not exist."))
    scope = f"booking:user:{actor.id}" if actor.id is not None else f"booking:guest:{guest_email}"
    req_hash = "" if key is None else _request_hash(  # (only an idempotency key needs it)
        {"service_id": service_id, "start": start_at.isoformat(), "quantity": quantity, "notes": notes_text,
         "guest": [guest_name, guest_email, guest_phone], "payment_method": method})
    if key is not None:
        replayed = _replay(scope, key, req_hash, actor=actor, manage_token=manage_token, trusted=replay_trusted)
        if replayed is not None:
            return replayed
    try:
        return _book(actor=actor, service_id=service_id, start_at=start_at, quantity=quantity, notes=notes_text,
                     guest=(guest_name, guest_email, guest_phone), method=method, key=key, scope=scope,
                     req_hash=req_hash, now=now, limits=limits)
    except (IntegrityError, _DuplicateRequest):
        # a concurrent request with the same idempotency key committed first
        if key is not None:
            replayed = _replay(scope, key, req_hash, actor=actor, manage_token=manage_token, trusted=replay_trusted)
            if replayed is not None:
                return replayed
        raise Busy(retry_after=1) from None


def _book(*, actor: Actor, service_id: int, start_at: dt.datetime, quantity: int, notes: str,
          guest: tuple[str | None, str | None, str | None], method: str | None, key: str | None, scope: str,
          req_hash: str, now: dt.datetime, limits: _GuestLimits | None = None) -> BookingView:
    settings = get_settings()
    customer_id = actor.id if actor.id is not None and guest[1] is None else None
    # (lock waits: bounded by the write statement's own lock timeout, _pg_writes_then_lock_sql)
    with _transaction(set_lock_timeout=False) as s, _implicit_transactions(s) as implicit:
        writes = _Writes(s)
        # one query: the bookable, its provider, the booking customer (and on PostgreSQL the
        # new booking's id, so that every write can go out in the final round trip)
        b, provider, user, new_id, prefetched = _load_bookable_and_people(s, service_id, customer_id, start_at,
                                                                          quantity, now)
        if b is None or not b.is_active:
            raise NotFound(N_("This service does not exist."))
        shape, used, expired_holds = resolve_start_with_usage(s, b, start_at, now, quantity=quantity,
                                                              prefetched=prefetched)
        if quantity > shape.capacity:
            raise InvalidInput(_AT_MOST_SEATS, field="quantity", max=shape.capacity)
        # fast fail without writing anything (authoritative on SQLite, whose write lock we
        # hold; on PostgreSQL the re-count under the advisory lock below decides)
        if used + quantity > shape.capacity:
            raise NotAvailable()
        if limits is not None:  # an anonymous guest: rate, then caps, under the guest's locks
            if implicit:
                _explicit_transaction(s)  # (counts and booking: one transaction)
                implicit = False
            _lock_guest(s, limits.email, limits.ip_key)
            if limits.count_rate:
                _guest_rate(s, "booking", limits.email, limits.ip_key)
            _check_guest_caps(s, limits.email, limits.ip_key, now)
        if expired_holds:
            if implicit:
                _explicit_transaction(s)  # (expiring them and booking: one transaction)
            _sweep_overlapping_holds(s, b, shape, now)
        price = b.price_cents * quantity
        confirmed = price == 0 or method == "on_site" or (method is None and not settings.stripe_enabled)
        user_locale = actor.locale
        if customer_id is not None:
            if user is None or not user.is_active:
                raise Unauthorized()
            user_locale = user.locale or actor.locale
        row = {**_BOOKING_DEFAULTS,
               "reference": _new_reference(), "bookable_id": b.id, "provider_id": b.provider_id,
               "session_id": shape.session_id, "user_id": actor.id if guest[1] is None else None,
               "guest_name": guest[0], "guest_email": guest[1], "guest_phone": guest[2],
               "locale": user_locale or "en", "start_at": shape.start, "end_at": shape.end,
               "block_start_at": shape.block_start, "block_end_at": shape.block_end,
               "exclusive": b.capacity == 1 and b.kind != "event", "quantity": quantity,
               "status": BookingStatus.confirmed.value if confirmed else BookingStatus.pending.value,
               "hold_expires_at": None if confirmed else now + dt.timedelta(
                   minutes=settings.guest_hold_minutes if limits is not None else settings.hold_minutes),
               "guest_ip": limits.ip_key if limits is not None else None,
               "price_cents": price, "currency": b.currency, "notes": notes, "created_at": now, "updated_at": now}
        # Core inserts (the ORM unit of work cost more CPU than the round trips): the
        # booking, its outbox rows, the audit event, the idempotency record. The booking is
        # a plain row object (`_Row`), never in the session.
        if new_id is not None:
            row["id"] = new_id
            writes.insert(_BOOKINGS, [row])
        else:
            row["id"] = s.connection().execute(_INSERT_BOOKING, row).scalar_one()
        bk: Any = _Row(row)
        writes.insert(_NOTIFICATIONS, outbox.booking_event_values(
            s, booking=bk, event="booking_confirmed" if confirmed else "booking_pending",
            extra={"actor_id": actor.id}, bookable=b, customer=user, provider=provider), on_conflict="dedupe_key")
        at = utcnow()
        writes.insert(_AUDIT, [{"actor_id": actor.id, "action": "booking.created", "entity": "booking",
                                "entity_id": str(bk.id), "at": at,
                                "data": {"bookable_id": b.id, "start": bk.start_at.isoformat(),
                                         "quantity": quantity, "status": bk.status, "payment_method": method}}])
        if key is not None:
            writes.insert(_IDEMPOTENCY, [{"scope": scope[:100], "key": key, "request_hash": req_hash,
                                          "resource_id": bk.id, "status_code": 201, "created_at": at}])
        _recount_or_fail(s, b, shape, quantity, bk.id, now, writes.items)  # type: ignore[arg-type]
        return _view(bk, b)


_AT_MOST_SEATS = Np_("At most {max} seat can be booked at once.", "At most {max} seats can be booked at once.", "max")
_BOOKINGS = Booking.__table__  # type: ignore[attr-defined]
_NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
_IDEMPOTENCY = IdempotencyRecord.__table__  # type: ignore[attr-defined]
_INSERT_BOOKING = _BOOKINGS.insert().returning(_BOOKINGS.c.id)
#: a new booking's column defaults (the model's), for the Core insert
_BOOKING_DEFAULTS = {name: field.default for name, field in Booking.model_fields.items()
                     if name != "id" and field.default is not PydanticUndefined}


class _Row(SimpleNamespace):
    """A plain row object with the model's attribute names: what the hot path reads rows
    into instead of building ORM instances (a SQLModel table instance costs ~25 µs, four of
    them were a tenth of a booking's CPU). Never added to a session."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(**values)

#: the customer's and provider's columns the hot path needs (outbox recipients, checks)
_PERSON_COLUMNS = ("id", "username", "full_name", "email", "phone", "locale", "timezone", "is_active",
                   "notify_email", "notify_sms")
_BOOKABLE_COLUMNS = tuple(c.key for c in Bookable.__table__.columns)  # type: ignore[attr-defined]


def _load_bookable_and_people(s: Session, service_id: int, customer_id: int | None, start_at: dt.datetime, quantity: int,
                              now: dt.datetime) -> tuple[Bookable | None, User | None, User | None, int | None,
                                                         list[list[tuple]] | None]:
    """(bookable, its provider, the customer, the new booking's id or None, the slot
    check's rows or None) in one round trip; Nones when the bookable is unknown.

    On PostgreSQL (the connection in autocommit: `_implicit_transactions`) it is one
    statement outside the booking's write transaction — reads, each statement with its own
    snapshot as in any READ COMMITTED transaction, and the booking id drawn from its
    sequence — in one round trip (inside a transaction, psycopg would first send BEGIN and
    wait for it: a round trip of its own); the rows become plain `_Row` objects. When this process has seen the bookable
    before, the slot check's queries (availability.slot_queries_pg, built from the fields
    seen then) ride along in the same statement (_people_sql); their rows are used only if
    those fields are unchanged in the row just read — a guess checked against the truth,
    so there is nothing to invalidate."""
    if not _pipelined(s):
        row = s.exec(_people_stmt(), params={"sid": service_id, "cid": customer_id}).first()  # type: ignore[call-overload]
        if row is None:
            return None, None, None, None, None
        return row[0], row[1], row[2], None, None
    guess = _slot_fields_seen.get(service_id)
    ahead = availability.slot_queries_pg(guess, start_at, now, quantity) if guess is not None else []
    pg = s.connection().connection.driver_connection
    row = pg.execute(*_people_query(service_id, customer_id, ahead), binary=True).fetchone()
    if row is None:  # (no such bookable: the caller stops here)
        return None, None, None, None, None
    nb, npn = len(_BOOKABLE_COLUMNS), len(_PERSON_COLUMNS)
    b = _Row(dict(zip(_BOOKABLE_COLUMNS, row[:nb])))
    people = [_Row(dict(zip(_PERSON_COLUMNS, row[i:i + npn]))) if row[i] is not None else None
              for i in (nb, nb + npn)]
    new_id = row[nb + 2 * npn]
    seen = SimpleNamespace(**{f: getattr(b, f) for f in availability.SLOT_QUERY_FIELDS})
    prefetched = _slot_rows(row, ahead) if guess is not None and guess == seen else None
    if guess != seen:
        if len(_slot_fields_seen) >= _SLOT_FIELDS_MAX:
            _slot_fields_seen.clear()
        _slot_fields_seen[service_id] = seen
    return b, people[0], people[1], new_id, prefetched  # type: ignore[return-value]


#: per bookable id: its SLOT_QUERY_FIELDS when this process last booked it (a guess that
#: lets the slot check ride along with the first round trip; see _load_bookable_and_people)
_slot_fields_seen: dict[int, SimpleNamespace] = {}
_SLOT_FIELDS_MAX = 20_000


_PG_PEOPLE_COLUMNS = (
    ", ".join(f'b."{c}"' for c in _BOOKABLE_COLUMNS) + ", "
    + ", ".join(f'p."{c}"' for c in _PERSON_COLUMNS) + ", " + ", ".join(f'c."{c}"' for c in _PERSON_COLUMNS)
    + ", nextval('bookings_id_seq')")


def _people_query(service_id: int, customer_id: int | None, ahead: list[tuple[str, dict[str, Any], int, bool]]
                  ) -> tuple[str, dict[str, Any]]:
    """(sql, params) of the first statement of a booking, with the slot check's statements
    `ahead` (availability.slot_queries_pg) riding along — see _people_sql."""
    params: dict[str, Any] = {"sid": service_id, "cid": customer_id}
    for i, (_sql, part_params, _n, _one) in enumerate(ahead):
        params.update({f"q{i}_{k}": v for k, v in part_params.items()})
    return _people_sql(tuple((sql, n, one) for sql, _p, n, one in ahead)), params


def _slot_rows(row: Sequence[Any], ahead: list[tuple[str, dict[str, Any], int, bool]]) -> list[list[tuple]]:
    """The rows of each slot statement `ahead` from the first statement's `row` (laid out
    by _people_sql after the people columns and the id)."""
    out, k = [], len(_BOOKABLE_COLUMNS) + 2 * len(_PERSON_COLUMNS) + 1
    for _sql, _params, n, one_row in ahead:
        if one_row:
            out.append([tuple(row[k:k + n])] if row[k] is not None else [])
            k += n
        else:
            out.append([tuple(r) for r in row[k]])
            k += 1
    return out


@functools.lru_cache(maxsize=64)
def _people_sql(slot_parts: tuple[tuple[str, int, bool], ...]) -> str:
    """The first statement of a booking: the bookable, its provider, the customer, the new
    id — and the slot check's statements `slot_parts` (sql, columns, at
    most one row; from availability.slot_queries_pg, parameters renamed q<i>_<name>): one
    of at most one row as a LEFT JOIN LATERAL (its columns follow; NULL first column: no
    row), one of several rows as a JSON array of arrays. One statement instead of three
    costs the app ~2 × 110,000 instructions less (psycopg's work per statement)."""
    columns, joins = [_PG_PEOPLE_COLUMNS], []
    for i, (sql, n, one_row) in enumerate(slot_parts):
        sql = availability.PG_PARAM.sub(lambda m, i=i: f"%(q{i}_{m.group(1)})s", sql)
        names = ", ".join(f"c{j}" for j in range(n))
        if one_row:
            joins.append(f" LEFT JOIN LATERAL ({sql}) AS q{i}({names}) ON true")
            columns.append(", ".join(f"q{i}.c{j}" for j in range(n)))
        else:
            columns.append(f"(SELECT coalesce(json_agg(json_build_array({', '.join(f'r.c{j}' for j in range(n))})), "
                           f"'[]') FROM ({sql}) AS r({names}))")
    return ("SELECT " + ", ".join(columns) + " FROM bookables b LEFT JOIN users p ON p.id = b.provider_id"
            " LEFT JOIN users c ON c.id = %(cid)s" + "".join(joins) + " WHERE b.id = %(sid)s")


@functools.lru_cache(maxsize=1)
def _people_stmt():
    provider = aliased(User, name="provider")
    customer = aliased(User, name="customer")
    return (select(Bookable, provider, customer)
            .outerjoin(provider, provider.id == Bookable.provider_id)  # type: ignore[arg-type]
            .outerjoin(customer, customer.id == bindparam("cid"))  # type: ignore[arg-type]
            .where(Bookable.id == bindparam("sid")))


# ---------------------------------------------------------------------------------------
# reschedule / cancel / complete / no-show
# ---------------------------------------------------------------------------------------

def reschedule(
    *,
    actor: Actor,
    booking_id: int,
    start: dt.datetime | str | None = None,
    quantity: int | None = None,
    notes: str | None = None,
    manage_token: str | None = None,
    now: dt.datetime | None = None,
) -> BookingView:
    """Move a booking to another slot and/or change its seats or notes, atomically: if the
    new slot is taken (NotAvailable) the booking is left exactly as it was. Customers
    (owner, or guest with `manage_token`) respect the cancellation cut-off; its provider
    and admins don't. Quantity changes of a paid booking → Conflict."""
    now = now or utcnow()
    new_start = parse_aware_datetime(start, field="start") if start is not None else None
    new_qty = _int(quantity, field="quantity", lo=1, hi=MAX_QUANTITY) if quantity is not None else None
    if new_qty is not None and actor.role == "guest" and new_qty > get_settings().guest_max_quantity:
        # (a guest's manage link can't grow a booking past what a guest may book)
        raise InvalidInput(_GUEST_QUANTITY, field="quantity", max=get_settings().guest_max_quantity)
    new_notes = validation.text(notes, field="notes", max_length=2000, multiline=True) if notes is not None else None
    with _transaction() as s:
        bk = _load_for_change(s, booking_id)
        owner, manager = _access(actor, bk, manage_token)
        assert bk is not None and bk.id is not None
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None
        if not is_active(bk.status, bk.hold_expires_at, now):
            raise Conflict(N_("Only pending or confirmed bookings can be changed."))
        moving = new_start is not None and new_start != bk.start_at
        resizing = new_qty is not None and new_qty != bk.quantity
        if (moving or resizing) and not manager:
            _customer_cutoff(bk, b, now, what="change")
        if not (moving or resizing):
            if new_notes is not None and new_notes != bk.notes:
                bk.notes = new_notes
                bk.version += 1
                bk.updated_at = now
                s.add(bk)
                audit.record(s, actor_id=actor.id, action="booking.notes_changed", entity="booking", entity_id=bk.id)
            s.flush()
            return _full_view(s, bk, b)
        shape = resolve_start(s, b, new_start, now) if moving else _shape_of(s, bk, b)  # type: ignore[arg-type]
        qty = new_qty if new_qty is not None else bk.quantity
        if qty > shape.capacity:
            raise InvalidInput(_AT_MOST_SEATS, field="quantity", max=shape.capacity)
        new_price = b.price_cents * qty if resizing else bk.price_cents
        if resizing and new_price != bk.price_cents and _paid_cents(s, bk.id) > 0:
            raise Conflict(N_("The number of seats of a paid booking cannot be changed; cancel it and book again."))
        _sweep_overlapping_holds(s, b, shape, now, exclude_id=bk.id)
        old = {"start": bk.start_at.isoformat(), "quantity": bk.quantity}
        bk.start_at, bk.end_at = shape.start, shape.end
        bk.block_start_at, bk.block_end_at = shape.block_start, shape.block_end
        bk.session_id = shape.session_id
        bk.quantity = qty
        bk.price_cents = new_price
        if new_notes is not None:
            bk.notes = new_notes
        bk.version += 1
        bk.sequence += 1
        bk.updated_at = now
        s.add(bk)
        s.flush()
        audit.record(s, actor_id=actor.id, action="booking.rescheduled", entity="booking", entity_id=bk.id,
                     data={"from": old, "to": {"start": bk.start_at.isoformat(), "quantity": qty}})
        outbox.booking_event(s, booking=bk, event="booking_rescheduled",
                             extra={"previous_start": old["start"], "actor_id": actor.id})
        s.flush()
        view = _full_view(s, bk, b)  # before the lock: under it only lock, re-count, COMMIT
        _recount_or_fail(s, b, shape, qty, bk.id, now)
        return view


def cancel(
    *,
    actor: Actor,
    booking_id: int,
    reason: str | None = None,
    manage_token: str | None = None,
    now: dt.datetime | None = None,
) -> BookingView:
    """Cancel a pending or confirmed booking; its seats are free at once. Customers
    (owner, or guest with `manage_token`) can't cancel after the start or inside the
    cancellation cut-off (Forbidden); the provider and admins may. `refund_due_cents` is
    what was paid × refund_percent for customers, the full paid amount when the provider or
    an admin cancels (the payments service executes the refund)."""
    now = now or utcnow()
    reason_text = validation.text(reason, field="reason", max_length=500, multiline=True) or None
    with _transaction() as s:
        bk = _load_for_change(s, booking_id)
        owner, manager = _access(actor, bk, manage_token)
        assert bk is not None and bk.id is not None
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None
        if bk.status not in ACTIVE_STATUSES:
            raise Conflict(N_("This booking can no longer be cancelled."))
        if not manager:
            _customer_cutoff(bk, b, now, what="cancel")
        paid = _paid_cents(s, bk.id)
        refund = paid if manager else paid * b.refund_percent // 100
        bk.status = BookingStatus.cancelled.value
        bk.cancel_reason = reason_text or ("cancelled_by_provider" if manager and not owner else "cancelled_by_customer")
        bk.cancelled_at = now
        bk.refund_due_cents = refund
        bk.version += 1
        bk.sequence += 1
        bk.updated_at = now
        s.add(bk)
        audit.record(s, actor_id=actor.id, action="booking.cancelled", entity="booking", entity_id=bk.id,
                     data={"reason": bk.cancel_reason, "refund_due_cents": refund, "by_manager": manager})
        outbox.booking_event(s, booking=bk, event="booking_cancelled",
                             extra={"refund_due_cents": refund, "reason": bk.cancel_reason, "actor_id": actor.id})
        s.flush()
        return _full_view(s, bk, b)


def _finish(actor: Actor, booking_id: int, status: str, event: str, now: dt.datetime | None) -> BookingView:
    now = now or utcnow()
    with _transaction() as s:
        bk = _load_for_change(s, booking_id)
        owner, manager = _access(actor, bk, None)
        assert bk is not None and bk.id is not None
        if not manager:
            raise Forbidden(N_("Only the provider can mark a booking completed or no-show."))
        if bk.status != BookingStatus.confirmed.value:
            raise Conflict(N_("Only confirmed bookings can be marked completed or no-show."))
        if now < bk.start_at:
            raise Conflict(N_("This booking has not started yet."))
        bk.status = status
        bk.version += 1
        bk.updated_at = now
        s.add(bk)
        audit.record(s, actor_id=actor.id, action=f"booking.{status}", entity="booking", entity_id=bk.id)
        outbox.booking_event(s, booking=bk, event=event, extra={"actor_id": actor.id})
        s.flush()
        return _full_view(s, bk)


def complete(*, actor: Actor, booking_id: int, now: dt.datetime | None = None) -> BookingView:
    """Provider/admin: a confirmed booking that has started → completed."""
    return _finish(actor, booking_id, BookingStatus.completed.value, "booking_completed", now)


def mark_no_show(*, actor: Actor, booking_id: int, now: dt.datetime | None = None) -> BookingView:
    """Provider/admin: a confirmed booking that has started → no_show."""
    return _finish(actor, booking_id, BookingStatus.no_show.value, "booking_no_show", now)


# ---------------------------------------------------------------------------------------
# holds and payments
# ---------------------------------------------------------------------------------------

class _SeatGone(Exception):
    pass


def confirm_payment(*, booking_id: int, now: dt.datetime | None = None, actor: Actor | None = None) -> bool:
    """Called by the payments service when a payment succeeded. pending → confirmed when
    the hold is still valid, or — hold expired (swept or not) — when the seats are still
    free (re-counted under the lock). Returns True when the booking is (now) confirmed,
    False when the seats were resold / the booking was cancelled otherwise (refund it)."""
    now = now or utcnow()
    actor = actor or Actor.system()
    try:
        with _transaction() as s:
            bk = _load_for_change(s, booking_id)
            if bk is None:
                raise NotFound(N_("This booking does not exist."))
            if bk.status in (BookingStatus.confirmed.value, BookingStatus.completed.value):
                return True
            b = s.get(Bookable, bk.bookable_id)
            assert b is not None and bk.id is not None
            hold_valid = bk.status == BookingStatus.pending.value and is_active(bk.status, bk.hold_expires_at, now)
            revivable = (bk.status == BookingStatus.pending.value
                         or (bk.status == BookingStatus.cancelled.value and bk.cancel_reason == "hold_expired"))
            if not hold_valid and (not revivable or bk.start_at <= now):
                return False
            if not hold_valid:  # before touching the row (autoflush would hit the backstop)
                _sweep_overlapping_holds(s, b, _shape_of(s, bk, b), now, exclude_id=bk.id)
            bk.status = BookingStatus.confirmed.value
            bk.hold_expires_at = None
            bk.cancel_reason = None
            bk.cancelled_at = None
            bk.version += 1
            bk.sequence += 1  # the calendar entry goes from tentative to confirmed
            bk.updated_at = now
            s.add(bk)
            s.flush()
            audit.record(s, actor_id=actor.id, action="booking.payment_confirmed", entity="booking", entity_id=bk.id,
                         data={"hold_was_valid": hold_valid})
            outbox.booking_event(s, booking=bk, event="booking_confirmed")
            s.flush()
            if not hold_valid:
                try:
                    _recount_or_fail(s, b, _shape_of(s, bk, b), bk.quantity, bk.id, now)
                except NotAvailable:
                    raise _SeatGone() from None
            return True
    except (_SeatGone, NotAvailable):
        return False


def release_expired_holds(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Job sweep: cancel pending bookings whose hold expired (cancel_reason "hold_expired").
    Safe to run in several processes at once (rows are claimed with SKIP LOCKED on
    PostgreSQL; SQLite has one writer). Returns how many were released."""
    now = now or utcnow()
    with _transaction() as s:
        stmt = select(Booking).where(Booking.status == BookingStatus.pending.value,
                                     Booking.hold_expires_at <= now).order_by(Booking.id).limit(limit)  # type: ignore[operator]
        if db.is_postgres(s):
            stmt = stmt.with_for_update(skip_locked=True)
        rows = s.exec(stmt).all()
        # the counter rows the triggers will update, locked first and in id order, not in the
        # bookings' order, which could wait on a move between two sessions waiting on us
        _lock_session_counters(s, (bk.session_id for bk in rows if bk.session_id is not None))
        for bk in rows:
            _expire(s, bk, now)
        return len(rows)


# ---------------------------------------------------------------------------------------
# reads
# ---------------------------------------------------------------------------------------

def get_booking(*, actor: Actor, booking_id: int, manage_token: str | None = None) -> BookingView:
    """One booking, for its customer (or a guest holding its manage token), its provider or
    an admin; NotFound for anyone else (existence is not revealed)."""
    with db.read_session() as s:
        bk = s.get(Booking, booking_id) if isinstance(booking_id, int) and not isinstance(booking_id, bool) else None
        _access(actor, bk, manage_token)
        assert bk is not None
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None
        u = s.get(User, bk.user_id) if bk.user_id is not None else None
        return _view(bk, b, _payment_statuses(s, [bk.id]).get(bk.id, "none"),  # type: ignore[list-item]
                     (u.full_name, u.username, u.email) if u is not None else None)


def _to_utc_bound(value: Any, *, field: str, tz_name: str, end: bool) -> dt.datetime:
    if isinstance(value, dt.datetime) or (isinstance(value, str) and "T" in value):
        return parse_aware_datetime(value, field=field)
    import zoneinfo

    day = parse_date(value, field=field)
    if end:
        day += dt.timedelta(days=1)
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except Exception:
        tz = zoneinfo.ZoneInfo("UTC")
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)


def list_bookings(
    *,
    actor: Actor,
    scope: str = "mine",
    status: str | None = None,
    date_from: dt.date | dt.datetime | str | None = None,
    date_to: dt.date | dt.datetime | str | None = None,
    service_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    user_id: int | None = None,
) -> tuple[list[BookingView], int]:
    """Bookings ordered by start. scope "mine": the actor's own; "provider": bookings of the
    provider's bookables (admins: every booking); "all": admins only. Dates are inclusive
    local dates in the actor's timezone (or aware datetimes). Returns (page, total)."""
    if actor.id is None and not actor.is_admin:
        raise Unauthorized()
    if scope not in ("mine", "provider", "all"):
        raise InvalidInput(N_("Scope must be mine, provider or all."), field="scope")
    if status not in (None, "") and status not in STATUSES:
        raise InvalidInput(N_("Unknown booking status."), field="status")
    limit = _int(limit, field="limit", lo=1, hi=MAX_PAGE)
    offset = _int(offset, field="offset", lo=0, hi=10_000_000)
    stmt = select(Booking)
    if scope == "mine":
        if actor.id is None:
            raise Unauthorized()
        stmt = stmt.where(Booking.user_id == actor.id)
    elif scope == "provider":
        if actor.is_provider:
            stmt = stmt.where(Booking.provider_id == actor.id)
        elif not actor.is_admin:
            raise Forbidden(N_("Only providers can see the bookings of their services."))
    elif not actor.is_admin:
        raise Forbidden(N_("Only admins can see all bookings."))
    if status:
        stmt = stmt.where(Booking.status == status)
    if service_id is not None:
        stmt = stmt.where(Booking.bookable_id == _int(service_id, field="service_id", lo=1, hi=2**31))
    if user_id is not None:  # one customer's bookings (admins: scope "all")
        stmt = stmt.where(Booking.user_id == _int(user_id, field="user_id", lo=1, hi=2**31))
    if date_from not in (None, ""):
        stmt = stmt.where(Booking.start_at >= _to_utc_bound(date_from, field="from", tz_name=actor.timezone, end=False))
    if date_to not in (None, ""):
        stmt = stmt.where(Booking.start_at < _to_utc_bound(date_to, field="to", tz_name=actor.timezone, end=True))
    with db.read_session() as s:
        total = s.exec(select(func.count()).select_from(stmt.subquery())).one()
        # the same filters, with the customer's name joined in (one query for the page)
        page_stmt = select(Booking, User.full_name, User.username, User.email).outerjoin(  # type: ignore[call-overload]
            User, User.id == Booking.user_id)  # type: ignore[arg-type]
        if stmt.whereclause is not None:
            page_stmt = page_stmt.where(stmt.whereclause)
        page = s.exec(page_stmt.order_by(Booking.start_at, Booking.id).offset(offset).limit(limit)).all()
        rows = [p[0] for p in page]
        customers = {p[0].id: (p[1], p[2], p[3]) for p in page}
        ids = [r.id for r in rows]
        bookables = {b.id: b for b in s.exec(select(Bookable).where(
            Bookable.id.in_({r.bookable_id for r in rows}))).all()} if rows else {}  # type: ignore[union-attr]
        pay = _payment_statuses(s, ids)  # type: ignore[arg-type]
        return [_view(r, bookables[r.bookable_id], pay.get(r.id, "none"), customers[r.id])  # type: ignore[arg-type, index]
                for r in rows], int(total)


# ---------------------------------------------------------------------------------------
# access re-checks (issue 20: idempotent replays answer only whoever may see the booking now)
# ---------------------------------------------------------------------------------------

def _may_see(actor: Actor, bk: Booking | None, manage_token: str | None) -> bool:
    try:
        _access(actor, bk, manage_token)
    except NotFound:
        return False
    return True


def may_see_booking(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> bool:
    """May `actor` (a guest: holding `manage_token`) see booking `booking_id` now? Its
    customer, a guest with a current manage link, its provider or an admin (`_access`)."""
    if isinstance(booking_id, bool) or not isinstance(booking_id, int):
        return False
    with db.read_session() as s:
        return _may_see(actor, s.get(Booking, booking_id), manage_token)


def _may_replay(actor: Actor, bk: Booking, first_at: dt.datetime, manage_token: str | None,
                now: dt.datetime | None = None) -> bool:
    """May a retry of the request that made `bk` (at `first_at`) replay it to `actor`? When
    `actor` may see it now; or a guest without a token — the guest retrying an answer they
    never got, who has no manage link yet — within IDEMPOTENCY_GUEST_REPLAY_SECONDS."""
    if _may_see(actor, bk, manage_token):
        return True
    window = dt.timedelta(seconds=get_settings().idempotency_guest_replay_seconds)
    return (actor.is_guest and manage_token is None and bk.user_id is None
            and (now or utcnow()) - first_at <= window)
