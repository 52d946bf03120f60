"""The ten languages in the browser: the switcher lists each in its own name, Polish and
Turkish pages fit a phone, and a Brazilian browser gets Portuguese (Brazil)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from booking_app.config import SUPPORTED_LOCALES
from booking_app.i18n import LANGUAGE_NAMES, translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, open_menu_if_phone

pytestmark = pytest.mark.browser

TITLE = "Book rooms, services and events in a minute"


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_switcher_lists_ten_languages_and_polish_and_turkish_fit_a_phone(page, size, tmp_path):
    goto(page, "/")
    switcher = page.get_by_test_id("language-switcher")
    options = switcher.locator("option")
    expect(options).to_have_count(10)
    assert options.all_inner_texts() == [LANGUAGE_NAMES[code] for code in SUPPORTED_LOCALES]

    for lang in ("pl", "tr"):
        switcher.select_option(lang)
        expect(page.get_by_test_id("home-title")).to_have_text(translate(TITLE, lang))
        expect(page.get_by_test_id("search-submit")).to_have_text(translate("Search", lang))
        expect(page.get_by_test_id("app-root")).to_have_attribute("dir", "ltr")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_no_horizontal_scroll(page)
        page.screenshot(path=str(tmp_path / f"home-{lang}.png"), full_page=True)

    goto(page, "/sign-in")  # the choice (Turkish) follows to other pages, menu included
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("Sign in", "tr"))
    expect(page).to_have_title(f"{translate('Sign in', 'tr')} · Booking")
    open_menu_if_phone(page)
    assert_no_horizontal_scroll(page)
    page.screenshot(path=str(tmp_path / "sign-in-tr.png"), full_page=True)
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_a_brazilian_browser_gets_portuguese(open_page):
    page = open_page("pt-BR")
    goto(page, "/")
    expect(page.get_by_test_id("home-title")).to_have_text(translate(TITLE, "pt_BR"))
    expect(page.get_by_test_id("language-switcher")).to_have_value("pt_BR")
    goto(page, "/search")
    expect(page).to_have_title(f"{translate('Find & book', 'pt_BR')} · Booking")
