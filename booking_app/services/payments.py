"""Payment Service: Stripe Checkout (card, PayPal, … from settings), pay on site, webhooks,
refunds.

Money flows
- `process()` starts a payment for a booking. The amount always comes from the booking.
  `on_site`: a manual payment `pending` until the provider marks it paid; the booking is
  confirmed at once. Online methods: a Stripe Checkout Session (hosted page, so no card
  data reaches us) is created *after* our payment row commits, with the Stripe
  idempotency key `checkout-<payment id>`; a retry after a timeout or 5xx reuses the same
  row, so the same key and parameters, and Stripe never creates a second session. An open
  session is reused; switching method expires the old session first, so a booking never
  has two live sessions.
- Session expiry and the hold: Stripe requires a session to live 30 min to 24 h. The
  session expires at max(hold, now + 30 min) and the booking's hold is extended to that
  time plus a grace period for the webhook to arrive, so a customer who pays at the last
  second of the session still finds the seat held.
- Webhooks: verified, then each event id is recorded once (`ProcessedWebhookEvent`,
  unique) in the transaction that applies its payment effect; a replay is a no-op. Payment
  state only moves forward (pending → succeeded → refunded …), so out-of-order events are
  harmless (an `expired` after `completed` changes nothing). A payment that succeeds for a
  booking that can no longer be confirmed (hold expired and seat resold, or cancelled) is
  refunded in full automatically and the customer is told; a second payment for an
  already-paid booking is refunded too.
- Refunds are rows written in the business transaction (`pending`), executed through
  Stripe right after commit with the idempotency key `refund-<refund id>`, and retried by
  the `process_pending_refunds` sweep when Stripe is down. On-site money is refunded at the
  venue: the refund is recorded as succeeded.
- `payment_intent.payment_failed` inside Checkout does not end the session (the customer
  may retry with another card on the hosted page), so it only records the error; the hold is
  released when the session expires or an asynchronous payment fails.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.integrations import stripe_gateway as gw
from booking_app.models import (
    Bookable,
    Booking,
    BookingStatus,
    Payment,
    PaymentStatus,
    ProcessedWebhookEvent,
    Refund,
    User,
    utcnow,
)
from booking_app.services import audit, outbox
from booking_app.services.actors import Actor
from booking_app.services.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    NotAvailable,
    NotFound,
    PaymentError,
    ServiceError,
)

log = logging.getLogger(__name__)

ON_SITE = "on_site"
STRIPE = "stripe"
MANUAL = "manual"

#: Payment statuses in which money was received (fully or partly still kept).
PAID_STATUSES = (PaymentStatus.succeeded.value, PaymentStatus.partially_refunded.value)
#: A payment that may still turn into money.
OPEN_STATUSES = (PaymentStatus.pending.value, PaymentStatus.requires_action.value)
#: Refund rows that count against what is still refundable.
LIVE_REFUND_STATUSES = ("pending", "processing", "succeeded")

#: The webhook of a payment made at the last second may arrive a little later.
WEBHOOK_GRACE = dt.timedelta(minutes=5)
#: A session this close to its end is not handed out again; a fresh one is made.
REUSE_MARGIN = dt.timedelta(minutes=2)
#: A claimed refund not finished within this time (worker died) is retried.
REFUND_CLAIM = dt.timedelta(minutes=2)
#: Backoff of refunds that failed because Stripe was unavailable.
REFUND_RETRY = dt.timedelta(minutes=1)

#: The sweep looks this far back for cancellations whose refund was never started.
MISSED_CANCELLATION_WINDOW = dt.timedelta(days=7)

#: The message to a customer whose payment came too late (the place was resold).
UNAVAILABLE_TEMPLATE = "payment_refunded_unavailable"

#: Why a refund was made: cancellation (policy), unavailable (paid after the place was
#: resold or the booking cancelled), duplicate (second payment of a paid booking),
#: amount_mismatch (Stripe reported another amount than ours), manual (provider/admin),
#: provider (done outside the app, e.g. in the Stripe dashboard).
REFUND_REASONS = ("cancellation", "unavailable", "duplicate", "amount_mismatch", "manual", "provider")


class WebhookRejected(ServiceError):
    code = "bad_signature"
    status = 400
    default_message = N_("The webhook signature is not valid.")


# ----------------------------------------------------------------------------------------
# Read models
# ----------------------------------------------------------------------------------------

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

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    event_type: str
    outcome: str  # processed | replayed | ignored


@dataclass(frozen=True)
class PaymentMethodOption:
    method: str
    online: bool


def _view(s: Session, p: Payment) -> PaymentView:
    assert p.id is not None
    refunds = s.exec(select(Refund).where(Refund.payment_id == p.id).order_by(Refund.id)).all()  # type: ignore[arg-type]
    live_checkout = p.provider == STRIPE and p.status in OPEN_STATUSES and bool(p.checkout_url)
    return PaymentView(
        payment_id=p.id, booking_id=p.booking_id, status=p.status, method=p.method, provider=p.provider,
        amount_cents=p.amount_cents, refunded_cents=p.refunded_cents, currency=p.currency,
        checkout_url=p.checkout_url if live_checkout else None, expires_at=p.expires_at,
        created_at=p.created_at, updated_at=p.updated_at,
        refunds=tuple(RefundView(id=r.id or 0, amount_cents=r.amount_cents, currency=r.currency, status=r.status,
                                 reason=r.reason, created_at=r.created_at) for r in refunds),
    )


# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------

def available_methods() -> list[PaymentMethodOption]:
    """What a customer may choose now: the configured online methods, then on site."""
    online = [PaymentMethodOption(m, True) for m in get_settings().online_payment_methods if m != ON_SITE]
    return [*online, PaymentMethodOption(ON_SITE, False)]


def _validate_method(method: Any) -> str:
    if not isinstance(method, str) or not method.strip():
        raise InvalidInput(N_("Choose a payment method."), field="method")
    method = method.strip().lower()
    if method == ON_SITE:
        return method
    if method not in get_settings().online_payment_methods or get_gateway() is None:
        raise InvalidInput(N_("This payment method is not available."), field="method")
    return method


def get_gateway() -> gw.PaymentGateway | None:
    return gw.get_gateway()


def _lock_booking(s: Session, booking_id: int) -> Booking | None:
    """The booking row, locked for this transaction (SQLite: the unit of work holds the
    database write lock already)."""
    db.set_local_lock_timeout(s)
    stmt = select(Booking).where(Booking.id == booking_id)
    if db.is_postgres(s):
        stmt = stmt.with_for_update()
    try:
        return s.exec(stmt).first()
    except OperationalError as exc:
        if "lock" in str(exc).lower():
            raise Busy() from exc
        raise


def _lock_payment(s: Session, payment_id: int) -> Payment | None:
    stmt = select(Payment).where(Payment.id == payment_id)
    if db.is_postgres(s):
        stmt = stmt.with_for_update()
    return s.exec(stmt).first()


def _payments_of(s: Session, booking_id: int) -> list[Payment]:
    return list(s.exec(select(Payment).where(Payment.booking_id == booking_id).order_by(Payment.id.desc())).all())  # type: ignore[union-attr]


def _booking_id(value: Any) -> int:
    try:
        booking_id = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(N_("Unknown booking."), field="booking_id") from None
    if booking_id < 1 or booking_id > 2**31 - 1:
        raise InvalidInput(N_("Unknown booking."), field="booking_id")
    return booking_id


def _key(kind: str, row_id: int | None, created_at: dt.datetime) -> str:
    """Stripe idempotency key of one of our rows: its id plus its creation time in
    microseconds (ids alone repeat across databases sharing a Stripe account, e.g. after
    a restore or in a staging copy)."""
    return f"{kind}-{row_id}-{int(created_at.timestamp() * 1_000_000)}"


def _touch(p: Payment, status: str | None = None) -> None:
    if status is not None:
        p.status = status
    p.updated_at = utcnow()


def _refundable(s: Session, p: Payment) -> int:
    """What is left to refund on `p` (received, minus refunds done or under way)."""
    if p.status not in PAID_STATUSES:
        return 0
    taken = sum(r.amount_cents for r in s.exec(select(Refund).where(Refund.payment_id == p.id)).all()
                if r.status in LIVE_REFUND_STATUSES)
    return max(0, p.amount_cents - taken)


def _is_viewer(actor: Actor, booking: Booking) -> bool:
    if actor.is_admin:
        return True
    return actor.id is not None and actor.id in (booking.user_id, booking.provider_id)


def _is_manager(actor: Actor, booking: Booking) -> bool:
    return actor.is_admin or (actor.is_provider and actor.id == booking.provider_id)


# ----------------------------------------------------------------------------------------
# Booking-engine calls (the booking service owns booking state)
# ----------------------------------------------------------------------------------------

def _confirm_booking(booking_id: int) -> bool:
    """Confirm the booking after payment; False if it can't be (seat resold, cancelled)."""
    from booking_app.services import bookings

    return bool(bookings.confirm_payment(booking_id=booking_id))


