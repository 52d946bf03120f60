"""No-show and late-cancel fees (issue 26, point 3): the one home of when a fee is owed and
how it is collected.

- Owed: `assess()` records a `BookingFee` (status `due`) in the transaction that marks the
  booking no-show (bookings._finish) or cancels it after the customer's cut-off
  (bookings.cancel; a customer may cancel that late only when the bookable has a
  late-cancel fee: refunds.check_customer_cutoff). One fee per booking and kind.
- Collected after commit (`charge()`): with Stripe and the card saved at booking (the
  booking's Stripe customer), an off-session PaymentIntent charges it. Success → `charged`;
  a decline → `failed` (still due, recorded); the bank asking for authentication (SCA,
  `authentication_required`) → `requires_action` and the customer gets a Checkout link
  through the outbox to complete it (the webhook marks it `charged`, `apply_checkout_paid`).
  Without Stripe, or without a saved card, the fee stays `due`.
- Told: the customer by email; webhook endpoints by `fee.charged` / `fee.failed`
  (notify.fee_event, in the transaction that records the outcome).
- Charged again (`charge_again`): the provider or an admin retries a declined (`failed`) or
  uncollected (`due`) fee. A charge starts only from the row claimed under its lock
  (`_claim`: due/failed → charging), so two retries at once charge once; the other is told
  it is under way (Conflict).
- Recovered (`recover_stale_charges`, a job sweep): a fee still `charging` long after its
  claim was left by a process that died between the claim and the outcome. The sweep takes
  it over under its lock and re-runs the charge with the interrupted attempt's Stripe
  idempotency key, so a charge that reached Stripe is not made twice.

See docs/deposits-and-fees.md.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.integrations import stripe_gateway
from booking_app.models import Bookable, Booking, BookingFee, utcnow
from booking_app.services import audit, notify, outbox, refunds, report_sql
from booking_app.services.actors import Actor
from booking_app.services.booking_queries import access
from booking_app.services.errors import Conflict, Forbidden, NotFound
from booking_app.services.payment_records import get_gateway, stripe_idempotency_key

log = logging.getLogger(__name__)

#: fee kind → the bookable column holding its amount
FEE_COLUMNS = {"no_show": "no_show_fee_cents", "late_cancel": "late_cancel_fee_cents"}
#: Statuses of a fee still owed ("charging": a charge is under way).
OWED_STATUSES = ("due", "failed", "requires_action", "charging")
#: The customer's messages (services/messages.py templates).
CHARGED_TEMPLATE = "fee_charged"
DUE_TEMPLATE = "fee_due"
ACTION_TEMPLATE = "fee_action_required"
#: Statuses "charge again" starts from (a declined charge, or one never collected).
RETRYABLE = ("due", "failed")

FEE_NOT_FOUND = N_("This fee does not exist.")
PROVIDER_ONLY = N_("Only the provider can charge a fee again.")
#: why a fee can't be charged again, by its status
NOT_RETRYABLE = {
    "charged": N_("This fee is paid already."),
    "charging": N_("This fee is being charged right now."),
    "requires_action": N_("The customer's bank asked them to confirm this payment: they were sent a link to pay "
                          "the fee."),
}
CANNOT_RETRY = N_("This fee cannot be charged again.")
#: A fee still `charging` this long after its claim was left by a process that died between
#: the claim and the outcome (crash, OOM, a deploy's SIGKILL): a live charge takes seconds
#: (the gateway's timeout and its retries).
STALE_CHARGING = dt.timedelta(minutes=5)
#: Stripe forgets an idempotency key after 24 hours. An interrupted charge claimed longer ago
#: is not re-run (the key may no longer recognise a charge that went through): it goes back
#: to `due` with INTERRUPTED_TOO_LONG, for the provider to check Stripe before charging again.
IDEMPOTENCY_WINDOW = dt.timedelta(hours=23)
INTERRUPTED_TOO_LONG = "interrupted charge: check Stripe for it before charging again"
RECOVER_BATCH = 100
#: what a retry came to, by the fee's status after it (the provider's button says it)
RETRY_OUTCOMES = {
    "charged": N_("The fee is charged."),
    "failed": N_("The card was declined again: the fee is still due."),
    "requires_action": NOT_RETRYABLE["requires_action"],
    "due": N_("The fee could not be charged: it is still due."),
}


@dataclass(frozen=True)
class FeeView:
    id: int
    booking_id: int
    kind: str
    amount_cents: int
    currency: str
    status: str
    checkout_url: str | None
    last_error: str | None
    created_at: dt.datetime
    attempts: int = 0


def fee_view(f: BookingFee) -> FeeView:
    assert f.id is not None
    return FeeView(id=f.id, booking_id=f.booking_id, kind=f.kind, amount_cents=f.amount_cents, currency=f.currency,
                   status=f.status, checkout_url=f.checkout_url if f.status == "requires_action" else None,
                   last_error=f.last_error, created_at=f.created_at, attempts=f.attempts)


def fee_amount(bookable: Bookable | None, kind: str) -> int:
    """The bookable's fee of `kind` in minor units (0: none)."""
    return int(getattr(bookable, FEE_COLUMNS[kind], 0) or 0) if bookable is not None else 0


