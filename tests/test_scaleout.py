"""Scale-out: two API processes (separate `uvicorn booking_app.api:api`, different ports) on one
PostgreSQL database and one Redis, the job sweeps running in both.

- bookings raced through both ports never oversell (capacity-3 event session, capacity-1 room);
- both processes' sweeps together send every message once (reminders due now);
- SIGKILL of one process mid-load loses no acknowledged booking: every 201 a client saw is
  in the database exactly once, and a retry with the same Idempotency-Key on the surviving
  process replays instead of booking again.
"""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: a Redis database number of these tests' own (flushed before use)
REDIS_DB = 13
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        "booking_app": {"level": "INFO", "handlers": ["err"], "propagate": False},
        "uvicorn": {"level": "WARNING", "handlers": ["err"], "propagate": False},
        "uvicorn.access": {"level": "WARNING", "handlers": ["err"], "propagate": False},
    },
}
CONSOLE_EMAIL_LINE = "booking_app.integrations.email: email (console) to="


class ApiProcess:
    """One `python -m uvicorn booking_app.api:api` process of its own (own session, own port),
    logging to a file (never a pipe nobody reads)."""

    def __init__(self, workdir: pathlib.Path, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self.log_config = workdir / "log-config.json"
        self.log_config.write_text(json.dumps(LOG_CONFIG))
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ENVIRONMENT": "test", "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "booking_app.api:api", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-config", str(self.log_config), "--no-access-log"],
                cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/api/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} not ready within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        try:
            self.signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                self.signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, since: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(since)
            return fh.read().decode(errors="replace")

    def log_tail(self, n: int = 3000) -> str:
        return self.log_text()[-n:]


def start_all(procs: list[ApiProcess]) -> None:
    for p in procs:  # in parallel: the imports take a few seconds each
        p.start()
    for p in procs:
        p.wait_ready()


@contextlib.contextmanager
def api_pair(workdir: pathlib.Path, env: dict[str, str]):
    """Processes A and B serving the API with `env`, ready; stopped on leaving."""
    procs = [ApiProcess(workdir, "A", env), ApiProcess(workdir, "B", env)]
    try:
        start_all(procs)
        yield procs
    finally:
        for p in procs:
            p.stop()


def run_together(n: int, work) -> list:
    """`work(i, barrier)` in n threads that start together; their results in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        results[i] = work(i, barrier)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def guest_body(service_id: int, start: dt.datetime, tag: str) -> dict:
    return {"service_id": service_id, "start": iso(start),
            "guest": {"name": f"Guest {tag}", "email": f"guest-{tag}@example.com"}}


def sql(url: str, query: str, **params):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return conn.execute(text(query), params).all()
    finally:
        engine.dispose()


def flush_redis_db(url: str = REDIS_URL) -> None:
    """Empty a Redis database of the tests' own (skip when no Redis answers)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3)
    try:
        client.flushdb()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"Redis is not available on 127.0.0.1:6379: {exc}")
    finally:
        client.close()


@pytest.fixture(scope="module")
def pair(pg_database, tmp_path_factory):
    """Two API processes A and B sharing the session's PostgreSQL database and one Redis db."""
    flush_redis_db()
    workdir = tmp_path_factory.mktemp("scaleout")
    # AUTH_CACHE_SECONDS far above any test's length: a token lookup cached by one process
    # must be dropped by the other's change through Redis, not by expiry
    env = {"DATABASE_URL": pg_database, "REDIS_URL": REDIS_URL, "JOBS_ENABLED": "true", "AUTH_CACHE_SECONDS": "300",
           "RATE_LIMITS_ENABLED": "false", "OUTBOX_INTERVAL_SECONDS": "0.5", "DB_LOCK_TIMEOUT_MS": "5000"}
    with api_pair(workdir, env) as procs:
        yield procs


@pytest.fixture
def running_pair(pair, pg_db):
    """The pair with both processes up (a test that killed one gets it back), data emptied."""
    dead = [p for p in pair if not p.alive()]
    if dead:
        start_all(dead)
    return pair


