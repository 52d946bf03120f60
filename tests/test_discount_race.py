"""Discount code redemption under concurrency (issue 26 acceptance): 50 clients race a code
with 10 uses, on SQLite and PostgreSQL, and exactly 10 get it. The uses are counted under
the code row's lock in the booking's own transaction (services/discounts.usable_code);
clients retry after Busy (503), as the API asks them to."""
from __future__ import annotations

import time

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Booking
from booking_app.services import bookings, discounts
from booking_app.services.actors import Actor
from booking_app.services.discounts import DiscountCodeInvalid
from booking_app.services.errors import Busy
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_provider, next_day_at
from tests.test_concurrency import hold_racers, race, report, unexpected


def test_50_clients_race_a_code_with_10_uses_and_exactly_10_get_it(db_url, capsys):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK, capacity=100, price_cents=2000)
    code = discounts.create_code(actor=actor_for(provider), data={"code": "RACE10", "percent_off": 25, "max_uses": 10})
    start = next_day_at(10)

    def attempt(i: int):
        for _ in range(20):  # a client retries after 503 Busy (nothing was changed)
            try:
                return bookings.book(actor=Actor.guest(), service_id=room.id, start=start, discount_code="race10",
                                     guest={"name": f"Racer {i}", "email": f"racer{i}@example.com"})
            except Busy:
                time.sleep(0.05)
        raise Busy()

    def classify(i: int):
        try:
            return attempt(i)
        except DiscountCodeInvalid as exc:
            raise _UsedUp(exc.message) from None

    counts, results, outcomes, elapsed = race(50, classify)
    got = [r for r in results if r is not None]
    assert len(got) == 10, unexpected(outcomes)
    assert counts["error"] == 40 and all(o == f"error:_UsedUp:{discounts.USED_UP}" for o in outcomes if o != "ok")
    assert all((r.list_price_cents, r.discount_cents, r.price_cents) == (2000, 500, 1500) for r in got)
    with db.read_session() as s:
        rows = list(s.exec(select(Booking).where(Booking.discount_code_id == code.id)).all())
    assert len(rows) == 10
    assert discounts.get_code(actor=actor_for(provider), code_id=code.id).uses == 10
    report(capsys, "50 clients race a 10-use discount code", db_url, 50, elapsed, counts)


class _UsedUp(Exception):
    pass


@pytest.mark.postgres
def test_control_without_the_code_lock_the_race_over_redeems(pg_db, monkeypatch):
    """Proves the race test can fail: without the code row's lock, racers that all counted
    the uses before any of them committed (held at a barrier) redeem more than max_uses."""
    n = 10  # below the pool size: every racer holds a connection at the barrier
    monkeypatch.setattr(discounts, "LOCKING", False)
    hold_racers(monkeypatch, n)
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK, capacity=100, price_cents=2000)
    discounts.create_code(actor=actor_for(provider), data={"code": "LEAKY", "percent_off": 10, "max_uses": 5})
    start = next_day_at(11)
    counts, _r, outcomes, _ = race(n, lambda i: bookings.book(
        actor=Actor.guest(), service_id=room.id, start=start, discount_code="LEAKY",
        guest={"name": f"Racer {i}", "email": f"leak{i}@example.com"}))
    assert counts["ok"] > 5, outcomes  # over-redeemed
