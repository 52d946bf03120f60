"""Approval requests hold capacity exactly (issue 24, acceptance), on SQLite and PostgreSQL:
requests and plain bookings racing for N seats never hold more than N; a decline racing
bookers frees exactly its seats, no more; the session counter (migration 0003/0011) agrees
with the rows.
"""
from __future__ import annotations

import random

from sqlalchemy import text
from sqlmodel import select

from booking_app import db
from booking_app.models import ACTIVE_STATUSES, Booking
from booking_app.services import approvals, bookings
from booking_app.services.actors import Actor
from booking_app.services.errors import NotAvailable
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_customer, make_event, make_provider, next_day_at
from tests.test_concurrency import race, unexpected

import pytest


def held(bookable_ids: list[int]) -> list[Booking]:
    with db.read_session() as s:
        return list(s.exec(select(Booking).where(Booking.bookable_id.in_(bookable_ids),  # type: ignore[attr-defined]
                                                 Booking.status.in_(ACTIVE_STATUSES))).all())  # type: ignore[attr-defined]


def counter(session_id: int) -> int:
    with db.read_session() as s:
        return int(s.connection().execute(text("SELECT seats_taken FROM event_sessions WHERE id = :i"),
                                          {"i": session_id}).scalar_one())


def test_requests_and_walk_ins_racing_for_a_session_never_exceed_it(db_url):
    start = next_day_at(18, days=2)
    provider = make_provider()
    event, sessions = make_event(provider, sessions=[start], capacity=6, requires_approval=True)
    staff = actor_for(provider)
    customers = [actor_for(make_customer()) for _ in range(4)]
    rnd = random.Random(24)
    quantities = [rnd.randint(1, 2) for _ in range(30)]

    def attempt(i: int):
        if i % 2:  # the provider's walk-in: a plain booking, no approval
            return bookings.book(actor=staff, service_id=event.id, start=start, quantity=quantities[i],
                                 guest={"name": f"Walk-in {i}", "email": f"walkin{i}@example.com"})
        return bookings.book(actor=customers[i % 4], service_id=event.id, start=start, quantity=quantities[i])

    # one request before the race, so the decline below has one whoever wins the race
    first = bookings.book(actor=customers[0], service_id=event.id, start=start, quantity=1)
    assert first.status == "awaiting_approval"
    counts, results, outcomes, _ = race(30, attempt)
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 30, unexpected(outcomes)
    rows = held([event.id])
    made = [first] + [r for r in results if r is not None]
    assert {r.status for r in made} <= {"awaiting_approval", "confirmed"}
    assert sum(r.quantity for r in rows) == sum(r.quantity for r in made) <= 6
    assert counter(sessions[0].id) == sum(r.quantity for r in rows)
    # fill the session to the last seat, then a decline frees exactly its seats
    left = 6 - sum(r.quantity for r in rows)
    if left:
        bookings.book(actor=staff, service_id=event.id, start=start, quantity=left,
                      guest={"name": "Last", "email": "last@example.com"})
    request = next(r for r in made if r.status == "awaiting_approval")
    approvals.decline(actor=staff, booking_id=request.id)
    assert counter(sessions[0].id) == 6 - request.quantity
    bookings.book(actor=staff, service_id=event.id, start=start, quantity=request.quantity,
                  guest={"name": "Next", "email": "next@example.com"})
    with pytest.raises(NotAvailable):
        bookings.book(actor=staff, service_id=event.id, start=start, guest={"name": "One more",
                                                                           "email": "more@example.com"})
    assert sum(r.quantity for r in held([event.id])) == 6 == counter(sessions[0].id)


def test_a_decline_racing_bookers_frees_exactly_its_seats(db_url):
    start = next_day_at(18, days=2)
    provider = make_provider()
    event, sessions = make_event(provider, sessions=[start], capacity=5, requires_approval=True)
    staff = actor_for(provider)
    request = bookings.book(actor=actor_for(make_customer()), service_id=event.id, start=start, quantity=2)
    bookings.book(actor=staff, service_id=event.id, start=start, quantity=3,
                  guest={"name": "Group", "email": "group@example.com"})

    def attempt(i: int):
        if i == 0:
            return approvals.decline(actor=staff, booking_id=request.id)
        return bookings.book(actor=staff, service_id=event.id, start=start,
                             guest={"name": f"Racer {i}", "email": f"racer{i}@example.com"})

    counts, results, outcomes, _ = race(21, attempt)
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 21, unexpected(outcomes)
    assert outcomes[0] == "ok", outcomes[0]  # the decline went through
    assert counts["ok"] - 1 <= 2  # at most the 2 freed seats were sold
    assert sum(r.quantity for r in held([event.id])) == 3 + counts["ok"] - 1 == counter(sessions[0].id)


def test_a_request_and_a_plain_booking_of_the_providers_other_service_share_its_time(db_url):
    """A provider's services share the provider's time: a request on one and plain bookings
    on the other race for the same hour — exactly one of them holds it."""
    provider = make_provider()
    needs_approval = make_bookable(provider, kind="service", weekly=ALL_WEEK, requires_approval=True)
    plain = make_bookable(provider, kind="service", weekly=ALL_WEEK)
    start = next_day_at(11, days=2)

    def attempt(i: int):
        target = needs_approval if i % 2 == 0 else plain
        return bookings.book(actor=Actor.guest(), service_id=target.id, start=start,
                             guest={"name": f"G{i}", "email": f"svc{i}-{random.random():.6f}@example.com"})

    counts, results, outcomes, _ = race(20, attempt)
    assert counts["ok"] == 1, unexpected(outcomes)
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 20, unexpected(outcomes)
    assert len(held([needs_approval.id, plain.id])) == 1
