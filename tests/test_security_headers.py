"""Security headers, CSP script hashes, API docs from package files, CORS and the event socket's
origin check (api/security.py, api/docs.py), on the FastAPI app composed the way Reflex mounts
it: the API with the compiled frontend (precompressed static files) and /_event inside."""
from __future__ import annotations

import base64
import gzip
import hashlib
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import assert_problem, set_env
from tests.conftest import ROOT

INLINE_1 = "window.__reactRouterContext = {\"basename\":\"/\"};"
INLINE_2 = "\nimport \"/assets/manifest-1.js\";\nimport * as route0 from \"/assets/root-1.js\";\n"
PAGE = (f"<!DOCTYPE html><html><head><script src=\"/assets/entry.js\" type=\"module\"></script>"
        f"<script>{INLINE_1}</script></head><body><div id=\"root\"></div>"
        f"<script type=\"module\">{INLINE_2}</script></body></html>")
SECURITY_ENV = ("PUBLIC_URL", "CORS_ALLOWED_ORIGINS", "FRAME_ANCESTORS", "REFLEX_FRONTEND_PORT", "PORT")


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture
def env(monkeypatch):
    """Settings from a clean environment for these variables; `env(NAME=value)` sets some."""
    for var in SECURITY_ENV:
        monkeypatch.delenv(var, raising=False)
    set_env(monkeypatch)

    def _set(**values: str):
        set_env(monkeypatch, **values)

    yield _set
    from booking_app.config import reset_settings_cache

    reset_settings_cache()


@pytest.fixture
def frontend(tmp_path):
    """A compiled-frontend folder like Reflex's: pages (+ .gz sidecars) and a hashed asset."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "index.html.gz").write_bytes(gzip.compress(PAGE.encode()))
    (tmp_path / "404.html").write_text(PAGE)
    (tmp_path / "assets" / "entry-abc123.js").write_text("console.log('hi');\n")
    return tmp_path


def _app(frontend_dir):
    """create_api() with Reflex's app mounted at "" (as App.__call__ does): the event socket at
    /_event (here an echo that accepts) and the frontend's PrecompressedStaticFiles."""
    from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles

    from booking_app.api import create_api

    async def event_socket(websocket):
        await websocket.accept()
        await websocket.send_text("connected")
        await websocket.close()

    inner = Starlette(routes=[
        WebSocketRoute("/_event", event_socket),
        Mount("/", PrecompressedStaticFiles(directory=frontend_dir, html=True, encodings=["gzip"])),
    ])
    api = create_api()
    api.mount("", inner)
    return TestClient(api, base_url="http://booking.test")


def _common(headers) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in headers["permissions-policy"] and "geolocation=()" in headers["permissions-policy"]
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "content-security-policy" in headers


def _directives(csp: str) -> dict[str, str]:
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2] for d in csp.split(";") if d.strip()}


# ---- headers --------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_page_csp_hashes_the_pages_own_inline_scripts(env, frontend, encoding):
    env()
    with _app(frontend) as client:
        response = client.get("/", headers={"Accept-Encoding": encoding})
    assert response.status_code == 200 and response.text == PAGE
    assert response.headers.get("content-encoding", "identity") == encoding  # the .gz sidecar was sent
    _common(response.headers)
    csp = _directives(response.headers["content-security-policy"])
    assert csp["script-src"].split() == ["'self'", _sha(INLINE_1), _sha(INLINE_2)]
    assert "unsafe-eval" not in response.headers["content-security-policy"]
    assert csp["style-src"] == "'self' 'unsafe-inline'"
    assert csp["connect-src"] == "'self' ws://booking.test wss://booking.test"
    assert csp["frame-ancestors"] == "'none'" and response.headers["x-frame-options"] == "DENY"
    assert csp["object-src"] == "'none'" and csp["default-src"] == "'self'"
    assert "strict-transport-security" not in response.headers


