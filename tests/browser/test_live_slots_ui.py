"""Live slots across app processes (issue 25.4): two browser tabs on the same bookable page,
one served by each of two app processes sharing one SQLite database and one Redis; a booking
through the REST API takes the slot off both pages within 2 s, its cancellation brings it back.

Process A is a full prod server (it builds and serves the frontend, in a scratch copy of the
tree); B is a backend-only prod server of the same build. The pages are loaded through a
small proxy of the test's own, on one port at two loopback addresses: the frontend's backend
address is `localhost`, which the Reflex frontend replaces by the page's own host, so each
tab's event socket goes to the address its page came from — the proxy sends the socket of a
page loaded from 127.0.0.1 to A, from 127.0.0.2 to B (everything else to A).
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import START_TIMEOUT, _server_env
from tests.browser.helpers import READY, TcpProxy
from tests.browser.test_scaleout_ui import ReflexProcess, scratch_tree  # noqa: F401 - (a fixture)
from tests.conftest import free_port
from tests.test_scaleout import flush_redis_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REDIS_DB = 10
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
ROOM = 1  # the demo's "Meeting room Atlas": capacity 1, paid on site → confirmed at once


class SocketRouter(TcpProxy):
    """A TCP proxy on two loopback addresses, one port: the event socket (`GET /_event`) of a
    page loaded from 127.0.0.2 goes to `b_port`, every other connection to `a_port`; counts
    the event sockets sent to each."""

    def __init__(self, port: int, a_port: int, b_port: int) -> None:
        self.a_port, self.b_port = a_port, b_port
        self.sockets = {"A": 0, "B": 0}
        super().__init__(["127.0.0.1", "127.0.0.2"], port)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            first = await client_r.readuntil(b"\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            client_w.close()
            return
        local = client_w.get_extra_info("sockname")[0]
        event_socket = first.startswith(b"GET /_event")
        to_b = event_socket and local == "127.0.0.2"
        if event_socket:
            self.sockets["B" if to_b else "A"] += 1
        await self._splice(client_r, client_w, self.b_port if to_b else self.a_port, first)


def _api(port: int, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_slot_taken_through_the_api_leaves_both_processes_pages_and_comes_back(scratch_tree, browser,  # noqa: F811
                                                                                    tmp_path, capsys):
    flush_redis_db(REDIS_URL)
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    port = free_port()
    env = _server_env(db_url)
    env.update(REDIS_URL=REDIS_URL, API_URL=f"http://localhost:{port}", REFLEX_API_URL=f"http://localhost:{port}",
               GRANIAN_WORKERS="1")
    for command in ("migrate", "seed-demo"):
        subprocess.run([str(scratch_tree / ".venv" / "bin" / "python"), "-m", "booking_app", command],
                       cwd=scratch_tree, env=env, check=True, capture_output=True, timeout=180)
    procs: list[ReflexProcess] = []
    contexts = []
    router = None
    try:
        a = ReflexProcess(scratch_tree, env, "A", backend_only=False)
        procs.append(a)
        a.wait_ready(START_TIMEOUT)
        b = ReflexProcess(scratch_tree, env, "B", backend_only=True)
        procs.append(b)
        b.wait_ready(120)
        router = SocketRouter(port, a.port, b.port)

        pages = []
        for host in ("127.0.0.1", "127.0.0.2"):  # the first tab's events go to A, the second's to B
            context = browser.new_context(base_url=f"http://{host}:{port}", viewport={"width": 1280, "height": 800})
            context.set_default_timeout(20_000)
            contexts.append(context)
            page = context.new_page()
            page.goto(f"/service?id={ROOM}")
            page.wait_for_selector(READY, timeout=30_000)
            expect(page.get_by_test_id("slot").first).to_be_visible()
            pages.append(page)
        assert router.sockets["A"] >= 1 and router.sockets["B"] >= 1, router.sockets
        first_tab, second_tab = pages
        start = first_tab.get_by_test_id("slot").first.get_attribute("data-start")
        slot = [p.locator(f'[data-testid=slot][data-start="{start}"]') for p in pages]
        for s in slot:
            expect(s).to_have_count(1)
        slot[1].click()  # the second tab had picked it
        expect(second_tab.get_by_test_id("selected-slot")).to_be_visible()

        status, login = _api(a.port, "POST", "/api/users/login",
                             {"username": "customer", "password": "demo-customer-pass"})
        assert status == 200, login
        token = login["access_token"]
        status, booking = _api(a.port, "POST", "/api/bookings",
                               {"service_id": ROOM, "start": start, "payment_method": "on_site"}, token)
        assert status == 201, booking
        booked_at = time.monotonic()
        for s in slot:  # gone from both pages, served by two processes, within 2 s
            expect(s).to_have_count(0, timeout=max(100, int((booked_at + 2 - time.monotonic()) * 1000)))
        gone_after = time.monotonic() - booked_at
        expect(second_tab.get_by_test_id("slot-lost")).to_be_visible()
        expect(second_tab.get_by_test_id("selected-slot")).to_have_count(0)
        expect(first_tab.get_by_test_id("live-note")).to_contain_text("Just taken")
        expect(second_tab.get_by_test_id("live-note")).to_contain_text("has just been taken")
        first_tab.get_by_test_id("slot").first.focus()

        status, cancelled = _api(a.port, "DELETE", f"/api/bookings/{booking['id']}", None, token)
        assert status == 200, cancelled
        freed_at = time.monotonic()
        for s in slot:  # and back within 2 s
            expect(s).to_have_count(1, timeout=max(100, int((freed_at + 2 - time.monotonic()) * 1000)))
        back_after = time.monotonic() - freed_at
        expect(first_tab.get_by_test_id("live-note")).to_contain_text("Free again")
        # the update did not take the focus away
        assert first_tab.evaluate("document.activeElement?.dataset?.testid") == "slot"
        with capsys.disabled():
            print(f"\n[figure] live slots, two app processes: a slot booked through the API left both pages "
                  f"{gone_after * 1000:.0f} ms after the API answered; cancelled, it was back on both after "
                  f"{back_after * 1000:.0f} ms")
    finally:
        for context in contexts:
            context.close()
        for p in procs:
            p.stop()
        if router is not None:
            router.close()
