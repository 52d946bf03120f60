"""What a customer still hit (issue 22), at 1280×800 and 390×844: the cancellation cut-off
said on the page (in the viewer's zone) and only allowed actions offered; a past time from
a URL leads back to the free times instead of offering Confirm; reschedule shows the current
time and says where the booking moved; the booking's page keeps location and policy;
cancelled bookings offer no calendar or change actions; the cancel dialog takes and returns
focus and traps Tab; the bookable page does not shift when its times arrive.

Data is seeded through the services into the live server's database (one server for the
whole session)."""
from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from booking_app.services import accounts, availability, booking_queries, bookings, catalog, manage_links
from booking_app.services.actors import Actor
from tests.browser.helpers import assert_no_horizontal_scroll, find_bookable_id, goto, sign_in, unique_user
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("CUSTOMER_UX_SHOTS", "")  # a folder: screenshots of each state are saved there
#: a named zone in parentheses at the end of the cut-off sentence ("(Europe/Madrid)." / "(UTC).")
ZONE_NAMED = re.compile(r"\([A-Za-z_]+(?:/[A-Za-z0-9_+-]+)*\)\.$")


def _shot(page: Page, name: str, size: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}-{size}.png"), full_page=True)


def _free_starts(bookable_id: int, first_day: int = 2, last_day: int = 12) -> list[dt.datetime]:
    today = dt.datetime.now(dt.timezone.utc).date()
    found = availability.slots(bookable_id=bookable_id, date_from=today + dt.timedelta(days=first_day),
                               date_to=today + dt.timedelta(days=last_day), actor=Actor.guest())
    return [s.start for s in found]


def _guest_booking(bookable_id: int, start: dt.datetime, name: str) -> tuple[booking_queries.BookingView, str]:
    made = bookings.book(actor=Actor.guest(), service_id=bookable_id, start=start,
                         guest={"name": name, "email": f"{name.lower().replace(' ', '-')}@example.com"})
    return made, f"/booking?id={made.id}&token={manage_links.booking_manage_token(made.id)}"


_CUTOFF_ROOM: dict[str, int] = {}


def _late_room() -> int:
    """A free room whose cut-off is 30 days: every booking in the next weeks is past it."""
    if "id" not in _CUTOFF_ROOM:
        atlas = catalog.get_bookable(bookable_id=find_bookable_id("Meeting room Atlas"))
        provider = Actor(id=atlas.provider_id, role="provider", timezone="Europe/Madrid")
        room = catalog.create_bookable(actor=provider, name="Late room Cirrus", kind="room", duration_minutes=60,
                                       timezone="Europe/Madrid", location="Madrid Este", price_cents=0,
                                       currency="EUR", cancel_cutoff_hours=30 * 24, refund_percent=100)
        catalog.set_availability(actor=provider, bookable_id=room.id, exceptions=[],
                                 weekly=[{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)])
        _CUTOFF_ROOM["id"] = room.id
    return _CUTOFF_ROOM["id"]


def test_past_the_cutoff_the_page_says_so_and_offers_no_cancel_or_change(page: Page, size, live_db):
    room = _late_room()
    made, path = _guest_booking(room, _free_starts(room)[3], "Cora Cutoff")
    goto(page, path)
    expect(page.get_by_test_id("reference")).to_have_text(made.reference)
    note = page.get_by_test_id("cutoff-note")
    expect(note).to_contain_text("You could cancel or change this booking until")
    assert ZONE_NAMED.search(note.inner_text().strip()), note.inner_text()
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    expect(page.get_by_test_id("reschedule")).to_have_count(0)
    expect(page.get_by_test_id("ics")).to_be_visible()  # still happening: the calendar is still useful
    expect(page.get_by_test_id("location")).to_contain_text("Madrid Este")
    assert_no_horizontal_scroll(page)
    _shot(page, "cutoff-passed", size)

    # an old "Change time" link: the current time is shown, moving is not offered
    token = manage_links.booking_manage_token(made.id)
    goto(page, f"/service?id={room}&reschedule={made.id}&token={token}")
    expect(page.get_by_test_id("current-time")).to_contain_text("Currently:")
    expect(page.get_by_test_id("move-note")).to_contain_text("You could cancel or change this booking until")
    page.get_by_test_id("slot").first.click()
    expect(page.get_by_test_id("move-closed")).to_be_visible()
    expect(page.get_by_test_id("continue")).to_have_count(0)
    assert page.console_errors == []


