"""Rolling restart behind the proxy: clients keep booking while each app process in turn is
drained, stopped and started again. Prints what the clients saw.

Setup: a PostgreSQL database of its own; two API processes A and B (`uvicorn
booking_app.api:api`, SHUTDOWN_DRAIN_SECONDS > 0) behind nginx running deploy/nginx.conf —
the file itself, with its `server app:3000 …` line turned into one line per process and
its listen address and log paths moved to a scratch directory. nginx comes from the
system (`make nginx` installs the Debian package); without it the script says so and exits
with status 2.

Clients (threads) book continuously through nginx, each booking with an Idempotency-Key of
its own, retrying a 503 after its Retry-After under the same key (any other answer but 201
is a failure). Meanwhile A gets SIGTERM: it reports not ready (GET /api/ready → 503) for
SHUTDOWN_DRAIN_SECONDS while still serving, then stops accepting and finishes its in-flight
requests; it is started again on the same port, and once it is ready (and after --settle
seconds) the same happens to B.

Printed: requests (attempts) and their answers (201 / 503 / other), booking requests that
failed even after retrying (must be 0), the slowest single attempt, and a check that every
acknowledged booking is in the database exactly once.

    python bench/bench_rolling_restart.py [--clients 4] [--drain 2] [--settle 2] [--server granian]
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import create_database, drop_database, free_port, http_status, migrate  # noqa: E402

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def proxy_config(workdir: pathlib.Path, listen_port: int, app_ports: list[int],
                 source: pathlib.Path = NGINX_CONF) -> pathlib.Path:
    """deploy/nginx.conf for this machine: one `server` line per app process (with the
    file's own parameters), listening on 127.0.0.1:listen_port, logs and temp files in
    `workdir`; wrapped in a main configuration of its own."""
    site = source.read_text()
    upstream = re.search(r"^(\s*)server app:3000( [^;]*)?;$", site, re.M)
    if upstream is None:
        raise SystemExit(f"{source}: no `server app:3000 …;` line in its upstream block")
    indent, params = upstream.group(1), upstream.group(2) or ""
    servers = "\n".join(f"{indent}server 127.0.0.1:{port}{params};" for port in app_ports)
    site = site[:upstream.start()] + servers + site[upstream.end():]
    site, n = re.subn(r"^(\s*)listen 80;$", rf"\g<1>listen 127.0.0.1:{listen_port};", site, flags=re.M)
    if n != 1:
        raise SystemExit(f"{source}: expected one `listen 80;` line")
    site = site.replace("/var/log/nginx/access.log", str(workdir / "access.log"))
    (workdir / "site.conf").write_text(site)
    main = workdir / "nginx.conf"
    temp = {name: workdir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main.write_text(
        f"daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    client_body_temp_path {temp['client_body']};\n    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {workdir / 'site.conf'};\n"
        "}\n")
    return main


class App:
    """One API process on a fixed port (restartable on the same port)."""

    def __init__(self, name: str, env: dict[str, str], workdir: pathlib.Path, server: str = "uvicorn") -> None:
        self.name, self.env, self.port, self.server = name, env, free_port(), server
        self.log = workdir / f"app-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            if self.server == "granian":  # what `reflex run --env prod` serves with (one worker)
                cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port",
                       str(self.port), "--workers", "1", "--log-level", "warning", "--no-access-log",
                       "booking_app.api:api"]
            else:
                cmd = [sys.executable, "-m", "uvicorn", "booking_app.api:api", "--host", "127.0.0.1", "--port",
                       str(self.port), "--no-access-log", "--log-level", "warning"]
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> float:
        started = time.monotonic()
        while http_status(f"http://127.0.0.1:{self.port}/api/ready", timeout=2) != 200:
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                raise SystemExit(f"app {self.name} did not get ready:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        return time.monotonic() - started

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def seed(base_url: str) -> tuple[int, str]:
    """An event with one large session (every client books a seat of it)."""
    from booking_app.services import accounts

    accounts.create_user(username="rollprov", email="prov@rolling.test", password="rolling-provider-pw",
                         role="provider")
    with httpx.Client(base_url=base_url, timeout=30) as c:
        r = c.post("/api/users/login", json={"username": "rollprov", "password": "rolling-provider-pw"})
        r.raise_for_status()
        prov = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = c.post("/api/services", headers=prov, json={
            "name": "Rolling event", "kind": "event", "duration_minutes": 60, "capacity": 100_000,
            "price_cents": 0, "currency": "EUR", "timezone": "UTC"})
        r.raise_for_status()
        event = r.json()["id"]
        start = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(
            hour=10, minute=0, second=0, microsecond=0).isoformat()
        c.post(f"/api/services/{event}/sessions", headers=prov, json={"start": start}).raise_for_status()
    return event, start


class Clients:
    """Threads booking continuously through the proxy until stopped."""

    def __init__(self, base_url: str, n: int, event: int, start: str) -> None:
        self.base_url, self.n, self.event, self.start = base_url, n, event, start
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.attempts: collections.Counter = collections.Counter()  # 201 / 503 / other
        self.other_kinds: collections.Counter = collections.Counter()
        self.acknowledged: dict[str, int] = {}  # key -> booking id
        self.failed: list[str] = []  # keys without a 201 after retrying
        self.max_latency = 0.0
        self.run_id = uuid.uuid4().hex[:8]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def begin(self) -> None:
        for t in self.threads:
            t.start()

    def end(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=120)

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as c:
            k = 0
            while not self.stop_flag.is_set():
                key = f"roll-{self.run_id}-{i}-{k}"
                k += 1
                body = {"service_id": self.event, "start": self.start,
                        "guest": {"name": f"Guest {i}-{k}", "email": f"g{i}-{k}-{self.run_id}@example.com"}}
                self._book(c, key, body)

    def _book(self, c: httpx.Client, key: str, body: dict) -> None:
        deadline = time.monotonic() + 60  # a definite answer within a minute, or it failed
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                r = c.post("/api/bookings", json=body, headers={"Idempotency-Key": key})
                status, kind = r.status_code, str(r.status_code)
            except httpx.TransportError as exc:
                r, status, kind = None, 0, type(exc).__name__
            latency = time.monotonic() - t0
            with self.lock:
                self.max_latency = max(self.max_latency, latency)
                if status == 201:
                    self.attempts["201"] += 1
                    self.acknowledged[key] = r.json()["id"]
                    return
                if status == 503:
                    self.attempts["503"] += 1
                else:
                    self.attempts["other"] += 1
                    self.other_kinds[kind] += 1
            if status == 503:  # honour Retry-After (the app and the proxy send 1–2 s)
                time.sleep(float(r.headers.get("retry-after", "1")))
            elif status == 0:  # the proxy itself not reached: try again shortly
                time.sleep(0.2)
            else:  # any other answer is final: this booking failed
                break
        with self.lock:
            self.failed.append(key)


def bookings_in_database(url: str, event: int) -> list[tuple[int, str]]:
    import psycopg

    raw = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw) as conn:
        return conn.execute("SELECT b.id, r.key FROM bookings b LEFT JOIN idempotency_records r "
                            "ON r.resource_id = b.id AND r.scope LIKE 'booking:%%' "
                            "WHERE b.bookable_id = %s", (event,)).fetchall()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--drain", type=float, default=2.0, help="SHUTDOWN_DRAIN_SECONDS of the app processes")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds of load before, between and after")
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn",
                    help="HTTP server of each app process (granian: what reflex run --env prod uses)")
    ap.add_argument("--proxy-config", type=pathlib.Path, default=NGINX_CONF,
                    help="the nginx site configuration to test (default: deploy/nginx.conf)")
    args = ap.parse_args()

    nginx = find_nginx()
    if nginx is None:
        print("nginx is not installed (`make nginx` installs it): nothing measured", file=sys.stderr)
        return 2

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="rolling-restart-"))
    name, url = create_database()
    apps: list[App] = []
    proxy = None
    try:
        migrate(url)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "ENVIRONMENT": "development",
               "JOBS_ENABLED": "false", "RATE_LIMITS_ENABLED": "false", "LOG_LEVEL": "WARNING",
               "SHUTDOWN_DRAIN_SECONDS": str(args.drain), "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        apps = [App("A", env, workdir, args.server), App("B", env, workdir, args.server)]
        for app in apps:
            app.start()
        for app in apps:
            app.wait_ready()
        listen = free_port()
        conf = proxy_config(workdir, listen, [app.port for app in apps], args.proxy_config)
        check = subprocess.run([nginx, "-t", "-q", "-c", str(conf), "-p", str(workdir)], capture_output=True,
                               text=True)
        if check.returncode != 0:
            raise SystemExit(f"nginx rejects the configuration:\n{check.stderr}")
        proxy = subprocess.Popen([nginx, "-c", str(conf), "-p", str(workdir)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{listen}"
        deadline = time.monotonic() + 20
        while http_status(f"{base}/api/ready") != 200:
            if proxy.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"nginx did not start:\n{(workdir / 'error.log').read_text()[-2000:]}")
            time.sleep(0.1)
        event, start = seed(base)

        clients = Clients(base, args.clients, event, start)
        clients.begin()
        t0 = time.monotonic()
        time.sleep(args.settle)
        steps = []
        for app in apps:
            signalled = time.monotonic()
            app.stop(signal.SIGTERM)  # drains for SHUTDOWN_DRAIN_SECONDS, then finishes in flight
            stopped = time.monotonic()
            app.start()
            ready_after = app.wait_ready()
            steps.append((app.name, stopped - signalled, ready_after))
            time.sleep(args.settle)
        clients.end()
        elapsed = time.monotonic() - t0

        rows = bookings_in_database(url, event)
        by_key = collections.Counter(key for _, key in rows)
        acked = clients.acknowledged
        lost = [k for k in acked if by_key.get(k, 0) == 0]
        doubled = [k for k, n in by_key.items() if n > 1]
        unacknowledged = [k for k in by_key if k not in acked]
        total = sum(clients.attempts.values())
        print(f"rolling restart of 2 {args.server} processes behind nginx ({args.clients} clients, SHUTDOWN_DRAIN_SECONDS="
              f"{args.drain:g}, {elapsed:.1f} s)")
        for name_, down, ready in steps:
            print(f"  process {name_}: SIGTERM → exited in {down:.1f} s, restarted and ready in {ready:.1f} s")
        print(f"requests      {total}")
        print(f"201           {clients.attempts['201']}")
        print(f"503           {clients.attempts['503']}")
        other = ", ".join(f"{k}: {v}" for k, v in sorted(clients.other_kinds.items()))
        print(f"other         {clients.attempts['other']}" + (f" ({other})" if other else ""))
        print(f"bookings      {len(acked) + len(clients.failed)} requested, {len(acked)} acknowledged")
        print(f"failed after retry  {len(clients.failed)}")
        print(f"max latency   {clients.max_latency * 1000:.0f} ms")
        errors = [line for line in (workdir / "error.log").read_text(errors="replace").splitlines()
                  if "[error]" in line or "[warn]" in line] if (workdir / "error.log").exists() else []
        if errors:
            reasons = collections.Counter(re.sub(r"^.*?\*\d+ ", "", line).split(" while ")[0].split(", client")[0]
                                          for line in errors)
            print(f"nginx error log: {len(errors)} lines — " +
                  "; ".join(f"{reason} ×{n}" for reason, n in reasons.most_common(4)))
        ok = not (lost or doubled or unacknowledged)
        print(f"database check: {'OK' if ok else 'MISMATCH'} — {len(rows)} bookings; lost {len(lost)}, "
              f"twice {len(doubled)}, never acknowledged {len(unacknowledged)}")
        return 0 if ok and not clients.failed else 1
    finally:
        if proxy is not None and proxy.poll() is None:
            os.killpg(proxy.pid, signal.SIGQUIT)  # graceful: finishes what it proxies
            try:
                proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proxy.pid, signal.SIGKILL)
                proxy.wait(timeout=5)
        for app in apps:
            app.stop()
        from booking_app import db

        db.dispose_engines()
        drop_database(name)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