def test_reflex_404_page_and_a_304_keep_their_csp_right(env, frontend):
    env()
    with _app(frontend) as client:
        missing = client.get("/no/such/page")
        first = client.get("/assets/entry-abc123.js")
        again = client.get("/", headers={"If-None-Match": client.get("/").headers["etag"]})
    assert missing.status_code == 404
    assert _sha(INLINE_1) in missing.headers["content-security-policy"]
    assert again.status_code == 304
    # a 304 must not replace the cached page's CSP (with its hashes) by one without them
    assert "content-security-policy" not in again.headers and again.headers["x-content-type-options"] == "nosniff"
    assert first.status_code == 200


def test_asset_api_json_and_problem_404_carry_the_headers(env, frontend, sqlite_db):
    env()
    with _app(frontend) as client:
        asset = client.get("/assets/entry-abc123.js")
        health = client.get("/api/health")
        missing = client.get("/api/services/987654")
    for response in (asset, health, missing):
        _common(response.headers)
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    assert asset.status_code == 200 and asset.text.startswith("console.log")
    assert health.status_code == 200 and health.headers["content-type"].startswith("application/json")
    assert_problem(missing, 404)


def test_standalone_api_has_them_too(env):
    env()
    from booking_app.api import create_api

    with TestClient(create_api()) as client:
        response = client.get("/api/health")
    _common(response.headers)


def test_hsts_only_when_public_url_is_https(env, frontend):
    env()
    with _app(frontend) as client:
        assert "strict-transport-security" not in client.get("/api/health").headers
    env(PUBLIC_URL="http://booking.example.com")
    with _app(frontend) as client:
        assert "strict-transport-security" not in client.get("/api/health").headers
    env(PUBLIC_URL="https://booking.example.com/")
    with _app(frontend) as client:
        page = client.get("/")
        assert client.get("/api/health").headers["strict-transport-security"] == "max-age=31536000"
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    # the socket is reached at PUBLIC_URL's host, whatever Host the proxy passed on
    assert _directives(page.headers["content-security-policy"])["connect-src"] == "'self' wss://booking.example.com"


def test_frame_ancestors_setting(env, frontend):
    env(FRAME_ANCESTORS="https://partner.example, https://*.shop.example:8443")
    with _app(frontend) as client:
        page = client.get("/")
        api = client.get("/api/health")
    assert _directives(page.headers["content-security-policy"])["frame-ancestors"] == (
        "https://partner.example https://*.shop.example:8443")
    assert "frame-ancestors https://partner.example https://*.shop.example:8443" in api.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers


@pytest.mark.parametrize("bad", ["https://x.example; script-src *", "partner.example", "'self'",
                                 "https://x.example/path"])
def test_origin_settings_refuse_anything_but_origins(env, monkeypatch, bad):
    from pydantic import ValidationError

    from booking_app.config import Settings

    for var in ("FRAME_ANCESTORS", "CORS_ALLOWED_ORIGINS", "PUBLIC_URL"):
        monkeypatch.setenv(var, bad)
        with pytest.raises(ValidationError):
            Settings()
        monkeypatch.delenv(var)


def test_public_url_unset_follows_the_served_port(env, monkeypatch):
    from booking_app.config import get_settings

    env()
    assert get_settings().public_url == "http://localhost:3000" and not get_settings().public_url_is_set
    monkeypatch.setenv("PORT", "8080")
    assert get_settings().public_url == "http://localhost:8080"  # read when used, not cached
    monkeypatch.setenv("REFLEX_FRONTEND_PORT", "8081")  # what `reflex run --frontend-port` sets
    assert get_settings().public_url == "http://localhost:8081"
    env(PUBLIC_URL="https://Booking.Example.com:443/")
    assert get_settings().public_url == "https://booking.example.com" and get_settings().public_url_is_set
    env(PUBLIC_URL="")
    assert not get_settings().public_url_is_set


# ---- API docs -------------------------------------------------------------------------------

