"""Payment and refund rows: their statuses, read models and the small row helpers that
payments.py (starting/reading payments), refunds.py (the refund rule and refund execution)
and stripe_webhooks.py share. No business rule lives here."""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.integrations import stripe_gateway
from booking_app.models import Booking, Payment, PaymentStatus, Refund, utcnow
from booking_app.services import notify
from booking_app.services.actors import Actor, is_manager, is_viewer
from booking_app.services.capacity import lock_booking
from booking_app.services.errors import Forbidden, InvalidInput, NotFound

ON_SITE = "on_site"
STRIPE = "stripe"
MANUAL = "manual"

#: Payment statuses in which money was received (fully or partly still kept).
PAID_STATUSES = (PaymentStatus.succeeded.value, PaymentStatus.partially_refunded.value)
#: A payment that may still turn into money.
OPEN_STATUSES = (PaymentStatus.pending.value, PaymentStatus.requires_action.value)
#: Refund rows that count against what is still refundable.
LIVE_REFUND_STATUSES = ("pending", "processing", "succeeded")


@dataclass(frozen=True)
class RefundView:
    id: int
    amount_cents: int
    currency: str
    status: str
    reason: str
    created_at: dt.datetime


@dataclass(frozen=True)
class PaymentView:
    payment_id: int
    booking_id: int
    status: str
    method: str
    provider: str
    amount_cents: int
    refunded_cents: int
    currency: str
    checkout_url: str | None
    expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    refunds: tuple[RefundView, ...] = ()
    purpose: str = "booking"  # booking (the price or its deposit) | balance (issue 26)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def refund_view(r: Refund) -> RefundView:
    return RefundView(id=r.id or 0, amount_cents=r.amount_cents, currency=r.currency, status=r.status,
                      reason=r.reason, created_at=r.created_at)


def payment_view(s: Session, p: Payment) -> PaymentView:
    assert p.id is not None
    refunds = s.exec(select(Refund).where(Refund.payment_id == p.id).order_by(Refund.id)).all()  # type: ignore[arg-type]
    live_checkout = p.provider == STRIPE and p.status in OPEN_STATUSES and bool(p.checkout_url)
    return PaymentView(
        payment_id=p.id, booking_id=p.booking_id, status=p.status, method=p.method, provider=p.provider,
        amount_cents=p.amount_cents, refunded_cents=p.refunded_cents, currency=p.currency,
        checkout_url=p.checkout_url if live_checkout else None, expires_at=p.expires_at,
        created_at=p.created_at, updated_at=p.updated_at, refunds=tuple(refund_view(r) for r in refunds),
        purpose=p.purpose,
    )


def get_payment_by_id(payment_id: int) -> PaymentView:
    with db.read_session() as s:
        p = s.get(Payment, payment_id)
        if p is None:
            raise NotFound(N_("Payment not found."))
        return payment_view(s, p)


def get_gateway() -> stripe_gateway.PaymentGateway | None:
    return stripe_gateway.get_gateway()


def parse_booking_id(value: Any) -> int:
    try:
        booking_id = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(N_("Unknown booking."), field="booking_id") from None
    if booking_id < 1 or booking_id > 2**31 - 1:
        raise InvalidInput(N_("Unknown booking."), field="booking_id")
    return booking_id


def lock_managed_booking(s: Session, actor: Actor, booking_id: int) -> Booking:
    """The booking, locked, for a money change only its provider or an admin may make (mark
    paid, refund): NotFound for a booking the actor may not see, Forbidden when they may see
    but not manage it."""
    booking = lock_booking(s, booking_id)
    if booking is None or not is_viewer(actor, booking):
        raise NotFound(N_("Booking not found."))
    if not is_manager(actor, booking):
        raise Forbidden()
    return booking


def lock_payment(s: Session, payment_id: int) -> Payment | None:
    stmt = select(Payment).where(Payment.id == payment_id)
    if db.is_postgres(s):
        stmt = stmt.with_for_update()
    return s.exec(stmt).first()


def payments_of(s: Session, booking_id: int) -> list[Payment]:
    """The booking's payments, newest first."""
    return list(s.exec(select(Payment).where(Payment.booking_id == booking_id).order_by(Payment.id.desc())).all())  # type: ignore[union-attr]


def current_payment(payments: list[Payment]) -> Payment | None:
    """The payment that tells the booking's story: a paid one, else the latest."""
    for p in payments:
        if p.status in PAID_STATUSES:
            return p
    return payments[0] if payments else None


def stripe_idempotency_key(kind: str, row_id: int | None, created_at: dt.datetime) -> str:
    """Stripe idempotency key of one of our rows: its id plus its creation time in
    microseconds (ids alone repeat across databases sharing a Stripe account, e.g. after
    a restore or in a staging copy)."""
    return f"{kind}-{row_id}-{int(created_at.timestamp() * 1_000_000)}"


def mark_updated(p: Payment, status: str | None = None) -> None:
    """Set the payment's status (if given) and its updated_at."""
    if status is not None:
        p.status = status
    p.updated_at = utcnow()


def notify_customer(s: Session, p: Payment, event: str, amount_cents: int, ref: str) -> None:
    """Queue the customer's payment message (payment_received / payment_refunded)."""
    booking = s.get(Booking, p.booking_id)
    if booking is not None:
        notify.payment_event(s, booking=booking, event=event, amount_cents=amount_cents, currency=p.currency,
                             ref=ref)
