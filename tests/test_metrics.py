"""Prometheus metrics, the request middleware and the one-minute dashboard window."""
from __future__ import annotations

import json
import re
import threading
import time
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from booking_app.api.metrics import MetricsMiddleware
from booking_app.services import metrics, request_stats


def _value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return 0.0


def test_metrics_endpoint_counts_requests(client):
    before = client.get("/metrics").text
    for _ in range(3):
        assert client.get("/api/health").status_code == 200
    assert client.get("/api/no-such-thing").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    delta = (_value(text, "booking_http_requests_total", method="GET", route="/api/health", status="200")
             - _value(before, "booking_http_requests_total", method="GET", route="/api/health", status="200"))
    assert delta == 3
    assert (_value(text, "booking_http_requests_total", route="<unmatched>", status="404")
            - _value(before, "booking_http_requests_total", route="<unmatched>", status="404")) == 1
    hist = (_value(text, "booking_http_request_duration_seconds_count", method="GET", route="/api/health")
            - _value(before, "booking_http_request_duration_seconds_count", method="GET", route="/api/health"))
    assert hist == 3
    assert (_value(text, "booking_http_request_duration_seconds_bucket", method="GET", route="/api/health", le="+Inf")
            - _value(before, "booking_http_request_duration_seconds_bucket", method="GET", route="/api/health",
                     le="+Inf")) == 3
    assert "booking_db_pool_size" in text and "booking_db_pool_checked_out" in text
    assert 'booking_job_lag_seconds{job="outbox_relay"} 0.0' in text
    assert 'booking_job_lag_seconds{job="hold_expiry"} 0.0' in text


def test_route_templates_not_raw_paths_and_errors_counted():
    app = FastAPI()
    app.add_middleware(MetricsMiddleware)

    @app.get("/items/{item_id}")
    def item(item_id: int):
        return {"id": item_id}

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    before = metrics.render_latest()[0].decode()
    with TestClient(app, raise_server_exceptions=False) as c:
        for i in range(4):
            assert c.get(f"/items/{i}").status_code == 200
        assert c.get("/boom").status_code == 500
    text = metrics.render_latest()[0].decode()
    assert (_value(text, "booking_http_requests_total", route="/items/{item_id}", status="200")
            - _value(before, "booking_http_requests_total", route="/items/{item_id}", status="200")) == 4
    assert "/items/1" not in text
    assert (_value(text, "booking_http_errors_total", route="/boom")
            - _value(before, "booking_http_errors_total", route="/boom")) == 1
    assert (_value(text, "booking_http_requests_total", route="/boom", status="500")
            - _value(before, "booking_http_requests_total", route="/boom", status="500")) == 1


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_window_rate_p95_error_rate_and_expiry():
    clock = FakeClock()
    w = request_stats.RequestWindow(seconds=60, clock=clock)
    assert w.stats()["p95_ms"] is None and w.stats()["requests"] == 0
    clock.t += 60  # the window is full (process older than a minute)
    for i in range(100):  # 95 fast (10 ms) and 5 slow (2 s) requests, 2 of them errors
        clock.t += 0.3
        w.add(0.010 if i < 95 else 2.0, error=i in (10, 20))
    stats = w.stats()
    assert stats["requests"] == 100
    assert stats["requests_per_second"] == pytest.approx(100 / 60, rel=0.01)
    assert stats["error_rate"] == 0.02
    assert 8 <= stats["p95_ms"] <= 12.5  # within the 10 ms bucket
    for i in range(20):
        w.add(0.5, error=False)
    assert 400 <= w.stats()["p95_ms"] <= 2500
    clock.t += 61  # everything older than a minute is forgotten
    assert w.stats()["requests"] == 0 and w.stats()["error_rate"] == 0.0


def test_young_process_rate_uses_its_age():
    clock = FakeClock()
    w = request_stats.RequestWindow(seconds=60, clock=clock)
    clock.t += 10
    for _ in range(50):
        w.add(0.02, error=False)
    assert w.stats()["requests_per_second"] == 5.0


