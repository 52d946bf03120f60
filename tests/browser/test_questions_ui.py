"""Booking questions in the browser (issue 24, point 4), one lean flow: the provider adds a
required single-choice question; a guest sees it on the review step, gets the service's
message under it when it is left empty, answers and books; the provider sees the answer in
the bookings list."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, open_room, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["phone", "desktop"], indirect=True)  # (the editor and form stack on a phone)
def test_provider_asks_a_required_question_guest_answers_provider_sees_it(page, size, live_db):
    from booking_app.services import availability, catalog

    bookable_id = open_room("Quiz room").id
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, f"/provider/bookable?id={bookable_id}")
    editor = page.get_by_test_id("questions-editor")
    expect(editor).to_be_visible()
    editor.get_by_test_id("question-add").click()
    row = editor.get_by_test_id("question-row")
    row.get_by_test_id("question-label").fill("Colour")
    row.get_by_test_id("question-type").select_option("single_choice")
    row.get_by_test_id("question-options").fill("Red\nBlue")
    row.get_by_test_id("question-required").click()
    editor.get_by_test_id("questions-save").click()
    expect(editor.get_by_test_id("questions-saved")).to_be_visible()
    assert_no_horizontal_scroll(page)
    (question,) = catalog.get_bookable(bookable_id=bookable_id).questions
    assert question["required"] and question["options"] == ["Red", "Blue"]

    # a guest: the question on the review step; left empty → the service's message under it
    page.context.clear_cookies()
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    start = availability.slots(bookable_id=bookable_id, date_from=tomorrow, date_to=tomorrow)[0].start
    goto(page, "/book?" + urlencode({"id": bookable_id, "start": start.isoformat()}))
    expect(page.get_by_test_id("booking-questions")).to_contain_text("Colour")
    page.fill("#field-guest_name", "Quinn Guest")
    page.fill("#field-guest_email", "quinn@example.com")
    page.get_by_test_id("confirm").click()
    error = page.get_by_test_id(f"answer-error-{question['id']}")
    expect(error).to_have_text(translate("This question needs an answer.", "en"))
    expect(page.locator(f"#answer-{question['id']}")).to_have_attribute("aria-invalid", "true")
    assert_no_horizontal_scroll(page)
    page.locator(f"#answer-{question['id']}").select_option("Blue")
    page.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"/booking\?id=\d+"))
    expect(page.get_by_test_id("answers")).to_have_text("Colour: Blue")
    reference = page.get_by_test_id("reference").inner_text()

    # the provider sees the answer in the bookings list
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider/bookings")
    row = page.locator(f'[data-testid=booking-row][data-reference="{reference}"]')
    expect(row.get_by_test_id("answers")).to_have_text("Colour: Blue")
    assert page.console_errors == []
