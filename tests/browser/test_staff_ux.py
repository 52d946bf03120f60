"""What a provider or an admin still hit (issue 22), on `reflex run --env prod` at 1280×800
and 390×844: times in the bookable's zone with the zone named (list, week, move dialog,
opening hours), rows that follow a language switch without a reload, translated outbox
and payment keys, the revenue tile's currency, tables as cards on a phone with every
action on screen, a new bookable's default hours / zone / success message and its place
in search, focus on the page's h1 after a client-side page change, and the day chips'
single Tab stop with arrow keys.

STAFF_SCREENSHOTS=<folder> keeps the screenshots (docs/screenshots/ holds the chosen ones)."""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import re
import uuid
import zoneinfo

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in
from tests.browser.helpers import live_db, patient_expect  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("STAFF_SCREENSHOTS")


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        pathlib.Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(pathlib.Path(SCREENSHOTS) / f"{name}.png"), full_page=False)


def new_user(role: str, tz_name: str = "UTC"):
    from booking_app.services import accounts
    from booking_app.services.actors import Actor

    tag = uuid.uuid4().hex[:8]
    password = f"Pw-{tag}-long-enough"
    user = accounts.create_user(username=f"{role[0]}{tag}", email=f"{role[0]}{tag}@example.com", password=password,
                                role=role, full_name=f"Staff {role} {tag}", timezone=tz_name)
    return user.username, password, Actor(id=user.id, role=role, timezone=tz_name)


def customer():
    username, _password, actor = new_user("customer")
    return actor


def in_viewport(page: Page, locator) -> bool:
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5


