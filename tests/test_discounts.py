"""Discount codes (issue 26, point 1) through the services, on SQLite and PostgreSQL: who may
create which code, validation, redemption at booking (the price computed by the service),
uses given back by a cancellation or a lapsed hold, per-customer limits, the limits
(bookables, kinds, currency, minimum price, validity), and the report against hand-computed
figures. The race: tests/test_discount_race.py."""
from __future__ import annotations

import datetime as dt

import pytest

from booking_app import db
from booking_app.models import Booking
from booking_app.services import bookings, discount_reports, discounts, pricing
from booking_app.services.actors import Actor
from booking_app.services.discounts import DiscountCodeInvalid
from booking_app.services.errors import Forbidden, InvalidInput, NotFound
from tests.factories import (
    ALL_WEEK,
    actor_for,
    make_admin,
    make_bookable,
    make_customer,
    make_event,
    make_provider,
    next_day_at,
)

UTC = dt.timezone.utc


def guest(i: int | str = 1, email: str | None = None) -> dict:
    return {"name": f"Guest {i}", "email": email or f"guest{i}@example.com"}


def book(b, hour: int, code: str | None = None, *, actor: Actor | None = None, who: dict | None = None,
         quantity: int = 1, **kw):
    actor = actor or Actor.guest()
    return bookings.book(actor=actor, service_id=b.id, start=next_day_at(hour), quantity=quantity,
                         guest=(who or guest(hour)) if actor.is_guest else None, discount_code=code, **kw)


@pytest.fixture
def shop(db_url):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK, price_cents=1225, capacity=3)
    return provider, room


def test_percent_code_is_applied_by_the_service_and_kept_on_the_booking(shop):
    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "  summer-10 ", "percent_off": 10})
    view = book(room, 10, "Summer-10", quantity=2)
    # 2 × 12.25 = 24.50; 10 % = 2.45 exactly
    assert (view.list_price_cents, view.discount_cents, view.price_cents) == (2450, 245, 2205)
    one = book(room, 11, "SUMMER-10")
    assert (one.list_price_cents, one.discount_cents, one.price_cents) == (1225, 123, 1102)  # 1.225 → 1.23 (half-up)
    with db.read_session() as s:
        row = s.get(Booking, one.id)
        assert row.discount_code_id is not None and row.list_price_cents == 1225 and row.price_cents == 1102
    plain = book(room, 12)
    assert (plain.list_price_cents, plain.discount_cents, plain.price_cents) == (1225, 0, 1225)


def test_fixed_code_never_goes_below_zero_and_needs_the_currency(shop):
    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "BIG", "amount_off_cents": 5000, "currency": "eur"})
    view = book(room, 10, "big")
    assert (view.discount_cents, view.price_cents, view.status) == (1225, 0, "confirmed")  # free: confirmed
    usd = make_bookable(provider, weekly=ALL_WEEK, price_cents=1000, currency="USD")
    with pytest.raises(DiscountCodeInvalid) as err:
        book(usd, 10, "BIG")
    assert err.value.message == discounts.NOT_APPLICABLE and err.value.code == "discount_code_invalid"


def test_unknown_inactive_expired_and_future_codes_are_refused(shop):
    provider, room = shop
    now = dt.datetime.now(UTC)
    me = actor_for(provider)
    discounts.create_code(actor=me, data={"code": "OLD", "percent_off": 5, "valid_until": now - dt.timedelta(days=1)})
    discounts.create_code(actor=me, data={"code": "SOON", "percent_off": 5, "valid_from": now + dt.timedelta(days=1)})
    off = discounts.create_code(actor=me, data={"code": "OFF", "percent_off": 5})
    discounts.deactivate_code(actor=me, code_id=off.id)
    for code in ("NOPE", "OLD", "SOON", "OFF", "x", "bad code!", "\x00AB"):
        with pytest.raises(DiscountCodeInvalid):
            book(room, 10, code)
    assert book(room, 10).price_cents == 1225  # nothing was written by the refusals


