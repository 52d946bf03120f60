"""The search page keeps the results area's space while the results load (issue 22:
Lighthouse CLS 0.13 when they arrived): placeholder cards until then, and the page's
cumulative layout shift stays under 0.1 (the "good" threshold) at 1280×800 and 390×844."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from booking_app.ui import paths

pytestmark = pytest.mark.browser

#: the layout-shift entries since the page started (buffered), the ones after input left out
CLS_SCRIPT = """() => new Promise(resolve => {
  let total = 0;
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) total += e.value;
  }).observe({type: "layout-shift", buffered: true});
  setTimeout(() => resolve(total), 500);
})"""


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_results_arriving_do_not_shift_the_page(page, size):
    page.goto(paths.SEARCH)
    page.wait_for_selector('[data-testid="app-root"][data-ready="true"]', timeout=30_000)
    expect(page.get_by_test_id("result-card").first.or_(page.get_by_test_id("no-results"))).to_be_visible()
    expect(page.get_by_test_id("results-loading")).to_have_count(0)
    page.wait_for_timeout(500)
    cls = page.evaluate(CLS_SCRIPT)
    heights = page.evaluate("""() => [...document.querySelectorAll('[data-testid="result-card"]')]
                                      .map(e => e.getBoundingClientRect().height)""")
    print(f"search page at {size}: CLS {cls:.3f}, card heights {heights}")
    assert cls < 0.1
    assert page.console_errors == []