def switch_language(page: Page, lang: str) -> None:
    page.get_by_test_id("language-switcher").select_option(lang)
    expect(page.get_by_test_id("app-root")).to_have_attribute("lang", lang)


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_provider_times_are_the_bookables_with_the_zone_named(page, size, live_db):
    from booking_app.services import bookings, catalog
    from booking_app.ui.state import fmt

    # the provider's profile says New York; the bookable (and its hours) are Madrid's
    madrid = "Europe/Madrid"
    tz = zoneinfo.ZoneInfo(madrid)
    username, password, provider = new_user("provider", "America/New_York")
    service = catalog.create_bookable(actor=provider, kind="service", name=f"Studio {uuid.uuid4().hex[:6]}",
                                      duration_minutes=60, capacity=1, price_cents=0, currency="EUR",
                                      timezone=madrid)
    catalog.set_availability(actor=provider, bookable_id=service.id, exceptions=[],
                             weekly=[{"weekday": d, "start": "08:00", "end": "12:00"} for d in range(5)])
    today = dt.datetime.now(tz).date()
    day = today + dt.timedelta(days=7 - today.weekday() + 2)  # next week's Wednesday
    start = dt.datetime.combine(day, dt.time(10), tzinfo=tz)
    booking = bookings.book(actor=customer(), service_id=service.id, start=start)
    ten, eleven = fmt.time_(start, madrid, "en"), fmt.time_(start + dt.timedelta(hours=1), madrid, "en")
    abbr = start.tzname()  # CET / CEST

    sign_in(page, username, password)
    goto(page, "/provider/bookings")
    row = page.locator(f'[data-testid=booking-row][data-reference="{booking.reference}"]')
    expect(row.get_by_test_id("when")).to_contain_text(f"{ten} {abbr}")
    expect(page.get_by_test_id("zone-label")).to_have_text(
        translate("Each booking's time is in its bookable's time zone.", "en"))
    assert_no_horizontal_scroll(page)
    if size == "phone":  # the row is a card: every action on screen, each cell named
        for action in ("reschedule", "cancel"):
            expect(row.get_by_test_id(action)).to_be_visible()
            assert in_viewport(page, row.get_by_test_id(action)), action
        assert row.evaluate("el => getComputedStyle(el).display") == "block"
        page.evaluate("window.scrollTo(0, 240)")  # the card, down to its actions
        shot(page, "provider-bookings-phone")
    else:  # the actions fit in their column (Spanish: "Cancelar" whole, not cut off)
        switch_language(page, "es")
        cancel = row.get_by_test_id("cancel")
        expect(cancel).to_have_text(translate("Cancel", "es"))
        assert cancel.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
        assert in_viewport(page, cancel)
        # the rows followed the switch, without a reload
        expect(row.get_by_test_id("status")).to_have_text(translate("Confirmed", "es"))
        expect(row.get_by_test_id("when")).to_contain_text(fmt.date_(start, "es", "medium", madrid))
        switch_language(page, "en")
        expect(row.get_by_test_id("status")).to_have_text(translate("Confirmed", "en"))

    # the week of the booking: in Madrid time, named, hours as saved
    page.get_by_test_id("mode-week").click()
    expect(page.get_by_test_id("zone-label")).to_contain_text(madrid)
    page.get_by_test_id("week-next").click()
    wednesday = page.locator(f'[data-testid=week-day][data-day="{day.isoformat()}"]')
    expect(wednesday.get_by_test_id("week-open")).to_contain_text(
        f"{fmt.time_(dt.datetime.combine(day, dt.time(8), tzinfo=tz), madrid, 'en')}–"
        f"{fmt.time_(dt.datetime.combine(day, dt.time(12), tzinfo=tz), madrid, 'en')}")
    expect(wednesday.get_by_test_id("week-item")).to_contain_text(ten)
    shot(page, f"provider-week-{size}")
    page.get_by_test_id("mode-month").click()
    expect(page.get_by_test_id("month-day").first).to_be_visible()
    day_button = page.get_by_test_id("month-day").first
    number = day_button.locator(".rt-Text").first.inner_text()
    assert number in (day_button.evaluate("el => el.textContent") or "")  # the name holds the visible text
    assert day_button.get_attribute("aria-label") is None
    shot(page, f"provider-month-{size}")

    # moved to 11:00 in the dialog → 11:00 in the list
    page.get_by_test_id("mode-list").click()
    row.get_by_test_id("reschedule").click()
    select = page.get_by_test_id("resched-slot")
    option = select.locator("option", has_text=re.compile("^" + re.escape(eleven)))
    select.select_option(option.first.get_attribute("value"))
    page.get_by_test_id("confirm-reschedule").click()
    expect(row.get_by_test_id("when")).to_contain_text(f"{eleven} {abbr}")
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_new_bookable_defaults_message_and_search(page, size, live_db):
    from booking_app.services import catalog

    username, password, provider = new_user("provider", "Europe/Berlin")
    # one without any hours is not offered in search
    hidden = catalog.create_bookable(actor=provider, kind="service", name=f"Unready {uuid.uuid4().hex[:6]}",
                                     duration_minutes=30, capacity=1, price_cents=0, currency="EUR",
                                     timezone="Europe/Berlin")
    sign_in(page, username, password)
    goto(page, "/provider/bookable")
    expect(page.locator("#field-timezone")).to_have_value("Europe/Berlin")
    expect(page.get_by_test_id("new-hours").get_by_test_id("range-start")).to_have_count(5)
    name = f"Sauna {uuid.uuid4().hex[:6]}"
    page.fill("#field-name", name)
    page.get_by_test_id("save-bookable").click()
    page.wait_for_url("**/provider/bookable?id=*created=1")
    expect(page.get_by_test_id("form-ok").first).to_have_text(translate(
        "“{name}” is created. Customers can book it inside its opening hours.", "en", name=name))
    expect(page.get_by_test_id("range-start")).to_have_count(5)  # saved with it
    expect(page.get_by_test_id("range-start").first).to_have_value("09:00")

    goto(page, f"/search?q={name}")
    expect(page.get_by_test_id("result-card")).to_have_count(1)
    goto(page, f"/search?q={hidden.name}")
    expect(page.get_by_test_id("result-card")).to_have_count(0)


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_admin_tables_translated_cards_and_currency(page, size, live_db):
    username, password, _admin = new_user("admin")
    sign_in(page, username, password)

    goto(page, "/admin/dashboard")
    money = re.compile(r"[€$£¥]|\b[A-Z]{3}\b")  # an amount with its currency, never a bare "0"
    expect(page.get_by_test_id("dash-revenue")).to_have_text(money)

    goto(page, "/admin/outbox")
    expect(page.get_by_test_id("outbox")).to_be_visible()
    for key in ("booking_confirmed", "booking_pending", "provider_new_booking"):
        expect(page.get_by_test_id("outbox").get_by_text(key, exact=True)).to_have_count(0)

    goto(page, "/admin/users")
    row = page.get_by_test_id("user-row").first
    expect(row).to_be_visible()
    table = page.get_by_test_id("users")
    expect(table).to_have_attribute("tabindex", "0")
    expect(table).to_have_attribute("role", "region")
    if size == "phone":  # cards: the Details button on screen, the table not wider than the page
        assert in_viewport(page, row.get_by_test_id("open-user"))
        assert table.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
        shot(page, "admin-users-phone")
        row.get_by_test_id("open-user").click()
        expect(page.get_by_test_id("user-detail")).to_be_visible()
        assert_no_horizontal_scroll(page)
    # a language switch: the role badges follow without a reload
    role = row.get_by_test_id("role")
    before = role.inner_text()
    switch_language(page, "es")
    expect(role).not_to_have_text(before)
    switch_language(page, "en")
    expect(role).to_have_text(before)

    goto(page, "/admin/reports")
    expect(page.get_by_test_id("sum-net")).to_have_text(money)
    methods = page.get_by_test_id("report-methods")
    expect(methods).to_have_attribute("aria-label", translate("Revenue per payment method", "en"))
    expect(methods.get_by_text("on_site", exact=True)).to_have_count(0)
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_focus_goes_to_the_heading_after_a_page_change(page, size, live_db):
    username, password, _provider = new_user("provider", "Europe/Paris")
    sign_in(page, username, password)
    goto(page, "/provider")
    page.get_by_test_id("section-tabs").get_by_role("link", name=translate("Bookings", "en")).click()
    page.wait_for_url("**/provider/bookings")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_be_focused()
    expect(heading).to_have_attribute("tabindex", "-1")
    expect(page.get_by_test_id("route-announcer")).to_have_text(translate("Bookings", "en"))


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_day_chips_are_one_tab_stop_with_arrow_keys(page, size):
    goto(page, "/search?q=Atlas")
    page.get_by_test_id("result-card").first.click()
    chips = page.locator("[data-testid=day-chip]:not([disabled])")
    expect(chips.first).to_be_visible()
    expect(page.locator("[data-testid=day-chip][tabindex='0']")).to_have_count(1)
    current = page.locator("[data-testid=day-chip][tabindex='0']")
    current.focus()
    first_day = current.get_attribute("data-day")
    page.keyboard.press("ArrowRight")
    moved = page.evaluate("document.activeElement.getAttribute('data-day')")
    assert moved and moved != first_day
    expect(page.locator("[data-testid=day-chip][tabindex='0']")).to_have_count(1)
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.getAttribute('data-day')") == first_day


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_week_zone_picker_when_the_bookables_zones_differ(page, size, live_db):
    from booking_app.services import catalog
    from booking_app.ui.state import fmt

    username, password, provider = new_user("provider", "UTC")
    zones = {"Europe/Madrid": "08:00", "America/New_York": "13:00"}
    for tz_name, opens in zones.items():
        b = catalog.create_bookable(actor=provider, kind="service", name=f"Desk {tz_name}", duration_minutes=60,
                                    capacity=1, price_cents=0, currency="EUR", timezone=tz_name)
        catalog.set_availability(actor=provider, bookable_id=b.id, exceptions=[],
                                 weekly=[{"weekday": d, "start": opens, "end": "17:00"} for d in range(5)])
    sign_in(page, username, password)
    goto(page, "/provider/bookings")
    page.get_by_test_id("mode-week").click()
    picker = page.get_by_test_id("zone-picker")
    expect(picker.locator("option")).to_have_count(2)
    picker.select_option("America/New_York")
    expect(page.get_by_test_id("zone-label")).to_contain_text("America/New_York")
    tz = zoneinfo.ZoneInfo("America/New_York")
    monday = page.get_by_test_id("week-day").first
    day = dt.date.fromisoformat(monday.get_attribute("data-day"))
    # New York's own hours start at 13:00 there (Madrid's 08:00 is 02:00 in New York)
    expect(monday.get_by_test_id("week-open")).to_contain_text(
        fmt.time_(dt.datetime.combine(day, dt.time(13), tzinfo=tz), "America/New_York", "en"))
    picker.select_option("Europe/Madrid")
    expect(page.get_by_test_id("zone-label")).to_contain_text("Europe/Madrid")
