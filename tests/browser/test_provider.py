"""The provider flow on `reflex run --env prod`: create a service (with inline validation
errors), set its opening hours, see customers' bookings appear, get warned when new
hours leave a booking outside, mark one paid on site, one completed, cancel one with a
reason; the month calendar (counts, free time, month steps, a day → its week); and the
provider pages at 390×844 without page-level horizontal scrolling."""
from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo

import pytest
from playwright.sync_api import Page, expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def api_token(page: Page, username: str, password: str) -> str:
    resp = page.request.post("/api/users/login", data={"username": username, "password": password})
    assert resp.ok, resp.text()
    return resp.json()["access_token"]


def customer_actor():
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import User
    from booking_app.services.actors import Actor

    with db.read_session() as s:
        user = s.exec(select(User).where(User.username == "customer")).one()
    return Actor(id=user.id, role="customer", timezone=user.timezone)


def fill_form(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"#field-{name}", value)


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_provider_creates_a_service_sets_hours_and_handles_bookings(page, size, live_db):
    from booking_app.services import availability, booking_queries, bookings

    name = f"Massage {uuid.uuid4().hex[:6]}"
    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider")
    page.get_by_test_id("new-bookable").click()
    page.wait_for_url("**/provider/bookable")
    # the fields are filled by the page's load (a client-side visit shows the form first):
    # typing before that would be typed into a form about to be replaced
    expect(page.get_by_test_id("bookable-form")).not_to_have_attribute("data-form-key", "0")

    # inline validation: the service's message under the field, nothing created
    fill_form(page, {"name": name, "duration_minutes": "0", "capacity": "1", "price": "12.50", "currency": "EUR"})
    page.get_by_test_id("save-bookable").click()
    expect(page.get_by_test_id("error-duration_minutes")).to_have_text(
        translate("Must be between {min} and {max}.", "en", min=1, max=1440))
    expect(page.locator("#field-duration_minutes")).to_have_attribute("aria-invalid", "true")
    fill_form(page, {"duration_minutes": "30", "price": "12.5.0"})
    page.get_by_test_id("save-bookable").click()
    expect(page.get_by_test_id("error-price")).to_have_text(translate("Enter a price like 12.50.", "en"))
    expect(page.get_by_test_id("error-duration_minutes")).to_have_count(0)

    fill_form(page, {"price": "12.50", "reminder_hours": "2, soon"})
    page.get_by_test_id("save-bookable").click()
    expect(page.get_by_test_id("error-reminder_hours")).to_have_text(translate(
        "Enter hours before the start, separated by commas (e.g. 24, 2), each at most {max}.", "en", max=1440))
    expect(page.locator("#field-reminder_hours")).to_have_attribute("aria-invalid", "true")

    # created → the editor of the new service (its own reminder times shown again)
    fill_form(page, {"cancel_cutoff_hours": "0", "refund_percent": "100", "reminder_hours": "2, 24"})
    page.get_by_test_id("save-bookable").click()
    page.wait_for_url("**/provider/bookable?id=*created=1")
    expect(page.get_by_test_id("editor-title")).to_have_text(name)
    expect(page.locator("#field-reminder_hours")).to_have_value("24, 2")
    bookable_id = int(page.url.split("id=")[1].split("&")[0])

    # opening hours: every day 00:00–23:59 (Monday, copied to Mon–Fri, then the weekend);
    # a new service starts open Monday–Friday 09:00–17:00
    days = page.get_by_test_id("day-row")
    expect(days).to_have_count(7)
    expect(page.get_by_test_id("range-start")).to_have_count(5)
    for index in (0, 5, 6):
        day = days.nth(index)
        if index != 0:
            day.get_by_test_id("add-range").click()
        day.get_by_test_id("range-start").fill("00:00")
        day.get_by_test_id("range-end").fill("23:59")
        if index == 0:
            day.get_by_test_id("copy-weekdays").click()
    expect(page.get_by_test_id("range-start")).to_have_count(7)
    page.get_by_test_id("save-hours").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(translate("The opening hours are saved.", "en"))
    expect(page.get_by_test_id("outside-warning")).to_have_count(0)

    # a customer books for later today/tomorrow through the API and will pay on site…
    token = api_token(page, "customer", "demo-customer-pass")
    auth = {"Authorization": f"Bearer {token}"}
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    resp = page.request.get(f"/api/services/{bookable_id}/slots?from={tomorrow}&to={tomorrow}")
    assert resp.ok, resp.text()
    future_start = resp.json()["slots"][20]["start"]
    resp = page.request.post("/api/bookings", headers=auth, data={"service_id": bookable_id, "start": future_start,
                                                                  "payment_method": "on_site"})
    assert resp.status == 201, resp.text()
    future = resp.json()
    resp = page.request.post("/api/payments/process", headers=auth,
                             data={"booking_id": future["id"], "method": "on_site"})
    assert resp.ok, resp.text()
    # …and another customer booking has already started (booked earlier)
    now = dt.datetime.now(dt.timezone.utc)
    earlier = now - dt.timedelta(hours=3)
    started = [s for s in availability.slots(bookable_id=bookable_id, date_from=(earlier - dt.timedelta(days=1)).date(),
                                             date_to=now.date() + dt.timedelta(days=1), now=earlier)
               if s.start <= now - dt.timedelta(minutes=1)]
    past = bookings.book(actor=customer_actor(), service_id=bookable_id, start=started[-1].start, now=earlier)
    future_ref = booking_queries.get_booking(actor=customer_actor(), booking_id=future["id"]).reference

    # both appear in the provider's bookings list
    goto(page, "/provider/bookings")
    future_row = page.locator(f'[data-testid=booking-row][data-reference="{future_ref}"]')
    past_row = page.locator(f'[data-testid=booking-row][data-reference="{past.reference}"]')
    expect(future_row).to_contain_text(name)
    expect(past_row).to_contain_text(name)
    # registered customers by name and email (not "Account #id")
    expect(future_row).to_contain_text("Casey Customer")
    expect(future_row).to_contain_text("customer@example.com")
    expect(future_row.get_by_test_id("complete")).to_have_count(0)  # not started yet

    # the started one: completed
    past_row.get_by_test_id("complete").click()
    expect(past_row.get_by_test_id("status")).to_have_text(translate("Completed", "en"))
    expect(page.get_by_test_id("form-ok")).to_have_text(translate("The booking is marked completed.", "en"))

    # the later one: paid on site
    future_row.get_by_test_id("mark-paid").click()
    expect(future_row.get_by_test_id("payment")).to_have_text(translate("Paid", "en"))

    # the week calendar shows it on its day
    page.get_by_test_id("mode-week").click()
    expect(page.get_by_test_id("week-day")).to_have_count(7)
    booked_day = dt.datetime.fromisoformat(future_start.replace("Z", "+00:00")).date()
    today = dt.date.today()
    for _ in range(((booked_day - dt.timedelta(days=booked_day.weekday()))
                    - (today - dt.timedelta(days=today.weekday()))).days // 7):
        page.get_by_test_id("week-next").click()
    day_box = page.locator(f'[data-testid=week-day][data-day="{booked_day.isoformat()}"]')
    expect(day_box.locator(f'[data-testid=week-item][data-reference="{future_ref}"]')).to_contain_text(name)
    expect(day_box.locator(f'[data-testid=week-item][data-reference="{future_ref}"]')).to_contain_text(
        "Casey Customer")
    # with its opening hours (00:00–23:59 every day) as a band
    expect(day_box.get_by_test_id("week-open")).to_contain_text(translate("Open {hours}", "en", hours="")[:4])
    page.get_by_test_id("mode-list").click()

    # move it to another free time the same day
    when_before = future_row.locator("td").first.inner_text()
    future_row.get_by_test_id("reschedule").click()
    expect(page.get_by_test_id("resched-slot")).to_be_visible()
    options = page.get_by_test_id("resched-slot").locator("option")
    new_start = options.nth(3).get_attribute("value")
    page.get_by_test_id("resched-slot").select_option(new_start)
    page.get_by_test_id("confirm-reschedule").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(
        translate("The booking is moved and the customer is told.", "en"))
    expect(future_row.locator("td").first).not_to_have_text(when_before)
    moved = booking_queries.get_booking(actor=customer_actor(), booking_id=future["id"])
    assert moved.start == dt.datetime.fromisoformat(new_start)

    # closing its day warns about it (and keeps it)
    goto(page, f"/provider/bookable?id={bookable_id}")
    page.get_by_test_id("add-exception").click()
    page.get_by_test_id("exception-row").locator("input[type=date]").fill(
        dt.datetime.fromisoformat(future_start.replace("Z", "+00:00")).date().isoformat())
    page.get_by_test_id("save-hours").click()
    expect(page.get_by_test_id("outside-warning")).to_contain_text(future_ref)

    # filter, then cancel it with a reason
    goto(page, "/provider/bookings")
    page.get_by_test_id("filter-status").select_option("confirmed")
    page.get_by_test_id("apply-filters").click()
    expect(past_row).to_have_count(0)
    future_row.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("cancel-text")).to_contain_text(future_ref)
    page.fill("#cancel-reason", "Closed for maintenance")
    page.get_by_test_id("confirm-cancel").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(
        translate("The booking is cancelled and the customer is told.", "en"))
    expect(future_row).to_have_count(0)  # no longer "confirmed"
    cancelled = booking_queries.get_booking(actor=customer_actor(), booking_id=future["id"])
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "Closed for maintenance"

    # deactivate (hidden from customers, still listed for the provider), then activate again
    goto(page, "/provider")
    row = page.get_by_test_id("bookable-row").filter(has_text=name)
    row.get_by_test_id("deactivate").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(translate("“{name}” is no longer bookable.", "en", name=name))
    expect(row).to_contain_text(translate("Inactive", "en"))
    assert page.request.get(f"/api/services/{bookable_id}").status == 404
    row.get_by_test_id("reactivate").click()
    expect(page.get_by_test_id("form-ok")).to_have_text(translate("“{name}” can be booked again.", "en", name=name))
    expect(row.get_by_test_id("deactivate")).to_be_visible()
    assert page.request.get(f"/api/services/{bookable_id}").status == 200
    assert page.console_errors == []