def test_max_uses_and_a_cancelled_or_lapsed_booking_gives_its_use_back(shop, monkeypatch):
    provider, room = shop
    code = discounts.create_code(actor=actor_for(provider), data={"code": "TWICE", "percent_off": 50, "max_uses": 2})
    a = book(room, 9, "TWICE")
    book(room, 10, "TWICE")
    with pytest.raises(DiscountCodeInvalid) as err:
        book(room, 11, "TWICE")
    assert err.value.message == discounts.USED_UP
    assert discounts.get_code(actor=actor_for(provider), code_id=code.id).uses == 2
    bookings.cancel(actor=actor_for(provider), booking_id=a.id)
    assert discounts.get_code(actor=actor_for(provider), code_id=code.id).uses == 1
    held = book(room, 11, "TWICE")
    assert held.discount_cents == 613  # 50 % of 12.25 = 6.125 → 6.13 (half-up)
    # a pending hold that lapsed gives its use back too (swept or not)
    with db.unit_of_work() as s:
        row = s.get(Booking, held.id)
        row.status, row.hold_expires_at = "pending", dt.datetime.now(UTC) - dt.timedelta(minutes=1)
        s.add(row)
    assert discounts.get_code(actor=actor_for(provider), code_id=code.id).uses == 1
    assert book(room, 12, "TWICE").discount_cents == 613


def test_uses_per_customer_count_the_signed_in_user_or_the_guest_email(shop):
    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "ONCE", "percent_off": 10,
                                                            "max_uses_per_customer": 1})
    cust = make_customer()
    book(room, 9, "ONCE", actor=actor_for(cust))
    with pytest.raises(DiscountCodeInvalid):
        book(room, 10, "ONCE", actor=actor_for(cust))
    book(room, 10, "ONCE", who=guest("a", "Same@Example.com"))
    with pytest.raises(DiscountCodeInvalid):
        book(room, 11, "ONCE", who=guest("b", "same@example.com"))
    book(room, 11, "ONCE", who=guest("c", "other@example.com"))


def test_limits_bookables_kinds_and_minimum_price(shop):
    provider, room = shop
    me = actor_for(provider)
    other_room = make_bookable(provider, weekly=ALL_WEEK, price_cents=1000)
    event, _ = make_event(provider, sessions=[next_day_at(18)], capacity=5, price_cents=1000)
    discounts.create_code(actor=me, data={"code": "ROOM-ONLY", "percent_off": 10, "service_ids": [room.id]})
    discounts.create_code(actor=me, data={"code": "EVENTS", "percent_off": 10, "kinds": ["event"]})
    discounts.create_code(actor=me, data={"code": "BIG-ORDERS", "percent_off": 10, "min_price_cents": 2000})
    assert book(room, 9, "ROOM-ONLY").discount_cents == 123
    with pytest.raises(DiscountCodeInvalid):
        book(other_room, 9, "ROOM-ONLY")
    with pytest.raises(DiscountCodeInvalid):
        book(room, 10, "EVENTS")
    assert book(event, 18, "EVENTS").discount_cents == 100
    with pytest.raises(DiscountCodeInvalid):
        book(room, 11, "BIG-ORDERS")
    assert book(room, 11, "BIG-ORDERS", quantity=2).discount_cents == 245


def test_a_providers_code_applies_only_to_their_own_bookables(db_url):
    alice, bob = make_provider(), make_provider()
    alices = make_bookable(alice, weekly=ALL_WEEK, price_cents=1000)
    bobs = make_bookable(bob, weekly=ALL_WEEK, price_cents=1000)
    discounts.create_code(actor=actor_for(alice), data={"code": "ALICE", "percent_off": 20})
    with pytest.raises(InvalidInput) as err:
        discounts.create_code(actor=actor_for(alice), data={"code": "STEAL", "percent_off": 20,
                                                             "service_ids": [bobs.id]})
    assert err.value.message == discounts.NOT_YOUR_SERVICE
    assert book(alices, 10, "alice").price_cents == 800
    with pytest.raises(DiscountCodeInvalid):
        book(bobs, 10, "ALICE")
    # an admin's code applies anywhere, an admin sees every code, a provider only their own
    admin = make_admin()
    discounts.create_code(actor=actor_for(admin), data={"code": "HOUSE", "percent_off": 50, "service_ids": [bobs.id]})
    assert book(bobs, 11, "house").price_cents == 500
    assert {c.code for c in discounts.list_codes(actor=actor_for(admin))} == {"ALICE", "HOUSE"}
    assert [c.code for c in discounts.list_codes(actor=actor_for(bob))] == []
    alice_code = discounts.list_codes(actor=actor_for(alice))[0]
    with pytest.raises(NotFound):
        discounts.get_code(actor=actor_for(bob), code_id=alice_code.id)
    with pytest.raises(NotFound):
        discounts.update_code(actor=actor_for(bob), code_id=alice_code.id, data={"active": False})
    with pytest.raises(Forbidden):
        discounts.list_codes(actor=actor_for(make_customer()))


