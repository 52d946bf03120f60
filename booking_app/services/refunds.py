"""Refunds: the one home of the refund rule and the code that gives the money back.

- The rule: `refund_due()` — what cancelling a booking gives back: the amount paid minus
  what was refunded already, times the bookable's refund_percent when its customer cancels,
  in full when its provider or an admin does. The booking service stores it on the booking
  when it cancels; `cancellation_quote()` (the preview before a cancel) computes it the same
  way, so the figure shown is the figure refunded.
- Refunds are rows written in the business transaction (`pending`), executed through Stripe
  right after commit with the idempotency key `refund-<refund id>`, and retried by the
  `process_pending_refunds` sweep when Stripe is down. On-site money is refunded at the
  venue: the refund is recorded as succeeded.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_, Np_
from booking_app.integrations import stripe_gateway
from booking_app.models import Bookable, Booking, BookingStatus, Payment, PaymentStatus, Refund, utcnow
from booking_app.services import audit
from booking_app.services.actors import Actor
from booking_app.services.capacity import lock_booking
from booking_app.services.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from booking_app.services.sessions import require_recent_auth
from booking_app.services.payment_records import (
    LIVE_REFUND_STATUSES,
    OPEN_STATUSES,
    PAID_STATUSES,
    STRIPE,
    PaymentView,
    RefundView,
    get_gateway,
    get_payment_by_id,
    lock_managed_booking,
    lock_payment,
    mark_updated,
    notify_customer,
    parse_booking_id,
    payments_of,
    refund_view,
    stripe_idempotency_key,
)

log = logging.getLogger(__name__)

#: A claimed refund not finished within this time (worker died) is retried.
REFUND_CLAIM = dt.timedelta(minutes=2)
#: Backoff of refunds that failed because Stripe was unavailable.
REFUND_RETRY = dt.timedelta(minutes=1)
#: The sweep looks this far back for cancellations whose refund was never started.
MISSED_CANCELLATION_WINDOW = dt.timedelta(days=7)

#: Why a refund was made: cancellation (policy), unavailable (paid after the place was
#: resold or the booking cancelled), duplicate (second payment of a paid booking),
#: amount_mismatch (Stripe reported another amount than ours), manual (provider/admin),
#: provider (done outside the app, e.g. in the Stripe dashboard).
REFUND_REASONS = ("cancellation", "unavailable", "duplicate", "amount_mismatch", "manual", "provider")


# ----------------------------------------------------------------------------------------
# The rule
# ----------------------------------------------------------------------------------------

def paid_cents(s: Session, booking_id: int) -> int:
    """What the customer paid for the booking and still has not got back."""
    rows = s.exec(select(Payment.amount_cents, Payment.refunded_cents, Payment.status).where(  # type: ignore[call-overload]
        Payment.booking_id == booking_id)).all()
    return sum(max(a - (r or 0), 0) for a, r, st in rows if st in PAID_STATUSES)


def refund_due(s: Session, booking: Booking, bookable: Bookable, *, by_manager: bool) -> int:
    """THE refund for cancelling `booking` now: what was paid (minus refunds), in full when
    its provider or an admin cancels, else × the bookable's refund_percent (rounded down)."""
    assert booking.id is not None
    paid = paid_cents(s, booking.id)
    return paid if by_manager else paid * bookable.refund_percent // 100


def free_cancellation_until(booking: Booking, bookable: Bookable) -> dt.datetime:
    """Until when the customer may cancel (the start minus the bookable's cut-off)."""
    return booking.start_at - dt.timedelta(hours=bookable.cancel_cutoff_hours or 0)


def customer_cutoff_passed(booking: Booking, bookable: Bookable, now: dt.datetime) -> bool:
    """The customer may no longer cancel (or change) the booking themselves: it started, or
    the bookable's cut-off before the start has passed."""
    return now >= booking.start_at or now > free_cancellation_until(booking, bookable)


