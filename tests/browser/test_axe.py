"""axe-core (npm, pinned in tools/package.json) over every page state the browser tests reach,
at 1280×800 and 390×844, in English and in Arabic, with the WCAG 2.0/2.1/2.2 A and AA rules.

Each walk signs in as the demo customer, provider and admin in turn and runs axe on each
state; it prints a per-state table of violation counts (rules and nodes) and fails on any
rule that is not listed for that state in KNOWN_VIOLATIONS. That list is a ratchet: it may
only shrink — fix a violation, then delete its line.

axe is evaluated through the DevTools protocol (page.evaluate), which the pages' CSP does
not govern, so nothing about the app is loosened to test it.
"""
from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from tests.browser.conftest import new_page
from tests.browser.helpers import axe_violations, goto, settle, sign_in
from tests.browser.helpers import patient_expect  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.browser

#: set to a folder to keep a screenshot of every state checked (to look at what changed)
SCREENSHOTS = os.environ.get("AXE_SCREENSHOTS")

#: state → axe rule ids still failing there (at some size or language), each with why it is
#: not fixed yet. A ratchet: entries may only be removed.
KNOWN_VIOLATIONS: dict[str, dict[str, str]] = {
    # e.g. "provider: bookings month": {"label-content-name-mismatch": "why it is not fixed yet"},
}


class Walk:
    """Runs axe on named states and keeps what it found."""

    def __init__(self, page: Page, tag: str = ""):
        self.page = page
        self.tag = tag
        self.found: dict[str, dict[str, int]] = {}
        self.details: dict[str, dict[str, list[str]]] = {}

    def check(self, state: str) -> None:
        settle(self.page)  # transitions (dialogs, menus) finish
        found = axe_violations(self.page)
        self.found[state] = {rule: count for rule, (count, _) in found.items()}
        self.details[state] = {rule: details for rule, (_, details) in found.items()}
        if SCREENSHOTS:
            name = re.sub(r"[^a-z0-9]+", "-", f"{self.tag} {state}".lower()).strip("-")
            pathlib.Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(pathlib.Path(SCREENSHOTS) / f"{name}.png"))


def _walk_customer(walk: Walk, lang: str) -> None:
    page = walk.page
    for path, state in (("/", "home"), ("/sign-in", "sign-in"), ("/sign-up", "sign-up")):
        goto(page, path)
        walk.check(state)
    goto(page, "/search?q=")
    expect(page.get_by_test_id("result-card").first).to_be_visible()
    walk.check("search")

    _sign_in(page, "customer", "demo-customer-pass")
    _switch(page, lang)
    goto(page, "/search?q=Atlas")
    page.get_by_test_id("result-card").filter(has_text="Meeting room Atlas").click()
    expect(page.get_by_test_id("slot").first).to_be_visible()
    chip = page.locator('[data-testid="day-chip"]:not([disabled])').last
    chip.click()
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("slot").first).to_be_visible()
    walk.check("bookable")
    page.get_by_test_id("slot").first.click()
    page.get_by_test_id("continue").click()
    page.wait_for_url(re.compile(r"/book\?"))
    expect(page.get_by_test_id("review-name")).to_be_visible()
    page.get_by_role("radio", name=translate("Pay on site", lang)).click()
    walk.check("review")
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    expect(page.get_by_test_id("reference")).to_be_visible()
    walk.check("confirmation")

    goto(page, "/my-bookings")
    row = page.get_by_test_id("upcoming").get_by_test_id("booking-row").first
    expect(row).to_be_visible()
    walk.check("my-bookings")
    row.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("confirm-cancel")).to_be_visible()
    walk.check("my-bookings: cancel dialog")
    page.get_by_test_id("confirm-cancel").click()  # frees the slot for the next walk
    expect(page.get_by_test_id("confirm-cancel")).to_have_count(0)

    goto(page, "/account")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    walk.check("account")


def _walk_provider(walk: Walk, lang: str) -> None:
    page = walk.page
    _sign_in(page, "provider", "demo-provider-pass")
    _switch(page, lang)
    goto(page, "/provider")
    expect(page.get_by_test_id("bookable-row").first).to_be_visible()
    walk.check("provider: bookables")
    row = page.get_by_test_id("bookable-row").filter(has_text="Meeting room Atlas")  # opening hours, not sessions
    goto(page, row.locator('a[href*="/provider/bookable?id="]').first.get_attribute("href"))
    expect(page.get_by_test_id("day-row").first).to_be_visible()
    walk.check("provider: editor")
    goto(page, "/provider/bookings")
    expect(page.get_by_test_id("mode-list")).to_be_visible()
    walk.check("provider: bookings list")
    page.get_by_test_id("mode-week").click()
    expect(page.get_by_test_id("week-day").first).to_be_visible()
    walk.check("provider: bookings week")
    page.get_by_test_id("mode-month").click()
    expect(page.get_by_test_id("month-day").first).to_be_visible()
    walk.check("provider: bookings month")


