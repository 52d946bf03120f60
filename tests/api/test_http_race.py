"""The booking race through real HTTP: uvicorn with 2 worker processes on PostgreSQL.

50 clients POST the same capacity-1 slot at the same moment → exactly one 201, the rest
409 (taken) or 503 (busy, nothing changed). The same server then gives the figures for the
closing note: login latency (argon2id m=19 MiB, t=2, p=1) and booking POST throughput
with 16 concurrent clients (each on its own room, so they don't conflict).
"""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlmodel import func, select

from tests.api.conftest import PASSWORD, make_account
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(pg_database, tmp_path_factory):
    """`uvicorn booking_app.api:api --workers 2` on a free port against the session's PostgreSQL
    database (default pool settings), shared by the tests of this module. Its output goes to a
    file: a pipe nobody reads fills up with the access log and stalls the server."""
    port = free_port()
    log = (tmp_path_factory.mktemp("http-race") / "uvicorn.log").open("wb")
    env = {**os.environ, "DATABASE_URL": pg_database, "RATE_LIMITS_ENABLED": "false", "JOBS_ENABLED": "false",
           "ENVIRONMENT": "test", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "booking_app.api:api", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2", "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                out = pathlib.Path(log.name).read_text(errors="replace")
                pytest.fail(f"uvicorn exited early: {out[-2000:]}")
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    # both workers answer: a few more probes
                    for _ in range(4):
                        httpx.get(f"{base}/api/health", timeout=5)
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("uvicorn did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


def _room(provider, *, name: str, duration: int = 60) -> int:
    from booking_app.services import catalog
    from booking_app.services.actors import Actor

    prov = Actor(id=provider.id, role="provider")
    room = catalog.create_bookable(actor=prov, name=name, kind="room", duration_minutes=duration, capacity=1,
                                   price_cents=0, currency="EUR", timezone="UTC")
    catalog.set_availability(actor=prov, bookable_id=room.id,
                             weekly=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
    return room.id


def _run_together(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        results[i] = work(i, barrier)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_http_race_one_seat_fifty_clients(server, pg_db, fast_hash, capsys):
    from booking_app import db
    from booking_app.models import ACTIVE_STATUSES, Booking

    provider = make_account("provider")
    room = _room(provider, name="Contested room")
    customers = [make_account("customer") for _ in range(50)]
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=3), dt.time(10), tzinfo=dt.timezone.utc)
    body = {"service_id": room, "start": start.isoformat().replace("+00:00", "Z")}

    def attempt(i: int, barrier: threading.Barrier):
        with httpx.Client(base_url=server, timeout=60, headers=customers[i].headers) as c:
            c.get("/api/health")  # connect before the start line
            barrier.wait()
            r = c.post("/api/bookings", json=body, headers={"Idempotency-Key": f"race-{i}"})
            return r.status_code, r.headers.get("content-type", ""), r.headers.get("retry-after")

    results = _run_together(50, attempt)
    statuses = [r[0] for r in results]
    assert statuses.count(201) == 1, statuses
    assert all(s in (201, 409, 503) for s in statuses), statuses
    assert all(ct.startswith("application/problem+json") for s, ct, _ in results if s != 201)
    assert all(ra for s, _, ra in results if s == 503)
    with db.read_session() as s:
        active = s.exec(select(func.count()).select_from(Booking).where(
            Booking.bookable_id == room, Booking.status.in_(ACTIVE_STATUSES))).one()
    assert active == 1
    with capsys.disabled():
        print(f"\n[http race] 50 clients, 1 seat, uvicorn 2 workers, PostgreSQL: "
              f"201×{statuses.count(201)}, 409×{statuses.count(409)}, 503×{statuses.count(503)}")


def test_http_figures_login_latency_and_booking_throughput(server, pg_db, fast_hash, capsys):
    # --- login latency (argon2id verify + token insert), one client, sequential
    user = make_account("customer")
    lat = []
    with httpx.Client(base_url=server, timeout=30) as c:
        c.get("/api/health")
        for _ in range(12):
            t0 = time.perf_counter()
            r = c.post("/api/users/login", json={"username": user.username, "password": PASSWORD})
            lat.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
    lat.sort()

    # --- booking throughput: 16 clients, each booking consecutive slots of its own room
    n_clients, seconds = 16, 4.0
    provider = make_account("provider")
    rooms = [_room(provider, name=f"Bench room {i}", duration=15) for i in range(n_clients)]
    customers = [make_account("customer") for _ in range(n_clients)]
    first = dt.datetime.combine(dt.date.today() + dt.timedelta(days=2), dt.time(0), tzinfo=dt.timezone.utc)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(i: int, barrier: threading.Barrier):
        created = other = 0
        mine: list[float] = []
        with httpx.Client(base_url=server, timeout=60, headers=customers[i].headers) as c:
            c.get("/api/health")
            barrier.wait()
            end = time.perf_counter() + seconds
            k = 0
            while time.perf_counter() < end:
                start = first + dt.timedelta(minutes=15 * k)
                k += 1
                t0 = time.perf_counter()
                r = c.post("/api/bookings", json={"service_id": rooms[i],
                                                  "start": start.isoformat().replace("+00:00", "Z")})
                mine.append((time.perf_counter() - t0) * 1000)
                if r.status_code == 201:
                    created += 1
                else:
                    other += 1
        with lock:
            latencies.extend(mine)
        return created, other

    t0 = time.perf_counter()
    results = _run_together(n_clients, worker)
    elapsed = time.perf_counter() - t0
    created = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    assert created > 0 and failed == 0, results
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    with capsys.disabled():
        print(f"[http figures] login latency (argon2id m=19456 KiB, t=2, p=1; HTTP, 1 client): "
              f"median {statistics.median(lat):.0f} ms, max {lat[-1]:.0f} ms")
        print(f"[http figures] POST /api/bookings, 16 clients, uvicorn 2 workers, PostgreSQL: "
              f"{created / elapsed:.0f} bookings/s ({created} in {elapsed:.1f} s), "
              f"latency median {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms "
              f"(load generator on the same 2 cores)")
