"""Approval of bookings (issue 24, point 2): requests hold their seats until approved,
declined or lapsed; payment only after approval; who may decide; the signed email link;
what the customer, the provider and webhook endpoints are told. On SQLite and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Notification, utcnow
from booking_app.services import approval_links, approvals, availability, bookings, manage_links, payments, webhooks
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, Forbidden, InvalidInput, NotAvailable, NotFound
from booking_app.services import catalog
from tests.factories import (actor_for, booking_row, make_admin, make_bookable, make_customer, make_event, make_provider,
                             next_day_at)
from tests.test_payments import pay, stripe_on, stub  # noqa: F401 - the Stripe stub fixtures

HOUR = dt.timedelta(hours=1)


class World:
    def __init__(self, *, price: int = 0, capacity: int = 1, hours: int | None = None) -> None:
        self.provider = make_provider()
        self.customer = make_customer()
        self.bookable = make_bookable(self.provider, price_cents=price, capacity=capacity, requires_approval=True,
                                      approval_expiry_hours=hours)
        self.start = next_day_at(10, days=3)

    @property
    def prov(self) -> Actor:
        return actor_for(self.provider)

    @property
    def cust(self) -> Actor:
        return actor_for(self.customer)

    def request(self, *, quantity: int = 1, method: str | None = None, now: dt.datetime | None = None):
        return bookings.book(actor=self.cust, service_id=self.bookable.id, start=self.start, quantity=quantity,
                             payment_method=method, now=now)


def messages(booking_id: int) -> list[Notification]:
    with db.read_session() as s:
        return list(s.exec(select(Notification).where(Notification.booking_id == booking_id)
                           .order_by(Notification.id)).all())


def test_a_request_holds_its_seats_until_it_lapses(db_url):
    w = World(hours=24)
    before = utcnow()
    req = w.request()
    assert req.status == "awaiting_approval"
    assert before + 24 * HOUR <= req.approval_expires_at <= utcnow() + 24 * HOUR
    assert req.hold_expires_at == req.approval_expires_at
    with pytest.raises(NotAvailable):  # the seat is held
        bookings.book(actor=actor_for(make_customer()), service_id=w.bookable.id, start=w.start)
    day = w.start.date()
    assert w.start not in {s.start for s in availability.slots(bookable_id=w.bookable.id, date_from=day, date_to=day)}
    # nothing is swept before the expiry; after it the request lapses and the seat is free
    assert approvals.expire_requests(now=utcnow()) == 0
    assert approvals.expire_requests(now=utcnow() + 25 * HOUR) == 1
    lapsed = booking_row(req.id)
    assert (lapsed.status, lapsed.cancel_reason) == ("cancelled", "approval_expired")
    assert "booking_approval_expired" in [m.template for m in messages(req.id)]
    bookings.book(actor=actor_for(make_customer()), service_id=w.bookable.id, start=w.start)


def test_a_request_never_waits_past_its_start(db_url):
    w = World(hours=720)
    assert w.request().approval_expires_at == w.start


def test_the_provider_approves_a_free_request_confirmed_and_everyone_is_told(db_url):
    w = World()
    req = w.request()
    sent = {(m.channel, m.template, m.to) for m in messages(req.id)}
    assert ("email", "booking_awaiting_approval", w.customer.email) in sent
    assert ("email", "provider_approval_request", w.provider.email) in sent
    provider_mail = next(m for m in messages(req.id) if m.template == "provider_approval_request")
    assert provider_mail.context["approval_url"].endswith(approval_links.approval_token(req.id, req.version))
    done = approvals.approve(actor=w.prov, booking_id=req.id)
    assert done.status == "confirmed" and done.hold_expires_at is None
    templates = [m.template for m in messages(req.id)]
    assert "booking_approved" in templates and "reminder" in templates  # confirmed: reminders follow
    with pytest.raises(Conflict):  # decided once
        approvals.approve(actor=w.prov, booking_id=req.id)
    with pytest.raises(Conflict):
        approvals.decline(actor=w.prov, booking_id=req.id)


def test_decline_frees_exactly_its_seats_and_tells_the_customer_why(db_url):
    start = next_day_at(18, days=2)
    provider = make_provider()
    event, _ = make_event(provider, sessions=[start], capacity=5, requires_approval=True)
    cust = actor_for(make_customer())
    first = bookings.book(actor=cust, service_id=event.id, start=start, quantity=3)
    bookings.book(actor=cust, service_id=event.id, start=start, quantity=2)
    with pytest.raises(NotAvailable):
        bookings.book(actor=cust, service_id=event.id, start=start, quantity=1)
    declined = approvals.decline(actor=actor_for(provider), booking_id=first.id, reason="Fully booked for a group")
    assert (declined.status, declined.cancel_reason) == ("cancelled", "Fully booked for a group")
    mail = next(m for m in messages(first.id) if m.template == "booking_declined")
    assert mail.context["reason"] == "Fully booked for a group"
    bookings.book(actor=cust, service_id=event.id, start=start, quantity=3)  # exactly its 3 seats
    with pytest.raises(NotAvailable):
        bookings.book(actor=cust, service_id=event.id, start=start, quantity=1)


def test_who_may_decide(db_url):
    w = World()
    req = w.request()
    with pytest.raises(Forbidden):  # the customer sees it but does not decide
        approvals.approve(actor=w.cust, booking_id=req.id)
    for someone in (actor_for(make_provider()), actor_for(make_customer()), Actor.guest()):
        with pytest.raises(NotFound):
            approvals.decline(actor=someone, booking_id=req.id)
    with pytest.raises(NotFound):
        approvals.approve(actor=w.prov, booking_id=10**9)
    with pytest.raises(InvalidInput):
        approvals.decline(actor=w.prov, booking_id=req.id, reason="bad\x00reason")
    assert booking_row(req.id).status == "awaiting_approval"  # nothing half-written
    assert approvals.approve(actor=actor_for(make_admin()), booking_id=req.id).status == "confirmed"


def test_the_email_link_decides_once(db_url):
    w = World()
    req = w.request()
    token = approval_links.approval_token(req.id, req.version)
    assert approvals.request_by_token(token).id == req.id
    with pytest.raises(NotFound):
        approvals.approve(actor=Actor.guest(), booking_id=req.id, token=token + "x")
    assert approvals.decline(actor=Actor.guest(), booking_id=req.id, token=token).status == "cancelled"
    with pytest.raises(NotFound):  # used: the booking's version moved on
        approvals.approve(actor=Actor.guest(), booking_id=req.id, token=token)
    with pytest.raises(NotFound):
        approvals.request_by_token(token)


def test_an_expired_request_cannot_be_approved_and_a_new_booking_sweeps_it(db_url):
    w = World(hours=1)
    req = w.request(now=utcnow() - 2 * HOUR)  # lapsed an hour ago, not swept yet
    with pytest.raises(Conflict):
        approvals.approve(actor=w.prov, booking_id=req.id)
    other = bookings.book(actor=actor_for(make_customer()), service_id=w.bookable.id, start=w.start)
    assert other.status == "awaiting_approval"
    assert booking_row(req.id).cancel_reason == "approval_expired"


def test_a_walk_in_booked_by_the_provider_needs_no_approval(db_url):
    w = World()
    view = bookings.book(actor=w.prov, service_id=w.bookable.id, start=w.start, guest={"name": "Walk In",
                                                                                        "email": "w@example.com"})
    assert view.status == "confirmed"


def test_pay_on_site_is_confirmed_by_the_approval(db_url):
    w = World(price=2500)
    req = w.request(method="on_site")
    assert req.status == "awaiting_approval"
    assert approvals.approve(actor=w.prov, booking_id=req.id).status == "confirmed"


def test_a_guest_request_and_its_customer_cancelling_it(db_url):
    w = World()
    guest = bookings.book(actor=Actor.guest(), service_id=w.bookable.id, start=w.start,
                          guest={"name": "Gina", "email": "gina@example.com"})
    assert guest.status == "awaiting_approval"
    assert approvals.queue(actor=w.prov)[0].id == guest.id
    token = manage_links.booking_manage_token(guest.id, guest.link_version)
    assert bookings.cancel(actor=Actor.guest(), booking_id=guest.id, manage_token=token).status == "cancelled"
    assert approvals.queue(actor=w.prov) == []
    with pytest.raises(Forbidden):
        approvals.queue(actor=w.cust)


def test_payment_is_taken_only_after_approval(db_url, stripe_on):  # noqa: F811
    w = World(price=2500)
    result = payments.book_and_pay(actor=w.cust, service_id=w.bookable.id, start=w.start, payment_method="card")
    assert result.booking.status == "awaiting_approval" and result.payment is None and result.payment_error is None
    assert stripe_on.calls("POST", "checkout/sessions") == []
    with pytest.raises(Conflict):  # nothing to pay before the approval
        payments.process(actor=w.cust, booking_id=result.booking.id, method="card")
    approved = approvals.approve(actor=w.prov, booking_id=result.booking.id)
    assert approved.status == "pending" and approved.hold_expires_at > utcnow() + 40 * HOUR
    mail = next(m for m in messages(approved.id) if m.template == "booking_approved_pay")
    assert mail.context["pay_url"].endswith(f"/booking?id={approved.id}&pay=card")  # on to Checkout
    started = payments.process(actor=w.cust, booking_id=approved.id, method="card")
    assert started.checkout_url
    pay(stripe_on, started)
    assert booking_row(approved.id).status == "confirmed"


def test_webhook_events_of_the_approval(db_url):
    w = World()
    webhooks.create_endpoint(actor=w.prov, url="https://93.184.216.34/hook",
                             events=["booking.awaiting_approval", "booking.approved", "booking.declined",
                                     "booking.confirmed"])
    a, b = w.request(), bookings.book(actor=w.cust, service_id=w.bookable.id, start=w.start + 2 * HOUR)
    approvals.approve(actor=w.prov, booking_id=a.id)
    approvals.decline(actor=w.prov, booking_id=b.id)
    with db.read_session() as s:
        events = [(n.booking_id, n.template) for n in s.exec(
            select(Notification).where(Notification.channel == "webhook").order_by(Notification.id)).all()]
    assert (a.id, "booking.awaiting_approval") in events and (b.id, "booking.awaiting_approval") in events
    assert (a.id, "booking.approved") in events and (a.id, "booking.confirmed") in events
    assert (b.id, "booking.declined") in events


def test_the_bookable_setting(db_url):
    provider = make_provider()
    b = make_bookable(provider)
    assert (b.requires_approval, b.approval_expiry_hours) == (False, None)
    changed = catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, requires_approval=True,
                                      approval_expiry_hours=12)
    assert (changed.requires_approval, changed.approval_expiry_hours) == (True, 12)
    for bad in ({"requires_approval": "yes"}, {"approval_expiry_hours": 0}, {"approval_expiry_hours": 10**6}):
        with pytest.raises(InvalidInput):
            catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, **bad)


@pytest.mark.parametrize("locale", ["en", "es", "fr", "de", "ar", "it", "pt_BR", "nl", "pl", "tr"])
def test_the_messages_render_in_every_language(locale):
    from booking_app.services import messages

    start = dt.datetime(2027, 3, 1, 10, tzinfo=dt.timezone.utc)
    context = {"service": "Studio", "reference": "ABCD2345", "start": start.isoformat(),
               "end": (start + HOUR).isoformat(), "timezone": "Europe/Madrid", "price_cents": 2500,
               "currency": "EUR", "quantity": 2, "hold_expires_at": (start - 24 * HOUR).isoformat(),
               "customer_name": "Casey", "reason": "approval_declined", "url": "https://x.test/booking?id=1",
               "approval_url": "https://x.test/provider/approval?token=1.x", "pay_url": "https://x.test/pay"}
    for template in ("booking_awaiting_approval", "booking_approved", "booking_approved_pay", "booking_declined",
                     "booking_approval_expired", "provider_approval_request"):
        mail = messages.render_email(template, locale, context)
        assert "{" not in mail.subject + mail.text, (template, mail.text)
        if messages.TEMPLATES[template].sms:
            assert "{" not in messages.render_sms(template, locale, context)
    assert "https://x.test/pay" in messages.render_email("booking_approved_pay", locale, context).text
    assert "approval?token=" in messages.render_email("provider_approval_request", locale, context).text
