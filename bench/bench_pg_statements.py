"""PostgreSQL's CPU per statement of a booking, each statement alone on one idle backend —
against which bench_http.py's "PostgreSQL CPU ms" under load can be read.

A spread booking (a room the process has booked before) sends three statements: the
first (bookable, people, new id, slot check), then in one pipeline the writes (booking,
outbox rows, audit event; the lock timeout and the advisory lock) and the re-count. This
script books such a booking through the service, records what it sent to psycopg, and
replays each statement --repeat times on a connection of its own, reading that backend's
CPU time from /proc:
  - the first statement as it is (read-only);
  - the writes and the re-count in a pipeline that ends in a failing statement, so the
    implicit transaction is rolled back at the Sync and the same ids and keys can be
    written again (psycopg keeps its prepared statements: a ROLLBACK command would clear
    them, and every statement would be parsed and planned anew);
  - the failing statement alone (that pipeline's own cost, subtracted);
  - `SELECT 1` (what any statement costs).
Then --bookings whole bookings through the service from 1, 4 and 8 threads (--threads),
one pooled connection each: PostgreSQL's and this process's CPU per booking, with no HTTP
and nothing else running — how much of the CPU per booking concurrency alone adds.
Every statement is prepared with a generic plan by then, as on the app's own connections
(the table shows pg_prepared_statements' counts).

Usage: .venv/bin/python bench/bench_pg_statements.py [--repeat 3000] [--bookings 800] [--threads 1,4,8]
Needs a PostgreSQL server on this machine (TEST_DATABASE_URL, else 127.0.0.1:5432 as postgres).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JOBS_ENABLED", "false")
from bench._common import create_database, drop_database, migrate  # noqa: E402
from bench.bench_http import _cpu_seconds, _db_cpu  # noqa: E402

ROOMS = 30


def setup() -> tuple:
    """A provider's ROOMS rooms open all week and a signed-in customer → (room ids, customer)."""
    from booking_app.services import accounts, catalog
    from booking_app.services.actors import Actor

    def actor(user) -> Actor:
        return Actor(id=user.id, role=user.role, locale=user.locale, timezone=user.timezone)

    provider = actor(accounts.create_user(username="benchprov", email="prov@bench.test",
                                          password="bench-provider-pw", role="provider"))
    customer = actor(accounts.create_user(username="benchcust", email="cust@bench.test",
                                          password="bench-customer-pw", role="customer"))
    weekly = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
    rooms = []
    for i in range(ROOMS):
        room = catalog.create_bookable(actor=provider, name=f"Room {i}", kind="room", duration_minutes=30,
                                       currency="EUR")
        catalog.set_availability(actor=provider, bookable_id=room.id, weekly=weekly)
        rooms.append(room.id)
    return rooms, customer


def slots(rooms: list[int]):
    """Endless distinct (room, start) pairs from tomorrow on, room-major."""
    import datetime as dt

    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                            microsecond=0)
    k = 0
    while True:
        for room in rooms:
            yield room, day + dt.timedelta(minutes=30 * k)
        k += 1


def record_one_booking(book) -> list[tuple[str, object, dict]]:
    """The statements `book()` sends through psycopg: (sql, params, execute keywords)."""
    import psycopg

    sent: list[tuple[str, object, dict]] = []
    originals = {cls: cls.execute for cls in (psycopg.Connection, psycopg.RawCursor)}

    def recording(cls):
        def execute(self, query, params=None, **kw):
            conn = self if isinstance(self, psycopg.Connection) else self.connection
            sent.append((query if isinstance(query, (str, bytes)) else query.as_string(conn), params, kw))
            return originals[cls](self, query, params, **kw)
        return execute

    for cls in originals:
        cls.execute = recording(cls)
    try:
        book()
    finally:
        for cls, execute in originals.items():
            cls.execute = execute
    return sent


def backend_cpu_ms(conn, fn, repeat: int) -> tuple[float, float]:
    """(PostgreSQL CPU ms, wall ms) per call of fn(), on `conn`'s backend, after a warm-up."""
    pid = conn.info.backend_pid
    for _ in range(20):
        fn()
    cpu0, t0 = _cpu_seconds([pid]), time.perf_counter()
    for _ in range(repeat):
        fn()
    return (_cpu_seconds([pid]) - cpu0) * 1000 / repeat, (time.perf_counter() - t0) * 1000 / repeat