def _release_booking(booking_id: int, reason: str) -> None:
    """Give a pending booking's capacity back (its payment failed or its session expired).
    The booking service cancels it (and tells the customer)."""
    from booking_app.services import bookings

    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        if booking is None or booking.status != BookingStatus.pending.value:
            return
    bookings.cancel(actor=Actor.system(), booking_id=booking_id, reason=reason)


def _lock_capacity(s: Session, booking: Booking) -> None:
    """The booking service's lock on the capacity this booking uses (bookings.lock_capacity_of),
    so that extending its hold can't race with a booking that counts the seats."""
    from booking_app.services import bookings

    try:
        bookings.lock_capacity_of(s, booking)
    except OperationalError as exc:
        raise Busy(retry_after=1) from exc


# ----------------------------------------------------------------------------------------
# Starting a payment
# ----------------------------------------------------------------------------------------

@dataclass
class _Plan:
    kind: str  # done | checkout | supersede | confirm_on_site
    payment_id: int
    session_id: str | None = None


def _is_owner(actor: Actor, booking: Booking, manage_token: str | None) -> bool:
    """The signed-in customer who booked, or — for a guest booking — whoever holds the
    signed manage link of the booking."""
    if booking.user_id is not None:
        return actor.id is not None and actor.id == booking.user_id
    from booking_app.services import bookings

    return manage_token is not None and bookings.manage_token_grants(manage_token, booking)