@pytest.mark.parametrize("size", ["phone"], indirect=True)
def test_provider_pages_fit_a_phone(page, size):
    sign_in(page, "provider", "demo-provider-pass")
    for path in ("/provider", "/provider/bookable?id=1", "/provider/bookings"):
        goto(page, path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_no_horizontal_scroll(page)
    # a wide table scrolls inside its own box
    goto(page, "/provider")
    expect(page.get_by_test_id("bookable-row").first).to_be_visible()
    box = page.get_by_test_id("bookables")
    assert box.evaluate("""el => [el, ...el.querySelectorAll('*')].some(e =>
        e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))""")
    assert_no_horizontal_scroll(page)
    assert page.console_errors == []


def new_provider_with_hours(tz_name: str):
    """A provider of its own (so the month's counts are only this test's bookings) with one
    free 60-minute service open Monday–Friday 09:00–17:00 in `tz_name`."""
    from booking_app.services import accounts, catalog
    from booking_app.services.actors import Actor

    tag = uuid.uuid4().hex[:8]
    password = f"Pw-{tag}-long-enough"
    user = accounts.create_user(username=f"p{tag}", email=f"p{tag}@example.com", password=password,
                                role="provider", full_name=f"Month Provider {tag}", timezone=tz_name)
    provider = Actor(id=user.id, role="provider", timezone=tz_name)
    service = catalog.create_bookable(actor=provider, kind="service", name=f"Consult {tag}", duration_minutes=60,
                                      capacity=1, price_cents=0, currency="EUR", timezone=tz_name)
    catalog.set_availability(actor=provider, bookable_id=service.id, exceptions=[],
                             weekly=[{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)])
    return user.username, password, provider, service


@pytest.mark.parametrize("size", ["desktop", "phone"], indirect=True)
def test_provider_month_calendar(page, size, live_db):
    from booking_app.services import bookings
    from booking_app.ui.state import fmt
    from booking_app.ui.state.calendar_math import month_title

    tz_name = "Europe/Madrid"
    tz = zoneinfo.ZoneInfo(tz_name)
    username, password, provider, service = new_provider_with_hours(tz_name)
    today = dt.datetime.now(tz).date()
    this_month = today.replace(day=1)
    next_month = (this_month + dt.timedelta(days=32)).replace(day=1)
    day = next_month + dt.timedelta(days=(2 - next_month.weekday()) % 7 + 7)  # its second Wednesday
    saturday = day + dt.timedelta(days=3)
    booked = [bookings.book(actor=customer_actor(), service_id=service.id,
                            start=dt.datetime.combine(day, dt.time(hour), tzinfo=tz)) for hour in (10, 14, 16)]
    bookings.cancel(actor=provider, booking_id=booked[2].id, reason="Not needed")  # cancelled: not counted

    sign_in(page, username, password)
    goto(page, "/provider/bookings")
    page.get_by_test_id("mode-month").click()
    expect(page.get_by_test_id("mode-month")).to_have_attribute("aria-pressed", "true")
    title = page.get_by_test_id("month-title")
    expect(title).to_have_text(month_title(this_month, "en"))
    expect(page.locator(f'[data-testid=month-day][data-day="{today.isoformat()}"]')).to_have_attribute(
        "data-today", "true")
    assert page.get_by_test_id("month-day").count() % 7 == 0
    assert_no_horizontal_scroll(page)

    # the next month: the day with its two bookings (not the cancelled one) and its free time
    page.get_by_test_id("month-next").click()
    expect(title).to_have_text(month_title(next_month, "en"))
    cell = page.locator(f'[data-testid=month-day][data-day="{day.isoformat()}"]')
    expect(cell).to_have_attribute("data-in-month", "true")
    expect(cell.get_by_test_id("month-count")).to_have_text("2")
    free = translate("Free {duration}", "en", duration=fmt.duration(6 * 60, "en"))  # 8 h open − 2 h booked
    expect(cell).to_have_attribute("data-state", "open")
    expect(cell).to_have_accessible_name(re.compile(re.escape(translate("Bookings: {count}", "en", count=2))
                                                            + r".*" + re.escape(free)))
    expect(page.locator(f'[data-testid=month-day][data-day="{saturday.isoformat()}"]')).to_have_attribute(
        "data-state", "closed")
    expect(page.locator(f'[data-testid=month-day][data-day="{(day + dt.timedelta(days=1)).isoformat()}"]'
                        ' [data-testid=month-count]')).to_have_count(0)
    first = cell.locator(f'[data-testid=month-item][data-reference="{booked[0].reference}"]')
    cancelled = cell.locator(f'[data-testid=month-item][data-reference="{booked[2].reference}"]')
    expect(cancelled).to_have_count(0)
    if size == "desktop":  # times, bookable and customer in the cell; the free time under them
        expect(first).to_contain_text(fmt.time_(booked[0].start, tz_name, "en"))
        expect(first).to_contain_text(service.name)
        expect(first).to_contain_text("Casey Customer")
        expect(cell.get_by_test_id("month-item")).to_have_count(2)
        expect(cell.get_by_test_id("month-free")).to_have_text(free)
    else:  # a phone: compact cells, the count only
        expect(first).to_be_hidden()
        expect(cell.get_by_test_id("month-free")).to_be_hidden()
        expect(cell.get_by_test_id("month-count")).to_be_visible()
        box = cell.bounding_box()
        assert box is not None and box["width"] >= 40, box
    assert_no_horizontal_scroll(page)

    # back, forward twice, and "this month" again
    page.get_by_test_id("month-prev").click()
    expect(title).to_have_text(month_title(this_month, "en"))
    page.get_by_test_id("month-next").click()
    page.get_by_test_id("month-next").click()
    expect(title).to_have_text(month_title((next_month + dt.timedelta(days=32)).replace(day=1), "en"))
    page.get_by_test_id("month-today").click()
    expect(title).to_have_text(month_title(this_month, "en"))

    # a day → the week calendar of its week, with the booking in it
    page.get_by_test_id("month-next").click()
    expect(title).to_have_text(month_title(next_month, "en"))
    cell.click()
    expect(page.get_by_test_id("mode-week")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("week-day")).to_have_count(7)
    monday = day - dt.timedelta(days=day.weekday())
    expect(page.get_by_test_id("week-day").first).to_have_attribute("data-day", monday.isoformat())
    week_day = page.locator(f'[data-testid=week-day][data-day="{day.isoformat()}"]')
    expect(week_day.locator(f'[data-testid=week-item][data-reference="{booked[0].reference}"]')).to_contain_text(
        service.name)
    assert_no_horizontal_scroll(page)
    assert page.console_errors == []
