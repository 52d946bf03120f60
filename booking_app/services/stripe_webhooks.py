"""Stripe webhooks: verify an event, record its id once, apply its payment effect.

Each event id is recorded (`ProcessedWebhookEvent`, unique) in the transaction that applies
its effect, so a replay is a no-op. Payment state only moves forward (pending → succeeded →
refunded …), so out-of-order events are harmless. A payment that succeeds for a booking that
can no longer be confirmed (seat resold, cancelled) is refunded in full and the customer is
told; a second payment of a paid booking is refunded too. `payment_intent.payment_failed`
only records the error (the customer may retry on the hosted page); the hold is released
when the session expires or an asynchronous payment fails.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.integrations import stripe_gateway
from booking_app.models import Bookable, Booking, BookingStatus, Payment, PaymentStatus, ProcessedWebhookEvent, Refund
from booking_app.services import audit, bookings, deposits, fees, outbox, refunds, series_payments
from booking_app.services.actors import Actor
from booking_app.services.errors import ServiceError
from booking_app.services.payment_records import (
    LIVE_REFUND_STATUSES,
    OPEN_STATUSES,
    PAID_STATUSES,
    STRIPE,
    get_gateway,
    lock_payment,
    mark_updated,
    notify_customer,
    payments_of,
)

log = logging.getLogger(__name__)

#: The message to a customer whose payment came too late (the place was resold).
UNAVAILABLE_TEMPLATE = "payment_refunded_unavailable"


class WebhookRejected(ServiceError):
    code = "bad_signature"
    status = 400
    default_message = N_("The webhook signature is not valid.")


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    event_type: str
    outcome: str  # processed | replayed | ignored


def handle_stripe_webhook(*, payload: bytes, signature: str | None) -> WebhookResult:
    """Verify and apply one Stripe event. Replays and unknown types are acknowledged."""
    gateway = get_gateway()
    if gateway is None:
        raise WebhookRejected(N_("Stripe payments are not configured."))
    try:
        event = gateway.parse_webhook(payload, signature)
    except stripe_gateway.WebhookSignatureError as exc:
        log.warning("rejected Stripe webhook: %s", exc)
        raise WebhookRejected() from exc
    if _already_processed(event.id):
        return WebhookResult(event.id, event.type, "replayed")
    handler = _HANDLERS.get(event.type)
    try:
        if handler is None:
            outcome = _record_event(event, lambda s: "ignored")
        else:
            outcome = handler(event)
    except IntegrityError:  # a concurrent delivery of the same event recorded it first
        if _already_processed(event.id):
            return WebhookResult(event.id, event.type, "replayed")
        raise
    return WebhookResult(event.id, event.type, outcome)


def _already_processed(event_id: str) -> bool:
    with db.read_session() as s:
        return s.exec(select(ProcessedWebhookEvent.id).where(ProcessedWebhookEvent.event_id == event_id)).first() is not None


def _record_event(event: stripe_gateway.WebhookEvent, effect: Callable[[Session], str]) -> str:
    """Run `effect(session)` and record the event id in one transaction."""
    with db.unit_of_work() as s:
        s.add(ProcessedWebhookEvent(provider=STRIPE, event_id=event.id[:255], event_type=event.type[:100]))
        s.flush()  # the unique event id: a concurrent duplicate fails here
        return effect(s)


def _find_payment(s: Session, obj: dict[str, Any], *, by: str = "session", lock: bool = True) -> Payment | None:
    """Our payment for a webhook object: by metadata.payment_id, else by Stripe id."""
    load = lock_payment if lock else (lambda s_, pid_: s_.get(Payment, pid_))
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    pid = metadata.get("payment_id")
    p = None
    if pid is not None and str(pid).isdigit() and len(str(pid)) < 11 and 0 < int(pid) < 2**31:
        p = load(s, int(pid))
    if p is None and obj.get("id") and by != "charge":
        ref_col = Payment.provider_ref if by == "session" else Payment.payment_intent_ref
        row = s.exec(select(Payment.id).where(ref_col == str(obj["id"]))).first()
        p = load(s, row) if row is not None else None
    if p is None and by == "charge" and obj.get("payment_intent"):
        row = s.exec(select(Payment.id).where(Payment.payment_intent_ref == str(obj["payment_intent"]))).first()
        p = load(s, row) if row is not None else None
    if p is not None and p.provider != STRIPE:
        return None
    booking_ref = metadata.get("booking_id")
    if p is not None and booking_ref is not None and str(booking_ref) != str(p.booking_id):
        return None  # not ours (another installation sharing the Stripe account)
    if p is not None and by == "session" and p.provider_ref and obj.get("id") and p.provider_ref != obj["id"]:
        # an older session of ours for this payment id cannot exist (one session per
        # payment row); an event for a foreign session is ignored
        return None
    return p


def _payment_intent_id(obj: dict[str, Any]) -> str | None:
    pi = obj.get("payment_intent")
    if isinstance(pi, dict):
        pi = pi.get("id")
    return str(pi) if pi else None


def _on_session_paid(event: stripe_gateway.WebhookEvent) -> str:
    obj = event.object
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    if metadata.get("fee_id") is not None:  # a fee's link, paid after the bank asked for authentication
        return _record_event(event, lambda s: fees.apply_checkout_paid(s, obj))
    if obj.get("mode") == "setup":  # a card saved for a later fee (free / on-site bookings)
        return _record_event(event, lambda s: _card_saved(s, obj))
    if series_payments.is_series_object(obj):  # one Checkout for a whole series
        return series_payments.on_session_paid(event)
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        # completed but not yet paid (bank debits, vouchers): wait for async_payment_*
        def record_pending(s: Session) -> str:
            p = _find_payment(s, obj)
            if p is not None and p.status in OPEN_STATUSES:
                p.payment_intent_ref = _payment_intent_id(obj) or p.payment_intent_ref
                p.checkout_url = None
                mark_updated(p)
                s.add(p)
                return "processed"
            return "ignored"
        return _record_event(event, record_pending)

    with db.read_session() as s:
        p0 = _find_payment(s, obj, lock=False)
        booking_id = p0.booking_id if p0 is not None else None
        amount_ok = (p0 is not None and int(obj.get("amount_total") or 0) == p0.amount_cents
                     and str(obj.get("currency") or "").lower() == p0.currency.lower())
        already_final = p0 is not None and p0.status not in (*OPEN_STATUSES, PaymentStatus.cancelled.value,
                                                               PaymentStatus.failed.value)
    if p0 is None or already_final:
        return _record_event(event, lambda s: "ignored")

    confirmed = False
    if amount_ok:
        # the booking service confirms (or finds the seat gone) in its own transaction;
        # confirming is idempotent, so a crash before the event is recorded is harmless:
        # Stripe redelivers and the same answer comes back
        assert booking_id is not None
        confirmed = bool(bookings.confirm_payment(booking_id=booking_id))

    refund_ids: list[int | None] = []

    def apply(s: Session) -> str:
        p = _find_payment(s, obj)
        if p is None or p.status in PAID_STATUSES or p.status == PaymentStatus.refunded.value:
            return "ignored"
        p.payment_intent_ref = _payment_intent_id(obj) or p.payment_intent_ref
        p.checkout_url = None
        mark_updated(p, PaymentStatus.succeeded.value)
        s.add(p)
        booking = s.get(Booking, p.booking_id)
        assert booking is not None
        others_paid = [o for o in payments_of(s, p.booking_id)
                       if o.id != p.id and o.status in PAID_STATUSES and o.purpose == p.purpose]
        reason = None
        if not amount_ok:
            reason = "amount_mismatch"
            log.error("payment %s: paid amount %s %s differs from %s %s; refunding", p.id, obj.get("amount_total"),
                      obj.get("currency"), p.amount_cents, p.currency)
            # record what was really received, so that exactly that is refunded
            p.amount_cents = max(0, int(obj.get("amount_total") or 0))
        elif others_paid:
            reason = "duplicate"
        elif not confirmed:
            reason = "unavailable"
        audit.record(s, actor_id=None, action="payment.succeeded", entity="payment", entity_id=p.id,
                     data={"booking_id": p.booking_id, "amount_cents": p.amount_cents, "event": event.id,
                           "refund": reason})
        if reason is None:
            for o in payments_of(s, p.booking_id):
                if o.id != p.id and o.status in OPEN_STATUSES:  # e.g. a pending on-site payment
                    mark_updated(o, PaymentStatus.cancelled.value)
                    s.add(o)
            if p.purpose == deposits.BALANCE:  # deposits (issue 26): the balance is paid
                deposits.after_balance_paid(booking, p)
            else:
                deposits.after_first_payment(booking, p)
            if obj.get("customer") and not booking.stripe_customer_ref:  # the card saved for a fee
                booking.stripe_customer_ref = str(obj["customer"])[:255]
            s.add(booking)
            notify_customer(s, p, "payment_received", p.amount_cents, f"payment-{p.id}")
            return "processed"
        if p.amount_cents - p.refunded_cents > 0:
            row = refunds.add_refund(s, p, p.amount_cents - p.refunded_cents, reason=reason)
            refund_ids.append(row.id)
        if reason == "unavailable":
            _notify_refunded_unavailable(s, booking, p)
        else:
            notify_customer(s, p, "payment_refunded", p.amount_cents, f"payment-{p.id}")
        return "processed"

    outcome = _record_event(event, apply)
    refunds.run_refunds(refund_ids)
    return outcome


def _card_saved(s: Session, obj: dict[str, Any]) -> str:
    """A setup-mode session completed: the booking's card is saved on its Stripe customer."""
    ref = str((obj.get("metadata") or {}).get("booking_id") or "")
    booking = s.get(Booking, int(ref)) if ref.isdigit() and len(ref) < 11 else None
    if booking is None or not obj.get("customer"):
        return "ignored"
    if booking.stripe_customer_ref and booking.stripe_customer_ref != obj["customer"]:
        return "ignored"
    booking.stripe_customer_ref = str(obj["customer"])[:255]
    s.add(booking)
    audit.record(s, actor_id=None, action="payment.card_saved", entity="booking", entity_id=booking.id)
    return "processed"


