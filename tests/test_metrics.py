"""Prometheus metrics, the request middleware and the one-minute dashboard window."""
from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from booking_app.api.metrics import MetricsMiddleware
from booking_app.services import metrics


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
    w = metrics.RequestWindow(seconds=60, clock=clock)
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
    w = metrics.RequestWindow(seconds=60, clock=clock)
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
