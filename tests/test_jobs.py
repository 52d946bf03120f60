"""Background jobs: two relay processes on one PostgreSQL database deliver 500 due reminders
exactly once; the SQLite claim is exclusive too; the sweeps (hold expiry, completing past
bookings); the scheduler runs from the API's lifespan and from `run-jobs --once`."""
from __future__ import annotations

import collections
import itertools
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from freezegun import freeze_time
from sqlalchemy import update
from sqlmodel import select

from booking_app import db
from booking_app.models import Bookable, Booking
from booking_app.services import messages, outbox, relay, reminders
from tests.conftest import ROOT
from tests.stubs.notify_helpers import SmtpSink, fast_password_hashing, make_world, outbox_rows
from tests.threads import run_together

UTC = dt.timezone.utc
_refs = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_password_hashing(monkeypatch)


def insert_confirmed_bookings(n: int, *, start: dt.datetime, bookable: Bookable | None = None) -> list[int]:
    """n confirmed bookings of one big-capacity bookable, inserted directly (fast)."""
    w = make_world(bookable={"capacity": max(n, 1)})
    prefix = next(_refs)
    ids = []
    with db.unit_of_work() as s:
        for i in range(n):
            bk = Booking(reference=f"R{prefix}-{i:05d}", bookable_id=w.bookable.id, provider_id=w.provider.id,
                         user_id=w.customer.id, start_at=start, end_at=start + dt.timedelta(hours=1),
                         block_start_at=start, block_end_at=start + dt.timedelta(hours=1), status="confirmed")
            s.add(bk)
            s.flush()
            ids.append(bk.id)
    return ids


def queue_reminders(ids: list[int], *, at: dt.datetime) -> None:
    """Queue the reminders of these bookings as their confirmation would have, at time `at`."""
    with freeze_time(at), db.unit_of_work() as s:
        for booking_id in ids:
            bk = s.get(Booking, booking_id)
            reminders.schedule_reminders(s, bk)


# --- two processes, one PostgreSQL ------------------------------------------------------------------

WORKER = r"""
import json, os, sys, time
from booking_app.services import relay
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.01)
total = relay.RelayStats()
idle = 0
while idle < 3:
    stats = relay.relay_once(batch_size=10)
    total.add(stats)
    idle = idle + 1 if stats.claimed == 0 else 0
    if stats.claimed == 0:
        time.sleep(0.05)
print(json.dumps(total.__dict__))
"""