def process(*, actor: Actor, booking_id: Any, method: Any, manage_token: str | None = None) -> PaymentView:
    """Start paying `booking_id` with `method` (its customer only; a guest with the
    booking's manage token). See the module docstring."""
    booking_id = _booking_id(booking_id)
    method = _validate_method(method)
    if actor.is_guest and not manage_token:
        raise NotFound(N_("Booking not found."))
    for _round in range(3):
        plan = _prepare(actor=actor, booking_id=booking_id, method=method, manage_token=manage_token)
        if plan.kind == "done":
            return get_payment_by_id(plan.payment_id)
        if plan.kind == "confirm_on_site":
            return _confirm_on_site(plan.payment_id, booking_id)
        if plan.kind == "supersede":
            _supersede(plan.payment_id, plan.session_id)
            continue
        return _create_checkout(plan.payment_id)
    raise Conflict(N_("The payment is changing right now. Please try again."))


def _prepare(*, actor: Actor, booking_id: int, method: str, manage_token: str | None) -> _Plan:
    now = utcnow()
    with db.unit_of_work() as s:
        booking = _lock_booking(s, booking_id)
        if booking is None or not _is_owner(actor, booking, manage_token):
            raise NotFound(N_("Booking not found."))
        if booking.price_cents <= 0:
            raise Conflict(N_("This booking is free: no payment is needed."))
        if booking.status not in (BookingStatus.pending.value, BookingStatus.confirmed.value):
            raise Conflict(N_("This booking can no longer be paid."))
        if booking.status == BookingStatus.pending.value and method != ON_SITE:
            _lock_capacity(s, booking)  # before reading the clock: the hold may be extended below
            now = utcnow()
        if booking.status == BookingStatus.pending.value and (
                booking.hold_expires_at is None or booking.hold_expires_at <= now):
            raise NotAvailable(N_("The time reserved for paying this booking has run out. Please book again."))
        payments = _payments_of(s, booking_id)
        if any(p.status in PAID_STATUSES for p in payments):
            raise Conflict(N_("This booking is already paid."))
        open_online = [p for p in payments if p.provider == STRIPE and p.status in OPEN_STATUSES]
        open_on_site = [p for p in payments if p.method == ON_SITE and p.status == PaymentStatus.pending.value]

        if method == ON_SITE:
            if open_on_site:
                return _Plan("done", open_on_site[0].id or 0)
            for p in open_online:
                if p.provider_ref:
                    return _Plan("supersede", p.id or 0, p.provider_ref)
                _touch(p, PaymentStatus.cancelled.value)  # its session was never handed out
                s.add(p)
            payment = Payment(booking_id=booking_id, method=ON_SITE, provider=MANUAL,
                              amount_cents=booking.price_cents, currency=booking.currency)
            s.add(payment)
            s.flush()
            audit.record(s, actor_id=actor.id, action="payment.on_site", entity="payment", entity_id=payment.id,
                         data={"booking_id": booking_id, "amount_cents": payment.amount_cents})
            return _Plan("confirm_on_site", payment.id or 0)

        # online
        for p in open_online:
            if p.method != method:
                if p.provider_ref:
                    return _Plan("supersede", p.id or 0, p.provider_ref)
                _touch(p, PaymentStatus.cancelled.value)
                s.add(p)
                continue
            if p.provider_ref:
                if p.expires_at is not None and p.expires_at - now > REUSE_MARGIN:
                    return _Plan("done", p.id or 0)  # the open session: hand it out again
                return _Plan("supersede", p.id or 0, p.provider_ref)
            # an earlier create call failed: retry it with the same key and parameters,
            # unless Stripe would now reject its expiry (then start over)
            if p.expires_at is not None and p.expires_at - now > gw.CHECKOUT_MIN_LIFETIME + dt.timedelta(seconds=30):
                return _Plan("checkout", p.id or 0)
            _touch(p, PaymentStatus.cancelled.value)
            s.add(p)

        expires_at = _session_expiry(booking, now)
        payment = Payment(booking_id=booking_id, method=method, provider=STRIPE, amount_cents=booking.price_cents,
                          currency=booking.currency, expires_at=expires_at)
        s.add(payment)
        if booking.status == BookingStatus.pending.value:
            # the hold must outlive the session (Stripe: at least 30 minutes), plus time for
            # the webhook of a last-second payment to arrive; the seats are still ours
            # (hold valid, checked under the capacity lock)
            until = expires_at + WEBHOOK_GRACE
            if booking.hold_expires_at is None or booking.hold_expires_at < until:
                booking.hold_expires_at = until
                booking.updated_at = now
                booking.version += 1
                s.add(booking)
        s.flush()
        audit.record(s, actor_id=actor.id, action="payment.started", entity="payment", entity_id=payment.id,
                     data={"booking_id": booking_id, "method": method, "amount_cents": payment.amount_cents})
        return _Plan("checkout", payment.id or 0)


