"""Speed of the Reflex UI in headless Chromium: first render of a bookable's page, and
click-to-confirmation of a booking.

Starts everything itself: a throwaway database (a temp SQLite file; with --pg a temp
PostgreSQL database `booking_bench_ui_<random>`, dropped at the end), migrated and seeded
with the demo data; the app built and served by `reflex run --env prod` (frontend and
backend on one free port) in a scratch copy of the project, the way the browser tests do;
Playwright on the system Chromium (CHROMIUM_PATH, else `chromium` on PATH). Everything it
started (server, browser, temp files, database) is removed at the end, also on failure.

Measured over --runs runs each, median and p95 (nearest rank, so with 10 runs the worst):
- first render of the bookable page (/service?id=<Meeting room Atlas>), cold (a new
  browser context: empty cache, new connections) and warm (a second visit in a new tab of
  the same context: its cache and cookies, a new Reflex client): time to first byte,
  first contentful paint, DOMContentLoaded, load, websocket open, first state update over
  it, and "slots visible" = the first slot button on screen (it needs the websocket and
  the on_load event round trip; Element Timing, the clock of first contentful paint).
  Performance API times from navigation start, plus the driver's wall time
  (perf_counter from goto until it sees the slot);
- click to confirmation: the signed-in demo customer picks a slot → Continue → review →
  Pay on site → Confirm → the confirmation with the booking reference, each booking in a
  new tab. Each step is timed in the page from the click event to its result on screen;
  the total is their sum (the driver's own time between steps left out), and the
  driver's wall time beside it. Every run books another slot.
Baselines, measured in the same run and interleaved with the runs above:
- static: the bookable page's rendered DOM saved as a plain HTML file (scripts removed,
  the same stylesheets) and served by the same server, cold and warm;
- REST: the same operations over the API: GET the bookable + GET 14 days of its slots
  (what the page loads; cold = a new connection, warm = keep-alive), and POST /api/bookings
  + POST /api/payments/process (on site) + GET the booking (what Confirm and the
  confirmation page do).
The UI figures are printed as ratios to them too: compare ratios across machines, the
absolutes depend on the machine and on what else runs on it (the load average is printed).

Usage: .venv/bin/python bench/bench_ui.py [--runs 10] [--pg] [--start-timeout 600]
Not part of the test suite. --pg needs a PostgreSQL server (TEST_DATABASE_URL, else
127.0.0.1:5432 as postgres). The first build of the frontend takes about a minute.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import math
import os
import pathlib
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zoneinfo

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import (  # noqa: E402
    CHROMIUM_ARGS,
    chromium_path,
    create_database,
    drop_database,
    free_port,
    http_status,
    reflex_env,
    scratch_app,
    start_reflex,
    stop_process_group,
    venv_python,
)

BOOKABLE_NAME = "Meeting room Atlas"   # demo data: priced (so Pay on site is offered), 8 slots a weekday
CUSTOMER = ("customer", "demo-customer-pass")
DAYS_SHOWN = 14                        # what the bookable page loads (ui/state/booking.py)
VIEWPORT = {"width": 1280, "height": 800}
STATIC_PAGE = "bench-static.html"
READY = "[data-testid=app-root][data-ready=true]"
STEP_TIMEOUT_MS = 30_000
MAX_RUNS = 40

# Runs in every document before its own scripts: records when the websocket opens and
# brings its first state update; when a watched element appears (…_dom), the frame that
# renders it (…_frame: after the next animation frame) and when it is presented on screen
# (…_paint, Element Timing, the same clock as first contentful paint) → `key`, the latter
# where supported, else the frame; and every click with its event time.
INIT_JS = r"""
(() => {
  if (window.__bench) return;
  const b = window.__bench = {marks: {}, clicks: []};
  const now = () => performance.now();
  const once = (key, value) => { if (!(key in b.marks)) b.marks[key] = value; };
  const Native = window.WebSocket;
  if (Native) {
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        once('ws_created', now());
        this.addEventListener('open', () => once('ws_open', now()));
        this.addEventListener('message', (e) => {
          if (typeof e.data === 'string' && e.data.startsWith('42')) once('ws_event', now());
        });
      }
    };
  }
  const watchers = [];
  const check = () => {
    for (let i = watchers.length - 1; i >= 0; i--) {
      const w = watchers[i];
      const el = document.querySelector(w.selector);
      if (el && (!w.text || el.textContent.trim() !== '')) {
        watchers.splice(i, 1);
        once(w.key + '_dom', now());
        // Element Timing reports when the text is presented on screen (like FCP); the frame
        // after the next animation frame is the fallback where it is not supported
        for (const e of [el, ...el.querySelectorAll('*')]) e.setAttribute('elementtiming', w.key);
        requestAnimationFrame(() => setTimeout(() => {
          once(w.key + '_frame', now());
          setTimeout(() => once(w.key, b.marks[w.key + '_frame']), 1000);
        }, 0));
      }
    }
  };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const t = e.renderTime || e.loadTime;
        if (e.identifier && t && (e.identifier + '_dom') in b.marks) {
          once(e.identifier + '_paint', t);
          once(e.identifier, t);
        }
      }
    }).observe({type: 'element', buffered: true});
  } catch (err) { /* no Element Timing: the frame fallback */ }
  b.watch = (key, selector, text) => {
    for (const suffix of ['', '_dom', '_frame', '_paint']) delete b.marks[key + suffix];
    watchers.push({key, selector, text: !!text});
    check();
  };
  new MutationObserver(() => { if (watchers.length) check(); })
    .observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  document.addEventListener('click', (e) => {
    const el = e.target instanceof Element ? e.target.closest('[data-testid]') : null;
    b.clicks.push({id: el ? el.getAttribute('data-testid') : '', t: e.timeStamp});
  }, true);
  b.watch('slot', '[data-testid=slot]');
})();
"""

COLLECT_JS = r"""
async () => {
  // paint entries come with the compositor's presentation feedback, maybe after the load
  const fcp = await new Promise((resolve) => {
    const found = performance.getEntriesByName('first-contentful-paint')[0];
    if (found) return resolve(found.startTime);
    const obs = new PerformanceObserver((list) => {
      const e = list.getEntriesByName('first-contentful-paint')[0];
      if (e) { obs.disconnect(); resolve(e.startTime); }
    });
    obs.observe({type: 'paint', buffered: true});
    setTimeout(() => { obs.disconnect(); resolve(null); }, 3000);
  });
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const m = window.__bench.marks;
  const val = (k) => (k in m ? m[k] : null);
  return {
    ttfb: nav.responseStart, fcp, dcl: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd || null, ws_open: val('ws_open'), ws_event: val('ws_event'),
    slot_dom: val('slot_dom'), slot_frame: val('slot_frame'), slot_paint: val('slot_paint'), slot: val('slot'),
    requests: res.length + 1,
    kib: (nav.transferSize + res.reduce((a, r) => a + (r.transferSize || 0), 0)) / 1024,
  };
}
"""

# The rendered page as plain HTML: no scripts (nor this bench's attributes), the same
# stylesheets and inline styles.
SNAPSHOT_JS = r"""
() => {
  const root = document.documentElement.cloneNode(true);
  root.querySelectorAll('script, link[rel=modulepreload], link[as=script]').forEach((e) => e.remove());
  root.querySelectorAll('[elementtiming]').forEach((e) => e.removeAttribute('elementtiming'));
  return '<!DOCTYPE html>\n' + root.outerHTML;
}
"""

FIRST_RENDER_ROWS = [
    ("ttfb", "time to first byte"),
    ("fcp", "first contentful paint"),
    ("dcl", "DOMContentLoaded"),
    ("load", "load event"),
    ("ws_open", "websocket open"),
    ("ws_event", "first state update on it"),
    ("slot_dom", "slot button in the DOM"),
    ("slot_frame", "slot button's frame rendered"),
    ("slot", "slots visible (on screen)"),
    ("wall", "driver wall time to slots visible"),
    ("requests", "requests"),
    ("kib", "KiB transferred"),
]
STEPS = [
    ("slot", "continue", "slot click → Continue shown"),
    ("continue", "review", "Continue → review page filled"),
    ("confirm", "reference", "Confirm → confirmation with reference"),
]


# ---- figures -----------------------------------------------------------------------------

def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def summary(values: list[float | None]) -> tuple[float, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return statistics.median(present), p95(present)


def cell(values: list[float | None], width: int = 8, digits: int = 0) -> str:
    s = summary(values)
    if s is None:
        return f"{'n/a':>{width}} {'':>{width}}"
    return f"{s[0]:>{width},.{digits}f} {s[1]:>{width},.{digits}f}"


def ratio(a: list[float], b: list[float]) -> str:
    sa, sb = summary(a), summary(b)
    if not sa or not sb or sb[0] <= 0:
        return "n/a"
    return f"{sa[0] / sb[0]:.1f}×"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- the API (setup and REST baseline) -----------------------------------------------------

def find_bookable(api: httpx.Client) -> dict:
    resp = api.get("/api/services", params={"q": BOOKABLE_NAME})
    resp.raise_for_status()
    for item in resp.json()["items"]:
        if item["name"] == BOOKABLE_NAME:
            return item
    raise RuntimeError(f"demo bookable {BOOKABLE_NAME!r} not found: was the demo data seeded?")


def login(api: httpx.Client) -> dict[str, str]:
    resp = api.post("/api/users/login", json={"username": CUSTOMER[0], "password": CUSTOMER[1]})
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def free_slots(api: httpx.Client, bookable_id: int, first: dt.date, last: dt.date) -> list[dict]:
    resp = api.get(f"/api/services/{bookable_id}/slots", params={"from": first.isoformat(), "to": last.isoformat()})
    resp.raise_for_status()
    return resp.json()["slots"]


def rest_page_data(api: httpx.Client, bookable_id: int, today: dt.date) -> float:
    """GET the bookable and 14 days of its slots, as the bookable page loads them → ms."""
    t0 = time.perf_counter()
    api.get(f"/api/services/{bookable_id}").raise_for_status()
    free_slots(api, bookable_id, today, today + dt.timedelta(days=DAYS_SHOWN - 1))
    return (time.perf_counter() - t0) * 1000


def rest_book(api: httpx.Client, auth: dict[str, str], bookable_id: int, first: dt.date) -> dict[str, float]:
    """Book the window's last free slot as Confirm does (booking + on-site payment), then
    GET it as the confirmation page does → ms per call."""
    slots = free_slots(api, bookable_id, first, first + dt.timedelta(days=DAYS_SHOWN - 1))
    if not slots:
        raise RuntimeError("no free slot left for the REST baseline: lower --runs")
    out = {}
    t0 = time.perf_counter()
    resp = api.post("/api/bookings", json={"service_id": bookable_id, "start": slots[-1]["start"],
                                           "payment_method": "on_site"},
                    headers={**auth, "Idempotency-Key": uuid.uuid4().hex})
    out["post_booking"] = (time.perf_counter() - t0) * 1000
    if resp.status_code != 201:
        raise RuntimeError(f"POST /api/bookings → {resp.status_code}: {resp.text[:300]}")
    booking_id = resp.json()["id"]
    t0 = time.perf_counter()
    resp = api.post("/api/payments/process", json={"booking_id": booking_id, "method": "on_site"},
                    headers={**auth, "Idempotency-Key": uuid.uuid4().hex})
    out["post_payment"] = (time.perf_counter() - t0) * 1000
    out["payment_status"] = resp.status_code  # the UI goes on whatever it answers, so does this
    if resp.status_code >= 500:
        raise RuntimeError(f"POST /api/payments/process → {resp.status_code}: {resp.text[:300]}")
    t0 = time.perf_counter()
    api.get(f"/api/bookings/{booking_id}", headers=auth).raise_for_status()
    out["get_booking"] = (time.perf_counter() - t0) * 1000
    out["total"] = out["post_booking"] + out["post_payment"] + out["get_booking"]
    return out


# ---- the browser ---------------------------------------------------------------------------

def new_context(browser, base: str):
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", base_url=base)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.add_init_script(INIT_JS)
    return context


def wait_mark(page, key: str) -> None:
    page.wait_for_function(f"() => window.__bench && window.__bench.marks[{key!r}] !== undefined",
                           timeout=STEP_TIMEOUT_MS)


def visit(page, path: str) -> dict[str, float | None]:
    """Navigate a new tab to `path`, until the first slot button is on screen."""
    t0 = time.perf_counter()
    page.goto(path, wait_until="commit")
    wait_mark(page, "slot")
    wall = (time.perf_counter() - t0) * 1000
    page.wait_for_load_state("load")
    figures = page.evaluate(COLLECT_JS)
    figures["wall"] = wall
    return figures


def first_render_pair(browser, base: str, path: str) -> tuple[dict, dict]:
    """(cold, warm): a new context's first visit, then a second one in another tab of it
    (its HTTP cache and cookies, but a new Reflex client: a tab reusing its client would
    first show the previous visit's state)."""
    context = new_context(browser, base)
    try:
        out = []
        for _visit in range(2):
            page = context.new_page()
            out.append(visit(page, path))
            page.close()
        return out[0], out[1]
    finally:
        context.close()


def sign_in(page) -> None:
    page.goto("/sign-in")
    page.wait_for_selector(READY, timeout=STEP_TIMEOUT_MS)
    page.fill("#field-identifier", CUSTOMER[0])
    page.fill("#field-password", CUSTOMER[1])
    page.get_by_test_id("sign-in-submit").click()
    page.wait_for_url(lambda url: "/sign-in" not in url, timeout=STEP_TIMEOUT_MS)


def ui_book(context, path: str) -> dict:
    """Open the bookable page in a new tab, then slot → Continue → review → Pay on site →
    Confirm → confirmation; → step latencies (ms, click event → result on screen), wall
    time, the slot and the reference."""
    page = context.new_page()
    try:
        return _ui_book(page, path)
    finally:
        page.close()


def _ui_book(page, path: str) -> dict:
    page.goto(path)
    page.wait_for_selector(READY, timeout=STEP_TIMEOUT_MS)
    wait_mark(page, "slot")
    slot = page.get_by_test_id("slot").first
    start = slot.get_attribute("data-start")
    page.evaluate("() => { window.__bench.clicks = []; window.__bench.watch('continue', '[data-testid=continue]'); }")
    t0 = time.perf_counter()
    slot.click()
    wait_mark(page, "continue")
    page.evaluate("() => window.__bench.watch('review', '[data-testid=review-name]', true)")
    page.get_by_test_id("continue").click()
    wait_mark(page, "review")
    if "/book?" not in page.url:
        raise RuntimeError(f"Continue did not lead to the review page: {page.url}")
    page.get_by_role("radio", name="Pay on site").click()
    page.evaluate("() => window.__bench.watch('reference', '[data-testid=reference]', true)")
    page.get_by_test_id("confirm").click()
    try:
        wait_mark(page, "reference")
    except Exception:
        errors = page.get_by_test_id("form-error")
        detail = errors.first.inner_text() if errors.count() else page.url
        raise RuntimeError(f"no confirmation after Confirm: {detail}") from None
    wall = (time.perf_counter() - t0) * 1000
    reference = page.get_by_test_id("reference").inner_text().strip()
    status = page.get_by_test_id("status").inner_text().strip()
    if status != "Confirmed" or not re.fullmatch(r"[A-Z0-9-]{4,}", reference):
        raise RuntimeError(f"unexpected confirmation: status {status!r}, reference {reference!r}")
    bench = page.evaluate("() => window.__bench")
    clicks: dict[str, float] = {}
    for click in bench["clicks"]:
        clicks.setdefault(click["id"], click["t"])
    out = {"wall": wall, "start": start, "reference": reference}
    for clicked, shown, _label in STEPS:
        if clicked not in clicks:
            raise RuntimeError(f"no click event recorded on {clicked!r}")
        out[clicked] = bench["marks"][shown] - clicks[clicked]
        out[f"{clicked}_on_screen"] = f"{shown}_paint" in bench["marks"]
    out["total"] = sum(out[clicked] for clicked, _s, _l in STEPS)
    return out


def write_static_page(app_dir: pathlib.Path, html: str) -> float:
    """Beside the compiled frontend, precompressed like it → its size in KiB."""
    from reflex import constants

    client = app_dir / constants.Dirs.WEB / constants.Dirs.STATIC
    if not (client / "index.html").exists():
        raise RuntimeError(f"compiled frontend not found in {client}")
    data = html.encode()
    (client / STATIC_PAGE).write_bytes(data)
    (client / f"{STATIC_PAGE}.gz").write_bytes(gzip.compress(data, 9))
    return len(data) / 1024


# ---- the run -------------------------------------------------------------------------------

def measure(base: str, app_dir: pathlib.Path, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    with httpx.Client(base_url=base, timeout=30) as api:
        bookable = find_bookable(api)
        auth = login(api)
        bid = bookable["id"]
        tz = zoneinfo.ZoneInfo(bookable["timezone"])
        today = dt.datetime.now(tz).date()
        # the booking runs start tomorrow: no slot of today runs out while being booked
        book_from = today + dt.timedelta(days=1)
        available = len(free_slots(api, bid, book_from, book_from + dt.timedelta(days=DAYS_SHOWN - 1)))
        needed = 2 * (runs + 1)
        if available < needed:
            raise RuntimeError(f"{available} free slots in {DAYS_SHOWN} days, {needed} needed: lower --runs")

    page_path = f"/service?id={bid}"
    book_path = f"{page_path}&date={book_from.isoformat()}"
    res: dict = {"bookable": bookable, "page_path": page_path, "ui_cold": [], "ui_warm": [], "static_cold": [],
                 "static_warm": [], "rest_cold": [], "rest_warm": [], "ui_book": [], "rest_book": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            res["browser"] = browser.version
            # warm-up (not counted): the server's first page and the snapshot for the static baseline
            context = new_context(browser, base)
            try:
                page = context.new_page()
                visit(page, page_path)
                res["static_kib"] = write_static_page(app_dir, page.evaluate(SNAPSHOT_JS))
            finally:
                context.close()
            if http_status(f"{base}/{STATIC_PAGE}") != 200:
                raise RuntimeError(f"the static baseline page is not served at /{STATIC_PAGE}")
            first_render_pair(browser, base, f"/{STATIC_PAGE}")

            print(f"  first render: {runs} runs", flush=True)
            for i in range(runs):
                # alternate the order so drifting machine load weighs on both alike
                order = [("ui", page_path), ("static", f"/{STATIC_PAGE}")]
                for kind, path in order if i % 2 == 0 else order[::-1]:
                    cold, warm = first_render_pair(browser, base, path)
                    res[f"{kind}_cold"].append(cold)
                    res[f"{kind}_warm"].append(warm)
                with httpx.Client(base_url=base, timeout=30) as api:  # a new connection: cold
                    res["rest_cold"].append(rest_page_data(api, bid, today))
                    res["rest_warm"].append(rest_page_data(api, bid, today))

            print(f"  click to confirmation: {runs} runs (+1 warm-up)", flush=True)
            context = new_context(browser, base)
            try:
                page = context.new_page()
                sign_in(page)  # a cookie: the booking tabs opened next are signed in
                page.close()
                with httpx.Client(base_url=base, timeout=30) as api:
                    for i in range(runs + 1):
                        ui = ui_book(context, book_path)
                        rest = rest_book(api, auth, bid, book_from)
                        if i:  # the first is the warm-up
                            res["ui_book"].append(ui)
                            res["rest_book"].append(rest)
            finally:
                context.close()
        finally:
            browser.close()

    starts = [r["start"] for r in res["ui_book"]]
    references = [r["reference"] for r in res["ui_book"]]
    if len(set(starts)) != len(starts) or len(set(references)) != len(references):
        raise RuntimeError(f"two UI runs booked the same slot or got the same reference: {starts} {references}")
    with httpx.Client(base_url=base, timeout=30) as api:
        resp = api.get("/api/bookings", params={"limit": 200}, headers=auth)
        resp.raise_for_status()
        listed = {b["reference"] for b in resp.json()["items"]}
    missing = set(references) - listed
    if missing:
        raise RuntimeError(f"bookings confirmed in the UI but not in the customer's list: {sorted(missing)}")
    res["bookings_checked"] = len(listed)
    return res


def report(res: dict, args, db_kind: str, build_s: float, load_before: str) -> None:
    runs = args.runs
    b = res["bookable"]
    print()
    print(f"Reflex UI in headless Chromium {res['browser']} · {db_kind} · {runs} runs · {os.cpu_count()} CPUs · "
          f"build + start {build_s:.0f} s")
    print(f"load average (1/5/15 min): {load_before} before, {load_average()} after")
    print()
    print(f"First render of {res['page_path']} ({b['name']}), ms from navigation start; "
          f"static = its rendered DOM as a plain {res['static_kib']:.0f} KiB HTML file on the same server")
    head = f"{'measure':<36} {'UI cold':>17} {'UI warm':>17} {'static cold':>17} {'static warm':>17}"
    print(head)
    print(f"{'':<36}" + f" {'median':>8} {'p95':>8}" * 4)
    print("-" * len(head))
    for key, label in FIRST_RENDER_ROWS:
        cols = []
        for series in ("ui_cold", "ui_warm", "static_cold", "static_warm"):
            values = [r[key] for r in res[series]]
            if series.startswith("static") and key in ("ws_open", "ws_event"):
                values = []
            cols.append(cell(values))
        print(f"{label:<36} " + " ".join(cols))
    rest_cold, rest_warm = res["rest_cold"], res["rest_warm"]
    print(f"{'REST: GET bookable + 14 days slots':<36} {cell(rest_cold, digits=1)} {cell(rest_warm, digits=1)}"
          "   (cold = new connection)")
    series = [r for key in ("ui_cold", "ui_warm", "static_cold", "static_warm") for r in res[key]]
    print(f"on screen = Element Timing's presentation time ({sum(r['slot_paint'] is not None for r in series)} "
          f"of {len(series)} visits; else the rendered frame)")
    ui_c = [r["slot"] for r in res["ui_cold"]]
    ui_w = [r["slot"] for r in res["ui_warm"]]
    print("ratios of medians, slots visible:")
    print(f"  UI / static page        cold {ratio(ui_c, [r['slot'] for r in res['static_cold']]):>7}"
          f"   warm {ratio(ui_w, [r['slot'] for r in res['static_warm']]):>7}")
    print(f"  UI / REST page data     cold {ratio(ui_c, rest_cold):>7}   warm {ratio(ui_w, rest_warm):>7}")
    print()
    print(f"Click to confirmation ({CUSTOMER[0]} signed in, Pay on site, {runs} bookings), ms")
    head = f"{'step':<52} {'median':>8} {'p95':>8}"
    print(head)
    print("-" * len(head))
    ui, rest = res["ui_book"], res["rest_book"]
    for clicked, _shown, label in STEPS:
        print(f"{'UI: ' + label:<52} {cell([r[clicked] for r in ui], digits=1)}")
    print(f"{'UI: total (sum of the steps)':<52} {cell([r['total'] for r in ui], digits=1)}")
    print(f"{'UI: driver wall time (+ Playwright between steps)':<52} {cell([r['wall'] for r in ui], digits=1)}")
    answers = "/".join(str(c) for c in sorted({r["payment_status"] for r in rest}))
    for key, label in (("post_booking", "POST /api/bookings"),
                       ("post_payment", f"POST /api/payments/process (→ {answers})"),
                       ("get_booking", "GET /api/bookings/{id}"), ("total", "total")):
        print(f"{'REST: ' + label:<52} {cell([r[key] for r in rest], digits=1)}")
    steps = [r[f"{clicked}_on_screen"] for r in ui for clicked, _s, _l in STEPS]
    print(f"UI steps end when the result is on screen (Element Timing: {sum(steps)} of {len(steps)}; "
          "else the rendered frame), from the click event")
    print(f"ratio of medians, UI total / REST total: {ratio([r['total'] for r in ui], [r['total'] for r in rest])}")
    print(f"checked: {len(ui)} UI bookings on distinct slots, confirmed, each in the customer's "
          f"list ({res['bookings_checked']} bookings there)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help=f"runs per measure (1-{MAX_RUNS}, default 10)")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--start-timeout", type=float, default=600, help="seconds for the build and start")
    args = parser.parse_args()
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be between 1 and {MAX_RUNS}")

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    load_before = load_average()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-ui-"))
    pg_name = None
    server = None
    try:
        if args.pg:
            pg_name, db_url = create_database("booking_bench_ui")
            db_kind = "PostgreSQL"
        else:
            db_url = f"sqlite:///{tmp / 'bench.db'}"
            db_kind = "SQLite"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        app_dir = scratch_app(tmp / "app")
        env = reflex_env(db_url, ENVIRONMENT="production", SECRET_KEY=secrets.token_urlsafe(48), PUBLIC_URL=base)
        print(f"  [{db_kind}] migrate + seed-demo", flush=True)
        for command in ("migrate", "seed-demo"):
            done = subprocess.run([venv_python(), "-m", "booking_app", command], cwd=app_dir, env=env,
                                  capture_output=True, text=True, timeout=300)
            if done.returncode:
                raise RuntimeError(f"{command} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        print(f"  reflex run --env prod on port {port} (build)", flush=True)
        t0 = time.perf_counter()
        server = start_reflex(app_dir, env, port, tmp / "reflex.log", timeout=args.start_timeout)
        build_s = time.perf_counter() - t0
        res = measure(base, app_dir, args.runs)
        report(res, args, db_kind, build_s, load_before)
    finally:
        stop_process_group(server)
        if pg_name:
            drop_database(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
