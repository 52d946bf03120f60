"""The admin's audit trail page at desktop and phone sizes: filters by their labels (typed
and submitted from the keyboard), paging, an inline message for a bad filter, the CSV
download of the filtered events (formulas neutralised), and no page-level sideways
scrolling on a phone; a customer is refused."""
from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def _seed(action: str, n: int) -> None:
    """`n` events of `action` an hour apart, the newest from 203.0.113.77 on a '=cmd' entity."""
    from booking_app import db
    from booking_app.models import AuditEvent

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with db.unit_of_work() as s:
        for i in range(n):
            newest = i == n - 1
            s.add(AuditEvent(actor_id=1, action=action, entity="=cmd" if newest else "booking", entity_id=str(i),
                             data={"n": i}, ip="203.0.113.77" if newest else "198.51.100.1",
                             at=now - dt.timedelta(hours=n - i)))


def test_admin_searches_pages_and_downloads_the_audit_trail(page, size, open_page, live_db):  # noqa: F811
    action = f"test.ui_{uuid.uuid4().hex[:8]}"
    _seed(action, 55)
    sign_in(page, "admin", "demo-admin-pass")
    goto(page, "/admin/audit")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("Audit trail", "en"))

    # filter by action, from the keyboard: type in the labelled field, Enter submits
    page.get_by_label(translate("Action", "en"), exact=True).fill(action)
    page.get_by_label(translate("Action", "en"), exact=True).press("Enter")
    expect(page.get_by_test_id("audit-total")).to_contain_text("55")
    events = page.get_by_test_id("audit-event")
    expect(events).to_have_count(50)
    first = events.first
    expect(first.get_by_test_id("event-action")).to_have_text(action)
    expect(first.get_by_test_id("event-ip")).to_have_text("203.0.113.77")  # newest first
    expect(first.get_by_test_id("event-target")).to_have_text("=cmd 54")
    expect(page.get_by_test_id("audit-previous")).to_be_disabled()
    page.get_by_test_id("audit-next").click()
    expect(events).to_have_count(5)
    expect(page.get_by_test_id("audit-range")).to_have_text("51–55 / 55")
    expect(page.get_by_test_id("audit-next")).to_be_disabled()
    page.get_by_test_id("audit-previous").focus()
    page.keyboard.press("Enter")
    expect(events).to_have_count(50)
    if size == "phone":
        assert_no_horizontal_scroll(page)
        box = first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box

    # the IP filter narrows it to one event; a bad IP is told next to its field
    ip = page.get_by_label(translate("IP address", "en"), exact=True)
    ip.fill("not-an-ip")
    ip.press("Enter")
    expect(page.get_by_test_id("error-ip")).to_have_text(translate("Enter an IP address.", "en"))
    expect(ip).to_have_attribute("aria-invalid", "true")
    ip.fill("203.0.113.77")
    ip.press("Enter")
    expect(page.get_by_test_id("error-ip")).to_have_count(0)
    expect(events).to_have_count(1)
    expect(page.get_by_test_id("audit-total")).to_contain_text("1")

    # the CSV holds the filtered events, formula-like cells neutralised
    ip.fill("")
    page.get_by_test_id("audit-apply").click()
    expect(events).to_have_count(50)
    with page.expect_download() as info:
        page.get_by_test_id("audit-csv").click()
    download = info.value
    assert download.suggested_filename == "audit.csv"
    rows = list(csv.DictReader(io.StringIO(download.path().read_text())))
    assert len(rows) == 55 and {r["action"] for r in rows} == {action}
    assert rows[0]["entity"] == "'=cmd" and rows[0]["ip"] == "203.0.113.77"

    # the export was audited, and shows up on the page
    page.get_by_label(translate("Action", "en"), exact=True).fill("audit.exported")
    page.get_by_test_id("audit-apply").click()
    expect(events.first.get_by_test_id("event-action")).to_have_text("audit.exported")
    expect(events.first.get_by_test_id("event-data")).to_contain_text(action)

    # a customer is refused
    customer = open_page()
    sign_in(customer, "customer", "demo-customer-pass")
    goto(customer, "/admin/audit")
    expect(customer.get_by_test_id("denied")).to_have_text(translate("This page is for administrators only.", "en"))
    expect(customer.get_by_test_id("audit-event")).to_have_count(0)
    assert page.console_errors == [] and customer.console_errors == []
