"""CPU instructions per request through HTTP, counted by valgrind (callgrind): a cost figure
that stays the same however busy the machine is.

On shared cores requests/s and even CPU ms per request swing by ±30 % from run to run (other
work, caches, frequency), too much to tell a 5 % change from noise. Callgrind counts the
instructions the server process executes (user space: the kernel's share — sockets, thread
wake-ups — is not in it), the same ±0.5 % for the same code and inputs, so two versions of
the hot path can be compared in one run each.

Measured, each with one uvicorn process under callgrind (counting switched on only while the
measured requests run, after a warm-up), 8 keep-alive clients:
  booking   POST /api/bookings, spread over rooms (one seen before: the usual case)
  hot       POST /api/bookings, everyone on one event session (bench_http.py's hot slot)
  health    GET /api/health: middlewares, a worker thread, one SELECT 1 — the app's own floor
  floor     the framework floor of bench_http.py: a minimal FastAPI endpoint doing one INSERT
and the booking as a ratio of both.

Usage: .venv/bin/python bench/bench_instructions.py [--requests 200]
Needs valgrind and a PostgreSQL server (TEST_DATABASE_URL, else 127.0.0.1:5432 as postgres).
The server runs ~50× slower under callgrind: a run takes about a minute.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import create_database, drop_database, free_port, http_status  # noqa: E402


class _Counted:
    """`module` served by one uvicorn process under callgrind, counting switched off until `on()`."""

    def __init__(self, module: str, env: dict[str, str], out_dir: pathlib.Path) -> None:
        self.port = free_port()
        self.out = out_dir / f"callgrind.{module.replace(':', '_')}"
        self._counted = 0
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={self.out}",
             sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 300
        while not http_status(f"http://127.0.0.1:{self.port}/", timeout=5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{module} under callgrind did not start")
            time.sleep(1)

    def _control(self, state: str) -> None:
        subprocess.run(["callgrind_control", "-i", state, str(self.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def measure(self, requests: int, send) -> tuple[int, dict[int, int]]:
        """Instructions per request of `requests` calls of send(conn) → status, 8 clients."""
        self._control("on")
        statuses = _run(self.port, requests, send)
        self._control("off")
        return (self._total() - self._counted) // requests, statuses

    def mark(self) -> None:
        """Everything counted so far belongs to the previous measurement."""
        self._counted = self._total()

    def _total(self) -> int:
        """Instructions counted so far (a dump writes the counts since the last one to a new file)."""
        subprocess.run(["callgrind_control", "-d", str(self.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total = 0
        for f in self.out.parent.glob(self.out.name + "*"):
            for line in f.read_text(errors="replace").splitlines():
                if line.startswith("totals:"):
                    total += int(line.split()[1])
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _run(port: int, requests: int, send, clients: int = 8) -> dict[int, int]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for _ in range(n):
            status = send(conn)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def _sender(method: str, path: str, body=None, headers: dict | None = None):
    headers = {"Content-Type": "application/json", **(headers or {})}

    def send(conn: http.client.HTTPConnection) -> int:
        conn.request(method, path, None if body is None else json.dumps(body()), headers)
        response = conn.getresponse()
        response.read()
        return response.status
    return send


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--only", default="booking,hot,health,floor",
                    help="which rows to measure (comma-separated; booking alone for a quick A/B)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench_instructions.py: skipped, needs valgrind (Debian/Ubuntu: apt-get install valgrind)")
        return
    n = args.requests - args.requests % 8

    from bench import bench_http

    name, url = create_database()
    env = {"DATABASE_URL": url, "FLOOR_DATABASE_URL": url, "RATE_LIMITS_ENABLED": "false", "JOBS_ENABLED": "false",
           "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    from booking_app import cli, db
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    db.dispose_engines()
    cli.migrate()
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, payload text)")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = _Counted("booking_app.api:api", env, pathlib.Path(tmp))
        try:
            setup = bench_http.api_setup(f"http://127.0.0.1:{app.port}", 8)
            bodies = bench_http.spread_bodies(setup["rooms"], setup["day"])
            book = _sender("POST", "/api/bookings", bodies, setup["cust"])
            _run(app.port, 64, book)  # warm-up: every room seen, statements prepared
            app.mark()
            rows["booking"] = app.measure(n, book)
            if "hot" in only:
                event, start = setup["hot_session"]()
                hot = _sender("POST", "/api/bookings", lambda: {"service_id": event, "start": start}, setup["cust"])
                _run(app.port, 64, hot)
                app.mark()
                rows["hot"] = app.measure(n, hot)
            if "health" in only:
                app.mark()
                rows["health"] = app.measure(n, _sender("GET", "/api/health"))
        finally:
            app.stop()
        if "floor" in only:
            floor = _Counted("bench._floor_app:app", env, pathlib.Path(tmp))
            try:
                insert = _sender("POST", "/insert", lambda: {"x": 1})
                _run(floor.port, 64, insert)
                floor.mark()
                rows["floor"] = floor.measure(n, insert)
            finally:
                floor.stop()
    drop_database(name)

    print(f"\nInstructions per request (callgrind, user space, one uvicorn process, 8 clients, {n} requests each)")
    print(f"{'request':<10} {'instructions':>13} {'vs health':>10} {'vs floor':>9}  statuses")

    def ratio(ir: int, key: str) -> str:
        return f"{ir / rows[key][0]:.1f}×" if key in rows else "–"
    for key, (ir, statuses) in rows.items():
        print(f"{key:<10} {ir:>13,} {ratio(ir, 'health'):>10} {ratio(ir, 'floor'):>9}  {statuses}")
    if any(set(rows[key][1]) != {201} for key in ("booking", "hot") if key in rows):
        sys.exit("bookings failed")


if __name__ == "__main__":
    main()
