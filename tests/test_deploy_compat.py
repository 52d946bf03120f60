"""Deploys without downtime: the previous release's code keeps working on the newest schema.

During a rolling deploy the new release's migrations have run (expand step, see
docs/operations.md) while processes of the previous release still serve requests. This test
takes the previous release's tree (the commit in `deploy/previous-release`, from this
clone's history via `git archive`), gives it this tree's migration scripts — so every
database its own test fixtures create is migrated to the NEWEST head, the schema it will
meet in production — and runs its API smoke subset (bookings and auth, on SQLite and
PostgreSQL) with its own code and its own tests. All must pass.

A migration that breaks the previous release (a dropped or renamed column, a NOT NULL
column without a default, a narrower type …) makes its tests fail here.
"""
from __future__ import annotations

import io
import os
import pathlib
import re
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

RELEASE_FILE = ROOT / "deploy" / "previous-release"
#: the previous release's API smoke subset (its own test files, run with its own conftest)
SMOKE_TESTS = ("tests/api/test_bookings_api.py", "tests/api/test_auth.py")
TIMEOUT_SECONDS = 240

#: loaded into the previous release's pytest run: records the schema revision of every
#: database its fixtures migrate, so this test can tell that it really ran on the newest one
PROBE = '''\
"""Records the alembic revision of each database the fixtures migrate (test_deploy_compat)."""
import os


def pytest_sessionstart(session):
    import tests.conftest as harness

    original = harness.migrate_to_head

    def migrate_and_record(url):
        original(url)
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                revs = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        finally:
            engine.dispose()
        with open(os.environ["DEPLOY_COMPAT_RECORD"], "a") as fh:
            fh.write(url.split(":", 1)[0] + " " + ",".join(sorted(revs)) + "\\n")

    harness.migrate_to_head = migrate_and_record
'''


def previous_release() -> str:
    """The commit id in deploy/previous-release (comment lines start with #)."""
    lines = [line.strip() for line in RELEASE_FILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) == 1 and re.fullmatch(r"[0-9a-f]{7,40}|[\w./-]+", lines[0]), \
        f"{RELEASE_FILE} must hold one commit id or tag, found {lines}"
    return lines[0]


def git(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, timeout=60, **kwargs)


def newest_heads() -> set[str]:
    from alembic.script import ScriptDirectory

    from booking_app import cli

    return set(ScriptDirectory.from_config(cli.alembic_config()).get_heads())


def test_previous_release_api_passes_its_smoke_tests_on_the_newest_schema(tmp_path, capsys):
    release = previous_release()
    found = git("rev-parse", "--verify", "--quiet", f"{release}^{{commit}}", text=True)
    if found.returncode != 0:
        pytest.fail(f"the previous release {release} (deploy/previous-release) is not in this clone's history: "
                    f"clone with the full history (`git fetch --unshallow --tags`) — the deploy compatibility "
                    f"test needs it")
    commit = found.stdout.strip()

    # the previous release's tree, with this tree's migration scripts
    archive = git("archive", "--format=tar", commit)
    assert archive.returncode == 0, archive.stderr.decode(errors="replace")
    tree = tmp_path / "previous"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    versions = tree / "alembic" / "versions"
    assert versions.is_dir(), "the previous release has no alembic/versions folder"
    for script in (ROOT / "alembic" / "versions").glob("*.py"):
        (versions / script.name).write_bytes(script.read_bytes())
    (tree / "deploy_compat_probe.py").write_text(PROBE)
    record = tmp_path / "migrated.txt"

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL", "REDIS_URL")}
    env["DEPLOY_COMPAT_RECORD"] = str(record)
    # its own code, not this tree's: the package must come from the extracted tree
    where = subprocess.run([sys.executable, "-c", "import booking_app; print(booking_app.__file__)"], cwd=tree,
                           env=env, capture_output=True, text=True, timeout=60)
    assert pathlib.Path(where.stdout.strip()).is_relative_to(tree), where.stdout + where.stderr

    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "deploy_compat_probe", *SMOKE_TESTS], cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the previous release's smoke tests took over {TIMEOUT_SECONDS} s:\n{exc.stdout}")
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"release {commit[:10]}'s API tests fail on the newest schema:\n{output[-6000:]}"

    heads = newest_heads()
    migrated = [line.split(" ", 1) for line in record.read_text().splitlines()] if record.exists() else []
    assert migrated, f"the previous release's tests migrated no database:\n{output[-3000:]}"
    assert all(set(revs.split(",")) == heads for _, revs in migrated), (migrated, heads)
    engines = sorted({kind for kind, _ in migrated})
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        assert any(kind.startswith("postgresql") for kind in engines), engines
    summary = re.findall(r"\d+ (?:passed|skipped|failed)", output)
    with capsys.disabled():
        print(f"\n[deploy compat] release {commit[:10]}: {', '.join(summary)} of {' '.join(SMOKE_TESTS)} "
              f"on databases migrated to the newest head {sorted(heads)} ({', '.join(engines)})")


# ---- rolling restart behind the proxy (bench/bench_rolling_restart.py, tiny workload) ----------

def _nginx() -> str | None:
    import shutil

    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


@pytest.mark.postgres
def test_rolling_restart_behind_nginx_fails_no_request(pg_server_url, capsys):
    """Both processes drained and restarted in turn behind deploy/nginx.conf while clients
    book: every booking acknowledged (after Retry-After retries), none lost or doubled."""
    if _nginx() is None:  # `make test` installs it (`make nginx`); a missing mirror must not fail the suite
        pytest.skip("nginx is not installed (make nginx)")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ENVIRONMENT", "JOBS_ENABLED")}
    env["TEST_DATABASE_URL"] = pg_server_url.replace("postgresql+psycopg://", "postgresql://")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_rolling_restart.py"), "--clients", "2",
                           "--drain", "1", "--settle", "0.5"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    out = done.stdout
    assert done.returncode == 0 and "Traceback" not in done.stderr, out[-3000:] + done.stderr[-3000:]
    assert re.search(r"^201\s+[1-9]\d*$", out, re.M), out
    assert re.search(r"^other\s+0$", out, re.M), out
    assert re.search(r"^failed after retry\s+0$", out, re.M), out
    assert "database check: OK" in out, out
    with capsys.disabled():
        print("\n[rolling restart] " + " | ".join(line.strip() for line in out.splitlines()[3:9]))
