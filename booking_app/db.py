"""Engine, sessions and the one way to open a unit of work.

Two entry points, used by every service:

- `unit_of_work()` — THE write unit of work: one transaction, committed on success, rolled
  back on any error. On SQLite its first statement takes this process's writer turn, then BEGIN IMMEDIATE
  (one writer at a time, check-then-insert is serialised); `lock_timeout=True` bounds the
  transaction's lock waits on PostgreSQL (`SET LOCAL lock_timeout`). A lock wait that ran
  out raises OperationalError, which `is_busy` recognises (services map it to `Busy`:
  services/capacity.py, `busy_on_lock_wait`, `transaction` for capacity changes).
- `read_session()` — THE read session: nothing is committed; on PostgreSQL in autocommit
  (no BEGIN round trip), `transaction=True` for one snapshot / `SET LOCAL`.

Database outages (restart, failover, dropped connections): a connection the driver reports
broken is discarded, never handed out again; after one was seen, every pooled connection is
pinged before its next use (see _ping_when_idle), so the pool heals within a request or two
of the server being back. The errors a request meets meanwhile are UNAVAILABLE_ERRORS, which
the API answers with 503 + Retry-After (api/errors.py).
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from booking_app import telemetry
from booking_app.config import get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _make_engine(url: str) -> Engine:
    settings = get_settings()
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000}}
        if memory:
            from sqlalchemy.pool import StaticPool

            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        # Take over transaction control from the sqlite3 module so that we can issue
        # BEGIN IMMEDIATE for writes (pysqlite's default defers BEGIN and breaks it).
        busy = settings.sqlite_busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            options = conn.get_execution_options()
            turn = options.get("writer_turn")
            if turn is not None and not turn:  # a unit_of_work's writer: this process's turn first
                _sqlite_writer_turn()
                turn["held"] = True
            conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")

        return engine
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        # a server that is down refuses at once; this bounds one that doesn't answer at all, and
        # TCP keepalives find a connection whose server vanished without a word (a failover
        # that moved the address): dead after ~25 s of silence instead of the kernel's hours
        connect_args={"connect_timeout": settings.db_connect_timeout_seconds, **TCP_KEEPALIVES},
    )
    _ping_when_idle(engine)
    return engine


#: libpq keepalive settings of every PostgreSQL connection (idle s, probe interval s, probes)
TCP_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}

#: errors meaning "the database can't be reached right now": server down or restarting, a
#: failover, a connection dropped mid-request, no pooled connection free in DB_POOL_TIMEOUT.
#: SQLAlchemy's wrappers, and psycopg's own (the booking pipeline talks to psycopg directly).
#: The API answers them with 503 + Retry-After; a retry with the same Idempotency-Key
#: replays a booking whose commit went through but whose answer was lost.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
    psycopg.OperationalError, psycopg.InterfaceError,
)

#: a pooled connection unused for longer than this is pinged before it is handed out
PING_AFTER_IDLE_SECONDS = 5.0

#: time.monotonic() when this process last met a dead database connection: every pooled
#: connection returned before then is pinged at its next checkout (it may be dead too)
_last_disconnect = 0.0


def note_disconnect() -> None:
    """A dead connection was seen: ping every pooled connection before its next use."""
    global _last_disconnect
    _last_disconnect = time.monotonic()


def _broken(conn: Connection) -> bool:
    """Whether the driver connection under `conn` is closed or broken (or already gone)."""
    if conn.invalidated or conn.closed:  # (asking an invalidated one for its connection reconnects)
        return True
    try:
        raw = conn.connection.driver_connection
    except Exception:  # noqa: BLE001 - invalidated already
        return True
    return bool(getattr(raw, "closed", False) or getattr(raw, "broken", False))


def _discard_if_broken(conn: Connection, exc: BaseException) -> None:
    """After `exc` in a block on `conn`: a connection the server dropped is invalidated now
    (never returned to the pool), and the rest of the pool is pinged before reuse. Errors
    that SQLAlchemy wrapped were handled by it already (handle_error); this covers psycopg's
    raw errors from the pipeline path."""
    if not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return
    if _broken(conn):
        note_disconnect()
        if not (conn.invalidated or conn.closed):
            with contextlib.suppress(Exception):
                conn.invalidate()


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per checkout.

    `pool_pre_ping` costs one `SELECT 1` round trip on *every* checkout (two per booking
    request: token check + booking). Here a connection is pinged only when it sat idle in
    the pool longer than PING_AFTER_IDLE_SECONDS (that is where server restarts and idle
    timeouts leave dead connections); one the driver already knows to be broken is
    replaced at once. A connection that dies while in busy use fails that request and is
    invalidated (SQLAlchemy's disconnect detection, or _discard_if_broken for psycopg's
    raw errors); from then on every connection returned before it is pinged too, so after a
    server restart a busy pool doesn't hand out its dead connections one request at a time.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):  # pragma: no cover - trivial
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "handle_error")
    def _handle_error(context):  # pragma: no cover - trivial
        if context.is_disconnect:
            note_disconnect()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        if getattr(dbapi_conn, "closed", False) or getattr(dbapi_conn, "broken", False):
            raise DisconnectionError("connection closed")
        since = record.info.get("idle_since")
        if since is None or (time.monotonic() - since < PING_AFTER_IDLE_SECONDS and since > _last_disconnect):
            return
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            dbapi_conn.rollback()
        except Exception as exc:  # the pool retries with a fresh connection
            raise DisconnectionError(str(exc)) from exc


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: DATABASE_URL)."""
    url = url or get_settings().database_url
    engine = _engines.get(url)
    if engine is None:
        with _lock:
            engine = _engines.get(url)
            if engine is None:
                engine = _engines[url] = _make_engine(url)
    return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def is_postgres(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


@contextlib.contextmanager
def read_session(*, transaction: bool = False) -> Iterator[Session]:
    """A session for reads. Nothing is committed.

    On PostgreSQL, unless `transaction`, its connection is in autocommit: each statement is
    a transaction of its own — under READ COMMITTED each statement takes its own snapshot
    anyway — and the first one needs no BEGIN, which psycopg sends and waits for as a round
    trip of its own. `transaction=True`: one transaction (for `SET LOCAL` and the like).
    The pool sets the connection back to transactions when it is returned."""
    engine = get_engine()
    if transaction or engine.dialect.name != "postgresql":
        with Session(engine, expire_on_commit=False) as session:
            yield session
        return
    with engine.connect() as conn:
        try:
            with autocommit(conn), Session(bind=conn, expire_on_commit=False) as session:
                yield session
        except BaseException as exc:
            _discard_if_broken(conn, exc)
            raise


#: `prepare=` for the statements sent in a psycopg pipeline. psycopg prepares a statement at
#: its sixth run on a connection (prepare_threshold) and, in a pipeline, records it as
#: prepared as soon as it is sent, without looking at the outcome. When an earlier statement
#: of the same pipeline fails, the server skips the rest up to the Sync, that preparation
#: included, yet psycopg goes on using the name: every later run on that connection fails with
#: "prepared statement _pg3_N does not exist" until the connection is closed (seen in psycopg
#: 3.3 under booking races). Prepared from its first run, a statement is recorded only once
#: its preparation succeeded (psycopg checks the outcome of a first sighting), so every name
#: psycopg keeps exists on the server. (A statement of no parameters, such as COMMIT, is
#: better not prepared at all: prepare=False.)
PREPARE_IN_PIPELINE = True


@contextlib.contextmanager
def autocommit(conn: Connection) -> Iterator[Any]:
    """PostgreSQL: the psycopg connection under SQLAlchemy `conn`, in autocommit for the
    block (yielded). After it the connection is transactional again — it goes back to the
    pool like that, or, when that can't be done (a broken connection), is discarded. Cheaper
    than `execution_options(isolation_level="AUTOCOMMIT")`, whose setting and resetting cost
    more than the BEGIN round trip it saves."""
    pg = conn.connection.driver_connection
    pg.autocommit = True
    try:
        if telemetry.tracing:  # SQLAlchemy's statement spans don't see psycopg's own statements
            with telemetry.db_block("psycopg autocommit"):
                yield pg
        else:
            yield pg
    finally:
        if pg.autocommit:  # (a caller may have gone back to a transaction itself)
            try:
                pg.autocommit = False
            except Exception:  # noqa: BLE001 - never back to the pool in autocommit
                with contextlib.suppress(Exception):
                    conn.invalidate()


def leave_autocommit(conn: Connection) -> None:
    """Inside `autocommit(conn)`: back to transactions for the rest of the block (the next
    statement begins one; `autocommit` leaves the connection so at its end)."""
    conn.connection.driver_connection.autocommit = False


# SQLite allows one writer; waiting writers of *this* process queue on a lock here
# instead of polling in SQLite's busy handler (which sleeps up to 100 ms between tries).
# Other processes are still serialised by BEGIN IMMEDIATE + busy_timeout.
_sqlite_writer = threading.Lock()


def _sqlite_writer_turn() -> None:
    """Wait for this process's SQLite writer turn, at most the busy timeout; past it, the
    error SQLite itself gives a writer that waited too long ("database is locked")."""
    if not _sqlite_writer.acquire(timeout=get_settings().sqlite_busy_timeout_ms / 1000):
        raise sa_exc.OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


@contextlib.contextmanager
def unit_of_work(*, write: bool = True, lock_timeout: bool = False) -> Iterator[Session]:
    """One business transaction: commit on success, roll back on any error.

    On SQLite a writing unit of work, at its first statement, takes this process's writer
    turn, then starts with BEGIN IMMEDIATE, which takes the database's write lock up front (waiting up to
    busy_timeout), so check-then-insert sequences are serialised. On PostgreSQL callers lock
    what they need explicitly; `lock_timeout=True` bounds those waits first (set_local_lock_timeout).
    Lock waits that run out raise OperationalError (`is_busy`).
    """
    engine = get_engine()
    turn: dict[str, bool] | None = None
    if write and engine.dialect.name == "sqlite":
        turn = {}  # (taken when the transaction begins: _sqlite_begin)
        conn = engine.connect().execution_options(sqlite_begin="IMMEDIATE", writer_turn=turn)
    else:
        conn = engine.connect()
    try:
        with Session(bind=conn, expire_on_commit=False) as session:
            try:
                if lock_timeout:
                    set_local_lock_timeout(session)
                yield session
                session.commit()
            except BaseException as exc:
                _discard_if_broken(conn, exc)
                with contextlib.suppress(*UNAVAILABLE_ERRORS):  # (a dead connection: `exc` tells)
                    session.rollback()
                raise
    finally:
        conn.close()
        if turn:
            _sqlite_writer.release()


#: SQLSTATEs of a lock wait that ran out: lock timeout, deadlock, serialization failure, cancel
BUSY_SQLSTATES = ("55P03", "40P01", "40001", "57014")


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a (SQLAlchemy-wrapped or psycopg) database error, if any."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` means a lock wait ran out (PostgreSQL lock timeout, deadlock,
    serialization failure; SQLite's busy timeout): nothing was changed, a retry may work."""
    if sqlstate(exc) in BUSY_SQLSTATES:
        return True
    msg = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in msg or "database is busy" in msg or "lock timeout" in msg


def set_local_lock_timeout(session: Session, ms: int | None = None) -> None:
    """PostgreSQL: bound every lock wait in this transaction."""
    if is_postgres(session):
        ms = ms if ms is not None else get_settings().db_lock_timeout_ms
        session.connection().exec_driver_sql(f"SET LOCAL lock_timeout = '{int(ms)}ms'")


def ping() -> bool:
    engine = get_engine()
    with engine.connect() as conn, \
            autocommit(conn) if engine.dialect.name == "postgresql" else contextlib.nullcontext():
        conn.execute(text("SELECT 1"))  # (PostgreSQL: no BEGIN round trip first, see read_session)
    return True