def check_customer_cutoff(booking: Booking, bookable: Bookable, now: dt.datetime, *, what: str) -> None:
    """Forbidden when the customer may no longer `what` ("cancel" or "change") the booking
    themselves (`customer_cutoff_passed`); the booking service calls it for a cancel and a
    reschedule by its customer (its provider and admins are not bound by it)."""
    if not customer_cutoff_passed(booking, bookable, now):
        return
    if now >= booking.start_at:
        raise Forbidden(N_("This booking has already started."))
    if what == "cancel" and late_cancel_allowed(booking, bookable, now):
        return  # a late cancellation: it costs the late-cancel fee (services/fees.py)
    if what == "cancel":
        raise Forbidden(Np_("Bookings can no longer be cancelled less than {hours} hour before the start.",
                            "Bookings can no longer be cancelled less than {hours} hours before the start.", "hours"),
                        hours=bookable.cancel_cutoff_hours)
    raise Forbidden(Np_("Bookings can no longer be changed less than {hours} hour before the start.",
                        "Bookings can no longer be changed less than {hours} hours before the start.", "hours"),
                    hours=bookable.cancel_cutoff_hours)


def late_cancel_allowed(booking: Booking, bookable: Bookable, now: dt.datetime) -> bool:
    """A customer may still cancel after the cut-off (until the start) when the bookable
    charges a late-cancel fee for it (issue 26)."""
    return (bookable.late_cancel_fee_cents or 0) > 0 and now < booking.start_at


@dataclass(frozen=True)
class CancellationQuote:
    """What cancelling the booking would do now, for the actor asking."""

    booking_id: int
    amount_cents: int  # the refund (refund_due)
    currency: str
    paid_cents: int  # paid and not refunded yet
    by_manager: bool  # provider/admin: may cancel any time, refund in full
    may_cancel: bool  # False: not active any more, or a customer past the cut-off
    cutoff_passed: bool  # a customer's free cancellation has ended
    cutoff_at: dt.datetime  # when it ends (ended)
    cutoff_hours: int
    refund_percent: int
    late_fee_cents: int = 0  # the late-cancel fee cancelling now costs (issue 26)


def quote_for(s: Session, booking: Booking, *, by_manager: bool, now: dt.datetime | None = None) -> CancellationQuote:
    """The quote for a booking the caller may already cancel or see (see
    payments.cancellation_quote for the access-checked entry point)."""
    now = now or utcnow()
    bookable = s.get(Bookable, booking.bookable_id)
    assert bookable is not None and booking.id is not None
    until = free_cancellation_until(booking, bookable)
    cutoff_passed = not by_manager and customer_cutoff_passed(booking, bookable, now)
    active = booking.status in (BookingStatus.pending.value, BookingStatus.confirmed.value,
                                BookingStatus.awaiting_approval.value)
    late = cutoff_passed and late_cancel_allowed(booking, bookable, now)
    may_cancel = active and (not cutoff_passed or late)
    return CancellationQuote(
        booking_id=booking.id,
        amount_cents=refund_due(s, booking, bookable, by_manager=by_manager) if may_cancel else 0,
        currency=booking.currency, paid_cents=paid_cents(s, booking.id), by_manager=by_manager,
        may_cancel=may_cancel, cutoff_passed=cutoff_passed, cutoff_at=until,
        cutoff_hours=bookable.cancel_cutoff_hours or 0, refund_percent=bookable.refund_percent,
        late_fee_cents=(bookable.late_cancel_fee_cents or 0) if late and active else 0)


# ----------------------------------------------------------------------------------------
# Refund rows
# ----------------------------------------------------------------------------------------

def refundable(s: Session, p: Payment) -> int:
    """What is left to refund on `p` (received, minus refunds done or under way)."""
    if p.status not in PAID_STATUSES:
        return 0
    taken = sum(r.amount_cents for r in s.exec(select(Refund).where(Refund.payment_id == p.id)).all()
                if r.status in LIVE_REFUND_STATUSES)
    return max(0, p.amount_cents - taken)


