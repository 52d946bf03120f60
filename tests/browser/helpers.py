"""Shared steps for the browser tests."""
from __future__ import annotations

import pathlib
import uuid

from playwright.sync_api import Page, expect

from tests.conftest import point_app_at

READY = "[data-testid=app-root][data-ready=true]"


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


def demo_actor(username: str = "provider"):
    """The seeded demo account `username` as a services actor (its role, in UTC)."""
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import User
    from booking_app.services.actors import Actor

    with db.read_session() as s:
        user = s.exec(select(User).where(User.username == username)).one()
    return Actor(id=user.id, role=user.role, timezone="UTC")


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
