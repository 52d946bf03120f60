"""The provider's "Outside calendars" page at 1280×800 and 390×844: a private address is refused
next to the field; a calendar is added (its first fetch fails: the error is shown); once it
syncs from a local feed server (this process, WEBHOOK_ALLOW_PRIVATE_TARGETS=true: the app
server itself refuses private targets, as in production) the page shows when it synced and
no error, its busy slot is gone; "Remove" takes it away and frees the slot."""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import update
from sqlmodel import select

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, axe_violations, goto, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)
from tests.test_calendar_sync import Feed

pytestmark = pytest.mark.browser
BUSY = dt.datetime(2027, 3, 15, 9, tzinfo=dt.timezone.utc)  # 10:00 Berlin, busy in tests/fixtures/ics/busy.ics


def test_provider_adds_sees_the_sync_and_removes_a_calendar(page, size, live_db, monkeypatch):  # noqa: F811
    from booking_app import db
    from booking_app.config import reset_settings_cache
    from booking_app.models import CalendarSubscription, User
    from booking_app.services import availability, calendar_sync
    from tests.factories import ALL_WEEK, make_bookable

    with db.read_session() as s:
        provider = s.exec(select(User).where(User.username == "provider")).one()
    room = make_bookable(provider, weekly=ALL_WEEK, timezone="Europe/Berlin", max_advance_days=730,
                         name=f"Calendar room {size}")

    def busy_slot_free() -> bool:
        return BUSY in {v.start for v in availability.slots(bookable_id=room.id, date_from="2027-03-15",
                                                             date_to="2027-03-15")}

    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider/calendars")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("Outside calendars", "en"))

    url_field = page.get_by_label(translate("Calendar address (https:// or webcal://)", "en"))
    url_field.fill("http://127.0.0.1:9/busy.ics")
    page.get_by_test_id("add-calendar").click()
    expect(page.get_by_test_id("url-error")).to_have_text(
        translate("This address points to a private or local network, which is not allowed.", "en"))

    public = f"https://93.184.216.34/busy-{size}-{dt.datetime.now().timestamp():.0f}.ics"
    url_field.fill(public)
    page.get_by_test_id("add-calendar").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(
        translate("The calendar was added, but it could not be read yet.", "en"), timeout=45_000)
    row = page.get_by_test_id("calendar-row").filter(has_text=public)
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("sync-error")).not_to_have_text("—")
    expect(row.get_by_test_id("synced")).to_have_text(translate("Not yet", "en"))
    assert busy_slot_free()
    if size == "phone":
        assert_no_horizontal_scroll(page)
    assert axe_violations(page) == {}

    # the feed moves to a local server; the job (here: this process) syncs it
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    reset_settings_cache()
    feed = Feed()
    try:
        with db.unit_of_work() as s:
            s.exec(update(CalendarSubscription).where(CalendarSubscription.url == public).values(url=feed.url))
            sub_id = s.exec(select(CalendarSubscription.id).where(CalendarSubscription.url == feed.url)).one()
        assert calendar_sync.sync_now(sub_id) == "synced"
    finally:
        feed.close()
    assert not busy_slot_free()
    goto(page, "/provider/calendars")
    row = page.get_by_test_id("calendar-row").filter(has_text=feed.url)
    expect(row.get_by_test_id("sync-error")).to_have_text("—")
    expect(row.get_by_test_id("synced")).not_to_have_text(translate("Not yet", "en"))
    if size == "phone":
        assert_no_horizontal_scroll(page)

    row.get_by_test_id("remove").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(translate("The calendar was removed.", "en"))
    expect(page.get_by_test_id("calendar-row").filter(has_text=feed.url)).to_have_count(0)
    assert busy_slot_free()
    assert not page.console_errors, page.console_errors
