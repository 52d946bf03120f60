"""Payments: starting a payment (Stripe Checkout or on site), reading it, marking an
on-site payment paid, and the customer's two compound actions — book-then-pay
(`book_and_pay`) and cancel-then-refund (`cancel_and_refund`, with its preview
`cancellation_quote`). The refund rule itself lives in services/refunds.py, the Stripe
webhooks in services/stripe_webhooks.py.

- `process()` takes the amount from the booking. On site: a manual payment `pending` until
  the provider marks it paid; the booking is confirmed at once. Online: a Checkout Session
  (hosted page: no card data reaches us) created after our payment row commits, with the
  Stripe idempotency key `checkout-<payment id>`, so a retry never makes a second session.
  An open session is reused; switching method expires the old one first.
- The session expires at max(hold, now + 30 min) (Stripe's minimum) and the booking's hold
  is extended to that time plus a grace period for the webhook of a last-second payment.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.integrations import stripe_gateway
from booking_app.models import Bookable, Booking, BookingStatus, Payment, PaymentStatus, User, utcnow
from booking_app.services import audit, booking_queries, bookings, deposits, fees, manage_links, refunds
from booking_app.services.actors import Actor, is_manager, is_viewer
from booking_app.services.capacity import lock_booking, lock_capacity_of
from booking_app.services.errors import (
    Conflict,
    InvalidInput,
    NotAvailable,
    NotFound,
    PaymentError,
    ServiceError,
)
from booking_app.services.payment_records import (
    MANUAL,
    ON_SITE,
    OPEN_STATUSES,
    PAID_STATUSES,
    STRIPE,
    PaymentView,
    current_payment,
    get_gateway,
    get_payment_by_id,
    lock_managed_booking,
    lock_payment,
    mark_updated,
    notify_customer,
    parse_booking_id,
    payment_view,
    payments_of,
    stripe_idempotency_key,
)

log = logging.getLogger(__name__)

#: The webhook of a payment made at the last second may arrive a little later.
WEBHOOK_GRACE = dt.timedelta(minutes=5)
#: A session this close to its end is not handed out again; a fresh one is made.
REUSE_MARGIN = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class PaymentMethodOption:
    method: str
    online: bool


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


def _confirm_booking(booking_id: int) -> bool:
    """Confirm the booking after payment; False if it can't be (seat resold, cancelled)."""
    return bool(bookings.confirm_payment(booking_id=booking_id))


# ----------------------------------------------------------------------------------------
# Starting a payment
# ----------------------------------------------------------------------------------------

@dataclass
class _Plan:
    kind: str  # done | checkout | supersede | confirm_on_site
    payment_id: int
    session_id: str | None = None


