"""Approval in the browser (issue 24, point 2), one lean flow: a customer books a room that
requires approval and sees the request awaiting it (no payment asked); the provider
approves it from the queue on the provider pages; the customer sees it confirmed."""
from __future__ import annotations

import datetime as dt
import pathlib
import re
import uuid
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
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


def _room_needing_approval() -> int:
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import User
    from booking_app.services import catalog
    from booking_app.services.actors import Actor

    with db.read_session() as s:
        user = s.exec(select(User).where(User.username == "provider")).one()
    actor = Actor(id=user.id, role="provider", timezone="UTC")
    b = catalog.create_bookable(actor=actor, name=f"Studio {uuid.uuid4().hex[:6]}", kind="room", duration_minutes=60,
                                capacity=1, price_cents=0, currency="EUR", timezone="UTC", requires_approval=True)
    catalog.set_availability(actor=actor, bookable_id=b.id, exceptions=[],
                             weekly=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
    return b.id


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_customer_requests_provider_approves_from_the_queue(page, size, live_db):
    from booking_app.services import availability

    bookable_id = _room_needing_approval()
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
