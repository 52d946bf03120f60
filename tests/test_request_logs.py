"""Access logs and request ids (api/requestlog.py, booking_app/logs.py, api/errors.problem).

One JSON line per request with the route template, status, duration and user id — and no
token, email or password even when the request carried them; X-Request-ID kept when sane,
replaced when hostile, echoed on every response and in every problem+json body; the log
lines written while a request is handled (also in a worker thread, also for a 500) name it.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from booking_app import db
from booking_app.logs import _OurHandler
from tests.api.conftest import PASSWORD, assert_problem, fast_hash, make_account, set_env  # noqa: F401 - a fixture


@pytest.fixture
def logged(monkeypatch, db_url, fast_hash):
    """(client, lines()): an API client with LOG_FORMAT=json, and the JSON lines it logged so far."""
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    set_env(monkeypatch, LOG_FORMAT="json", LOG_LEVEL="INFO", RATE_LIMITS_ENABLED="false")
    app = create_api()  # configures logging: our handler on the root logger
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, _OurHandler))
    buffer = io.StringIO()
    handler.setStream(buffer)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, lines, buffer, app
    logging.getLogger().removeHandler(handler)


def _access(lines) -> list[dict]:
    return [line for line in lines() if line.get("kind") == "access"]


def test_one_json_access_line_per_request_with_template_status_duration_and_user(logged):
    client, lines, _, _ = logged
    account = make_account("customer")
    before = len(_access(lines))
    response = client.get("/api/bookings/123456", headers=account.headers)
    assert_problem(response, 404)
    new = _access(lines)[before:]
    assert len(new) == 1, new
    line = new[0]
    assert line["method"] == "GET" and line["route"] == "/api/bookings/{id}" and line["status"] == 404
    assert line["user_id"] == account.id
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["level"] == "INFO" and line["logger"] == "booking_app.access" and line["time"].endswith("Z")
    assert "123456" not in json.dumps(line)  # the template, not the raw path

    client.get("/api/health")
    guest = _access(lines)[-1]
    assert guest["route"] == "/api/health" and guest["status"] == 200 and "user_id" not in guest


def test_no_token_email_or_password_in_any_line(logged):
    client, lines, _, _ = logged
    account = make_account("customer")
    login = client.post("/api/users/login", json={"username": account.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    issued = login.json()["access_token"]
    client.post("/api/users/login", json={"username": account.email, "password": "wrong-" + PASSWORD})
    client.get("/api/bookings/1?token=guest-manage-secret-123", headers={"Authorization": f"Bearer {issued}"})
    client.get("/api/calendar/feed-secret-456.ics")
    client.get("/api/nowhere/feed-secret-789?token=query-secret-000&email=" + account.email)
    # every line the server wrote (the test's own HTTP client logs the URLs it requested)
    text = "\n".join(json.dumps(line) for line in lines() if not line["logger"].startswith("httpx"))
    assert text.count('"kind": "access"') >= 5
    for secret in (issued, account.token, PASSWORD, account.email, account.username, "guest-manage-secret-123",
                   "feed-secret-456", "feed-secret-789", "query-secret-000"):
        assert secret not in text, secret
    routes = [line["route"] for line in _access(lines)[-5:]]
    assert routes == ["/api/users/login", "/api/users/login", "/api/bookings/{id}", "/api/calendar/{token}.ics",
                      "<unmatched>"]


def test_request_id_round_trips_and_problem_bodies_carry_it(logged):
    client, lines, _, _ = logged
    response = client.get("/api/health", headers={"X-Request-ID": "edge-proxy.42:abc_DEF"})
    assert response.headers["x-request-id"] == "edge-proxy.42:abc_DEF"
    assert _access(lines)[-1]["request_id"] == "edge-proxy.42:abc_DEF"

    fresh = client.get("/api/health")
    generated = fresh.headers["x-request-id"]
    assert len(generated) == 32 and generated != client.get("/api/health").headers["x-request-id"]

    for hostile in ("x" * 10_000, "has space", 'quote"d', "<script>", "é"):
        r = client.get("/api/bookings/1", headers={"X-Request-ID": hostile.encode()})
        body = assert_problem(r, 401)
        assert r.headers["x-request-id"] != hostile and len(r.headers["x-request-id"]) == 32
        assert body["request_id"] == r.headers["x-request-id"]

    invalid = client.post("/api/bookings", json={"service_id": "nope"}, headers={"X-Request-ID": "rid-422"})
    assert assert_problem(invalid, 422)["request_id"] == "rid-422"
    missing = client.get("/api/no-such-thing", headers={"X-Request-ID": "rid-404"})
    assert assert_problem(missing, 404)["request_id"] == "rid-404"
    assert missing.headers.get_list("x-request-id") == ["rid-404"]  # once, not twice


def test_crlf_request_id_is_replaced_at_the_asgi_level(logged):
    """A header with CR/LF can't be sent through an HTTP client; drive the ASGI app directly."""
    _, lines, _, app = logged
    messages: list[dict] = []

    async def call() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/api/health", "raw_path": b"/api/health", "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"test"), (b"x-request-id", b"abc\r\nSet-Cookie: x=1")],
                 "client": ("127.0.0.1", 1), "server": ("test", 80), "state": {}}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            messages.append(message)

        await app(scope, receive, send)

    asyncio.run(call())
    start = next(m for m in messages if m["type"] == "http.response.start")
    ids = [value for key, value in start["headers"] if key == b"x-request-id"]
    assert len(ids) == 1 and b"\r" not in ids[0] and b"\n" not in ids[0] and len(ids[0]) == 32
    assert _access(lines)[-1]["request_id"] == ids[0].decode()