def _session_expiry(booking: Booking, now: dt.datetime) -> dt.datetime:
    """max(hold, now + 30 min + a little), at most 24 h: Stripe's limits for a session."""
    floor = now + gw.CHECKOUT_MIN_LIFETIME + dt.timedelta(minutes=1)
    expires = floor
    if booking.status == BookingStatus.pending.value and booking.hold_expires_at and booking.hold_expires_at > floor:
        expires = booking.hold_expires_at
    return min(expires, now + gw.CHECKOUT_MAX_LIFETIME - dt.timedelta(minutes=1)).replace(microsecond=0)


def _supersede(payment_id: int, session_id: str | None) -> None:
    """End an open Checkout Session before another payment starts (never two live ones)."""
    gateway = get_gateway()
    if session_id and gateway is not None:
        try:
            gateway.expire_checkout_session(session_id)
        except gw.GatewayError as exc:
            if exc.retryable or exc.kind == "config":
                raise PaymentError() from exc
            # not open any more: find out whether the customer paid in the meantime
            try:
                session = gateway.retrieve_checkout_session(session_id)
            except gw.GatewayError as exc2:
                raise PaymentError() from exc2
            if session.status == "complete":
                raise Conflict(N_("A payment for this booking is being completed. Please wait a moment."))
    with db.unit_of_work() as s:
        p = _lock_payment(s, payment_id)
        if p is not None and p.status in OPEN_STATUSES:
            _touch(p, PaymentStatus.cancelled.value)
            s.add(p)


def _confirm_on_site(payment_id: int, booking_id: int) -> PaymentView:
    if not _confirm_booking(booking_id):
        with db.unit_of_work() as s:
            p = _lock_payment(s, payment_id)
            if p is not None and p.status == PaymentStatus.pending.value:
                _touch(p, PaymentStatus.cancelled.value)
                s.add(p)
        raise NotAvailable(N_("The time reserved for paying this booking has run out. Please book again."))
    return get_payment_by_id(payment_id)


def _create_checkout(payment_id: int) -> PaymentView:
    settings = get_settings()
    gateway = get_gateway()
    with db.read_session() as s:
        p = s.get(Payment, payment_id)
        assert p is not None and p.expires_at is not None
        booking = s.get(Booking, p.booking_id)
        assert booking is not None and booking.id is not None
        bookable = s.get(Bookable, booking.bookable_id)
        user = s.get(User, booking.user_id) if booking.user_id else None
        base = settings.public_url.rstrip("/")
        request = gw.CheckoutRequest(
            idempotency_key=_key("checkout", payment_id, p.created_at),
            booking_id=booking.id, payment_id=payment_id, amount_cents=p.amount_cents, currency=p.currency,
            product_name=f"{bookable.name if bookable else 'Booking'} ({booking.reference})",
            method_types=(p.method,),
            success_url=f"{base}/bookings/{booking.id}/payment?result=success",
            cancel_url=f"{base}/bookings/{booking.id}/payment?result=cancel",
            expires_at=p.expires_at,
            customer_email=(user.email if user else booking.guest_email),
            locale=(user.locale if user else booking.locale),
        )
    if gateway is None:
        raise InvalidInput(N_("This payment method is not available."), field="method")
    try:
        session = gateway.create_checkout_session(request)
    except gw.GatewayError as exc:
        log.warning("checkout session for payment %s failed (%s): %s", payment_id, exc.kind, exc.message)
        with db.unit_of_work() as s:
            p = _lock_payment(s, payment_id)
            if p is not None and p.status in OPEN_STATUSES:
                p.last_error = f"{exc.kind}: {exc.message}"[:1000]
                # only "no answer" is retried with the same key (Stripe returns the first
                # result); anything else it stored (4xx, 5xx): a new attempt gets a new key
                if not exc.same_key_retry:
                    _touch(p, PaymentStatus.failed.value)
                s.add(p)
        if exc.kind == "card":
            raise InvalidInput(N_("The payment provider declined this payment method. Please choose another one."),
                               field="method") from exc
        if exc.retryable:
            raise PaymentError() from exc
        raise PaymentError(N_("The payment could not be started. Please try again later or choose another "
                              "payment method.")) from exc
    with db.unit_of_work() as s:
        p = _lock_payment(s, payment_id)
        assert p is not None
        p.provider_ref = session.id
        p.checkout_url = session.url
        p.payment_intent_ref = session.payment_intent or p.payment_intent_ref
        if session.expires_at:
            p.expires_at = session.expires_at
        p.last_error = None
        _touch(p)
        s.add(p)
        return _view(s, p)