@pytest.mark.parametrize("data, field", [
    ({"code": "OK1", "percent_off": 0}, "percent_off"),
    ({"code": "OK1", "percent_off": 101}, "percent_off"),
    ({"code": "OK1", "percent_off": 10, "amount_off_cents": 100, "currency": "EUR"}, "percent_off"),
    ({"code": "OK1"}, "percent_off"),
    ({"code": "OK1", "amount_off_cents": 100}, "currency"),
    ({"code": "OK1", "amount_off_cents": 100, "currency": "EURO"}, "currency"),
    ({"code": "AB", "percent_off": 10}, "code"),
    ({"code": "A" * 33, "percent_off": 10}, "code"),
    ({"code": "NO SPACE", "percent_off": 10}, "code"),
    ({"code": "CR\r\nLF", "percent_off": 10}, "code"),
    ({"code": "OK1", "percent_off": 10, "max_uses": 0}, "max_uses"),
    ({"code": "OK1", "percent_off": 10, "kinds": ["spa"]}, "kinds"),
    ({"code": "OK1", "percent_off": 10, "service_ids": [999999]}, "service_ids"),
    ({"code": "OK1", "percent_off": 10, "valid_from": "2027-01-02T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z"},
     "valid_until"),
    ({"code": "OK1", "percent_off": 10, "valid_until": "2027-01-01T00:00:00"}, "valid_until"),
    ({"code": "OK1", "percent_off": 10, "valid_until": "9999-01-01T00:00:00Z"}, "valid_until"),
])
def test_bad_input_is_refused_and_nothing_is_written(shop, data, field):
    provider, _room = shop
    with pytest.raises(InvalidInput) as err:
        discounts.create_code(actor=actor_for(provider), data=data)
    assert err.value.field == field
    assert discounts.list_codes(actor=actor_for(provider)) == []


def test_codes_are_unique_whatever_their_case(shop):
    provider, _room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "Spring", "percent_off": 10})
    with pytest.raises(InvalidInput) as err:
        discounts.create_code(actor=actor_for(make_admin()), data={"code": "SPRING ", "percent_off": 20})
    assert err.value.message == discounts.CODE_TAKEN


def test_update_switches_kind_and_keeps_the_rest(shop):
    provider, room = shop
    me = actor_for(provider)
    code = discounts.create_code(actor=me, data={"code": "FLEX", "percent_off": 10, "max_uses": 5})
    changed = discounts.update_code(actor=me, code_id=code.id, data={"percent_off": None, "amount_off_cents": 200,
                                                                     "currency": "EUR"})
    assert (changed.percent_off, changed.amount_off_cents, changed.currency, changed.max_uses) == (None, 200, "EUR", 5)
    assert book(room, 10, "flex").price_cents == 1025


def test_preview_shows_what_the_booking_will_cost(shop):
    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "PEEK", "percent_off": 10, "max_uses": 1})
    q = pricing.preview(actor=Actor.guest(), service_id=room.id, quantity=2, discount_code="peek")
    assert (q.list_price_cents, q.discount_cents, q.price_cents, q.discount_code) == (2450, 245, 2205, "PEEK")
    assert pricing.preview(actor=Actor.guest(), service_id=room.id, quantity=1).price_cents == 1225
    book(room, 10, "PEEK")
    with pytest.raises(DiscountCodeInvalid):
        pricing.preview(actor=Actor.guest(), service_id=room.id, quantity=1, discount_code="PEEK")


def test_resizing_a_discounted_booking_keeps_its_discount(shop):
    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "GROW", "percent_off": 10, "max_uses": 1})
    view = book(room, 10, "GROW")
    moved = bookings.reschedule(actor=actor_for(provider), booking_id=view.id, quantity=3)
    assert (moved.list_price_cents, moved.discount_cents, moved.price_cents) == (3675, 368, 3307)