def test_bookings_raced_through_two_processes_never_oversell(running_pair, pg_url, capsys):
    from tests.factories import make_bookable, make_event, next_day_at

    a, b = running_pair
    event, _ = make_event(sessions=[next_day_at(12)], capacity=3)
    room = make_bookable(kind="room", capacity=1)
    targets = [(event.id, next_day_at(12)), (room.id, next_day_at(10))]
    run_id = uuid.uuid4().hex[:8]

    def attempt(i: int, barrier: threading.Barrier):
        base = (a, b)[i % 2].base
        service_id, start = targets[(i // 2) % 2]
        with httpx.Client(base_url=base, timeout=30) as c:
            c.get("/api/health")  # connected before the start line
            barrier.wait()
            r = c.post("/api/bookings", json=guest_body(service_id, start, f"{run_id}-{i}"),
                       headers={"Idempotency-Key": f"race-{run_id}-{i}"})
            return service_id, r.status_code, r.headers.get("retry-after"), r.json()

    results = run_together(40, attempt)
    by_target = collections.defaultdict(collections.Counter)
    for service_id, status, retry_after, body in results:
        by_target[service_id][status] += 1
        assert status in (201, 409, 503), body
        if status == 503:
            assert retry_after, body
    assert by_target[event.id][201] == 3, by_target
    assert by_target[room.id][201] == 1, by_target
    rows = dict(sql(pg_url, "SELECT bookable_id, coalesce(sum(quantity), 0) FROM bookings "
                            "WHERE status IN ('pending', 'confirmed') GROUP BY bookable_id"))
    assert rows == {event.id: 3, room.id: 1}
    with capsys.disabled():
        print(f"\n[scale-out race] 40 clients over 2 processes: event (cap 3) {dict(by_target[event.id])}, "
              f"room (cap 1) {dict(by_target[room.id])}")


def test_role_change_deactivation_and_logout_through_one_process_reach_the_others_token_cache(running_pair):
    """Each process caches token lookups (services/authcache.py); a change made through A
    must apply in B at once — B learns of it over Redis — not after AUTH_CACHE_SECONDS."""
    from tests.api.conftest import make_account

    a, b = running_pair
    admin, customer, other = make_account("admin"), make_account("customer"), make_account("customer")

    def bearer(acct) -> dict[str, str]:
        return {"Authorization": f"Bearer {acct.token}"}

    def eventually(check) -> None:  # the message crosses Redis asynchronously (milliseconds)
        deadline = time.monotonic() + 3
        while not check():
            assert time.monotonic() < deadline, "the other process still serves the cached lookup"
            time.sleep(0.05)

    with httpx.Client(timeout=30) as c:
        for acct in (customer, other):  # B has both lookups cached now
            assert c.get(f"{b.base}/api/users/profile", headers=bearer(acct)).json()["role"] == "customer"
        report = f"{b.base}/api/reports/bookings?from=2026-01-01&to=2026-01-31"
        assert c.get(report, headers=bearer(customer)).status_code == 403
        # promoted to admin through A → B lets them at the reports
        r = c.put(f"{a.base}/api/admin/users/{customer.id}/role", json={"role": "admin"}, headers=bearer(admin))
        assert r.status_code == 200, r.text
        eventually(lambda: c.get(report, headers=bearer(customer)).status_code == 200)
        # deactivated through A → B refuses the token
        r = c.put(f"{a.base}/api/admin/users/{customer.id}/active", json={"active": False}, headers=bearer(admin))
        assert r.status_code == 200, r.text
        eventually(lambda: c.get(f"{b.base}/api/users/profile", headers=bearer(customer)).status_code == 401)
        # logout through A → B refuses that token too
        assert c.post(f"{a.base}/api/users/logout", headers=bearer(other)).status_code == 204
        eventually(lambda: c.get(f"{b.base}/api/users/profile", headers=bearer(other)).status_code == 401)


def test_job_sweeps_in_both_processes_send_each_reminder_once(running_pair, pg_url, capsys):
    from tests.factories import make_event, next_day_at

    a, b = running_pair
    marks = {p.name: p.log_size() for p in running_pair}
    event, _ = make_event(sessions=[next_day_at(11, days=2)], capacity=100)
    start = next_day_at(11, days=2)
    run_id = uuid.uuid4().hex[:8]
    n = 30
    with httpx.Client(timeout=30) as c:
        for i in range(n):
            base = (a, b)[i % 2].base
            r = c.post(f"{base}/api/bookings", json=guest_body(event.id, start, f"{run_id}-{i}"))
            assert r.status_code == 201, r.text
    # the reminders were queued with the bookings for later: make them all due now, at once,
    # so both processes' relays (every 0.5 s) compete for them
    due = sql(pg_url, "UPDATE notifications SET next_attempt_at = now() - interval '1 second' "
                      "WHERE template = 'reminder' AND status = 'pending' RETURNING id")
    assert len(due) >= n  # at least one reminder per booking (24 h and 1 h before, by email)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        open_rows = sql(pg_url, "SELECT count(*) FROM notifications WHERE status IN ('pending', 'sending') "
                                "AND next_attempt_at <= now()")[0][0]
        if open_rows == 0:
            break
        time.sleep(0.25)
    rows = sql(pg_url, "SELECT id, template, status, attempts, dedupe_key FROM notifications ORDER BY id")
    reminders = [r for r in rows if r.template == "reminder"]
    assert len(reminders) == len(due)
    assert all(r.status == "sent" and r.attempts == 1 for r in reminders), \
        [tuple(r) for r in reminders if r.status != "sent" or r.attempts != 1]
    assert all(r.status == "sent" and r.attempts == 1 for r in rows), [tuple(r) for r in rows if r.attempts != 1]
    dupes = sql(pg_url, "SELECT dedupe_key FROM notifications GROUP BY dedupe_key HAVING count(*) > 1")
    assert dupes == []
    # what each process actually handed to the (console) email transport: the sum is exactly
    # the number of sent rows, so no message went out twice
    time.sleep(0.3)  # let the last log lines reach the files
    recipients = {r[0] for r in sql(pg_url, 'SELECT DISTINCT "to" FROM notifications')}
    sent_by = {p.name: sum(1 for line in p.log_text(marks[p.name]).splitlines()
                           if CONSOLE_EMAIL_LINE in line
                           and line.split(CONSOLE_EMAIL_LINE, 1)[1].split(" ", 1)[0] in recipients)
               for p in running_pair}
    assert sum(sent_by.values()) == len(rows), (sent_by, len(rows))
    with capsys.disabled():
        print(f"[scale-out jobs] {len(rows)} messages ({len(reminders)} reminders made due at once), "
              f"each sent once; sent by process: {sent_by}")


def test_killing_one_process_mid_load_loses_no_acknowledged_booking(running_pair, pg_url, capsys):
    from tests.factories import make_event, next_day_at

    victim, survivor = running_pair
    event, _ = make_event(sessions=[next_day_at(14, days=3)], capacity=5000)
    start = next_day_at(14, days=3)
    run_id = uuid.uuid4().hex[:8]
    n_clients, before_kill, after_kill = 8, 1.5, 1.5
    killed = threading.Event()
    stop_at = [float("inf")]
    outcomes: dict[str, list] = {}  # key -> [(process name, status or error, booking id)]
    lock = threading.Lock()

    def client(i: int, barrier: threading.Barrier):
        seen = []
        with httpx.Client(timeout=15) as c:
            barrier.wait()
            k = 0
            while time.monotonic() < stop_at[0]:
                key = f"kill-{run_id}-{i}-{k}"
                body = guest_body(event.id, start, f"{run_id}-{i}-{k}")
                k += 1
                target = (victim, survivor)[i % 2] if not killed.is_set() else survivor
                log = []
                for _try in range(20):  # a client retries until it has a definite answer
                    try:
                        r = c.post(f"{target.base}/api/bookings", json=body, headers={"Idempotency-Key": key})
                    except httpx.TransportError as exc:
                        log.append((target.name, type(exc).__name__, None))
                        target = survivor  # the other process; same key, same body
                        time.sleep(0.05)
                        continue
                    log.append((target.name, r.status_code, r.json().get("id") if r.status_code == 201 else None))
                    if r.status_code == 503:
                        time.sleep(float(r.headers.get("retry-after", "1")) / 10)
                        continue
                    break
                with lock:
                    outcomes[key] = log
                seen.append(key)
        return seen

    killed_at = [0.0]

    def killer():
        time.sleep(before_kill)
        killed_at[0] = time.time()
        victim.signal(signal.SIGKILL)
        killed.set()
        stop_at[0] = time.monotonic() + after_kill

    threading.Thread(target=killer, daemon=True).start()
    run_together(n_clients, client)
    victim.proc.wait(timeout=10)
    assert victim.proc.returncode == -signal.SIGKILL

    acked = {}  # key -> booking id of its 201
    interrupted, in_flight = 0, []
    for key, log in outcomes.items():
        final = log[-1]
        assert final[1] in (201, 409), (key, log)  # a definite answer in the end, never a 500
        ids = {bid for _, status, bid in log if status == 201}
        assert len(ids) <= 1, (key, log)  # every answer for one key names the same booking
        if final[1] == 201:
            acked[key] = final[2]
        if any(isinstance(status, str) for _, status, _ in log):
            interrupted += 1
        if any(status in ("ReadError", "RemoteProtocolError") for _, status, _ in log):
            in_flight.append(key)  # sent to the victim, no answer: committed or not, the retry tells
    db_rows = sql(pg_url, "SELECT b.id, r.key, b.guest_email FROM bookings b LEFT JOIN idempotency_records r "
                          "ON r.resource_id = b.id AND r.scope LIKE 'booking:%' WHERE b.bookable_id = :b", b=event.id)
    # no duplicates: one booking per key, and per client request (each has its own guest email)
    for column in (1, 2):
        counts = collections.Counter(row[column] for row in db_rows)
        assert all(c == 1 for c in counts.values()), [k for k, c in counts.items() if c > 1]
    # every acknowledged booking is in the database, exactly once, under its key …
    db_ids = {k: bid for bid, k, _ in db_rows}
    assert {k: db_ids.get(k) for k in acked} == acked
    # … and nothing is there that no client was told about
    assert set(db_ids) == set(acked), set(db_ids) ^ set(acked)

    # the survivor replays acknowledged requests instead of booking again
    sample = list(acked.items())[:: max(1, len(acked) // 10)]
    with httpx.Client(base_url=survivor.base, timeout=15) as c:
        for key, booking_id in sample:
            i, k = key.rsplit("-", 2)[-2:]
            r = c.post("/api/bookings", json=guest_body(event.id, start, f"{run_id}-{i}-{k}"),
                       headers={"Idempotency-Key": key})
            assert r.status_code == 201 and r.json()["id"] == booking_id, r.text
    assert sql(pg_url, "SELECT count(*) FROM bookings WHERE bookable_id = :b", b=event.id)[0][0] == len(acked)
    assert interrupted >= 1, "the kill interrupted no request: the test proved nothing"
    # of the requests in flight at the kill, those the victim had committed were replayed
    created = dict(sql(pg_url, "SELECT id, extract(epoch FROM created_at) FROM bookings WHERE bookable_id = :b",
                       b=event.id))
    replayed = sum(1 for key in in_flight if key in acked and float(created[acked[key]]) < killed_at[0])
    with capsys.disabled():
        print(f"[scale-out kill] {len(outcomes)} booking requests, {len(acked)} acknowledged, all in the "
              f"database once; {interrupted} interrupted by SIGKILL ({len(in_flight)} in flight, of which "
              f"{replayed} had committed on the victim and were replayed) and retried on the survivor "
              f"(sample of {len(sample)} replayed)")
