"""Recurring series in the browser (issue 24, point 3), one lean flow: a customer turns on
"Repeat this booking" on the review step, previews four weekly dates (all free), books the
series, opens its second date from the series card and cancels "this and the following"."""
from __future__ import annotations

import datetime as dt
import pathlib
import re
import uuid
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import goto, sign_in
from tests.conftest import point_app_at

pytestmark = pytest.mark.browser


@pytest.fixture
def live_db(live_server, tmp_path_factory) -> str:
    """This process's services on the live server's database (to set up the bookable)."""
    found = sorted(pathlib.Path(tmp_path_factory.getbasetemp()).glob("live-server*/browser.db"))
    assert found, "the live server's database was not found"
    url = f"sqlite:///{found[-1]}"
    point_app_at(url)
    return url


def _room_of_the_demo_provider() -> int:
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import User
    from booking_app.services import catalog
    from booking_app.services.actors import Actor

    with db.read_session() as s:
        user = s.exec(select(User).where(User.username == "provider")).one()
    actor = Actor(id=user.id, role="provider", timezone="UTC")
    b = catalog.create_bookable(actor=actor, name=f"Weekly room {uuid.uuid4().hex[:6]}", kind="room",
                                duration_minutes=60, capacity=1, price_cents=0, currency="EUR", timezone="UTC")
    catalog.set_availability(actor=actor, bookable_id=b.id, exceptions=[],
                             weekly=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
    return b.id


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_customer_books_a_weekly_series_with_preview_and_cancels_this_and_following(page, size, live_db):
    from booking_app.services import availability, series

    bookable_id = _room_of_the_demo_provider()
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