def test_pool_gauges_follow_checked_out_connections(pg_db):
    from booking_app import db

    engine = db.get_engine()
    base = metrics.pool_stats().checked_out
    with engine.connect(), engine.connect():
        stats = metrics.pool_stats()
        assert stats.checked_out == base + 2
        from booking_app.config import get_settings

        assert stats.size == get_settings().db_pool_size
        text = metrics.render_latest()[0].decode()
        assert _value(text, "booking_db_pool_checked_out") == base + 2
    assert metrics.pool_stats().checked_out == base


# ---------------------------------------------------------------------------------------
# The window of every process, through Redis
# ---------------------------------------------------------------------------------------

REDIS_TEST_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_client():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"Redis is not available on 127.0.0.1:6379: {exc}")
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:metrics:{uuid.uuid4().hex}"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def sharing_reset(monkeypatch):
    """The module's Redis sharing state starts and ends clean (no publisher left running)."""
    from booking_app.config import reset_settings_cache

    def reset() -> None:
        request_stats._stop_sharing()
        deadline = time.monotonic() + 5  # a publisher thread ends at its next turn
        while any(t.name == "metrics-window-publisher" and t.is_alive() for t in threading.enumerate()):
            assert time.monotonic() < deadline, "the publisher thread did not stop"
            time.sleep(0.02)
        monkeypatch.setattr(request_stats, "_redis_down_until", 0.0)
        monkeypatch.setattr(request_stats, "_redis_failing", False)

    reset()
    yield
    monkeypatch.delenv("REDIS_URL", raising=False)
    reset_settings_cache()
    reset()


def _full_windows(n: int, clock: FakeClock) -> list:
    """n windows whose process is older than a minute (rates divide by 60 s)."""
    windows = [request_stats.RequestWindow(seconds=60, clock=clock) for _ in range(n)]
    clock.t += 60
    return windows


def test_two_processes_windows_merge_to_the_sum(redis_client, prefix):
    clock = FakeClock()
    a_win, b_win, together = _full_windows(3, clock)
    # process A: 60 fast requests (8 ms), 1 error; process B: 30 at 15 ms and 10 slow ones
    # (900 ms), 3 errors. `together` is one window that saw all 100.
    load = {a_win: [(0.008, i == 0) for i in range(60)],
            b_win: [(0.015, False)] * 30 + [(0.9, i < 3) for i in range(10)]}
    for window, requests in load.items():
        for duration, error in requests:
            clock.t += 0.01
            window.add(duration, error)
            together.add(duration, error)
    a = request_stats.SharedWindow(a_win, redis_client, prefix=prefix, process_id="a")
    b = request_stats.SharedWindow(b_win, redis_client, prefix=prefix, process_id="b")
    assert a.stats()["processes"] == 1  # nothing published yet: A's own window only
    a.publish()
    b.publish()
    merged = a.stats()
    assert merged == b.stats()  # every process sees the same figures
    assert merged["processes"] == 2
    assert merged["requests"] == 100 == a_win.stats()["requests"] + b_win.stats()["requests"]
    assert merged["errors"] == 4 and merged["error_rate"] == 0.04
    assert merged["requests_per_second"] == pytest.approx(
        a_win.stats()["requests_per_second"] + b_win.stats()["requests_per_second"], abs=0.002)
    assert merged["requests_per_second"] == pytest.approx(100 / 60, abs=0.002)
    # the p95 of the summed histogram: that of one window having seen everything, in the
    # slow requests' bucket — neither process's own p95 is anywhere near it
    assert merged["p95_ms"] == together.stats()["p95_ms"]
    assert 700 <= merged["p95_ms"] <= 1150
    assert a_win.stats()["p95_ms"] < 10 and b_win.stats()["p95_ms"] > 700
    assert {k: v for k, v in merged.items() if k != "processes"} == {
        k: v for k, v in together.stats().items() if k != "processes"}


