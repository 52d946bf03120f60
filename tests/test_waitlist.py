"""Waitlist service (issue 24, point 1): join a full slot, offers decided in the transaction
that frees the seats (cancel, expired hold, reschedule away, capacity increase), accept,
decline, lapse, leave, access; the offer holds its seats so nobody else can book them."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.config import reset_settings_cache
from booking_app.models import Booking, Notification, WaitlistEntry
from booking_app.services import availability, bookings, catalog, waitlist, waitlist_accept
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, InvalidInput, NotAvailable, NotFound
from tests.factories import actor_for, booking_row, make_bookable, make_customer, make_event, make_provider

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
AT = dt.datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
G = {"name": "Gina Guest", "email": "gina@example.com"}


def entry_row(entry_id: int) -> WaitlistEntry:
    with db.read_session() as s:
        e = s.get(WaitlistEntry, entry_id)
        assert e is not None
        return e


def full_room(capacity: int = 1, **kw):
    provider = make_provider()
    b = make_bookable(provider, capacity=capacity, **kw)
    holder = make_customer()
    first = bookings.book(actor=actor_for(holder), service_id=b.id, start=AT, quantity=capacity, now=NOW)
    return provider, b, holder, first


def test_join_only_when_full_with_positions(db_url):
    provider = make_provider()
    b = make_bookable(provider, capacity=2)
    alice, bob = make_customer(), make_customer()
    with pytest.raises(Conflict):  # room left: book it instead
        waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    bookings.book(actor=actor_for(make_customer()), service_id=b.id, start=AT, quantity=2, now=NOW)
    e1 = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    e2 = waitlist.join(actor=Actor.guest(), service_id=b.id, start=AT, guest=G, now=NOW)
    e3 = waitlist.join(actor=actor_for(bob), service_id=b.id, start=AT, quantity=2, now=NOW)
    assert (e1.status, e1.position, e2.position, e3.position) == ("waiting", 1, 2, 3)
    assert e2.token and e1.token is None
    with pytest.raises(Conflict):  # already waiting
        waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    with pytest.raises(InvalidInput):  # not a slot
        waitlist.join(actor=actor_for(bob), service_id=b.id, start=AT.replace(hour=3), now=NOW)
    with pytest.raises(InvalidInput):
        waitlist.join(actor=actor_for(bob), service_id=b.id, start=AT, quantity=3, now=NOW)
    with pytest.raises(NotFound):
        waitlist.join(actor=actor_for(bob), service_id=999999, start=AT, now=NOW)
    with pytest.raises(InvalidInput):
        waitlist.join(actor=Actor.guest(), service_id=b.id, start=AT, guest={"name": "x\x00", "email": "a@b.co"},
                      now=NOW)


def test_cancellation_offers_the_seat_and_holds_it(db_url):
    provider, b, holder, first = full_room()
    alice, carol = make_customer(), make_customer()
    e1 = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    e2 = waitlist.join(actor=actor_for(carol), service_id=b.id, start=AT, now=NOW)
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    offered = entry_row(e1.id)
    assert offered.status == "offered" and offered.booking_id is not None
    assert offered.offer_expires_at == NOW + dt.timedelta(minutes=30)
    hold = booking_row(offered.booking_id)
    assert (hold.status, hold.user_id) == ("pending", alice.id)
    assert hold.hold_expires_at == offered.offer_expires_at + waitlist.OFFER_GRACE  # (past the offer: the sweep)
    assert entry_row(e2.id).status == "waiting"
    with pytest.raises(NotAvailable):  # nobody else can take the held seat
        bookings.book(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    with db.read_session() as s:
        mails = s.exec(select(Notification).where(Notification.template == "waitlist_offered")).all()
    assert [m.to for m in mails] == [alice.email]
    assert f"/waitlist?entry={e1.id}" in mails[0].context["accept_url"]
    view = waitlist_accept.accept(actor=actor_for(alice), entry_id=e1.id, now=NOW + dt.timedelta(minutes=5))
    assert view.booking.status == "confirmed" and view.booking.id == offered.booking_id
    assert entry_row(e1.id).status == "accepted"
    with pytest.raises(Conflict):  # once only
        waitlist_accept.accept(actor=actor_for(alice), entry_id=e1.id, now=NOW + dt.timedelta(minutes=6))


def test_lapse_and_decline_pass_the_offer_on(db_url):
    provider, b, holder, first = full_room()
    alice, carol, dave = make_customer(), make_customer(), make_customer()
    e1 = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    e2 = waitlist.join(actor=actor_for(carol), service_id=b.id, start=AT, now=NOW)
    e3 = waitlist.join(actor=actor_for(dave), service_id=b.id, start=AT, now=NOW)
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    later = NOW + dt.timedelta(minutes=31)
    with pytest.raises(Conflict):  # the offer has lapsed
        waitlist_accept.accept(actor=actor_for(alice), entry_id=e1.id, now=later)
    assert bookings.release_expired_holds(now=later) == 1
    assert entry_row(e1.id).status == "lapsed"
    assert entry_row(e2.id).status == "offered"
    waitlist.decline(actor=actor_for(carol), entry_id=e2.id, now=later)
    assert entry_row(e2.id).status == "declined"
    assert booking_row(entry_row(e2.id).booking_id).status == "cancelled"
    assert entry_row(e3.id).status == "offered"
    with pytest.raises(NotFound):  # only its owner
        waitlist.decline(actor=actor_for(alice), entry_id=e3.id, now=later)


def test_no_gap_between_a_lapse_and_the_sweep(db_url):
    """An offer that lapses passes to the next person: a stranger booking before the sweep is
    refused; the sweep (by offer_expires_at) offers it on; with nobody waiting the seat frees."""
    provider, b, holder, first = full_room()
    alice, carol, stranger = make_customer(), make_customer(), make_customer()
    e1 = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    e2 = waitlist.join(actor=actor_for(carol), service_id=b.id, start=AT, now=NOW)
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    with db.read_session() as s:
        mail = s.exec(select(Notification).where(Notification.template == "waitlist_offered")).first()
    assert mail is not None and mail.context["hold_expires_at"] == (NOW + dt.timedelta(minutes=30)).isoformat()
    lapsed = NOW + dt.timedelta(minutes=30, seconds=1)
    with pytest.raises(NotAvailable):  # the offer lapsed, no sweep yet: still held for the queue
        bookings.book(actor=actor_for(stranger), service_id=b.id, start=AT, now=lapsed)
    with pytest.raises(Conflict):  # but its owner can no longer take it
        waitlist_accept.accept(actor=actor_for(alice), entry_id=e1.id, now=lapsed)
    assert bookings.release_expired_holds(now=lapsed) == 1
    assert entry_row(e1.id).status == "lapsed"
    carols = entry_row(e2.id)
    assert carols.status == "offered" and carols.offer_expires_at == lapsed + dt.timedelta(minutes=30)
    with pytest.raises(NotAvailable):
        bookings.book(actor=actor_for(stranger), service_id=b.id, start=AT, now=lapsed)
    assert bookings.release_expired_holds(now=lapsed + dt.timedelta(minutes=1)) == 0  # carol's offer runs
    gone = carols.offer_expires_at + dt.timedelta(seconds=1)
    with pytest.raises(NotAvailable):  # nobody waits now, but the seat frees with the sweep
        bookings.book(actor=actor_for(stranger), service_id=b.id, start=AT, now=gone)
    assert bookings.release_expired_holds(now=gone) == 1
    assert entry_row(e2.id).status == "lapsed"
    assert booking_row(carols.booking_id).status == "cancelled"
    assert bookings.book(actor=actor_for(stranger), service_id=b.id, start=AT, now=gone).status == "confirmed"


def test_a_lapsed_offer_frees_after_the_grace_without_a_sweep(db_url):
    """The margin is bounded: with the jobs stopped, the hold ends OFFER_GRACE after the offer."""
    provider, b, holder, first = full_room()
    e1 = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    after = entry_row(e1.id).offer_expires_at + waitlist.OFFER_GRACE + dt.timedelta(seconds=1)
    assert bookings.book(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=after).status == "confirmed"


def test_a_hold_extended_for_checkout_is_left_to_its_own_expiry(db_url):
    """Its owner opened Checkout on the offer's hold (payments.py extended it): the sweep does
    not cancel it at the offer's expiry under a payment in flight."""
    provider, b, holder, first = full_room()
    e1 = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    hold_id = entry_row(e1.id).booking_id
    with db.unit_of_work() as s:
        s.get(Booking, hold_id).hold_expires_at = NOW + dt.timedelta(minutes=65)
    assert bookings.release_expired_holds(now=NOW + dt.timedelta(minutes=40)) == 0
    assert booking_row(hold_id).status == "pending"
    assert bookings.release_expired_holds(now=NOW + dt.timedelta(minutes=66)) == 1
    assert entry_row(e1.id).status == "lapsed"