def is_late_cancel(booking: Booking, bookable: Bookable, now: dt.datetime, *, by_manager: bool) -> bool:
    """The customer cancels after the cut-off (a late cancellation, which costs the fee)."""
    return not by_manager and refunds.customer_cutoff_passed(booking, bookable, now)


def fees_of(s: Session, booking_id: int) -> list[FeeView]:
    return [fee_view(f) for f in s.exec(select(BookingFee).where(BookingFee.booking_id == booking_id)
                                        .order_by(BookingFee.id)).all()]  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# Owed (inside the booking's transaction)
# ----------------------------------------------------------------------------------------

def assess(s: Session, booking: Booking, bookable: Bookable | None, kind: str, *, actor_id: int | None) -> int | None:
    """Record the booking's fee of `kind` as due (once); the id of the new fee, or None
    when the bookable charges none or it was recorded already."""
    amount = fee_amount(bookable, kind)
    if amount <= 0 or booking.id is None:
        return None
    if s.exec(select(BookingFee.id).where(BookingFee.booking_id == booking.id, BookingFee.kind == kind)).first():
        return None
    fee = BookingFee(booking_id=booking.id, kind=kind, amount_cents=amount, currency=booking.currency)
    s.add(fee)
    s.flush()
    booking.fees_cents = (booking.fees_cents or 0) + amount
    s.add(booking)
    audit.record(s, actor_id=actor_id, action="fee.assessed", entity="booking", entity_id=booking.id,
                 data={"fee_id": fee.id, "kind": kind, "amount_cents": amount})
    return fee.id


def on_no_show(s: Session, booking: Booking, *, actor_id: int | None) -> int | None:
    """Hook of bookings._finish when a booking is marked no-show."""
    return assess(s, booking, s.get(Bookable, booking.bookable_id), "no_show", actor_id=actor_id)


def on_cancel(s: Session, booking: Booking, bookable: Bookable, now: dt.datetime, *, by_manager: bool,
              actor_id: int | None) -> int | None:
    """Hook of bookings.cancel: a customer's cancellation after the cut-off owes the fee."""
    if not is_late_cancel(booking, bookable, now, by_manager=by_manager):
        return None
    return assess(s, booking, bookable, "late_cancel", actor_id=actor_id)


# ----------------------------------------------------------------------------------------
# Collected (after commit)
# ----------------------------------------------------------------------------------------

def owed_fee_ids(booking_id: int) -> list[int]:
    """The booking's fees not charged yet and never tried."""
    with db.read_session() as s:
        return [int(i) for i in s.exec(select(BookingFee.id).where(
            BookingFee.booking_id == booking_id, BookingFee.status == "due",
            BookingFee.attempts == 0).order_by(BookingFee.id)).all()]  # type: ignore[arg-type]


def charge_owed(booking_id: int) -> list[FeeView]:
    """Charge the booking's new fees (after the transaction that recorded them)."""
    out = []
    for fee_id in owed_fee_ids(booking_id):
        try:
            out.append(charge(fee_id))
        except Exception:  # the fee stays due, recorded; the provider sees it
            log.exception("fee %s not charged", fee_id)
    return out