def test_a_process_that_stops_publishing_drops_out(redis_client, prefix):
    clock = FakeClock()
    a_win, b_win = _full_windows(2, clock)
    for _ in range(5):
        a_win.add(0.02, error=False)
    for _ in range(7):
        b_win.add(0.02, error=False)
    a = request_stats.SharedWindow(a_win, redis_client, prefix=prefix, process_id="a", ttl=0.3)
    b = request_stats.SharedWindow(b_win, redis_client, prefix=prefix, process_id="b", ttl=0.3)
    a.publish()
    b.publish()
    assert (a.stats()["processes"], a.stats()["requests"]) == (2, 12)
    time.sleep(0.5)  # B published nothing since: its key expired
    assert (a.stats()["processes"], a.stats()["requests"]) == (1, 5)
    assert redis_client.smembers(a.members_key) == {b"a"}  # B forgotten
    b.publish()  # back
    assert a.stats()["requests"] == 12
    b.withdraw()  # a clean shutdown leaves at once
    assert (a.stats()["processes"], a.stats()["requests"]) == (1, 5)


def test_malformed_or_foreign_windows_are_left_out(redis_client, prefix):
    clock = FakeClock()
    (a_win,) = _full_windows(1, clock)
    a_win.add(0.01, error=False)
    a = request_stats.SharedWindow(a_win, redis_client, prefix=prefix, process_id="a")
    good = {"v": 1, "requests": 2, "errors": 1, "span": 60, "buckets": [[3, 2]]}
    bad = {
        "text": "not json",
        "version": json.dumps({**good, "v": 99}),
        "counts": json.dumps({**good, "requests": 5}),  # buckets don't add up to the requests
        "errors": json.dumps({**good, "errors": 3}),
        "bucket": json.dumps({**good, "buckets": [[999, 2]]}),
        "span": json.dumps({**good, "span": 0}),
        "shape": json.dumps([1, 2, 3]),
    }
    for member, payload in {**bad, "good": json.dumps(good)}.items():
        redis_client.sadd(a.members_key, member)
        redis_client.set(a.key(member), payload, ex=30)
    stats = a.stats()
    assert (stats["processes"], stats["requests"], stats["errors"]) == (2, 3, 1)


def test_window_stats_merge_every_process_when_redis_url_is_set(redis_client, prefix, monkeypatch, sharing_reset):
    from tests.api.conftest import set_env

    monkeypatch.setattr(request_stats, "KEY_PREFIX", prefix)
    monkeypatch.setattr(request_stats, "PUBLISH_SECONDS", 0.05)
    # another process of the deployment, with 7 requests (2 errors) in its window
    clock = FakeClock()
    (other_win,) = _full_windows(1, clock)
    for i in range(7):
        other_win.add(0.03, error=i < 2)
    request_stats.SharedWindow(other_win, redis_client, prefix=prefix, process_id="other").publish()

    local_before = request_stats.window_stats()
    assert local_before["processes"] == 1  # no REDIS_URL: this process alone
    set_env(monkeypatch, REDIS_URL=REDIS_TEST_URL)
    for _ in range(3):
        metrics.observe_request(method="GET", route="/x", status=200, duration=0.01)
    shared = request_stats._shared
    assert shared is not None and shared.prefix == prefix

    def published() -> dict:
        raw = redis_client.get(shared.key(shared.process_id))
        return json.loads(raw) if raw else {"requests": -1}

    deadline = time.monotonic() + 3  # the publisher thread keeps writing this process's window
    while published()["requests"] < local_before["requests"] + 3:
        assert time.monotonic() < deadline, "this process's window was never published"
        time.sleep(0.02)
    local = request_stats.WINDOW.stats()
    stats = request_stats.window_stats()
    assert stats["processes"] == 2
    assert stats["requests"] == local["requests"] + 7
    assert stats["errors"] == local["errors"] + 2
    # without REDIS_URL again: this process only, and the publisher stops
    monkeypatch.delenv("REDIS_URL")
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    assert request_stats.window_stats()["processes"] == 1 and request_stats._shared is None


