"""The app shell at 1280×800 and 390×844: renders, no horizontal scroll on a phone, no
console errors, language switcher (with Arabic right-to-left), sign-up / sign-in / sign-out."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import (
    assert_no_horizontal_scroll,
    goto,
    open_menu_if_phone,
    sign_in,
    sign_up,
    unique_user,
)

pytestmark = pytest.mark.browser

SHELL_PAGES = ["/", "/search", "/sign-in", "/sign-up"]


def test_shell_renders_without_scroll_or_console_errors(page, size):
    for path in SHELL_PAGES:
        goto(page, path)
        expect(page.get_by_test_id("brand")).to_be_visible()
        expect(page.locator("footer")).to_be_attached()
        expect(page.get_by_test_id("language-switcher")).to_be_visible()
        assert_no_horizontal_scroll(page)
    goto(page, "/")
    expect(page.get_by_test_id("home-title")).to_be_visible()
    expect(page.get_by_test_id("search-input")).to_be_visible()
    if size == "phone":
        # the navigation is collapsed behind the menu button
        expect(page.get_by_test_id("sign-in-link")).to_be_hidden()
        page.get_by_test_id("menu-button").click()
        menu = page.locator("#phone-menu")
        expect(menu).to_be_visible()
        expect(menu.get_by_role("link", name="Sign in")).to_be_visible()
        assert_no_horizontal_scroll(page)
        page.get_by_test_id("menu-button").click()
        expect(menu).to_be_hidden()
    else:
        expect(page.get_by_test_id("menu-button")).to_be_hidden()
        expect(page.get_by_test_id("sign-in-link")).to_be_visible()
        expect(page.get_by_role("navigation").get_by_role("link", name="Find & book")).to_be_visible()
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_home_search_leads_to_results(page, size):
    goto(page, "/")
    page.get_by_test_id("search-input").fill("pottery")
    page.get_by_test_id("search-submit").click()
    page.wait_for_url("**/search?q=pottery")
    cards = page.get_by_test_id("result-card")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Pottery workshop")
    assert_no_horizontal_scroll(page)


def test_language_switcher_changes_text_and_direction(page, size):
    goto(page, "/")
    title = page.get_by_test_id("home-title")
    root = page.get_by_test_id("app-root")
    english = translate("Book rooms, services and events in a minute", "en")
    expect(title).to_have_text(english)
    expect(root).to_have_attribute("dir", "ltr")

    page.get_by_test_id("language-switcher").select_option("es")
    expect(title).to_have_text(translate("Book rooms, services and events in a minute", "es"))
    expect(page.get_by_test_id("search-submit")).to_have_text(translate("Search", "es"))
    expect(root).to_have_attribute("lang", "es")
    expect(page.locator("html")).to_have_attribute("lang", "es")

    page.get_by_test_id("language-switcher").select_option("ar")
    expect(title).to_have_text(translate("Book rooms, services and events in a minute", "ar"))
    expect(root).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert_no_horizontal_scroll(page)

    # the choice survives a reload (cookie) and follows to other pages
    page.reload()
    page.wait_for_selector("[data-testid=app-root][data-ready=true]")
    expect(root).to_have_attribute("dir", "rtl")
    goto(page, "/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("Sign in", "ar"))
    expect(page).to_have_title(f"{translate('Sign in', 'ar')} · Booking")  # the tab too

    page.get_by_test_id("language-switcher").select_option("en")
    expect(root).to_have_attribute("dir", "ltr")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page).to_have_title("Sign in · Booking")
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_browser_language_is_the_default(open_page):
    page = open_page("fr-FR")
    goto(page, "/")
    expect(page.get_by_test_id("home-title")).to_have_text(
        translate("Book rooms, services and events in a minute", "fr"))
    expect(page.get_by_test_id("app-root")).to_have_attribute("lang", "fr")
    goto(page, "/admin/dashboard")  # (a guest is sent to sign in: its title in French)
    expect(page).to_have_title(f"{translate('Sign in', 'fr')} · Booking")
    goto(page, "/search")
    expect(page).to_have_title(f"{translate('Find & book', 'fr')} · Booking")


def test_sign_up_sign_out_and_sign_in(page, size):
    user = unique_user()
    sign_up(page, user)
    if size == "phone":
        open_menu_if_phone(page)
        sign_out = page.locator("#phone-menu").get_by_role("button", name="Sign out")
    else:
        expect(page.get_by_test_id("user-menu")).to_contain_text(user["full_name"])
        sign_out = page.get_by_test_id("sign-out")
    with page.expect_navigation():  # signing out ends with a full page load (the cookie is cleared)
        sign_out.click()
    page.wait_for_url("**/")
    expect(page.get_by_test_id("user-menu")).to_have_count(0)

    # wrong password: a clear message, still on the sign-in page
    goto(page, "/sign-in")
    page.fill("#field-identifier", user["username"])
    page.fill("#field-password", "not-the-password")
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("form-error")).to_have_text(translate("Wrong username or password.", "en"))

    sign_in(page, user["email"], user["password"])
    if size == "desktop":
        expect(page.get_by_test_id("user-menu")).to_contain_text(user["full_name"])
    else:
        open_menu_if_phone(page)
        expect(page.locator("#phone-menu").get_by_role("button", name="Sign out")).to_be_visible()
    assert_no_horizontal_scroll(page)
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_sign_up_shows_validation_errors(page, size):
    user = unique_user()
    goto(page, "/sign-up")
    page.fill("#field-username", user["username"])
    page.fill("#field-email", user["email"])
    page.fill("#field-password", "short")
    page.get_by_test_id("sign-up-submit").click()
    # the problem is shown next to its field (issue 22), the banner asks to correct the fields
    expect(page.get_by_test_id("error-password")).to_have_text(
        translate("Password must be at least {min} characters.", "en", min=8))
    expect(page.get_by_test_id("form-error")).to_have_text(translate("Please correct the fields marked below.", "en"))
    assert "/sign-up" in page.url


def test_tablet_widths_have_no_horizontal_scroll_with_the_longest_header(browser, live_server):
    """Between phone and desktop (768 px portrait tablet, 1000 px) an admin's header — the
    sections, language, name, sign out — must not push the page sideways: below 992 px the
    menu button takes over, above it the full header fits."""
    from tests.browser.conftest import new_page

    for width in (768, 1000):
        context, page = new_page(browser, live_server, {"width": width, "height": 1024})
        try:
            sign_in(page, "admin", "demo-admin-pass")
            for path in ("/", "/provider/bookings", "/admin/dashboard", "/admin/users"):
                goto(page, path)
                expect(page.get_by_test_id("brand")).to_be_visible()
                assert_no_horizontal_scroll(page)
            if width < 992:
                open_menu_if_phone(page)
                expect(page.locator("#phone-menu").get_by_role("link", name="Admin")).to_be_visible()
            else:
                expect(page.get_by_test_id("menu-button")).to_be_hidden()
                expect(page.get_by_role("navigation").get_by_role("link", name="Admin")).to_be_visible()
            assert_no_horizontal_scroll(page)
            assert page.console_errors == []
        finally:
            context.close()