def test_booking_page_keeps_location_and_policy_and_a_cancelled_booking_offers_no_actions(page: Page, size, live_db):
    haircut = find_bookable_id("Haircut")
    made, path = _guest_booking(haircut, _free_starts(haircut)[-1 if size == "phone" else -2], "Lena Location")
    goto(page, path)
    expect(page.get_by_test_id("location")).to_contain_text("Madrid Centro")
    expect(page.get_by_test_id("policy")).to_have_text(translate("Free cancellation until the start.", "en"))
    note = page.get_by_test_id("cutoff-note")
    expect(note).to_contain_text("You can cancel or change this booking until")
    assert ZONE_NAMED.search(note.inner_text().strip()), note.inner_text()
    expect(page.get_by_test_id("ics")).to_be_visible()
    expect(page.get_by_test_id("reschedule")).to_be_visible()
    assert_no_horizontal_scroll(page)
    _shot(page, "confirmation", size)

    page.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("cancel-text")).to_be_visible()
    page.get_by_test_id("confirm-cancel").click()
    expect(page.get_by_test_id("status")).to_have_text("Cancelled")
    expect(page.get_by_test_id("ics")).to_have_count(0)
    expect(page.get_by_test_id("reschedule")).to_have_count(0)
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    expect(page.get_by_test_id("cutoff-note")).to_have_count(0)
    expect(page.get_by_test_id("location")).to_contain_text("Madrid Centro")  # the facts stay
    _shot(page, "cancelled", size)
    assert page.console_errors == []


def test_my_bookings_offer_only_what_each_booking_allows(page: Page, size, live_db):
    """My bookings: a booking past its cut-off says until when it could be changed and offers
    no cancel/change; a cancelled one offers no calendar either; an open one offers all three."""
    who = unique_user()
    user = accounts.register(username=who["username"], email=who["email"], password=who["password"],
                             full_name=who["full_name"], timezone="Europe/Madrid")
    me = Actor(id=user.id, role="customer", timezone="Europe/Madrid")
    room, haircut = _late_room(), find_bookable_id("Haircut")
    late = bookings.book(actor=me, service_id=room, start=_free_starts(room)[5])
    open_one = bookings.book(actor=me, service_id=haircut, start=_free_starts(haircut)[-8])
    gone = bookings.book(actor=me, service_id=haircut, start=_free_starts(haircut)[-9])
    bookings.cancel(actor=me, booking_id=gone.id)
    sign_in(page, who["username"], who["password"])
    goto(page, "/my-bookings")
    row = page.get_by_test_id("upcoming").locator(f'[data-reference="{late.reference}"]')
    expect(row.get_by_test_id("cutoff-note")).to_contain_text("(Europe/Madrid).")
    expect(row.get_by_test_id("cutoff-note")).to_contain_text("You could cancel or change this booking until")
    expect(row.get_by_test_id("cancel")).to_have_count(0)
    expect(row.get_by_test_id("reschedule")).to_have_count(0)
    expect(row.get_by_test_id("ics")).to_have_count(1)
    row = page.get_by_test_id("upcoming").locator(f'[data-reference="{open_one.reference}"]')
    expect(row.get_by_test_id("cutoff-note")).to_contain_text("You can cancel or change this booking until")
    for action in ("cancel", "reschedule", "ics"):
        expect(row.get_by_test_id(action)).to_have_count(1)
    row = page.get_by_test_id("past").locator(f'[data-reference="{gone.reference}"]')
    expect(row.get_by_test_id("status")).to_have_text("Cancelled")
    for action in ("cancel", "reschedule", "ics", "cutoff-note"):
        expect(row.get_by_test_id(action)).to_have_count(0)
    assert_no_horizontal_scroll(page)
    _shot(page, "my-bookings", size)
    assert page.console_errors == []


def _focus_in_dialog(page: Page) -> bool:
    return page.evaluate("!!(document.activeElement && document.activeElement.closest('[role=alertdialog]'))")


