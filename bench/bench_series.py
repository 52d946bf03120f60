"""Benchmark: booking a recurring series vs the same dates booked one by one, on SQLite and
PostgreSQL (issue 24, point 3: the closing note's figure).

    .venv/bin/python bench/bench_series.py [--runs 5] [--weeks 52] [--only sqlite|postgres]

Builds a throwaway database of each kind (a temp SQLite file; a temp PostgreSQL database
`booking_bench_<random>` on BENCH_PG_URL / TEST_DATABASE_URL / 127.0.0.1:5432, dropped at
the end), migrates it and makes one room open all day. Each run books, at an hour of its
own, a weekly series of --weeks dates (`series.book_series`, all-or-nothing: one
transaction under one capacity lock), then --weeks single bookings of the same weekly
dates at the next hour (`bookings.book`, the hot path, one transaction each). Prints the
median and best times and the ratio series / singles. Not part of the test suite.
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
    from booking_app.services import bookings, series

    migrate(url)
    provider, customer = bench_actors("provider", "customer")
    room_id = open_room(provider, "Series room")
    day = dt.date.today() + dt.timedelta(days=2)
    series_ms: list[float] = []
    singles_ms: list[float] = []
    for run in range(args.runs):
        first = dt.datetime.combine(day, dt.time(0), tzinfo=UTC) + dt.timedelta(hours=2 * run)
        t0 = time.perf_counter()
        done = series.book_series(actor=customer, service_id=room_id, start=first,
                                  recurrence_rule={"frequency": "weekly", "count": args.weeks})
        series_ms.append((time.perf_counter() - t0) * 1000)
        assert len(done.bookings) == args.weeks
        t0 = time.perf_counter()
        for k in range(args.weeks):
            bookings.book(actor=customer, service_id=room_id, start=first + dt.timedelta(hours=1, weeks=k))
        singles_ms.append((time.perf_counter() - t0) * 1000)
    return kind, series_ms, singles_ms


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    args = ap.parse_args()
    if not 1 <= args.runs <= 11 or not 1 <= args.weeks <= 52:
        ap.error("--runs 1..11 (a run per two hours of the day), --weeks 1..52")
    os.environ.setdefault("ENVIRONMENT", "test")
    os.environ["RATE_LIMITS_ENABLED"] = "false"
    os.environ["SERIES_MAX_OCCURRENCES"] = str(max(args.weeks, 52))
    results = on_each_database(args.only, lambda kind, url: bench(kind, url, args))
    print()
    print(f"{'db':<9} {'measure':<40} {'median ms':>10} {'best ms':>9}")
    print("-" * 72)
    for kind, series_ms, singles_ms in results:
        print(f"{kind:<9} {f'series of {args.weeks} weekly dates':<40} {statistics.median(series_ms):>10.1f} "
              f"{min(series_ms):>9.1f}")
        print(f"{kind:<9} {f'{args.weeks} single bookings':<40} {statistics.median(singles_ms):>10.1f} "
              f"{min(singles_ms):>9.1f}")
        print(f"{kind:<9} ratio series/singles (median): {statistics.median(series_ms) / statistics.median(singles_ms):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