def test_slots_include_full_ones_only_when_asked(db_url):
    """One home for "which times are full" (the bookable page's "Full — join the waitlist")."""
    provider, b, holder, first = full_room()
    day = AT.date()
    free = availability.slots(bookable_id=b.id, date_from=day, date_to=day, now=NOW)
    both = availability.slots(bookable_id=b.id, date_from=day, date_to=day, now=NOW, include_full=True)
    assert AT not in [x.start for x in free] and free
    assert [(x.start, x.remaining) for x in both if x.remaining == 0] == [(AT, 0)]
    assert [x for x in both if x.remaining > 0] == free
    event, _sessions = make_event(sessions=[AT], capacity=1)
    bookings.book(actor=actor_for(make_customer()), service_id=event.id, start=AT, now=NOW)
    assert availability.slots(bookable_id=event.id, date_from=day, date_to=day, now=NOW) == []
    assert [(x.start, x.remaining) for x in availability.slots(
        bookable_id=event.id, date_from=day, date_to=day, now=NOW, include_full=True)] == [(AT, 0)]


def test_guest_accepts_with_token_and_leaves(db_url):
    provider, b, holder, first = full_room()
    e1 = waitlist.join(actor=Actor.guest(), service_id=b.id, start=AT, guest=G, now=NOW)
    e2 = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    waitlist.leave(actor=actor_for(provider), entry_id=e2.id, now=NOW)  # its provider may remove it
    assert entry_row(e2.id).status == "left"
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    with pytest.raises(NotFound):
        waitlist_accept.accept(actor=Actor.guest(), entry_id=e1.id, token=f"{e1.id}.forged", now=NOW)
    view = waitlist_accept.accept(actor=Actor.guest(), entry_id=e1.id, token=e1.token, now=NOW)
    assert view.booking.guest_email == G["email"] and view.booking.status == "confirmed"


