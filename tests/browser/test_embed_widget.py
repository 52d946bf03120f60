"""The booking widget on other websites (issue 25, point 3), at 1280×800: a provider copies
the snippet and allows one website on the settings page; a page of that website (another
site: `localhost` on another port, the app being on 127.0.0.1) shows the widget in a frame
that follows its height, and a guest books in it; a page of a website not allowed gets no
widget (the browser refuses the frame: CSP frame-ancestors). Paying by card opens Stripe
Checkout in a new tab while the widget shows the booking. A provider's widget lists their
bookables, in the language its address asks for."""
from __future__ import annotations

import http.server
import threading

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from booking_app import db
from booking_app.models import User
from tests.browser.conftest import new_page
from tests.browser.helpers import goto, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)
from tests.conftest import free_port
from tests.factories import ALL_WEEK, make_bookable

pytestmark = pytest.mark.browser


class _Site:
    """Another website: one page holding the widget's snippet, served on localhost:<port>."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://localhost:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites():
    opened: list[_Site] = []

    def _open(html: str) -> _Site:
        site = _Site(html)
        opened.append(site)
        return site

    yield _open
    for site in opened:
        site.close()


def pick_first_slot(frame) -> None:
    """Pick the widget's first time, until "Continue" shows. One CI run on a loaded machine lost
    the first click in the frame (no Continue within 15 s; not reproduced): a click that lands
    while the page's load runs again (its socket reconnecting) is undone by that load, and a
    person would simply pick the time again — so does the test, once."""
    for last in (False, True):
        frame.get_by_test_id("slot").first.click()
        try:
            expect(frame.get_by_test_id("continue")).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            if last:
                raise


def test_allowed_site_frames_the_widget_and_a_guest_books_other_sites_are_refused(
        browser, live_server, live_db, sites):  # noqa: F811
    with db.read_session() as s:
        provider = s.exec(select(User).where(User.username == "provider")).one()
    room = make_bookable(provider, weekly=ALL_WEEK, name="Embed room", price_cents=2500)
    # the provider copies the snippet and allows one website
    context, page = new_page(browser, live_server, "desktop")
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider/embed")
    page.get_by_test_id("embed-target").select_option(f"s:{room.id}")
    page.get_by_test_id("embed-accent").fill("#aa3300")
    snippet = page.get_by_test_id("embed-snippet")
    expect(snippet).to_contain_text(f'data-service="{room.id}"')
    expect(snippet).to_contain_text('data-accent="#aa3300"')
    expect(snippet).to_contain_text("/embed.js")
    expect(page.get_by_test_id("embed-iframe")).to_contain_text("<iframe")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page.get_by_test_id("embed-snippet-copy").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()).includes('/embed.js')")
    markup = snippet.inner_text().replace("http://localhost:", "http://127.0.0.1:")  # the app's own address
    allowed = sites(f"<!doctype html><title>Partner</title><h1>Our partner</h1>{markup}<p>Footer</p>")
    refused = sites(f"<!doctype html><title>Other</title><h1>Someone else</h1>{markup}")
    page.get_by_test_id("embed-origins").fill("ftp://nope")
    page.get_by_test_id("embed-origins-save").click()
    expect(page.get_by_role("alert")).to_contain_text("https://")
    page.get_by_test_id("embed-origins").fill(allowed.url)
    page.get_by_test_id("embed-origins-save").click()
    expect(page.get_by_test_id("form-ok")).to_be_visible()
    context.close()

    # a guest on the allowed website books in the widget
    context, page = new_page(browser, allowed.url, "desktop")
    try:
        seen: list[str] = []
        page.on("console", lambda msg: seen.append(msg.text))
        page.goto(allowed.url)
        frame = page.frame_locator("iframe")
        try:
            expect(frame.get_by_test_id("bookable-name")).to_have_text("Embed room", timeout=30_000)
        except AssertionError:
            inner = page.frames[-1]
            raise AssertionError(f"{seen}\n{inner.url}\n{inner.content()[:3000]}")
        expect(frame.get_by_test_id("embed-root")).to_have_attribute("data-ready", "true")
        assert not frame.locator(".site-header").count()  # no site header in the widget
        height = page.locator("iframe").evaluate("f => f.getBoundingClientRect().height")
        assert height != 600, "the frame did not follow its content's height"
        pick_first_slot(frame)
        accent = frame.get_by_test_id("continue").evaluate("b => getComputedStyle(b).backgroundColor")
        assert accent == "rgb(170, 51, 0)"  # data-accent="#aa3300"
        frame.get_by_test_id("continue").click()
        expect(frame.get_by_test_id("review-name")).to_have_text("Embed room")
        expect(frame.get_by_test_id("sign-in-new-tab")).to_be_visible()  # the widget's review, not the site's
        frame.locator("#field-guest_name").fill("Guest In Frame")
        frame.locator("#field-guest_email").fill("frame-guest@example.com")
        frame.get_by_text("Pay on site").click()
        frame.get_by_test_id("confirm").click()
        expect(frame.get_by_test_id("reference")).to_be_visible(timeout=20_000)
        expect(frame.get_by_test_id("status")).to_be_visible()
        expect(frame.get_by_test_id("open-booking")).to_be_visible()  # the widget's booking page
        assert not frame.locator(".site-header").count()
        assert page.url.startswith(allowed.url)  # the widget moved inside its frame only
    finally:
        context.close()

    # paying by card: Stripe Checkout (which refuses frames) opens in a new tab, the widget
    # shows the booking, waiting for its payment
    context, page = new_page(browser, allowed.url, "desktop")
    context.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<title>Stripe Checkout</title><h1>Pay</h1>"))
    try:
        page.goto(allowed.url)
        frame = page.frame_locator("iframe")
        pick_first_slot(frame)
        frame.get_by_test_id("continue").click()
        frame.locator("#field-guest_name").fill("Card Guest")
        frame.locator("#field-guest_email").fill("card-guest@example.com")
        frame.get_by_role("radio", name="Card").click()
        expect(frame.get_by_role("radio", name="Card")).to_be_checked()
        try:
            with context.expect_page() as opened:
                frame.get_by_test_id("confirm").click()
        except Exception as exc:
            raise AssertionError(f"no Checkout tab; the widget shows: {frame.locator('main').inner_text()!r}") from exc
        opened.value.wait_for_load_state()
        assert opened.value.url.startswith("https://checkout.stripe.com/")
        expect(frame.get_by_test_id("reference")).to_be_visible(timeout=20_000)
        expect(frame.get_by_test_id("pay").first).to_be_visible()
        assert page.url.startswith(allowed.url)
    finally:
        context.close()

    # a provider's widget lists their bookables, in the language asked for
    context, page = new_page(browser, live_server, "desktop")
    try:
        page.goto(f"{live_server}/embed?provider={provider.id}&lang=fr")
        expect(page.get_by_test_id("embed-root")).to_have_attribute("lang", "fr")
        item = page.get_by_test_id("embed-item").filter(has_text="Embed room")
        item.get_by_role("link").click()
        expect(page.get_by_test_id("bookable-name")).to_have_text("Embed room")
        assert "provider=" in page.url and "lang=fr" in page.url
        expect(page.get_by_test_id("embed-root")).to_have_attribute("lang", "fr")
    finally:
        context.close()

    # a website not on the list: the browser refuses to show the widget in its frame
    context, page = new_page(browser, refused.url, "desktop")
    try:
        messages: list[str] = []
        page.on("console", lambda msg: messages.append(msg.text))
        page.goto(refused.url)
        page.wait_for_selector("iframe")
        page.wait_for_timeout(3000)
        assert page.frame_locator("iframe").get_by_test_id("embed-root").count() == 0
        assert any("frame-ancestors" in m for m in messages), messages
    finally:
        context.close()
