"""The admin flow on `reflex run --env prod`: promote a user to provider, open reports
for a period with known bookings and check the figures and the CSV, watch the live
dashboard update (no reload) when a booking is made in another browser; and the admin
pages at 390×844 without page-level horizontal scrolling."""
from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in, sign_up, unique_user
from tests.browser.helpers import live_db  # noqa: F401  (fixture)
from tests.browser.test_provider import api_token, customer_actor  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def seed_known_bookings(name: str, day: dt.date) -> int:
    """A bookable open 08:00–18:00 UTC every day; on `day`: 3 bookings (one cancelled by
    the customer), on `day + 1`: 1 booking. Returns the bookable's id."""
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import User
    from booking_app.services import bookings, catalog
    from booking_app.services.actors import Actor

    with db.read_session() as s:
        provider = s.exec(select(User).where(User.username == "provider")).one()
    pro = Actor(id=provider.id, role="provider", timezone="UTC")
    b = catalog.create_bookable(actor=pro, kind="room", name=name, duration_minutes=60, capacity=1,
                                price_cents=2000, currency="EUR", timezone="UTC", max_advance_days=365)
    catalog.set_availability(actor=pro, bookable_id=b.id,
                             weekly=[{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(7)])
    cust = customer_actor()

    def at(d: dt.date, hour: int) -> dt.datetime:
        return dt.datetime.combine(d, dt.time(hour), tzinfo=dt.timezone.utc)

    made = [bookings.book(actor=cust, service_id=b.id, start=at(day, h), payment_method="on_site")
            for h in (9, 10, 11)]
    bookings.book(actor=cust, service_id=b.id, start=at(day + dt.timedelta(days=1), 9), payment_method="on_site")
    bookings.cancel(actor=cust, booking_id=made[0].id, reason="changed plans")
    return b.id


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_admin_promotes_reads_reports_and_watches_the_dashboard(page, size, open_page, live_db):  # noqa: F811
    # a new user signs up in another browser
    user = unique_user()
    other = open_page()
    sign_up(other, user)

    # the admin makes them a provider
    sign_in(page, "admin", "demo-admin-pass")
    goto(page, "/admin/users")
    page.get_by_test_id("user-search").fill(user["username"])
    page.get_by_test_id("user-search-submit").click()
    row = page.locator(f'[data-testid=user-row][data-username="{user["username"]}"]')
    expect(page.get_by_test_id("user-row")).to_have_count(1)
    row.get_by_test_id("open-user").click()
    detail = page.get_by_test_id("user-detail")
    expect(detail.get_by_test_id("detail-role")).to_have_text(translate("Customer", "en"))
    expect(detail.get_by_test_id("user-audit")).to_contain_text("user.created")
    detail.get_by_test_id("role-choice").select_option("provider")
    detail.get_by_test_id("save-role").click()
    expect(detail.get_by_test_id("detail-role")).to_have_text(translate("Provider", "en"))
    expect(row.get_by_test_id("role")).to_have_text(translate("Provider", "en"))
    expect(detail.get_by_test_id("user-audit")).to_contain_text("user.role_changed")
    # …and they can open the provider pages now
    goto(other, "/provider")
    expect(other.get_by_role("heading", level=1)).to_have_text(translate("My bookables", "en"))
    expect(other.get_by_test_id("denied")).to_have_count(0)

    # reports over a period that only holds the bookings seeded here
    name = f"Report room {uuid.uuid4().hex[:6]}"
    day = dt.date.today() + dt.timedelta(days=200)
    seed_known_bookings(name, day)
    goto(page, "/admin/reports")
    expect(page.get_by_test_id("sum-bookings")).to_be_visible()  # the default period is shown
    page.get_by_test_id("report-from").fill(day.isoformat())
    page.get_by_test_id("report-to").fill((day + dt.timedelta(days=1)).isoformat())
    page.get_by_test_id("report-apply").click()
    expect(page.get_by_test_id("sum-bookings")).to_have_text("4")
    expect(page.get_by_test_id("sum-cancellation")).to_have_text("25%")
    services = page.get_by_test_id("report-services").get_by_test_id("report-row")
    expect(services).to_have_count(1)
    expect(services.first).to_contain_text(name)
    utilization = page.get_by_test_id("report-utilization").get_by_test_id("report-row").filter(has_text=name)
    # 2 days × 10 h available, 3 h booked (the cancelled hour is free again)
    expect(utilization.locator("td")).to_have_text([name, translate("Room", "en"), "20", "3", "15%"])
    expect(page.get_by_test_id("chart-bookings").locator(".js-plotly-plot")).to_be_visible()

    page.get_by_test_id("csv-report").select_option("bookings_service")
    with page.expect_download() as info:
        page.get_by_test_id("csv-download").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(download.path().read_text())))
    assert [(r["service_name"], r["bookings"], r["cancelled"], r["confirmed"]) for r in rows] == [(name, "4", "1", "3")]

    # the customer's bookings are listed on their user page
    goto(page, f"/admin/users?id={customer_actor().id}")
    expect(page.get_by_test_id("user-bookings")).to_contain_text(name)
    expect(page.get_by_test_id("user-bookings").locator("tbody tr").filter(has_text=name)).to_have_count(4)
    expect(page.get_by_test_id("user-bookings")).to_contain_text("Casey Customer")

    # the live dashboard follows a booking made in another browser, without a reload
    goto(page, "/admin/dashboard")
    expect(page.get_by_test_id("live")).to_be_visible()
    created = page.get_by_test_id("dash-created")
    expect(created).not_to_have_text("")
    # one app process without Redis: the system figures say whose they are
    expect(page.get_by_test_id("dash-scope")).to_contain_text("the last minute of this app process")
    before = int(created.inner_text().replace(",", ""))
    page.evaluate("window.__still_here = true")
    token = api_token(other, "customer", "demo-customer-pass")
    slots = other.request.get(f"/api/services/1/slots?from={dt.date.today() + dt.timedelta(days=2)}"
                              f"&to={dt.date.today() + dt.timedelta(days=9)}").json()["slots"]
    resp = other.request.post("/api/bookings", headers={"Authorization": f"Bearer {token}"},
                              data={"service_id": 1, "start": slots[-1]["start"], "payment_method": "on_site"})
    assert resp.status == 201, resp.text()
    expect(created).to_have_text(str(before + 1), timeout=15_000)
    assert page.evaluate("window.__still_here === true")
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_admin_pages_fit_a_phone(page, size, open_page):
    sign_in(page, "admin", "demo-admin-pass")
    for path in ("/admin/dashboard", "/admin/reports", "/admin/users", "/admin/outbox"):
        goto(page, path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if path == "/admin/reports":
            expect(page.get_by_test_id("chart-bookings")).to_be_visible()
        assert_no_horizontal_scroll(page)
    # a signed-in customer is told the page is for administrators
    customer = open_page()
    sign_in(customer, "customer", "demo-customer-pass")
    goto(customer, "/admin/users")
    expect(customer.get_by_test_id("denied")).to_have_text(
        translate("This page is for administrators only.", "en"))
    expect(customer.get_by_test_id("users")).to_have_count(0)
    assert page.console_errors == [] and customer.console_errors == []


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_admin_retries_a_failed_notification(page, size, live_db):  # noqa: F811
    from sqlalchemy import text

    from booking_app import db

    with db.unit_of_work() as s:  # the delivery failed for good (as the relay leaves it)
        nid = s.execute(text("SELECT max(id) FROM notifications")).scalar()
        assert nid, "the seeded bookings queued no notification"
        s.execute(text("UPDATE notifications SET status='failed', attempts=5, last_error='SMTP 550 mailbox full' "
                       "WHERE id=:id"), {"id": nid})
    sign_in(page, "admin", "demo-admin-pass")
    goto(page, "/admin/outbox")
    page.get_by_test_id("outbox-status").select_option("failed")
    page.get_by_role("button", name=translate("Show", "en"), exact=True).click()
    row = page.get_by_test_id("outbox-row").filter(has_text="SMTP 550 mailbox full")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("status")).to_have_text(translate("Failed", "en"))
    row.get_by_test_id("retry").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(translate("The message is queued again.", "en"))
    expect(page.get_by_test_id("outbox-row").filter(has_text="SMTP 550 mailbox full")).to_have_count(0)
    page.get_by_test_id("outbox-status").select_option("pending")
    page.get_by_role("button", name=translate("Show", "en"), exact=True).click()
    again = page.get_by_test_id("outbox-row").filter(has_text="SMTP 550 mailbox full")
    expect(again.get_by_test_id("status")).to_have_text(translate("Pending", "en"))
    expect(again.get_by_test_id("retry")).to_have_count(0)
    assert page.console_errors == []
