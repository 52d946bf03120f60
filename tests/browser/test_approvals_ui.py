"""Approval in the browser (issue 24, point 2), one lean flow: a customer books a room that
requires approval and sees the request awaiting it (no payment asked); the provider
approves it from the queue on the provider pages; the customer sees it confirmed."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import goto, open_room, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_customer_requests_provider_approves_from_the_queue(page, size, live_db):
    from booking_app.services import availability

    bookable_id = open_room("Studio", requires_approval=True).id
    day = dt.date.today() + dt.timedelta(days=3)
    start = availability.slots(bookable_id=bookable_id, date_from=day, date_to=day)[0].start

    sign_in(page, "customer", "demo-customer-pass")
    goto(page, "/book?" + urlencode({"id": bookable_id, "start": start.isoformat()}))
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    booking_url = page.url
    expect(page.get_by_test_id("status")).to_have_text(translate("Awaiting approval", "en"))
    expect(page.get_by_test_id("approval-note")).to_be_visible()
    expect(page.get_by_test_id("pay")).to_have_count(0)
    expect(page.get_by_test_id("reschedule")).to_be_visible()  # (shown with "Cancel": the request may still go)
    reference = page.get_by_test_id("reference").inner_text()

    page.context.clear_cookies()  # (signed out: the provider signs in)
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider/approvals")
    row = page.get_by_test_id("request-row").filter(has_text=reference)
    expect(row.get_by_test_id("request-when")).to_contain_text("(UTC)")  # the bookable's zone, named
    row.get_by_test_id("approve").click()
    expect(page.get_by_text(translate("Approved: the customer has been told.", "en"))).to_be_visible()
    expect(page.get_by_test_id("request-row").filter(has_text=reference)).to_have_count(0)

    page.context.clear_cookies()
    sign_in(page, "customer", "demo-customer-pass")
    goto(page, booking_url)
    expect(page.get_by_test_id("status")).to_have_text(translate("Confirmed", "en"))
    assert page.console_errors == []