@pytest.mark.postgres
def test_two_relay_processes_send_500_due_reminders_exactly_once(pg_db, tmp_path):
    start = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(minutes=30)
    ids = insert_confirmed_bookings(250, start=start)
    queue_reminders(ids, at=start - dt.timedelta(days=2))  # 24 h and 1 h reminders, both due now
    due = [r for r in outbox_rows(template="reminder") if r.next_attempt_at <= dt.datetime.now(UTC)]
    assert len(due) == 500

    go = tmp_path / "go"
    with SmtpSink() as smtp:
        env = {**os.environ, "DATABASE_URL": pg_db, "SMTP_URL": smtp.url, "JOBS_ENABLED": "false",
               "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(go)], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(1.0)  # let both import and connect before they start together
        t0 = time.perf_counter()
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        received = [m["X-Booking-Notification"] for m in smtp.messages]
        elapsed = time.perf_counter() - t0

    per_process = [r["sent"] for r in results]
    dupes = [k for k, c in collections.Counter(received).items() if c > 1]
    print(f"\nsent per process: {per_process}; received {len(received)}; duplicates {len(dupes)}; "
          f"{elapsed:.1f} s ({len(received) / elapsed:.0f} messages/s)")
    assert sum(per_process) == 500 and len(received) == 500 and dupes == []
    assert all(n > 0 for n in per_process), "both processes should have taken a share"
    assert {r.status for r in outbox_rows(template="reminder")} == {"sent"}
    assert all(r.attempts == 1 for r in outbox_rows(template="reminder"))


def test_sqlite_concurrent_relays_claim_each_row_once(sqlite_db):
    start = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(minutes=30)
    ids = insert_confirmed_bookings(60, start=start)
    queue_reminders(ids, at=start - dt.timedelta(days=2))
    sent: list[str] = []
    lock = threading.Lock()

    class Sender:
        name = "memory"

        def send(self, message):
            time.sleep(0.001)
            with lock:
                sent.append(message.headers["X-Booking-Notification"])
            return None

    def worker(i: int) -> None:
        while relay.relay_once(batch_size=5, email_sender=Sender()).claimed:
            pass

    _, errors = run_together(4, worker)
    assert errors == []
    assert len(sent) == 120 and len(set(sent)) == 120


# --- sweeps -----------------------------------------------------------------------------------------

def test_complete_past_bookings_after_grace(db_url):
    from booking_app.jobs.sweeps import complete_past_bookings

    now = dt.datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    old, recent = (insert_confirmed_bookings(1, start=now - dt.timedelta(hours=h))[0] for h in (30, 3))
    with db.unit_of_work() as s:
        pending = s.get(Booking, insert_confirmed_bookings(1, start=now - dt.timedelta(hours=40))[0])
        pending.status = "cancelled"
        s.add(pending)
    assert complete_past_bookings(now=now) == 1
    assert complete_past_bookings(now=now) == 0  # repeat-safe
    with db.read_session() as s:
        status = {b.id: (b.status, b.version) for b in s.exec(select(Booking)).all()}
    assert status[old] == ("completed", 2) and status[recent] == ("confirmed", 1)
    assert status[pending.id][0] == "cancelled"


def test_hold_expiry_job_releases_and_tells_the_customer(db_url):
    from booking_app.jobs.sweeps import expire_holds

    now = dt.datetime.now(UTC)
    (booking_id,) = insert_confirmed_bookings(1, start=now + dt.timedelta(days=2))
    with db.unit_of_work() as s:
        s.exec(update(Booking).where(Booking.id == booking_id).values(
            status="pending", hold_expires_at=now - dt.timedelta(minutes=1)))
    assert expire_holds() == 1
    with db.read_session() as s:
        bk = s.get(Booking, booking_id)
        assert bk.status == "cancelled" and bk.cancel_reason == "hold_expired"
    (row,) = outbox_rows(booking_id=booking_id, template="booking_cancelled")
    email = messages.render_email(row.template, row.locale, row.context)
    assert "The reservation expired before the payment was completed." in email.text


# --- the scheduler -----------------------------------------------------------------------------------

def test_scheduler_has_the_four_jobs():
    from booking_app.jobs.scheduler import JOBS, create_scheduler

    assert {"outbox_relay", "reminders", "hold_expiry", "complete_bookings"} <= {j.name for j in JOBS}
    scheduler = create_scheduler()
    assert {j.id for j in scheduler.get_jobs()} == {j.name for j in JOBS}


def test_api_lifespan_runs_the_relay_when_jobs_enabled(sqlite_db, monkeypatch):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api
    from booking_app.config import reset_settings_cache
    from booking_app.integrations.email import ConsoleEmailSender

    ConsoleEmailSender.clear()
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="email", to="someone@example.com", template="password_reset", locale="en",
                       context={"username": "someone", "reset_url": "http://x/r?token=t", "expires_minutes": 60},
                       dedupe_key="lifespan-1")
    monkeypatch.setenv("JOBS_ENABLED", "true")
    monkeypatch.setenv("OUTBOX_INTERVAL_SECONDS", "0.1")
    reset_settings_cache()
    with TestClient(create_api()):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and outbox_rows(dedupe_key="lifespan-1")[0].status != "sent":
            time.sleep(0.05)
    (row,) = outbox_rows(dedupe_key="lifespan-1")
    assert row.status == "sent" and row.transport == "console"
    from booking_app.jobs import scheduler

    assert scheduler._running is None  # stopped with the app


def test_jobs_disabled_means_no_scheduler(sqlite_db):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api
    from booking_app.jobs import scheduler

    with TestClient(create_api()):
        assert scheduler._running is None


def test_run_jobs_once_cli(sqlite_db):
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="email", to="cli@example.com", template="password_reset", locale="en",
                       context={"username": "cli", "reset_url": "http://x/r?token=t", "expires_minutes": 60},
                       dedupe_key="cli-1")
    env = {**os.environ, "DATABASE_URL": sqlite_db, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "booking_app", "run-jobs", "--once"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "outbox_relay: 1" in out.stdout
    assert outbox_rows(dedupe_key="cli-1")[0].status == "sent"
