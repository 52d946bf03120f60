"""Benchmark: slots and search, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_slots.py [--runs 60] [--bookings 10000] [--bookables 5000] [--only sqlite|postgres]

Builds a throwaway database of each kind (a temp SQLite file; a temp PostgreSQL database
`booking_bench_<random>` on BENCH_PG_URL / TEST_DATABASE_URL / 127.0.0.1:5432, dropped at
the end; skipped with a note when PostgreSQL is unreachable), migrates it with Alembic and
bulk-inserts:
- one room (30-minute slots, open 08:00-20:00 every day, Europe/Madrid, 10-minute buffer)
  with 10,000 confirmed/pending bookings spread over the next ~2 years,
- 5,000 more bookables (rooms/services/events) with weekly hours.
Then times (median of --runs after a warm-up):
- `availability.slots()` for 60 days of that room (target ≤ 20 ms),
- `catalog.search_bookables()` by text, by text + date (has a free slot that day) and by
  date only over every bookable (target ≤ 100 ms; its total is exact up to
  availability.EXACT_DATE_TOTAL_MAX candidates open that day, an upper bound beyond).
Prints a table. Not part of the test suite.
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

UTC = dt.timezone.utc
TARGET_SLOTS_MS = 20.0
TARGET_DATE_SEARCH_MS = 100.0  # date-only search over all bookables, page of 50


def populate(n_bookings: int, n_bookables: int, now: dt.datetime) -> tuple[int, str]:
    """→ (id of the busy room, a search word)."""
    import zoneinfo

    from sqlalchemy import insert

    from booking_app import db
    from booking_app.models import AvailabilityRule, Bookable, Booking, EventSession, User

    rnd = random.Random(42)
    tz = zoneinfo.ZoneInfo("Europe/Madrid")
    with db.unit_of_work() as s:
        s.add(User(username="benchprov", email="bench@example.com", password_hash="x", role="provider"))
        s.flush()
        pid = s.exec(__import__("sqlmodel").select(User.id)).first()
        room = Bookable(provider_id=pid, kind="room", name="Busy room", duration_minutes=30, capacity=1,
                        timezone="Europe/Madrid", buffer_after_minutes=10, max_advance_days=900)
        s.add(room)
        s.flush()
        room_id = room.id
        s.add_all([AvailabilityRule(bookable_id=room_id, weekday=d, start_time=dt.time(8), end_time=dt.time(20))
                   for d in range(7)])
    # 10,000 bookings on every other slot (12 of the 24 per day; buffers must not collide),
    # 60 % of those taken, from today on
    per_day = 12
    days = int(n_bookings / (per_day * 0.6)) + 1
    slots = [(d, 2 * k) for d in range(days) for k in range(per_day)]
    chosen = rnd.sample(slots, n_bookings)
    today = now.astimezone(tz).date()
    rows = []
    for i, (d, k) in enumerate(chosen):
        start = dt.datetime.combine(today + dt.timedelta(days=d), dt.time(8), tzinfo=tz).astimezone(UTC) \
            + dt.timedelta(minutes=30 * k)
        pending = i % 10 == 0
        rows.append(dict(reference=f"B{i:07d}", bookable_id=room_id, provider_id=pid, locale="en", start_at=start,
                         end_at=start + dt.timedelta(minutes=30), block_start_at=start,
                         block_end_at=start + dt.timedelta(minutes=40), exclusive=True, quantity=1,
                         status="pending" if pending else "confirmed",
                         hold_expires_at=now + dt.timedelta(minutes=10) if pending else None, price_cents=0,
                         currency="EUR", notes="", refund_due_cents=0, created_at=now, updated_at=now, version=1,
                         sequence=0))
    words = ["yoga", "massage", "studio", "meeting", "haircut", "pottery", "tennis", "desk", "sauna", "piano"]
    cities = ["Madrid", "Paris", "Berlin", "Lisbon", "Rome"]
    kinds = ["room", "service", "event"]
    with db.unit_of_work() as s:
        for chunk in range(0, len(rows), 2000):
            s.execute(insert(Booking), rows[chunk:chunk + 2000])
        more = [dict(provider_id=pid, kind=kinds[i % 3], name=f"{words[i % 10].title()} {i}",
                     description=f"A {words[(i * 7) % 10]} place", location=cities[i % 5], duration_minutes=60,
                     capacity=1 + (i % 3) * 5, price_cents=0, currency="EUR", timezone="Europe/Madrid",
                     is_active=True, buffer_before_minutes=0, buffer_after_minutes=0, min_notice_minutes=0,
                     max_advance_days=365, cancel_cutoff_hours=0, refund_percent=100, reminder_offsets="",
                     created_at=now, updated_at=now) for i in range(n_bookables)]
        s.execute(insert(Bookable), more)
        from sqlmodel import select

        ids = s.exec(select(Bookable.id, Bookable.kind).where(Bookable.id != room_id)).all()
        rules, sessions = [], []
        for bid, kind in ids:
            if kind == "event":
                for d in (1, 3, 5):
                    st = dt.datetime.combine(today + dt.timedelta(days=d), dt.time(18), tzinfo=tz).astimezone(UTC)
                    sessions.append(dict(bookable_id=bid, start_at=st, end_at=st + dt.timedelta(hours=1),
                                         capacity=10, is_cancelled=False))
            else:
                for d in range(5 if bid % 2 else 7):
                    rules.append(dict(bookable_id=bid, weekday=d, start_time=dt.time(9), end_time=dt.time(17)))
        for chunk in range(0, len(rules), 5000):
            s.execute(insert(AvailabilityRule), rules[chunk:chunk + 5000])
        if sessions:
            s.execute(insert(EventSession), sessions)
    return room_id, "yoga"


def timed(fn, runs: int) -> tuple[float, float, float]:
    """→ (median wall ms, best wall ms, median CPU ms of this process)."""
    samples, cpu = sample_ms(fn, runs)
    return statistics.median(samples), min(samples), statistics.median(cpu)


def bench(kind: str, url: str, args) -> list[tuple]:
    from booking_app.services import availability, catalog

    migrate(url)
    point_at(url)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    room_id, word = populate(args.bookings, args.bookables, now)
    if kind == "postgres":
        from sqlalchemy import text

        from booking_app import db

        with db.unit_of_work() as s:
            s.exec(text("ANALYZE"))
    setup = time.perf_counter() - t0
    d1 = now.date() + dt.timedelta(days=1)
    d2 = d1 + dt.timedelta(days=59)
    n_slots = len(availability.slots(bookable_id=room_id, date_from=d1, date_to=d2, now=now))
    out = []
    med, best, cpu = timed(lambda: availability.slots(bookable_id=room_id, date_from=d1, date_to=d2, now=now), args.runs)
    out.append((kind, f"slots, 60 days, {args.bookings} bookings ({n_slots} free)", med, best, cpu, TARGET_SLOTS_MS))
    total = catalog.search_bookables(q=word)[1]
    med, best, cpu = timed(lambda: catalog.search_bookables(q=word), max(args.runs // 3, 5))
    out.append((kind, f"search q={word!r} over {args.bookables} ({total} hits, page 50)", med, best, cpu, None))
    day = now.date() + dt.timedelta(days=3)
    total = catalog.search_bookables(q=word, date=day, now=now)[1]
    med, best, cpu = timed(lambda: catalog.search_bookables(q=word, date=day, now=now), max(args.runs // 6, 3))
    out.append((kind, f"search q={word!r} + date ({total} with a free slot)", med, best, cpu, None))
    total = catalog.search_bookables(date=day, now=now)[1]
    med, best, cpu = timed(lambda: catalog.search_bookables(date=day, now=now), max(args.runs // 6, 3))
    out.append((kind, f"search date only, all {args.bookables} (total {total}, page 50)", med, best, cpu,
                TARGET_DATE_SEARCH_MS))
    print(f"  [{kind}] setup {setup:.1f} s", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--bookings", type=int, default=10_000)
    ap.add_argument("--bookables", type=int, default=5_000)
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    args = ap.parse_args()
    os.environ.setdefault("ENVIRONMENT", "test")
    os.environ["RATE_LIMITS_ENABLED"] = "false"
    results = [row for rows in on_each_database(args.only, lambda kind, url: bench(kind, url, args)) for row in rows]
    print()
    print(f"{'db':<9} {'measure':<58} {'median ms':>10} {'best ms':>9} {'cpu ms':>8}  target (median)")
    print("-" * 112)
    failed = False
    for kind, label, med, best, cpu, target in results:
        verdict = ""
        if target is not None:
            ok = med <= target
            failed |= not ok
            verdict = f"≤ {target:.0f} ms {'OK' if ok else 'MISSED'}"
        print(f"{kind:<9} {label:<58} {med:>10.2f} {best:>9.2f} {cpu:>8.2f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