def _claim(fee_id: int, *, actor_id: int | None = None) -> tuple[BookingFee, Booking] | None:
    """The fee, moved due/failed → charging under its row lock (PostgreSQL: FOR UPDATE;
    SQLite: the one writer), or None when it is not to be charged: the only way into a
    charge, so concurrent callers charge it once. `actor_id`: who asked again (audited)."""
    with db.unit_of_work() as s:
        stmt = select(BookingFee).where(BookingFee.id == fee_id)
        if db.is_postgres(s):
            stmt = stmt.with_for_update()
        fee = s.exec(stmt).first()
        if fee is None or fee.status not in ("due", "failed"):
            return None
        booking = s.get(Booking, fee.booking_id)
        if booking is None:
            return None
        fee.status = "charging"
        fee.attempts += 1
        fee.updated_at = utcnow()
        s.add(fee)
        if actor_id is not None:
            audit.record(s, actor_id=actor_id, action="fee.charge_again", entity="booking", entity_id=booking.id,
                         data={"fee_id": fee.id, "kind": fee.kind, "amount_cents": fee.amount_cents,
                               "attempt": fee.attempts})
        s.flush()
        s.expunge(fee)
        s.expunge(booking)
        return fee, booking


def _finish(fee_id: int, *, status: str, last_error: str | None = None, intent: str | None = None,
            checkout: stripe_gateway.CheckoutSession | None = None) -> FeeView:
    """Record a charge's outcome, once: a fee no longer `charging` (a slow process finishing
    after the sweep recovered its charge with the same idempotency key, hence the same
    outcome) is left as it is."""
    with db.unit_of_work() as s:
        stmt = select(BookingFee).where(BookingFee.id == fee_id)
        if db.is_postgres(s):
            stmt = stmt.with_for_update()
        fee = s.exec(stmt).first()
        assert fee is not None
        if fee.status != "charging":
            return fee_view(fee)
        fee.status = status
        fee.last_error = last_error[:1000] if last_error else None
        fee.payment_intent_ref = intent or fee.payment_intent_ref
        if checkout is not None:
            fee.checkout_ref, fee.checkout_url = checkout.id, checkout.url
        fee.updated_at = utcnow()
        s.add(fee)
        booking = s.get(Booking, fee.booking_id)
        assert booking is not None
        audit.record(s, actor_id=None, action=f"fee.{status}", entity="booking", entity_id=booking.id,
                     data={"fee_id": fee.id, "kind": fee.kind, "amount_cents": fee.amount_cents,
                           "error": fee.last_error or ""})
        template = {"charged": CHARGED_TEMPLATE, "failed": DUE_TEMPLATE, "requires_action": ACTION_TEMPLATE,
                    "due": DUE_TEMPLATE}[status]
        if status != "due" or fee.attempts <= 1:
            notify_fee(s, booking, fee, template)
        if status in ("charged", "failed"):
            notify.fee_event(s, booking=booking, event=f"fee_{status}", fee=fee_data(fee))
        s.flush()
        return fee_view(fee)


def charge(fee_id: int) -> FeeView:
    """Collect one owed fee with the booking's saved card (see the module docstring)."""
    claimed = _claim(fee_id)
    if claimed is None:
        with db.read_session() as s:
            fee = s.get(BookingFee, fee_id)
            assert fee is not None
            return fee_view(fee)
    return _collect(*claimed)


def offers_retry(f: FeeView) -> bool:
    """Whether "charge again" is worth offering for this fee: still owed, tried, and the last
    try said why it failed (declined, no card saved yet, Stripe unreachable). A fee recorded
    without Stripe (no error) would only stay due."""
    return f.status in RETRYABLE and f.attempts > 0 and bool(f.last_error)


