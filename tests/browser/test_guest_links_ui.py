"""Guests' links in the browser (issue 20): a guest asks for a new manage link by email
address and reference, and the old link then shows why it no longer works (translated, with
the way to a new one); a booking request's emailed link books and opens the booking, or
says inline that the time is gone."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from tests.browser.helpers import find_bookable_id, goto, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def _free_starts(bookable_id: int) -> list[dt.datetime]:
    from booking_app.services import availability
    from booking_app.services.actors import Actor

    today = dt.datetime.now(dt.timezone.utc).date()
    slots = availability.slots(bookable_id=bookable_id, date_from=today + dt.timedelta(days=2),
                               date_to=today + dt.timedelta(days=12), actor=Actor.guest())
    return [s.start for s in slots]


def _confirm_path(email: str) -> str:
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import Notification

    with db.read_session() as s:
        row = s.exec(select(Notification).where(Notification.template == "guest_booking_request",
                                                Notification.to == email)
                     .order_by(Notification.id.desc())).first()  # type: ignore[union-attr]
    url = row.context["confirm_url"]
    return url[url.index("/booking/confirm"):]


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_a_guest_gets_a_new_link_and_the_old_one_says_why_it_stopped(page: Page, live_db):
    from booking_app.services import bookings, manage_links
    from booking_app.services.actors import Actor

    room = find_bookable_id("Meeting room Atlas")
    made = bookings.book(actor=Actor.guest(), service_id=room, start=_free_starts(room)[-1],
                         guest={"name": "Lou Link", "email": "lou-link@example.com"})
    old_path = f"/booking?id={made.id}&token={manage_links.booking_manage_token(made.id)}"
    goto(page, old_path)
    expect(page.get_by_test_id("reference")).to_have_text(made.reference)

    goto(page, "/booking/new-link")
    page.fill("#field-email", "lou-link@example.com")
    page.fill("#field-reference", made.reference)
    page.get_by_test_id("send-link").click()
    expect(page.get_by_test_id("link-sent")).to_contain_text(
        translate("If the email address and the reference match a booking, we have emailed a new link to it. "
                  "Earlier links no longer work.", "en"))

    goto(page, old_path)
    expect(page.get_by_test_id("not-found")).to_have_text(translate(manage_links.LINK_NOT_VALID, "en"))
    page.get_by_test_id("new-link").click()
    page.wait_for_url(re.compile(r"/booking/new-link"))
    assert page.console_errors == []

    # its provider sends the guest yet another link from the booking's page
    second = _latest_manage_token(made.id)
    assert manage_links.verify_manage_token(second) == made.id
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, f"/booking?id={made.id}")
    page.get_by_test_id("reissue-link").click()
    expect(page.get_by_test_id("link-notice")).to_have_text(
        translate("A new link is on its way to the guest. Earlier links no longer work.", "en"))
    assert manage_links.verify_manage_token(second) is None
    assert manage_links.verify_manage_token(_latest_manage_token(made.id)) == made.id


def _latest_manage_token(booking_id: int) -> str:
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import Notification

    with db.read_session() as s:
        row = s.exec(select(Notification).where(Notification.template == "guest_manage_link",
                                                Notification.booking_id == booking_id)
                     .order_by(Notification.id.desc())).first()  # type: ignore[union-attr]
    return row.context["manage_url"].partition("token=")[2]


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_a_confirmation_link_books_or_says_the_time_is_gone(page: Page, live_db):
    from booking_app.services import bookings, guest_bookings
    from booking_app.services.actors import Actor

    room = find_bookable_id("Meeting room Atlas")
    first, second = _free_starts(room)[-2:]
    guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room, start=first, payment_method="on_site",
                                   guest={"name": "Cora Confirm", "email": "cora@example.com"})
    goto(page, _confirm_path("cora@example.com"))
    page.wait_for_url(re.compile(r"/booking\?id=\d+&token="))
    expect(page.get_by_test_id("status")).to_have_text("Confirmed")

    guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room, start=second,
                                   guest={"name": "Stan Stale", "email": "stan@example.com"})
    bookings.book(actor=Actor.guest(), service_id=room, start=second,
                  guest={"name": "Quick", "email": "quick@example.com"})
    goto(page, _confirm_path("stan@example.com"))
    expect(page.get_by_test_id("confirm-error")).to_have_text(translate("That time is no longer available.", "en"))
    assert page.console_errors == []