def test_report_gross_discounts_net_and_uses_per_code(shop):
    """Hand-computed: room 12.25 EUR. Bookings made today: A 2 seats with TEN (24.50 − 2.45),
    B 1 seat with TEN (12.25 − 1.23), C 1 seat with FIVE-EUR (12.25 − 5.00), D 1 seat without
    a code, E 1 seat with TEN then cancelled (not counted). Gross 24.50 + 12.25×3 = 61.25,
    discounts 2.45 + 1.23 + 5.00 = 8.68, net 52.57; TEN: 2 uses, FIVE-EUR: 1."""
    provider, room = shop
    me = actor_for(provider)
    discounts.create_code(actor=me, data={"code": "TEN", "percent_off": 10})
    discounts.create_code(actor=me, data={"code": "FIVE-EUR", "amount_off_cents": 500, "currency": "EUR"})
    book(room, 8, "TEN", quantity=2)
    book(room, 9, "TEN")
    book(room, 10, "FIVE-EUR")
    book(room, 11)
    e = book(room, 12, "TEN")
    bookings.cancel(actor=me, booking_id=e.id)
    today = dt.datetime.now(UTC).date().isoformat()
    rep = discount_reports.report(actor=actor_for(make_admin()), date_from=today, date_to=today, tz="UTC")
    assert rep.summary["totals"] == [{"currency": "EUR", "bookings": 4, "gross_cents": 6125, "discount_cents": 868,
                                      "net_cents": 5257}]
    assert [(r["code"], r["uses"], r["gross_cents"], r["discount_cents"], r["net_cents"]) for r in rep.rows] == [
        ("FIVE-EUR", 1, 1225, 500, 725), ("TEN", 2, 3675, 368, 3307)]
    with pytest.raises(Forbidden):
        discount_reports.report(actor=me, date_from=today, date_to=today)


def test_a_late_payment_revives_a_lapsed_booking_only_while_its_code_has_a_use_left(shop):
    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "LAST-ONE", "percent_off": 10, "max_uses": 1})
    first = book(room, 9, "LAST-ONE")
    second_try = book(room, 10)
    for view in (first, second_try):  # both lapse: unpaid holds whose time ran out
        with db.unit_of_work() as s:
            row = s.get(Booking, view.id)
            row.status, row.hold_expires_at = "pending", dt.datetime.now(UTC) - dt.timedelta(minutes=1)
            s.add(row)
    assert bookings.release_expired_holds() == 2
    taken = book(room, 11, "LAST-ONE")  # the lapsed booking gave its use back: someone else takes it
    assert taken.discount_cents == 123
    assert bookings.confirm_payment(booking_id=first.id) is False  # its code is used up now: refund
    assert bookings.confirm_payment(booking_id=second_try.id) is True  # no code: revived as before
    bookings.cancel(actor=actor_for(provider), booking_id=taken.id)
    assert bookings.confirm_payment(booking_id=first.id) is True  # the use is free again


def test_the_bookings_csv_shows_list_price_and_discount(shop):
    import csv
    import io

    from booking_app.services import booking_questions

    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "CSV-TEN", "percent_off": 10})
    view = book(room, 10, "CSV-TEN", quantity=2)
    rows = list(csv.DictReader(io.StringIO(booking_questions.export_bookings_csv(actor=actor_for(provider),
                                                                                 scope="provider"))))
    row = next(r for r in rows if r["reference"] == view.reference)
    assert (row["list_price_cents"], row["discount_cents"], row["price_cents"]) == ("2450", "245", "2205")


def test_a_guest_request_waiting_for_its_emailed_link_keeps_its_code(shop, monkeypatch):
    from booking_app.config import reset_settings_cache
    from booking_app.services import guest_bookings
    from tests.test_guest_limits import _confirm_token

    provider, room = shop
    monkeypatch.setenv("GUEST_EMAIL_CONFIRMATION", "true")
    reset_settings_cache()
    discounts.create_code(actor=actor_for(provider), data={"code": "LINKED", "percent_off": 20})
    with pytest.raises(DiscountCodeInvalid):  # refused at once, not only when the link is opened
        guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=next_day_at(10),
                                             guest=guest("g"), discount_code="NOPE-NOPE")
    guest_bookings.request_guest_booking(actor=Actor.guest(), service_id=room.id, start=next_day_at(10),
                                         guest=guest("g"), discount_code="linked")
    made = bookings.confirm_guest_request(token=_confirm_token())
    assert (made.list_price_cents, made.discount_cents, made.price_cents) == (1225, 245, 980)


def test_the_confirmation_email_shows_the_discount(shop):
    from sqlmodel import select

    from booking_app.models import Notification
    from booking_app.services import messages

    provider, room = shop
    discounts.create_code(actor=actor_for(provider), data={"code": "MAIL-10", "percent_off": 10})
    view = book(room, 10, "MAIL-10", quantity=2)
    with db.read_session() as s:
        sent = [n for n in s.exec(select(Notification).where(Notification.template == "booking_confirmed")).all()
                if n.context.get("booking_id") == view.id and n.channel == "email"]
    assert sent and sent[0].context["discount_cents"] == 245
    text = messages.render_email("booking_confirmed", "en", sent[0].context).text
    assert "Price: €22.05" in text and "Discount code: −€2.45" in text
    assert "−2,45" in messages.render_email("booking_confirmed", "fr", sent[0].context).text
