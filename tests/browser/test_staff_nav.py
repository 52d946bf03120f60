"""Staff navigation: the webhooks page (provider and admin) and the outside calendars page
have a tab in the section tabs, the current page's tab is marked and in view, and the tabs
scroll sideways inside their own strip at 390×844 (the page itself never scrolls sideways).
`STAFF_NAV_SHOTS=<folder>`: screenshots of the tabs are saved there."""
from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from booking_app.ui import paths
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("STAFF_NAV_SHOTS", "")


def _shot(page: Page, name: str, size: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{size}.png"))


def _follow_tab(page: Page, href: str) -> None:
    """Click the tab to `href` (scrolled into view in its strip) and check it is marked."""
    tabs = page.get_by_test_id("section-tabs")
    tab = tabs.locator(f'a[href="{href}"]')
    expect(tab).to_have_count(1)
    tab.scroll_into_view_if_needed()
    tab.click()
    page.wait_for_url(f"**{href}")
    page.mouse.move(0, 0)  # (no hover underline in the screenshots)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    current = page.get_by_test_id("section-tabs").locator(f'a[href="{href}"]')
    expect(current).to_have_attribute("aria-current", "page")
    expect(current).to_be_in_viewport()  # scrolled into view inside the strip on a phone
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_provider_tabs_reach_calendars_and_webhooks(page, size):
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, paths.PROVIDER)
    _shot(page, "provider-tabs", size)
    _follow_tab(page, paths.PROVIDER_CALENDARS)
    _follow_tab(page, paths.STAFF_WEBHOOKS)
    _shot(page, "provider-webhooks-tab", size)
    _follow_tab(page, paths.PROVIDER_BOOKINGS)
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_admin_tabs_reach_webhooks(page, size):
    sign_in(page, "admin", "demo-admin-pass")
    goto(page, paths.ADMIN_DASHBOARD)
    _follow_tab(page, paths.ADMIN_WEBHOOKS)
    _shot(page, "admin-webhooks-tab", size)
    _follow_tab(page, paths.PROVIDER_APPROVALS)  # (the approvals queue, every provider's: issue 24)
    _follow_tab(page, paths.ADMIN_AUDIT)
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_audit_rows_follow_a_language_switch(page, size):
    sign_in(page, "admin", "demo-admin-pass")  # (signing in is audited: there is a row)
    goto(page, paths.ADMIN_AUDIT)
    first_at = page.get_by_test_id("event-at").first
    english, german = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}"), re.compile(r"^\d{2}\.\d{2}\.\d{4}")
    expect(first_at).to_have_text(english)  # "Dec 6, 2026, 1:00:00 PM"
    page.get_by_test_id("language-switcher").select_option("de")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("Audit trail", "de"))
    expect(first_at).to_have_text(german)  # the rows are formatted again: "06.12.2026, 13:00:00"
    page.get_by_test_id("language-switcher").select_option("en")
    expect(first_at).to_have_text(english)
    assert page.console_errors == []
