"""The page's language attribute is a BCP 47 tag: Portuguese (Brazil), the locale `pt_BR`,
is `lang="pt-BR"` on <html> and on the app root, also after switching back and forth."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import goto

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_portuguese_is_pt_BR_on_html_and_the_app_root(page, size):  # noqa: N802
    goto(page, "/")
    switcher = page.get_by_test_id("language-switcher")
    switcher.select_option("pt_BR")
    expect(page.locator("html")).to_have_attribute("lang", "pt-BR")
    expect(page.get_by_test_id("app-root")).to_have_attribute("lang", "pt-BR")
    switcher.select_option("es")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_test_id("app-root")).to_have_attribute("lang", "es")
    goto(page, "/search")  # the choice (a cookie) holds on the next page load
    switcher.select_option("pt_BR")
    expect(page.get_by_test_id("app-root")).to_have_attribute("lang", "pt-BR")
    page.wait_for_timeout(300)  # (the cookie is written as the switch is handled)
    goto(page, "/")
    expect(page.locator("html")).to_have_attribute("lang", "pt-BR")
    assert page.console_errors == []
