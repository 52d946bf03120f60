"""Benchmark: every report over 100,000 bookings, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_reports.py [--bookings 100000] [--runs 5] [--only sqlite|postgres] [--no-analyze]

Builds a throwaway database of each kind (a temp SQLite file; a temp PostgreSQL database
`booking_bench_<random>` on BENCH_PG_URL / TEST_DATABASE_URL / 127.0.0.1:5432, dropped at
the end), migrates it with Alembic, bulk-inserts the data with Core executemany (users,
bookables with weekly hours, event sessions, bookings over one year, payments, refunds,
sign-ins, notifications), then times each report (fastest and median of `--runs` after one warm-up, plus the CPU time of this
process, which for SQLite is the query itself) over the whole year and over one month, in
Europe/Paris. Target: ≤ 300 ms each; with --strict the exit status is 1 when a report's
fastest run is slower (off by default: on a shared, loaded machine wall-clock times say
more about the neighbours than about the queries, hence the CPU column and load average).
Both databases are ANALYZEd after the bulk insert (PostgreSQL's autovacuum would do it);
--no-analyze leaves SQLite without planner statistics, as a deployment that never ran
ANALYZE is, to check that the report queries' plans don't depend on them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import random
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import migrate, on_each_database, point_at, sample_ms  # noqa: E402

TARGET_MS = 300.0
UTC = dt.timezone.utc
YEAR_START = dt.date(2026, 1, 1)


def insert(conn, model, rows: list[dict]) -> None:
    """Core executemany; columns a row leaves out get the model's Python-side default
    (SQLModel defaults are not column defaults), so the bench follows model changes."""
    if not rows:
        return
    extra = {}
    for col in model.__table__.columns:
        if col.name in rows[0] or col.primary_key:
            continue
        info = model.model_fields.get(col.name)
        if info is None:
            continue
        value = info.default_factory() if info.default_factory is not None else info.default
        if value is not None and not repr(value).startswith("PydanticUndefined"):
            extra[col.name] = value
    if extra:
        rows = [{**extra, **r} for r in rows]
    for chunk in range(0, len(rows), 20000):
        conn.execute(model.__table__.insert(), rows[chunk:chunk + 20000])


def seed(url: str, n_bookings: int, rng: random.Random, *, analyze: bool = True) -> dict[str, int]:
    """Bulk insert a year of activity; returns row counts. `analyze=False` leaves SQLite
    without planner statistics."""
    from booking_app import db
    from booking_app.models import (
        AuditEvent,
        AvailabilityRule,
        Bookable,
        Booking,
        EventSession,
        Notification,
        Payment,
        Refund,
        User,
    )

    point_at(url)
    engine = db.get_engine()
    n_users, n_bookables = 5000, 60
    tzs = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]
    year_start = dt.datetime.combine(YEAR_START, dt.time(0), tzinfo=UTC)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        users = [{"id": i, "username": f"user{i}", "email": f"user{i}@example.com", "password_hash": "x",
                  "full_name": f"User {i}", "role": "admin" if i == 1 else ("provider" if i <= 21 else "customer"),
                  "locale": "en", "timezone": "UTC", "notify_email": True, "notify_sms": False, "is_active": True,
                  "created_at": year_start + dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))}
                 for i in range(1, n_users + 1)]
        insert(conn, User, users)
        bookables, rules, sessions = [], [], []
        session_id = 0
        for b in range(1, n_bookables + 1):
            kind = ("room", "service", "event")[b % 3]
            bookables.append({
                "id": b, "provider_id": 2 + b % 20, "kind": kind, "name": f"{kind.title()} {b}", "description": "",
                "location": "", "duration_minutes": 60, "capacity": 30 if kind == "event" else (4 if kind == "room" else 1),
                "price_cents": 1000 + 100 * b, "currency": "EUR" if b % 4 == 0 else "USD", "timezone": tzs[b % 4],
                "is_active": True, "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 0,
                "max_advance_days": 365, "cancel_cutoff_hours": 0, "refund_percent": 100, "reminder_offsets": "",
                "created_at": year_start, "updated_at": year_start})
            if kind == "event":
                for d in range(0, 365, 3):
                    session_id += 1
                    start = year_start + dt.timedelta(days=d, hours=18)
                    sessions.append({"id": session_id, "bookable_id": b, "start_at": start,
                                     "end_at": start + dt.timedelta(hours=2), "capacity": 30, "is_cancelled": d % 30 == 0})
            else:
                for wd in range(6):
                    rules.append({"bookable_id": b, "weekday": wd, "start_time": dt.time(8), "end_time": dt.time(12)})
                    rules.append({"bookable_id": b, "weekday": wd, "start_time": dt.time(13), "end_time": dt.time(19)})
        insert(conn, Bookable, bookables)
        insert(conn, AvailabilityRule, rules)
        insert(conn, EventSession, sessions)
        event_sessions: dict[int, list[dict]] = {}
        for srow in sessions:
            event_sessions.setdefault(srow["bookable_id"], []).append(srow)

        statuses = ["confirmed"] * 55 + ["completed"] * 25 + ["cancelled"] * 12 + ["no_show"] * 4 + ["pending"] * 4
        bookings, payments, refunds = [], [], []
        pay_id = 0
        for i in range(1, n_bookings + 1):
            bk = bookables[rng.randrange(n_bookables)]
            status = rng.choice(statuses)
            if bk["kind"] == "event":
                srow = rng.choice(event_sessions[bk["id"]])
                start, end, sid, qty = srow["start_at"], srow["end_at"], srow["id"], rng.randint(1, 3)
            else:
                day = rng.randrange(365)
                start = year_start + dt.timedelta(days=day, hours=rng.randrange(8, 18))
                end, sid, qty = start + dt.timedelta(hours=1), None, 1
            created = start - dt.timedelta(hours=rng.randrange(1, 24 * 30))
            guest = rng.random() < 0.1
            price = bk["price_cents"] * qty
            bookings.append({
                "id": i, "reference": f"B{i:010d}", "bookable_id": bk["id"], "provider_id": bk["provider_id"],
                "session_id": sid, "user_id": None if guest else rng.randrange(22, n_users + 1),
                "guest_name": "Guest" if guest else None, "guest_email": "g@example.com" if guest else None,
                "guest_phone": None, "locale": "en", "start_at": start, "end_at": end, "block_start_at": start,
                "block_end_at": end, "exclusive": False, "quantity": qty, "status": status,
                "hold_expires_at": created + dt.timedelta(minutes=15) if status == "pending" else None,
                "price_cents": price, "currency": bk["currency"], "notes": "", "cancel_reason": None,
                "refund_due_cents": 0, "cancelled_at": start - dt.timedelta(hours=2) if status == "cancelled" else None,
                "created_at": created, "updated_at": created, "version": 1, "sequence": 0})
            if status != "pending" and rng.random() < 0.8:
                pay_id += 1
                refunded = price if status == "cancelled" else 0
                pstatus = "refunded" if refunded else ("failed" if rng.random() < 0.03 else "succeeded")
                payments.append({
                    "id": pay_id, "booking_id": i, "method": rng.choice(["card", "card", "paypal", "on_site"]),
                    "provider": "stripe", "provider_ref": None, "payment_intent_ref": None, "checkout_url": None,
                    "amount_cents": price, "refunded_cents": refunded if pstatus == "refunded" else 0,
                    "currency": bk["currency"], "status": pstatus, "last_error": None,
                    "created_at": created + dt.timedelta(minutes=5), "updated_at": created + dt.timedelta(minutes=5)})
                if pstatus == "refunded":
                    refunds.append({"payment_id": pay_id, "amount_cents": price, "currency": bk["currency"],
                                    "provider_ref": None, "reason": "cancelled", "status": "succeeded",
                                    "created_at": start - dt.timedelta(hours=2)})
        insert(conn, Booking, bookings)
        insert(conn, Payment, payments)
        insert(conn, Refund, refunds)
        logins = [{"actor_id": rng.randrange(22, n_users + 1), "action": "user.login", "entity": "user", "entity_id": "0",
                   "data": {}, "at": year_start + dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))}
                  for _ in range(30000)]
        insert(conn, AuditEvent, logins)
        notes = [{"channel": "email", "to": "x@example.com", "template": "booking_confirmed", "locale": "en", "context": {},
                  "dedupe_key": f"n{i}", "booking_id": None, "user_id": None,
                  "status": rng.choice(["sent"] * 30 + ["failed", "pending"]), "attempts": 1,
                  "next_attempt_at": year_start + dt.timedelta(days=rng.randrange(365)), "created_at": year_start}
                 for i in range(20000)]
        insert(conn, Notification, notes)
        counts = {"users": len(users), "bookables": len(bookables), "sessions": len(sessions), "bookings": len(bookings),
                  "payments": len(payments), "refunds": len(refunds), "logins": len(logins), "notifications": len(notes)}
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            from sqlalchemy import text

            conn.execute(text("ANALYZE"))
            for table in ("users", "bookables", "event_sessions", "bookings", "payments", "audit_events"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    elif analyze:
        with engine.begin() as conn:
            from sqlalchemy import text

            conn.execute(text("ANALYZE"))
    return counts


def _measure(fn, runs: int) -> dict[str, float]:
    wall, cpu = sample_ms(fn, runs)
    return {"min": min(wall), "median": statistics.median(wall), "cpu": min(cpu)}


def time_reports(url: str, runs: int) -> list[tuple[str, str, dict[str, float]]]:
    from booking_app.services import reports
    from booking_app.services.actors import Actor

    point_at(url)
    admin = Actor(id=1, role="admin")
    periods = {
        "year": dict(date_from="2026-01-01", date_to="2026-12-31", tz="Europe/Paris"),
        "month": dict(date_from="2026-06-01", date_to="2026-06-30", tz="Europe/Paris"),
    }
    now = dt.datetime(2026, 6, 15, 12, tzinfo=UTC)
    cases = [
        ("bookings by day", lambda p: reports.bookings(actor=admin, group_by="day", **p)),
        ("bookings by service", lambda p: reports.bookings(actor=admin, group_by="service", **p)),
        ("bookings by status", lambda p: reports.bookings(actor=admin, group_by="status", **p)),
        ("revenue by day", lambda p: reports.revenue(actor=admin, group_by="day", **p)),
        ("revenue by service", lambda p: reports.revenue(actor=admin, group_by="service", **p)),
        ("revenue by method", lambda p: reports.revenue(actor=admin, group_by="method", **p)),
        ("users", lambda p: reports.users(actor=admin, **p)),
        ("utilization", lambda p: reports.utilization(actor=admin, now=now, **p)),
        ("cancel/no-show rates", lambda p: reports.rates(actor=admin, **p)),
    ]
    out = []
    for name, fn in cases:
        for label, period in periods.items():
            out.append((name, label, _measure(lambda: fn(period), runs)))
    out.append(("dashboard snapshot", "today", _measure(lambda: reports.dashboard_snapshot(actor=admin, now=now), runs)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--no-analyze", action="store_true",
                        help="SQLite: no ANALYZE after seeding (the planner without statistics)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a report's fastest run is over the target")
    args = parser.parse_args()
    os.environ.setdefault("ENVIRONMENT", "test")
    os.environ["JOBS_ENABLED"] = "false"

    def measure(kind: str, url: str) -> tuple[str, list[tuple[str, str, dict[str, float]]]]:
        migrate(url)
        t0 = time.perf_counter()
        counts = seed(url, args.bookings, random.Random(42), analyze=not args.no_analyze)
        print(f"{kind}: seeded {counts} in {time.perf_counter() - t0:.1f} s", flush=True)
        return kind, time_reports(url, args.runs)

    results = dict(on_each_database(args.only, measure))

    engines = list(results)
    print()
    print(f"Report timings over {args.bookings:,} bookings, ms: fastest / median of {args.runs} runs (wall clock);")
    print("cpu = CPU time of this process (for SQLite that is the query itself, unaffected by other load).")
    print(f"Target: <= {TARGET_MS:.0f} ms. Periods in Europe/Paris (DST-aware buckets).")
    header = f"{'report':<22}{'period':<7}" + "".join(
        f"  {e + ' fastest':>16}{'median':>9}" + (f"{'cpu':>8}" if e == "sqlite" else "") for e in engines)
    print(header)
    print("-" * len(header))
    worst = 0.0
    for i, (name, label, _) in enumerate(results[engines[0]] if engines else []):
        line = f"{name:<22}{label:<7}"
        for e in engines:
            m = results[e][i][2]
            worst = max(worst, m["min"])
            line += f"  {m['min']:>16.1f}{m['median']:>9.1f}" + (f"{m['cpu']:>8.1f}" if e == "sqlite" else "")
        print(line)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nslowest (fastest run): {worst:.1f} ms -> {'OK' if worst <= TARGET_MS else 'OVER TARGET'}"
          f"   (1-min load average during the run: {load:.2f} on {os.cpu_count()} CPUs)")
    return 1 if args.strict and worst > TARGET_MS else 0


if __name__ == "__main__":
    sys.exit(main())
