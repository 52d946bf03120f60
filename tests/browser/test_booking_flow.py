"""The customer flow on `reflex run --env prod` with a real database, at 1280×800 and
390×844: search → bookable → slot → review → confirm (pay on site) → confirmation →
My bookings → reschedule → cancel; as a guest; and two browsers racing for one slot."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_up, unique_user

pytestmark = pytest.mark.browser


def open_bookable(page: Page, query: str, name: str) -> None:
    goto(page, f"/search?q={query}")
    card = page.get_by_test_id("result-card").filter(has_text=name)
    expect(card).to_have_count(1)
    card.click()
    expect(page.get_by_test_id("bookable-name")).to_have_text(name)
    expect(page.get_by_test_id("slot").first).to_be_visible()
    roomy_day(page)


def roomy_day(page: Page, need: int = 1) -> None:
    """A day of the strip with at least `need` free slots, from the last one back: today may
    have one slot left or none, and the last day may end at the booking horizon (now + the
    bookable's max advance), so either can hold a single slot depending on when the suite runs."""
    # the days are read once and addressed by date: the strip re-renders as slots arrive (live
    # slots, full times), so an index into "the enabled chips" may point at another chip later
    days = page.locator('[data-testid="day-chip"]:not([disabled])').evaluate_all("els => els.map(e => e.dataset.day)")
    for day in reversed(days):
        chip = page.locator(f'[data-testid="day-chip"][data-day="{day}"]')
        if not chip.is_enabled():
            continue  # no free slot left that day (e.g. the booking being moved holds its last one)
        chip.click()
        expect(chip).to_have_attribute("aria-pressed", "true")  # (the slots come with the same update)
        expect(page.get_by_test_id("slot").first).to_be_visible()
        if page.get_by_test_id("slot").count() >= need:
            return
    raise AssertionError(f"no day with {need} free slots in the strip")


def pick_slot(page: Page, index: int = 0) -> str:
    slot = page.get_by_test_id("slot").nth(index)
    start = slot.get_attribute("data-start")
    slot.click()
    expect(page.get_by_test_id("continue")).to_be_visible()
    return start


def test_new_user_books_reschedules_and_cancels(page, size):
    user = unique_user()
    sign_up(page, user)
    open_bookable(page, "Atlas", "Meeting room Atlas")
    expect(page.get_by_test_id("policy")).to_have_text(translate("Free cancellation until the start.", "en"))
    assert_no_horizontal_scroll(page)
    pick_slot(page, 0)
    page.get_by_test_id("continue").click()

    page.wait_for_url(re.compile(r"/book\?"))
    expect(page.get_by_test_id("review-name")).to_have_text("Meeting room Atlas")
    page.get_by_role("radio", name="Pay on site").click()
    assert_no_horizontal_scroll(page)
    page.get_by_test_id("confirm").dblclick()  # a double click books once

    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    expect(page.get_by_test_id("status")).to_have_text("Confirmed")
    reference = page.get_by_test_id("reference").inner_text()
    assert re.fullmatch(r"[A-Z0-9-]{4,}", reference)
    assert_no_horizontal_scroll(page)

    # .ics download
    with page.expect_download() as download_info:
        page.get_by_test_id("ics").click()
    assert download_info.value.suggested_filename == f"booking-{reference}.ics"

    goto(page, "/my-bookings")
    rows = page.get_by_test_id("upcoming").get_by_test_id("booking-row")
    expect(rows).to_have_count(1)  # the double click did not book twice
    row = rows.first
    expect(row).to_contain_text(reference)
    assert_no_horizontal_scroll(page)

    # reschedule: pick another slot, atomically moved
    row.get_by_test_id("reschedule").click()
    # the move's own banner comes with the page's fresh slots: until then the strip may still be
    # the one of the first visit, where the day just booked was open
    expect(page.get_by_test_id("current-time")).to_contain_text(translate("Currently: {when}", "en", when="").strip())
    expect(page.get_by_test_id("slot").first).to_be_visible()
    roomy_day(page, need=2)
    new_start = pick_slot(page, 1)
    page.get_by_test_id("continue").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    expect(page.get_by_test_id("reference")).to_have_text(reference)

    # cancel from My bookings, seeing what the policy refunds first
    goto(page, "/my-bookings")
    row = page.get_by_test_id("upcoming").get_by_test_id("booking-row").first
    row.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("cancel-text")).to_contain_text(
        translate("Nothing has been paid, so there is nothing to refund.", "en"))
    page.get_by_test_id("confirm-cancel").click()
    past = page.get_by_test_id("past").get_by_test_id("booking-row")
    expect(past.first).to_contain_text(reference)
    expect(past.first.get_by_test_id("status")).to_have_text("Cancelled")
    expect(page.get_by_test_id("upcoming")).to_have_count(0)
    assert new_start
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_guest_books_seats_of_an_event(page, size):
    open_bookable(page, "pottery", "Pottery workshop")
    pick_slot(page, 0)
    page.get_by_test_id("quantity").select_option("2")
    page.get_by_test_id("continue").click()
    page.wait_for_url(re.compile(r"/book\?.*qty=2"))
    page.fill("#field-guest_name", "Gia Guest")
    page.fill("#field-guest_email", "gia@example.com")
    page.get_by_role("radio", name="Pay on site").click()
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+&token="))
    expect(page.get_by_test_id("status")).to_have_text("Confirmed")
    expect(page.get_by_text("2 places")).to_be_visible()
    assert_no_horizontal_scroll(page)
    # the signed link works in another browser too
    path = page.url[page.url.index("/booking"):]
    page.context.clear_cookies()
    goto(page, path)
    expect(page.get_by_test_id("reference")).to_be_visible()
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_two_browsers_race_for_the_same_slot(open_page):
    first, second = open_page(), open_page()
    for pg in (first, second):
        open_bookable(pg, "Haircut", "Haircut")
    start = first.get_by_test_id("slot").nth(2).get_attribute("data-start")
    for pg in (first, second):
        pg.locator(f'[data-testid=slot][data-start="{start}"]').click()
        pg.get_by_test_id("continue").click()
        pg.wait_for_url(re.compile(r"/book\?"))
        pg.fill("#field-guest_name", "Racer")
        pg.fill("#field-guest_email", "racer@example.com")
    first.get_by_test_id("confirm").click()
    first.wait_for_url(re.compile(r"/booking\?id=\d+"))
    second.get_by_test_id("confirm").click()
    expect(second.get_by_test_id("form-error")).to_be_visible()
    alternatives = second.get_by_test_id("alternative")
    expect(alternatives.first).to_be_visible()
    alternatives.first.click()
    second.get_by_test_id("confirm").click()
    second.wait_for_url(re.compile(r"/booking\?id=\d+"))
    expect(second.get_by_test_id("status")).to_have_text("Confirmed")


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_language_switch_keeps_the_page_and_flips_for_arabic(page, size):
    open_bookable(page, "Boreal", "Studio Boreal")
    url = page.url
    page.get_by_test_id("language-switcher").select_option("ar")
    expect(page.get_by_test_id("app-root")).to_have_attribute("dir", "rtl")
    expect(page.get_by_text(translate("Pick a time", "ar"))).to_be_visible()
    assert page.url == url
    assert_no_horizontal_scroll(page)
    for lang in ("de", "fr", "es"):
        page.get_by_test_id("language-switcher").select_option(lang)
        expect(page.get_by_text(translate("Pick a time", lang))).to_be_visible()
        assert_no_horizontal_scroll(page)
    assert page.url == url
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_sign_up_inline_returns_to_the_review(page, size):
    open_bookable(page, "Boreal", "Studio Boreal")
    pick_slot(page, 0)
    page.get_by_test_id("continue").click()
    page.wait_for_url(re.compile(r"/book\?"))
    # the link's way back is the review page's, set by its load (until then it names the page before)
    sign_up = page.get_by_role("link", name="Sign up").last
    expect(sign_up).to_have_attribute("href", re.compile(r"next=%2Fbook%3F"))
    sign_up.click()
    page.wait_for_url(re.compile(r"/sign-up\?next="))
    user = unique_user()
    page.fill("#field-full_name", user["full_name"])
    page.fill("#field-username", user["username"])
    page.fill("#field-email", user["email"])
    page.fill("#field-password", user["password"])
    page.get_by_test_id("sign-up-submit").click()
    page.wait_for_url(re.compile(r"/book/?\?id="))  # a full page load after signing up (the cookie hand-off)
    expect(page.locator("strong", has_text=user["full_name"])).to_be_visible()
    page.get_by_role("radio", name="Pay on site").click()
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+$"))
    expect(page.get_by_test_id("status")).to_have_text("Confirmed")
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_pay_by_card_through_stripe_checkout(page, size, live_server, stripe_stub):
    """Card: the booking is held (pending), the customer goes to Stripe Checkout; when the
    signed webhook arrives the booking is confirmed and paid."""
    import urllib.request

    page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<html><body>Stripe Checkout (stub)</body></html>"))
    user = unique_user()
    sign_up(page, user)
    open_bookable(page, "Physio", "Physiotherapy session")
    pick_slot(page, 0)
    page.get_by_test_id("continue").click()
    page.wait_for_url(re.compile(r"/book\?"))
    page.get_by_role("radio", name="Card").click()
    before = set(stripe_stub.sessions)
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"^https://checkout\.stripe\.com/"))
    (session_id,) = set(stripe_stub.sessions) - before

    goto(page, "/my-bookings")
    row = page.get_by_test_id("upcoming").get_by_test_id("booking-row").first
    expect(row.get_by_test_id("status")).to_have_text("Awaiting payment")

    session = stripe_stub.complete_session(session_id)
    payload, header = stripe_stub.event("checkout.session.completed", session)
    request = urllib.request.Request(f"{live_server}/api/payments/webhook/stripe",
                                     data=payload.encode() if isinstance(payload, str) else payload, method="POST",
                                     headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as resp:
        assert resp.status == 200
    goto(page, "/my-bookings")
    row = page.get_by_test_id("upcoming").get_by_test_id("booking-row").first
    expect(row.get_by_test_id("status")).to_have_text("Confirmed")
    expect(row).to_contain_text("Paid")
    assert_no_horizontal_scroll(page)
