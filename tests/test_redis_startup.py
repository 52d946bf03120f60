"""Without Redis at start-up (REDIS_URL set): the UI server says what is missing and exits
non-zero; the REST API alone starts and serves (it needs no Redis).

`reflex run` is started in a scratch folder holding only this project's rxconfig.py (the
check runs when Reflex reads its configuration, before anything is built), so nothing is
built or written into the checkout.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time

import httpx
import pytest

from booking_app.redis_check import redacted_address, redis_unreachable
from tests.conftest import ROOT, free_port

REFLEX = pathlib.Path(sys.executable).parent / "reflex"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REFLEX_REDIS_URL")}
    env.update(PYTHONPATH=str(ROOT), REFLEX_TELEMETRY_ENABLED="false", REFLEX_CHECK_LATEST_VERSION="false", **extra)
    return env


def test_reflex_run_without_redis_exits_with_one_line_naming_redis_url(tmp_path):
    port = free_port()  # nothing listens there
    url = f"redis://bench:s3cret-pw@127.0.0.1:{port}/3"
    shutil.copy(ROOT / "rxconfig.py", tmp_path / "rxconfig.py")
    started = time.monotonic()
    done = subprocess.run([str(REFLEX), "run", "--env", "prod", "--backend-only", "--backend-port", str(free_port())],
                          cwd=tmp_path, env=_env(REDIS_URL=url, REDIS_STARTUP_WAIT_SECONDS="1"),
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("error: REDIS_URL is set to ") and f"redis://127.0.0.1:{port}/3" in line, line
    assert "Redis does not answer there" in line and "refused" in line.lower(), line
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert not (tmp_path / ".web").exists()  # stopped before building anything
    assert took < 60, took


def test_the_start_up_check_waits_for_a_redis_that_is_starting():
    """A Redis that comes up within REDIS_STARTUP_WAIT_SECONDS is waited for (orchestrators
    start the app and Redis together); one that doesn't is reported with the reason."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    assert "refused" in (redis_unreachable(url, 0) or "").lower()
    server: list[subprocess.Popen] = []

    def start_later() -> None:
        time.sleep(1.0)
        server.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        started = time.monotonic()
        assert redis_unreachable(url, 20) is None
        assert 0.9 < time.monotonic() - started < 20
    finally:
        starter.join()
        for proc in server:
            proc.terminate()
            proc.wait(timeout=10)


def test_redacted_address_never_shows_credentials():
    assert redacted_address("redis://user:pw@cache.internal:6380/2") == "redis://cache.internal:6380/2"
    assert redacted_address("rediss://:pw@cache") == "rediss://cache"
    assert redacted_address("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_the_api_alone_starts_and_signs_in_without_redis(sqlite_url):
    """The REST API with REDIS_URL pointing nowhere: ready, and serving."""
    port = free_port()
    env = _env(DATABASE_URL=sqlite_url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", ENVIRONMENT="test",
               JOBS_ENABLED="false")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "booking_app.api:api", "--host", "127.0.0.1", "--port",
                             str(port), "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the API did not start without Redis"
            time.sleep(0.2)
        r = httpx.post(f"{base}/api/users/register", json={"username": "noredis", "email": "noredis@example.com",
                                                            "password": "a-Long-enough-passphrase-42",
                                                            "full_name": "No Redis"}, timeout=30)
        assert r.status_code == 201, r.text
        r = httpx.post(f"{base}/api/users/login", json={"username": "noredis",
                                                         "password": "a-Long-enough-passphrase-42"}, timeout=30)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        assert httpx.get(f"{base}/api/users/profile", headers={"Authorization": f"Bearer {token}"},
                         timeout=30).status_code == 200
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
