"""The bookable page of the built app paints its content from the HTML (api/prerender.py,
ui/previews.py): the server's answer to /service?id=N holds the bookable's name, description
and facts before any script runs (no redirect first), a browser without JavaScript shows them,
and with JavaScript the real page takes the preview's place in the same boxes — no layout
shift, no hydration error in the console — after a frame was painted from the HTML."""
from __future__ import annotations

import gzip
import json
import urllib.request
from html.parser import HTMLParser

import pytest

from tests.browser.conftest import new_page

pytestmark = pytest.mark.browser

NAME = "Meeting room Atlas"
#: records, from the first script on, the page's layout shifts and the preview's boxes at its
#: first paint (before the app's scripts ran: they wait for that frame)
OBSERVE = """
window.__shifts = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shifts.push(e.value); })
  .observe({type: "layout-shift", buffered: true});
window.__lcp = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__lcp.push({t: e.startTime, size: e.size}); })
  .observe({type: "largest-contentful-paint", buffered: true});
window.__realAt = null;  // when the app's own content replaced the preview
new MutationObserver(() => {
  if (window.__realAt === null && document.querySelector("[data-testid=bookable-name]")) window.__realAt = performance.now();
}).observe(document, {childList: true, subtree: true});
const box = (el) => { const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map(Math.round); };
document.addEventListener("DOMContentLoaded", () => requestAnimationFrame(() => setTimeout(() => {
  const slot = document.querySelector("[data-prerender=bookable]");
  window.__preview = slot && slot.firstElementChild ? {
    h1: box(slot.querySelector("h1")), text: box(slot.querySelector("h1 + p")), column: box(slot.firstElementChild),
    ready: document.querySelector("[data-testid=app-root]").dataset.ready,
  } : null;
}, 0)));
"""
REAL = """() => {
  const h1 = document.querySelector("[data-testid=bookable-name]");
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map(Math.round); };
  return {h1: box(h1), text: box(h1.nextElementSibling), column: box(h1.parentElement)};
}"""


