"""Sign-in, sign-up, account and the phone menu as people use them (issue 22), at 1280×800
and 390×844: sign-up shows every field's problem next to its field at once; staff start on
their own pages after signing in; the account page's Language follows the header switch and
saving the profile keeps it; the phone menu keeps Tab inside while open and closes on Esc,
handing the focus back to its button.
`AUTH_UX_SHOTS=<folder>`: screenshots of sign-up with its errors are saved there."""
from __future__ import annotations

import datetime as dt
import os
import re
import uuid

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from booking_app import db
from booking_app.i18n import translate
from booking_app.models import AuthToken, utcnow
from booking_app.services import accounts, booking_queries, bookings, catalog, manage_links, mfa
from booking_app.services.actors import Actor
from booking_app.ui import paths
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in, sign_up, unique_user
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("AUTH_UX_SHOTS", "")


def _shot(page: Page, name: str, size: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{size}.png"), full_page=True)


def test_sign_up_shows_every_field_problem_next_to_its_field(page: Page, size):
    goto(page, paths.SIGN_UP)
    page.fill("#field-full_name", "Fiona Fields")
    page.fill("#field-username", "a b")
    page.fill("#field-email", "fiona@localhost")  # a browser's email check lets it through; ours does not
    page.fill("#field-password", "short")
    page.get_by_test_id("sign-up-submit").click()
    expected = {
        "username": "Username must be 3–64 letters, digits, dots, dashes or underscores.",
        "email": "Enter a valid email address.",
        "password": translate("Password must be at least {min} characters.", "en", min=8),
    }
    for name, message in expected.items():
        error = page.get_by_test_id(f"error-{name}")
        expect(error).to_have_text(message)
        field = page.locator(f"#field-{name}")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_attribute("aria-describedby", f"field-{name}-error")
        expect(error).to_have_attribute("id", f"field-{name}-error")
    expect(page.get_by_test_id("error-full_name")).to_have_count(0)
    expect(page.locator("#field-full_name")).to_have_attribute("aria-invalid", "false")
    expect(page.get_by_test_id("form-error")).to_have_text("Please correct the fields marked below.")
    expect(page.locator("#field-username")).to_have_value("a b")  # what was typed stays
    assert_no_horizontal_scroll(page)
    _shot(page, "sign-up-errors", size)

    # fixing one field leaves the others marked; fixing all signs up
    user = unique_user()
    page.fill("#field-username", user["username"])
    page.get_by_test_id("sign-up-submit").click()
    expect(page.get_by_test_id("error-username")).to_have_count(0)
    expect(page.locator("#field-username")).to_have_attribute("aria-invalid", "false")
    expect(page.get_by_test_id("error-email")).to_be_visible()
    expect(page.get_by_test_id("error-password")).to_be_visible()
    page.fill("#field-email", user["email"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-up-submit").click()
    page.wait_for_url(lambda url: "/sign-up" not in url, timeout=20_000)
    assert page.console_errors == []


def test_a_taken_username_is_shown_at_the_username(page: Page, open_page, size):
    user = unique_user()
    sign_up(open_page(), user)
    goto(page, paths.SIGN_UP)
    page.fill("#field-username", user["username"])
    page.fill("#field-email", unique_user()["email"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-up-submit").click()
    expect(page.get_by_test_id("error-username")).to_have_text("That username or email is already registered.")
    expect(page.locator("#field-username")).to_have_attribute("aria-invalid", "true")
    assert page.console_errors == []


@pytest.mark.parametrize(("identifier", "password", "start"), [
    ("provider", "demo-provider-pass", paths.PROVIDER),
    ("admin", "demo-admin-pass", paths.ADMIN_DASHBOARD),
])
def test_staff_start_on_their_own_page_unless_a_page_was_asked_for(page: Page, open_page, size, identifier,
                                                                     password, start):
    sign_in(page, identifier, password)
    page.wait_for_url(re.compile(rf"{start}/?$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    other = open_page()
    goto(other, f"{paths.SIGN_IN}?next={paths.ACCOUNT}")
    other.fill("#field-identifier", identifier)
    other.fill("#field-password", password)
    other.get_by_test_id("sign-in-submit").click()
    other.wait_for_url(re.compile(rf"{paths.ACCOUNT}/?$"))
    assert page.console_errors == [] and other.console_errors == []


def test_customers_still_start_at_home(page: Page, open_page, size):
    user = unique_user()
    sign_up(open_page(), user)
    sign_in(page, user["username"], user["password"])
    page.wait_for_url(re.compile(r"^https?://[^/]+/$"))  # the home page, as before
    assert page.console_errors == []


def test_account_language_follows_the_header_and_saving_keeps_it(page: Page, size):
    user = unique_user()
    sign_up(page, user)
    goto(page, paths.ACCOUNT)
    expect(page.locator("#field-locale")).to_have_value("en")
    page.get_by_test_id("language-switcher").select_option("es")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("My account", "es"))
    expect(page.locator("#field-locale")).to_have_value("es")
    page.fill("#field-phone", "+34 600 123 456")
    page.get_by_test_id("save-profile").click()
    expect(page.get_by_test_id("form-ok").first).to_have_text(translate("Your changes are saved.", "es"))
    expect(page.get_by_test_id("app-root")).to_have_attribute("lang", "es")
    expect(page.locator("#field-locale")).to_have_value("es")
    expect(page.get_by_test_id("language-switcher")).to_have_value("es")
    # the stored profile says the same after a reload
    goto(page, paths.ACCOUNT)
    expect(page.locator("#field-locale")).to_have_value("es")
    expect(page.locator("#field-phone")).to_have_value("+34600123456")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("My account", "es"))
    assert page.console_errors == []


def _focus_in_menu(page: Page) -> bool:
    return page.evaluate("""() => {
        const el = document.activeElement;
        return !!el && (el.id === 'menu-button' || !!el.closest('#phone-menu'));
    }""")


@pytest.mark.parametrize("size", ["phone"], indirect=True)
@pytest.mark.parametrize("signed_in", [False, True])
def test_phone_menu_keeps_tab_inside_and_closes_on_escape(page: Page, size, signed_in):
    if signed_in:
        sign_up(page, unique_user())
    goto(page, paths.SEARCH)
    button = page.get_by_test_id("menu-button")
    button.focus()
    page.keyboard.press("Enter")
    menu = page.locator("#phone-menu")
    expect(menu).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    stops = menu.locator("a[href], button").count()
    seen = set()
    for _ in range(stops + 3):  # round the whole menu and past its end: focus never leaves it
        page.keyboard.press("Tab")
        assert _focus_in_menu(page)
        seen.add(page.evaluate("document.activeElement.outerHTML"))
    assert len(seen) >= stops  # every link and button was reached
    for _ in range(stops + 3):
        page.keyboard.press("Shift+Tab")
        assert _focus_in_menu(page)
    page.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")
    # from a link inside too, and it opens again from the keyboard
    page.keyboard.press("Enter")
    expect(menu).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("!!document.activeElement.closest('#phone-menu')")
    page.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(button).to_be_focused()
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_no_phone_menu_at_desktop_size(page: Page, size):
    goto(page, paths.SEARCH)
    expect(page.get_by_test_id("menu-button")).to_be_hidden()
    page.keyboard.press("Escape")  # nothing to close; the page stays as it is
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.console_errors == []


# ---------------------------------------------------------------------------------------
# Keyboard only: a whole booking, and every dialog (focus in, Tab stays, Esc, focus back)
# ---------------------------------------------------------------------------------------

def _tab_to(page: Page, selector: str, text: str = "", limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (and holds `text`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("([sel, text]) => { const el = document.activeElement;"
                         " return !!el && el.matches(sel) && (el.textContent || '').includes(text); }",
                         [selector, text]):
            return
    raise AssertionError(f"Tab never reached {selector} {text!r}")


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_a_whole_booking_with_the_keyboard_only(page: Page, size):
    sign_up(page, unique_user())
    goto(page, paths.SEARCH)
    _tab_to(page, "#f-q")
    page.keyboard.type("Atlas")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("result-card").filter(has_text="Meeting room Atlas")).to_have_count(1)
    expect(page.get_by_test_id("result-card")).to_have_count(1)  # the search's answer is in
    _tab_to(page, "[data-testid=result-card]", "Meeting room Atlas")
    focused = page.evaluate("document.activeElement.outerHTML.slice(0, 200)")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/service\?id=\d+"), timeout=20_000), focused
    expect(page.get_by_test_id("bookable-name")).to_have_text("Meeting room Atlas")
    expect(page.get_by_test_id("slot").first).to_be_visible()
    _tab_to(page, "[data-testid=day-chip]")  # the strip is one Tab stop
    page.keyboard.press("End")  # the last day with free times: a whole day ahead
    chip = page.locator("[data-testid=day-chip]:focus")
    day = chip.get_attribute("data-day")
    page.keyboard.press("Enter")
    expect(page.locator(f'[data-testid=day-chip][data-day="{day}"]')).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("slot").first).to_be_visible()
    _tab_to(page, "[data-testid=slot]")
    start = page.evaluate("document.activeElement.dataset.start")
    page.keyboard.press("Enter")
    expect(page.locator(f'[data-testid=slot][data-start="{start}"]')).to_have_attribute("aria-pressed", "true")
    _tab_to(page, "[data-testid=continue]")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("review-name")).to_have_text("Meeting room Atlas")
    _tab_to(page, "[role=radio]")  # the payment choice: one Tab stop, arrow keys choose
    on_site = page.get_by_role("radio", name="Pay on site")
    for _ in range(4):
        if on_site.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("ArrowDown")
    if on_site.get_attribute("aria-checked") != "true":
        page.keyboard.press("Space")
    expect(on_site).to_be_checked()
    _tab_to(page, "[data-testid=confirm]")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("status")).to_have_text("Confirmed", timeout=20_000)
    assert page.console_errors == []


def _check_dialog(page: Page, opener, role: str) -> None:
    """Open the dialog from `opener` with Enter: focus goes in, Tab and Shift+Tab stay in,
    Esc closes it and the focus is back on `opener`."""
    inside = f"!!(document.activeElement && document.activeElement.closest('[role={role}]'))"
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role(role)
    expect(dialog).to_be_visible()
    expect(dialog.locator(":focus")).to_have_count(1)
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        assert page.evaluate(inside), key
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()


def _staff(role: str) -> tuple[str, str, Actor]:
    tag = uuid.uuid4().hex[:8]
    password = f"Pw-{tag}-long-enough"
    user = accounts.create_user(username=f"{role[0]}{tag}", email=f"{role[0]}{tag}@example.com", password=password,
                                role=role, full_name=f"Staff {role} {tag}")
    return user.username, password, Actor(id=user.id, role=role)


def _provider_booking() -> tuple[str, str, booking_queries.BookingView]:
    """A provider (username, password) with a service and a guest's booking five days ahead."""
    username, password, provider = _staff("provider")
    service = catalog.create_bookable(actor=provider, kind="service", name=f"Focus studio {uuid.uuid4().hex[:6]}",
                                      duration_minutes=60, capacity=1, price_cents=0, currency="EUR",
                                      timezone="UTC")
    catalog.set_availability(actor=provider, bookable_id=service.id, exceptions=[],
                             weekly=[{"weekday": d, "start": "08:00", "end": "12:00"} for d in range(7)])
    day = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=5)
    start = dt.datetime.combine(day, dt.time(9), tzinfo=dt.timezone.utc)
    made = bookings.book(actor=Actor.guest(), service_id=service.id, start=start,
                         guest={"name": "Dana Dialog", "email": f"dana-{uuid.uuid4().hex[:8]}@example.com"})
    return username, password, made


def test_the_customer_cancel_dialog_takes_keeps_and_returns_focus(page: Page, size, live_db):
    _username, _password, made = _provider_booking()
    goto(page, f"/booking?id={made.id}&token={manage_links.booking_manage_token(made.id)}")
    _check_dialog(page, page.get_by_test_id("cancel"), "alertdialog")
    expect(page.get_by_test_id("status")).to_have_text("Confirmed")
    assert page.console_errors == []


@pytest.mark.parametrize("action", ["cancel", "reschedule"])
def test_the_provider_dialogs_take_keep_and_return_focus(page: Page, size, live_db, action):
    username, password, made = _provider_booking()
    sign_in(page, username, password)
    goto(page, paths.PROVIDER_BOOKINGS)
    row = page.locator(f'[data-testid=booking-row][data-reference="{made.reference}"]')
    _check_dialog(page, row.get_by_test_id(action), "alertdialog" if action == "cancel" else "dialog")
    expect(row.get_by_test_id("status")).to_have_text("Confirmed")
    assert page.console_errors == []


def test_the_confirm_it_is_you_dialog_takes_keeps_and_returns_focus(page: Page, size, live_db):
    person = unique_user()
    user = accounts.create_user(username=person["username"], email=person["email"], password=person["password"])
    actor = Actor(id=user.id, role="customer")
    secret = mfa.begin_enrolment(actor=actor, password=person["password"]).secret
    mfa.confirm_enrolment(actor=actor, code=pyotp.TOTP(secret).now())
    username, password, _admin = _staff("admin")
    sign_in(page, username, password)
    with db.unit_of_work() as s:  # signed in 10 minutes ago: no longer recent, so it must confirm
        s.exec(update(AuthToken).where(AuthToken.user_id == _admin.id)
               .values(created_at=utcnow() - dt.timedelta(minutes=10), reauth_at=None))
    goto(page, f"{paths.ADMIN_USERS}?id={user.id}")
    _check_dialog(page, page.get_by_test_id("reset-2fa"), "dialog")
    expect(page.get_by_test_id("reset-2fa")).to_be_visible()  # nothing was reset
    assert page.console_errors == []
