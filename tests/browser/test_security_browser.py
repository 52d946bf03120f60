"""Browser hardening on the real `reflex run --env prod` server: the security headers on a page
and an /assets file, pages (and the API docs) that render and work under the CSP without a
single violation, and the event socket refusing pages of other origins."""
from __future__ import annotations

import re
import socket
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import goto

pytestmark = pytest.mark.browser

#: records every CSP violation the page reports (init scripts run before the page's own)
LISTEN = """window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || '')));"""


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"}), timeout=15) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def _assert_headers(headers: dict[str, str]) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in headers["permissions-policy"]
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-eval" not in headers["content-security-policy"]


def test_page_and_asset_carry_the_headers(live_server):
    status, headers, body = _get(live_server + "/")
    assert status == 200
    _assert_headers(headers)
    script_src = re.search(r"script-src ([^;]+)", headers["content-security-policy"]).group(1).split()
    assert script_src[0] == "'self'" and len(script_src) > 1 and all(s.startswith("'sha256-") for s in script_src[1:])
    assert "strict-transport-security" not in headers  # plain http here
    html = body if headers.get("content-encoding") != "gzip" else __import__("gzip").decompress(body)
    # a script of the page: in a src/href, or named by the start-up script that loads the app
    # after the first paint (api/prerender.py)
    asset = re.search(rb'"(/assets/[^"]+\.js)"', html)
    assert asset, "no /assets script on the page"
    status, asset_headers, _ = _get(live_server + asset.group(1).decode())
    assert status == 200
    _assert_headers(asset_headers)
    assert asset_headers["content-security-policy"].startswith("default-src 'none'")


def _violations(page: Page) -> list[str]:
    found = page.evaluate("window.__csp || []")
    found += [e for e in page.console_errors if "Content Security Policy" in e or "EvalError" in e]
    return found


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_home_and_a_bookable_page_work_under_the_csp(page, size):
    page.context.add_init_script(LISTEN)
    goto(page, "/")
    expect(page.get_by_test_id("home-title")).to_be_visible()
    page.get_by_test_id("search-input").fill("pottery")
    page.get_by_test_id("search-submit").click()  # the event socket round trip
    page.wait_for_url("**/search?q=pottery")
    card = page.get_by_test_id("result-card").filter(has_text="Pottery workshop")
    card.click()
    expect(page.get_by_test_id("bookable-name")).to_have_text("Pottery workshop")
    slot = page.get_by_test_id("slot").first
    expect(slot).to_be_visible()
    slot.click()
    expect(page.get_by_test_id("continue")).to_be_visible()
    page.reload()  # served again (a 304 keeps the page's CSP); hydrates again
    page.wait_for_selector("[data-testid=app-root][data-ready=true]")
    expect(page.get_by_test_id("bookable-name")).to_have_text("Pottery workshop")
    assert _violations(page) == []
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_api_docs_render_from_bundled_files_under_the_csp(page, size):
    page.context.add_init_script(LISTEN)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Booking platform API")
    expect(page.locator(".opblock").first).to_be_visible()
    host = urllib.parse.urlsplit(page.url).netloc
    assert all(urllib.parse.urlsplit(u).netloc == host for u in requested if u.startswith("http")), requested
    assert _violations(page) == []
    assert page.console_errors == []


def _socket_handshake(base_url: str, origin: str | None) -> int:
    """Status of a websocket upgrade of the Reflex event socket (101 = accepted)."""
    parts = urllib.parse.urlsplit(base_url)
    lines = [f"GET /_event/?EIO=4&transport=websocket HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = conn.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_event_socket_refuses_a_foreign_origin(live_server):
    assert _socket_handshake(live_server, live_server) == 101  # the page's own origin
    assert _socket_handshake(live_server, "https://evil.example") == 403
    assert _socket_handshake(live_server, "http://127.0.0.1.evil.example") == 403


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_a_failed_session_hand_off_is_reported_to_the_form(page, size):
    """The bridge (ui/browser_bridge) runs the sign-in hand-off without eval; when the trade
    fails (here the answer is forced to 400) the sign-in form hears it and says so."""
    from booking_app.i18n import translate
    from booking_app.services.browser_sessions import HANDOFF_INVALID
    from tests.browser.helpers import sign_up, unique_user

    user = unique_user()
    sign_up(page, user)
    page.context.clear_cookies()
    page.context.add_init_script(LISTEN)
    page.route("**/api/browser-session", lambda route: route.fulfill(status=400, body="{}"))
    goto(page, "/sign-in")
    page.fill("#field-identifier", user["username"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("form-error")).to_have_text(translate(HANDOFF_INVALID, "en"))
    expect(page.get_by_test_id("sign-in-submit")).to_be_enabled()
    assert "/sign-in" in page.url
    assert _violations(page) == []
