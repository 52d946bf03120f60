"""The booking transaction on a `bookings` table partitioned by HASH(bookable_id) against the
plain table, on one server, same run — the one measurement behind docs/scaling.md.

Three throwaway databases, all migrated to head and set up alike (ROOMS rooms open all week,
a signed-in customer). In two, `bookings` becomes a declaratively partitioned table:
  - PARTITION BY HASH (bookable_id), --partitions partitions;
  - primary key (id, bookable_id) and every unique index with bookable_id appended (a
    partitioned table's unique keys must include the partition key; ids still come from one
    sequence, the reference stays random);
  - the exclusion constraint (bookable_id WITH =, block range WITH &&) on each partition: it
    compares bookable_id with `=`, so per partition it means what it meant for the table;
  - the other indexes, the foreign keys out of `bookings` and its triggers as they were.
Foreign keys *into* `bookings` (payments, notifications, guest_booking_requests → bookings.id)
can't point at a key without bookable_id: they are dropped — in all three databases, so that
the only difference measured is the partitioning. The third database runs with
`plan_cache_mode = force_generic_plan`: with partitions the planner tends to keep custom
plans, planning the booking's statements anew on every execution (the plan counts printed
show which plans the pool's connections used).

Then --rounds rounds of --bookings bookings through the service (`bookings.book`) from
--threads threads per database, interleaved (each variant first, second and last in turn:
disk flushes and neighbours hit all alike): bookings/s and PostgreSQL CPU ms per booking (its
backends' /proc times), per round, and the medians with their ratios to the plain table. At the end: rows per partition, no slot booked
twice, and an overlapping insert refused by a partition's exclusion constraint.

Usage: .venv/bin/python bench/bench_partitioned.py [--rounds 6] [--bookings 600] [--threads 4] [--partitions 8]
Needs a PostgreSQL server on this machine (TEST_DATABASE_URL, else 127.0.0.1:5432 as postgres).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import sys
import threading

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JOBS_ENABLED", "false")
from bench._common import create_database, drop_database, migrate  # noqa: E402
from bench.bench_pg_statements import ROOMS, setup, slots, whole_bookings  # noqa: E402


GENERIC = "partitioned, generic"
VARIANTS = ["plain", "partitioned", GENERIC]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def drop_incoming_foreign_keys(conn) -> list[str]:
    """Drop the foreign keys that reference bookings(id) → their names."""
    dropped = []
    for table, name in conn.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint "
                                    "WHERE confrelid = 'bookings'::regclass AND contype = 'f'").fetchall():
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        dropped.append(f"{table}.{name}")
    return dropped


def partition_bookings(conn, partitions: int) -> list[str]:
    """Turn the (empty) `bookings` into a table partitioned by HASH(bookable_id), keeping its
    constraints, indexes and triggers as far as partitioning allows → what was changed."""
    changed = []
    indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'bookings'").fetchall()
    constraints = conn.execute("SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                               "WHERE conrelid = 'bookings'::regclass AND contype IN ('p', 'u', 'x', 'f')").fetchall()
    triggers = [r[0] for r in conn.execute("SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                                           "WHERE tgrelid = 'bookings'::regclass AND NOT tgisinternal").fetchall()]
    constraint_names = {name for name, _t, _d in constraints}
    conn.execute("ALTER TABLE bookings RENAME TO bookings_plain")
    conn.execute("CREATE TABLE bookings (LIKE bookings_plain INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                 "INCLUDING STORAGE) PARTITION BY HASH (bookable_id)")
    conn.execute("ALTER SEQUENCE bookings_id_seq OWNED BY bookings.id")  # (kept when the old table goes)
    conn.execute("DROP TABLE bookings_plain")  # empty: freshly migrated
    for i in range(partitions):
        conn.execute(f"CREATE TABLE bookings_p{i} PARTITION OF bookings "
                     f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})")
    for name, kind, definition in constraints:
        if kind == "p":
            conn.execute(f'ALTER TABLE bookings ADD CONSTRAINT "{name}" PRIMARY KEY (id, bookable_id)')
            changed.append(f"primary key {definition} -> PRIMARY KEY (id, bookable_id)")
        elif kind == "f":
            conn.execute(f'ALTER TABLE bookings ADD CONSTRAINT "{name}" {definition}')
        elif kind == "x":
            for i in range(partitions):
                conn.execute(f'ALTER TABLE bookings_p{i} ADD CONSTRAINT "{name}_p{i}" {definition}')
            changed.append(f"exclusion constraint {name}: one per partition")
        else:
            raise SystemExit(f"unexpected unique constraint on bookings: {name} {definition}")
    for name, definition in indexes:
        if name in constraint_names:
            continue
        if definition.startswith("CREATE UNIQUE INDEX"):
            m = re.match(r"^(.* USING \w+ \()([^)]*)(\).*)$", definition)
            if m is None:
                raise SystemExit(f"can't read the unique index {definition}")
            if "bookable_id" not in m.group(2).split(", "):
                definition = f"{m.group(1)}{m.group(2)}, bookable_id{m.group(3)}"
                changed.append(f"unique index {name}: ({m.group(2)}) -> ({m.group(2)}, bookable_id)")
        conn.execute(definition)
    for definition in triggers:
        conn.execute(definition)
    return changed


def checks(conn, partitioned: bool) -> list[str]:
    """No slot booked twice; in the partitioned database the rows per partition and an
    overlapping insert that a partition's exclusion constraint refuses."""
    import psycopg

    out = []
    twice = conn.execute("SELECT count(*) FROM (SELECT bookable_id, start_at FROM bookings WHERE status IN "
                         "('pending', 'confirmed') GROUP BY 1, 2 HAVING count(*) > 1) t").fetchone()[0]
    out.append(f"slots booked twice: {twice}")
    if not partitioned:
        return out
    per = conn.execute("SELECT tableoid::regclass::text, count(*) FROM bookings GROUP BY 1 ORDER BY 1").fetchall()
    out.append("rows per partition: " + ", ".join(f"{t.removeprefix('bookings_')}={n}" for t, n in per))
    columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                          "'bookings' AND column_name NOT IN ('id', 'reference') "
                                          "ORDER BY ordinal_position").fetchall()]
    cols = ", ".join(f'"{c}"' for c in columns)
    try:
        with conn.transaction():
            conn.execute(f"INSERT INTO bookings (reference, {cols}) SELECT reference || '-x', {cols} FROM bookings "
                         "WHERE exclusive AND status = 'confirmed' LIMIT 1")
            refused = "no exclusive booking to copy" if conn.execute(
                "SELECT count(*) FROM bookings WHERE reference LIKE '%-x'").fetchone()[0] == 0 else "NOT refused"
            raise _Rollback
    except psycopg.errors.ExclusionViolation:
        refused = "refused (exclusion constraint)"
    except _Rollback:
        pass
    out.append(f"an overlapping copy of a booking: {refused}")
    return out


