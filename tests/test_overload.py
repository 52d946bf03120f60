"""Overload and graceful shutdown.

- The guard itself (api/loadshed.py, in process): over MAX_INFLIGHT_REQUESTS the API answers
  503 problem+json with Retry-After at once; probes are exempt; 0 switches it off.
- Readiness (`GET /api/ready`): 200 with the database reachable, 503 while draining.
- One uvicorn process with a tiny pool (2 connections, no overflow, 0.5 s pool timeout) and a
  small in-flight cap, flooded by 200 concurrent clients: every request answers within a
  bound (no hang, no 500), the overflow gets 503/429 with Retry-After, nothing is oversold.
- SIGTERM mid-load: readiness turns 503 at once while the process still serves (drain), the
  requests in flight complete and their clients get the answers, no acknowledged booking is
  lost, and the process exits on its own.
"""
from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from bench._common import RawHttp
from tests.conftest import ROOT
from tests.test_scaleout import ApiProcess, guest_body, sql

# --- the guard and the probes, in process ---------------------------------------------------


def _run(coro):
    """asyncio.run in a thread of its own: safe even when the test process already has a
    running event loop in the main thread (Playwright's sync API keeps one)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _slow_app(started: asyncio.Event | None = None, release: asyncio.Event | None = None):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if release is not None:
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_guard_sheds_over_the_cap_at_once_and_exempts_probes():
    from booking_app.api.loadshed import LoadShedMiddleware

    async def main():
        release = asyncio.Event()
        guarded = LoadShedMiddleware(_slow_app(release=release), max_inflight=2)
        transport = httpx.ASGITransport(app=guarded)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            held = [asyncio.create_task(c.get(f"/api/bookings?n={i}")) for i in range(2)]
            await asyncio.sleep(0.05)  # both admitted and waiting
            t0 = time.perf_counter()
            shed = await asyncio.gather(*(c.get("/api/services", headers={"Accept-Language": "de"})
                                          for _ in range(3)))
            shed_seconds = time.perf_counter() - t0
            probes = [asyncio.create_task(c.get(p)) for p in ("/api/health", "/api/ready", "/metrics")]
            await asyncio.sleep(0.05)
            release.set()
            done = await asyncio.gather(*held, *probes)
        return shed, shed_seconds, done

    shed, shed_seconds, done = _run(main())
    assert shed_seconds < 0.5
    for r in shed:
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        body = r.json()
        assert body["status"] == 503 and body["type"] == "/problems/overloaded" and body["title"] and body["detail"]
    assert [r.status_code for r in done] == [200] * 5  # the admitted ones and the probes


def test_guard_off_with_zero(monkeypatch):
    from booking_app.api.loadshed import LoadShedMiddleware
    from booking_app.config import reset_settings_cache

    monkeypatch.setenv("MAX_INFLIGHT_REQUESTS", "0")
    reset_settings_cache()

    async def main():
        release = asyncio.Event()
        guarded = LoadShedMiddleware(_slow_app(release=release))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://test") as c:
            tasks = [asyncio.create_task(c.get("/api/x")) for _ in range(150)]
            await asyncio.sleep(0.1)
            release.set()
            return await asyncio.gather(*tasks)

    assert {r.status_code for r in _run(main())} == {200}


def test_max_inflight_setting_is_validated(monkeypatch):
    from pydantic import ValidationError

    from booking_app.config import Settings

    monkeypatch.setenv("MAX_INFLIGHT_REQUESTS", "-1")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("MAX_INFLIGHT_REQUESTS", "12")
    assert Settings().max_inflight_requests == 12


def test_ready_probe_and_draining(client):
    from booking_app.api import loadshed

    r = client.get("/api/ready")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and r.json()["database"] == "ok"
    loadshed.STATE.draining = True
    try:
        r = client.get("/api/ready")
        assert r.status_code == 503 and r.json()["status"] == "draining" and r.headers["retry-after"]
        assert client.get("/api/health").status_code == 200  # liveness is not readiness
    finally:
        loadshed.STATE.draining = False


def test_ready_is_unavailable_without_database(tmp_path):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api
    from tests.conftest import point_app_at

    point_app_at("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    with TestClient(create_api(), raise_server_exceptions=False) as c:
        r = c.get("/api/ready")
    assert r.status_code == 503 and r.json()["database"] in ("unreachable", "timeout"), r.text


# --- one real process under a flood ---------------------------------------------------------


@pytest.fixture
def small_server(pg_db, tmp_path):
    proc = ApiProcess(tmp_path, "overload", {
        "DATABASE_URL": pg_db, "JOBS_ENABLED": "false", "RATE_LIMITS_ENABLED": "false",
        "DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "0.5", "MAX_INFLIGHT_REQUESTS": "8",
    })
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.mark.postgres
@pytest.mark.slow
def test_flood_of_clients_is_shed_quickly_never_hangs_never_oversells(small_server, pg_url, capsys):
    from tests.factories import make_event, next_day_at

    capacity, n_clients, per_client, bound = 10, 200, 5, 3.0
    event, _ = make_event(sessions=[next_day_at(15)], capacity=capacity)
    start = next_day_at(15)
    run_id = uuid.uuid4().hex[:8]

    async def main():
        go = asyncio.Event()

        async def one_client(i: int):
            c = RawHttp("127.0.0.1", small_server.port)
            out = []
            await c.request("GET", "/api/health")  # connected before the start line
            await go.wait()
            for k in range(per_client):
                t0 = time.perf_counter()
                try:
                    status, fields, payload = await asyncio.wait_for(c.request(
                        "POST", "/api/bookings", guest_body(event.id, start, f"{run_id}-{i}-{k}"),
                        {"Idempotency-Key": f"flood-{run_id}-{i}-{k}"}), timeout=10)
                    body = json.loads(payload)
                    out.append((status, time.perf_counter() - t0, fields.get("retry-after"),
                                fields.get("content-type", ""), body.get("type")))
                except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    out.append((type(exc).__name__, time.perf_counter() - t0, None, "", None))
                    await c.close()
            await c.close()
            return out

        tasks = [asyncio.create_task(one_client(i)) for i in range(n_clients)]
        await asyncio.sleep(1.0)
        t0 = time.perf_counter()
        go.set()
        await asyncio.sleep(0.05)
        probe = RawHttp("127.0.0.1", small_server.port)
        health = (await probe.request("GET", "/api/health"))[0]  # a probe in the middle of the flood
        await probe.close()
        results = [x for t in await asyncio.gather(*tasks) for x in t]
        return results, time.perf_counter() - t0, health

    results, elapsed, health_status = _run(main())
    statuses = collections.Counter(r[0] for r in results)
    slowest = max(r[1] for r in results)
    assert health_status == 200
    assert set(statuses) <= {201, 409, 429, 503}, statuses  # never a 500, never a timeout
    assert slowest < bound, (f"slowest answer {slowest:.2f} s", dict(statuses))
    for status, _, retry_after, content_type, _type in results:
        if status in (429, 503):
            assert retry_after and int(retry_after) >= 1
            assert content_type.startswith("application/problem+json")
    shed = sum(1 for r in results if r[4] == "/problems/overloaded")
    assert shed > 0, statuses  # the guard did shed
    assert 0 < statuses[201] <= capacity
    booked = sql(pg_url, "SELECT coalesce(sum(quantity), 0) FROM bookings WHERE bookable_id = :b "
                         "AND status IN ('pending', 'confirmed')", b=event.id)[0][0]
    assert booked == statuses[201] <= capacity
    latencies = sorted(r[1] for r in results)
    with capsys.disabled():
        print(f"\n[overload] {n_clients} clients × {per_client} requests, pool 2 (no overflow, 0.5 s timeout), "
              f"in-flight cap 8: {dict(statuses)} ({shed} shed by the guard) in {elapsed:.1f} s; "
              f"latency p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.0f} ms, max {slowest * 1000:.0f} ms")


# --- graceful shutdown ------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_sigterm_drains_then_finishes_in_flight_requests(pg_db, pg_url, tmp_path, capsys):
    import psycopg

    from tests.factories import make_event, next_day_at

    event, _ = make_event(sessions=[next_day_at(16)], capacity=100)
    start = next_day_at(16)
    run_id = uuid.uuid4().hex[:8]
    proc = ApiProcess(tmp_path, "graceful", {
        "DATABASE_URL": pg_db, "JOBS_ENABLED": "true", "RATE_LIMITS_ENABLED": "false",
        "DB_LOCK_TIMEOUT_MS": "15000", "SHUTDOWN_DRAIN_SECONDS": "1",
    })
    proc.start()
    n = 6
    answers: list = [None] * n
    try:
        proc.wait_ready()
        # hold the bookings table so that the booking requests stay in flight until we let go
        blocker = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"))
        blocker.execute("LOCK TABLE bookings IN EXCLUSIVE MODE")

        def post(i: int) -> None:
            try:
                with httpx.Client(timeout=30) as c:
                    r = c.post(f"{proc.base}/api/bookings", json=guest_body(event.id, start, f"{run_id}-{i}"),
                               headers={"Idempotency-Key": f"term-{run_id}-{i}"})
                answers[i] = (r.status_code, r.json().get("id"))
            except httpx.HTTPError as exc:
                answers[i] = (type(exc).__name__, None)

        threads = [threading.Thread(target=post, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15
        while httpx.get(f"{proc.base}/api/ready", timeout=5).json().get("inflight", 0) < n:
            assert time.monotonic() < deadline, "the requests did not reach the server"
            time.sleep(0.05)

        t_term = time.monotonic()
        proc.signal(signal.SIGTERM)
        time.sleep(0.2)
        ready = httpx.get(f"{proc.base}/api/ready", timeout=5)  # draining: still serving, not ready
        health = httpx.get(f"{proc.base}/api/health", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "draining", ready.text
        assert health.status_code == 200
        assert ready.json()["inflight"] == n
        time.sleep(1.3)  # past the drain: the server no longer accepts, the n requests still wait
        assert proc.alive()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{proc.base}/api/health", timeout=2)
        blocker.commit()  # let go: the in-flight requests complete
        blocker.close()
        for t in threads:
            t.join(timeout=20)
        proc.proc.wait(timeout=20)
        stopped_after = time.monotonic() - t_term
    finally:
        proc.stop()

    assert all(a is not None and a[0] == 201 for a in answers), (answers, proc.log_tail())
    assert proc.proc.returncode in (0, -signal.SIGTERM), proc.log_tail()
    ids = sorted(a[1] for a in answers)
    rows = [r[0] for r in sql(pg_url, "SELECT id FROM bookings WHERE bookable_id = :b ORDER BY id", b=event.id)]
    assert rows == ids
    with capsys.disabled():
        print(f"[graceful] SIGTERM with {n} requests in flight: readiness 503 at once, {n}/{n} answered 201 "
              f"after the drain, process exited {stopped_after:.1f} s after SIGTERM")


def test_sync_routes_get_as_many_threads_as_the_database_pool_has_connections(db_url, monkeypatch):
    """Threads beyond the pool only queue for a connection while contending for the GIL
    (api/loadshed.py `limit_worker_threads`): the app's startup sizes anyio's limiter."""
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from booking_app.api import create_api
    from booking_app.config import reset_settings_cache

    def threads_in_the_apps_loop(env: dict[str, str]) -> int:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_settings_cache()
        with TestClient(create_api()) as client:
            return client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)

    assert threads_in_the_apps_loop({"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "3"}) == 10
    assert threads_in_the_apps_loop({"API_THREADS": "17"}) == 17


def test_startup_tunes_the_garbage_collector(db_url):
    """What exists at startup is frozen out of the collector's walks and the youngest
    generation is collected far less often (api/loadshed.py `tune_gc`)."""
    import gc

    from fastapi.testclient import TestClient

    from booking_app.api import create_api
    from booking_app.api.loadshed import GC_THRESHOLDS

    with TestClient(create_api()):
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 10_000


# --- drain-end steps ----------------------------------------------------------------------------

def _signal_through_chain(monkeypatch, steps, order: list[str], *, delay: float = 0.0,
                          timeout: float = 3.0) -> None:
    """Install the chained handler over a `previous` (the server's handler) that appends
    "server" to `order`, and deliver one signal."""
    from booking_app.api import loadshed

    monkeypatch.setattr(loadshed, "DRAIN_STEPS", list(steps))
    monkeypatch.setattr(loadshed, "DRAIN_STEP_TIMEOUT", timeout)
    monkeypatch.setattr(loadshed, "_drain_delay", lambda: delay)
    monkeypatch.setattr(loadshed.STATE, "draining", False)

    async def main() -> None:
        server_called = asyncio.Event()

        def previous(signum, frame):
            order.append("server")
            server_called.set()

        handler = loadshed._chained(previous, asyncio.get_running_loop())
        handler(signal.SIGTERM, None)
        await asyncio.wait_for(server_called.wait(), 10)

    asyncio.run(main())


def test_drain_end_steps_run_before_the_servers_shutdown(monkeypatch):
    order: list[str] = []

    async def release_tabs() -> None:
        await asyncio.sleep(0.05)
        order.append("tabs released")

    _signal_through_chain(monkeypatch, [release_tabs], order, delay=0.1)
    assert order == ["tabs released", "server"]
    from booking_app.api import loadshed

    assert loadshed.is_draining()


def test_a_slow_or_failing_drain_end_step_does_not_hold_up_the_shutdown(monkeypatch):
    async def hangs() -> None:
        await asyncio.sleep(60)

    async def fails() -> None:
        raise RuntimeError("redis gone")

    order: list[str] = []

    async def last() -> None:
        order.append("last")

    t0 = time.monotonic()
    _signal_through_chain(monkeypatch, [hangs, fails, last], order, timeout=0.2)
    assert order == ["last", "server"]
    assert time.monotonic() - t0 < 5


def test_without_steps_or_drain_the_server_handler_runs_at_once(monkeypatch):
    from booking_app.api import loadshed

    calls: list[int] = []
    monkeypatch.setattr(loadshed, "DRAIN_STEPS", [])
    monkeypatch.setattr(loadshed, "_drain_delay", lambda: 0.0)
    monkeypatch.setattr(loadshed.STATE, "draining", False)
    handler = loadshed._chained(lambda signum, frame: calls.append(signum), None)
    handler(signal.SIGTERM, None)
    assert calls == [signal.SIGTERM]


def test_sigterm_releases_the_open_tabs_before_the_server_stops():
    """The app's drain-end step (booking_app.py) forgets this process's claims on its open
    tabs, so a tab reconnecting to another process keeps its token (tests/browser/
    test_scaleout_ui.py shows the whole move). In a fresh process: the Reflex app imported."""
    script = """
import asyncio
import booking_app.booking_app as m
from booking_app.api import loadshed

manager = m.app.event_namespace._token_manager
async def main():
    await manager.link_token_to_sid("tab-token", "socket-1")
    assert "tab-token" in m.app.event_namespace.token_to_sid
    await loadshed.run_drain_steps()
    print("released" if "tab-token" not in m.app.event_namespace.token_to_sid else "kept")
asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "released"
