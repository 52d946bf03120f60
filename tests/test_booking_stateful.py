"""Property-based (Hypothesis stateful) test: random book / cancel / reschedule / pay /
expire sequences against an in-memory model of a 2-seat room with a 30-minute buffer, and
of a 2-seat event with five sessions.

The model predicts every outcome (success or NotAvailable); after every step the database
must agree with it and no instant may ever hold more than the capacity; for the event,
each session's counter (event_sessions.seats_taken, kept by triggers) must equal the seats
of its pending and confirmed bookings, expired holds included until they are swept."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test
from sqlmodel import select

from booking_app import db
from booking_app.config import reset_settings_cache
from booking_app.models import Booking, EventSession
from booking_app.services import bookings
from booking_app.services.actors import Actor
from booking_app.services.errors import NotAvailable
from tests.factories import make_bookable, make_event, make_provider

UTC = dt.timezone.utc
NOW0 = dt.datetime(2027, 1, 10, 8, 0, tzinfo=UTC)
DAY = dt.datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
SLOTS = [DAY + dt.timedelta(hours=h) for h in range(5)]  # 09:00 … 13:00 (hours 09-14 open)
CAPACITY = 2
HOLD = dt.timedelta(minutes=15)
_emails = itertools.count()


class BookingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = NOW0
        # model: booking id → (slot index, quantity, status, hold_expires_at)
        self.model: dict[int, list] = {}

    @initialize()
    def create_room(self) -> None:
        self.room = make_bookable(make_provider(), capacity=CAPACITY, price_cents=500, buffer_after_minutes=30,
                                  weekly=[{"weekday": d, "start": "09:00", "end": "14:00"} for d in range(7)])

    # --- model helpers ---------------------------------------------------------------------
    def _active(self, b: list) -> bool:
        return b[2] == "confirmed" or (b[2] == "pending" and b[3] > self.now)

    def _used(self, slot: int, exclude: int | None = None) -> int:
        # blocks are [start, start + 90 min): slots i and j overlap when |i - j| <= 1
        return sum(b[1] for bid, b in self.model.items()
                   if bid != exclude and self._active(b) and abs(b[0] - slot) <= 1)

    # --- rules -----------------------------------------------------------------------------
    @rule(slot=st.integers(0, len(SLOTS) - 1), qty=st.integers(1, CAPACITY), pay_online=st.booleans())
    def book(self, slot: int, qty: int, pay_online: bool) -> None:
        expect = self._used(slot) + qty <= CAPACITY
        try:
            bk = bookings.book(actor=Actor.guest(), service_id=self.room.id, start=SLOTS[slot], quantity=qty,
                               payment_method="card" if pay_online else "on_site", now=self.now,
                               guest={"name": "G", "email": f"s{next(_emails)}@example.com"})
        except NotAvailable:
            assert not expect, "refused although the model has room"
            return
        assert expect, "accepted although the model is full"
        assert bk.status == ("pending" if pay_online else "confirmed")
        self.model[bk.id] = [slot, qty, bk.status, bk.hold_expires_at]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data) -> None:
        bid = data.draw(st.sampled_from(sorted(self.model)))
        b = self.model[bid]
        try:
            bookings.cancel(actor=Actor.system(), booking_id=bid, now=self.now)
        except Exception as exc:  # noqa: BLE001
            assert b[2] not in ("pending", "confirmed"), exc
            return
        assert b[2] in ("pending", "confirmed")
        b[2] = "cancelled"

    @precondition(lambda self: self.model)
    @rule(data=st.data(), slot=st.integers(0, len(SLOTS) - 1))
    def reschedule(self, data, slot: int) -> None:
        bid = data.draw(st.sampled_from(sorted(self.model)))
        b = self.model[bid]
        if not self._active(b):
            with pytest.raises(Exception):
                bookings.reschedule(actor=Actor.system(), booking_id=bid, start=SLOTS[slot], now=self.now)
            return
        expect = slot == b[0] or self._used(slot, exclude=bid) + b[1] <= CAPACITY
        try:
            bookings.reschedule(actor=Actor.system(), booking_id=bid, start=SLOTS[slot], now=self.now)
        except NotAvailable:
            assert not expect
            return
        assert expect
        b[0] = slot

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def pay(self, data) -> None:
        bid = data.draw(st.sampled_from(sorted(self.model)))
        b = self.model[bid]
        if b[2] == "confirmed":
            expect = True
        elif b[2] == "pending" and b[3] > self.now:
            expect = True
        elif b[2] == "pending" or (b[2] == "cancelled" and b[3] is not None and b[3] <= self.now
                                   and getattr(self, "_expired", set()) and bid in self._expired):
            expect = self._used(b[0], exclude=bid) + b[1] <= CAPACITY
        else:
            expect = False
        got = bookings.confirm_payment(booking_id=bid, now=self.now)
        assert got is expect
        if got:
            b[2], b[3] = "confirmed", None

    @rule(minutes=st.sampled_from([5, 16]))
    def time_passes(self, minutes: int) -> None:
        self.now += dt.timedelta(minutes=minutes)

    @rule()
    def sweep(self) -> None:
        n = bookings.release_expired_holds(now=self.now)
        expired = [bid for bid, b in self.model.items() if b[2] == "pending" and b[3] <= self.now]
        assert n >= len(expired)  # other examples' rooms may have expired holds too
        for bid in expired:
            self.model[bid][2] = "cancelled"
            self._expired = getattr(self, "_expired", set()) | {bid}

    # --- invariants ------------------------------------------------------------------------
    def _rows(self) -> list[Booking]:
        with db.read_session() as s:
            return list(s.exec(select(Booking).where(Booking.bookable_id == self.room.id)).all())

    @invariant()
    def database_agrees_and_never_exceeds_capacity(self) -> None:
        if not hasattr(self, "room"):
            return
        rows = self._rows()
        active = [r for r in rows if r.status == "confirmed" or (r.status == "pending" and r.hold_expires_at > self.now)]
        assert {r.id for r in active} == {bid for bid, b in self.model.items() if self._active(b)}
        for r in active:
            assert SLOTS[self.model[r.id][0]] == r.start_at and self.model[r.id][1] == r.quantity
        # capacity at every instant where something starts
        for r in active:
            at = r.block_start_at
            assert sum(x.quantity for x in active if x.block_start_at <= at < x.block_end_at) <= CAPACITY


class EventMachine(BookingMachine):
    """The same rules on an event: one session per slot, sessions don't overlap."""

    @initialize()
    def create_room(self) -> None:
        self.room, _sessions = make_event(make_provider(), sessions=SLOTS, capacity=CAPACITY, price_cents=500)

    def _used(self, slot: int, exclude: int | None = None) -> int:
        return sum(b[1] for bid, b in self.model.items() if bid != exclude and self._active(b) and b[0] == slot)

    @invariant()
    def session_counters_are_exact(self) -> None:
        if not hasattr(self, "room"):
            return
        rows = self._rows()
        with db.read_session() as s:
            sessions = s.exec(select(EventSession).where(EventSession.bookable_id == self.room.id)).all()
        for sess in sessions:
            assert sess.seats_taken == sum(r.quantity for r in rows if r.session_id == sess.id
                                           and r.status in ("pending", "confirmed"))


def _run(machine, monkeypatch, examples: int, steps: int) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    reset_settings_cache()
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))


def test_random_event_sequences_match_the_model(sqlite_db, monkeypatch):
    _run(EventMachine, monkeypatch, 20, 25)


@pytest.mark.postgres
def test_random_event_sequences_match_the_model_on_postgres(pg_db, monkeypatch):
    _run(EventMachine, monkeypatch, 10, 20)


@pytest.mark.parametrize("examples", [30])
def test_random_sequences_match_the_model(sqlite_db, monkeypatch, examples):
    _run(BookingMachine, monkeypatch, examples, 25)


@pytest.mark.postgres
def test_random_sequences_match_the_model_on_postgres(pg_db, monkeypatch):
    _run(BookingMachine, monkeypatch, 10, 20)
