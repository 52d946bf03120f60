"""Property-based (Hypothesis stateful) test of the waitlist (issue 24 acceptance): the event
machine of tests/test_booking_stateful.py extended with join / accept / decline, and its
cancel / reschedule / sweep rules extended with the offers they make.

The model predicts every offer: when seats free up at a session (a cancellation, a move
away, a lapsed or declined offer, an expired hold), the waiting entries there get offers in
order (one wanting more seats than are left is passed over), never more seats than were freed
nor than are free; an offer holds its seats as a pending booking until it lapses. After every
step the database's entries must agree with the model, and the inherited invariants hold
(never over capacity, session counters exact)."""
from __future__ import annotations

import collections
import datetime as dt
import itertools
from types import SimpleNamespace

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from sqlmodel import select

from booking_app import db
from booking_app.models import WaitlistEntry
from booking_app.services import bookings, payments, waitlist, waitlist_accept
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict
from tests.test_booking_stateful import CAPACITY, HOLD, SLOTS, EventMachine, _run

OFFER = dt.timedelta(minutes=30)
HOT = 2  # sessions booked and waited for (the others only receive moves)
_guests = itertools.count()
#: what the runs did (a run that never made an offer would prove nothing)
STATS: collections.Counter = collections.Counter()


class WaitlistMachine(EventMachine):
    def __init__(self) -> None:
        super().__init__()
        # model: entry id → [slot, quantity, status, offer booking id | None]
        self.entries: dict[int, list] = {}

    @initialize()
    def create_room(self) -> None:
        """The event, with session 0 full (two bookings) and two people waiting there."""
        EventMachine.create_room(self)
        for _ in range(CAPACITY):
            self.book(0, 1, False)
        for qty in (1, 1):
            self.join(0, qty)

    # --- the model of offers -----------------------------------------------------------------
    def _freed(self, slot: int, seats: int) -> None:
        """Seats freed at `slot`: predict the offers, then learn their booking ids from the
        database (which must have made exactly these)."""
        free = min(CAPACITY - self._used(slot), seats)
        offered = []
        for eid in sorted(self.entries):
            e = self.entries[eid]
            if e[0] != slot or e[2] != "waiting" or e[1] > free:
                continue
            free -= e[1]
            offered.append(eid)
            if free <= 0:
                break
        if not offered:
            return
        with db.read_session() as s:
            rows = {r.id: r for r in s.exec(select(WaitlistEntry).where(WaitlistEntry.id.in_(offered))).all()}
        STATS["offers"] += len(offered)
        for eid in offered:
            row = rows[eid]
            assert row.status == "offered", (eid, row.status)
            self.entries[eid][2:] = ["offered", row.booking_id]
            # the hold outlasts the offer (waitlist.OFFER_GRACE); the sweep lapses it at the offer's end
            self.model[row.booking_id] = [slot, row.quantity, "pending", self.now + OFFER + waitlist.OFFER_GRACE]
            self._offer_until()[row.booking_id] = self.now + OFFER

    def _offer_until(self) -> dict[int, dt.datetime]:
        if not hasattr(self, "_until"):
            self._until: dict[int, dt.datetime] = {}
        return self._until

    def _offer_of(self, bid: int) -> int | None:
        return next((eid for eid, e in self.entries.items() if e[3] == bid and e[2] == "offered"), None)

    def _ended(self, bid: int, status: str) -> None:
        eid = self._offer_of(bid)
        if eid is not None:
            self.entries[eid][2] = status

    def _after_cancel(self, bid: int) -> None:
        b = self.model[bid]
        self._ended(bid, "declined")
        self._freed(b[0], b[1])  # (an expired, unswept hold too: its seats are offered on)

    def _after_payment(self, bid: int) -> None:
        """Paying for an open offer's hold accepts the offer."""
        self._ended(bid, "accepted")

    # --- rules: the base ones, with what they free ---------------------------------------------
    @precondition(lambda self: self.model)
    @rule(data=st.data(), slot=st.integers(0, len(SLOTS) - 1))
    def reschedule(self, data, slot: int) -> None:
        bid = self._pick(data)
        old = self.model[bid][0]
        if self._try_reschedule(bid, slot) and old != slot:
            self._freed(old, self.model[bid][1])

    @rule()
    def sweep(self) -> None:
        bookings.release_expired_holds(now=self.now)
        until = self._offer_until()
        expired = sorted(bid for bid, b in self.model.items() if b[2] == "pending" and (
            b[3] <= self.now or (self._offer_of(bid) is not None and until[bid] <= self.now)))
        for bid in expired:
            self.model[bid][2] = "cancelled"
            self.model[bid][3] = min(self.model[bid][3], self.now)  # (a late payment may revive it)
            self._expired = getattr(self, "_expired", set()) | {bid}
        for bid in expired:  # the sweep hands each one's seats on, in booking order
            self._ended(bid, "lapsed")
            self._freed(self.model[bid][0], self.model[bid][1])

    @rule(slot=st.integers(0, HOT - 1), qty=st.integers(1, CAPACITY), pay_online=st.booleans())
    def book(self, slot: int, qty: int, pay_online: bool) -> None:
        """The base rule on the first HOT sessions only: they fill up, so queues form."""
        self._book(slot, qty, pay_online)

    @precondition(lambda self: any(self._active(b) for b in self.model.values()))
    @rule(data=st.data())
    def cancel_active(self, data) -> None:
        """`cancel` of an active booking (the base rule mostly draws ended ones): seats free up."""
        bid = data.draw(st.sampled_from(sorted(bid for bid, b in self.model.items() if self._active(b))))
        bookings.cancel(actor=Actor.system(), booking_id=bid, now=self.now)
        self.model[bid][2] = "cancelled"
        self._after_cancel(bid)

    # --- rules: the waitlist ----------------------------------------------------------------
    @rule(slot=st.integers(0, HOT - 1), qty=st.integers(1, CAPACITY))
    def join(self, slot: int, qty: int) -> None:
        expect = self._used(slot) + qty > CAPACITY
        try:
            entry = waitlist.join(actor=Actor.guest(), service_id=self.room.id, start=SLOTS[slot], quantity=qty,
                                  guest={"name": "W", "email": f"w{next(_guests)}@example.com"}, now=self.now)
        except Conflict:
            assert not expect, "refused although the slot is full"
            return
        assert expect, "joined although the slot has room"
        STATS["joined"] += 1
        self.entries[entry.id] = [slot, qty, "waiting", None]

    def _pick_entry(self, data) -> tuple[int, list, list | None]:
        """A waitlist entry: → (its id, its model entry, the model entry of its offer's hold or None)."""
        eid = data.draw(st.sampled_from(sorted(self.entries)))
        e = self.entries[eid]
        return eid, e, self.model.get(e[3]) if e[3] is not None else None

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def accept(self, data) -> None:
        eid, e, b = self._pick_entry(data)
        expect = (e[2] == "offered" and b is not None and b[2] == "pending" and b[3] > self.now
                  and self._offer_until()[e[3]] > self.now)  # (accept: until the offer's end, not the hold's)
        try:
            waitlist_accept.accept(actor=Actor.guest(), entry_id=eid, token=waitlist.entry_token(eid), now=self.now)
        except Conflict:
            assert not expect
            return
        assert expect
        STATS["accepted"] += 1
        e[2] = "accepted"
        b[3] = max(b[3], self.now + HOLD)  # priced: still held while the customer pays

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def decline(self, data) -> None:
        eid, e, b = self._pick_entry(data)
        expect = e[2] == "offered" and b is not None and b[2] == "pending"
        try:
            waitlist.decline(actor=Actor.guest(), entry_id=eid, token=waitlist.entry_token(eid), now=self.now)
        except Conflict:
            assert not expect
            return
        assert expect and b is not None
        STATS["declined"] += 1
        e[2], b[2] = "declined", "cancelled"
        self._freed(b[0], b[1])

    # --- invariants ---------------------------------------------------------------------------
    @invariant()
    def entries_agree_with_the_model(self) -> None:
        if not hasattr(self, "room"):
            return
        with db.read_session() as s:
            rows = s.exec(select(WaitlistEntry).where(WaitlistEntry.bookable_id == self.room.id)).all()
        assert {r.id: (r.status, r.booking_id) for r in rows} == {eid: (e[2], e[3]) for eid, e in self.entries.items()}


def _run_waitlist(monkeypatch, examples: int, steps: int) -> None:
    # accepting a priced offer starts Stripe Checkout (tested with the Stripe stub elsewhere)
    monkeypatch.setattr(payments, "process", lambda **kw: SimpleNamespace(checkout_url="https://checkout.test/x"))
    _run(WaitlistMachine, monkeypatch, examples, steps)


def test_random_waitlist_sequences_match_the_model(sqlite_db, monkeypatch):
    STATS.clear()
    _run_waitlist(monkeypatch, 25, 40)
    print(dict(STATS))


@pytest.mark.postgres
def test_random_waitlist_sequences_match_the_model_on_postgres(pg_db, monkeypatch):
    _run_waitlist(monkeypatch, 10, 25)
