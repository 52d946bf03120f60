"""Fee webhooks and "charge again" (issue 26 follow-up; docs/deposits-and-fees.md,
docs/webhooks.md): a fee's outcome fires `fee.charged` / `fee.failed`; the provider (or an
admin) charges a declined fee again; a paid, under-way or waiting-for-the-customer fee is a
Conflict; two retries at once charge the card once. The real `stripe` SDK against the stub."""
from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import AuditEvent, BookingFee, Notification
from booking_app.services import fees, webhooks
from booking_app.services.errors import Conflict, Forbidden, NotFound
from tests.factories import actor_for, make_admin, make_customer, make_provider
from tests.test_fees import FEE, _no_show, _paid_booking
from tests.test_payments import booking_row, deliver, stripe_on, stub  # noqa: F401 (fixtures)

HOOK = "https://93.184.216.34/hook"  # a public address literal: no DNS lookup


def _fee(booking_id: int) -> BookingFee:
    with db.read_session() as s:
        [fee] = s.exec(select(BookingFee).where(BookingFee.booking_id == booking_id)).all()
        return fee


def _fee_events(booking_id: int) -> list[tuple[str, dict]]:
    with db.read_session() as s:
        rows = s.exec(select(Notification).where(Notification.channel == "webhook",
                                                 Notification.booking_id == booking_id,
                                                 Notification.template.like("fee.%"))  # type: ignore[attr-defined]
                      .order_by(Notification.id)).all()
        return [(n.template, n.context["event"]["data"]) for n in rows]


def _charges(stub) -> int:
    return len(stub.calls("POST", "/v1/payment_intents"))


def _declined(stub):
    """A paid booking marked no-show whose fee was declined, the provider's endpoint
    listening to the fee events."""
    provider, customer, bk = _paid_booking(stub)
    webhooks.create_endpoint(actor=actor_for(provider), url=HOOK, events=["fee.charged", "fee.failed"])
    stub.off_session_outcome[booking_row(bk.id).stripe_customer_ref] = "card_declined"
    _no_show(provider, bk)
    assert _fee(bk.id).status == "failed"
    return provider, customer, bk


def test_a_declined_fee_fires_fee_failed_and_charging_it_again_fires_fee_charged(db_url, stripe_on):
    provider, customer, bk = _declined(stripe_on)
    [(kind, data)] = _fee_events(bk.id)
    fee = _fee(bk.id)
    assert kind == "fee.failed" and data["booking"]["id"] == bk.id and data["booking"]["status"] == "no_show"
    assert {k: data["fee"][k] for k in ("id", "kind", "amount_cents", "currency", "status", "attempts")} == {
        "id": fee.id, "kind": "no_show", "amount_cents": FEE, "currency": "EUR", "status": "failed", "attempts": 1}
    assert "card_declined" in data["fee"]["last_error"]

    # the customer updated their card: the provider charges again, once
    stripe_on.off_session_outcome[booking_row(bk.id).stripe_customer_ref] = "succeeded"
    view = fees.charge_again(actor=actor_for(provider), fee_id=fee.id)
    assert (view.status, view.attempts) == ("charged", 2)
    assert _charges(stripe_on) == 2
    assert [(k, d["fee"]["status"], d["fee"]["attempts"]) for k, d in _fee_events(bk.id)] == [
        ("fee.failed", "failed", 1), ("fee.charged", "charged", 2)]
    with db.read_session() as s:
        [audit] = s.exec(select(AuditEvent).where(AuditEvent.action == "fee.charge_again")).all()
        assert audit.actor_id == provider.id
    # paid: nothing more to charge
    with pytest.raises(Conflict):
        fees.charge_again(actor=actor_for(provider), fee_id=fee.id)
    assert _charges(stripe_on) == 2


def test_declined_again_stays_owed_and_each_attempt_is_told(sqlite_db, stripe_on):
    provider, customer, bk = _declined(stripe_on)
    fee = _fee(bk.id)
    view = fees.charge_again(actor=actor_for(make_admin()), fee_id=fee.id)  # an admin may too
    assert (view.status, view.attempts) == ("failed", 2) and fees.offers_retry(view)
    assert [(k, d["fee"]["attempts"]) for k, d in _fee_events(bk.id)] == [("fee.failed", 1), ("fee.failed", 2)]
    assert fees.RETRY_OUTCOMES[view.status] == "The card was declined again: the fee is still due."


def test_who_may_charge_again_and_which_fees(sqlite_db, stripe_on):
    provider, customer, bk = _declined(stripe_on)
    fee = _fee(bk.id)
    with pytest.raises(Forbidden):
        fees.charge_again(actor=actor_for(customer), fee_id=fee.id)
    for stranger in (make_provider(), make_customer()):
        with pytest.raises(NotFound):
            fees.charge_again(actor=actor_for(stranger), fee_id=fee.id)
    for bad in (10**9, "1", None, True, -1):
        with pytest.raises(NotFound):
            fees.charge_again(actor=actor_for(provider), fee_id=bad)
    assert _charges(stripe_on) == 1 and _fee(bk.id).status == "failed"  # nothing was tried

    # the bank wants the customer: they have a link; another off-session try would not help
    stripe_on.off_session_outcome[booking_row(bk.id).stripe_customer_ref] = "authentication_required"
    assert fees.charge_again(actor=actor_for(provider), fee_id=fee.id).status == "requires_action"
    with pytest.raises(Conflict) as err:
        fees.charge_again(actor=actor_for(provider), fee_id=fee.id)
    assert "link" in err.value.message
    # the customer pays the link: fee.charged
    deliver(stripe_on, "checkout.session.completed", stripe_on.complete_session(_fee(bk.id).checkout_ref))
    assert [k for k, _d in _fee_events(bk.id)] == ["fee.failed", "fee.charged"]


def test_a_fee_recorded_without_stripe_offers_no_retry(sqlite_db):
    from tests.test_fees import FEE as amount, PRICE
    from booking_app.services import bookings
    from tests.factories import make_bookable, next_day_at

    provider, customer = make_provider(), make_customer()
    b = make_bookable(provider, price_cents=PRICE, no_show_fee_cents=amount)
    bk = bookings.book(actor=actor_for(customer), service_id=b.id, start=next_day_at(10), payment_method="on_site")
    _no_show(provider, bk)
    [view] = fees.fees_by_booking([bk.id])[bk.id]
    assert view.status == "due" and not fees.offers_retry(view)


@pytest.mark.postgres
def test_two_retries_at_once_charge_once(pg_db, stripe_on):
    """Two providers' clicks (threads) race to charge the same declined fee again: the card is
    charged once; the other is told the charge is under way (Conflict)."""
    provider, customer, bk = _declined(stripe_on)
    fee = _fee(bk.id)
    stripe_on.off_session_outcome[booking_row(bk.id).stripe_customer_ref] = "succeeded"
    stripe_on.delay_next(0.5, path_contains="/v1/payment_intents")  # the winner is still at the bank
    actors = [actor_for(provider), actor_for(make_admin())]
    barrier = threading.Barrier(len(actors))
    results: list[object] = [None] * len(actors)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fees.charge_again(actor=actors[i], fee_id=fee.id)
        except Conflict as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "FeeView"], results
    assert _charges(stripe_on) == 2  # the first declined try and one retry
    assert (_fee(bk.id).status, _fee(bk.id).attempts) == ("charged", 2)
    assert [k for k, _d in _fee_events(bk.id)] == ["fee.failed", "fee.charged"]
