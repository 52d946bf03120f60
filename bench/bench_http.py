"""Booking throughput through HTTP on PostgreSQL, against the database's own limit.

Scenarios (each at 8 / 64 / 256 concurrent clients, fixed duration):
  hot     everyone books one event session with a large capacity
  spread  bookings spread over many capacity-1 rooms (no two clients want the same slot)
Measured beside them, in the same run:
  ceiling each scenario's booking transaction in plain SQL from a tight loop of 8 threads —
          what PostgreSQL itself allows here: read what the booking reads (the bookable,
          provider and customer; hot: the session; spread: the day's hours and the room's
          usage), insert, then hot: the session counter's check; spread: advisory lock,
          re-count; commit. Printed beside it for reference: the same without its read.
  floor   a minimal FastAPI endpoint doing one INSERT, served the same way — the framework floor
  bound   1 / (1/floor + 1/ceiling), an estimate: where the ceiling is bound by CPU (spread),
          a booking through HTTP on the same cores costs about a floor request plus a
          ceiling transaction — what an app with no code of its own between the two would
          reach (hot's ceiling waits on the session's counter row instead: there it understates)
Our throughput is reported as a ratio of the ceiling, the floor and the bound. Per row also the CPU time per successful
request of the app workers, the PostgreSQL backends and the load generator (read from
/proc: unlike requests/s it stays comparable when other work shares the machine), the RSS
of each app worker after the load, and at the end the oversell check.

The load generator is a lean keep-alive HTTP/1.1 client on asyncio streams: httpx spent
more CPU per request than the framework floor itself, taken from the server it measured.

Usage: .venv/bin/python bench/bench_http.py [--seconds 8] [--clients 8,64,256] [--workers 2]
       [--rooms 1000] [--pool 6 --overflow 2] [--scenarios hot,spread] [--repeat 3]
Needs a PostgreSQL server (TEST_DATABASE_URL, else 127.0.0.1:5432 as postgres).
The load generator shares the machine's cores with the server: compare ratios, not absolutes.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time

import httpx
import psycopg

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import (RawHttp, create_database, drop_database, free_port, server_url,  # noqa: E402
                           start_api_server, stop_process_group)

SERVER = "uvicorn"  # --server


def start_server(module: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    return start_api_server(SERVER, module, port, workers, env, timeout=60)


# --------------------------------------------------------------------------- load generator

async def _load(base: str, path: str, clients: int, seconds: float, make_body, headers: dict) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    host, port = base.split("://", 1)[1].split(":")

    async def worker() -> None:
        conn = RawHttp(host, int(port), headers)
        try:
            while time.perf_counter() < deadline:
                body = make_body()
                if body is None:
                    return
                payload = json.dumps(body).encode()
                t0 = time.perf_counter()
                try:
                    code = (await asyncio.wait_for(conn.request("POST", path, payload), timeout=30))[0]
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                        ValueError, IndexError):
                    code = 0
                    await conn.close()
                latencies.append(time.perf_counter() - t0)
                statuses[code] = statuses.get(code, 0) + 1
        finally:
            await conn.close()

    t_start = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - t_start
    latencies.sort()
    ok = statuses.get(201, 0)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "ok": ok, "rps": ok / elapsed, "p50": pct(0.50), "p99": pct(0.99), "elapsed": elapsed,
        "client_cpu": time.process_time() - cpu0,
        "errors": sum(n for c, n in statuses.items() if c not in (201, 409)), "statuses": statuses,
    }


def load(base, path, clients, seconds, make_body, headers=None, server=None, db_name=None) -> dict:
    """Run the load; with `server` (the uvicorn master) and `db_name`, also the CPU seconds its
    workers and the database's backends spent, per successful request (in ms): a figure that
    stays comparable when other work shares the machine, unlike requests/s."""
    app0 = _cpu_seconds(_worker_pids(server)) if server else 0.0
    db0 = _db_cpu(db_name) if db_name else {}
    result = asyncio.run(_load(base, path, clients, seconds, make_body, headers or {}))
    per = 1000 / max(result["ok"], 1)
    result["app_ms"] = (_cpu_seconds(_worker_pids(server)) - app0) * per if server else float("nan")
    if db_name:
        db1 = _db_cpu(db_name)
        # (an exited backend's whole life is in "exited": what it had spent before the load is not the load's)
        gone = sum(v for pid, v in db0.items() if pid != "exited" and pid not in db1)
        result["db_ms"] = (sum(v - db0.get(pid, 0.0) for pid, v in db1.items()) - gone) * per
    else:
        result["db_ms"] = float("nan")
    result["client_ms"] = result["client_cpu"] * per
    return result


# --------------------------------------------------------------------------- process figures (/proc)

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        raw = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def _worker_pids(server: subprocess.Popen) -> list[int]:
    """The uvicorn worker processes (children of the master; the master itself when --workers 1)."""
    out = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and int(st[1]) == server.pid:
                try:
                    if b"resource_tracker" in (entry / "cmdline").read_bytes():
                        continue  # multiprocessing's helper, not a worker
                except OSError:
                    continue
                out.append(int(entry.name))
    return out or [server.pid]


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            total += (int(st[11]) + int(st[12])) / _TICK  # utime + stime
    return total


def _rss_mib(pid: int) -> float:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _db_cpu(db_name: str) -> dict[int | str, float]:
    """CPU seconds of the PostgreSQL backends connected to `db_name` (same machine), and under
    "exited" those of the server's processes that have exited (the postmaster's reaped
    children): a pool's overflow connection, opened and closed during the load, takes its
    backend's CPU with it — without this, up to half of the database's work went uncounted."""
    with psycopg.connect(server_url(), autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db_name,))]
        own = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    out: dict[int | str, float] = {pid: _cpu_seconds([pid]) for pid in pids}
    st = _stat(own)
    parent = _stat(int(st[1])) if st is not None else None
    if parent is not None:
        out["exited"] = (int(parent[13]) + int(parent[14])) / _TICK  # cutime + cstime
    return out


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

    def hot_session() -> tuple[int, str]:
        """A new event session with a large capacity: each hot row starts from an empty one
        (the re-count under the lock reads every booking of the session, so a session
        already filled by the previous row would make the rows incomparable)."""
        event = create({"name": "Bench event", "kind": "event", "duration_minutes": 60, "capacity": 100_000,
                        "price_cents": 0, "currency": "EUR", "timezone": "UTC"})
        c.post(f"/api/services/{event}/sessions", json={"start": day.isoformat()}, headers=prov).raise_for_status()
        return event, day.isoformat()

    weekly = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(7)]
    rooms = []
    for i in range(n_rooms):
        rid = create({"name": f"Room {i}", "kind": "room", "duration_minutes": 30, "capacity": 1,
                      "price_cents": 0, "currency": "EUR", "timezone": "UTC"})
        c.put(f"/api/services/{rid}/availability", json={"weekly": weekly, "exceptions": []}, headers=prov).raise_for_status()
        rooms.append(rid)
    return {"cust": cust, "hot_session": hot_session, "rooms": rooms, "day": day}


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

# The writes of a booking as the service makes them (bookings.py): the booking, its outbox
# rows (confirmation and two reminders by email, one SMS) and its audit event, in one
# statement of data-modifying CTEs.
_CEILING_WRITES = (
    "WITH b AS (INSERT INTO bookings (reference, bookable_id, provider_id, session_id, locale, start_at, end_at,"
    " block_start_at, block_end_at, exclusive, quantity, status, price_cents, currency, notes,"
    " refund_due_cents, created_at, updated_at, version, sequence)"
    " VALUES (%(ref)s, %(bid)s, %(pid)s, %(sid)s, 'en', %(start)s, %(end)s, %(start)s, %(end)s, %(excl)s, 1,"
    " 'confirmed', 0, 'EUR', '', 0, now(), now(), 1, 0) RETURNING id),"
    " n AS (INSERT INTO notifications (channel, \"to\", template, locale, context, dedupe_key, booking_id, status,"
    " attempts, next_attempt_at, created_at) SELECT CASE WHEN g = 4 THEN 'sms' ELSE 'email' END, 'c@example.com',"
    " 'booking_confirmed', 'en', '{}', %(ref)s || '-' || g, b.id, 'pending', 0, now(), now()"
    " FROM b, generate_series(1, 4) g),"
    " a AS (INSERT INTO audit_events (actor_id, action, entity, entity_id, data, at)"
    " SELECT NULL, 'booking.created', 'booking', b.id::text, '{}', now() FROM b)"
    " SELECT id FROM b")


# What a booking reads before it writes, as the service reads it (bookings.py's first
# statement): the bookable, its provider and the customer, and for a room the open hours of
# the slot's weekday and date and the seats its overlapping active bookings take; for an
# event, the session (its counter, and whether its day is closed).
_CEILING_READ_PEOPLE = (
    "SELECT b.id, b.kind, b.capacity, b.duration_minutes, b.buffer_before_minutes, b.buffer_after_minutes,"
    " b.timezone, b.price_cents, b.currency, b.is_active, p.email, p.phone, p.locale, c.email, c.phone, c.locale, {extra}"
    " FROM bookables b JOIN users p ON p.id = b.provider_id LEFT JOIN users c ON c.id = %(cid)s WHERE b.id = %(bid)s")
_CEILING_READ_ROOM = _CEILING_READ_PEOPLE.format(extra=(
    "(SELECT json_agg(json_build_array(h.start_time, h.end_time)) FROM ("
    "SELECT start_time, end_time FROM availability_rules WHERE bookable_id = %(bid)s AND weekday = %(wd)s UNION ALL"
    " SELECT start_time, end_time FROM availability_exceptions WHERE bookable_id = %(bid)s AND date = %(day)s) h),"
    " (SELECT coalesce(sum(quantity), 0) FROM bookings WHERE bookable_id = %(bid)s"
    " AND (bookable_id, start_at) >= (%(bid)s, %(lo)s)"
    " AND (bookable_id, start_at) < (%(bid)s, %(hi)s) AND status IN ('pending', 'confirmed')"
    " AND block_start_at < %(end)s AND block_end_at > %(start)s)"))
_CEILING_READ_EVENT = _CEILING_READ_PEOPLE.format(extra=(
    "s.capacity, s.seats_taken, EXISTS (SELECT 1 FROM availability_exceptions WHERE bookable_id = b.id"
    " AND date = %(day)s AND closed)")).replace(" WHERE b.id", " JOIN event_sessions s ON s.id = %(sid)s WHERE b.id")


def sql_ceiling(url: str, seconds: float, threads: int, scenario: str, target: dict, run: int = 0,
                reads: bool = True) -> float:
    """The booking transaction of services/bookings.py in plain SQL from a tight loop of
    `threads` threads, one per scenario:
      hot     a seat of one event session: read the bookable, people and session
              (_CEILING_READ_EVENT), the writes (the trigger adds the seat to the session's
              counter and locks the counter row), the counter against the capacity, commit
      spread  a slot of a room, each thread on rooms of its own: read the bookable, people,
              hours and usage (_CEILING_READ_ROOM), the writes, advisory lock on the room,
              re-count the room's overlapping bookings, commit
    The writes are the service's: booking, four outbox rows, audit event (_CEILING_WRITES).
    `reads=False`: without the first read — the writes and checks alone, a ceiling no real
    booking can reach (it must read the slot's hours and usage), printed beside for reference.
    `target`: {"session_id", "event_id", "provider_id", "customer_id", "start"} for hot,
    {"rooms", "provider_id", "customer_id", "day"} for spread. Each `run` on references (and,
    spread, days) of its own."""
    url = url.replace("postgresql+psycopg://", "postgresql://")
    counter = itertools.count()
    done = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    pid = target["provider_id"]

    def hot(conn, n: int) -> None:
        start = target["start"]
        if reads:
            conn.execute(_CEILING_READ_EVENT, {"bid": target["event_id"], "cid": target["customer_id"],
                                               "sid": target["session_id"], "day": start.date()}).fetchone()
        conn.execute(_CEILING_WRITES, {"ref": f"H{run:02d}{n:012d}", "bid": target["event_id"], "pid": pid,
                                       "sid": target["session_id"], "start": start,
                                       "end": start + dt.timedelta(hours=1), "excl": False}).fetchone()
        conn.execute("SELECT 1 / (CASE WHEN seats_taken > capacity THEN 0 ELSE 1 END) FROM event_sessions"
                     " WHERE id = %s", (target["session_id"],)).fetchone()

    def spread(conn, n: int, slots) -> None:
        room, start = next(slots)
        end = start + dt.timedelta(minutes=30)
        if reads:
            conn.execute(_CEILING_READ_ROOM, {"bid": room, "cid": target["customer_id"], "wd": start.weekday(),
                                              "day": start.date(), "lo": start - dt.timedelta(days=1),
                                              "hi": end + dt.timedelta(days=1), "start": start, "end": end}).fetchone()
        conn.execute(_CEILING_WRITES, {"ref": f"S{run:02d}{n:012d}", "bid": room, "pid": pid, "sid": None,
                                       "start": start, "end": end, "excl": True}).fetchone()
        conn.execute("SELECT pg_advisory_xact_lock(1, %s)", (room,))
        conn.execute("SELECT coalesce(sum(quantity), 0) FROM bookings WHERE bookable_id = %s"
                     " AND (bookable_id, start_at) >= (%s, %s) AND (bookable_id, start_at) < (%s, %s)"
                     " AND status IN ('pending','confirmed') AND block_start_at < %s AND block_end_at > %s",
                     (room, room, start - dt.timedelta(days=1), room, end + dt.timedelta(days=1), end, start)).fetchone()

    def work(i: int) -> None:
        slots = None
        if scenario == "spread":
            mine = target["rooms"][i::threads]
            day0 = target["day"] + dt.timedelta(days=5 * run)
            slots = ((r, day0 + dt.timedelta(days=d, minutes=30 * k)) for d in range(5) for k in range(47) for r in mine)
        with psycopg.connect(url) as conn:
            while time.perf_counter() < stop:
                n = next(counter)
                with conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '3000ms'")
                    if scenario == "hot":
                        hot(conn, n)
                    else:
                        spread(conn, n, slots)
                with lock:
                    done[0] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0] / (time.perf_counter() - t0)


def settle(url: str) -> None:
    """VACUUM ANALYZE the tables the setup filled: otherwise autovacuum, woken by the
    thousands of rows written, runs during the first rows measured and takes CPU from them.
    The still empty tables (bookings, the outbox) are left alone: analyzed while empty, the
    plans the pool's connections cache at the warm-up (foreign-key checks among them) stay
    sequential scans as the table grows, until autovacuum analyzes it again (measured: three
    scans of the whole bookings table per booking)."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT relname FROM pg_stat_user_tables WHERE n_live_tup > 0")]
        for table in tables:
            conn.execute(f'VACUUM ANALYZE "{table}"')


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