def add_refund(s: Session, p: Payment, amount: int, *, reason: str, actor_id: int | None = None) -> Refund:
    """Queue (Stripe) or record (on site) a refund of `amount` on `p`."""
    row = Refund(payment_id=p.id or 0, amount_cents=amount, currency=p.currency, reason=reason, created_by=actor_id)
    if p.provider != STRIPE:
        row.status = "succeeded"  # handed back at the venue
    s.add(row)
    s.flush()
    if row.status == "succeeded":
        sync_refunded(s, p)
    return row


def sync_refunded(s: Session, p: Payment, *, reported: int = 0) -> None:
    """refunded_cents = the larger of our succeeded refunds and what Stripe reports
    (charge.refunded may arrive before or after our own refund call is recorded)."""
    s.flush()
    ours = sum(r.amount_cents for r in s.exec(select(Refund).where(Refund.payment_id == p.id)).all()
               if r.status == "succeeded")
    total = min(p.amount_cents, max(p.refunded_cents, ours, reported))
    if total <= 0 or total == p.refunded_cents and p.status not in PAID_STATUSES:
        return
    p.refunded_cents = total
    mark_updated(p, PaymentStatus.refunded.value if total >= p.amount_cents else PaymentStatus.partially_refunded.value)
    s.add(p)


def refund(*, actor: Actor, booking_id: Any, amount_cents: Any = None, note: str | None = None) -> PaymentView:
    """A manual refund by the booking's provider or an admin (default: all that is left)."""
    booking_id = parse_booking_id(booking_id)
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise InvalidInput(N_("The note may have at most 500 characters."), field="note")
    with db.unit_of_work() as s:
        booking = lock_managed_booking(s, actor, booking_id)
        paid = next((p for p in payments_of(s, booking_id) if p.status in PAID_STATUSES), None)
        if paid is None:
            raise Conflict(N_("Nothing was paid for this booking."))
        left = refundable(s, paid)
        if left <= 0:
            raise Conflict(N_("This payment is already refunded."))
        if amount_cents is None:
            amount = left
        else:
            if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
                raise InvalidInput(N_("The amount must be a whole number of cents."), field="amount_cents")
            if amount_cents < 1 or amount_cents > left:
                raise InvalidInput(N_("The amount must be between 1 and {max} cents."), field="amount_cents", max=left)
            amount = amount_cents
        if amount > get_settings().reauth_refund_above_cents:  # a large refund: a recent sign-in (issue 23)
            require_recent_auth(actor)
        row = add_refund(s, paid, amount, reason="manual", actor_id=actor.id)
        if row.status == "succeeded":  # on site: handed back at once
            notify_customer(s, paid, "payment_refunded", amount, f"refund-{row.id}")
        audit.record(s, actor_id=actor.id, action="payment.refund", entity="payment", entity_id=paid.id,
                     data={"booking_id": booking_id, "amount_cents": amount, "note": note or "", "refund_id": row.id})
        payment_id = paid.id
        refund_ids = [row.id] if row.status == "pending" else []
    run_refunds(refund_ids)
    return get_payment_by_id(payment_id or 0)


