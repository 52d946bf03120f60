"""Discount codes in the browser (issue 26, point 1), one lean flow at desktop and phone
size (the code box and its Apply button share a row): a guest types an unknown code at the
review step and gets the service's message inline; the provider's code shows the discount
and the price to pay; the booking keeps the discounted price. Then the provider's staff page:
the code's card counts the use, a code made with the form appears as a card and is
deactivated."""
from __future__ import annotations

import datetime as dt
import re
import uuid
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, demo_actor, goto, open_room, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def _priced_room_with_a_code() -> tuple[int, str]:
    from booking_app.services import discounts

    b = open_room("Studio", price_cents=2000)
    code = f"SAVE-{uuid.uuid4().hex[:6]}"
    discounts.create_code(actor=demo_actor("provider"), data={"code": code, "percent_off": 25, "service_ids": [b.id]})
    return b.id, code


def test_guest_applies_a_code_at_review_and_books_at_the_discounted_price(page, size, live_db):
    from booking_app.services import availability

    bookable_id, code = _priced_room_with_a_code()
    day = dt.date.today() + dt.timedelta(days=3)
    start = availability.slots(bookable_id=bookable_id, date_from=day, date_to=day)[0].start
    goto(page, "/book?" + urlencode({"id": bookable_id, "start": start.isoformat()}))
    entry = page.get_by_test_id("discount-entry")
    expect(entry).to_be_visible()

    entry.get_by_test_id("discount-code").fill("NOT-A-CODE")
    entry.get_by_test_id("discount-apply").click()
    expect(entry.get_by_test_id("discount-error")).to_have_text(translate("This discount code is not valid.", "en"))
    expect(entry.get_by_test_id("discount-code")).to_have_attribute("aria-invalid", "true")

    entry.get_by_test_id("discount-code").fill(code.lower())
    entry.get_by_test_id("discount-apply").click()
    expect(entry.get_by_test_id("discount-line")).to_contain_text("€5.00")
    expect(entry.get_by_test_id("discount-total")).to_have_text("To pay: €15.00")
    expect(entry.get_by_test_id("discount-error")).to_have_count(0)
    assert_no_horizontal_scroll(page)

    page.fill("#field-guest_name", "Dana Discount")
    page.fill("#field-guest_email", f"dana-{size}@example.com")
    page.get_by_role("radio", name="Pay on site").click()
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    expect(page.get_by_text("€15.00 (discount: €5.00)")).to_be_visible()

    # the provider's discount codes page: cards (every field visible on a phone)
    page.context.clear_cookies()
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider/discount-codes")
    card = page.get_by_test_id("dc-card").filter(has_text=code)
    expect(card.get_by_test_id("dc-card-uses")).to_have_text("1")
    expect(card.get_by_test_id("dc-card-off")).to_have_text("25 %")
    new_code = f"FORM-{size}-{uuid.uuid4().hex[:4]}".upper()
    page.get_by_test_id("dc-code").fill(new_code)
    page.get_by_test_id("dc-value").fill("10")
    page.get_by_test_id("dc-max_uses").fill("3")
    page.get_by_test_id("dc-save").click()
    made = page.get_by_test_id("dc-card").filter(has_text=new_code)
    expect(made.get_by_test_id("dc-card-uses")).to_have_text("0 of 3")
    made.get_by_test_id("dc-card-deactivate").click()
    expect(made.get_by_test_id("dc-card-status")).to_have_text("Inactive")
    assert_no_horizontal_scroll(page)
    assert page.console_errors == []
