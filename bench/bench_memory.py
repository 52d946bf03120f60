"""Memory per worker after sustained load.

Starts the API the way production runs it (Granian, several worker processes; `--server
uvicorn` for uvicorn workers) on a fresh PostgreSQL database with the job sweeps on, then
drives a steady mix for `--minutes` (default 0.5; the issue's figure is `--minutes 10`):
  40%  POST /api/bookings   (guests, spread over 50 rooms and ever later 15-minute slots)
  30%  GET  /api/services   (the catalogue search)
  30%  GET  /api/services/{id}/slots (one week of slots)
Every `--sample` seconds it reads each worker's memory from /proc: RSS, and PSS/USS from
smaps_rollup (USS = private pages: what the worker costs on its own; RSS also counts the
pages it shares with its siblings). Prints the samples and a summary table per worker:
after warm-up, peak, at the end, growth over the run, against the target of 150 MiB.

Usage: .venv/bin/python bench/bench_memory.py [--minutes 10] [--workers 2] [--clients 32]
                                               [--server granian|uvicorn] [--sample 5]
Needs a PostgreSQL server (TEST_DATABASE_URL, else 127.0.0.1:5432 as postgres). Linux only.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import pathlib
import random
import subprocess
import sys
import time
import uuid


ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import RawHttp, drop_database, free_port, start_api_server, stop_process_group  # noqa: E402
from bench._common import create_database as _create_database  # noqa: E402

TARGET_MIB = 150
N_ROOMS = 50
MIB = 1024 * 1024










def create_database() -> tuple[str, str]:
    return _create_database("booking_benchmem")


def prepare(url: str) -> list[int]:
    """Migrate and create the rooms (through the real services)."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("ENVIRONMENT", "test")
    from booking_app import cli, db
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    db.dispose_engines()
    cfg = cli.alembic_config()
    cfg.attributes["configure_logger"] = False
    from alembic import command

    command.upgrade(cfg, "head")
    from booking_app.models import User
    from booking_app.services import catalog
    from booking_app.services.actors import Actor

    with db.unit_of_work() as s:
        provider = User(username="bench-provider", email="bench-provider@example.com", password_hash="!",
                        role="provider", full_name="Bench provider")
        s.add(provider)
        s.flush()
        provider_id = provider.id
    actor = Actor(id=provider_id, role="provider")
    rooms = []
    for i in range(N_ROOMS):
        room = catalog.create_bookable(actor=actor, name=f"Memory room {i}", kind="room", duration_minutes=15,
                                       capacity=1, price_cents=0, currency="EUR", timezone="UTC",
                                       max_advance_days=3 * 365, location=f"Floor {i % 5}")
        catalog.set_availability(actor=actor, bookable_id=room.id,
                                 weekly=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
        rooms.append(room.id)
    db.dispose_engines()
    return rooms


# --------------------------------------------------------------------------- server and /proc

def start_server(kind: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    """The API with all its worker processes up (their memory is what this measures)."""
    return start_api_server(kind, "booking_app.api:api", port, workers, env,
                            ready=lambda proc: len(workers_of(proc.pid)) >= workers)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def workers_of(pid: int) -> list[int]:
    """The serving worker processes below the server's main process (not helpers such as
    multiprocessing's resource tracker)."""
    found, pending = [], _children(pid)
    while pending:
        child = pending.pop()
        pending += _children(child)
        cmd = _cmdline(child)
        if "resource_tracker" in cmd or "semaphore_tracker" in cmd:
            continue
        found.append(child)
    return sorted(found)


def memory_of(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of one process in MiB (from /proc)."""
    values = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    try:
        for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if not parts or not parts[0].isdigit():
                continue
            kib = int(parts[0]) * 1024 / MIB
            if key == "Rss":
                values["rss"] = kib
            elif key == "Pss":
                values["pss"] = kib
            elif key in ("Private_Clean", "Private_Dirty"):
                values["uss"] += kib
    except OSError:
        pass
    return values


# --------------------------------------------------------------------------- load generator

def iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


async def drive(port: int, rooms: list[int], clients: int, seconds: float, server_pid: int, sample_every: float,
                samples: list, counters: dict) -> None:
    first = dt.datetime.combine(dt.date.today() + dt.timedelta(days=2), dt.time(0), tzinfo=dt.timezone.utc)
    slot_counter = iter(range(10**9))
    week_from = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    week_to = (dt.date.today() + dt.timedelta(days=8)).isoformat()
    stop_at = time.monotonic() + seconds
    run = uuid.uuid4().hex[:6]
    rng = random.Random(7)

    async def client(i: int) -> None:
        conn = RawHttp("127.0.0.1", port)
        while time.monotonic() < stop_at:
            pick = rng.random()
            try:
                if pick < 0.4:
                    k = next(slot_counter)
                    start = first + dt.timedelta(minutes=15 * (k // len(rooms)))
                    status, _, _ = await conn.request("POST", "/api/bookings", {
                        "service_id": rooms[k % len(rooms)], "start": iso(start),
                        "guest": {"name": f"Guest {k}", "email": f"mem-{run}-{k}@example.com"}})
                elif pick < 0.7:
                    status, _, _ = await conn.request("GET", f"/api/services?q=room&location=Floor%20{i % 5}&limit=20")
                else:
                    status, _, _ = await conn.request(
                        "GET", f"/api/services/{rooms[i % len(rooms)]}/slots?from={week_from}&to={week_to}")
            except (OSError, asyncio.IncompleteReadError):
                counters["errors"] += 1
                await asyncio.sleep(0.1)
                continue
            counters["requests"] += 1
            if status >= 500 and status != 503:
                counters["errors"] += 1
            elif status == 503:
                counters["shed"] += 1
        await conn.close()

    async def sampler() -> None:
        t0 = time.monotonic()
        while time.monotonic() < stop_at:
            samples.append((time.monotonic() - t0, counters["requests"],
                            {pid: memory_of(pid) for pid in workers_of(server_pid)}))
            await asyncio.sleep(sample_every)

    await asyncio.gather(sampler(), *(client(i) for i in range(clients)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--server", choices=("granian", "uvicorn"), default="granian")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples")
    args = parser.parse_args()

    name, url = create_database()
    proc = None
    try:
        rooms = prepare(url)
        port = free_port()
        env = {"DATABASE_URL": url, "ENVIRONMENT": "test", "RATE_LIMITS_ENABLED": "false", "JOBS_ENABLED": "true",
               "PYTHONPATH": str(ROOT)}
        proc = start_server(args.server, port, args.workers, env)
        workers = workers_of(proc.pid)
        at_start = {pid: memory_of(pid) for pid in workers}
        samples: list = []
        counters = {"requests": 0, "errors": 0, "shed": 0}
        seconds = args.minutes * 60
        t0 = time.monotonic()
        asyncio.run(drive(port, rooms, args.clients, seconds, proc.pid, args.sample, samples, counters))
        elapsed = time.monotonic() - t0
        at_end = {pid: memory_of(pid) for pid in workers_of(proc.pid)}
    finally:
        if proc is not None:
            stop_process_group(proc)
        drop_database(name)

    print(f"\nMemory per worker: {args.server}, {args.workers} workers, {args.clients} clients, "
          f"{elapsed / 60:.1f} min, {counters['requests']} requests ({counters['requests'] / elapsed:.0f}/s), "
          f"{counters['shed']} shed (503), {counters['errors']} errors")
    print("\n  t (s)  requests  " + "  ".join(f"RSS {pid:>7}" for pid in workers))
    for t, done, mem in samples:
        print(f"  {t:5.0f}  {done:8d}  " + "  ".join(f"{mem.get(pid, {}).get('rss', 0):7.1f} MiB" for pid in workers))
    print("\n  worker   RSS start  RSS peak  RSS end   PSS end   USS end   growth   target")
    worst = 0.0
    for pid in workers:
        start_rss = at_start.get(pid, {}).get("rss", 0.0)
        peak = max([m.get(pid, {}).get("rss", 0.0) for _, _, m in samples] + [at_end.get(pid, {}).get("rss", 0.0)])
        end = at_end.get(pid, {"rss": 0.0, "pss": 0.0, "uss": 0.0})
        worst = max(worst, end["rss"])
        verdict = "ok" if end["rss"] <= TARGET_MIB else "OVER"
        print(f"  {pid:>6}  {start_rss:8.1f}  {peak:8.1f}  {end['rss']:8.1f}  {end['pss']:8.1f}  {end['uss']:8.1f}  "
              f"{end['rss'] - start_rss:+7.1f}   {verdict} (<= {TARGET_MIB} MiB RSS)")
    print("\n  (MiB; RSS counts pages shared with the sibling workers, USS only the worker's own)")
    if counters["errors"]:
        print(f"  {counters['errors']} errors (5xx other than 503, or broken connections)")
    return 0 if worst and worst <= TARGET_MIB and not counters["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())

