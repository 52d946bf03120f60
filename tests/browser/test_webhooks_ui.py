"""The staff webhooks page at 1280×800 and 390×844: a provider adds an endpoint and sees its
secret once, a booking is delivered (signed) to a local receiver, the delivery is listed
with its status, response code and attempts, and "redeliver" sends it again. The app server
refuses private targets (as in production), so the endpoint is registered with a public
address and then pointed at the local receiver in the database; delivery runs in this
process through the relay function (no scheduler)."""
from __future__ import annotations

import datetime as dt
import os
import pathlib

import pytest
from playwright.sync_api import expect
from sqlalchemy import update
from sqlmodel import select

from booking_app.i18n import translate
from tests.browser.helpers import assert_no_horizontal_scroll, goto, sign_in
from tests.browser.helpers import live_db  # noqa: F401  (fixture)
from tests.test_webhooks import Receiver

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("WEBHOOK_UI_SCREENSHOTS")  # a folder: keep the screenshots to look at


def _shot(page, tmp_path, name: str) -> None:
    folder = pathlib.Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_provider_adds_an_endpoint_sees_a_delivery_and_redelivers(page, size, live_db, tmp_path,  # noqa: F811
                                                                  monkeypatch):
    from booking_app import db
    from booking_app.config import reset_settings_cache
    from booking_app.models import User, WebhookEndpoint
    from booking_app.services import bookings, webhook_delivery
    from tests.factories import ALL_WEEK, actor_for, make_bookable

    sign_in(page, "provider", "demo-provider-pass")
    goto(page, "/provider/webhooks")
    expect(page.get_by_role("heading", level=1)).to_have_text(translate("Webhooks", "en"))

    # a private target is refused next to the field
    page.get_by_label(translate("Endpoint URL", "en")).fill("http://127.0.0.1:9/hook")
    page.get_by_test_id("webhook-event-booking.created").check()
    page.get_by_test_id("webhook-add").click()
    expect(page.get_by_test_id("webhook-url-error")).to_have_text(
        translate("This address points to a private or local network, which is not allowed.", "en"))

    public = f"https://93.184.216.34/hook-{size}-{dt.datetime.now().timestamp():.0f}"
    page.get_by_label(translate("Endpoint URL", "en")).fill(public)
    page.get_by_test_id("webhook-add").click()
    secret_box = page.get_by_test_id("webhook-secret")
    expect(secret_box).to_contain_text("whsec_")
    secret = secret_box.inner_text().strip()
    _shot(page, tmp_path, f"webhooks-{size}-secret")
    if size == "phone":
        assert_no_horizontal_scroll(page)
    page.get_by_test_id("webhook-secret-done").click()
    expect(secret_box).to_have_count(0)
    card = page.get_by_test_id("webhook-endpoint").filter(has_text=public)
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("endpoint-events")).to_have_text("booking.created")

    # point it at the local receiver, then a booking of the provider's is delivered
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    reset_settings_cache()
    receiver = Receiver()
    try:
        with db.unit_of_work() as s:
            s.exec(update(WebhookEndpoint).where(WebhookEndpoint.url == public).values(url=receiver.url))
            provider = s.exec(select(User).where(User.username == "provider")).one()
            customer = s.exec(select(User).where(User.username == "customer")).one()
        room = make_bookable(provider, weekly=ALL_WEEK, name=f"Hook room {size}")
        start = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).replace(hour=10, minute=0, second=0,
                                                                                 microsecond=0)
        booked = bookings.book(actor=actor_for(customer), service_id=room.id, start=start)
        webhook_delivery.relay_webhooks()
        (req,) = receiver.requests
        assert webhook_delivery.verify(req["body"], req["headers"]["Booking-Signature"], secret)
        assert receiver.events()[0]["data"]["booking"]["id"] == booked.id

        goto(page, "/provider/webhooks")  # the secret is not shown again
        expect(page.get_by_test_id("webhook-secret")).to_have_count(0)
        card = page.get_by_test_id("webhook-endpoint").filter(has_text=receiver.url)
        card.get_by_test_id("endpoint-deliveries").click()
        delivery = page.get_by_test_id("webhook-delivery")
        expect(delivery).to_have_count(1)
        expect(delivery.get_by_test_id("delivery-event")).to_have_text("booking.created")
        expect(delivery.get_by_test_id("delivery-status")).to_have_text(translate("Delivered", "en"))
        expect(delivery.get_by_test_id("delivery-code")).to_have_text("200")
        expect(delivery.get_by_test_id("delivery-attempts")).to_have_text("1")
        _shot(page, tmp_path, f"webhooks-{size}-deliveries")
        if size == "phone":
            assert_no_horizontal_scroll(page)

        delivery.get_by_test_id("delivery-redeliver").click()
        expect(page.get_by_test_id("webhook-message")).to_have_text(translate("The event will be sent again.", "en"))
        expect(delivery).to_have_count(2)
        webhook_delivery.relay_webhooks()
        assert len(receiver.requests) == 2 and receiver.events()[1]["id"] == receiver.events()[0]["id"]
        page.get_by_test_id("deliveries-refresh").click()
        expect(delivery.get_by_test_id("delivery-status")).to_have_text([translate("Delivered", "en")] * 2)
        _shot(page, tmp_path, f"webhooks-{size}-redelivered")
    finally:
        receiver.close()
    assert page.console_errors == []
