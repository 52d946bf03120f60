"""Booking service: statuses and prices, guests, idempotency, reschedule, cancel policy and
refunds, complete / no-show, holds and payments, listings and access, audit + outbox."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.config import reset_settings_cache
from booking_app.models import AuditEvent, Booking, Notification, Payment
from booking_app.services import booking_queries, bookings, catalog, manage_links
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, Forbidden, InvalidInput, NotAvailable, NotFound, Unauthorized
from tests.factories import actor_for, make_admin, make_bookable, make_customer, make_event, make_provider

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
AT = dt.datetime(2027, 2, 1, 10, 0, tzinfo=UTC)  # a slot start of the default room (09-17 UTC)
G = {"name": "Gina Guest", "email": "Gina@Example.COM", "phone": "+34 600 000 000"}


@pytest.fixture
def stripe_on(monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    reset_settings_cache()


def book(actor, b, start=AT, **kw):
    kw.setdefault("now", NOW)
    return bookings.book(actor=actor, service_id=b.id, start=start, **kw)


def rows(model, **where):
    with db.read_session() as s:
        stmt = select(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return list(s.exec(stmt).all())


def customer_messages(booking_id: int) -> list[Notification]:
    """The outbox rows of the customer-facing booking events (the notifications service may
    add more rows, e.g. for the provider or reminders)."""
    from booking_app.services.notify import BOOKING_EVENTS

    return sorted((n for n in rows(Notification, booking_id=booking_id) if n.template in BOOKING_EVENTS),
                  key=lambda n: n.id)


def add_payment(booking_id: int, amount: int, status: str = "succeeded") -> None:
    with db.unit_of_work() as s:
        s.add(Payment(booking_id=booking_id, method="card", provider="stripe", amount_cents=amount, currency="EUR",
                      status=status))


# --- book ----------------------------------------------------------------------------------

def test_free_booking_confirmed_with_audit_and_outbox(db_url):
    c = make_customer()
    b = make_bookable()
    bk = book(actor_for(c), b, notes="  window seat ")
    assert (bk.status, bk.price_cents, bk.user_id, bk.notes, bk.payment_status) == ("confirmed", 0, c.id, "window seat", "none")
    assert bk.end - bk.start == dt.timedelta(hours=60 / 60) and bk.hold_expires_at is None
    assert len(bk.reference) == 8 and bk.reference.isalnum()
    assert [a.action for a in rows(AuditEvent, entity="booking")] == ["booking.created"]
    notes = customer_messages(bk.id)
    assert [(n.template, n.to) for n in notes] == [("booking_confirmed", c.email)]


def test_paid_booking_pending_with_hold_or_confirmed_on_site(db_url, stripe_on):
    c = make_customer()
    b = make_bookable(capacity=5, price_cents=1250)
    held = book(actor_for(c), b, quantity=2, payment_method="card")
    assert (held.status, held.price_cents, held.hold_expires_at) == ("pending", 2500, NOW + dt.timedelta(minutes=15))
    assert customer_messages(held.id)[0].template == "booking_pending"
    on_site = book(actor_for(c), b, payment_method="on_site")
    assert on_site.status == "confirmed" and on_site.price_cents == 1250
    no_method = book(actor_for(c), b)
    assert no_method.status == "pending"  # Stripe on: pay online later
    with pytest.raises(InvalidInput):
        book(actor_for(c), b, payment_method="bitcoin")


def test_paid_booking_confirmed_when_stripe_is_disabled(db_url):
    b = make_bookable(price_cents=1000)
    assert book(actor_for(make_customer()), b).status == "confirmed"
    with pytest.raises(InvalidInput):  # no online method without Stripe
        book(actor_for(make_customer()), b, payment_method="card", start=AT + dt.timedelta(hours=1))


def test_guest_booking_and_manage_token(db_url):
    b = make_bookable()
    bk = book(Actor.guest(), b, guest=G)
    assert (bk.user_id, bk.guest_name, bk.guest_email, bk.guest_phone) == (None, "Gina Guest", "Gina@example.com",
                                                                           "+34600000000")
    assert customer_messages(bk.id)[0].to == "Gina@example.com"
    token = manage_links.booking_manage_token(bk.id)
    assert manage_links.verify_manage_token(token) == bk.id
    for bad in (None, "", "x", f"{bk.id}.AAAA", f"{bk.id + 1}.{token.split('.')[1]}", token + "x"):
        assert manage_links.verify_manage_token(bad) is None
    with pytest.raises(NotFound):
        booking_queries.get_booking(actor=Actor.guest(), booking_id=bk.id)
    assert booking_queries.get_booking(actor=Actor.guest(), booking_id=bk.id, manage_token=token).id == bk.id
    with pytest.raises(NotFound):  # a token is for one booking only
        booking_queries.get_booking(actor=Actor.guest(), booking_id=bk.id, manage_token=manage_links.booking_manage_token(bk.id + 1))
    moved = bookings.reschedule(actor=Actor.guest(), booking_id=bk.id, start=AT + dt.timedelta(hours=2),
                                manage_token=token, now=NOW)
    assert moved.start == AT + dt.timedelta(hours=2)
    assert bookings.cancel(actor=Actor.guest(), booking_id=bk.id, manage_token=token, now=NOW).status == "cancelled"


@pytest.mark.parametrize("guest,field", [
    (None, "guest"), ({"email": "a@example.com"}, "guest.name"), ({"name": "A", "email": "nope"}, "guest.email"),
    ({"name": "A", "email": "a@example.com", "phone": "12"}, "guest.phone"),
])
def test_guest_details_validated(sqlite_db, guest, field):
    b = make_bookable()
    with pytest.raises(InvalidInput) as exc:
        book(Actor.guest(), b, guest=guest)
    assert exc.value.field == field


def test_book_validation(db_url):
    c = actor_for(make_customer())
    b = make_bookable(capacity=3)
    cases = [dict(start="2027-02-01T10:00:00"), dict(start="not a date"), dict(start=None), dict(quantity=0),
             dict(quantity=4), dict(quantity="two"), dict(notes="x" * 2001), dict(idempotency_key="k" * 201),
             dict(guest=G)]  # customers book for themselves
    for kw in cases:
        with pytest.raises(InvalidInput):
            book(c, b, **kw)
    with pytest.raises(NotFound):
        bookings.book(actor=c, service_id=999_999, start=AT, now=NOW)
    with pytest.raises(NotFound):
        bookings.book(actor=c, service_id="1", start=AT, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(NotAvailable):
        book(c, b, start=AT + dt.timedelta(minutes=1))
    assert rows(Booking) == []


def test_provider_books_for_a_walk_in_guest(db_url):
    p = make_provider()
    b = make_bookable(p)
    bk = book(actor_for(p), b, guest={"name": "Walk In", "email": "walk@example.com"})
    assert bk.user_id is None and bk.guest_email == "walk@example.com"


# --- idempotency -----------------------------------------------------------------------------

def test_idempotent_replay_and_key_reuse(db_url):
    c = actor_for(make_customer())
    b = make_bookable()
    first = book(c, b, idempotency_key="abc-1")
    again = book(c, b, idempotency_key="abc-1")
    assert again.id == first.id and len(rows(Booking)) == 1
    with pytest.raises(InvalidInput):
        book(c, b, idempotency_key="abc-1", start=AT + dt.timedelta(hours=1))
    other = actor_for(make_customer())  # keys are per user
    assert book(other, b, idempotency_key="abc-1", start=AT + dt.timedelta(hours=1)).id != first.id
    g1 = book(Actor.guest(), b, guest=G, idempotency_key="k", start=AT + dt.timedelta(hours=2))
    assert book(Actor.guest(), b, guest=G, idempotency_key="k", start=AT + dt.timedelta(hours=2)).id == g1.id


def test_failed_request_leaves_no_idempotency_record(db_url):
    c = actor_for(make_customer())
    b = make_bookable()
    book(actor_for(make_customer()), b)
    with pytest.raises(NotAvailable):
        book(c, b, idempotency_key="retry-me")
    bookings.cancel(actor=Actor.system(), booking_id=rows(Booking)[0].id, now=NOW)
    assert book(c, b, idempotency_key="retry-me").status == "confirmed"  # same key, now free: succeeds


# --- reschedule ----------------------------------------------------------------------------------

def test_reschedule_is_atomic(db_url):
    c = actor_for(make_customer())
    b = make_bookable(buffer_after_minutes=30)
    mine = book(c, b)
    book(actor_for(make_customer()), b, start=AT + dt.timedelta(hours=3))
    with pytest.raises(NotAvailable):  # taken (and its buffer)
        bookings.reschedule(actor=c, booking_id=mine.id, start=AT + dt.timedelta(hours=3), now=NOW)
    with pytest.raises(NotAvailable):
        bookings.reschedule(actor=c, booking_id=mine.id, start=AT + dt.timedelta(hours=2), now=NOW)
    unchanged = booking_queries.get_booking(actor=c, booking_id=mine.id)
    assert (unchanged.start, unchanged.version, unchanged.status) == (AT, 1, "confirmed")
    moved = bookings.reschedule(actor=c, booking_id=mine.id, start=AT + dt.timedelta(hours=5), notes="later", now=NOW)
    assert (moved.start, moved.notes, moved.version, moved.sequence) == (AT + dt.timedelta(hours=5), "later", 2, 1)
    assert customer_messages(mine.id)[-1].template == "booking_rescheduled"
    # the old slot is free again
    book(actor_for(make_customer()), b)
    # moving within its own buffered block is allowed (it doesn't compete with itself)
    r = bookings.reschedule(actor=c, booking_id=mine.id, start=AT + dt.timedelta(hours=6), now=NOW)
    assert r.start == AT + dt.timedelta(hours=6)


def test_reschedule_quantity_and_notes(db_url, stripe_on):
    c = actor_for(make_customer())
    start = dt.datetime.now(UTC).replace(microsecond=0, second=0) + dt.timedelta(days=3)
    ev, _ = make_event(sessions=[start, start + dt.timedelta(days=1)], capacity=4, price_cents=100)
    bk = bookings.book(actor=c, service_id=ev.id, start=start, quantity=2, payment_method="on_site")
    bigger = bookings.reschedule(actor=c, booking_id=bk.id, quantity=4)
    assert (bigger.quantity, bigger.price_cents) == (4, 400)
    with pytest.raises(InvalidInput):
        bookings.reschedule(actor=c, booking_id=bk.id, quantity=5)
    other = bookings.book(actor=actor_for(make_customer()), service_id=ev.id, start=start + dt.timedelta(days=1),
                          quantity=3, payment_method="on_site")
    with pytest.raises(NotAvailable):  # only 1 seat left on the second session
        bookings.reschedule(actor=c, booking_id=bk.id, start=start + dt.timedelta(days=1))
    moved = bookings.reschedule(actor=c, booking_id=bk.id, start=start + dt.timedelta(days=1), quantity=1)
    assert moved.session_id != bk.session_id and moved.quantity == 1 and other.id
    only_notes = bookings.reschedule(actor=c, booking_id=bk.id, notes="hello")
    assert only_notes.notes == "hello" and only_notes.sequence == moved.sequence
    add_payment(bk.id, 100)
    with pytest.raises(Conflict):
        bookings.reschedule(actor=c, booking_id=bk.id, quantity=2)


def test_reschedule_and_cancel_access(db_url):
    owner, stranger, provider = make_customer(), make_customer(), make_provider()
    b = make_bookable(provider)
    bk = book(actor_for(owner), b)
    for fn in (lambda a: bookings.reschedule(actor=a, booking_id=bk.id, start=AT + dt.timedelta(hours=1), now=NOW),
               lambda a: bookings.cancel(actor=a, booking_id=bk.id, now=NOW),
               lambda a: booking_queries.get_booking(actor=a, booking_id=bk.id)):
        for who in (actor_for(stranger), actor_for(make_provider()), Actor.guest()):
            with pytest.raises(NotFound):
                fn(who)
    assert booking_queries.get_booking(actor=actor_for(provider), booking_id=bk.id).id == bk.id
    assert booking_queries.get_booking(actor=actor_for(make_admin()), booking_id=bk.id).id == bk.id
    with pytest.raises(NotFound):
        booking_queries.get_booking(actor=actor_for(owner), booking_id=999_999)


# --- cancel ----------------------------------------------------------------------------------------

def test_cancel_policy_cutoff_and_refunds(db_url):
    owner = actor_for(make_customer())
    provider = make_provider()
    b = make_bookable(provider, price_cents=1000, cancel_cutoff_hours=24, refund_percent=50)
    bk = book(owner, b, payment_method="on_site")
    add_payment(bk.id, 1000)
    late = AT - dt.timedelta(hours=23)
    with pytest.raises(Forbidden) as exc:
        bookings.cancel(actor=owner, booking_id=bk.id, now=late)
    assert "24" in str(exc.value)
    cancelled = bookings.cancel(actor=owner, booking_id=bk.id, now=AT - dt.timedelta(hours=25), reason="sick")
    assert (cancelled.status, cancelled.refund_due_cents, cancelled.cancel_reason) == ("cancelled", 500, "sick")
    assert cancelled.payment_status == "succeeded"
    with pytest.raises(Conflict):
        bookings.cancel(actor=owner, booking_id=bk.id, now=NOW)
    # the seat is free at once
    again = book(actor_for(make_customer()), b, payment_method="on_site")
    add_payment(again.id, 1000)
    by_provider = bookings.cancel(actor=actor_for(provider), booking_id=again.id, now=late)  # override
    assert by_provider.refund_due_cents == 1000 and by_provider.cancel_reason == "cancelled_by_provider"
    unpaid = book(owner, b, payment_method="on_site")
    assert bookings.cancel(actor=owner, booking_id=unpaid.id, now=NOW).refund_due_cents == 0
    assert [n.template for n in customer_messages(bk.id)] == ["booking_confirmed", "booking_cancelled"]
    started = book(owner, b, payment_method="on_site", start=AT + dt.timedelta(hours=1))
    with pytest.raises(Forbidden):
        bookings.cancel(actor=owner, booking_id=started.id, now=AT + dt.timedelta(hours=1, minutes=5))


# --- complete / no-show ----------------------------------------------------------------------------

def test_complete_and_no_show(db_url):
    provider, owner = make_provider(), make_customer()
    b = make_bookable(provider)
    bk = book(actor_for(owner), b)
    with pytest.raises(Conflict):  # not started
        bookings.complete(actor=actor_for(provider), booking_id=bk.id, now=NOW)
    with pytest.raises(Forbidden):
        bookings.complete(actor=actor_for(owner), booking_id=bk.id, now=AT)
    with pytest.raises(NotFound):
        bookings.complete(actor=actor_for(make_provider()), booking_id=bk.id, now=AT)
    done = bookings.complete(actor=actor_for(provider), booking_id=bk.id, now=AT + dt.timedelta(minutes=5))
    assert done.status == "completed"
    with pytest.raises(Conflict):
        bookings.mark_no_show(actor=actor_for(provider), booking_id=bk.id, now=AT)
    bk2 = book(actor_for(owner), b, start=AT + dt.timedelta(hours=1))
    assert bookings.mark_no_show(actor=actor_for(make_admin()), booking_id=bk2.id,
                                 now=AT + dt.timedelta(hours=2)).status == "no_show"
    actions = [a.action for a in rows(AuditEvent, entity="booking", entity_id=str(bk2.id))]
    assert actions == ["booking.created", "booking.no_show"]


# --- holds and payments ----------------------------------------------------------------------------

def test_confirm_payment_and_expired_holds(db_url, stripe_on):
    c = actor_for(make_customer())
    b = make_bookable(price_cents=900)
    held = book(c, b, payment_method="card")
    assert bookings.confirm_payment(booking_id=held.id, now=NOW + dt.timedelta(minutes=5)) is True
    assert booking_queries.get_booking(actor=c, booking_id=held.id).status == "confirmed"
    assert bookings.confirm_payment(booking_id=held.id, now=NOW) is True  # idempotent

    late = book(c, b, payment_method="card", start=AT + dt.timedelta(hours=1))
    assert bookings.release_expired_holds(now=NOW + dt.timedelta(minutes=14)) == 0
    assert bookings.release_expired_holds(now=NOW + dt.timedelta(minutes=16)) == 1
    assert bookings.release_expired_holds(now=NOW + dt.timedelta(minutes=17)) == 0
    swept = booking_queries.get_booking(actor=c, booking_id=late.id)
    assert (swept.status, swept.cancel_reason) == ("cancelled", "hold_expired")
    # paid after expiry but the seat is still free: confirmed after all
    assert bookings.confirm_payment(booking_id=late.id, now=NOW + dt.timedelta(minutes=20)) is True
    assert booking_queries.get_booking(actor=c, booking_id=late.id).status == "confirmed"

    resold = book(c, b, payment_method="card", start=AT + dt.timedelta(hours=2))
    later = NOW + dt.timedelta(minutes=30)
    book(actor_for(make_customer()), b, payment_method="on_site", start=AT + dt.timedelta(hours=2), now=later)
    assert bookings.confirm_payment(booking_id=resold.id, now=later) is False
    assert booking_queries.get_booking(actor=c, booking_id=resold.id).status == "cancelled"

    cancelled = book(c, b, payment_method="card", start=AT + dt.timedelta(hours=3))
    bookings.cancel(actor=c, booking_id=cancelled.id, now=NOW)
    assert bookings.confirm_payment(booking_id=cancelled.id, now=NOW) is False
    with pytest.raises(NotFound):
        bookings.confirm_payment(booking_id=999_999)


def test_payment_status_comes_from_the_latest_payment(db_url):
    c = actor_for(make_customer())
    bk = book(c, make_bookable(price_cents=100))
    add_payment(bk.id, 100, status="failed")
    add_payment(bk.id, 100, status="succeeded")
    assert booking_queries.get_booking(actor=c, booking_id=bk.id).payment_status == "succeeded"


# --- listings --------------------------------------------------------------------------------------

def test_list_bookings_scopes_filters_and_paging(db_url):
    p1, p2, admin = make_provider(), make_provider(), make_admin()
    c1, c2 = make_customer(), make_customer()
    b1, b2 = make_bookable(p1), make_bookable(p2)
    for h in range(3):
        book(actor_for(c1), b1, start=AT + dt.timedelta(hours=h))
    book(actor_for(c2), b2)
    x = book(actor_for(c2), b1, start=AT + dt.timedelta(days=1))
    bookings.cancel(actor=actor_for(c2), booking_id=x.id, now=NOW)
    assert booking_queries.list_bookings(actor=actor_for(c1))[1] == 3
    assert booking_queries.list_bookings(actor=actor_for(c2))[1] == 2
    assert booking_queries.list_bookings(actor=actor_for(p1), scope="provider")[1] == 4
    assert booking_queries.list_bookings(actor=actor_for(admin), scope="provider")[1] == 5
    assert booking_queries.list_bookings(actor=actor_for(admin), scope="all")[1] == 5
    assert booking_queries.list_bookings(actor=actor_for(p1), scope="provider", status="cancelled")[1] == 1
    items, total = booking_queries.list_bookings(actor=actor_for(c1), limit=2, offset=1)
    assert total == 3 and [i.start for i in items] == [AT + dt.timedelta(hours=1), AT + dt.timedelta(hours=2)]
    assert booking_queries.list_bookings(actor=actor_for(p1), scope="provider", date_from="2027-02-02", date_to="2027-02-02")[1] == 1
    assert booking_queries.list_bookings(actor=actor_for(p1), scope="provider", date_to="2027-02-01")[1] == 3
    with pytest.raises(Forbidden):
        booking_queries.list_bookings(actor=actor_for(c1), scope="provider")
    with pytest.raises(Forbidden):
        booking_queries.list_bookings(actor=actor_for(p1), scope="all")
    with pytest.raises(Unauthorized):
        booking_queries.list_bookings(actor=Actor.guest())
    for bad in (dict(scope="everything"), dict(status="lost"), dict(date_from="yesterday"), dict(limit=0)):
        with pytest.raises(InvalidInput):
            booking_queries.list_bookings(actor=actor_for(c1), **bad)


def test_slot_check_follows_an_edited_bookable(db_url, stripe_on):
    """On PostgreSQL a process remembers a bookable's duration, buffers, capacity… to send
    the slot check along with its first query; after an edit the check must use the new
    values. Here a 60-minute buffer after the slot, added after the room was booked once,
    makes a 09:00 booking's block reach an expired 10:00 hold, which must be swept (with the
    remembered, buffer-less block the hold is missed and the insert hits the exclusion
    constraint: 409 for a free slot)."""
    prov = make_provider()
    c = actor_for(make_customer())
    b = make_bookable(prov, price_cents=900)
    book(c, b, start=AT + dt.timedelta(hours=5), payment_method="on_site")  # remembered: no buffers
    hold = book(c, b, start=AT, payment_method="card")  # 10:00-11:00, expires at NOW + 15 min
    catalog.update_bookable(actor=actor_for(prov), bookable_id=b.id, buffer_after_minutes=60)
    later = NOW + dt.timedelta(minutes=20)
    nine = book(c, b, start=AT - dt.timedelta(hours=1), payment_method="on_site", now=later)
    assert (nine.status, nine.end) == ("confirmed", AT)
    assert booking_queries.get_booking(actor=c, booking_id=hold.id).cancel_reason == "hold_expired"
    # and the other way round: the buffer gone again, 11:00 is free next to 09:00-10:00 (+60)
    catalog.update_bookable(actor=actor_for(prov), bookable_id=b.id, buffer_after_minutes=0)
    assert book(c, b, start=AT + dt.timedelta(hours=1), payment_method="on_site", now=later).status == "confirmed"
    with pytest.raises(NotAvailable):
        book(c, b, start=AT - dt.timedelta(hours=1), payment_method="on_site", now=later)


def test_late_payment_revives_a_hold_over_another_expired_hold(db_url, stripe_on):
    b = make_bookable(price_cents=900)  # capacity 1: the PostgreSQL backstop is active
    a = book(Actor.guest(), b, payment_method="card", guest={"name": "A", "email": "a@example.com"})
    later = NOW + dt.timedelta(minutes=16)
    other = book(Actor.guest(), b, payment_method="card", guest={"name": "B", "email": "b@example.com"}, now=later)
    assert booking_queries.get_booking(actor=Actor.system(), booking_id=a.id).cancel_reason == "hold_expired"
    much_later = NOW + dt.timedelta(minutes=40)  # B's hold has expired too, not swept yet
    assert bookings.confirm_payment(booking_id=a.id, now=much_later) is True
    assert booking_queries.get_booking(actor=Actor.system(), booking_id=a.id).status == "confirmed"
    assert booking_queries.get_booking(actor=Actor.system(), booking_id=other.id).status == "cancelled"
    assert bookings.confirm_payment(booking_id=other.id, now=much_later) is False  # A holds the seat now
