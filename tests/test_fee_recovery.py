"""A fee charge interrupted by a dead process (crash, OOM, a deploy's SIGKILL between
`fees._claim` and the outcome) is finished by the `fee_recovery` sweep (docs/deposits-and-fees.md):
re-run with the interrupted attempt's idempotency key, so a call that reached Stripe is not
charged twice and one that did not is charged now; a charge under way is left alone; two
sweeps at once take it once. The real `stripe` SDK against the stub (which honours
idempotency keys like Stripe)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from sqlmodel import select

from booking_app import db
from booking_app.jobs import scheduler, sweeps
from booking_app.models import AuditEvent, Booking, BookingFee, utcnow
from booking_app.services import bookings, fees
from booking_app.services.errors import Conflict
from tests.factories import actor_for, make_bookable, make_customer, make_provider, next_day_at
from tests.test_fee_retry import _charges, _fee
from tests.test_fees import FEE, PRICE, _no_show, _paid_booking
from tests.test_payments import stripe_on, stub  # noqa: F401 (fixtures)
from tests.threads import run_together


class Crash(Exception):
    """The process dying at that point (charge_owed logs it; the fee stays `charging`)."""


def _crash(*_args, **_kwargs):
    raise Crash


def _interrupted(stub, monkeypatch, *, reached_stripe: bool):
    """A no-show whose fee charge died after its claim: before calling Stripe, or after
    Stripe charged the card but before the outcome was recorded."""
    provider, _customer, bk = _paid_booking(stub)
    with monkeypatch.context() as m:
        m.setattr(fees, "_finish" if reached_stripe else "_collect", _crash)
        _no_show(provider, bk)
    fee = _fee(bk.id)
    assert (fee.status, fee.attempts) == ("charging", 1)
    assert _charges(stub) == int(reached_stripe)
    return provider, bk, fee


def _fee_intents(stub) -> list[str]:
    """The PaymentIntents Stripe holds for fees (the booking's own payment has one too)."""
    return [pi_id for pi_id, pi in stub.payment_intents.items() if pi["metadata"].get("fee_id")]


def _age(fee_id: int, by: dt.timedelta) -> None:
    with db.unit_of_work() as s:
        s.exec(update(BookingFee).where(BookingFee.id == fee_id)  # type: ignore[call-overload]
               .values(updated_at=utcnow() - by))


def _sweep() -> int:
    [spec] = [j for j in scheduler.JOBS if j.name == "fee_recovery"]
    return scheduler.run_job_once(spec)


def _outcomes() -> list[str]:
    """The fee outcomes recorded (audited with the customer's email and the webhook event)."""
    with db.read_session() as s:
        return [a.action for a in s.exec(select(AuditEvent).where(
            AuditEvent.action.in_(["fee.charged", "fee.failed", "fee.due"])))]  # type: ignore[attr-defined]


def _recoveries() -> list[AuditEvent]:
    with db.read_session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == "fee.charge_recovered")).all())


def test_a_charge_that_reached_stripe_is_recorded_not_charged_twice(db_url, stripe_on, monkeypatch):
    provider, bk, fee = _interrupted(stripe_on, monkeypatch, reached_stripe=True)
    [intent] = _fee_intents(stripe_on)  # the card was charged; the process died before recording it
    # "Charge again" refuses it: it is being charged
    with pytest.raises(Conflict):
        fees.charge_again(actor=actor_for(provider), fee_id=fee.id)

    _age(fee.id, fees.STALE_CHARGING + dt.timedelta(seconds=30))
    assert _sweep() == 1
    after = _fee(bk.id)
    assert (after.status, after.attempts, after.payment_intent_ref) == ("charged", 1, intent)
    first, again = stripe_on.calls("POST", "/v1/payment_intents")
    assert again.headers["idempotency-key"] == first.headers["idempotency-key"]
    assert _fee_intents(stripe_on) == [intent]  # Stripe answered with the first PaymentIntent
    assert _outcomes() == ["fee.charged"]
    [audit] = _recoveries()
    assert audit.actor_id is None and (audit.data["fee_id"], audit.data["attempt"]) == (fee.id, 1)
    assert _sweep() == 0  # done: nothing left to recover


