"""Sign-in throttling in the web UI, behind a trusted proxy (issue 20, points 4 and 5).

Its own `reflex run --env prod` (the shared one runs with RATE_LIMITS_ENABLED=false), built
in the session's scratch copy of the tree (conftest.shared_scratch_tree), with
TRUSTED_PROXIES=127.0.0.1: the browser stands in for the proxy by sending X-Forwarded-For with every request, the event socket's handshake
included. Failures of one forwarded address make that client wait — told inline in the
page's language — while another user signs in from the same address and the victim from
another one.
"""
from __future__ import annotations

import json
import sqlite3
import urllib.request

import pytest
from playwright.sync_api import expect

from bench._common import start_reflex, stop_process_group, venv_python
from booking_app.i18n import translate
from booking_app.services.auth import LOGIN_FAILED
from booking_app.services.ratelimit import WAIT_MINUTES
from tests.browser.conftest import START_TIMEOUT, _server_env
from tests.browser.helpers import goto, unique_user
from tests.conftest import free_port

pytestmark = pytest.mark.browser

ATTACKER = "198.51.100.9"


@pytest.fixture(scope="module")
def throttled_server(tmp_path_factory, shared_scratch_tree):
    import subprocess

    work = tmp_path_factory.mktemp("throttled-ui")
    tree = shared_scratch_tree
    db_path = work / "throttled.db"
    env = _server_env(f"sqlite:///{db_path}")
    env.update(RATE_LIMITS_ENABLED="true", TRUSTED_PROXIES="127.0.0.1", LOGIN_MAX_FAILURES="2",
               LOGIN_DELAY_BASE_SECONDS="600", LOGIN_ACCOUNT_MAX_FAILURES="100")
    subprocess.run([venv_python(), "-m", "booking_app", "migrate"], cwd=tree, env=env, check=True,
                   capture_output=True, timeout=180)
    port = free_port()
    proc = start_reflex(tree, env, port, work / "reflex.log", timeout=START_TIMEOUT)
    try:
        yield f"http://127.0.0.1:{port}", db_path
    finally:
        stop_process_group(proc)


def _register(base: str, user: dict[str, str]) -> None:
    body = json.dumps({k: user[k] for k in ("username", "email", "password")}).encode()
    request = urllib.request.Request(base + "/api/users/register", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        assert r.status == 201


def _try_sign_in(page, identifier: str, password: str) -> None:
    goto(page, "/sign-in")
    page.fill("#field-identifier", identifier)
    page.fill("#field-password", password)
    page.get_by_test_id("sign-in-submit").click()


def test_one_clients_failures_block_neither_its_neighbours_nor_the_owner(throttled_server, browser):
    base, db_path = throttled_server
    victim, neighbour = unique_user(), unique_user()
    _register(base, victim)
    _register(base, neighbour)
    contexts = []

    def client(ip: str, locale: str):
        context = browser.new_context(base_url=base, locale=locale, extra_http_headers={"X-Forwarded-For": ip})
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    try:
        attacker = client(ATTACKER, "de-DE")
        for _ in range(2):
            _try_sign_in(attacker, victim["username"], "wrong-password-1")
            expect(attacker.get_by_test_id("form-error")).to_have_text(translate(LOGIN_FAILED, "de"))
        # the third try waits (600 s = 10 min), said in German, even with the right password
        _try_sign_in(attacker, victim["username"], victim["password"])
        expect(attacker.get_by_test_id("form-error")).to_have_text(translate(WAIT_MINUTES, "de", minutes=10))
        assert "/sign-in" in attacker.url

        # another user behind the same address gets in
        neighbour_page = client(ATTACKER, "en-US")
        _try_sign_in(neighbour_page, neighbour["username"], neighbour["password"])
        neighbour_page.wait_for_url(lambda url: "/sign-in" not in url)

        # and so does the victim from their own address
        owner = client("203.0.113.5", "en-US")
        _try_sign_in(owner, victim["email"], victim["password"])
        owner.wait_for_url(lambda url: "/sign-in" not in url)
    finally:
        for context in contexts:
            context.close()

    # the UI counted the forwarded address, not the proxy's
    with sqlite3.connect(db_path) as conn:
        ips = {json.loads(data)["ip"] for (data,) in conn.execute(
            "SELECT data FROM audit_events WHERE action = 'user.login_failed'")}
        ok_ips = {json.loads(data)["ip"] for (data,) in conn.execute(
            "SELECT data FROM audit_events WHERE action = 'user.login'")}
    assert ips == {ATTACKER}
    assert ok_ips == {ATTACKER, "203.0.113.5"}
