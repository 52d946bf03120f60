"""Waitlist in the browser (issue 24, point 1): a full time shown on the bookable page joins
its waitlist (phone and desktop); and one lean flow: a customer joins the waitlist of a full
time (answering its required booking question; position shown); the seat frees up and is offered; the customer accepts it
on the waitlist page and has the booking; the provider sees the bookable's queue (the next
person, waiting) with "Offer now" and "Close waitlist"."""
from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, demo_actor, goto, open_room, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_join_offer_accept_and_the_providers_queue(page, size, live_db):
    from booking_app.services import availability, bookings, waitlist
    from booking_app.services.actors import Actor

    prov, customer = demo_actor("provider"), demo_actor("customer")
    room = open_room("Booth", questions=[{"id": "badge", "type": "short_text", "label": "Badge", "required": True}])
    day = dt.date.today() + dt.timedelta(days=4)
    start = availability.slots(bookable_id=room.id, date_from=day, date_to=day)[0].start
    held = bookings.book(actor=Actor.guest(), service_id=room.id, start=start, answers={"badge": "H"},
                         guest={"name": "Holder", "email": f"holder-{uuid.uuid4().hex[:6]}@example.com"})

    sign_in(page, "customer", "demo-customer-pass")
    goto(page, "/waitlist?" + urlencode({"service": room.id, "start": start.isoformat()}))
    expect(page.get_by_test_id("waitlist-service")).to_have_text(room.name)
    page.get_by_test_id("join-waitlist").click()  # the booking question is required: shown under it
    expect(page.get_by_test_id("answer-error-badge")).to_have_text(translate("This question needs an answer.", "en"))
    page.get_by_test_id("answer-badge").fill("Cleo")
    page.get_by_test_id("join-waitlist").click()
    entry = page.get_by_test_id("waitlist-entry")
    expect(entry.get_by_test_id("entry-position")).to_have_text(translate("Position {position}", "en", position=1))
    waitlist.join(actor=Actor.guest(), service_id=room.id, start=start, answers={"badge": "N"},
                  guest={"name": "Next Guest", "email": f"next-{uuid.uuid4().hex[:6]}@example.com"})

    bookings.cancel(actor=prov, booking_id=held.id)  # the seat frees up: offered to the customer
    goto(page, "/waitlist")
    entry = page.get_by_test_id("waitlist-entry").filter(has_text=room.name)
    expect(entry.get_by_test_id("entry-status")).to_have_text(translate("Offered", "en"))
    entry.get_by_test_id("accept-offer").click()
    expect(page.get_by_text(translate("The place is yours: it is booked.", "en"))).to_be_visible()
    mine = [b for b in bookings_of(customer.id) if b.bookable_id == room.id]
    assert [(b.status, b.start_at, b.answers[0]["value"]) for b in mine] == [("confirmed", start, "Cleo")]

    page.context.clear_cookies()
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider/waitlists?" + urlencode({"service": room.id}))
    row = page.get_by_test_id("queue-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("queue-status")).to_have_text(translate("Waiting", "en"))
    expect(row).to_contain_text("Next Guest")
    expect(row).to_contain_text("(UTC)")  # the bookable's zone, named
    page.get_by_test_id("close-waitlist").click()
    expect(page.get_by_text(translate("The waitlist is closed.", "en"))).to_be_visible()
    expect(page.get_by_test_id("queue-row")).to_have_count(0)
    assert page.console_errors == []


def test_a_full_time_on_the_bookable_page_joins_its_waitlist(page, size, live_db):
    """The bookable page shows the day's full times apart from the free ones ("Full — join the
    waitlist", a link reached by keyboard); following one opens the join form for that time."""
    from booking_app.services import bookings
    from booking_app.services.actors import Actor

    room = open_room("Pod", hours=("10:00", "12:00"))
    day = dt.date.today() + dt.timedelta(days=4)
    start = dt.datetime.combine(day, dt.time(10), tzinfo=dt.timezone.utc)
    bookings.book(actor=Actor.guest(), service_id=room.id, start=start,
                  guest={"name": "Holder", "email": f"holder-{uuid.uuid4().hex[:6]}@example.com"})

    sign_in(page, "customer", "demo-customer-pass")
    goto(page, "/service?" + urlencode({"id": room.id, "date": day.isoformat()}))
    expect(page.get_by_test_id("slot")).to_have_count(1)  # 11:00 is free
    full = page.get_by_role("link", name=translate("Full — join the waitlist", "en"), exact=False)
    expect(full).to_have_count(1)
    expect(full).to_have_attribute("data-start", start.isoformat())
    expect(page.get_by_role("group", name=translate("Full times", "en"))).to_be_visible()
    assert_no_horizontal_scroll(page)
    full.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("waitlist-service")).to_have_text(room.name)
    expect(page.get_by_test_id("waitlist-start")).to_contain_text("(UTC)")
    page.get_by_test_id("join-waitlist").click()
    mine = page.get_by_test_id("waitlist-entry").filter(has_text=room.name)
    expect(mine.get_by_test_id("entry-position")).to_have_text(translate("Position {position}", "en", position=1))
    assert page.console_errors == []


def bookings_of(user_id: int):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import Booking

    with db.read_session() as s:
        return list(s.exec(select(Booking).where(Booking.user_id == user_id)).all())