def refund_for_cancellation(*, booking_id: int) -> list[RefundView]:
    """Give back a cancelled booking's `refund_due_cents` (stored by the booking service from
    `refund_due()` when it cancelled). Safe to call more than once: only the part of the
    due amount not yet refunded is refunded. Also ends open payments of the booking."""
    sessions_to_expire: list[str] = []
    with db.unit_of_work() as s:
        booking = lock_booking(s, booking_id)
        if booking is None:
            raise NotFound(N_("Booking not found."))
        if booking.status != BookingStatus.cancelled.value:
            raise Conflict(N_("Only a cancelled booking is refunded."))
        payments = payments_of(s, booking_id)
        for p in payments:
            if p.status in OPEN_STATUSES:  # nothing was paid: stop it
                if p.provider == STRIPE and p.provider_ref:
                    sessions_to_expire.append(p.provider_ref)
                mark_updated(p, PaymentStatus.cancelled.value)
                s.add(p)
        ids = [p.id for p in payments]
        done = sum(r.amount_cents for r in s.exec(select(Refund).where(
            Refund.payment_id.in_(ids), Refund.reason == "cancellation")).all()  # type: ignore[union-attr]
            if r.status in LIVE_REFUND_STATUSES) if ids else 0
        due = max(0, (booking.refund_due_cents or 0) - done)
        created: list[Refund] = []
        for p in payments:
            if due <= 0:
                break
            amount = min(due, refundable(s, p))
            if amount > 0:
                created.append(add_refund(s, p, amount, reason="cancellation"))
                due -= amount
        if created:
            audit.record(s, actor_id=None, action="payment.cancellation_refund", entity="booking",
                         entity_id=booking_id, data={"refund_ids": [r.id for r in created],
                                                     "amount_cents": sum(r.amount_cents for r in created)})
        views = [refund_view(r) for r in created]
        pending = [r.id for r in created if r.status == "pending"]
    expire_sessions(sessions_to_expire)
    run_refunds(pending)
    return views


def expire_sessions(session_ids: list[str]) -> None:
    """End open Checkout Sessions (best effort: a payment that still lands is refunded)."""
    gateway = get_gateway()
    if gateway is None:
        return
    for sid in session_ids:
        try:
            gateway.expire_checkout_session(sid)
        except stripe_gateway.GatewayError as exc:  # a payment that still lands is refunded by the webhook
            log.info("could not expire checkout session %s: %s", sid, exc.message)


# ----------------------------------------------------------------------------------------
# Executing refunds (after commit; retried by the sweep)
# ----------------------------------------------------------------------------------------

def _claim_refund(refund_id: int) -> tuple[Refund, Payment] | None:
    now = utcnow()
    with db.unit_of_work() as s:
        stmt = select(Refund).where(Refund.id == refund_id)
        if db.is_postgres(s):
            stmt = stmt.with_for_update(skip_locked=True)
        row = s.exec(stmt).first()
        if row is None:
            return None
        claimable = row.status == "pending" and (row.claimed_until is None or row.claimed_until <= now)
        stale = row.status == "processing" and row.claimed_until is not None and row.claimed_until <= now
        if not (claimable or stale):
            return None
        payment = s.get(Payment, row.payment_id)
        if payment is None:
            return None
        row.status = "processing"
        row.claimed_until = now + REFUND_CLAIM
        row.attempts += 1
        row.updated_at = now
        s.add(row)
        return row, payment


def _send_refund(gateway: stripe_gateway.PaymentGateway, row: Refund, payment: Payment) -> stripe_gateway.RefundResult:
    """One attempt. A retry first asks Stripe whether an earlier attempt went through
    (our refund id is in the refund's metadata), then uses a key of its own: Stripe stores
    a 5xx answer under the key, so the first key could never succeed again."""
    assert payment.payment_intent_ref and row.id is not None
    if row.attempts > 1:
        found = gateway.find_refund(payment_intent=payment.payment_intent_ref, refund_ref=str(row.id))
        if found is not None:
            return found
    key = stripe_idempotency_key("refund", row.id, row.created_at) + ("" if row.attempts <= 1 else f"-{row.attempts}")
    return gateway.refund(payment_intent=payment.payment_intent_ref, amount_cents=row.amount_cents,
                          idempotency_key=key,
                          metadata={"booking_id": str(payment.booking_id), "payment_id": str(payment.id),
                                    "refund_id": str(row.id)})


