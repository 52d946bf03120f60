"""Shared steps for the browser tests."""
from __future__ import annotations

import abc
import asyncio
import pathlib
import threading
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, point_app_at

READY = "[data-testid=app-root][data-ready=true]"
AXE_JS = ROOT / "tools" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def goto(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_selector(READY, timeout=30_000)


_SETTLE_JS = """async () => {
    const running = () => document.getAnimations().filter(a => a.playState === 'running'
        && Number.isFinite(a.effect?.getComputedTiming().endTime));
    const cap = new Promise(resolve => setTimeout(resolve, 3000));
    for (let i = 0; i < 5 && running().length; i++) {
        await Promise.race([Promise.all(running().map(a => a.finished.catch(() => null))), cap]);
    }
    await new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}"""


def settle(page: Page) -> None:
    """Wait until the page's running CSS transitions and animations (dialogs, menus opening)
    have finished and a frame is painted — instead of a fixed pause; endless ones (spinners)
    are not waited for."""
    page.evaluate(_SETTLE_JS)


@pytest.fixture(autouse=True)
def patient_expect():
    """The app shares a small machine with the rest of the suite: 20 s per expectation in a
    module that imports this."""
    expect.set_options(timeout=20_000)
    yield
    expect.set_options(timeout=5_000)


def axe_violations(page: Page, include: str | None = None) -> dict[str, tuple[int, list[str]]]:
    """axe-core's WCAG 2.0–2.2 A/AA rules on the page as it is (only the elements matching
    the CSS selector `include`, if given): rule id → (failing nodes, the first three of them
    and what to fix). Evaluated through the DevTools protocol (the page's CSP stays)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async ([tags, include]) => { const r = await axe.run(include ? {include: [[include]]} : document,"
        " {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});"
        " return r.violations.map(v => [v.id, v.nodes.length, v.nodes.slice(0, 3).map(n => n.target.join(' '))"
        "   .concat(v.nodes.slice(0, 1).map(n => n.failureSummary || ''))]); }",
        [WCAG_TAGS, include])
    return {rule: (count, details) for rule, count, details in result}


def assert_no_horizontal_scroll(page: Page) -> None:
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"page scrolls horizontally: {scroll_width} > {inner_width}"


def unique_user() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"username": f"u{tag}", "email": f"u{tag}@example.com", "password": f"Pw-{tag}-long-enough",
            "full_name": f"Test User {tag}"}


def sign_up(page: Page, user: dict[str, str]) -> None:
    goto(page, "/sign-up")
    page.fill("#field-full_name", user["full_name"])
    page.fill("#field-username", user["username"])
    page.fill("#field-email", user["email"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-up-submit").click()
    page.wait_for_url(lambda url: "/sign-up" not in url, timeout=20_000)


def sign_in(page: Page, identifier: str, password: str) -> None:
    goto(page, "/sign-in")
    page.fill("#field-identifier", identifier)
    page.fill("#field-password", password)
    page.get_by_test_id("sign-in-submit").click()
    page.wait_for_url(lambda url: "/sign-in" not in url, timeout=20_000)


def open_menu_if_phone(page: Page) -> None:
    button = page.get_by_test_id("menu-button")
    if button.is_visible():
        if button.get_attribute("aria-expanded") != "true":
            button.click()
        expect(page.locator("#phone-menu")).to_be_visible()


def use_live_database(tmp_path_factory) -> str:
    """Point this process's services at the live server's database (so a test sets up its rows
    through the services) and return its URL."""
    found = sorted(pathlib.Path(tmp_path_factory.getbasetemp()).glob("live-server*/browser.db"))
    assert found, "the live server's database was not found"
    url = f"sqlite:///{found[-1]}"
    point_app_at(url)
    return url


@pytest.fixture
def live_db(live_server, tmp_path_factory) -> str:
    """`use_live_database` as a fixture (after the live server is up): a test module imports
    it to set up its rows through the services."""
    return use_live_database(tmp_path_factory)


def demo_actor(username: str = "provider"):
    """The seeded demo account `username` as a services actor (its role, in UTC)."""
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import User
    from booking_app.services.actors import Actor

    with db.read_session() as s:
        user = s.exec(select(User).where(User.username == username)).one()
    return Actor(id=user.id, role=user.role, timezone="UTC")


def find_bookable_id(name: str) -> int:
    """The id of the bookable named exactly `name` (found through the catalog's search)."""
    from booking_app.services import catalog

    items, _ = catalog.search_bookables(q=name)
    return next(b.id for b in items if b.name == name)


def open_room(name: str, *, hours: tuple[str, str] = ("00:00", "24:00"), **fields):
    """A new one-seat, free, hour-long room of the demo provider named `name` + a unique tag,
    open every day for `hours` (UTC); `fields` override create_bookable's arguments."""
    from booking_app.services import catalog

    actor = demo_actor("provider")
    values = {"kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 0, "currency": "EUR",
              "timezone": "UTC"} | fields
    room = catalog.create_bookable(actor=actor, name=f"{name} {uuid.uuid4().hex[:6]}", **values)
    catalog.set_availability(actor=actor, bookable_id=room.id, exceptions=[],
                             weekly=[{"weekday": d, "start": hours[0], "end": hours[1]} for d in range(7)])
    return room


class TcpProxy(abc.ABC):
    """A TCP proxy of a test's own, on its own thread and event loop, listening on `hosts`
    at `port` (0: a free one, then in `.port`). A subclass decides in `_handle` where each
    connection goes and hands it to `_splice`; the spliced pairs are in `.conns` while open."""

    def __init__(self, hosts: str | list[str] = "127.0.0.1", port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.conns: set = set()
        self.port = port
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, host=hosts, port=port))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    @abc.abstractmethod
    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        """Route one client connection (usually: pick a port, then `_splice`)."""

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _splice(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, port: int,
                      first: bytes = b"") -> None:
        """Connect the client to 127.0.0.1:`port` (closed when nothing listens there), send
        `first` (what was already read from the client), then copy both ways until either
        side closes."""
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_w.close()
            return
        up_w.write(first)
        pair = (client_w, up_w)
        self.conns.add(pair)
        try:
            await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))
        finally:
            self.conns.discard(pair)

    def close(self) -> None:
        def do() -> None:
            self.server.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(do)
