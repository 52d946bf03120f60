"""Recurring series in the browser (issue 24, point 3), one lean flow: a customer turns on
"Repeat this booking" on the review step, previews four weekly dates (all free), books the
series, opens its second date from the series card and cancels "this and the following"."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import goto, open_room, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_customer_books_a_weekly_series_with_preview_and_cancels_this_and_following(page, size, live_db):
    from booking_app.services import availability, series

    bookable_id = open_room("Weekly room").id
    day = dt.date.today() + dt.timedelta(days=2)
    start = availability.slots(bookable_id=bookable_id, date_from=day, date_to=day)[10].start
    sign_in(page, "customer", "demo-customer-pass")
    goto(page, "/book?" + urlencode({"id": bookable_id, "start": start.isoformat()}))
    page.get_by_test_id("series-toggle").click()
    page.get_by_test_id("series-frequency").select_option("weekly")
    page.get_by_test_id("series-count").fill("4")
    page.get_by_test_id("series-preview").click()
    occurrences = page.get_by_test_id("series-occurrence")
    expect(occurrences).to_have_count(4)
    expect(page.locator('[data-testid=series-occurrence][data-free="1"]')).to_have_count(4)
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    card = page.get_by_test_id("series-card")
    expect(card.get_by_test_id("series-row")).to_have_count(4)

    # the second date, from the series card: cancel it and the following
    card.get_by_test_id("series-row").nth(1).get_by_role("link").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    second_id = int(re.search(r"id=(\d+)", page.url).group(1))
    page.get_by_test_id("series-cancel-following").click()
    page.get_by_test_id("series-confirm-cancel").click()
    expect(page.get_by_test_id("status")).to_have_text("Cancelled")
    from booking_app.services.actors import Actor

    view = series.series_of_booking(actor=Actor.system(), booking_id=second_id)
    assert view is not None and [b.status for b in view.bookings] == ["confirmed", "cancelled", "cancelled",
                                                                      "cancelled"]
    assert [b.start for b in view.bookings] == [start + dt.timedelta(weeks=k) for k in range(4)]
    assert page.console_errors == []