def test_redis_failures_fall_back_to_this_process_and_log_once(monkeypatch, sharing_reset, caplog):
    import logging

    from tests.api.conftest import set_env

    monkeypatch.setattr(request_stats, "PUBLISH_SECONDS", 0.05)
    set_env(monkeypatch, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    request_stats.WINDOW.clear()  # (earlier tests' requests would leave the one-minute window meanwhile)
    with caplog.at_level(logging.WARNING, logger="booking_app.services.request_stats"):
        for _ in range(3):  # requests never fail because of Redis
            metrics.observe_request(method="GET", route="/x", status=200, duration=0.01)
        started = time.monotonic()
        first = request_stats.window_stats()
        second = request_stats.window_stats()  # no new attempt for a while: answered at once
        assert time.monotonic() - started < 2
        time.sleep(0.3)  # the publisher keeps failing meanwhile
    assert first["processes"] == second["processes"] == 1
    assert first["requests"] == request_stats.WINDOW.stats()["requests"] == 3
    warnings = [r for r in caplog.records if r.name == "booking_app.services.request_stats" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis unavailable" in warnings[0].getMessage()


@pytest.mark.postgres
@pytest.mark.slow
def test_dashboard_of_one_process_counts_the_requests_of_both(pg_db, pg_database, tmp_path, redis_client):
    """Two `uvicorn booking_app.api:api` processes on one PostgreSQL and one Redis: requests
    spread over both, and the dashboard asked of either counts all of them."""
    import httpx

    from tests.api.conftest import make_account
    from tests.test_scaleout import ApiProcess, start_all

    import redis

    url = "redis://127.0.0.1:6379/12"  # a database of this test's own
    redis_db = redis.Redis.from_url(url, socket_timeout=2)

    def clean() -> None:
        keys = list(redis_db.scan_iter(match=f"{request_stats.KEY_PREFIX}:*"))
        if keys:
            redis_db.delete(*keys)

    clean()
    admin = make_account("admin")
    env = {"DATABASE_URL": pg_database, "REDIS_URL": url, "JOBS_ENABLED": "false", "RATE_LIMITS_ENABLED": "false"}
    procs = [ApiProcess(tmp_path, "A", env), ApiProcess(tmp_path, "B", env)]
    try:
        start_all(procs)
        a, b = procs
        headers = {"Authorization": f"Bearer {admin.token}"}
        with httpx.Client(timeout=30) as c:
            def system(p) -> dict:
                r = c.get(f"{p.base}/api/reports/dashboard", headers=headers)
                assert r.status_code == 200, r.text
                return r.json()["system"]

            time.sleep(2.5)  # both processes have published everything they served so far
            before = system(a)
            assert before["processes"] == 2, before
            for i in range(100):  # 40 through A, 60 through B
                assert c.get(f"{(a if i % 5 < 2 else b).base}/api/health").status_code == 200
            # A's window counts its own requests at once (the dashboard call before included),
            # B's once B has published again (within a second)
            polls, deadline = 0, time.monotonic() + 10
            while True:
                now = system(a)
                expected = before["requests"] + 1 + 100 + polls
                if now["requests"] == expected:
                    break
                assert now["requests"] < expected, (now, expected)
                assert time.monotonic() < deadline, (now, expected)
                polls += 1
                time.sleep(0.2)
            assert now["processes"] == 2 and now["error_rate"] == 0.0 and now["p95_ms"] is not None
            # B sees A's window as A last published it (each second): within a few seconds
            # B counts at least what A counted (on a busy machine the polls above can make
            # A's unpublished tail longer than any fixed margin)
            deadline = time.monotonic() + 10
            while True:
                other = system(b)
                assert other["processes"] == 2, other
                if other["requests"] >= now["requests"]:
                    break
                assert time.monotonic() < deadline, (other, now)
                time.sleep(0.3)
    finally:
        for p in procs:
            p.stop()
        clean()
        redis_db.close()