def _median(runs: list[dict]) -> dict:
    """The run with the median bookings/s (shared cores swing ±30 % between runs)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--clients", default="8,64,256")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rooms", type=int, default=1000)
    # few connections per worker: on 2 cores more concurrent transactions only queue on the
    # CPU, the GIL and (hot slot) the advisory lock; waiting for a pooled connection is cheaper
    ap.add_argument("--pool", type=int, default=8, help="DB_POOL_SIZE per worker (the app's default)")
    ap.add_argument("--overflow", type=int, default=0, help="DB_MAX_OVERFLOW per worker (the app's default)")
    ap.add_argument("--scenarios", default="hot,spread")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per row (and of the ceiling and floor); the run with the median bookings/s is shown")
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn",
                    help="HTTP server for the app and the floor (granian: what reflex run --env prod uses)")
    args = ap.parse_args()
    global SERVER
    SERVER = args.server
    levels = [int(x) for x in args.clients.split(",")]

    name, url = create_database()
    env = {"DATABASE_URL": url, "RATE_LIMITS_ENABLED": "false", "JOBS_ENABLED": "false",
           "ENVIRONMENT": "development", "DB_POOL_SIZE": str(args.pool), "DB_MAX_OVERFLOW": str(args.overflow),
           "LOG_LEVEL": "WARNING"}
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
        settle(url)
        for clients in (levels if "hot" in args.scenarios else []):
            runs = []
            for _ in range(args.repeat):
                event, event_start = setup["hot_session"]()
                runs.append(load(base, "/api/bookings", clients, args.seconds,
                                 lambda: {"service_id": event, "start": event_start}, setup["cust"],
                                 server=server, db_name=name))
            rows.append(("hot", clients, _median(runs)))
        for clients in (levels if "spread" in args.scenarios else []):
            runs = []
            for r in range(args.repeat):  # each run on days of its own: every slot is free
                day = setup["day"] + dt.timedelta(days=1 + 5 * (levels.index(clients) * args.repeat + r))
                runs.append(load(base, "/api/bookings", clients, args.seconds, spread_bodies(setup["rooms"], day),
                                 setup["cust"], server=server, db_name=name))
            rows.append(("spread", clients, _median(runs)))
        rss = [_rss_mib(pid) for pid in _worker_pids(server)]  # after all the load
        # each ceiling run on an empty session: with the reads, then without (reference)
        hot_targets = [setup["hot_session"]() for _ in range(2 * args.repeat)]
        over = oversold(url)
    finally:
        stop_process_group(server)
    raw_url = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw_url) as conn:
        provider_id = conn.execute("SELECT provider_id FROM bookables WHERE id = %s", (setup["rooms"][0],)).fetchone()[0]
        customer_id = conn.execute("SELECT id FROM users WHERE username = 'benchcust'").fetchone()[0]
        hot = [{"event_id": event, "provider_id": provider_id, "customer_id": customer_id,
                "start": dt.datetime.fromisoformat(start),
                "session_id": conn.execute("SELECT id FROM event_sessions WHERE bookable_id = %s", (event,)).fetchone()[0]}
               for event, start in hot_targets]
    # spread: on days after those of the HTTP runs (every slot free)
    free_day = setup["day"] + dt.timedelta(days=1 + 5 * len(levels) * args.repeat)
    spread_target = {"rooms": setup["rooms"], "provider_id": provider_id, "customer_id": customer_id, "day": free_day}
    ceilings, writes_only = {}, {}
    for scen, target in (("hot", lambda run: hot[run]), ("spread", lambda run: spread_target)):
        if scen not in args.scenarios:
            continue
        # (without the reads: runs numbered after those with them, on references, days and
        # sessions of their own)
        ceilings[scen] = statistics.median(sql_ceiling(url, args.seconds, 8, scen, target(run), run)
                                           for run in range(args.repeat))
        writes_only[scen] = statistics.median(sql_ceiling(url, args.seconds, 8, scen, target(args.repeat + run),
                                                          args.repeat + run, reads=False)
                                              for run in range(args.repeat))

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, payload text)")
    fport = free_port()
    floor_srv = start_server("bench._floor_app:app", fport, args.workers, {"FLOOR_DATABASE_URL": url, "DB_POOL_SIZE": str(args.pool + args.overflow)})
    try:
        floor = _median([load(f"http://127.0.0.1:{fport}", "/insert", 64, args.seconds, lambda: {"x": 1},
                              server=floor_srv, db_name=name) for _ in range(args.repeat)])
    finally:
        stop_process_group(floor_srv)
    drop_database(name)

    if SERVER == "granian":
        stack = "granian, ASGI"
    else:
        try:
            import httptools  # noqa: F401
            import uvloop  # noqa: F401
            stack = "uvicorn, uvloop + httptools"
        except ImportError:
            stack = "uvicorn, asyncio + h11 (install uvloop, httptools)"
    print(f"\nBooking POST through HTTP on PostgreSQL — {args.workers} workers ({stack}), "
          f"pool {args.pool}+{args.overflow} per worker, "
          f"{os.cpu_count()} cores, {args.seconds:.0f} s per row"
          f"{f' (median of {args.repeat} runs)' if args.repeat > 1 else ''}, load average {os.getloadavg()[0]:.1f}")
    print("CPU ms/req: CPU time per successful request of the app workers / the PostgreSQL backends / the load "
          "generator (comparable across runs when other work shares the machine)")
    print(f"{'scenario':<8} {'clients':>7} {'bookings/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs SQL':>7} "
          f"{'vs floor':>8} {'app ms':>7} {'db ms':>6} {'gen ms':>6}  statuses")
    for scen, clients, r in rows:
        print(f"{scen:<8} {clients:>7} {r['rps']:>11.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7} "
              f"{r['rps'] / ceilings[scen]:>7.0%} {r['rps'] / floor['rps']:>8.0%} {r['app_ms']:>7.2f} {r['db_ms']:>6.2f} "
              f"{r['client_ms']:>6.2f}  {r['statuses']}")
    for scen, value in ceilings.items():
        print(f"{'ceiling':<8} {'8 thr':>7} {value:>11.0f}   plain-SQL booking transaction ({scen}), tight loop: "
              f"read, write, check, commit")
    for scen, value in writes_only.items():
        ours = [r["rps"] for sc, c, r in rows if sc == scen]
        print(f"{'writes':<8} {'8 thr':>7} {value:>11.0f}   the same without its read ({scen}), for reference: "
              + ", ".join(f"{x / value:.0%}" for x in ours) + " of it")
    print(f"{'floor':<8} {64:>7} {floor['rps']:>11.0f} {floor['p50']:>8.1f} {floor['p99']:>8.1f} {floor['errors']:>7} "
          f"{'':>7} {'':>8} {floor['app_ms']:>7.2f} {floor['db_ms']:>6.2f} {floor['client_ms']:>6.2f}  minimal FastAPI + one INSERT")
    # where the ceiling is bound by CPU (spread) and both load the same cores, a booking
    # through HTTP costs about a floor request plus a ceiling transaction: an app with no code
    # of its own between the two reaches about 1 / (1/floor + 1/ceiling). (Hot's ceiling is
    # bound by the session's counter row, which the floor doesn't wait for: there the
    # estimate understates what an app can reach.)
    for scen, value in ceilings.items():
        bound = 1 / (1 / floor["rps"] + 1 / value)
        ours = [r["rps"] for sc, c, r in rows if sc == scen]
        print(f"{'bound':<8} {'est.':>7} {bound:>11.0f}   floor and ceiling ({scen}) on the same cores, no booking "
              f"code: {bound / value:.0%} of the ceiling; we reach " + ", ".join(f"{x / bound:.0%}" for x in ours))
    print("memory: RSS per app worker after the load: " + ", ".join(f"{m:.0f} MiB" for m in rss))
    print(f"oversell check: {'OK, nothing oversold' if over == 0 else f'{over} OVERSOLD'}")
    if over:
        sys.exit(1)

if __name__ == "__main__":
    main()
