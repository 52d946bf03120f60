"""OpenTelemetry traces (booking_app/telemetry.py): on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

A stub OTLP/HTTP collector (a tiny HTTP server recording POST /v1/traces, decoded with the
opentelemetry-proto messages) receives the spans of a request, of its database statements
and of a background job run; the request's id is on them. Unset, nothing of OpenTelemetry is
even imported and no middleware or engine listener is added.
"""
from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from booking_app import telemetry
from tests.api.conftest import set_env


class _Collector(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[dict]:
        """Every span received: name, kind, ids, attributes (as plain values), service name."""
        out = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attrs = {}
                        for a in span.attributes:
                            kind = a.value.WhichOneof("value")
                            attrs[a.key] = getattr(a.value, kind) if kind else None
                        out.append({"name": span.name, "kind": span.kind, "trace": span.trace_id.hex(),
                                    "id": span.span_id.hex(), "parent": span.parent_span_id.hex(),
                                    "attrs": attrs, "service": resource.get("service.name")})
        return out


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.paths.append(self.path)
        if self.path == "/v1/traces":
            message = ExportTraceServiceRequest()
            message.ParseFromString(body)
            self.server.requests.append(message)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def collector():
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def traced_client(monkeypatch, db_url, collector):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    set_env(monkeypatch, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_SERVICE_NAME="booking-test")
    try:
        with TestClient(create_api(), raise_server_exceptions=False) as client:
            yield client
    finally:
        telemetry.shutdown()  # the rest of the suite runs untraced


def _descends(span: dict, ancestor: dict, by_id: dict[str, dict]) -> bool:
    while span["parent"]:
        if span["parent"] == ancestor["id"]:
            return True
        span = by_id.get(span["parent"]) or {"parent": ""}
    return False


def test_request_statements_and_job_runs_are_traced_with_the_request_id(traced_client, collector, db_url):
    from booking_app.jobs import scheduler

    assert telemetry.tracing
    response = traced_client.get("/api/health", headers={"X-Request-ID": "rid-traced"})
    assert response.status_code == 200
    missing = traced_client.get("/api/bookings/42", headers={"X-Request-ID": "rid-401"})
    assert missing.status_code == 401
    spec = next(s for s in scheduler.JOBS if s.name == "hold_expiry")
    scheduler.run_job_once(spec)
    assert telemetry.flush()

    assert set(collector.paths) == {"/v1/traces"}
    spans = collector.spans()
    by_id = {s["id"]: s for s in spans}
    assert {s["service"] for s in spans} == {"booking-test"}

    request = next(s for s in spans if s["name"] == "GET /api/health")
    assert request["kind"] == 2  # SERVER
    assert request["attrs"]["booking.request_id"] == "rid-traced"
    assert request["attrs"]["http.route"] == "/api/health"
    assert request["attrs"]["http.response.status_code"] == 200
    statements = [s for s in spans if "db.query.text" in s["attrs"] and _descends(s, request, by_id)]
    assert statements, spans
    select = next(s for s in statements if "SELECT 1" in s["attrs"]["db.query.text"])
    assert select["trace"] == request["trace"] and select["name"] == "SELECT" and select["kind"] == 3  # CLIENT
    assert select["attrs"]["db.system.name"] in ("sqlite", "postgresql")
    assert select["attrs"]["booking.request_id"] == "rid-traced"
    if db_url.startswith("postgresql"):  # the raw psycopg block is spanned too
        assert any(s["name"] == "psycopg autocommit" and _descends(s, request, by_id) for s in spans)

    other = next(s for s in spans if s["name"] == "GET /api/bookings/{id}")
    assert other["attrs"]["booking.request_id"] == "rid-401" and other["attrs"]["http.response.status_code"] == 401
    assert other["trace"] != request["trace"]

    job = next(s for s in spans if s["name"] == "job hold_expiry")
    assert job["attrs"]["booking.job"] == "hold_expiry" and not job["parent"]
    assert any("db.query.text" in s["attrs"] and _descends(s, job, by_id) for s in spans)
    assert "booking.request_id" not in job["attrs"]
    # values never reach a span: statements are the parameterised SQL
    assert all("42" not in (s["attrs"].get("db.query.text") or "") for s in statements)


def test_unset_endpoint_loads_and_wraps_nothing():
    """In a fresh process without the variable: no OpenTelemetry SDK module imported, no trace
    middleware on the app, no SQLAlchemy listener, and a request is served as before."""
    code = """
import json, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from fastapi.testclient import TestClient
from booking_app import telemetry
from booking_app.api import api
from booking_app.api.requestlog import TraceMiddleware
status = TestClient(api).get("/api/health").status_code
print(json.dumps({
    "status": status,
    "tracing": telemetry.tracing,
    "otel_modules": sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))),
    "middleware": any(m.cls is TraceMiddleware for m in api.user_middleware),
    "listener": event.contains(Engine, "before_cursor_execute", telemetry._before_statement),
}))
"""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(DATABASE_URL="sqlite:///:memory:", LOG_LEVEL="WARNING")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                            check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"status": 200, "tracing": False, "otel_modules": [], "middleware": False, "listener": False}