def execute_refund(refund_id: int) -> bool:
    """Send one queued refund to Stripe. True when it is done (succeeded or failed for good)."""
    claimed = _claim_refund(refund_id)
    if claimed is None:
        return False
    row, payment = claimed
    gateway = get_gateway()
    error: stripe_gateway.GatewayError | None = None
    result: stripe_gateway.RefundResult | None = None
    if gateway is None:
        error = stripe_gateway.GatewayError("Stripe is not configured", kind="unavailable")
    elif not payment.payment_intent_ref:
        error = stripe_gateway.GatewayError("payment has no PaymentIntent", kind="invalid")
    else:
        try:
            result = _send_refund(gateway, row, payment)
        except stripe_gateway.GatewayError as exc:
            error = exc
    now = utcnow()
    with db.unit_of_work() as s:
        r = s.get(Refund, refund_id)
        p = lock_payment(s, row.payment_id)
        assert r is not None and p is not None
        r.updated_at = now
        if result is not None and result.status in ("succeeded", "pending", "requires_action"):
            r.status = "succeeded"
            r.provider_ref = result.id
            r.last_error = None
            r.claimed_until = None
            s.add(r)
            sync_refunded(s, p)
            if r.reason == "manual":
                notify_customer(s, p, "payment_refunded", r.amount_cents, f"refund-{r.id}")
            audit.record(s, actor_id=None, action="payment.refunded", entity="payment", entity_id=p.id,
                         data={"refund_id": r.id, "amount_cents": r.amount_cents, "provider_ref": result.id})
        elif error is not None and error.retryable:
            r.status = "pending"
            r.last_error = error.message[:1000]
            r.claimed_until = now + REFUND_RETRY * min(r.attempts, 30)
        else:
            r.status = "failed"
            r.last_error = (error.message if error else f"refund {result.status if result else '?'}")[:1000]
            r.claimed_until = None
            log.error("refund %s of payment %s failed: %s", r.id, p.id, r.last_error)
            audit.record(s, actor_id=None, action="payment.refund_failed", entity="payment", entity_id=p.id,
                         data={"refund_id": r.id, "amount_cents": r.amount_cents, "error": r.last_error})
        s.add(r)
        return r.status != "pending"


def run_refunds(refund_ids: list[int | None]) -> None:
    """Execute these queued refunds now (after their transaction committed)."""
    for rid in refund_ids:
        if rid is None:
            continue
        try:
            execute_refund(rid)
        except Exception:  # the sweep retries it
            log.exception("refund %s not executed now; the sweep will retry", rid)


def process_pending_refunds(limit: int = 100) -> int:
    """Sweep: refunds for cancelled bookings not yet refunded, then queued refunds whose
    retry time has come. Returns how many refunds were finished."""
    now = utcnow()
    with db.read_session() as s:
        refunded_for_cancellation = (select(Payment.booking_id).join(Refund, Refund.payment_id == Payment.id)
                                     .where(Refund.reason == "cancellation"))
        missed = s.exec(
            select(Booking.id).where(
                Booking.status == BookingStatus.cancelled.value, Booking.refund_due_cents > 0,
                Booking.cancelled_at >= now - MISSED_CANCELLATION_WINDOW,  # type: ignore[operator]
                Booking.id.in_(select(Payment.booking_id).where(Payment.status.in_(PAID_STATUSES))),  # type: ignore[union-attr,attr-defined]
                Booking.id.not_in(refunded_for_cancellation),  # type: ignore[union-attr]
            ).order_by(Booking.id).limit(limit)).all()
    for booking_id in missed:
        try:
            refund_for_cancellation(booking_id=booking_id)
        except ServiceError:
            pass
    with db.read_session() as s:
        due = s.exec(select(Refund.id).where(
            ((Refund.status == "pending") & ((Refund.claimed_until == None) | (Refund.claimed_until <= now)))  # noqa: E711
            | ((Refund.status == "processing") & (Refund.claimed_until <= now))
        ).order_by(Refund.id).limit(limit)).all()  # type: ignore[arg-type]
    finished = 0
    for rid in due:
        try:
            finished += int(execute_refund(rid))
        except Exception:
            log.exception("refund %s failed in the sweep", rid)
    return finished