def fetch(url: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        body = resp.read()
        if resp.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return resp.status, resp.geturl(), body.decode("utf-8")


def bookable_id(base: str) -> int:
    with urllib.request.urlopen(f"{base}/api/services?q=Atlas", timeout=30) as resp:
        return next(i["id"] for i in json.load(resp)["items"] if i["name"] == NAME)


class SlotText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth, self.texts, self.h1 = 0, [], []
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if self.depth and tag not in ("svg", "path", "circle"):
            self.depth += 1
        elif dict(attrs).get("data-prerender") == "bookable":
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth and tag not in ("svg", "path", "circle"):
            self.depth -= 1

    def handle_data(self, data):
        if self.depth and data.strip():
            self.texts.append(data.strip())
            if self._tag == "h1":
                self.h1.append(data.strip())


def test_the_served_html_holds_the_bookable(live_server):
    status, url, page = fetch(f"{live_server}/service?id={bookable_id(live_server)}")
    assert status == 200 and url.endswith(f"/service?id={bookable_id(live_server)}")  # no redirect
    parsed = SlotText()
    parsed.feed(page)
    assert parsed.h1 == [NAME]
    assert "Bright room for 8 people with a screen and a whiteboard." in parsed.texts
    assert "Madrid Centro" in parsed.texts and "Pat Provider" in parsed.texts
    assert 'rel="modulepreload"' not in page.split("</head>")[0]


def test_without_javascript_the_bookable_is_on_screen(browser, live_server):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{live_server}/service?id={bookable_id(live_server)}")
        heading = page.locator("[data-prerender=bookable] h1")
        assert heading.inner_text() == NAME and heading.is_visible()
        assert page.get_by_text("Free cancellation until the start.").is_visible()
        # the grey placeholder bars beside the preview stay hidden
        assert not page.locator("[data-prerender=bookable] + div").is_visible()
    finally:
        context.close()


def test_the_page_takes_the_previews_place_without_moving(browser, live_server, size):
    context, page = new_page(browser, live_server, size)
    try:
        page.add_init_script(OBSERVE)
        page.goto(f"/service?id={bookable_id(live_server)}")
        page.wait_for_selector("[data-testid=app-root][data-ready=true]")
        page.wait_for_selector("[data-testid=slot]")
        page.wait_for_timeout(300)
        preview = page.evaluate("window.__preview")
        assert preview is not None and preview["ready"] == "false"  # painted before the app started
        assert page.locator("[data-prerender]").count() == 0  # the real page replaced it
        real = page.evaluate(REAL)
        # the same boxes (the column may grow below: beside the picker it stretches to the row)
        assert (real["h1"], real["text"], real["column"][:3]) == (preview["h1"], preview["text"],
                                                                  preview["column"][:3]), (real, preview)
        assert sum(page.evaluate("window.__shifts")) < 0.001
        # the largest paint is the preview's first frame: nothing larger came with the app
        lcp = page.evaluate("window.__lcp")
        real_at = page.evaluate("window.__realAt")
        assert lcp and real_at and max(e["t"] for e in lcp) < real_at, (lcp, real_at)
        assert page.console_errors == []
    finally:
        context.close()


def test_a_client_side_visit_from_the_results_shows_the_page(page, live_server):
    """No server HTML on a client-side page change: the slot stays empty (its placeholders
    show) until the state brings the page."""
    page.goto("/search?q=Atlas")
    page.wait_for_selector("[data-testid=app-root][data-ready=true]")
    page.wait_for_selector("[data-testid=result-card]")
    page.evaluate("""() => { window.__slotHtml = []; new MutationObserver(() => {
        const slot = document.querySelector("[data-prerender=bookable]");
        if (slot) window.__slotHtml.push(slot.innerHTML); }).observe(document, {childList: true, subtree: true}); }""")
    page.locator("[data-testid=result-card]").first.click()
    page.wait_for_selector("[data-testid=slot]")
    assert page.locator("[data-testid=bookable-name]").inner_text() == NAME
    assert set(page.evaluate("window.__slotHtml")) <= {""}
    assert page.console_errors == []


SEARCH_OBSERVE = """
window.__shifts = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shifts.push(e.value); })
  .observe({type: "layout-shift", buffered: true});
window.__lcp = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__lcp.push({t: e.startTime}); })
  .observe({type: "largest-contentful-paint", buffered: true});
window.__realAt = null;
new MutationObserver(() => {
  if (window.__realAt === null && document.querySelector("[data-testid=result-card]")) window.__realAt = performance.now();
}).observe(document, {childList: true, subtree: true});
document.addEventListener("DOMContentLoaded", () => requestAnimationFrame(() => setTimeout(() => {
  window.__preview = [...document.querySelectorAll("[data-prerender=search] a")].slice(0, 4).map((el) => {
    const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map(Math.round); });
}, 0)));
"""
CARDS = """() => [...document.querySelectorAll("[data-testid=result-card]")].slice(0, 4).map((el) => {
  const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map(Math.round); })"""


def test_search_results_take_the_previews_place_without_moving(browser, live_server, size):
    # a query that finds the demo room whatever other tests added to the shared database before
    status, _, html = fetch(f"{live_server}/search?q=Meeting")
    assert status == 200 and NAME in html  # the first results are in the HTML
    context, page = new_page(browser, live_server, size)
    try:
        page.add_init_script(SEARCH_OBSERVE)
        page.goto("/search?q=Meeting")
        page.wait_for_selector("[data-testid=app-root][data-ready=true]")
        page.wait_for_selector("[data-testid=result-card]")
        page.wait_for_timeout(300)
        preview = page.evaluate("window.__preview")
        assert preview and page.evaluate(CARDS) == preview
        assert sum(page.evaluate("window.__shifts")) < 0.001
        lcp, real_at = page.evaluate("window.__lcp"), page.evaluate("window.__realAt")
        assert lcp and real_at and max(e["t"] for e in lcp) < real_at, (lcp, real_at)
        assert page.console_errors == []
    finally:
        context.close()
