"""Property-based (Hypothesis stateful) test with recurring series: the booking machine of
tests/test_booking_stateful.py (book / cancel / reschedule / pay / expire on a 2-seat room
with a 30-minute buffer) over four days, plus "book a daily series" (all-or-nothing or
skip-taken) and "cancel a series from one of its bookings" / "cancel all of it".

The model predicts every outcome — which dates a series gets, or NotAvailable — and after
every step the database must agree with it and no instant may hold more than the capacity."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from booking_app.services import series
from booking_app.services.actors import Actor
from booking_app.services.errors import NotAvailable
from tests.test_booking_stateful import CAPACITY, DAY, BookingMachine, _run

DAYS, HOURS = 4, 5
_emails = itertools.count()


def at(slot: tuple[int, int]) -> dt.datetime:
    return DAY + dt.timedelta(days=slot[0], hours=slot[1])


class SeriesMachine(BookingMachine):
    """Slots are (day, hour); a booking's model entry is [slot, quantity, status, hold, series]."""

    def __init__(self) -> None:
        super().__init__()
        self.series_of: dict[int, list[int]] = {}  # series id → its booking ids

    def _used(self, slot, exclude: int | None = None) -> int:
        return sum(b[1] for bid, b in self.model.items()
                   if bid != exclude and self._active(b) and b[0][0] == slot[0] and abs(b[0][1] - slot[1]) <= 1)

    def _start(self, slot) -> dt.datetime:
        return at(slot)

    @rule(day=st.integers(0, DAYS - 1), hour=st.integers(0, HOURS - 1), qty=st.integers(1, CAPACITY),
          pay_online=st.booleans())
    def book(self, day: int, hour: int, qty: int, pay_online: bool) -> None:
        bk = self._book((day, hour), qty, pay_online)
        if bk is not None:
            self.model[bk.id].append(None)  # (not of a series)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), hour=st.integers(0, HOURS - 1))
    def reschedule(self, data, hour: int) -> None:  # (to another hour of the same day)
        bid = self._pick(data)
        self._try_reschedule(bid, (self.model[bid][0][0], hour))

    @rule(day=st.integers(0, DAYS - 1), hour=st.integers(0, HOURS - 1), count=st.integers(1, DAYS),
          qty=st.integers(1, CAPACITY), skip=st.booleans())
    def book_series(self, day: int, hour: int, count: int, qty: int, skip: bool) -> None:
        self._holds_lapse()  # (book_series sweeps the expired holds first, whatever its outcome)
        count = min(count, DAYS - day)
        slots = [(day + k, hour) for k in range(count)]
        free = [s for s in slots if self._used(s) + qty <= CAPACITY]
        expect_ok = bool(free) if skip else len(free) == count
        try:
            done = series.book_series(actor=Actor.guest(), service_id=self.room.id, start=at(slots[0]),
                                      recurrence_rule={"frequency": "daily", "count": count,
                                                       "mode": "skip_taken" if skip else "all_or_nothing"},
                                      quantity=qty, payment_method="on_site", now=self.now,
                                      guest={"name": "S", "email": f"series{next(_emails)}@example.com"})
        except NotAvailable:
            assert not expect_ok, "series refused although the model has room"
            return
        assert expect_ok, "series accepted although the model is full"
        assert [b.start for b in done.bookings] == [at(s) for s in free]
        assert sorted(x.start for x in done.skipped) == [at(s) for s in slots if s not in free]
        self.series_of[done.series_id] = [b.id for b in done.bookings]
        for b, s in zip(done.bookings, free):
            assert b.status == "confirmed"
            self.model[b.id] = [s, qty, "confirmed", None, done.series_id]

    @precondition(lambda self: self.series_of)
    @rule(data=st.data(), everything=st.booleans())
    def cancel_series(self, data, everything: bool) -> None:
        sid = data.draw(st.sampled_from(sorted(self.series_of)))
        ids = self.series_of[sid]
        anchor = None if everything else data.draw(st.sampled_from(ids))
        key = lambda bid: (at(self.model[bid][0]), bid)  # noqa: E731
        targets = [bid for bid in ids if self.model[bid][2] in ("pending", "confirmed")
                   and (anchor is None or key(bid) >= key(anchor))]
        out = series.cancel_series(actor=Actor.system(), series_id=sid, from_booking_id=anchor)
        assert sorted(out.cancelled) == sorted(targets) and out.kept == []
        for bid in targets:
            self.model[bid][2] = "cancelled"

    def _row_agrees(self, row, b: list) -> None:
        assert row.series_id == b[4]


def test_random_sequences_with_series_match_the_model(sqlite_db, monkeypatch):
    _run(SeriesMachine, monkeypatch, 25, 25)


@pytest.mark.postgres
def test_random_sequences_with_series_match_the_model_on_postgres(pg_db, monkeypatch):
    _run(SeriesMachine, monkeypatch, 10, 20)
