"""Paying a recurring series online (docs/series.md, "Paying online"): one Stripe Checkout
for the whole series, one payment row per occurrence.

- `book_series_and_pay` books the series (services/series.py, `pay_online`: the dates stay
  `pending` with their hold) and starts one Checkout Session whose amount is the sum of the
  occurrences' first charges (the price, or the deposit: services/deposits.py). Every
  occurrence gets its own Payment row (its own amount) sharing the session id and, once
  paid, the PaymentIntent: cancelling one occurrence refunds exactly its share by the
  policy (`payments.cancel_and_refund` → `refunds.refund_due`, a partial refund of the
  shared PaymentIntent).
- The webhooks (services/stripe_webhooks.py hands over events whose metadata names a
  series): paid → every occurrence confirmed in one capacity transaction (an occurrence
  whose hold was lost is refunded its share); expired / failed → every occurrence released.
- Except when a date was cancelled before the payment (`payments.cancel_and_refund` ends the
  shared session, whose amount Stripe can't lower): its expiry then renews the Checkout for
  the dates still held (`start_checkout(booking_ids=…)`, a new session for their sum) and
  the customer is emailed the new link (`series_payment_renewed`); the rest stays payable.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.integrations import stripe_gateway
from booking_app.models import (
    Bookable,
    Booking,
    BookingStatus,
    Payment,
    PaymentStatus,
    ProcessedWebhookEvent,
    User,
    utcnow,
)
from booking_app.services import audit, bookings, capacity, deposits, outbox, payments, refunds, series
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput, PaymentError, ServiceError
from booking_app.services.payment_records import (
    OPEN_STATUSES,
    STRIPE,
    get_gateway,
    mark_updated,
    notify_customer,
    stripe_idempotency_key,
)
from booking_app.services.slots import is_active

log = logging.getLogger(__name__)

#: the Checkout metadata key that marks a series' session
SERIES_KEY = "series_id"
#: the customer's email with the renewed Checkout link (services/messages.py)
RENEWED_TEMPLATE = "series_payment_renewed"


@dataclass
class SeriesCheckout:
    """`book_series_and_pay`'s answer: the series, and the Checkout page to pay it (None:
    nothing to pay online)."""

    booked: series.SeriesBooked
    checkout_url: str | None


def book_series_and_pay(*, actor: Actor, payment_method: str | None, **kwargs: Any) -> SeriesCheckout:
    """Book a series (series.book_series's arguments and errors) and, for an online method
    of a priced bookable, start its one Checkout Session. A payment that cannot start
    releases the series' dates (nothing half-done stays held) and its error is raised."""
    booked = series.book_series(actor=actor, payment_method=payment_method, pay_online=True, **kwargs)
    if not any(v.status == BookingStatus.pending.value for v in booked.bookings):
        return SeriesCheckout(booked, None)
    try:
        url = start_checkout(series_id=booked.series_id, method=str(payment_method))
    except ServiceError:
        log.warning("series %s: its payment did not start; releasing its dates", booked.series_id, exc_info=True)
        for v in booked.bookings:
            bookings.cancel(actor=Actor.system(), booking_id=v.id, reason="payment_failed")
        raise
    return SeriesCheckout(booked, url)


def _session_expiry(holds: list[dt.datetime], now: dt.datetime) -> dt.datetime:
    """max(the earliest hold, now + 30 min + a little), at most 24 h (Stripe's limits)."""
    floor = now + stripe_gateway.CHECKOUT_MIN_LIFETIME + dt.timedelta(minutes=1)
    expires = max([floor, *[h for h in holds[:1] if h > floor]])
    return min(expires, now + stripe_gateway.CHECKOUT_MAX_LIFETIME - dt.timedelta(minutes=1)).replace(microsecond=0)


def start_checkout(*, series_id: int, method: str, booking_ids: list[int] | None = None) -> str:
    """One Checkout Session for the series' pending occurrences (`booking_ids`: only those,
    when renewing after a date was cancelled) whose hold is still valid: a payment row each,
    the holds extended to outlive the session; returns the session's URL."""
    settings = get_settings()
    gateway = get_gateway()
    if method not in settings.online_payment_methods or gateway is None:
        raise InvalidInput(N_("This payment method is not available."), field="payment_method")
    now = utcnow()
    with capacity.transaction() as s:
        rows = [bk for bk in s.exec(select(Booking).where(Booking.series_id == series_id)
                                    .order_by(Booking.start_at, Booking.id)).all()  # type: ignore[arg-type]
                if bk.status == BookingStatus.pending.value and bk.price_cents > 0
                and is_active(bk.status, bk.hold_expires_at, now)
                and (booking_ids is None or bk.id in booking_ids)]
        if not rows:
            raise InvalidInput(N_("This booking can no longer be paid."), field="payment_method")
        capacity.lock_capacity_of(s, rows[0])  # the holds are extended below
        expires_at = _session_expiry(sorted(bk.hold_expires_at for bk in rows if bk.hold_expires_at), now)
        made: list[Payment] = []
        for bk in rows:
            p = Payment(booking_id=bk.id or 0, method=method, provider=STRIPE, currency=bk.currency,
                        amount_cents=deposits.first_charge(bk, online=True), expires_at=expires_at)
            s.add(p)
            made.append(p)
            until = expires_at + payments.WEBHOOK_GRACE
            if bk.hold_expires_at is None or bk.hold_expires_at < until:
                bk.hold_expires_at = until
                bk.updated_at = now
                bk.version += 1
                s.add(bk)
        s.flush()
        first, first_payment = rows[0], made[0]
        bookable = s.get(Bookable, first.bookable_id)
        user = s.get(User, first.user_id) if first.user_id else None
        base = settings.public_url.rstrip("/")
        request = stripe_gateway.CheckoutRequest(
            idempotency_key=stripe_idempotency_key("series-checkout", first_payment.id, first_payment.created_at),
            booking_id=first.id or 0, payment_id=first_payment.id or 0,
            amount_cents=sum(p.amount_cents for p in made), currency=first.currency,
            product_name=f"{bookable.name if bookable else 'Booking'} × {len(rows)}",
            method_types=(method,),
            success_url=f"{base}/bookings/{first.id}/payment?result=success",
            cancel_url=f"{base}/bookings/{first.id}/payment?result=cancel",
            expires_at=expires_at, customer_email=(user.email if user else first.guest_email),
            locale=(user.locale if user else first.locale), extra_metadata={SERIES_KEY: str(series_id)})
        audit.record(s, actor_id=None, action="payment.started", entity="booking_series", entity_id=series_id,
                     data={"payments": [p.id for p in made], "method": method, "amount_cents": request.amount_cents})
        payment_ids = [p.id for p in made]
    try:
        session = gateway.create_checkout_session(request)
    except stripe_gateway.GatewayError as exc:
        with db.unit_of_work() as s:
            for p in s.exec(select(Payment).where(Payment.id.in_(payment_ids))).all():  # type: ignore[union-attr]
                p.last_error = f"{exc.kind}: {exc.message}"[:1000]
                mark_updated(p, PaymentStatus.failed.value)
                s.add(p)
        raise PaymentError() from exc
    with db.unit_of_work() as s:
        for p in s.exec(select(Payment).where(Payment.id.in_(payment_ids))).all():  # type: ignore[union-attr]
            p.provider_ref = session.id
            p.checkout_url = session.url
            if session.expires_at:
                p.expires_at = session.expires_at
            mark_updated(p)
            s.add(p)
    return session.url


# --- webhooks (called by services/stripe_webhooks.py) ----------------------------------------

def is_series_object(obj: dict[str, Any]) -> bool:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return metadata.get(SERIES_KEY) is not None


def _record(s: Session, event: stripe_gateway.WebhookEvent) -> None:
    s.add(ProcessedWebhookEvent(provider=STRIPE, event_id=event.id[:255], event_type=event.type[:100]))
    s.flush()  # the unique event id: a concurrent duplicate fails here


def _rows(s: Session, obj: dict[str, Any], *, by_intent: bool = False) -> list[Payment]:
    """The series' payment rows of a session (or of its PaymentIntent), id order; [] when
    they are not ours (the metadata's series differs)."""
    ref = obj.get("payment_intent") if by_intent else obj.get("id")
    if not ref:
        return []
    col = Payment.payment_intent_ref if by_intent else Payment.provider_ref
    rows = list(s.exec(select(Payment).where(col == str(ref), Payment.provider == STRIPE)
                       .order_by(Payment.id)).all())  # type: ignore[arg-type]
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    first = s.get(Booking, rows[0].booking_id) if rows else None
    if first is None or str(first.series_id) != str(metadata.get(SERIES_KEY)):
        return []
    return rows


def _intent(obj: dict[str, Any]) -> str | None:
    pi = obj.get("payment_intent")
    if isinstance(pi, dict):
        pi = pi.get("id")
    return str(pi) if pi else None


def on_session_paid(event: stripe_gateway.WebhookEvent) -> str:
    """checkout.session.completed / async_payment_succeeded of a series: every occurrence
    confirmed in one capacity transaction; an occurrence whose hold was lost (cancelled,
    swept) is refunded its share; a wrong amount refunds everything."""
    obj, now = event.object, utcnow()
    refund_ids: list[int | None] = []
    with capacity.transaction() as s:
        _record(s, event)
        rows = _rows(s, obj)
        if not rows or all(p.status not in OPEN_STATUSES for p in rows):
            return "ignored"
        for p in rows:
            p.payment_intent_ref = _intent(obj) or p.payment_intent_ref
            p.checkout_url = None
            mark_updated(p)
            s.add(p)
        if obj.get("payment_status") not in ("paid", "no_payment_required"):
            return "processed"  # (bank debits: wait for async_payment_*)
        amount_ok = (int(obj.get("amount_total") or 0) == sum(p.amount_cents for p in rows)
                     and str(obj.get("currency") or "").lower() == rows[0].currency.lower())
        confirmed: list[Booking] = []
        for p in rows:
            bk = capacity.lock_booking(s, p.booking_id, set_lock_timeout=False)
            assert bk is not None
            mark_updated(p, PaymentStatus.succeeded.value)
            held = bk.status == BookingStatus.pending.value and is_active(bk.status, bk.hold_expires_at, now)
            if amount_ok and (held or bk.status == BookingStatus.confirmed.value):
                if held:
                    bk.status = BookingStatus.confirmed.value
                    bk.hold_expires_at = None
                    bk.version += 1
                    bk.sequence += 1  # the calendar entry goes from tentative to confirmed
                    bk.updated_at = now
                deposits.after_first_payment(bk, p)
                s.add(bk)
                confirmed.append(bk)
            elif p.amount_cents > 0:
                refund_ids.append(refunds.add_refund(s, p, p.amount_cents,
                                                     reason="unavailable" if amount_ok else "amount_mismatch").id)
            s.add(p)
        s.flush()
        audit.record(s, actor_id=None, action="payment.succeeded", entity="booking_series",
                     entity_id=confirmed[0].series_id if confirmed else None,
                     data={"event": event.id, "confirmed": [bk.id for bk in confirmed], "refunds": len(refund_ids)})
        if confirmed:
            b = s.get(Bookable, confirmed[0].bookable_id)
            assert b is not None
            user = s.get(User, confirmed[0].user_id) if confirmed[0].user_id else None
            series.notify_booked(s, b, confirmed, [], actor=Actor.system(), user=user)
            paid = [p for p in rows if p.booking_id in {bk.id for bk in confirmed}]
            notify_customer(s, paid[0], "payment_received", sum(p.amount_cents for p in paid),
                            f"series-payment-{paid[0].id}")
    refunds.run_refunds(refund_ids)
    return "processed"


def on_session_ended(event: stripe_gateway.WebhookEvent, *, status: str) -> str:
    """checkout.session.expired / async_payment_failed of a series: its payments end and
    every occurrence still pending is released (the booking service cancels it) — unless
    the session expired because one of its dates was cancelled unpaid (that date's payment
    row was cancelled with it): then the dates still held get a new Checkout
    (`_renew`), and only if that cannot start are they released."""
    release: list[int] = []
    renew: list[int] = []
    now = utcnow()
    with db.unit_of_work() as s:
        _record(s, event)
        every = _rows(s, event.object)
        rows = [p for p in every if p.status in OPEN_STATUSES]
        for p in rows:
            mark_updated(p, status)
            p.checkout_url = None
            s.add(p)
            release.append(p.booking_id)
        if not rows:
            return "ignored"
        if status == PaymentStatus.cancelled.value and any(p.status == PaymentStatus.cancelled.value
                                                           for p in every if p not in rows):
            renew = _still_payable(s, [p.booking_id for p in rows], now)
        audit.record(s, actor_id=None, action=f"payment.{status}", entity="payment", entity_id=rows[0].id,
                     data={"event": event.id, "bookings": release, "renewed": renew})
    if renew and _renew(renew, method=rows[0].method):
        release = [b for b in release if b not in renew]
    reason = "payment_failed" if status == PaymentStatus.failed.value else "payment_expired"
    for booking_id in release:
        with db.read_session() as s:
            bk = s.get(Booking, booking_id)
            if bk is None or bk.status != BookingStatus.pending.value:
                continue
        try:  # if this fails the hold still ends at hold_expires_at (expiry job)
            bookings.cancel(actor=Actor.system(), booking_id=booking_id, reason=reason)
        except ServiceError as exc:
            log.info("hold of booking %s not released: %s", booking_id, exc)
    return "processed"


def _still_payable(s: Session, booking_ids: list[int], now: dt.datetime) -> list[int]:
    """Of these occurrences, those a renewed Checkout may take: still pending, their hold
    valid, and no other payment under way for them (e.g. one date paid on its own)."""
    out = []
    for bk in s.exec(select(Booking).where(Booking.id.in_(booking_ids))  # type: ignore[union-attr]
                     .order_by(Booking.start_at, Booking.id)).all():
        if bk.status != BookingStatus.pending.value or not is_active(bk.status, bk.hold_expires_at, now):
            continue
        others = s.exec(select(Payment.id).where(Payment.booking_id == bk.id,
                                                 Payment.status.in_(OPEN_STATUSES))).first()  # type: ignore[attr-defined]
        if others is None:
            out.append(bk.id)
    return out


def _renew(booking_ids: list[int], *, method: str) -> bool:
    """A new Checkout for the occurrences left after a date was cancelled, and the
    customer's email with its link. False when it could not start (then they are released)."""
    with db.read_session() as s:
        first = s.get(Booking, booking_ids[0])
        series_id = first.series_id if first is not None else None
    if series_id is None:
        return False
    try:
        url = start_checkout(series_id=series_id, method=method, booking_ids=booking_ids)
    except ServiceError:
        log.warning("series %s: the renewed payment did not start; releasing its dates", series_id, exc_info=True)
        return False
    with db.unit_of_work() as s:
        made = list(s.exec(select(Payment).where(Payment.booking_id.in_(booking_ids),  # type: ignore[union-attr]
                                                 Payment.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
                           .order_by(Payment.id)).all())
        first = s.get(Booking, booking_ids[0])
        assert first is not None and made
        bookable = s.get(Bookable, first.bookable_id)
        customer = outbox.customer_of(s, first, bookable)
        if customer.wants_email and customer.email:
            context = outbox.personal(outbox.booking_snapshot(s, first, bookable), customer,
                                      amount_cents=sum(p.amount_cents for p in made), amount_currency=first.currency,
                                      pay_url=url)
            outbox.enqueue(s, channel="email", to=customer.email, template=RENEWED_TEMPLATE, locale=customer.locale,
                           context=context, dedupe_key=f"email:{RENEWED_TEMPLATE}:{series_id}:{made[0].id}",
                           booking_id=first.id, user_id=customer.user_id)
    return True


def on_charge_refunded(event: stripe_gateway.WebhookEvent) -> str:
    """charge.refunded of a series' shared PaymentIntent: Stripe reports the total refunded
    across the occurrences, so each row is synced from its own refunds."""
    with db.unit_of_work() as s:
        _record(s, event)
        rows = _rows(s, event.object, by_intent=True)
        for p in rows:
            refunds.sync_refunded(s, p)
        return "processed" if rows else "ignored"
