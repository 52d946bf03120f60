"""Redis restarts under a running app: open pages keep working.

One `reflex run --env prod` with two Granian workers (REDIS_URL set: the UI state and the
dashboard's cross-process figures live in Redis) on a PostgreSQL database of the test's
own, with a throwaway `redis-server` of the test's own on a free port (never the shared
one), built in the session's scratch copy of the tree (conftest.shared_scratch_tree, never the
shared `.web/`).

An admin is signed in with the live dashboard open, showing the figures of both worker
processes. Redis is stopped — while it is away, API bookings keep working (the API doesn't
need Redis) — and started again, empty (no persistence: the worst case, every tab's
server-side state is gone). Meanwhile the page's events can't be served (its state lives in
Redis). Afterwards the open page works again without a reload: its next action is served,
the admin is still signed in (the session is the HttpOnly cookie, not server state), the
live dashboard refreshes by itself again and its system figures cover both processes again.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from bench._common import start_reflex, stop_process_group, venv_python
from tests.browser.conftest import START_TIMEOUT, _server_env
from tests.browser.helpers import goto, sign_in
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

ALL_PROCESSES = re.compile(r"all app processes \(2\)")
ALL_PROCESSES_DE = translate("System figures cover the last minute of all app processes ({count}).", "de", count="2")


class ThrowawayRedis:
    """A `redis-server` of the test's own on a fixed free port, without persistence, that
    can be stopped and started again at the same address."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"redis-server on port {self.port} did not start")
                    time.sleep(0.1)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def throwaway_redis():
    server = ThrowawayRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def guest_booking(client: httpx.Client, slot_start: str, tag: str) -> int:
    body = {"service_id": 1, "start": slot_start, "guest": {"name": f"Guest {tag}", "email": f"g-{tag}@example.com"}}
    return client.post("/api/bookings", json=body, headers={"Idempotency-Key": f"redis-{tag}"}).status_code


def spread_requests(base: str, n: int = 60) -> None:
    """API requests on fresh connections, so that both workers serve some (each worker
    publishes its figures once it has served a request)."""
    for _ in range(n):
        with httpx.Client(base_url=base, timeout=10) as c:
            c.get("/api/health")


def test_open_pages_survive_a_redis_restart(shared_scratch_tree, pg_url, throwaway_redis, browser, capsys):
    scratch_tree = shared_scratch_tree
    env = _server_env(pg_url)
    env.update(REDIS_URL=throwaway_redis.url, GRANIAN_WORKERS="2")
    subprocess.run([venv_python(), "-m", "booking_app", "seed-demo"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=180)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_reflex(scratch_tree, env, port, scratch_tree / "reflex.log", timeout=START_TIMEOUT)
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page, "admin", "demo-admin-pass")
        goto(page, "/admin/dashboard")
        expect(page.get_by_test_id("live")).to_be_visible()
        scope = page.get_by_test_id("dash-scope")
        spread_requests(base)
        expect(scope).to_contain_text(ALL_PROCESSES, timeout=20_000)

        with httpx.Client(base_url=base, timeout=15) as api:
            day = dt.date.today() + dt.timedelta(days=3)
            slots = api.get(f"/api/services/1/slots?from={day}&to={day + dt.timedelta(days=7)}").json()["slots"]
            assert len(slots) >= 4, slots
            run = uuid.uuid4().hex[:8]
            assert guest_booking(api, slots[0]["start"], f"{run}-before") == 201

            # Redis goes away: the API keeps booking
            throwaway_redis.stop()
            stopped = time.monotonic()
            during = [guest_booking(api, slots[1]["start"], f"{run}-during"),
                      api.get("/api/ready").status_code]
            # an event of the open page can't be served meanwhile (its state lives in Redis)
            page.get_by_test_id("language-switcher").select_option("fr")
            time.sleep(3)
            assert page.get_by_test_id("app-root").get_attribute("lang") == "en"
            assert during == [201, 200], during

            # Redis is back (empty): the open page works again without a reload
            throwaway_redis.start()
            restarted = time.monotonic()
            assert guest_booking(api, slots[2]["start"], f"{run}-after") == 201

        # the open page (no reload) works again: its next event is served — Reflex loads the
        # page afresh for it, the user still signed in from the session cookie
        page.get_by_test_id("language-switcher").select_option("de")
        expect(page.get_by_test_id("app-root")).to_have_attribute("lang", "de", timeout=30_000)
        resumed = time.monotonic()
        expect(page.get_by_test_id("user-menu")).to_contain_text("Ada Admin")
        # the live dashboard refreshes by itself again
        updated = page.get_by_test_id("updated")
        shown = updated.inner_text()
        expect(updated).not_to_have_text(shown, timeout=20_000)
        spread_requests(base)
        expect(page.get_by_test_id("dash-scope")).to_contain_text(ALL_PROCESSES_DE, timeout=30_000)
        figures_back = time.monotonic()
        with capsys.disabled():
            print(f"\n[redis restart] Redis away {restarted - stopped:.1f} s: API bookings 201 throughout, "
                  f"/api/ready 200; the open page served its next event "
                  f"{resumed - restarted:.1f} s after Redis was back, still signed in, live dashboard refreshing; "
                  f"figures of both processes {figures_back - restarted:.1f} s after")
    except BaseException:
        log = scratch_tree / "reflex.log"
        print(log.read_text(errors="replace")[-6000:] if log.exists() else "(no server log)")
        raise
    finally:
        context.close()
        stop_process_group(proc)