def test_cancel_dialog_takes_traps_and_returns_focus(page: Page, size, live_db):
    haircut = find_bookable_id("Haircut")
    _made, path = _guest_booking(haircut, _free_starts(haircut)[-3 if size == "phone" else -4], "Fay Focus")
    goto(page, path)
    opener = page.get_by_test_id("cancel")
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("cancel-text")).to_contain_text(
        translate("Nothing has been paid, so there is nothing to refund.", "en"))
    expect(dialog.locator(":focus")).to_have_count(1)  # focus moved into the dialog
    for _ in range(5):  # Tab and Shift+Tab stay inside
        page.keyboard.press("Tab")
        assert _focus_in_dialog(page)
    page.keyboard.press("Shift+Tab")
    assert _focus_in_dialog(page)
    _shot(page, "cancel-dialog", size)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()  # back on the button that opened it
    # ... and it opens again from the keyboard; "Keep it" closes it the same way
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.get_by_test_id("keep").click()
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()  # back on the button that opened it
    expect(page.get_by_test_id("status")).to_have_text("Confirmed")
    assert page.console_errors == []


def test_reschedule_shows_the_current_time_and_says_where_it_moved(page: Page, size, live_db):
    haircut = find_bookable_id("Haircut")
    starts = _free_starts(haircut, 3, 12)
    made, path = _guest_booking(haircut, starts[-5 if size == "phone" else -6], "Remy Reschedule")
    goto(page, path)
    when = page.get_by_test_id("reference")
    expect(when).to_have_text(made.reference)
    page.get_by_test_id("reschedule").click()
    current = page.get_by_test_id("current-time")
    expect(current).to_contain_text("Currently:")
    expect(page.get_by_test_id("move-note")).to_contain_text("You can cancel or change this booking until")
    _shot(page, "reschedule", size)
    chip = page.locator('[data-testid="day-chip"]:not([disabled])').last
    chip.click()
    expect(chip).to_have_attribute("aria-pressed", "true")
    slot = page.get_by_test_id("slot").first
    new_start = slot.get_attribute("data-start")
    slot.click()
    page.get_by_test_id("continue").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+.*moved=1"))
    moved = page.get_by_test_id("moved")
    expect(moved).to_contain_text("Your booking was moved to")
    assert booking_queries.get_booking(actor=Actor.guest(), booking_id=made.id,
                                manage_token=manage_links.booking_manage_token(made.id)).start == \
        dt.datetime.fromisoformat(new_start)
    _shot(page, "moved", size)
    assert page.console_errors == []


def test_a_past_time_from_a_url_leads_back_to_the_free_times(page: Page, size, live_db):
    haircut = find_bookable_id("Haircut")
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                                               microsecond=0)
    goto(page, f"/book?id={haircut}&start={past.isoformat().replace('+00:00', 'Z')}")
    expect(page.get_by_test_id("slot-unavailable")).to_have_text(
        translate("This time has passed. Pick another time.", "en"))
    expect(page.get_by_test_id("confirm")).to_have_count(0)
    assert_no_horizontal_scroll(page)
    _shot(page, "past-slot", size)
    page.get_by_test_id("see-slots").click()
    page.wait_for_url(re.compile(rf"/service\?id={haircut}"))
    expect(page.get_by_test_id("slot").first).to_be_visible()
    assert page.console_errors == []


CLS_OBSERVER = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) { if (!entry.hadRecentInput) window.__cls += entry.value; }
}).observe({type: 'layout-shift', buffered: true});
"""


def test_the_bookable_page_does_not_shift_when_its_times_arrive(page: Page, size, live_db):
    page.add_init_script(CLS_OBSERVER)
    haircut = find_bookable_id("Haircut")
    page.goto(f"/service?id={haircut}")
    expect(page.get_by_test_id("slot").first.or_(page.get_by_test_id("no-slots"))).to_be_visible(timeout=30_000)
    page.wait_for_timeout(800)
    cls = page.evaluate("window.__cls")
    print(f"bookable page CLS at {size}: {cls:.4f}")
    assert cls < 0.01, cls  # (what is left is the header's, not this page's)