# ----------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------

def get_payment_by_id(payment_id: int) -> PaymentView:
    with db.read_session() as s:
        p = s.get(Payment, payment_id)
        if p is None:
            raise NotFound(N_("Payment not found."))
        return _view(s, p)


def _current(payments: list[Payment]) -> Payment | None:
    """The payment that tells the booking's story: a paid one, else the latest."""
    for p in payments:
        if p.status in PAID_STATUSES:
            return p
    return payments[0] if payments else None


def _may_see_payment(actor: Actor, booking: Booking | None, manage_token: str | None) -> bool:
    return booking is not None and (_is_viewer(actor, booking) or _is_owner(actor, booking, manage_token))


def require_payment_access(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> None:
    """NotFound unless `actor` may see the payment of `booking_id` now (get_payment's rule):
    checked before an idempotent replay of a payment answer, which must not reach anyone
    else — a wrong manage token, a revoked link, a user who lost the role."""
    booking_id = _booking_id(booking_id)
    with db.read_session() as s:
        if not _may_see_payment(actor, s.get(Booking, booking_id), manage_token):
            raise NotFound(N_("Booking not found."))


def get_payment(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> PaymentView:
    """The booking's payment (owner — or a guest with the manage token —, its provider,
    admin; others: 404)."""
    booking_id = _booking_id(booking_id)
    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        if booking is None or not _may_see_payment(actor, booking, manage_token):
            raise NotFound(N_("Booking not found."))
        p = _current(_payments_of(s, booking_id))
        if p is None:
            raise NotFound(N_("There is no payment for this booking yet."))
        return _view(s, p)


def payment_status_of(session: Session, booking_id: int) -> str | None:
    """For booking read models: the status of the booking's current payment, or None."""
    p = _current(_payments_of(session, booking_id))
    return p.status if p is not None else None


# ----------------------------------------------------------------------------------------
# Provider/admin actions
# ----------------------------------------------------------------------------------------

def mark_paid(*, actor: Actor, booking_id: Any) -> PaymentView:
    """The provider received the money at the venue: the on-site payment succeeds."""
    booking_id = _booking_id(booking_id)
    with db.unit_of_work() as s:
        booking = _lock_booking(s, booking_id)
        if booking is None or not _is_viewer(actor, booking):
            raise NotFound(N_("Booking not found."))
        if not _is_manager(actor, booking):
            raise Forbidden()
        payments = _payments_of(s, booking_id)
        if any(p.status in PAID_STATUSES for p in payments):
            raise Conflict(N_("This booking is already paid."))
        on_site = next((p for p in payments if p.method == ON_SITE and p.status == PaymentStatus.pending.value), None)
        if on_site is None:
            raise Conflict(N_("No payment on site is waiting for this booking."))
        if booking.status == BookingStatus.cancelled.value:
            raise Conflict(N_("This booking was cancelled."))
        _touch(on_site, PaymentStatus.succeeded.value)
        s.add(on_site)
        audit.record(s, actor_id=actor.id, action="payment.marked_paid", entity="payment", entity_id=on_site.id,
                     data={"booking_id": booking_id, "amount_cents": on_site.amount_cents})
        _tell(s, on_site, "payment_received", on_site.amount_cents, f"payment-{on_site.id}")
        s.flush()
        return _view(s, on_site)


def refund(*, actor: Actor, booking_id: Any, amount_cents: Any = None, note: str | None = None) -> PaymentView:
    """A manual refund by the booking's provider or an admin (default: all that is left)."""
    booking_id = _booking_id(booking_id)
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise InvalidInput(N_("The note may have at most 500 characters."), field="note")
    with db.unit_of_work() as s:
        booking = _lock_booking(s, booking_id)
        if booking is None or not _is_viewer(actor, booking):
            raise NotFound(N_("Booking not found."))
        if not _is_manager(actor, booking):
            raise Forbidden()
        paid = next((p for p in _payments_of(s, booking_id) if p.status in PAID_STATUSES), None)
        if paid is None:
            raise Conflict(N_("Nothing was paid for this booking."))
        left = _refundable(s, paid)
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
        row = _add_refund(s, paid, amount, reason="manual", actor_id=actor.id)
        if row.status == "succeeded":  # on site: handed back at once
            _tell(s, paid, "payment_refunded", amount, f"refund-{row.id}")
        audit.record(s, actor_id=actor.id, action="payment.refund", entity="payment", entity_id=paid.id,
                     data={"booking_id": booking_id, "amount_cents": amount, "note": note or "", "refund_id": row.id})
        payment_id = paid.id
        refund_ids = [row.id] if row.status == "pending" else []
    _run_refunds(refund_ids)
    return get_payment_by_id(payment_id or 0)


def _add_refund(s: Session, p: Payment, amount: int, *, reason: str, actor_id: int | None = None) -> Refund:
    """Queue (Stripe) or record (on site) a refund of `amount` on `p`."""
    row = Refund(payment_id=p.id or 0, amount_cents=amount, currency=p.currency, reason=reason, created_by=actor_id)
    if p.provider != STRIPE:
        row.status = "succeeded"  # handed back at the venue
    s.add(row)
    s.flush()
    if row.status == "succeeded":
        _sync_refunded(s, p)
    return row


def _sync_refunded(s: Session, p: Payment, *, reported: int = 0) -> None:
    """refunded_cents = the larger of our succeeded refunds and what Stripe reports
    (charge.refunded may arrive before or after our own refund call is recorded)."""
    s.flush()
    ours = sum(r.amount_cents for r in s.exec(select(Refund).where(Refund.payment_id == p.id)).all()
               if r.status == "succeeded")
    total = min(p.amount_cents, max(p.refunded_cents, ours, reported))
    if total <= 0 or total == p.refunded_cents and p.status not in PAID_STATUSES:
        return
    p.refunded_cents = total
    _touch(p, PaymentStatus.refunded.value if total >= p.amount_cents else PaymentStatus.partially_refunded.value)
    s.add(p)


# ----------------------------------------------------------------------------------------
# Cancellation
# ----------------------------------------------------------------------------------------

def refund_for_cancellation(*, booking_id: int) -> list[RefundView]:
    """Refund a cancelled booking per its policy (`booking.refund_due_cents`, set by the
    booking service when it cancelled). Safe to call more than once: only the part of the
    due amount not yet refunded is refunded. Also ends open payments of the booking."""
    sessions_to_expire: list[str] = []
    with db.unit_of_work() as s:
        booking = _lock_booking(s, booking_id)
        if booking is None:
            raise NotFound(N_("Booking not found."))
        if booking.status != BookingStatus.cancelled.value:
            raise Conflict(N_("Only a cancelled booking is refunded."))
        payments = _payments_of(s, booking_id)
        for p in payments:
            if p.status in OPEN_STATUSES:  # nothing was paid: stop it
                if p.provider == STRIPE and p.provider_ref:
                    sessions_to_expire.append(p.provider_ref)
                _touch(p, PaymentStatus.cancelled.value)
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
            amount = min(due, _refundable(s, p))
            if amount > 0:
                created.append(_add_refund(s, p, amount, reason="cancellation"))
                due -= amount
        if created:
            audit.record(s, actor_id=None, action="payment.cancellation_refund", entity="booking",
                         entity_id=booking_id, data={"refund_ids": [r.id for r in created],
                                                     "amount_cents": sum(r.amount_cents for r in created)})
        views = [RefundView(id=r.id or 0, amount_cents=r.amount_cents, currency=r.currency, status=r.status,
                            reason=r.reason, created_at=r.created_at) for r in created]
        pending = [r.id for r in created if r.status == "pending"]
    _expire_sessions(sessions_to_expire)
    _run_refunds(pending)
    return views


def _expire_sessions(session_ids: list[str]) -> None:
    gateway = get_gateway()
    if gateway is None:
        return
    for sid in session_ids:
        try:
            gateway.expire_checkout_session(sid)
        except gw.GatewayError as exc:  # a payment that still lands is refunded by the webhook
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


def _send_refund(gateway: gw.PaymentGateway, row: Refund, payment: Payment) -> gw.RefundResult:
    """One attempt. A retry first asks Stripe whether an earlier attempt went through
    (our refund id is in the refund's metadata), then uses a key of its own: Stripe stores
    a 5xx answer under the key, so the first key could never succeed again."""
    assert payment.payment_intent_ref and row.id is not None
    if row.attempts > 1:
        found = gateway.find_refund(payment_intent=payment.payment_intent_ref, refund_ref=str(row.id))
        if found is not None:
            return found
    key = _key("refund", row.id, row.created_at) + ("" if row.attempts <= 1 else f"-{row.attempts}")
    return gateway.refund(payment_intent=payment.payment_intent_ref, amount_cents=row.amount_cents,
                          idempotency_key=key,
                          metadata={"booking_id": str(payment.booking_id), "payment_id": str(payment.id),
                                    "refund_id": str(row.id)})


def _execute_refund(refund_id: int) -> bool:
    """Send one queued refund to Stripe. True when it is done (succeeded or failed for good)."""
    claimed = _claim_refund(refund_id)
    if claimed is None:
        return False
    row, payment = claimed
    gateway = get_gateway()
    error: gw.GatewayError | None = None
    result: gw.RefundResult | None = None
    if gateway is None:
        error = gw.GatewayError("Stripe is not configured", kind="unavailable")
    elif not payment.payment_intent_ref:
        error = gw.GatewayError("payment has no PaymentIntent", kind="invalid")
    else:
        try:
            result = _send_refund(gateway, row, payment)
        except gw.GatewayError as exc:
            error = exc
    now = utcnow()
    with db.unit_of_work() as s:
        r = s.get(Refund, refund_id)
        p = _lock_payment(s, row.payment_id)
        assert r is not None and p is not None
        r.updated_at = now
        if result is not None and result.status in ("succeeded", "pending", "requires_action"):
            r.status = "succeeded"
            r.provider_ref = result.id
            r.last_error = None
            r.claimed_until = None
            s.add(r)
            _sync_refunded(s, p)
            if r.reason == "manual":
                _tell(s, p, "payment_refunded", r.amount_cents, f"refund-{r.id}")
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


def _run_refunds(refund_ids: list[int | None]) -> None:
    for rid in refund_ids:
        if rid is None:
            continue
        try:
            _execute_refund(rid)
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
            finished += int(_execute_refund(rid))
        except Exception:
            log.exception("refund %s failed in the sweep", rid)
    return finished


# ----------------------------------------------------------------------------------------
# Webhooks
# ----------------------------------------------------------------------------------------

def handle_stripe_webhook(*, payload: bytes, signature: str | None) -> WebhookResult:
    """Verify and apply one Stripe event. Replays and unknown types are acknowledged."""
    gateway = get_gateway()
    if gateway is None:
        raise WebhookRejected(N_("Stripe payments are not configured."))
    try:
        event = gateway.parse_webhook(payload, signature)
    except gw.WebhookSignatureError as exc:
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


def _record_event(event: gw.WebhookEvent, effect) -> str:
    """Run `effect(session)` and record the event id in one transaction."""
    with db.unit_of_work() as s:
        s.add(ProcessedWebhookEvent(provider=STRIPE, event_id=event.id[:255], event_type=event.type[:100]))
        s.flush()  # the unique event id: a concurrent duplicate fails here
        return effect(s)


def _find_payment(s: Session, obj: dict[str, Any], *, by: str = "session", lock: bool = True) -> Payment | None:
    """Our payment for a webhook object: by metadata.payment_id, else by Stripe id."""
    load = _lock_payment if lock else (lambda s_, pid_: s_.get(Payment, pid_))
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


def _on_session_paid(event: gw.WebhookEvent) -> str:
    obj = event.object
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        # completed but not yet paid (bank debits, vouchers): wait for async_payment_*
        def record_pending(s: Session) -> str:
            p = _find_payment(s, obj)
            if p is not None and p.status in OPEN_STATUSES:
                p.payment_intent_ref = _pi(obj) or p.payment_intent_ref
                p.checkout_url = None
                _touch(p)
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
        confirmed = _confirm_booking(booking_id)

    refund_ids: list[int | None] = []

    def apply(s: Session) -> str:
        p = _find_payment(s, obj)
        if p is None or p.status in PAID_STATUSES or p.status == PaymentStatus.refunded.value:
            return "ignored"
        p.payment_intent_ref = _pi(obj) or p.payment_intent_ref
        p.checkout_url = None
        _touch(p, PaymentStatus.succeeded.value)
        s.add(p)
        booking = s.get(Booking, p.booking_id)
        assert booking is not None
        others_paid = [o for o in _payments_of(s, p.booking_id) if o.id != p.id and o.status in PAID_STATUSES]
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
            for o in _payments_of(s, p.booking_id):
                if o.id != p.id and o.status in OPEN_STATUSES:  # e.g. a pending on-site payment
                    _touch(o, PaymentStatus.cancelled.value)
                    s.add(o)
            _tell(s, p, "payment_received", p.amount_cents, f"payment-{p.id}")
            return "processed"
        if p.amount_cents - p.refunded_cents > 0:
            row = _add_refund(s, p, p.amount_cents - p.refunded_cents, reason=reason)
            refund_ids.append(row.id)
        if reason == "unavailable":
            _tell_refunded_unavailable(s, booking, p)
        else:
            _tell(s, p, "payment_refunded", p.amount_cents, f"payment-{p.id}")
        return "processed"

    outcome = _record_event(event, apply)
    _run_refunds(refund_ids)
    return outcome


def _tell_refunded_unavailable(s: Session, booking: Booking, p: Payment) -> None:
    """Tell the customer their late payment was refunded because the place is gone."""
    from booking_app.services import notifications

    if UNAVAILABLE_TEMPLATE not in notifications.TEMPLATES:  # older template set: the generic refund mail
        outbox.payment_event(s, booking=booking, event="payment_refunded", amount_cents=p.amount_cents,
                             currency=p.currency, ref=f"payment-{p.id}")
        return
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


def _tell(s: Session, p: Payment, event: str, amount_cents: int, ref: str) -> None:
    booking = s.get(Booking, p.booking_id)
    if booking is not None:
        outbox.payment_event(s, booking=booking, event=event, amount_cents=amount_cents, currency=p.currency,
                             ref=ref)


def _pi(obj: dict[str, Any]) -> str | None:
    pi = obj.get("payment_intent")
    if isinstance(pi, dict):
        pi = pi.get("id")
    return str(pi) if pi else None


def _on_session_ended(event: gw.WebhookEvent, *, status: str) -> str:
    """The session expired (status cancelled) or its async payment failed (failed)."""
    obj = event.object
    release: list[int] = []

    def apply(s: Session) -> str:
        p = _find_payment(s, obj)
        if p is None or p.status not in OPEN_STATUSES:
            return "ignored"  # out of order (already paid) or already ended
        _touch(p, status)
        p.checkout_url = None
        if status == PaymentStatus.failed.value:
            p.last_error = "async payment failed"
        s.add(p)
        booking = s.get(Booking, p.booking_id)
        others = [o for o in _payments_of(s, p.booking_id)
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


def _on_payment_intent_failed(event: gw.WebhookEvent) -> str:
    obj = event.object

    def apply(s: Session) -> str:
        p = _find_payment(s, obj, by="payment_intent")
        if p is None or p.status not in OPEN_STATUSES:
            return "ignored"
        err = obj.get("last_payment_error") or {}
        p.payment_intent_ref = p.payment_intent_ref or str(obj.get("id") or "") or None
        p.last_error = str(err.get("message") or err.get("code") or "payment failed")[:1000]
        _touch(p, PaymentStatus.requires_action.value)  # the customer may try again on the page
        s.add(p)
        return "processed"

    return _record_event(event, apply)


def _on_charge_refunded(event: gw.WebhookEvent) -> str:
    obj = event.object

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
        _sync_refunded(s, p, reported=refunded)
        return "processed"

    return _record_event(event, apply)


_HANDLERS = {
    "checkout.session.completed": _on_session_paid,
    "checkout.session.async_payment_succeeded": _on_session_paid,
    "checkout.session.async_payment_failed": lambda e: _on_session_ended(e, status=PaymentStatus.failed.value),
    "checkout.session.expired": lambda e: _on_session_ended(e, status=PaymentStatus.cancelled.value),
    "payment_intent.payment_failed": _on_payment_intent_failed,
    "charge.refunded": _on_charge_refunded,
}


def cancel_and_refund(*, actor: Actor, booking_id: int, reason: str | None = None,
                      manage_token: str | None = None) -> Any:
    """Cancel a booking and refund what its policy gives back — the one call behind the
    API's DELETE /api/bookings/{id} and the UI's cancel button. The refund runs after the
    cancellation committed; if the provider is down it stays pending and the refund job
    retries it, so the cancellation itself never fails because of the payment provider.
    Returns the booking's BookingView after the refund."""
    from booking_app.services import bookings

    view = bookings.cancel(actor=actor, booking_id=booking_id, reason=reason, manage_token=manage_token)
    if view.refund_due_cents > 0 or view.payment_status not in ("none", ""):
        try:
            refund_for_cancellation(booking_id=booking_id)
        except ServiceError:
            log.warning("refund after cancelling booking %s deferred to the refund job", booking_id, exc_info=True)
        view = bookings.get_booking(actor=actor, booking_id=booking_id, manage_token=manage_token)
    return view