def whole_bookings(book, db_name: str, n: int, threads: int) -> tuple[float, float, float]:
    """`n` calls of book() from `threads` threads → (PostgreSQL CPU ms, process CPU ms, bookings/s)."""
    per = [n // threads + (i < n % threads) for i in range(threads)]
    start = threading.Barrier(threads + 1)

    def run(k: int) -> None:
        start.wait()
        for _ in range(k):
            book()

    workers = [threading.Thread(target=run, args=(k,)) for k in per]
    for w in workers:
        w.start()
    db0, app0 = _db_cpu(db_name), time.process_time()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    db1 = _db_cpu(db_name)
    # (the pool's backends, opened by the warm-up; not "exited": that is every reaped child
    # of the server's, other databases' and autovacuum's included)
    pg = sum(v - db0.get(pid, 0.0) for pid, v in db1.items() if pid != "exited")
    return pg * 1000 / n, (time.process_time() - app0) * 1000 / n, n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3000, help="replays of each statement")
    ap.add_argument("--bookings", type=int, default=800, help="whole bookings through the service, per row")
    ap.add_argument("--threads", default="1,4,8", help="booking threads of the whole-booking rows")
    args = ap.parse_args()
    levels = [int(x) for x in args.threads.split(",")]
    os.environ["DB_POOL_SIZE"], os.environ["DB_MAX_OVERFLOW"] = str(max(levels)), "0"
    name, url = create_database()
    try:
        migrate(url)
        import psycopg

        from booking_app import db
        from booking_app.services import bookings

        rooms, customer = setup()
        pairs = slots(rooms)

        lock = threading.Lock()

        def book() -> None:
            with lock:
                room, start = next(pairs)
            bookings.book(actor=customer, service_id=room, start=start)

        for _ in range(3 * ROOMS):  # every room seen before, statements prepared
            book()
        sent = record_one_booking(book)
        if len(sent) != 3:
            raise SystemExit(f"expected the booking's three statements, saw {len(sent)}: the hot path changed?")
        first, writes, check = sent
        with db.get_engine().connect() as c:
            booking_id = c.exec_driver_sql("SELECT max(id) FROM bookings").scalar()
            # free the recorded booking's ids and keys, so that its writes can be replayed (its
            # audit row stays: the audit trail is append-only and holds no key a replay reuses)
            for sql in ("DELETE FROM notifications WHERE booking_id = %(id)s",
                        "DELETE FROM bookings WHERE id = %(id)s"):
                c.exec_driver_sql(sql, {"id": booking_id})
            c.commit()

        raw = url.replace("postgresql+psycopg://", "postgresql://")
        rows = []
        with psycopg.connect(raw, autocommit=True) as conn:
            def rolled_back(statements):
                def run() -> None:
                    try:
                        with conn.pipeline():
                            cur = psycopg.RawCursor(conn)
                            for sql, params, kw in statements:
                                cur.execute(sql, params, **kw)
                            cur.execute("SELECT 1 / 0")
                    except psycopg.errors.DivisionByZero:
                        pass
                return run

            def alone(sql, params, kw):
                return lambda: conn.execute(sql, params, **kw).fetchall()

            base, base_wall = backend_cpu_ms(conn, rolled_back([]), args.repeat)
            for label, fn, less in (
                ("SELECT 1", alone("SELECT 1", None, {}), 0.0),
                ("first statement (bookable, people, id, slot check)", alone(*first), 0.0),
                ("writes + lock (one statement)", rolled_back([writes]), base),
                ("re-count", rolled_back([check]), base),
                ("writes + lock + re-count (the pipeline)", rolled_back([writes, check]), base),
            ):
                cpu, wall = backend_cpu_ms(conn, fn, args.repeat)
                rows.append((label, cpu - less, wall - (base_wall if less else 0.0)))
            plans = conn.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements").fetchall()

        whole = []
        for threads in levels:
            whole_bookings(book, name, 4 * threads, threads)  # warm-up: the pool's connections open
            whole.append((threads, *whole_bookings(book, name, args.bookings, threads)))
    finally:
        from booking_app import db

        db.dispose_engines()
        drop_database(name)

    print(f"PostgreSQL CPU per statement of a spread booking, each alone on an idle backend, {args.repeat} times "
          "(pipelined ones net of the pipeline's own cost)")
    print(f"{'statement':55s} {'PG CPU ms':>10s} {'wall ms':>9s}")
    for label, cpu, wall in rows:
        print(f"{label:55s} {cpu:10.3f} {wall:9.3f}")
    print(f"{'(a pipeline: its failing statement, rollback at Sync)':55s} {base:10.3f} {base_wall:9.3f}")
    print(f"\n{args.bookings} whole bookings through the service per row, no HTTP (commits included), per booking:")
    print(f"{'threads':>8s} {'PG CPU ms':>10s} {'process CPU ms':>15s} {'bookings/s':>11s}")
    for threads, pg_ms, app_ms, rate in whole:
        print(f"{threads:8d} {pg_ms:10.3f} {app_ms:15.3f} {rate:11.0f}")
    print("(bench_http.py's CPU per booking under load adds HTTP, the load generator and its clients' concurrency)")
    print("\nprepared statements on the replaying connection (generic / custom plans):")
    for sql, generic, custom in plans:
        print(f"  {generic:6d} / {custom:<3d} {' '.join(sql.split())[:70]}")


if __name__ == "__main__":
    main()