def charge_again(*, actor: Actor, fee_id: Any) -> FeeView:
    """"Charge again" (UI button, `POST /api/fees/{id}/charge`): the booking's provider or an
    admin retries a fee that is still owed and not under way — declined (`failed`) or not
    collected (`due`). Its customer: Forbidden; anyone else: NotFound. Paid, being charged,
    or waiting for the customer's authentication → Conflict (also for the loser of two
    retries at once: `_claim` lets one through)."""
    fid = fee_id if isinstance(fee_id, int) and not isinstance(fee_id, bool) else None
    with db.read_session() as s:
        fee = s.get(BookingFee, fid) if fid is not None else None
        if fee is None:
            raise NotFound(FEE_NOT_FOUND)
        try:
            _owner, manager = access(actor, s.get(Booking, fee.booking_id), None)
        except NotFound:
            raise NotFound(FEE_NOT_FOUND) from None
        if not manager:
            raise Forbidden(PROVIDER_ONLY)
        if fee.status not in RETRYABLE:
            raise Conflict(NOT_RETRYABLE.get(fee.status, CANNOT_RETRY))
    assert fid is not None
    claimed = _claim(fid, actor_id=actor.id)
    if claimed is None:  # changed since it was read: charged or being charged by someone else
        with db.read_session() as s:
            now_status = getattr(s.get(BookingFee, fid), "status", "")
        raise Conflict(NOT_RETRYABLE.get(now_status, NOT_RETRYABLE["charging"]))
    return _collect(*claimed)


def _collect(fee: BookingFee, booking: Booking) -> FeeView:
    """Charge a claimed fee (status `charging`) and record the outcome."""
    fee_id = fee.id
    assert fee_id is not None
    gateway = get_gateway()
    if gateway is None or not booking.stripe_customer_ref:
        return _finish(fee_id, status="due", last_error=None if gateway is None else "no saved card")
    key = stripe_idempotency_key("fee", fee.id, fee.created_at) + f"-{fee.attempts}"
    metadata = {"booking_id": str(booking.id), "fee_id": str(fee.id), "kind": fee.kind}
    try:
        card = gateway.saved_card(booking.stripe_customer_ref)
        if card is None:
            return _finish(fee_id, status="due", last_error="no saved card")
        result = gateway.charge_off_session(customer=booking.stripe_customer_ref, payment_method=card,
                                            amount_cents=fee.amount_cents, currency=fee.currency,
                                            idempotency_key=key, metadata=metadata)
    except stripe_gateway.GatewayError as exc:
        if exc.kind == "card":
            return _finish(fee_id, status="failed", last_error=f"{exc.code or 'card_declined'}: {exc.message}")
        return _finish(fee_id, status="due", last_error=f"{exc.kind}: {exc.message}")
    if result.status == "succeeded":
        return _finish(fee_id, status="charged", intent=result.id)
    if result.status != "requires_action":
        return _finish(fee_id, status="failed", intent=result.id, last_error=f"payment {result.status}")
    # the bank wants the customer: a hosted page where they authenticate and pay
    try:
        session = gateway.create_checkout_session(_fee_checkout(fee, booking))
    except stripe_gateway.GatewayError as exc:
        return _finish(fee_id, status="failed", intent=result.id, last_error=f"authentication_required; {exc.message}")
    return _finish(fee_id, status="requires_action", intent=result.id, checkout=session,
                   last_error="authentication_required")


def _reclaim(fee_id: int, now: dt.datetime) -> tuple[BookingFee, Booking, bool] | None:
    """An interrupted charge taken over under its row lock (as `_claim`; SKIP LOCKED on
    PostgreSQL, the one writer on SQLite): only while still `charging` and untouched for
    STALE_CHARGING, so of two sweeps one takes it. Its claim time is refreshed and its
    attempt number kept (the same idempotency key). Audited `fee.charge_recovered`.
    → (fee, booking, whether the charge is re-run), or None."""
    with db.unit_of_work() as s:
        stmt = select(BookingFee).where(BookingFee.id == fee_id, BookingFee.status == "charging",
                                        BookingFee.updated_at < now - STALE_CHARGING)
        if db.is_postgres(s):
            stmt = stmt.with_for_update(skip_locked=True)
        fee = s.exec(stmt).first()
        booking = s.get(Booking, fee.booking_id) if fee is not None else None
        if fee is None or booking is None:
            return None
        recharge = fee.updated_at >= now - IDEMPOTENCY_WINDOW
        audit.record(s, actor_id=None, action="fee.charge_recovered", entity="booking", entity_id=booking.id,
                     data={"fee_id": fee.id, "kind": fee.kind, "amount_cents": fee.amount_cents,
                           "attempt": fee.attempts, "claimed_at": fee.updated_at.isoformat(), "recharge": recharge})
        fee.updated_at = utcnow()
        s.add(fee)
        s.flush()
        s.expunge(fee)
        s.expunge(booking)
        return fee, booking, recharge