def test_reschedule_away_and_capacity_increase_offer(db_url):
    provider, b, holder, first = full_room()
    alice, carol = make_customer(), make_customer()
    e1 = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    e2 = waitlist.join(actor=actor_for(carol), service_id=b.id, start=AT, now=NOW)
    bookings.reschedule(actor=actor_for(holder), booking_id=first.id, start=AT + dt.timedelta(hours=2), now=NOW)
    assert entry_row(e1.id).status == "offered"
    catalog.update_bookable(actor=actor_for(provider), bookable_id=b.id, capacity=2)
    assert entry_row(e2.id).status == "offered"


def test_event_session_cancellation_offers_only_what_fits(db_url):
    provider = make_provider()
    b, (sess,) = make_event(provider, sessions=[AT], capacity=3)
    holder = make_customer()
    one = bookings.book(actor=actor_for(holder), service_id=b.id, start=AT, quantity=1, now=NOW)
    bookings.book(actor=actor_for(make_customer()), service_id=b.id, start=AT, quantity=2, now=NOW)
    big = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, quantity=2, now=NOW)
    small = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, quantity=1, now=NOW)
    bookings.cancel(actor=actor_for(holder), booking_id=one.id, now=NOW)  # one seat freed
    assert entry_row(big.id).status == "waiting"  # passed over: two seats don't fit
    assert entry_row(small.id).status == "offered"
    with db.read_session() as s:
        held = sum(bk.quantity for bk in s.exec(select(Booking).where(Booking.session_id == sess.id,
                                                                       Booking.status == "pending")).all())
    assert held == 1


def test_offer_minutes_setting_and_override(db_url, monkeypatch):
    monkeypatch.setenv("WAITLIST_OFFER_MINUTES", "45")
    reset_settings_cache()
    provider, b, holder, first = full_room()
    e1 = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    assert entry_row(e1.id).offer_expires_at == NOW + dt.timedelta(minutes=45)


def test_report_figures_and_provider_actions(db_url):
    from booking_app.services import reports, waitlist_admin
    from tests.factories import make_admin

    provider, b, holder, first = full_room()
    alice, carol = make_customer(), make_customer()
    e1 = waitlist.join(actor=actor_for(alice), service_id=b.id, start=AT, now=NOW)
    e2 = waitlist.join(actor=actor_for(carol), service_id=b.id, start=AT, now=NOW)
    assert waitlist_admin.offer_now(actor=actor_for(provider), service_id=b.id, now=NOW) == 0  # nothing free
    bookings.cancel(actor=actor_for(holder), booking_id=first.id, now=NOW)
    bookings.release_expired_holds(now=NOW + dt.timedelta(minutes=31))  # alice's offer lapses → carol's
    waitlist_accept.accept(actor=actor_for(carol), entry_id=e2.id, now=NOW + dt.timedelta(minutes=32))
    queue = waitlist_admin.list_entries(actor=actor_for(provider), service_id=b.id)
    assert [(v.id, v.status) for v in queue] == [(e1.id, "lapsed"), (e2.id, "accepted")]
    report = reports.waitlist(actor=actor_for(make_admin()), date_from=NOW.date(), date_to=NOW.date(), tz="UTC")
    assert report.summary == {"joined": 2, "offered": 2, "accepted": 1, "lapsed": 1, "declined": 0, "conversion": 0.5}
    assert waitlist_admin.set_closed(actor=actor_for(provider), service_id=b.id, closed=True) == 0
    with pytest.raises(Conflict):
        waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)


def test_a_declined_approval_request_offers_its_seat(db_url):
    from booking_app.services import approvals

    provider = make_provider()
    b = make_bookable(provider, requires_approval=True)
    request = bookings.book(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    assert request.status == "awaiting_approval"
    e1 = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    approvals.decline(actor=actor_for(provider), booking_id=request.id, now=NOW)
    assert entry_row(e1.id).status == "offered"


def test_the_sweep_ends_entries_whose_time_has_come(db_url):
    from booking_app.services import waitlist_admin

    provider, b, holder, first = full_room()
    e1 = waitlist.join(actor=actor_for(make_customer()), service_id=b.id, start=AT, now=NOW)
    assert waitlist_admin.sweep(now=AT - dt.timedelta(minutes=1)) == 0
    assert waitlist_admin.sweep(now=AT) == 1
    assert entry_row(e1.id).status == "closed"
