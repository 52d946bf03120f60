"""Benchmark: the cost of a cancellation that hands its seat to the waitlist vs a plain
cancellation, in the same run, on SQLite and PostgreSQL (issue 24, point 1: the closing
note's figure).

    .venv/bin/python bench/bench_waitlist.py [--rounds 200] [--only sqlite|postgres]

Builds a throwaway database of each kind (a temp SQLite file; a temp PostgreSQL database
`booking_bench_<random>` on BENCH_PG_URL / TEST_DATABASE_URL / 127.0.0.1:5432, dropped at
the end), migrates it and makes two rooms open all day. Each round fills a slot of each room
(untimed); on the waitlisted room someone joins the slot's waitlist (untimed). Then the two
cancellations are timed (`bookings.cancel`, alternating which goes first): the plain one
frees its seat; the other offers it in the same transaction (the offer's hold booking, its
email and audit row). Prints the median and p90 times per cancellation and the ratio.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import bench_actors, migrate, on_each_database, open_room  # noqa: E402

UTC = dt.timezone.utc


def bench(kind: str, url: str, args: argparse.Namespace) -> tuple[str, list[float], list[float]]:
    from booking_app import db
    from booking_app.services import bookings, waitlist
    from booking_app.services.actors import Actor

    migrate(url)
    provider, holder = bench_actors("provider", "customer")
    rooms = [open_room(provider, name) for name in ("Plain room", "Waitlisted room")]
    first = dt.datetime.combine(dt.date.today() + dt.timedelta(days=2), dt.time(0), tzinfo=UTC)
    plain_ms: list[float] = []
    handed_ms: list[float] = []
    for i in range(args.rounds):
        start = first + dt.timedelta(minutes=30 * i)
        plain = bookings.book(actor=holder, service_id=rooms[0], start=start)
        handed = bookings.book(actor=holder, service_id=rooms[1], start=start)
        waitlist.join(actor=Actor.guest(), service_id=rooms[1], start=start,  # (a person has ≤ 20 open entries)
                      guest={"name": "Waiting Guest", "email": f"waiter{i}@example.com"})
        order = [(plain, plain_ms), (handed, handed_ms)]
        for bk, times in (order if i % 2 else order[::-1]):
            t0 = time.perf_counter()
            bookings.cancel(actor=holder, booking_id=bk.id)
            times.append((time.perf_counter() - t0) * 1000)
    with db.read_session() as s:
        from sqlmodel import func, select

        from booking_app.models import WaitlistEntry

        offered = s.exec(select(func.count()).select_from(WaitlistEntry).where(WaitlistEntry.status == "offered")).one()
    assert offered == args.rounds, f"{offered} offers for {args.rounds} rounds"
    return kind, plain_ms, handed_ms


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    args = ap.parse_args()
    if not 1 <= args.rounds <= 1000:
        ap.error("--rounds 1..1000")
    os.environ.setdefault("ENVIRONMENT", "test")
    os.environ["RATE_LIMITS_ENABLED"] = "false"
    results = on_each_database(args.only, lambda kind, url: bench(kind, url, args))
    print()
    print(f"{'db':<9} {'measure':<40} {'median ms':>10} {'p90 ms':>9}")
    print("-" * 72)
    for kind, plain_ms, handed_ms in results:
        for label, times in (("plain cancellation", plain_ms), ("cancellation offered to the waitlist", handed_ms)):
            p90 = sorted(times)[max(0, int(len(times) * 0.9) - 1)]
            print(f"{kind:<9} {label:<40} {statistics.median(times):>10.2f} {p90:>9.2f}")
        print(f"{kind:<9} ratio waitlist/plain (median): {statistics.median(handed_ms) / statistics.median(plain_ms):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