def _walk_admin(walk: Walk, lang: str) -> None:
    page = walk.page
    _sign_in(page, "admin", "demo-admin-pass")
    _switch(page, lang)
    goto(page, "/admin/dashboard")
    expect(page.get_by_test_id("live")).to_be_visible()
    walk.check("admin: dashboard")
    goto(page, "/admin/reports")
    expect(page.get_by_test_id("chart-bookings")).to_be_visible()
    walk.check("admin: reports")
    goto(page, "/admin/users")
    expect(page.get_by_test_id("user-row").first).to_be_visible()
    walk.check("admin: users")
    page.get_by_test_id("user-row").first.get_by_test_id("open-user").click()
    expect(page.get_by_test_id("user-detail")).to_be_visible()
    walk.check("admin: user detail")
    goto(page, "/admin/outbox")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    walk.check("admin: outbox")
    goto(page, "/admin/audit")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    walk.check("admin: audit")


#: demo user → the cookies of their signed-in session: the first walk signs each one in through
#: the form, the later walks (new contexts) start with that session instead of signing in again
_SESSIONS: dict[str, list] = {}


def _sign_in(page: Page, username: str, password: str) -> None:
    if username in _SESSIONS:
        page.context.add_cookies(_SESSIONS[username])
        return
    sign_in(page, username, password)
    _SESSIONS[username] = page.context.cookies()


def _switch(page: Page, lang: str) -> None:
    """The header's language switch (a signed-in user's saved language wins over the browser's)."""
    goto(page, "/")  # after signing in: the page that loads with the session cookie
    switcher = page.get_by_test_id("language-switcher")
    if switcher.input_value() != lang:
        switcher.select_option(lang)
        expect(page.get_by_test_id("app-root")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")


WALKS: list[tuple[str, Callable[[Walk, str], None]]] = [
    ("customer", _walk_customer), ("provider", _walk_provider), ("admin", _walk_admin)]


def _table(title: str, found: dict[str, dict[str, int]]) -> str:
    lines = [title, f"{'page state':<30} {'rules':>5} {'nodes':>5}  rule ids (nodes)"]
    for state, rules in found.items():
        listed = ", ".join(f"{rule} ({n})" for rule, n in sorted(rules.items()))
        lines.append(f"{state:<30} {len(rules):>5} {sum(rules.values()):>5}  {listed}")
    return "\n".join(lines)


@pytest.mark.parametrize("lang", ["en", "ar"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_axe_on_every_page_state(browser, live_server, size, lang, capsys, tmp_path):
    found: dict[str, dict[str, int]] = {}
    details: dict[str, dict[str, list[str]]] = {}
    for _who, walk_fn in WALKS:
        context, page = new_page(browser, live_server, size, locale="ar" if lang == "ar" else "en-US")
        try:
            walk = Walk(page, f"{size} {lang}")
            try:
                walk_fn(walk, lang)
            except Exception:
                page.screenshot(path=str(tmp_path / f"axe-{size}-{lang}-{_who}.png"), full_page=True)
                raise
            found.update(walk.found)
            details.update(walk.details)
        finally:
            context.close()
    with capsys.disabled():
        print("\n" + _table(f"axe-core, WCAG A+AA, {size}, {lang}", found))
    unexpected = {state: {rule: details[state].get(rule) for rule in rules
                          if rule not in KNOWN_VIOLATIONS.get(state, {})}
                  for state, rules in found.items()}
    unexpected = {state: rules for state, rules in unexpected.items() if rules}
    assert not unexpected, f"axe violations not in KNOWN_VIOLATIONS: {unexpected}"


def _contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    def lum(c):
        r, g, b_ = (x / 255 for x in c[:3])
        f = [(v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4) for v in (r, g, b_)]
        return 0.2126 * f[0] + 0.7152 * f[1] + 0.0722 * f[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("size", ["desktop"])
def test_text_inputs_focus_ring_has_3_to_1_contrast(browser, live_server, size):
    """WCAG 2.4.13/1.4.11: the ring around a focused text field against the page (axe does not
    check focus indicators)."""
    context, page = new_page(browser, live_server, size)
    try:
        goto(page, "/sign-in")
        page.focus("#field-identifier")
        ring, background = page.evaluate("""() => {
            const field = document.querySelector('#field-identifier').closest('.rt-TextFieldRoot');
            const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
            const style = getComputedStyle(field);
            let bg = document.body, color = 'rgba(0, 0, 0, 0)';
            for (let el = field.parentElement; el; el = el.parentElement) {
                color = getComputedStyle(el).backgroundColor;
                if (!color.startsWith('rgba(0, 0, 0, 0)') && !color.endsWith(', 0)')) break;
            }
            return [[...rgb(style.outlineColor), parseFloat(style.outlineWidth)], rgb(color || 'rgb(255,255,255)')];
        }""")
        assert ring[3] >= 2, f"no focus ring: {ring}"
        assert _contrast(tuple(ring[:3]), tuple(background)) >= 3, (ring, background)
    finally:
        context.close()