def plan_counts(pool_size: int) -> tuple[int, int]:
    """(generic, custom) plans of the prepared statements on all the pool's connections."""
    from booking_app import db

    engine = db.get_engine()
    conns = [engine.connect() for _ in range(pool_size)]
    try:
        rows = [c.exec_driver_sql("SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
                                  "FROM pg_prepared_statements").one() for c in conns]
    finally:
        for c in conns:
            c.close()
    return sum(r[0] for r in rows), sum(r[1] for r in rows)


class _Rollback(Exception):
    pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6, help="rounds; each books --bookings in both databases")
    ap.add_argument("--bookings", type=int, default=600, help="bookings per database per round")
    ap.add_argument("--threads", type=int, default=4, help="booking threads (one pooled connection each)")
    ap.add_argument("--partitions", type=int, default=8, help="hash partitions of the partitioned table")
    args = ap.parse_args()
    os.environ["DB_POOL_SIZE"], os.environ["DB_MAX_OVERFLOW"] = str(args.threads), "0"
    import psycopg

    from booking_app import db
    from booking_app.config import reset_settings_cache

    variants = {}
    try:
        for label in VARIANTS:
            name, url = create_database()
            variants[label] = {"name": name, "url": url}
            migrate(url)
            with psycopg.connect(_libpq(url), autocommit=True) as conn:
                with conn.transaction():
                    variants[label]["dropped"] = drop_incoming_foreign_keys(conn)
                    variants[label]["changed"] = partition_bookings(conn, args.partitions) if label != "plain" else []
                if label == GENERIC:
                    conn.execute(f'ALTER DATABASE "{name}" SET plan_cache_mode = force_generic_plan')

        def use(label: str) -> None:
            # engines are kept per URL: both databases' pools stay open (and warm) all along
            os.environ["DATABASE_URL"] = variants[label]["url"]
            reset_settings_cache()

        from booking_app.services import bookings

        for label, v in variants.items():
            use(label)
            rooms, customer = setup()
            pairs, lock = slots(rooms), threading.Lock()

            def book(pairs=pairs, lock=lock, customer=customer) -> None:
                with lock:
                    room, start = next(pairs)
                bookings.book(actor=customer, service_id=room, start=start)

            v["book"] = book
            for _ in range(3 * ROOMS):  # every room seen, statements prepared with generic plans
                book()
            whole_bookings(book, v["name"], 4 * args.threads, args.threads)  # the pool's connections open
            v["runs"] = []

        for r in range(args.rounds):
            order = VARIANTS[r % 3:] + VARIANTS[:r % 3]  # each variant first, second and last in turn
            for label in order:
                use(label)
                v = variants[label]
                v["runs"].append(whole_bookings(v["book"], v["name"], args.bookings, args.threads))
        results = {}
        for label, v in variants.items():
            use(label)
            v["plans"] = plan_counts(args.threads)
            with psycopg.connect(_libpq(v["url"]), autocommit=True) as conn:
                results[label] = checks(conn, label != "plain")
    finally:
        db.dispose_engines()
        for v in variants.values():
            drop_database(v["name"])

    print(f"The booking transaction (bookings.book, spread over {ROOMS} rooms), {args.threads} threads, "
          f"{args.bookings} bookings per database per round, {args.rounds} rounds interleaved")
    print(f"partitioned: HASH(bookable_id), {args.partitions} partitions; "
          + "; ".join(variants["partitioned"]["changed"]))
    print("in both databases, foreign keys into bookings dropped: " + ", ".join(variants["plain"]["dropped"]))
    print(f"{GENERIC}: the same, its database with plan_cache_mode = force_generic_plan")
    print(f"\n{'round':>5s} {'variant':22s} {'bookings/s':>11s} {'PG CPU ms':>10s} {'process CPU ms':>15s}")
    for r in range(args.rounds):
        for label in VARIANTS:
            pg_ms, app_ms, rate = variants[label]["runs"][r]
            print(f"{r + 1:5d} {label:22s} {rate:11.0f} {pg_ms:10.3f} {app_ms:15.3f}")
    med = {label: [statistics.median(run[i] for run in v["runs"]) for i in range(3)]
           for label, v in variants.items()}
    print(f"\n{'median':>5s} {'variant':22s} {'bookings/s':>11s} {'PG CPU ms':>10s} {'process CPU ms':>15s} "
          f"{'generic/custom plans':>21s}")
    for label in VARIANTS:
        pg_ms, app_ms, rate = med[label]
        generic, custom = variants[label]["plans"]
        print(f"{'':5s} {label:22s} {rate:11.0f} {pg_ms:10.3f} {app_ms:15.3f} {f'{generic} / {custom}':>21s}")
    pg_a, _app_a, rate_a = med["plain"]
    for label in VARIANTS[1:]:
        pg_b, _app_b, rate_b = med[label]
        print(f"ratio {label}/plain: bookings/s {rate_b / rate_a:.2f}, PG CPU per booking {pg_b / pg_a:.2f}")
    for label in VARIANTS:
        print(f"{label}: " + "; ".join(results[label]))


if __name__ == "__main__":
    main()