def test_api_docs_from_package_files_under_the_csp(env, frontend):
    env()
    with _app(frontend) as client:
        page = client.get("/api/docs")
        bundle = client.get("/api/docs/static/swagger-ui-bundle.js")
        css = client.get("/api/docs/static/swagger-ui.css")
        init = client.get("/api/docs/swagger-init.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    _common(page.headers)
    csp = _directives(page.headers["content-security-policy"])
    assert csp["script-src"] == "'self'"  # no inline script on the docs page
    assert "<script>" not in page.text and "cdn" not in page.text.lower() and "https://" not in page.text
    assert 'src="/api/docs/static/swagger-ui-bundle.js"' in page.text
    assert 'src="/api/docs/swagger-init.js"' in page.text and 'data-openapi-url="/api/openapi.json"' in page.text
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text[:2000]
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert init.status_code == 200 and "SwaggerUIBundle(" in init.text
    for response in (bundle, css, init):
        _common(response.headers)


# ---- CORS -----------------------------------------------------------------------------------

def _preflight(client, origin: str, path: str = "/api/bookings"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "authorization,content-type"})


def test_cors_preflight_from_a_foreign_origin_is_refused(env, frontend):
    env(PUBLIC_URL="https://booking.example.com")
    with _app(frontend) as client:
        response = _preflight(client, "https://evil.example")
        simple = client.get("/api/health", headers={"Origin": "https://evil.example", "Cookie": "a=b"})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-credentials" not in simple.headers


def test_cors_without_public_url_allows_no_other_origin(env, frontend):
    env()
    with _app(frontend) as client:
        for origin in ("https://evil.example", "http://localhost:3000", "http://booking.test.evil.example"):
            assert "access-control-allow-origin" not in _preflight(client, origin).headers


def test_cors_preflight_from_public_url_and_allowed_origins(env, frontend):
    env(PUBLIC_URL="https://booking.example.com", CORS_ALLOWED_ORIGINS="https://app.partner.example")
    with _app(frontend) as client:
        for origin in ("https://booking.example.com", "https://app.partner.example"):
            response = _preflight(client, origin)
            assert response.status_code == 200, response.text
            assert response.headers["access-control-allow-origin"] == origin
            assert response.headers["access-control-allow-credentials"] == "true"
            assert "POST" in response.headers["access-control-allow-methods"]
            simple = client.get("/api/health", headers={"Origin": origin})
            assert simple.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-origin" not in _preflight(client, "https://partner.example").headers


def test_rxconfig_gives_reflex_the_same_origins(env):
    """Reflex's own CORS layers and socket.io server read rxconfig: never "*"."""
    code = "import rxconfig; print(list(rxconfig.config.cors_allowed_origins))"
    base = {k: v for k, v in __import__("os").environ.items() if k not in SECURITY_ENV}
    unset = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True,
                           timeout=120)
    assert unset.returncode == 0, unset.stderr
    assert unset.stdout.strip().splitlines()[-1] == "[]"
    listed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**base, "PUBLIC_URL": "https://booking.example.com",
                                 "CORS_ALLOWED_ORIGINS": "https://app.partner.example"})
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().splitlines()[-1] == "['https://booking.example.com', 'https://app.partner.example']"


# ---- the event socket -----------------------------------------------------------------------

def _socket(client, origin: str | None) -> str:
    headers = {"Origin": origin} if origin else {}
    with client.websocket_connect("ws://booking.test/_event", headers=headers) as ws:
        return ws.receive_text()


def test_event_socket_refuses_other_origins_without_public_url(env, frontend):
    env()
    with _app(frontend) as client:
        assert _socket(client, "http://booking.test") == "connected"  # same origin as Host
        assert _socket(client, None) == "connected"  # not a browser page
        for origin in ("https://evil.example", "http://booking.test.evil.example", "null"):
            with pytest.raises(WebSocketDisconnect) as refused:
                _socket(client, origin)
            assert refused.value.code == 1008
        polling = client.get("/_event/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"})
    assert polling.status_code == 403
    _common(polling.headers)


