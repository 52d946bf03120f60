"""Test harness.

Databases
- `sqlite_url`: a fresh, migrated SQLite file per test (copied from a template migrated once).
- `pg_url`: the session's own PostgreSQL database (`booking_test_<random>`, migrated once,
  dropped at the end), emptied before each test. PostgreSQL comes from TEST_DATABASE_URL,
  else the server on 127.0.0.1:5432, else a throwaway cluster started from the system
  binaries (initdb/pg_ctl). If none can be had the PostgreSQL tests are skipped, unless
  REQUIRE_POSTGRES=1 (CI), where they fail.
- `db_url`: parametrised over both; points the application (settings + engines) at it.
- `sqlite_db` / `pg_db`: the application pointed at one of them.

HTTP
- `client`: a TestClient on the REST API (`booking_app.api:api`) over `db_url`.

Browser (tests/browser/): see tests/browser/conftest.py.
"""
from __future__ import annotations

import collections
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest
from xdist.scheduler import LoadScopeScheduling

ROOT = pathlib.Path(__file__).resolve().parent.parent

# A test run never touches the developer's database or real providers.
os.environ["ENVIRONMENT"] = "test"
os.environ["DATABASE_URL"] = "sqlite:///" + str(pathlib.Path(tempfile.gettempdir()) / f"booking-unset-{os.getpid()}.db")
os.environ["JOBS_ENABLED"] = "false"
for var in ("REDIS_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "SMTP_URL", "SENDGRID_API_KEY",
            "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"):
    os.environ.pop(var, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def point_app_at(url: str, **env: str) -> None:
    """Point settings and engines of this process at `url` (and any extra settings)."""
    from booking_app import db
    from booking_app.config import reset_settings_cache

    os.environ["DATABASE_URL"] = url
    for key, value in env.items():
        os.environ[key] = value
    reset_settings_cache()
    db.dispose_engines()


def migrate_to_head(url: str) -> None:
    from booking_app import cli

    old = os.environ.get("DATABASE_URL")
    point_app_at(url)
    try:
        cfg = cli.alembic_config()
        cfg.attributes["configure_logger"] = False
        from alembic import command

        command.upgrade(cfg, "head")
    finally:
        if old:
            point_app_at(old)


@pytest.fixture(autouse=True)
def _restore_settings(monkeypatch):
    """Each test may change settings through the environment; put them back afterwards."""
    saved = dict(os.environ)
    yield
    changed = {k for k in set(os.environ) | set(saved) if os.environ.get(k) != saved.get(k)}
    if changed:
        os.environ.clear()
        os.environ.update(saved)
        from booking_app.config import reset_settings_cache

        reset_settings_cache()
        if "DATABASE_URL" in changed:
            from booking_app import db

            db.dispose_engines()


# ---------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate_to_head(f"sqlite:///{path}")
    from booking_app import db

    db.dispose_engines()
    return path


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    path = tmp_path / "test.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_db(sqlite_url) -> str:
    point_app_at(sqlite_url)
    return sqlite_url


# ---------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------

def _pg_reachable(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
            return True
    except Exception:
        return False


class _ThrowawayCluster:
    """A PostgreSQL cluster from the system binaries, for machines without a server."""

    def __init__(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="booking-pg-"))
        self.port = free_port()
        self.bindir = self._find_bindir()
        self.as_root = os.geteuid() == 0

    @staticmethod
    def _find_bindir() -> pathlib.Path | None:
        for candidate in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
            if (candidate / "initdb").exists():
                return candidate
        found = shutil.which("initdb")
        return pathlib.Path(found).parent if found else None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> str | None:
        if self.bindir is None:
            return None
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        self.server("start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def server(self, action: str) -> None:
        """`pg_ctl start|stop|restart` on this cluster (waits; stop/restart: fast mode —
        open connections are terminated, as in a failover)."""
        args = [str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-w"]
        if action != "start":
            args += ["-m", "fast"]
        if action in ("start", "restart"):
            args += ["-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "-l", str(self.dir / "log")]
        self._run(*args, action)

    def stop(self) -> None:
        try:
            self.server("stop")
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


#: a PostgreSQL cluster of a test's own, which it may stop and start (tests/test_faults.py)
ThrowawayCluster = _ThrowawayCluster


@pytest.fixture(scope="session")
def pg_server_url():
    """URL of a PostgreSQL server's maintenance database, or skip/fail."""
    candidates = []
    if os.environ.get("TEST_DATABASE_URL"):
        candidates.append(os.environ["TEST_DATABASE_URL"])
    candidates.append("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    cluster = None
    for url in candidates:
        if url.startswith("postgres://") or url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        if _pg_reachable(url):
            yield url
            return
    try:
        cluster = _ThrowawayCluster()
        url = cluster.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        url = None
        reason = f"could not start a throwaway PostgreSQL: {exc}"
    else:
        reason = "no PostgreSQL binaries found"
    if url and _pg_reachable(url):
        yield url
        cluster.stop()
        return
    msg = f"PostgreSQL is not available ({reason}); set TEST_DATABASE_URL to run these tests"
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def _admin_exec(server_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_database(pg_server_url):
    """A migrated database of this test session's own, dropped at the end."""
    from sqlalchemy.engine import make_url

    name = f"booking_test_{uuid.uuid4().hex[:10]}"
    _admin_exec(pg_server_url, f'CREATE DATABASE "{name}"')
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    migrate_to_head(url)
    yield url
    from booking_app import db

    db.dispose_engines()
    _admin_exec(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(url: str) -> None:
    import psycopg
    from sqlmodel import SQLModel

    import booking_app.models  # noqa: F401

    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
def pg_url(pg_database) -> str:
    truncate_all(pg_database)
    return pg_database


@pytest.fixture
def pg_db(pg_url) -> str:
    point_app_at(pg_url)
    return pg_url


# ---------------------------------------------------------------------------------------
# Both databases
# ---------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """The application pointed at a fresh SQLite file, then at the PostgreSQL database."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    point_app_at(url)
    return url


@pytest.fixture
def client(db_url):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    with TestClient(create_api(), raise_server_exceptions=False) as c:
        yield c


#: test files that use one server-wide resource in a way no other worker may share at the same
#: time (`make test` spreads the other tests over pytest-xdist workers, tools/run_tests.py):
#: the shared Redis server's database 0, FLUSHDB of numbered databases, pub/sub channels; the
#: bench scripts' `booking_bench*` PostgreSQL databases (each test checks that none is left behind)
XDIST_GROUPS = {
    "redis": ("test_authcache.py", "test_dashboard_series.py", "test_live_slots.py", "test_metrics.py",
              "test_scaleout.py", "test_redis_startup.py"),
    "bench-databases": ("test_bench_scripts.py", "test_deploy_compat.py"),
}
_GROUP_OF = {name: group for group, names in XDIST_GROUPS.items() for name in names}


class FileGroupScheduling(LoadScopeScheduling):
    """`--dist loadgroup` by file name: each XDIST_GROUPS group is one unit of work (one
    worker runs it), every other test is a unit of its own. (pytest-xdist's own loadgroup
    renames items through a node attribute that pytest 9 no longer reads.)"""

    def _split_scope(self, nodeid: str) -> str:
        return _GROUP_OF.get(nodeid.split("::", 1)[0].rsplit("/", 1)[-1], nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return FileGroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


def _refuse_duplicate_ids(nodeids) -> None:
    """Two tests with one id are refused: pytest-xdist would run only one of them, and say
    nothing of the other."""
    seen = collections.Counter(nodeids)
    if twice := sorted(nodeid for nodeid, count in seen.items() if count > 1):
        raise pytest.UsageError(f"{len(twice)} test ids stand for more than one test: {twice[:5]}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Browser tests last: the fast tests fail first, and Playwright's event loop (kept by
    its sync API for the session) never surrounds the other tests. Duplicate ids are refused
    here, except on a pytest-xdist worker: its error would be lost (the controller reported
    only an INTERNALERROR on a test never run), so the controller refuses them, below."""
    items.sort(key=lambda item: 1 if item.get_closest_marker("browser") else 0)
    if not hasattr(config, "workerinput"):
        _refuse_duplicate_ids(item.nodeid for item in items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """Under pytest-xdist: each worker's collection, as the controller receives it."""
    _refuse_duplicate_ids(ids)