def _notify_refunded_unavailable(s: Session, booking: Booking, p: Payment) -> None:
    """Tell the customer their late payment was refunded because the place is gone."""
    bookable = s.get(Bookable, booking.bookable_id)
    customer = outbox.customer_of(s, booking, bookable)
    if not customer.wants_email or not customer.email:
        return
    context = {**outbox.booking_snapshot(s, booking, bookable), "payment_id": p.id,
               "amount_cents": p.amount_cents, "amount_currency": p.currency,
               "name": customer.name}
    outbox.enqueue(s, channel="email", to=customer.email, template=UNAVAILABLE_TEMPLATE, locale=customer.locale,
                   context=context, dedupe_key=f"email:{UNAVAILABLE_TEMPLATE}:{p.id}", booking_id=booking.id,
                   user_id=booking.user_id)


def _release_booking(booking_id: int, reason: str) -> None:
    """Give a pending booking's capacity back (its payment failed or its session expired):
    the booking service cancels it (and tells the customer)."""
    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        if booking is None or booking.status != BookingStatus.pending.value:
            return
    bookings.cancel(actor=Actor.system(), booking_id=booking_id, reason=reason)


def _on_session_ended(event: stripe_gateway.WebhookEvent, *, status: str) -> str:
    """The session expired (status cancelled) or its async payment failed (failed)."""
    obj = event.object
    if series_payments.is_series_object(obj):  # one Checkout for a whole series
        return series_payments.on_session_ended(event, status=status)
    release: list[int] = []

    def apply(s: Session) -> str:
        p = _find_payment(s, obj)
        if p is None or p.status not in OPEN_STATUSES:
            return "ignored"  # out of order (already paid) or already ended
        mark_updated(p, status)
        p.checkout_url = None
        if status == PaymentStatus.failed.value:
            p.last_error = "async payment failed"
        s.add(p)
        booking = s.get(Booking, p.booking_id)
        others = [o for o in payments_of(s, p.booking_id)
                  if o.id != p.id and o.status in (*OPEN_STATUSES, *PAID_STATUSES)]
        if booking is not None and booking.status == BookingStatus.pending.value and not others:
            release.append(p.booking_id)
        audit.record(s, actor_id=None, action=f"payment.{status}", entity="payment", entity_id=p.id,
                     data={"booking_id": p.booking_id, "event": event.id})
        return "processed"

    outcome = _record_event(event, apply)
    for booking_id in release:
        # after commit; if this fails the hold still ends at hold_expires_at (expiry job)
        try:
            _release_booking(booking_id, "payment_failed" if status == PaymentStatus.failed.value else "payment_expired")
        except ServiceError as exc:
            log.info("hold of booking %s not released: %s", booking_id, exc)
    return outcome


