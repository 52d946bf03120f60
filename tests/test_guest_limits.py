"""Guest bookings can't hoard (issue 20, point 6): the most places per guest booking, caps on
active unpaid guest bookings per email address and per client IP (also under concurrency),
a guest hold time of its own, rate limits, email confirmation before anything is held,
names without links; and guest manage links that expire and can be re-issued (point 8).
Service level, on SQLite and PostgreSQL (the HTTP side: tests/api/test_guest_links.py)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.config import get_settings, reset_settings_cache
from booking_app.models import Booking, Notification, Payment
from booking_app.services import availability, booking_queries, bookings, guest_bookings, manage_links, messages
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, InvalidInput, NotAvailable, NotFound, RateLimited
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_customer, make_event, make_provider
from tests.test_concurrency import race, unexpected

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
AT = dt.datetime(2027, 2, 1, 10, 0, tzinfo=UTC)  # a slot start of the default room (09-17 UTC)


def env(monkeypatch, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()


def guest(email: str = "gina@example.com", name: str = "Gina Guest") -> dict:
    return {"name": name, "email": email}


def gbook(b, start=AT, *, email: str = "gina@example.com", ip: str | None = "203.0.113.7", now=NOW, **kw):
    return bookings.book(actor=Actor.guest(), service_id=b.id, start=start, guest=guest(email), client_ip=ip,
                         now=now, **kw)


def event_at(capacity: int = 100, start=AT):
    event, _ = make_event(sessions=[start], capacity=capacity, price_cents=1000)
    return event


def active_guest_rows(bookable_id: int) -> list[Booking]:
    with db.read_session() as s:
        return list(s.exec(select(Booking).where(Booking.bookable_id == bookable_id,
                                                 Booking.status.in_(("pending", "confirmed")))).all())


def outbox(template: str) -> list[Notification]:
    with db.read_session() as s:
        return list(s.exec(select(Notification).where(Notification.template == template)
                           .order_by(Notification.id)).all())


@pytest.fixture
def stripe_on(monkeypatch):
    env(monkeypatch, STRIPE_SECRET_KEY="sk_test_x")


# --- quantity, caps, hold time ------------------------------------------------------------

def test_a_guest_books_at_most_the_guest_maximum_of_places(db_url, monkeypatch):
    env(monkeypatch, GUEST_MAX_QUANTITY="3")
    event = event_at()
    with pytest.raises(InvalidInput) as err:
        gbook(event, quantity=4)
    assert err.value.field == "quantity" and err.value.params == {"max": 3}
    assert gbook(event, quantity=3).quantity == 3
    # a signed-in customer is not a guest: the slot's capacity is their limit
    assert bookings.book(actor=actor_for(make_customer()), service_id=event.id, start=AT, quantity=4,
                         now=NOW).quantity == 4


def test_a_guest_cannot_grow_a_booking_past_the_guest_maximum_by_its_link(db_url, monkeypatch):
    env(monkeypatch, GUEST_MAX_QUANTITY="3")
    event = event_at()
    bk = gbook(event, quantity=2)
    token = manage_links.booking_manage_token(bk.id)
    with pytest.raises(InvalidInput) as err:
        bookings.reschedule(actor=Actor.guest(), booking_id=bk.id, quantity=4, manage_token=token, now=NOW)
    assert err.value.field == "quantity"
    assert bookings.reschedule(actor=Actor.guest(), booking_id=bk.id, quantity=3, manage_token=token,
                               now=NOW).quantity == 3


def test_default_guest_maximum_stops_one_request_taking_a_whole_event(db_url):
    event = event_at(capacity=50)
    with pytest.raises(InvalidInput):
        gbook(event, quantity=50)
    assert active_guest_rows(event.id) == []


def test_active_unpaid_guest_bookings_are_capped_per_email_address(db_url, monkeypatch, stripe_on):
    env(monkeypatch, GUEST_MAX_HOLDS_PER_EMAIL="2")
    event = event_at()
    held = [gbook(event, payment_method="card", ip=f"198.51.100.{i}") for i in (1, 2)]
    assert [h.status for h in held] == ["pending", "pending"]
    for email in ("gina@example.com", "GINA@example.com"):  # the address, whatever its case
        with pytest.raises(Conflict) as err:
            gbook(event, payment_method="card", email=email, ip="198.51.100.3")
        assert err.value.params == {"max": 2}
    # a booking confirmed at once (paid on site) still holds seats unpaid: capped too
    with pytest.raises(Conflict):
        gbook(event, payment_method="on_site", ip="198.51.100.3")
    assert gbook(event, email="other@example.com", payment_method="card").status == "pending"
    # one paid: it no longer counts
    with db.unit_of_work() as s:
        s.add(Payment(booking_id=held[0].id, method="card", provider="stripe", amount_cents=1000, currency="EUR",
                      status="succeeded"))
    assert gbook(event, payment_method="card").status == "pending"
    # holds that lapsed don't count either
    later = NOW + dt.timedelta(hours=1)
    assert gbook(event, payment_method="card", now=later).status == "pending"


def test_active_unpaid_guest_bookings_are_capped_per_client_ip(db_url, monkeypatch):
    env(monkeypatch, GUEST_MAX_HOLDS_PER_IP="2", GUEST_MAX_HOLDS_PER_EMAIL="50")
    event = event_at()
    gbook(event, email="a@example.com", ip="2001:db8:1:2::10")
    gbook(event, email="b@example.com", ip="2001:db8:1:2::20")
    with pytest.raises(Conflict):  # another address of the same IPv6 /64
        gbook(event, email="c@example.com", ip="2001:db8:1:2:ffff::1")
    assert gbook(event, email="c@example.com", ip="2001:db8:1:3::1").status == "confirmed"
    gbook(event, email="d@example.com", ip="192.0.2.1")
    gbook(event, email="e@example.com", ip="192.0.2.1")
    with pytest.raises(Conflict):
        gbook(event, email="f@example.com", ip="192.0.2.1")
    assert len(active_guest_rows(event.id)) == 5
    # the address itself is never stored
    with db.read_session() as s:
        stored = {r for r in s.exec(select(Booking.guest_ip)).all()}
    assert stored and not any("192.0.2.1" in (r or "") or "2001" in (r or "") for r in stored)


def test_a_guest_hold_lasts_the_guest_hold_time(db_url, monkeypatch, stripe_on):
    env(monkeypatch, GUEST_HOLD_MINUTES="7", HOLD_MINUTES="15")
    event = event_at()
    assert gbook(event, payment_method="card").hold_expires_at == NOW + dt.timedelta(minutes=7)
    customer = bookings.book(actor=actor_for(make_customer()), service_id=event.id, start=AT,
                             payment_method="card", now=NOW)
    assert customer.hold_expires_at == NOW + dt.timedelta(minutes=15)
    # by default a guest's hold is shorter than a customer's
    env(monkeypatch, GUEST_HOLD_MINUTES="", HOLD_MINUTES="")
    monkeypatch.delenv("GUEST_HOLD_MINUTES")
    monkeypatch.delenv("HOLD_MINUTES")
    reset_settings_cache()
    assert gbook(event, email="x@example.com", payment_method="card").hold_expires_at - NOW \
        < dt.timedelta(minutes=get_settings().hold_minutes)


def test_guest_bookings_are_rate_limited_per_email_and_per_ip_and_can_be_switched_off(db_url, monkeypatch):
    env(monkeypatch, GUEST_RATE_PER_EMAIL="2", GUEST_RATE_PER_IP="3", GUEST_MAX_HOLDS_PER_EMAIL="50")
    event = event_at()
    for _ in range(2):
        gbook(event, ip="192.0.2.50")
    with pytest.raises(RateLimited) as err:
        gbook(event, ip="192.0.2.51")
    assert err.value.retry_after > 0
    gbook(event, email="other@example.com", ip="192.0.2.50")  # the IP's third
    with pytest.raises(RateLimited):
        gbook(event, email="third@example.com", ip="192.0.2.50")
    # a request that fails (the slot is taken) is not counted
    room = make_bookable(weekly=ALL_WEEK)
    gbook(room, email="r1@example.com", ip=None)
    for _ in range(3):
        with pytest.raises(NotAvailable):
            gbook(room, email="r2@example.com", ip=None)
    gbook(event, email="r2@example.com", ip=None)
    # RATE_LIMITS_ENABLED=false switches the rate limits (and the per-client cap, as load
    # tests come from one address) off; the per-address cap and the guest maximum stay on
    env(monkeypatch, RATE_LIMITS_ENABLED="false", GUEST_MAX_HOLDS_PER_EMAIL="4", GUEST_MAX_HOLDS_PER_IP="1")
    gbook(event, ip="192.0.2.50")
    gbook(event, ip="192.0.2.50")
    with pytest.raises(Conflict):
        gbook(event, ip="192.0.2.50")
    with pytest.raises(InvalidInput):
        gbook(event, email="big@example.com", quantity=11)


@pytest.mark.parametrize("name", ["Visit https://evil.example now", "www.evil.example", "claim at evil.example",
                                  "mail me: a@evil.example", "EVIL.COM/refund"])
def test_guest_names_carrying_links_are_refused(sqlite_db, name):
    room = make_bookable()
    with pytest.raises(InvalidInput) as err:
        bookings.book(actor=Actor.guest(), service_id=room.id, start=AT, guest={"name": name, "email": "a@b.example"},
                      now=NOW)
    assert err.value.field == "guest.name"


@pytest.mark.parametrize("name", ["J. R. R. Tolkien", "Anne-Marie O'Neil", "José Ñúñez", "محمد علي"])
def test_ordinary_guest_names_are_accepted(sqlite_db, name):
    room = make_bookable()
    bk = bookings.book(actor=Actor.guest(), service_id=room.id, start=AT, guest={"name": name, "email": "a@b.example"},
                       now=NOW)
    assert bk.guest_name == name


# --- email confirmation -------------------------------------------------------------------

def _confirm_token() -> str:
    url = outbox("guest_booking_request")[-1].context["confirm_url"]
    assert url.startswith(get_settings().public_url.rstrip("/") + "/booking/confirm?token=")
    return url.partition("token=")[2]


def test_confirmation_mode_holds_nothing_until_the_link_then_books(db_url, monkeypatch):
    env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true")
    room = make_bookable(weekly=ALL_WEEK)
    with pytest.raises(InvalidInput):  # no direct guest booking in this mode
        gbook(room)
    pending = guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=AT,
                                             guest=guest(), client_ip="192.0.2.9", now=NOW)
    assert pending.email == "gina@example.com" and pending.expires_at > NOW
    assert active_guest_rows(room.id) == []
    assert [s.remaining for s in availability.slots(bookable_id=room.id, date_from=AT.date(), date_to=AT.date(),
                                                     actor=Actor.guest(), now=NOW) if s.start == AT] == [1]
    message = outbox("guest_booking_request")[-1]
    assert message.to == "gina@example.com"
    token = _confirm_token()
    assert message.context["confirm_url"] in messages.render_email(message.template, "en", message.context).text
    made = bookings.confirm_guest_request(token=token, now=NOW + dt.timedelta(minutes=5))
    assert (made.status, made.guest_email, made.start) == ("confirmed", "gina@example.com", AT)
    assert [r.id for r in active_guest_rows(room.id)] == [made.id]
    # the link opened again shows the same booking, never a second one
    assert bookings.confirm_guest_request(token=token, now=NOW + dt.timedelta(minutes=6)).id == made.id
    assert len(active_guest_rows(room.id)) == 1


def test_a_confirmation_link_after_the_slot_filled_is_not_available(db_url, monkeypatch):
    env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true")
    room = make_bookable(weekly=ALL_WEEK)
    guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=AT, guest=guest(), now=NOW)
    token = _confirm_token()
    bookings.book(actor=actor_for(make_customer()), service_id=room.id, start=AT, now=NOW)
    with pytest.raises(NotAvailable):
        bookings.confirm_guest_request(token=token, now=NOW + dt.timedelta(minutes=1))
    assert len(active_guest_rows(room.id)) == 1


def test_a_wrong_or_expired_confirmation_link_is_not_found(db_url, monkeypatch):
    env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true", GUEST_CONFIRMATION_MINUTES="30")
    room = make_bookable(weekly=ALL_WEEK)
    guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=AT, guest=guest(), now=NOW)
    token = _confirm_token()
    request_id, _, sig = token.partition(".")
    for bad in (f"{request_id}.{sig[:-2]}xx", f"{int(request_id) + 1}.{sig}", "", "nonsense"):
        with pytest.raises(NotFound):
            bookings.confirm_guest_request(token=bad, now=NOW)
    with pytest.raises(NotFound):
        bookings.confirm_guest_request(token=token, now=NOW + dt.timedelta(minutes=31))
    assert active_guest_rows(room.id) == []


def test_expired_booking_requests_are_purged(db_url, monkeypatch):
    env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true", GUEST_CONFIRMATION_MINUTES="60")
    room = make_bookable(weekly=ALL_WEEK)
    guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=AT, guest=guest(), now=NOW)
    token = _confirm_token()
    assert guest_bookings.purge_guest_requests(now=NOW + dt.timedelta(hours=2)) == 0  # kept a day past its expiry
    assert guest_bookings.purge_guest_requests(now=NOW + dt.timedelta(days=2)) == 1
    with pytest.raises(NotFound):
        bookings.confirm_guest_request(token=token, now=NOW + dt.timedelta(minutes=1))


def test_booking_requests_are_rate_limited(db_url, monkeypatch):
    env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true", GUEST_RATE_PER_EMAIL="2")
    room = make_bookable(weekly=ALL_WEEK)
    for _ in range(2):
        guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=AT, guest=guest(), now=NOW)
    with pytest.raises(RateLimited):
        guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=AT, guest=guest(), now=NOW)
    assert len(outbox("guest_booking_request")) == 2


# --- manage links -------------------------------------------------------------------------

def test_a_manage_link_expires_after_the_booking_ended(db_url, monkeypatch):
    env(monkeypatch, MANAGE_LINK_TTL_DAYS="30")
    room = make_bookable()
    bk = gbook(room)
    token = manage_links.booking_manage_token(bk.id)
    end = bk.end
    with db.read_session() as s:
        row = s.get(Booking, bk.id)
    assert manage_links.manage_token_grants(token, row, now=end + dt.timedelta(days=29))
    assert not manage_links.manage_token_grants(token, row, now=end + dt.timedelta(days=30, seconds=1))
    monkeypatch.setattr(manage_links, "utcnow", lambda: end + dt.timedelta(days=31))
    with pytest.raises(NotFound) as err:
        booking_queries.get_booking(actor=Actor.guest(), booking_id=bk.id, manage_token=token)
    assert err.value.message == manage_links.LINK_NOT_VALID


def test_a_re_issued_manage_link_revokes_the_old_one(db_url, monkeypatch):
    room = make_bookable()
    bk = gbook(room, email="Gina@Example.com")
    old = manage_links.booking_manage_token(bk.id)
    assert booking_queries.get_booking(actor=Actor.guest(), booking_id=bk.id, manage_token=old).id == bk.id
    # a wrong address: nothing happens (and nothing says so)
    guest_bookings.request_manage_link(email="someone@example.com", reference=bk.reference)
    assert manage_links.verify_manage_token(old) == bk.id
    guest_bookings.request_manage_link(email="gina@example.com", reference=bk.reference.lower(), client_ip="192.0.2.4")
    with pytest.raises(NotFound):
        booking_queries.get_booking(actor=Actor.guest(), booking_id=bk.id, manage_token=old)
    sent = outbox("guest_manage_link")
    assert len(sent) == 1 and sent[0].to == "Gina@example.com"
    new = sent[0].context["manage_url"].partition("token=")[2]
    assert new != old and booking_queries.get_booking(actor=Actor.guest(), booking_id=bk.id, manage_token=new).id == bk.id
    assert new in messages.render_email(sent[0].template, sent[0].locale, sent[0].context).text
    # reminders still waiting carry the new link, not the revoked one
    reminders = [n for n in outbox("reminder") if n.booking_id == bk.id and n.status == "pending"]
    assert reminders and all(n.context["manage_url"].endswith(new) for n in reminders)
    # staff re-issue too; then the guest's second link stops working as well
    provider = make_provider()
    with pytest.raises(NotFound):
        guest_bookings.reissue_manage_link(actor=actor_for(provider), booking_id=bk.id)
    guest_bookings.reissue_manage_link(actor=Actor.system(), booking_id=bk.id)
    assert manage_links.verify_manage_token(new) is None
    assert len(outbox("guest_manage_link")) == 2


def test_manage_link_requests_are_rate_limited(db_url, monkeypatch):
    env(monkeypatch, GUEST_RATE_PER_EMAIL="2")
    room = make_bookable()
    bk = gbook(room)
    for _ in range(2):
        guest_bookings.request_manage_link(email="gina@example.com", reference=bk.reference)
    with pytest.raises(RateLimited):
        guest_bookings.request_manage_link(email="gina@example.com", reference=bk.reference)


def test_a_customer_booking_has_no_manage_link_to_re_issue(db_url):
    room = make_bookable()
    bk = bookings.book(actor=actor_for(make_customer()), service_id=room.id, start=AT, now=NOW)
    with pytest.raises(Conflict):
        guest_bookings.reissue_manage_link(actor=Actor.system(), booking_id=bk.id)


# --- under concurrency --------------------------------------------------------------------

@pytest.mark.postgres
def test_guest_caps_hold_under_concurrency(pg_db, monkeypatch):
    """20 guests with one email address at the same moment (and, apart, 20 with one client
    IP): at most the cap is held, and the event's seats add up exactly."""
    env(monkeypatch, GUEST_MAX_HOLDS_PER_EMAIL="3", GUEST_MAX_HOLDS_PER_IP="4", GUEST_RATE_PER_EMAIL="1000",
        GUEST_RATE_PER_IP="1000")
    event = event_at(capacity=30, start=AT)

    def same_email(i: int):
        return bookings.book(actor=Actor.guest(), service_id=event.id, start=AT, quantity=1 + i % 2,
                             guest=guest("race@example.com"), client_ip=f"198.51.100.{i}", now=NOW)

    counts, results, outcomes, _ = race(20, lambda i: _outcome(same_email, i))
    assert counts["ok"] == 3 and _capped(outcomes) == 17, unexpected(outcomes)
    rows = active_guest_rows(event.id)
    assert len(rows) == 3 and sum(r.quantity for r in rows) == sum(r.quantity for r in results if r is not None)

    def same_ip(i: int):
        return bookings.book(actor=Actor.guest(), service_id=event.id, start=AT, guest=guest(f"ip{i}@example.com"),
                             client_ip="203.0.113.99", now=NOW)

    counts, _results, outcomes, _ = race(20, lambda i: _outcome(same_ip, i))
    assert counts["ok"] == 4 and _capped(outcomes) == 16, unexpected(outcomes)
    assert len(active_guest_rows(event.id)) == 7


@pytest.mark.postgres
def test_guests_racing_for_a_small_event_with_caps_never_oversell(pg_db, monkeypatch):
    """Guests with their own addresses race for 5 seats while the caps are checked: exactly
    the capacity is sold, never more."""
    env(monkeypatch, GUEST_RATE_PER_EMAIL="1000", GUEST_RATE_PER_IP="1000")
    event = event_at(capacity=5, start=AT)

    def attempt(i: int):
        return bookings.book(actor=Actor.guest(), service_id=event.id, start=AT, guest=guest(f"g{i}@example.com"),
                             client_ip=f"192.0.2.{i}", now=NOW)

    counts, _results, outcomes, _ = race(30, attempt)
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 30, unexpected(outcomes)
    assert sum(r.quantity for r in active_guest_rows(event.id)) == counts["ok"] <= 5


class _Capped(Exception):
    pass


def _capped(outcomes: list[str]) -> int:
    return sum(o.startswith("error:_Capped") for o in outcomes)


def _outcome(fn, i: int):
    """fn(i); a guest cap's Conflict raised as _Capped (race() reports it as "error:_Capped")."""
    try:
        return fn(i)
    except Conflict as exc:
        if isinstance(exc, NotAvailable):
            raise
        raise _Capped() from None
