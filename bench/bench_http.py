"""Booking throughput through HTTP on PostgreSQL, against the database's own limit.

Scenarios (each at 8 / 64 / 256 concurrent clients, fixed duration):
  hot     everyone books one event session with a large capacity
  spread  bookings spread over 1,000 capacity-1 rooms (no two clients want the same slot)
Measured beside them, in the same run:
  ceiling the same booking transaction (insert, advisory lock, re-count, commit) in plain
          SQL from a tight loop of 8 threads — what PostgreSQL itself allows here
  floor   a minimal FastAPI endpoint doing one INSERT, served the same way — the framework floor
Our throughput is reported as a ratio of both. Ends with the oversell check.

Usage: .venv/bin/python bench/bench_http.py [--seconds 8] [--clients 8,64,256] [--workers 2]
Needs a PostgreSQL server (TEST_DATABASE_URL, else 127.0.0.1:5432 as postgres).
The load generator shares the machine's cores with the server: compare ratios, not absolutes.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

import httpx
import psycopg

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_database() -> tuple[str, str]:
    name = f"booking_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server_url().rsplit("/", 1)[0]
    return name, f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://")


def drop_database(name: str) -> None:
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server(module: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"{module} did not start")


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------- load generator

async def _load(base: str, path: str, clients: int, seconds: float, make_body, headers: dict) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                body = make_body()
                if body is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    code = r.status_code
                except httpx.HTTPError:
                    code = 0
                latencies.append(time.perf_counter() - t0)
                statuses[code] = statuses.get(code, 0) + 1

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t_start
    latencies.sort()
    ok = statuses.get(201, 0)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "rps": ok / elapsed, "p50": pct(0.50), "p99": pct(0.99),
        "errors": sum(n for c, n in statuses.items() if c not in (201, 409)), "statuses": statuses,
    }


def load(base, path, clients, seconds, make_body, headers=None) -> dict:
    return asyncio.run(_load(base, path, clients, seconds, make_body, headers or {}))


# --------------------------------------------------------------------------- setup through the API

def api_setup(base: str, n_rooms: int) -> dict:
    from booking_app.services import accounts

    accounts.create_user(username="benchprov", email="prov@bench.test", password="bench-provider-pw", role="provider")
    accounts.create_user(username="benchcust", email="cust@bench.test", password="bench-customer-pw", role="customer")
    c = httpx.Client(base_url=base, timeout=30)

    def token(u, p):
        r = c.post("/api/users/login", json={"username": u, "password": p})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    prov, cust = token("benchprov", "bench-provider-pw"), token("benchcust", "bench-customer-pw")
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)

    def create(body):
        r = c.post("/api/services", json=body, headers=prov)
        r.raise_for_status()
        return r.json()["id"]

    event = create({"name": "Bench event", "kind": "event", "duration_minutes": 60, "capacity": 100_000,
                    "price_cents": 0, "currency": "EUR", "timezone": "UTC"})
    r = c.post(f"/api/services/{event}/sessions", json={"start": day.isoformat()}, headers=prov)
    r.raise_for_status()
    weekly = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(7)]
    rooms = []
    for i in range(n_rooms):
        rid = create({"name": f"Room {i}", "kind": "room", "duration_minutes": 30, "capacity": 1,
                      "price_cents": 0, "currency": "EUR", "timezone": "UTC"})
        c.put(f"/api/services/{rid}/availability", json={"weekly": weekly, "exceptions": []}, headers=prov).raise_for_status()
        rooms.append(rid)
    return {"cust": cust, "event": event, "event_start": day.isoformat(), "rooms": rooms, "day": day}


def spread_bodies(rooms: list[int], day: dt.datetime):
    """Unique (room, slot) pairs: room-major so concurrent clients hit different rooms."""
    lock = threading.Lock()
    midnight = day.replace(hour=0, minute=0)
    gen = ((r, midnight + dt.timedelta(days=d, minutes=30 * k)) for d in range(5) for k in range(47) for r in rooms)

    def nxt():
        with lock:
            try:
                room, start = next(gen)
            except StopIteration:
                return None
        return {"service_id": room, "start": start.isoformat()}

    return nxt


# --------------------------------------------------------------------------- the plain-SQL ceiling

def sql_ceiling(url: str, seconds: float, threads: int, bookable_id: int, provider_id: int) -> float:
    """The booking transaction of services/bookings.py in plain SQL: insert, lock, re-count, commit."""
    url = url.replace("postgresql+psycopg://", "postgresql://")
    start = dt.datetime(2031, 1, 1, 10, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(hours=1)
    counter = itertools.count()
    done = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def work():
        with psycopg.connect(url) as conn:
            while time.perf_counter() < stop:
                n = next(counter)
                with conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '3000ms'")
                    conn.execute(
                        "INSERT INTO bookings (reference, bookable_id, provider_id, locale, start_at, end_at,"
                        " block_start_at, block_end_at, exclusive, quantity, status, price_cents, currency, notes,"
                        " refund_due_cents, created_at, updated_at, version, sequence)"
                        " VALUES (%s, %s, %s, 'en', %s, %s, %s, %s, false, 1, 'confirmed', 0, 'EUR', '', 0, now(), now(), 1, 0)",
                        (f"C{n:015d}"[:16], bookable_id, provider_id, start, end, start, end))
                    conn.execute("SELECT pg_advisory_xact_lock(1, %s)", (bookable_id,))
                    conn.execute("SELECT coalesce(sum(quantity), 0) FROM bookings WHERE bookable_id = %s"
                                 " AND status IN ('pending','confirmed') AND block_start_at < %s AND block_end_at > %s",
                                 (bookable_id, end, start)).fetchone()
                with lock:
                    done[0] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0] / (time.perf_counter() - t0)


def oversold(url: str) -> int:
    """Bookables/sessions whose active bookings exceed capacity, or overlapping capacity-1 bookings."""
    url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        over_sessions = conn.execute(
            "SELECT count(*) FROM (SELECT s.id FROM event_sessions s JOIN bookings b ON b.session_id = s.id"
            " WHERE b.status IN ('pending','confirmed') GROUP BY s.id, s.capacity HAVING sum(b.quantity) > s.capacity) x").fetchone()[0]
        overlaps = conn.execute(
            "SELECT count(*) FROM bookings a JOIN bookings b ON a.bookable_id = b.bookable_id AND a.id < b.id"
            " JOIN bookables k ON k.id = a.bookable_id AND k.capacity = 1"
            " WHERE a.status IN ('pending','confirmed') AND b.status IN ('pending','confirmed')"
            " AND a.block_start_at < b.block_end_at AND b.block_start_at < a.block_end_at").fetchone()[0]
    return over_sessions + overlaps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--clients", default="8,64,256")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rooms", type=int, default=1000)
    args = ap.parse_args()
    levels = [int(x) for x in args.clients.split(",")]

    name, url = create_database()
    env = {"DATABASE_URL": url, "RATE_LIMITS_ENABLED": "false", "JOBS_ENABLED": "false",
           "ENVIRONMENT": "development", "DB_POOL_SIZE": "20", "DB_MAX_OVERFLOW": "10", "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    from booking_app import cli, db
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    db.dispose_engines()
    cli.migrate()
    port = free_port()
    server = start_server("booking_app.api:api", port, args.workers, env)
    rows = []
    try:
        base = f"http://127.0.0.1:{port}"
        setup = api_setup(base, args.rooms)
        for clients in levels:
            hot = load(base, "/api/bookings", clients, args.seconds,
                       lambda: {"service_id": setup["event"], "start": setup["event_start"]}, setup["cust"])
            rows.append(("hot", clients, hot))
        for clients in levels:
            spread = load(base, "/api/bookings", clients, args.seconds, spread_bodies(setup["rooms"], setup["day"] + dt.timedelta(days=1 + 5 * levels.index(clients))), setup["cust"])
            rows.append(("spread", clients, spread))
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            provider_id = conn.execute("SELECT provider_id FROM bookables WHERE id = %s", (setup["event"],)).fetchone()[0]
        over = oversold(url)
    finally:
        stop_server(server)
    ceiling = sql_ceiling(url, args.seconds, 8, setup["rooms"][0], provider_id)

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, payload text)")
    fport = free_port()
    floor_srv = start_server("bench._floor_app:app", fport, args.workers, {"FLOOR_DATABASE_URL": url, "DB_POOL_SIZE": "20"})
    try:
        floor = load(f"http://127.0.0.1:{fport}", "/insert", 64, args.seconds, lambda: {"x": 1})
    finally:
        stop_server(floor_srv)
    drop_database(name)

    print(f"\nBooking POST through HTTP on PostgreSQL — uvicorn {args.workers} workers, {os.cpu_count()} cores, {args.seconds:.0f} s per row")
    print(f"{'scenario':<8} {'clients':>7} {'bookings/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs SQL':>7} {'vs floor':>8}  statuses")
    for scen, clients, r in rows:
        print(f"{scen:<8} {clients:>7} {r['rps']:>11.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7} "
              f"{r['rps'] / ceiling:>7.0%} {r['rps'] / floor['rps']:>8.0%}  {r['statuses']}")
    print(f"{'ceiling':<8} {'8 thr':>7} {ceiling:>11.0f}   plain-SQL booking transaction, tight loop")
    print(f"{'floor':<8} {64:>7} {floor['rps']:>11.0f} {floor['p50']:>8.1f} {floor['p99']:>8.1f} {floor['errors']:>7}   minimal FastAPI + one INSERT")
    print(f"oversell check: {'OK, nothing oversold' if over == 0 else f'{over} OVERSOLD'}")
    if over:
        sys.exit(1)


if __name__ == "__main__":
    main()