def process(*, actor: Actor, booking_id: Any, method: Any, manage_token: str | None = None) -> PaymentView:
    """Start paying `booking_id` with `method` (its customer only; a guest with the
    booking's manage token). See the module docstring."""
    booking_id = parse_booking_id(booking_id)
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
        booking = lock_booking(s, booking_id)
        if booking is None or not booking_queries.is_owner(actor, booking, manage_token):
            raise NotFound(N_("Booking not found."))
        if booking.price_cents <= 0:
            raise Conflict(N_("This booking is free: no payment is needed."))
        if booking.status == BookingStatus.awaiting_approval.value:  # (paid once approved: services/approvals.py)
            raise Conflict(N_("This booking waits for the provider's approval: it can be paid once approved."))
        if booking.status not in (BookingStatus.pending.value, BookingStatus.confirmed.value):
            raise Conflict(N_("This booking can no longer be paid."))
        if booking.status == BookingStatus.pending.value and method != ON_SITE:
            lock_capacity_of(s, booking)  # before reading the clock: the hold may be extended below
            now = utcnow()
        if booking.status == BookingStatus.pending.value and (
                booking.hold_expires_at is None or booking.hold_expires_at <= now):
            raise NotAvailable(N_("The time reserved for paying this booking has run out. Please book again."))
        payments = payments_of(s, booking_id)
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
                mark_updated(p, PaymentStatus.cancelled.value)  # its session was never handed out
                s.add(p)
            payment = Payment(booking_id=booking_id, method=ON_SITE, provider=MANUAL,
                              amount_cents=deposits.first_charge(booking, online=False), currency=booking.currency)
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
                mark_updated(p, PaymentStatus.cancelled.value)
                s.add(p)
                continue
            if p.provider_ref:
                if p.expires_at is not None and p.expires_at - now > REUSE_MARGIN:
                    return _Plan("done", p.id or 0)  # the open session: hand it out again
                return _Plan("supersede", p.id or 0, p.provider_ref)
            # an earlier create call failed: retry it with the same key and parameters,
            # unless Stripe would now reject its expiry (then start over)
            min_left = stripe_gateway.CHECKOUT_MIN_LIFETIME + dt.timedelta(seconds=30)
            if p.expires_at is not None and p.expires_at - now > min_left:
                return _Plan("checkout", p.id or 0)
            mark_updated(p, PaymentStatus.cancelled.value)
            s.add(p)

        expires_at = _session_expiry(booking, now)
        payment = Payment(booking_id=booking_id, method=method, provider=STRIPE,
                          amount_cents=deposits.first_charge(booking, online=True),  # the deposit, if any
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
    floor = now + stripe_gateway.CHECKOUT_MIN_LIFETIME + dt.timedelta(minutes=1)
    expires = floor
    if booking.status == BookingStatus.pending.value and booking.hold_expires_at and booking.hold_expires_at > floor:
        expires = booking.hold_expires_at
    return min(expires, now + stripe_gateway.CHECKOUT_MAX_LIFETIME - dt.timedelta(minutes=1)).replace(microsecond=0)


def _supersede(payment_id: int, session_id: str | None) -> None:
    """End an open Checkout Session before another payment starts (never two live ones)."""
    gateway = get_gateway()
    if session_id and gateway is not None:
        try:
            gateway.expire_checkout_session(session_id)
        except stripe_gateway.GatewayError as exc:
            if exc.retryable or exc.kind == "config":
                raise PaymentError() from exc
            # not open any more: find out whether the customer paid in the meantime
            try:
                session = gateway.retrieve_checkout_session(session_id)
            except stripe_gateway.GatewayError as exc2:
                raise PaymentError() from exc2
            if session.status == "complete":
                raise Conflict(N_("A payment for this booking is being completed. Please wait a moment."))
    with db.unit_of_work() as s:
        p = lock_payment(s, payment_id)
        if p is not None and p.status in OPEN_STATUSES:
            mark_updated(p, PaymentStatus.cancelled.value)
            s.add(p)


def _confirm_on_site(payment_id: int, booking_id: int) -> PaymentView:
    if not _confirm_booking(booking_id):
        with db.unit_of_work() as s:
            p = lock_payment(s, payment_id)
            if p is not None and p.status == PaymentStatus.pending.value:
                mark_updated(p, PaymentStatus.cancelled.value)
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
        save_card = deposits.saves_card(bookable) and p.purpose == deposits.BOOKING
        request = stripe_gateway.CheckoutRequest(
            idempotency_key=stripe_idempotency_key("checkout", payment_id, p.created_at),
            booking_id=booking.id, payment_id=payment_id, amount_cents=p.amount_cents, currency=p.currency,
            product_name=f"{bookable.name if bookable else 'Booking'} ({booking.reference})",
            method_types=(p.method,),
            success_url=f"{base}/bookings/{booking.id}/payment?result=success",
            cancel_url=f"{base}/bookings/{booking.id}/payment?result=cancel",
            expires_at=p.expires_at,
            customer_email=(user.email if user else booking.guest_email),
            locale=(user.locale if user else booking.locale),
            save_card=save_card,
        )
    if gateway is None:
        raise InvalidInput(N_("This payment method is not available."), field="method")
    try:
        if save_card:  # the card is kept (with consent) for a later no-show/late-cancel fee
            request = dataclasses.replace(request, customer=_ensure_customer(gateway, request.booking_id))
        session = gateway.create_checkout_session(request)
    except stripe_gateway.GatewayError as exc:
        log.warning("checkout session for payment %s failed (%s): %s", payment_id, exc.kind, exc.message)
        with db.unit_of_work() as s:
            p = lock_payment(s, payment_id)
            if p is not None and p.status in OPEN_STATUSES:
                p.last_error = f"{exc.kind}: {exc.message}"[:1000]
                # only "no answer" is retried with the same key (Stripe returns the first
                # result); anything else it stored (4xx, 5xx): a new attempt gets a new key
                if not exc.same_key_retry:
                    mark_updated(p, PaymentStatus.failed.value)
                s.add(p)
        if exc.kind == "card":
            raise InvalidInput(N_("The payment provider declined this payment method. Please choose another one."),
                               field="method") from exc
        if exc.retryable:
            raise PaymentError() from exc
        raise PaymentError(N_("The payment could not be started. Please try again later or choose another "
                              "payment method.")) from exc
    with db.unit_of_work() as s:
        p = lock_payment(s, payment_id)
        assert p is not None
        p.provider_ref = session.id
        p.checkout_url = session.url
        p.payment_intent_ref = session.payment_intent or p.payment_intent_ref
        if session.expires_at:
            p.expires_at = session.expires_at
        p.last_error = None
        mark_updated(p)
        s.add(p)
        return payment_view(s, p)


def _ensure_customer(gateway: stripe_gateway.PaymentGateway, booking_id: int) -> str:
    """The booking's Stripe customer (created once, idempotently): the card saved at
    Checkout belongs to it, and a later fee is charged to it (services/fees.py)."""
    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        assert booking is not None
        if booking.stripe_customer_ref:
            return booking.stripe_customer_ref
        user = s.get(User, booking.user_id) if booking.user_id else None
        email = user.email if user else booking.guest_email
        name = (user.full_name or user.username) if user else booking.guest_name
        key = stripe_idempotency_key("customer", booking_id, booking.created_at)
    ref = gateway.create_customer(email=email, name=name, idempotency_key=key,
                                  metadata={"booking_id": str(booking_id)})
    with db.unit_of_work() as s:
        booking = lock_booking(s, booking_id)
        assert booking is not None
        if not booking.stripe_customer_ref:
            booking.stripe_customer_ref = ref
            s.add(booking)
        return booking.stripe_customer_ref or ref


def start_card_setup(*, booking_id: int) -> str | None:
    """A setup-mode Checkout Session that saves the customer's card (with the consent shown
    at review) for a later fee, for a booking paid on site or free. Its URL, or None when
    Stripe is off, the bookable charges no fee, or Stripe could not start it (the fee is
    then recorded as due if it ever applies)."""
    gateway = get_gateway()
    if gateway is None:
        return None
    settings = get_settings()
    now = utcnow()
    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        bookable = s.get(Bookable, booking.bookable_id) if booking is not None else None
        if booking is None or not deposits.saves_card(bookable) or booking.status != BookingStatus.confirmed.value:
            return None
        user = s.get(User, booking.user_id) if booking.user_id else None
        expires = (now + stripe_gateway.CHECKOUT_MIN_LIFETIME * 2).replace(microsecond=0)
        base = settings.public_url.rstrip("/")
        request = stripe_gateway.CheckoutRequest(
            idempotency_key=f"setup-{booking_id}-{int(expires.timestamp())}", booking_id=booking_id, payment_id=0,
            amount_cents=0, currency=booking.currency, product_name=booking.reference, method_types=("card",),
            success_url=f"{base}/bookings/{booking_id}?card=saved", cancel_url=f"{base}/bookings/{booking_id}",
            expires_at=expires, locale=(user.locale if user else booking.locale), mode="setup",
            extra_metadata={"purpose": "card_setup"})
    try:
        request = dataclasses.replace(request, customer=_ensure_customer(gateway, booking_id))
        return gateway.create_checkout_session(request).url
    except stripe_gateway.GatewayError as exc:
        log.warning("card setup for booking %s did not start: %s", booking_id, exc.message)
        return None


def pay_balance(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> PaymentView:
    """Start paying the rest of a booking's price after its deposit ("Pay the balance" on
    the booking page and in the reminder): a Checkout Session for `balance_due_cents`. Its
    customer only (a guest with the manage token); an open balance session is reused."""
    booking_id = parse_booking_id(booking_id)
    if actor.is_guest and not manage_token:
        raise NotFound(N_("Booking not found."))
    online = [m for m in get_settings().online_payment_methods if m != ON_SITE]
    now = utcnow()
    to_expire: list[str] = []
    with db.unit_of_work() as s:
        booking = lock_booking(s, booking_id)
        if booking is None or not booking_queries.is_owner(actor, booking, manage_token):
            raise NotFound(N_("Booking not found."))
        if booking.status != BookingStatus.confirmed.value:
            raise Conflict(N_("This booking can no longer be paid."))
        if booking.balance_due_cents <= 0:
            raise Conflict(N_("Nothing is left to pay for this booking."))
        if get_gateway() is None or not online:
            raise InvalidInput(N_("This payment method is not available."), field="method")
        method = "card" if "card" in online else online[0]
        for p in payments_of(s, booking_id):
            if p.purpose != deposits.BALANCE or p.status not in OPEN_STATUSES:
                continue
            if (p.provider == STRIPE and p.provider_ref and p.amount_cents == booking.balance_due_cents
                    and p.expires_at is not None and p.expires_at - now > REUSE_MARGIN):
                return payment_view(s, p)  # the open session: hand it out again
            if p.provider_ref:
                to_expire.append(p.provider_ref)
            mark_updated(p, PaymentStatus.cancelled.value)
            s.add(p)
        payment = Payment(booking_id=booking_id, method=method, provider=STRIPE, purpose=deposits.BALANCE,
                          amount_cents=booking.balance_due_cents, currency=booking.currency,
                          expires_at=(now + stripe_gateway.CHECKOUT_MAX_LIFETIME
                                      - dt.timedelta(minutes=1)).replace(microsecond=0))
        s.add(payment)
        s.flush()
        audit.record(s, actor_id=actor.id, action="payment.balance_started", entity="payment", entity_id=payment.id,
                     data={"booking_id": booking_id, "amount_cents": payment.amount_cents})
        payment_id = payment.id or 0
    refunds.expire_sessions(to_expire)
    return _create_checkout(payment_id)


# ----------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------

def _may_see_payment(actor: Actor, booking: Booking | None, manage_token: str | None) -> bool:
    return booking is not None and (is_viewer(actor, booking) or booking_queries.is_owner(actor, booking, manage_token))


def require_payment_access(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> None:
    """NotFound unless `actor` may see the payment of `booking_id` now (get_payment's rule):
    checked before an idempotent replay of a payment answer, which must not reach anyone
    else — a wrong manage token, a revoked link, a user who lost the role."""
    booking_id = parse_booking_id(booking_id)
    with db.read_session() as s:
        if not _may_see_payment(actor, s.get(Booking, booking_id), manage_token):
            raise NotFound(N_("Booking not found."))


def get_payment(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> PaymentView:
    """The booking's payment (owner — or a guest with the manage token —, its provider,
    admin; others: 404)."""
    booking_id = parse_booking_id(booking_id)
    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        if booking is None or not _may_see_payment(actor, booking, manage_token):
            raise NotFound(N_("Booking not found."))
        p = current_payment(payments_of(s, booking_id))
        if p is None:
            raise NotFound(N_("There is no payment for this booking yet."))
        return payment_view(s, p)


@dataclass(frozen=True)
class BookingMoney:
    """A booking's paid / due figures and its fees (booking page, provider details, API)."""

    summary: deposits.MoneySummary
    fees: list[fees.FeeView]


def booking_money(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> BookingMoney:
    """What the booking shows of its money: paid, due, the deposit, the fees (same access
    as its payment: the owner or a guest with the token, its provider, admin)."""
    booking_id = parse_booking_id(booking_id)
    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        if booking is None or not _may_see_payment(actor, booking, manage_token):
            raise NotFound(N_("Booking not found."))
        return BookingMoney(summary=deposits.money_summary(s, booking), fees=fees.fees_of(s, booking_id))


# ----------------------------------------------------------------------------------------
# Provider/admin: money received at the venue
# ----------------------------------------------------------------------------------------

def mark_paid(*, actor: Actor, booking_id: Any) -> PaymentView:
    """The provider received the money at the venue: the on-site payment succeeds."""
    booking_id = parse_booking_id(booking_id)
    with db.unit_of_work() as s:
        booking = lock_managed_booking(s, actor, booking_id)
        payments = payments_of(s, booking_id)
        if booking.balance_due_cents > 0 and booking.status != BookingStatus.cancelled.value and any(
                p.status in PAID_STATUSES for p in payments):
            return _balance_paid_on_site(s, actor, booking, payments)
        if any(p.status in PAID_STATUSES for p in payments):
            raise Conflict(N_("This booking is already paid."))
        on_site = next((p for p in payments if p.method == ON_SITE and p.status == PaymentStatus.pending.value), None)
        if on_site is None:
            raise Conflict(N_("No payment on site is waiting for this booking."))
        if booking.status == BookingStatus.cancelled.value:
            raise Conflict(N_("This booking was cancelled."))
        mark_updated(on_site, PaymentStatus.succeeded.value)
        s.add(on_site)
        audit.record(s, actor_id=actor.id, action="payment.marked_paid", entity="payment", entity_id=on_site.id,
                     data={"booking_id": booking_id, "amount_cents": on_site.amount_cents})
        deposits.after_first_payment(booking, on_site)
        s.add(booking)
        notify_customer(s, on_site, "payment_received", on_site.amount_cents, f"payment-{on_site.id}")
        s.flush()
        return payment_view(s, on_site)


def _balance_paid_on_site(s: Any, actor: Actor, booking: Booking, payments: list[Payment]) -> PaymentView:
    """The provider received the balance after the deposit at the venue (mark_paid)."""
    for p in payments:  # an open online balance session is no longer needed
        if p.purpose == deposits.BALANCE and p.status in OPEN_STATUSES:
            mark_updated(p, PaymentStatus.cancelled.value)
            s.add(p)
    paid = Payment(booking_id=booking.id or 0, method=ON_SITE, provider=MANUAL, purpose=deposits.BALANCE,
                   amount_cents=booking.balance_due_cents, currency=booking.currency,
                   status=PaymentStatus.succeeded.value)
    s.add(paid)
    s.flush()
    deposits.after_balance_paid(booking, paid)
    s.add(booking)
    audit.record(s, actor_id=actor.id, action="payment.marked_paid", entity="payment", entity_id=paid.id,
                 data={"booking_id": booking.id, "amount_cents": paid.amount_cents, "purpose": deposits.BALANCE})
    notify_customer(s, paid, "payment_received", paid.amount_cents, f"payment-{paid.id}")
    s.flush()
    return payment_view(s, paid)


# ----------------------------------------------------------------------------------------
# The customer's compound actions (the UI and the API call these, never the steps)
# ----------------------------------------------------------------------------------------

def cancellation_quote(*, actor: Actor, booking_id: int, manage_token: str | None = None,
                       now: dt.datetime | None = None) -> refunds.CancellationQuote:
    """What cancelling `booking_id` by `actor` would refund now (refunds.refund_due, the
    rule the cancellation itself applies), and whether/until when they may cancel. Same
    access as seeing the booking (NotFound otherwise)."""
    booking_queries.get_booking(actor=actor, booking_id=booking_id, manage_token=manage_token)  # access check
    with db.read_session() as s:
        booking = s.get(Booking, booking_id)
        if booking is None:
            raise NotFound(N_("Booking not found."))
        return refunds.quote_for(s, booking, by_manager=is_manager(actor, booking), now=now)


def cancel_and_refund(*, actor: Actor, booking_id: int, reason: str | None = None,
                      manage_token: str | None = None) -> booking_queries.BookingView:
    """Cancel a booking and refund what its policy gives back — the one call behind the
    API's DELETE /api/bookings/{id} and the UI's cancel button. The refund runs after the
    cancellation committed; if the provider is down it stays pending and the refund job
    retries it, so the cancellation itself never fails because of the payment provider.
    Returns the booking's BookingView after the refund."""
    view = bookings.cancel(actor=actor, booking_id=booking_id, reason=reason, manage_token=manage_token)
    if fees.charge_owed(booking_id):  # a late cancellation's fee (issue 26)
        view = booking_queries.get_booking(actor=actor, booking_id=booking_id, manage_token=manage_token)
    if view.refund_due_cents > 0 or view.payment_status not in ("none", ""):
        try:
            refunds.refund_for_cancellation(booking_id=booking_id)
        except ServiceError:
            log.warning("refund after cancelling booking %s deferred to the refund job", booking_id, exc_info=True)
        view = booking_queries.get_booking(actor=actor, booking_id=booking_id, manage_token=manage_token)
    return view


def mark_no_show(*, actor: Actor, booking_id: int, now: dt.datetime | None = None) -> booking_queries.BookingView:
    """The provider marks a no-show (bookings.mark_no_show, which records the bookable's
    no-show fee as due) and the fee is then charged to the saved card (fees.charge_owed) —
    the one call behind the API and the provider's button."""
    view = bookings.mark_no_show(actor=actor, booking_id=booking_id, now=now)
    if fees.charge_owed(view.id):
        view = booking_queries.get_booking(actor=actor, booking_id=view.id)
    return view


@dataclass(frozen=True)
class CheckoutResult:
    """`book_and_pay`'s answer. The booking stands even when its payment did not start:
    `payment_error` then says why (to be shown to the customer)."""

    booking: booking_queries.BookingView
    manage_token: str  # a guest's manage link token ("" for signed-in users)
    payment: PaymentView | None
    payment_error: ServiceError | None = None
    # a setup-mode Checkout that saves the card for a later fee (free / on-site bookings)
    card_setup_url: str | None = None

    @property
    def checkout_url(self) -> str | None:
        return (self.payment.checkout_url if self.payment is not None else None) or self.card_setup_url


def book_and_pay(*, actor: Actor, service_id: int, start: dt.datetime | str, quantity: int = 1,
                 notes: str | None = "", guest: Any = None, idempotency_key: str | None = None,
                 payment_method: str | None = None, client_ip: str | None = None,
                 discount_code: str | None = None, answers: Any = None) -> CheckoutResult:
    """Book (bookings.book: its errors are raised) and start the payment with the chosen
    method: a Checkout Session for an online method of a pending booking, the on-site
    payment the provider will collect otherwise. A payment that could not start leaves
    the booking as it is and comes back as `payment_error`. A retry with the same
    idempotency key replays the booking and tries the payment again."""
    view = bookings.book(actor=actor, service_id=service_id, start=start, quantity=quantity, notes=notes,
                         guest=guest, idempotency_key=idempotency_key, payment_method=payment_method,
                         client_ip=client_ip, discount_code=discount_code, answers=answers)
    token = manage_links.booking_manage_token(view.id, view.link_version) if actor.is_guest else ""
    method = payment_method
    if (not method or view.price_cents <= 0 or (method != ON_SITE and view.status != BookingStatus.pending.value)
            or view.status == BookingStatus.awaiting_approval.value):  # (paid once approved: services/approvals.py)
        setup = start_card_setup(booking_id=view.id) if view.status == BookingStatus.confirmed.value else None
        return CheckoutResult(booking=view, manage_token=token, payment=None, card_setup_url=setup)
    try:
        payment = process(actor=actor, booking_id=view.id, method=method, manage_token=token or None)
    except ServiceError as exc:
        log.warning("booking %s stands but its %s payment did not start: %s", view.id, method, exc)
        return CheckoutResult(booking=view, manage_token=token, payment=None, payment_error=exc)
    setup = start_card_setup(booking_id=view.id) if method == ON_SITE else None  # the card for a later fee
    return CheckoutResult(booking=view, manage_token=token, payment=payment, card_setup_url=setup)