def _on_payment_intent_failed(event: stripe_gateway.WebhookEvent) -> str:
    obj = event.object

    def apply(s: Session) -> str:
        p = _find_payment(s, obj, by="payment_intent")
        if p is None or p.status not in OPEN_STATUSES:
            return "ignored"
        err = obj.get("last_payment_error") or {}
        p.payment_intent_ref = p.payment_intent_ref or str(obj.get("id") or "") or None
        p.last_error = str(err.get("message") or err.get("code") or "payment failed")[:1000]
        mark_updated(p, PaymentStatus.requires_action.value)  # the customer may try again on the page
        s.add(p)
        return "processed"

    return _record_event(event, apply)


def _on_charge_refunded(event: stripe_gateway.WebhookEvent) -> str:
    obj = event.object
    if series_payments.is_series_object(obj):  # a series' shared PaymentIntent
        return series_payments.on_charge_refunded(event)

    def apply(s: Session) -> str:
        p = _find_payment(s, obj, by="charge")
        if p is None or p.status not in (*PAID_STATUSES, PaymentStatus.refunded.value):
            return "ignored"
        refunded = int(obj.get("amount_refunded") or 0)
        ours = sum(r.amount_cents for r in s.exec(select(Refund).where(Refund.payment_id == p.id)).all()
                   if r.status in LIVE_REFUND_STATUSES)
        if refunded > ours:  # refunded outside the app (Stripe dashboard): record it
            s.add(Refund(payment_id=p.id or 0, amount_cents=refunded - ours, currency=p.currency,
                         reason="provider", status="succeeded", provider_ref=str(obj.get("id") or "")[:255]))
        refunds.sync_refunded(s, p, reported=refunded)
        return "processed"

    return _record_event(event, apply)


_HANDLERS: dict[str, Callable[[stripe_gateway.WebhookEvent], str]] = {
    "checkout.session.completed": _on_session_paid,
    "checkout.session.async_payment_succeeded": _on_session_paid,
    "checkout.session.async_payment_failed": lambda e: _on_session_ended(e, status=PaymentStatus.failed.value),
    "checkout.session.expired": lambda e: _on_session_ended(e, status=PaymentStatus.cancelled.value),
    "payment_intent.payment_failed": _on_payment_intent_failed,
    "charge.refunded": _on_charge_refunded,
}