def recover_charge(fee_id: int, *, now: dt.datetime | None = None) -> FeeView | None:
    """Finish one interrupted charge (see `_reclaim`): collect it again with the interrupted
    attempt's idempotency key (Stripe answers a call that reached it with the same
    PaymentIntent; one that did not is charged now; without Stripe the fee is `due`), or,
    claimed beyond IDEMPOTENCY_WINDOW, put it back to `due`. None when not taken."""
    taken = _reclaim(fee_id, now or utcnow())
    if taken is None:
        return None
    fee, booking, recharge = taken
    if not recharge:
        assert fee.id is not None
        return _finish(fee.id, status="due", last_error=INTERRUPTED_TOO_LONG)
    return _collect(fee, booking)


def recover_stale_charges(*, now: dt.datetime | None = None, limit: int = RECOVER_BATCH) -> int:
    """Job sweep: finish the fees left `charging` for STALE_CHARGING (`recover_charge`).
    Returns how many it took over."""
    now = now or utcnow()
    with db.read_session() as s:
        ids = [int(i) for i in s.exec(select(BookingFee.id).where(
            BookingFee.status == "charging", BookingFee.updated_at < now - STALE_CHARGING)
            .order_by(BookingFee.id).limit(limit)).all()]  # type: ignore[arg-type]
    recovered = 0
    for fee_id in ids:
        try:
            recovered += recover_charge(fee_id, now=now) is not None
        except Exception:  # the next run takes it again once STALE_CHARGING has passed
            log.exception("interrupted charge of fee %s not recovered", fee_id)
    return recovered


def _fee_checkout(fee: BookingFee, booking: Booking) -> stripe_gateway.CheckoutRequest:
    base = get_settings().public_url.rstrip("/")
    now = utcnow()
    return stripe_gateway.CheckoutRequest(
        idempotency_key=stripe_idempotency_key("fee-checkout", fee.id, fee.created_at) + f"-{fee.attempts}",
        booking_id=booking.id or 0, payment_id=0, amount_cents=fee.amount_cents, currency=fee.currency,
        product_name=f"Fee ({booking.reference})", method_types=("card",),
        success_url=f"{base}/bookings/{booking.id}/payment?result=success",
        cancel_url=f"{base}/bookings/{booking.id}/payment?result=cancel",
        expires_at=(now + stripe_gateway.CHECKOUT_MAX_LIFETIME - dt.timedelta(minutes=5)).replace(microsecond=0),
        customer=booking.stripe_customer_ref, locale=booking.locale,
        extra_metadata={"fee_id": str(fee.id), "purpose": "fee"})


def apply_checkout_paid(s: Session, obj: dict[str, Any]) -> str:
    """Webhook effect: the customer paid a fee's Checkout link (checkout.session.completed
    whose metadata names a fee)."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    fee_ref = str(metadata.get("fee_id") or "")
    if not fee_ref.isdigit() or len(fee_ref) > 10:
        return "ignored"
    fee = s.get(BookingFee, int(fee_ref))
    if fee is None or fee.checkout_ref != obj.get("id") or fee.status == "charged":
        return "ignored"
    if obj.get("payment_status") != "paid" or int(obj.get("amount_total") or 0) != fee.amount_cents:
        return "ignored"
    pi = obj.get("payment_intent")
    fee.payment_intent_ref = str(pi.get("id") if isinstance(pi, dict) else pi or "") or fee.payment_intent_ref
    fee.status = "charged"
    fee.last_error = None
    fee.checkout_url = None
    fee.updated_at = utcnow()
    s.add(fee)
    booking = s.get(Booking, fee.booking_id)
    if booking is not None:
        audit.record(s, actor_id=None, action="fee.charged", entity="booking", entity_id=booking.id,
                     data={"fee_id": fee.id, "kind": fee.kind, "amount_cents": fee.amount_cents, "via": "checkout"})
        notify_fee(s, booking, fee, CHARGED_TEMPLATE)
        notify.fee_event(s, booking=booking, event="fee_charged", fee=fee_data(fee))
    return "processed"


def fee_data(fee: BookingFee) -> dict[str, Any]:
    """`data.fee` of a webhook event (docs/webhooks.md)."""
    return {"id": fee.id, "booking_id": fee.booking_id, "kind": fee.kind, "amount_cents": fee.amount_cents,
            "currency": fee.currency, "status": fee.status, "attempts": fee.attempts, "last_error": fee.last_error}


def notify_fee(s: Session, booking: Booking, fee: BookingFee, template: str) -> None:
    """The customer's email about a fee (charged, due, or the link to authenticate)."""
    bookable = s.get(Bookable, booking.bookable_id)
    customer = outbox.customer_of(s, booking, bookable)
    if not customer.wants_email or not customer.email:
        return
    context = outbox.personal(outbox.booking_snapshot(s, booking, bookable), customer,
                              amount_cents=fee.amount_cents, amount_currency=fee.currency, fee_kind=fee.kind)
    if template == ACTION_TEMPLATE and fee.checkout_url:
        context["fee_url"] = fee.checkout_url
    outbox.enqueue(s, channel="email", to=customer.email, template=template, locale=customer.locale,
                   context=context, dedupe_key=f"email:{template}:{fee.id}:{fee.attempts}", booking_id=booking.id,
                   user_id=booking.user_id)