def test_lines_written_while_handling_a_request_carry_its_id(logged, monkeypatch):
    client, lines, _, _ = logged
    ping = db.ping

    def noisy_ping():  # runs in a worker thread (run_in_threadpool)
        logging.getLogger("booking_app.db").warning("pinging the database")
        return ping()

    monkeypatch.setattr(db, "ping", noisy_ping)
    client.get("/api/health", headers={"X-Request-ID": "rid-thread"})
    inside = [line for line in lines() if line["message"] == "pinging the database"]
    assert inside and inside[-1]["request_id"] == "rid-thread" and inside[-1]["level"] == "WARNING"

    def broken_ping():
        raise RuntimeError("boom")

    monkeypatch.setattr(db, "ping", broken_ping)
    response = client.get("/api/health", headers={"X-Request-ID": "rid-500"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "rid-500" and response.headers.get_list("x-request-id") == ["rid-500"]
    errors = [line for line in lines() if line["level"] == "ERROR" and "unhandled" in line["message"]]
    assert errors and errors[-1]["request_id"] == "rid-500" and "RuntimeError" in errors[-1]["exception"]
    assert _access(lines)[-1]["status"] == 500 and _access(lines)[-1]["request_id"] == "rid-500"

    logging.getLogger("booking_app.test").warning("outside any request")
    assert "request_id" not in lines()[-1]


def test_log_format_defaults_json_in_production_text_elsewhere(monkeypatch):
    from booking_app.config import Settings

    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert Settings(environment="development").log_format_resolved == "text"
    assert Settings(environment="production", secret_key="x" * 40).log_format_resolved == "json"
    assert Settings(environment="production", secret_key="x" * 40, log_format="text").log_format_resolved == "text"


def test_text_format_names_the_request_id(monkeypatch, db_url):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    set_env(monkeypatch, LOG_FORMAT="text", LOG_LEVEL="INFO")
    app = create_api()
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, _OurHandler))
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        with TestClient(app) as client:
            client.get("/api/health", headers={"X-Request-ID": "rid-text"})
    finally:
        logging.getLogger().removeHandler(handler)
    line = next(line for line in buffer.getvalue().splitlines() if "booking_app.access" in line)
    assert "[rid-text]" in line and "GET /api/health 200" in line and not line.startswith("{")


def test_pages_files_and_the_event_socket_of_the_ui_on_the_same_port_are_logged(logged):
    """Mounted behind the API as Reflex mounts its backend (api_transformer): a page or file is
    one `<web>` line (never its raw path), the event socket one WS line at its handshake, with
    the request id in the accept's headers."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, WebSocketRoute

    _, lines, _, app = logged

    async def event_socket(websocket):
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    async def files(scope, receive, send):
        await HTMLResponse("<html></html>")(scope, receive, send)

    app.mount("", Starlette(routes=[WebSocketRoute("/_event", event_socket), Mount("/", files)]))
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        page = client.get("/manage/secret-page-token-1?token=secret-query-2", headers={"X-Request-ID": "rid-page"})
        assert page.status_code == 200 and page.headers["x-request-id"] == "rid-page"
        with client.websocket_connect("/_event", headers={"X-Request-ID": "rid-ws"}) as ws:
            assert ws.receive_text() == "hello"
    access = _access(lines)
    web = next(line for line in access if line["request_id"] == "rid-page")
    assert web["route"] == "<web>" and web["status"] == 200 and web["method"] == "GET"
    socket = [line for line in access if line["request_id"] == "rid-ws"]
    assert len(socket) == 1 and socket[0]["method"] == "WS" and socket[0]["route"] == "/_event"
    assert socket[0]["status"] == 101
    text = "\n".join(json.dumps(line) for line in lines() if not line["logger"].startswith("httpx"))
    assert "secret-page-token-1" not in text and "secret-query-2" not in text