def test_event_socket_with_public_url_accepts_it_and_allowed_origins_only(env, frontend):
    env(PUBLIC_URL="https://booking.example.com", CORS_ALLOWED_ORIGINS="http://localhost:5173")
    with _app(frontend) as client:
        assert _socket(client, "https://booking.example.com") == "connected"
        assert _socket(client, "http://localhost:5173") == "connected"
        # the Host alone is no longer enough once PUBLIC_URL says where users are
        with pytest.raises(WebSocketDisconnect):
            _socket(client, "http://booking.test")
        with pytest.raises(WebSocketDisconnect):
            _socket(client, "https://evil.example")


def test_origin_allowed_compares_origin_with_host_like_a_browser(env):
    from booking_app.api.security import origin_allowed

    env()
    assert origin_allowed("https://Booking.Example.com", "booking.example.com")
    assert origin_allowed("https://booking.example.com", "booking.example.com:443")
    assert origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not origin_allowed("http://127.0.0.1:8081", "127.0.0.1:8080")
    assert not origin_allowed("http://127.0.0.1", "127.0.0.1:8080")
    assert not origin_allowed("https://evil.example", None)


def test_dev_frontend_port_may_open_the_socket_only_without_public_url(env, monkeypatch):
    """`reflex run` in development serves pages on the frontend port and the socket on the
    backend port: that one local origin is accepted while PUBLIC_URL is unset."""
    from booking_app.api.security import origin_allowed

    env(REFLEX_FRONTEND_PORT="3000")
    assert origin_allowed("http://localhost:3000", "localhost:8000")
    assert not origin_allowed("http://localhost:3001", "localhost:8000")
    env(REFLEX_FRONTEND_PORT="3000", PUBLIC_URL="https://booking.example.com")
    assert not origin_allowed("http://localhost:3000", "localhost:8000")


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_page_sent_by_pathsend_is_hashed_too(env, frontend, encoding):
    """Granian (the production server) sends files with the http.response.pathsend extension:
    no body messages pass through the middleware, the file is read for its hashes instead."""
    import asyncio

    env()
    from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles

    from booking_app.api.security import SecurityMiddleware

    app = SecurityMiddleware(PrecompressedStaticFiles(directory=frontend, html=True, encodings=["gzip"]))
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
             "root_path": "", "scheme": "http", "http_version": "1.1", "server": ("booking.test", 80),
             "headers": [(b"host", b"booking.test"), (b"accept-encoding", encoding.encode())],
             "extensions": {"http.response.pathsend": {}}}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    assert sent[1]["path"].endswith(".gz" if encoding == "gzip" else "index.html")
    assert _directives(headers["content-security-policy"])["script-src"].split() == [
        "'self'", _sha(INLINE_1), _sha(INLINE_2)]


def test_ui_sends_no_script_for_the_page_to_eval():
    """The CSP has no 'unsafe-eval': Reflex's call_script/run_script/call_function (with a
    string)/scroll_to/set_clipboard etc. eval their code in the page and would be blocked.
    The UI asks the browser through ui/browser_bridge (state-driven, bundled) instead."""
    import re

    evaluating = re.compile(r"\brx\.(call_script|run_script|call_function|scroll_to|set_clipboard|window_alert|"
                            r"console_log)\b|\bcall_script\(")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "booking_app").rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1) if evaluating.search(line)]
    assert offenders == []


def test_vary_names_each_field_once():
    """Reflex's CORS layers and ours each add `Vary: Origin`; the response names it once."""
    from booking_app.api.security import merge_vary

    headers = [(b"content-type", b"text/html"), (b"vary", b"Accept-Encoding, Origin"), (b"Vary", b"origin"),
               (b"vary", b"Origin, Cookie")]
    assert merge_vary(headers) == [(b"content-type", b"text/html"), (b"vary", b"Accept-Encoding, Origin, Cookie")]
    assert merge_vary([(b"x", b"1")]) == [(b"x", b"1")]