def fees_by_booking(booking_ids: list[int]) -> dict[int, list[FeeView]]:
    """The fees of these bookings (one query; the caller lists only bookings it may see)."""
    if not booking_ids:
        return {}
    out: dict[int, list[FeeView]] = {}
    with db.read_session() as s:
        for f in s.exec(select(BookingFee).where(BookingFee.booking_id.in_(booking_ids))  # type: ignore[attr-defined]
                        .order_by(BookingFee.id)).all():  # type: ignore[arg-type]
            out.setdefault(f.booking_id, []).append(fee_view(f))
    return out


# ----------------------------------------------------------------------------------------
# Revenue reports (services/reports.py revenue: the fees_cents column)
# ----------------------------------------------------------------------------------------

def revenue_fees(s: Session, period: report_sql.Period, group_by: str | None) -> dict[tuple, int]:
    """Fees collected in the period (status charged, dated by when they were collected), in
    the revenue report's grouping: (day | bookable id | "card" | nothing, currency) → cents."""
    ts = BookingFee.updated_at
    if group_by == "day":
        keys: list[Any] = [report_sql.local_day(s, ts, period).label("day")]
    elif group_by == "service":
        keys = [Booking.bookable_id]
    elif group_by == "method":
        keys = [literal("card").label("method")]  # fees are charged to the saved card (or its link)
    else:
        keys = []
    stmt = select(*keys, BookingFee.currency, func.sum(BookingFee.amount_cents)).where(
        BookingFee.status == "charged", period.within(ts))
    if group_by == "service":
        stmt = stmt.join(Booking, Booking.id == BookingFee.booking_id)
    out: dict[tuple, int] = {}
    for r in s.execute(stmt.group_by(*keys, BookingFee.currency)):
        key = tuple(report_sql.day_str(v) if group_by == "day" and i == 0 else v for i, v in enumerate(r[:-1]))
        out[key] = out.get(key, 0) + report_sql.as_int(r[-1])
    return out


def add_fee_column(s: Session, rows: list[dict[str, Any]], collected: dict[tuple, int],
                   key: tuple[str, ...]) -> list[dict[str, Any]]:
    """The revenue rows with `fees_cents` (fees collected; net_cents stays gross − refunds of
    payments), plus rows for groups that only collected fees."""
    left = dict(collected)
    for row in rows:
        row["fees_cents"] = left.pop((*(row[k] for k in key if k != "service_name"), row["currency"]), 0)
    names: dict[int, str] = {}
    if "service_id" in key and left:
        ids = sorted({k[0] for k in left})
        names = dict(s.execute(select(Bookable.id, Bookable.name).where(Bookable.id.in_(ids))).all())  # type: ignore[arg-type,attr-defined]
    for k, cents in sorted(left.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        row = dict(zip([c for c in key if c != "service_name"], k[:-1]))
        if "service_id" in key:
            row["service_name"] = names.get(k[0])
        rows.append({**row, "currency": k[-1], "payments": 0, "gross_cents": 0, "refunds_cents": 0, "net_cents": 0,
                     "fees_cents": cents})
    if "day" in key:
        rows.sort(key=lambda r: (r["day"], r["currency"]))
    return rows