def test_a_charge_that_never_reached_stripe_is_made_once(sqlite_db, stripe_on, monkeypatch):
    _provider, bk, fee = _interrupted(stripe_on, monkeypatch, reached_stripe=False)
    _age(fee.id, fees.STALE_CHARGING + dt.timedelta(seconds=30))
    assert sweeps.recover_fee_charges() == 1
    after = _fee(bk.id)
    assert (after.status, after.attempts) == ("charged", 1)
    [charge] = stripe_on.calls("POST", "/v1/payment_intents")
    assert charge.headers["idempotency-key"].endswith("-1")
    assert [after.payment_intent_ref] == _fee_intents(stripe_on)


def test_a_charge_under_way_is_left_alone(sqlite_db, stripe_on, monkeypatch):
    _provider, bk, fee = _interrupted(stripe_on, monkeypatch, reached_stripe=False)
    _age(fee.id, fees.STALE_CHARGING - dt.timedelta(seconds=30))
    assert _sweep() == 0
    assert fees.recover_charge(fee.id) is None
    assert _fee(bk.id).status == "charging" and _charges(stripe_on) == 0 and not _recoveries()


def test_the_slow_process_finishing_after_the_recovery_records_nothing_twice(sqlite_db, stripe_on, monkeypatch):
    """Not dead, only stalled past STALE_CHARGING: its late outcome (the same PaymentIntent,
    same key) finds the fee recorded by the sweep and changes nothing."""
    _provider, bk, fee = _interrupted(stripe_on, monkeypatch, reached_stripe=False)
    with db.read_session() as s:
        claimed = s.get(BookingFee, fee.id), s.get(Booking, bk.id)
    _age(fee.id, fees.STALE_CHARGING + dt.timedelta(seconds=30))
    assert _sweep() == 1
    late = fees._collect(*claimed)  # the stalled process carries on
    assert late.status == "charged" and len(_fee_intents(stripe_on)) == 1
    assert _outcomes() == ["fee.charged"]


def test_past_stripes_idempotency_window_it_goes_back_to_due_uncharged(sqlite_db, stripe_on, monkeypatch):
    _provider, bk, fee = _interrupted(stripe_on, monkeypatch, reached_stripe=True)
    _age(fee.id, dt.timedelta(days=2))
    assert _sweep() == 1
    after = _fee(bk.id)
    assert (after.status, after.attempts, after.last_error) == ("due", 1, fees.INTERRUPTED_TOO_LONG)
    assert _charges(stripe_on) == 1  # not re-run: the provider checks Stripe first
    assert fees.offers_retry(fees.fee_view(after))


def test_without_stripe_the_fee_goes_back_to_due(sqlite_db):
    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, no_show_fee_cents=FEE)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="on_site")
    _no_show(provider, bk)
    assert fees._claim(_fee(bk.id).id) is not None  # ... and the process died
    fee = _fee(bk.id)
    assert (fee.status, fee.attempts) == ("charging", 2)
    _age(fee.id, fees.STALE_CHARGING + dt.timedelta(minutes=1))
    assert _sweep() == 1
    assert (_fee(bk.id).status, _fee(bk.id).attempts) == ("due", 2)


def test_two_recoveries_at_once_charge_once(db_url, stripe_on, monkeypatch):
    """Two processes' sweeps race for the same interrupted charge: one takes it (the row's
    lock and its `updated_at` condition), the card is charged once."""
    _provider, bk, fee = _interrupted(stripe_on, monkeypatch, reached_stripe=False)
    _age(fee.id, fees.STALE_CHARGING + dt.timedelta(seconds=30))
    stripe_on.delay_next(0.5, path_contains="/v1/payment_intents")  # the winner is still at the bank
    results, errors = run_together(2, lambda _i: fees.recover_stale_charges())
    assert not errors and sorted(results) == [0, 1]
    assert _charges(stripe_on) == 1 and len(_fee_intents(stripe_on)) == 1
    assert (_fee(bk.id).status, _fee(bk.id).attempts) == ("charged", 1)
    assert len(_recoveries()) == 1
