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
from booking_app.models import ACTIVE_STATUSES, Booking, EventSession
from booking_app.models.booking import HELD_STATUSES
from booking_app.services import bookings
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, NotAvailable
from tests.factories import make_bookable, make_event, make_provider

UTC = dt.timezone.utc
NOW0 = dt.datetime(2027, 1, 10, 8, 0, tzinfo=UTC)
DAY = dt.datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
SLOTS = [DAY + dt.timedelta(hours=h) for h in range(5)]  # 09:00 … 13:00 (hours 09-14 open)
CAPACITY = 2
HOLD = dt.timedelta(minutes=15)
_emails = itertools.count()


class BookingMachine(RuleBasedStateMachine):
    """The base every stateful model here extends: its helpers (`_start`, `_used`,
    `_try_book`, `_try_reschedule`, `_after_cancel`, `_after_payment`, `_row_agrees`) are the
    places a subclass with other slots or more rules changes."""

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
    def _start(self, slot) -> dt.datetime:
        return SLOTS[slot]

    def _active(self, b: list) -> bool:
        return b[2] == "confirmed" or (b[2] in HELD_STATUSES and b[3] > self.now)

    def _used(self, slot, exclude: int | None = None) -> int:
        # blocks are [start, start + 90 min): slots i and j overlap when |i - j| <= 1
        return sum(b[1] for bid, b in self.model.items()
                   if bid != exclude and self._active(b) and abs(b[0] - slot) <= 1)

    def _pick(self, data) -> int:
        return data.draw(st.sampled_from(sorted(self.model)))

    def _try_book(self, slot, qty: int, pay_online: bool, actor: Actor | None = None):
        """`bookings.book` at `slot` (a guest's unless `actor`), which must succeed exactly
        when the model has room. → the booking, or None when refused."""
        expect = self._used(slot) + qty <= CAPACITY
        try:
            bk = bookings.book(actor=actor or Actor.guest(), service_id=self.room.id, start=self._start(slot),
                               quantity=qty, payment_method="card" if pay_online else "on_site", now=self.now,
                               guest={"name": "G", "email": f"s{next(_emails)}@example.com"})
        except NotAvailable:
            assert not expect, "refused although the model has room"
            return None
        assert expect, "accepted although the model is full"
        return bk

    def _book(self, slot, qty: int, pay_online: bool):
        """A guest books: paying online leaves a hold (pending), on site confirms.
        → the booking (now in the model), or None when refused."""
        bk = self._try_book(slot, qty, pay_online)
        if bk is not None:
            assert bk.status == ("pending" if pay_online else "confirmed")
            self.model[bk.id] = [slot, qty, bk.status, bk.hold_expires_at]
        return bk

    def _try_reschedule(self, bid: int, slot) -> bool:
        """`bookings.reschedule` of `bid` to `slot`: refused for an ended booking, else
        done exactly when the model has room there. → whether it moved (model updated)."""
        b = self.model[bid]
        if not self._active(b):
            with pytest.raises(Exception):
                bookings.reschedule(actor=Actor.system(), booking_id=bid, start=self._start(slot), now=self.now)
            return False
        expect = slot == b[0] or self._used(slot, exclude=bid) + b[1] <= CAPACITY
        try:
            bookings.reschedule(actor=Actor.system(), booking_id=bid, start=self._start(slot), now=self.now)
        except NotAvailable:
            assert not expect
            return False
        assert expect
        b[0] = slot
        return True

    def _after_cancel(self, bid: int) -> None:
        """What else a cancellation of `bid` changes in the model (here: nothing)."""

    def _after_payment(self, bid: int) -> None:
        """What else a payment that confirmed `bid` changes in the model (here: nothing)."""

    # --- rules -----------------------------------------------------------------------------
    @rule(slot=st.integers(0, len(SLOTS) - 1), qty=st.integers(1, CAPACITY), pay_online=st.booleans())
    def book(self, slot: int, qty: int, pay_online: bool) -> None:
        self._book(slot, qty, pay_online)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data) -> None:
        bid = self._pick(data)
        b = self.model[bid]
        try:
            bookings.cancel(actor=Actor.system(), booking_id=bid, now=self.now)
        except Conflict:
            assert b[2] not in ACTIVE_STATUSES
            return
        assert b[2] in ACTIVE_STATUSES
        b[2] = "cancelled"
        self._after_cancel(bid)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), slot=st.integers(0, len(SLOTS) - 1))
    def reschedule(self, data, slot: int) -> None:
        self._try_reschedule(self._pick(data), slot)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def pay(self, data) -> None:
        bid = self._pick(data)
        b = self.model[bid]
        if b[2] == "confirmed" or (b[2] == "pending" and b[3] > self.now):
            expect = True
        elif b[2] == "pending" or (b[2] == "cancelled" and b[3] is not None and b[3] <= self.now
                                   and bid in getattr(self, "_expired", set())):
            expect = self._used(b[0], exclude=bid) + b[1] <= CAPACITY
        else:
            expect = False
        got = bookings.confirm_payment(booking_id=bid, now=self.now)
        assert got is expect
        if got:
            b[2], b[3] = "confirmed", None
            self._after_payment(bid)

    @rule(minutes=st.sampled_from([5, 16]))
    def time_passes(self, minutes: int) -> None:
        self.now += dt.timedelta(minutes=minutes)

    def _holds_lapse(self) -> int:
        """The model of `bookings.release_expired_holds`: the pending holds past their expiry
        are cancelled (a late payment may still revive them). → how many."""
        expired = [bid for bid, b in self.model.items() if b[2] == "pending" and b[3] <= self.now]
        for bid in expired:
            self.model[bid][2] = "cancelled"
            self._expired = getattr(self, "_expired", set()) | {bid}
        return len(expired)

    @rule()
    def sweep(self) -> None:
        n = bookings.release_expired_holds(now=self.now)
        assert n >= self._holds_lapse()  # other examples' rooms may have expired holds too

    # --- invariants ------------------------------------------------------------------------
    def _rows(self) -> list[Booking]:
        with db.read_session() as s:
            return list(s.exec(select(Booking).where(Booking.bookable_id == self.room.id)).all())

    def _row_agrees(self, row: Booking, b: list) -> None:
        """More checks of an active row against its model entry (here: none)."""

    @invariant()
    def database_agrees_and_never_exceeds_capacity(self) -> None:
        if not hasattr(self, "room"):
            return
        rows = self._rows()
        active = [r for r in rows if r.status == "confirmed"
                  or (r.status in HELD_STATUSES and r.hold_expires_at > self.now)]
        assert {r.id for r in active} == {bid for bid, b in self.model.items() if self._active(b)}
        for r in active:
            assert self._start(self.model[r.id][0]) == r.start_at and self.model[r.id][1] == r.quantity
            self._row_agrees(r, self.model[r.id])
            # capacity at every instant where something starts
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
                                           and r.status in ACTIVE_STATUSES)


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
