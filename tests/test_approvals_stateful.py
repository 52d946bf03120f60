"""The Hypothesis stateful model of tests/test_booking_stateful.py, extended with approval
(issue 24, acceptance): the room and the event require approval, so the customers' bookings
are requests (`awaiting_approval`, held until their expiry), the provider's walk-ins are
plain bookings; rules approve, decline and the request sweep join book / cancel /
reschedule / pay / expire. The model predicts every outcome; after every step the database
agrees with it, no instant holds more than the capacity, and each session's counter is
exactly the seats of its pending, confirmed and awaiting bookings."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from booking_app.services import approvals
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict
from tests.factories import actor_for, make_bookable, make_event, make_provider
from tests.test_booking_stateful import CAPACITY, HOLD, SLOTS, BookingMachine, EventMachine, _run

AWAITING = "awaiting_approval"
EXPIRY = dt.timedelta(hours=1)  # the bookables' approval_expiry_hours


class ApprovalMachine(BookingMachine):
    """model: booking id → [slot index, quantity, status, hold/approval expiry, payment method]"""

    @initialize()
    def create_room(self) -> None:
        provider = make_provider()
        self.staff = actor_for(provider)
        self.room = make_bookable(provider, capacity=CAPACITY, price_cents=500, buffer_after_minutes=30,
                                  weekly=[{"weekday": d, "start": "09:00", "end": "14:00"} for d in range(7)],
                                  requires_approval=True, approval_expiry_hours=1)

    def _book_as(self, actor: Actor, slot: int, qty: int, pay_online: bool, status: str,
                 until: dt.datetime | None) -> None:
        bk = self._try_book(slot, qty, pay_online, actor)
        if bk is not None:
            assert (bk.status, bk.hold_expires_at) == (status, until)
            self.model[bk.id] = [slot, qty, status, until, "card" if pay_online else "on_site"]

    @rule(slot=st.integers(0, len(SLOTS) - 1), qty=st.integers(1, CAPACITY), pay_online=st.booleans())
    def book(self, slot: int, qty: int, pay_online: bool) -> None:
        """A customer's (guest's) booking: a request, held for the approval expiry."""
        self._book_as(Actor.guest(), slot, qty, pay_online, AWAITING, min(self.now + EXPIRY, SLOTS[slot]))

    @rule(slot=st.integers(0, len(SLOTS) - 1), qty=st.integers(1, CAPACITY), pay_online=st.booleans())
    def walk_in(self, slot: int, qty: int, pay_online: bool) -> None:
        """The provider books a walk-in: a plain booking, no approval."""
        self._book_as(self.staff, slot, qty, pay_online, "pending" if pay_online else "confirmed",
                      self.now + HOLD if pay_online else None)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def approve(self, data) -> None:
        bid = self._pick(data)
        b = self.model[bid]
        try:
            view = approvals.approve(actor=self.staff, booking_id=bid, now=self.now)
        except Conflict:
            assert not (b[2] == AWAITING and b[3] > self.now)
            return
        assert b[2] == AWAITING and b[3] > self.now
        if b[4] == "on_site":
            b[2], b[3] = "confirmed", None
        else:
            b[2], b[3] = "pending", min(self.now + EXPIRY, SLOTS[b[0]])
        assert (view.status, view.hold_expires_at) == (b[2], b[3])

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def decline(self, data) -> None:
        bid = self._pick(data)
        b = self.model[bid]
        try:
            approvals.decline(actor=self.staff, booking_id=bid, now=self.now)
        except Conflict:
            assert b[2] != AWAITING
            return
        assert b[2] == AWAITING  # (a lapsed request not swept yet may be declined too)
        b[2] = "cancelled"

    @rule()
    def sweep(self) -> None:
        super().sweep()
        approvals.expire_requests(now=self.now)
        for b in self.model.values():
            if b[2] == AWAITING and b[3] <= self.now:
                b[2] = "cancelled"  # (lapsed: never revived by a payment, unlike an expired hold)

    @invariant()
    def every_status_agrees(self) -> None:
        """(besides the base invariant on the active rows) ended rows too: declined, lapsed."""
        if not hasattr(self, "room"):
            return
        for r in self._rows():
            assert r.status == self.model[r.id][2], (r.status, self.model[r.id])


class ApprovalEventMachine(ApprovalMachine, EventMachine):
    """The same on an event that requires approval: one session per slot (the event
    machine's slots and session counters)."""

    @initialize()
    def create_room(self) -> None:
        provider = make_provider()
        self.staff = actor_for(provider)
        self.room, _sessions = make_event(provider, sessions=SLOTS, capacity=CAPACITY, price_cents=500,
                                          requires_approval=True, approval_expiry_hours=1)


def test_random_approval_sequences_match_the_model(sqlite_db, monkeypatch):
    _run(ApprovalMachine, monkeypatch, 20, 25)


def test_random_approval_event_sequences_match_the_model(sqlite_db, monkeypatch):
    _run(ApprovalEventMachine, monkeypatch, 15, 25)


@pytest.mark.postgres
def test_random_approval_sequences_match_the_model_on_postgres(pg_db, monkeypatch):
    _run(ApprovalMachine, monkeypatch, 8, 20)


@pytest.mark.postgres
def test_random_approval_event_sequences_match_the_model_on_postgres(pg_db, monkeypatch):
    _run(ApprovalEventMachine, monkeypatch, 8, 20)
