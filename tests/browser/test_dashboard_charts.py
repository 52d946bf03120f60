"""The admin dashboard's live charts on `reflex run --env prod`, at 1280×800 and 390×844:
four titled charts with summaries, the hour/day switch, and a booking made through the API
showing up in the bookings chart within seconds, redrawn in place (same plot element, no
reload). DASHBOARD_SHOTS=<folder> keeps screenshots (docs/screenshots/ holds the chosen ones)."""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import re

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from tests.browser.helpers import AXE_JS, assert_no_horizontal_scroll, axe_violations, goto, sign_in
from tests.browser.helpers import live_db, patient_expect  # noqa: F401  (fixtures)
from tests.browser.test_provider import api_token  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("DASHBOARD_SHOTS")
CHARTS = ("bookings", "revenue", "requests", "backlog")
TITLES = {"bookings": "Bookings made", "revenue": "Net revenue",
          "requests": "Requests per second and p95 latency", "backlog": "Outbox backlog"}


def _axe_on_charts(page: Page) -> dict[str, tuple[int, list[str]]]:
    """axe-core's WCAG A/AA rules over the live charts' part of the page: the window switch,
    the chart cards and the data table."""
    if not AXE_JS.exists():
        pytest.skip("axe-core is not installed (tools/package.json)")
    return axe_violations(page, '[data-testid^="chart-"]')


def _plotted_bookings(page: Page) -> int:
    """The bookings chart's bars summed, read from the Plotly element in the page."""
    return page.evaluate("""() => {
        const gd = document.querySelector('[data-testid=chart-bookings] .js-plotly-plot');
        return gd && gd.data && gd.data[0] ? gd.data[0].y.reduce((a, b) => a + b, 0) : -1;
    }""")


def test_live_charts_follow_a_new_booking(page, size, open_page, live_db):  # noqa: F811
    sign_in(page, "admin", "demo-admin-pass")
    goto(page, "/admin/dashboard")
    expect(page.get_by_test_id("live")).to_be_visible()
    for key in CHARTS:
        chart = page.get_by_test_id(f"chart-{key}")
        expect(chart).to_be_visible()
        expect(chart).to_have_attribute("role", "figure")
        expect(chart.get_by_role("heading", level=3)).to_have_text(translate(TITLES[key], "en"))
        expect(chart.locator(".js-plotly-plot")).to_have_count(1)
        expect(page.get_by_test_id(f"chart-{key}-summary")).not_to_have_text("")
    # money with its currency (a symbol or an ISO code), never a bare number
    expect(page.get_by_test_id("chart-revenue-summary")).to_have_text(re.compile(r"[€$£¥]|[A-Z]{3}"))
    page.wait_for_function("() => document.querySelector('[data-testid=chart-bookings] .js-plotly-plot')?.data")
    assert_no_horizontal_scroll(page)
    before = _plotted_bookings(page)
    assert before >= 0
    page.evaluate("""() => { window.__still_here = true;
        document.querySelector('[data-testid=chart-bookings] .js-plotly-plot').__marked = true; }""")
    other = open_page()
    token = api_token(other, "customer", "demo-customer-pass")
    slots = other.request.get(f"/api/services/1/slots?from={dt.date.today() + dt.timedelta(days=3)}"
                              f"&to={dt.date.today() + dt.timedelta(days=10)}").json()["slots"]
    resp = other.request.post("/api/bookings", headers={"Authorization": f"Bearer {token}"},
                              data={"service_id": 1, "start": slots[-2 if size == "phone" else -1]["start"],
                                    "payment_method": "on_site"})
    assert resp.status == 201, resp.text()
    page.wait_for_function(f"() => {{ const gd = document.querySelector('[data-testid=chart-bookings] .js-plotly-plot');"
                           f" return gd && gd.data[0].y.reduce((a, b) => a + b, 0) >= {before + 1}; }}",
                           timeout=15_000)
    # redrawn in place: the same plot element, the page never reloaded
    assert page.evaluate("() => window.__still_here === true && "
                         "document.querySelector('[data-testid=chart-bookings] .js-plotly-plot').__marked === true")
    if SHOTS:
        pathlib.Path(SHOTS).mkdir(parents=True, exist_ok=True)
        # the charts under the sticky header (a full-page shot would paint the header mid-page)
        page.evaluate("""() => { const el = document.querySelector('[data-testid=chart-window-hour]');
            window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 90); }""")
        page.wait_for_timeout(800)
        page.screenshot(path=str(pathlib.Path(SHOTS) / f"dashboard-charts-{size}.png"))

    # per 15 minutes over the last day: 96 periods, the new booking still counted
    page.get_by_test_id("chart-window-day").click()
    expect(page.get_by_test_id("chart-window-day")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("() => document.querySelector('[data-testid=chart-bookings] .js-plotly-plot')"
                           ".data[0].y.length === 96")
    assert _plotted_bookings(page) >= before + 1
    # the numbers as a table for screen readers (and anyone)
    page.get_by_test_id("chart-table-toggle").click()
    expect(page.get_by_test_id("chart-table").locator("tbody tr")).to_have_count(10)
    assert _axe_on_charts(page) == {}

    # a language switch redraws the titles and legends in the new language (no reload)
    switcher = page.get_by_test_id("language-switcher")
    switcher.select_option("de")
    try:
        expect(page.get_by_test_id("chart-bookings").get_by_role("heading", level=3)).to_have_text(
            translate("Bookings made", "de"))
        page.wait_for_function("(name) => document.querySelector('[data-testid=chart-bookings] .js-plotly-plot')"
                               ".data[0].name === name", arg=translate("Bookings", "de"))
        expect(page.get_by_test_id("chart-backlog-summary")).to_contain_text(translate("Last day (per 15 minutes)", "de"))
        assert page.evaluate("() => window.__still_here === true")
    finally:
        switcher.select_option("en")  # the admin's saved language, for the other tests
    expect(page.get_by_test_id("chart-bookings").get_by_role("heading", level=3)).to_have_text("Bookings made")
    assert page.console_errors == []
