"""The bench scripts (`make bench`) still run and still print their tables.

They are not run by the suite for their figures — those need a quiet machine and minutes
per row — but a change to the app (an endpoint, the booking's statements, a setting) can
break a script that nobody runs until the next time someone measures. Each runs here with
the smallest workload that still goes through every row of its table, against the same
PostgreSQL server as the rest of the suite (each creates and drops its own databases).

Left out: bench_ui.py (builds and starts the Reflex app, minutes; the browser tests cover
the same pages) and bench_instructions.py (needs valgrind, which the suite doesn't install).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _run(script: str, *args: str, server_url: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "ENVIRONMENT", "JOBS_ENABLED", "BENCH_PG_URL")}
    env["TEST_DATABASE_URL"] = _libpq(server_url)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    return done


def _bench_databases(server_url: str) -> set[str]:
    import psycopg

    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'booking_bench%'")}


@pytest.fixture(autouse=True)
def _no_database_left_behind(pg_server_url):
    """Every script drops the databases it created."""
    before = _bench_databases(pg_server_url)
    yield
    assert _bench_databases(pg_server_url) <= before


def test_bench_http_prints_every_row_and_finds_nothing_oversold(pg_server_url):
    done = _run("bench_http.py", "--seconds", "1", "--clients", "8", "--rooms", "20", server_url=pg_server_url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for scenario in ("hot", "spread"):
        row = re.search(rf"^{scenario}\s+8\s+(\d+)\s+[\d.]+\s+[\d.]+\s+(\d+)\s+(\d+)%", out, re.M)
        assert row, out
        assert int(row.group(1)) > 0 and int(row.group(2)) == 0  # bookings made, no errors
        assert re.search(rf"^ceiling\s+8 thr\s+\d+\s+plain-SQL booking transaction \({scenario}\)", out, re.M), out
        assert re.search(rf"^bound\s+est\.\s+\d+\s+floor and ceiling \({scenario}\)", out, re.M), out
    assert re.search(r"^floor\s+64\s+\d+", out, re.M), out
    assert "oversell check: OK, nothing oversold" in out


def test_bench_pg_statements_replays_the_three_statements_of_a_booking(pg_server_url):
    done = _run("bench_pg_statements.py", "--repeat", "20", "--bookings", "20", "--threads", "1,2",
                server_url=pg_server_url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for label in ("SELECT 1", "first statement (bookable, people, id, slot check)", "writes + lock (one statement)",
                  "re-count", "writes + lock + re-count (the pipeline)"):
        # (net figures: a pipelined statement's cost less the pipeline's own, which with 20 repeats on
        # a busy machine may come out below zero: the row is what is checked, not its sign)
        assert re.search(rf"^{re.escape(label)}\s+-?[\d.]+\s+-?[\d.]+$", done.stdout, re.M), done.stdout
    assert re.search(r"^\s+2\s+[\d.]+\s+[\d.]+\s+\d+$", done.stdout, re.M), done.stdout  # the 2-thread row


def test_bench_slots_measures_both_databases(pg_server_url):
    done = _run("bench_slots.py", "--runs", "2", "--bookings", "200", "--bookables", "50", server_url=pg_server_url)
    # (exit status 1 means a timing target was missed: a loaded CI machine may, that is no failure here)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert done.returncode == 0 or "MISSED" in done.stdout
    for db in ("sqlite", "postgres"):
        assert re.search(rf"^{db}\s+slots, 60 days, 200 bookings \(\d+ free\)\s+[\d.]+", done.stdout, re.M), done.stdout
        assert re.search(rf"^{db}\s+search date only, all 50", done.stdout, re.M), done.stdout


def test_bench_reports_times_every_report(pg_server_url):
    done = _run("bench_reports.py", "--bookings", "1000", "--runs", "1", server_url=pg_server_url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for report in ("utilization", "cancel/no-show rates", "dashboard snapshot"):
        assert re.search(rf"^{re.escape(report)}\s+\w+\s+[\d.]+", done.stdout, re.M), done.stdout
    assert re.search(r"^slowest \(fastest run\): [\d.]+ ms", done.stdout, re.M), done.stdout


def test_bench_memory_samples_every_worker_without_errors(pg_server_url):
    done = _run("bench_memory.py", "--minutes", "0.1", "--sample", "1", server_url=pg_server_url)
    # the script's exit status also judges its figure (1: a worker above its RSS target), which
    # six seconds on a shared machine can't settle: here it must run, sample, and see no error
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b0 errors\b", done.stdout), done.stdout[-3000:]
    workers = re.findall(r"^\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+[+-][\d.]+\s+(?:ok|OVER)",
                         done.stdout, re.M)
    assert len(workers) == 2, done.stdout


def test_bench_partitioned_compares_the_three_tables_and_keeps_the_constraints(pg_server_url):
    done = _run("bench_partitioned.py", "--rounds", "1", "--bookings", "20", "--threads", "2", "--partitions", "4",
                server_url=pg_server_url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for variant in ("plain", "partitioned", "partitioned, generic"):
        assert re.search(rf"^\s+{re.escape(variant)}\s+\d+\s+[\d.]+\s+[\d.]+\s+\d+ / \d+$", out, re.M), out
        assert f"{variant}: slots booked twice: 0" in out, out
    assert re.search(r"^ratio partitioned/plain: bookings/s [\d.]+, PG CPU per booking [\d.]+$", out, re.M), out
    assert out.count("an overlapping copy of a booking: refused (exclusion constraint)") == 2, out
    assert "PRIMARY KEY (id, bookable_id)" in out and "(reference) -> (reference, bookable_id)" in out, out


def test_bench_series_compares_a_series_with_single_bookings(pg_server_url):
    done = _run("bench_series.py", "--runs", "1", "--weeks", "4", server_url=pg_server_url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for db in ("sqlite", "postgres"):
        assert re.search(rf"^{db}\s+series of 4 weekly dates\s+[\d.]+\s+[\d.]+$", done.stdout, re.M), done.stdout
        assert re.search(rf"^{db}\s+4 single bookings\s+[\d.]+\s+[\d.]+$", done.stdout, re.M), done.stdout
        assert re.search(rf"^{db}\s+ratio series/singles \(median\): [\d.]+$", done.stdout, re.M), done.stdout


def test_bench_waitlist_compares_a_handed_on_cancellation_with_a_plain_one(pg_server_url):
    done = _run("bench_waitlist.py", "--rounds", "3", server_url=pg_server_url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for db in ("sqlite", "postgres"):
        for label in ("plain cancellation", "cancellation offered to the waitlist"):
            assert re.search(rf"^{db}\s+{label}\s+[\d.]+\s+[\d.]+$", done.stdout, re.M), done.stdout
        assert re.search(rf"^{db}\s+ratio waitlist/plain \(median\): [\d.]+$", done.stdout, re.M), done.stdout


def test_bench_prerender_compares_the_cached_page_with_the_uncached(pg_server_url):
    done = _run("bench_prerender.py", "--quick", server_url=pg_server_url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for encoding in ("identity", "gzip"):
        for variant in ("uncached", "cached"):
            assert re.search(rf"^{encoding}\s+{variant}\s+[\d.]+\s+[\d.]+\s+[\d,]+\s+[\d,]+$", done.stdout, re.M), \
                done.stdout
        assert re.search(rf"^ratio uncached/cached, CPU per request \({encoding}\): [\d.]+$", done.stdout, re.M), \
            done.stdout
