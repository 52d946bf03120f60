"""Booking Service: book, reschedule, cancel, complete / no-show, confirm a payment, the
sweeps of expired holds and past bookings.

Never oversell (ARCHITECTURE.md, "No double booking", "One capacity engine"): every change
of what a slot holds goes through services/capacity.py — a lock-bounded unit of work, the
capacity lock, the re-count under it (on PostgreSQL writes, lock, re-count and COMMIT in one
round trip). `book` is the hot path: one statement reads the bookable, provider, customer
and new id (services/booking_rows.py), the writes are Core inserts collected for the final
pipeline. Why it is shaped so, with the figures: docs/performance.md.

Every state change bumps `version` (and `sequence` when the customer's calendar must
follow), writes an AuditEvent and an outbox row in the same transaction. Reads and access
rules: services/booking_queries.py; guests' rules, requests and manage-link requests:
services/guest_bookings.py; manage tokens: services/manage_links.py; idempotency records:
services/idempotency.py.
"""
from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import (
    ACTIVE_STATUSES,
    AuditEvent,
    Bookable,
    Booking,
    BookingStatus,
    EventSession,
    Notification,
)
from booking_app.models.base import utcnow
from booking_app.models.booking import HELD_STATUSES, GuestBookingRequest
from booking_app.services import approvals, audit, booking_questions, capacity, idempotency, notify, refunds, validation
from booking_app.services import pricing  # discount codes (issue 26): what a booking costs
from booking_app.services import waitlist  # waitlist (issue 24): freed seats offered to the queue
from booking_app.services import deposits, fees  # deposits and fees (issue 26)
from booking_app.services.actors import Actor
from booking_app.services.availability import resolve_start, resolve_start_with_usage
from booking_app.services.booking_queries import BookingView, access, booking_view, check_payment_method, full_view, may_see
from booking_app.services.booking_rows import PlainRow, load_bookable_and_people
from booking_app.services.errors import Busy, Conflict, Forbidden, InvalidInput, NotAvailable, NotFound, Unauthorized
from booking_app.services.guest_bookings import (
    CONFIRM_FIRST,
    GUEST_QUANTITY,
    REQUEST_NOT_VALID,
    GuestLimits,
    check_guest_caps,
    count_guest_request,
    guest_fields,
    guest_ip_key,
    lock_guest,
    request_signature,
)
from booking_app.services.manage_links import token_id
from booking_app.services.slots import SlotShape, is_active
from booking_app.services.validation import parse_aware_datetime, parse_int


def book(
    *,
    actor: Actor,
    service_id: int,
    start: dt.datetime | str,
    quantity: int = 1,
    notes: str | None = "",
    guest: Mapping[str, Any] | Any | None = None,
    idempotency_key: str | None = None,
    payment_method: str | None = None,
    client_ip: str | None = None,
    manage_token: str | None = None,
    now: dt.datetime | None = None,
    answers: Mapping[str, Any] | None = None,
    discount_code: str | None = None,
) -> BookingView:
    """Book `quantity` seats of bookable `service_id` at `start` (an aware datetime or an
    ISO string with offset; must be a free slot start, or a session start for events).

    Anonymous guests (issue 20): at most GUEST_MAX_QUANTITY seats (InvalidInput), at most
    GUEST_MAX_HOLDS_PER_EMAIL / _PER_IP active unpaid guest bookings (Conflict), rate-limited
    per email address and `client_ip` (RateLimited), held GUEST_HOLD_MINUTES while unpaid;
    with GUEST_EMAIL_CONFIRMATION they can't book directly (`request_guest_booking`).

    Signed-in users book for themselves; guests must give `guest={name, email, phone?}`
    (providers/admins may also pass `guest` to book for a walk-in customer). Status:
    `confirmed` when the price is 0, `payment_method == "on_site"`, or Stripe is disabled
    and no method is given; otherwise `pending` with `hold_expires_at = now + HOLD_MINUTES`.
    `idempotency_key`: the same key and request replays the first booking; the same key
    with a different request → InvalidInput; a replay re-checks access first (`_may_replay`:
    a guest's needs `manage_token` once IDEMPOTENCY_GUEST_REPLAY_SECONDS have passed).
    `answers`: {question id: value} for the bookable's questions (services/booking_questions.py).
    `discount_code`: checked and redeemed under the code's lock (pricing.quote_with_code); the
    price is always computed here (pricing), never taken from the client.
    Errors: NotFound (unknown/inactive bookable),
    InvalidInput, NotAvailable (taken, full, outside hours, past, notice/advance), Busy."""
    return _book_checked(actor=actor, service_id=service_id, start=start, quantity=quantity, notes=notes, guest=guest,
                         idempotency_key=idempotency_key, payment_method=payment_method, now=now,
                         limits_ip_key=guest_ip_key(client_ip), email_confirmed=False, manage_token=manage_token,
                         answers=answers, discount_code=discount_code)


def _book_checked(*, actor: Actor, service_id: int, start: dt.datetime | str, quantity: int, notes: str | None,
                  guest: Mapping[str, Any] | Any | None, idempotency_key: str | None, payment_method: str | None,
                  now: dt.datetime | None, limits_ip_key: str | None, email_confirmed: bool,
                  manage_token: str | None = None, replay_trusted: bool = False,
                  answers: Mapping[str, Any] | None = None, discount_code: str | None = None) -> BookingView:
    """`book`, for a guest whose email address may already be confirmed (a confirmed
    request: `email_confirmed`, not rate-limited again) and whose client is `limits_ip_key`."""
    now = now or utcnow()
    start_at = parse_aware_datetime(start, field="start")
    quantity = parse_int(quantity, field="quantity", lo=1, hi=capacity.MAX_QUANTITY)
    notes_text = validation.text(notes, field="notes", max_length=2000, multiline=True)
    method = check_payment_method(payment_method)
    key = idempotency.check_key(idempotency_key)
    guest_name = guest_email = guest_phone = None
    limits: GuestLimits | None = None
    if actor.is_guest:
        if actor.role != "guest":  # Actor.system(): jobs don't book
            raise Forbidden()
        settings = get_settings()
        if settings.guest_email_confirmation and not email_confirmed:
            raise InvalidInput(CONFIRM_FIRST, field="guest")
        if guest is None:
            raise InvalidInput(N_("Give your name and email address to book as a guest."), field="guest")
        guest_name, guest_email, guest_phone = guest_fields(guest)
        if quantity > settings.guest_max_quantity:
            raise InvalidInput(GUEST_QUANTITY, field="quantity", max=settings.guest_max_quantity)
        limits = GuestLimits(email=guest_email, ip_key=limits_ip_key, count_rate=not email_confirmed)
    elif guest is not None:
        if not (actor.is_admin or actor.is_provider):
            raise InvalidInput(N_("Signed-in customers book for themselves."), field="guest")
        guest_name, guest_email, guest_phone = guest_fields(guest)
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise NotFound(N_("This service does not exist."))
    scope = "" if key is None else idempotency.scope_for("booking", user_id=actor.id, email=guest_email)
    req_hash = "" if key is None else idempotency.fingerprint(  # (only an idempotency key needs it)
        {"service_id": service_id, "start": start_at.isoformat(), "quantity": quantity, "notes": notes_text,
         "guest": [guest_name, guest_email, guest_phone], "payment_method": method,
         **({"answers": answers} if answers else {}),
         **({"discount_code": discount_code} if discount_code is not None else {})})
    if key is not None:
        replayed = _replay(scope, key, req_hash, actor=actor, manage_token=manage_token, trusted=replay_trusted)
        if replayed is not None:
            return replayed
    try:
        return _book(actor=actor, service_id=service_id, start_at=start_at, quantity=quantity, notes=notes_text,
                     guest=(guest_name, guest_email, guest_phone), method=method, key=key, scope=scope,
                     req_hash=req_hash, now=now, limits=limits, answers=answers, discount_code=discount_code)
    except (IntegrityError, capacity.DuplicateRequest):
        # a concurrent request with the same idempotency key committed first
        if key is not None:
            replayed = _replay(scope, key, req_hash, actor=actor, manage_token=manage_token, trusted=replay_trusted)
            if replayed is not None:
                return replayed
        raise Busy(retry_after=1) from None


def _book(*, actor: Actor, service_id: int, start_at: dt.datetime, quantity: int, notes: str,
          guest: tuple[str | None, str | None, str | None], method: str | None, key: str | None, scope: str,
          req_hash: str, now: dt.datetime, limits: GuestLimits | None = None,
          answers: Mapping[str, Any] | None = None, discount_code: str | None = None) -> BookingView:
    settings = get_settings()
    customer_id = actor.id if actor.id is not None and guest[1] is None else None
    # (lock waits: bounded by the write statement's own lock timeout, capacity.pg_writes_then_lock_sql)
    with capacity.transaction(set_lock_timeout=False) as s, capacity.implicit_transactions(s) as implicit:
        writes = capacity.BookingWrites(s)
        # one query: the bookable, its provider, the booking customer (and on PostgreSQL the
        # new booking's id, so that every write can go out in the final round trip, and the
        # webhook endpoints listening)
        b, provider, user, new_id, prefetched, heard_by = load_bookable_and_people(s, service_id, customer_id,
                                                                                    start_at, quantity, now)
        if b is None or not b.is_active:
            raise NotFound(N_("This service does not exist."))
        # booking questions: checked only when asked or answered (no work otherwise)
        snapshot = booking_questions.check_answers(b.questions, answers) if b.questions or answers else None
        shape, used, expired_holds = resolve_start_with_usage(s, b, start_at, now, quantity=quantity,
                                                              prefetched=prefetched)
        if quantity > shape.capacity:
            raise InvalidInput(capacity.AT_MOST_SEATS, field="quantity", max=shape.capacity)
        # fast fail without writing anything (authoritative on SQLite, whose write lock we
        # hold; on PostgreSQL the re-count under the advisory lock below decides)
        if used + quantity > shape.capacity:
            raise NotAvailable()
        if limits is not None:  # an anonymous guest: rate, then caps, under the guest's locks
            if implicit:
                capacity.explicit_transaction(s)  # (counts and booking: one transaction)
                implicit = False
            lock_guest(s, limits.email, limits.ip_key)
            if limits.count_rate:
                count_guest_request(s, "booking", limits.email, limits.ip_key)
            check_guest_caps(s, limits.email, limits.ip_key, now)
        if discount_code is not None:  # (discount codes: the code row locked, its uses counted, in this transaction)
            if implicit:
                capacity.explicit_transaction(s)
                implicit = False
            quote = pricing.quote_with_code(s, b, quantity, discount_code, customer_id=customer_id, email=guest[1],
                                            now=now)
        else:
            quote = pricing.quote(b, quantity)  # (no query)
        if expired_holds:
            if implicit:
                capacity.explicit_transaction(s)  # (expiring them and booking: one transaction)
            _sweep_overlapping_holds(s, b, shape, now)
        price = quote.price_cents
        confirmed = price == 0 or method == "on_site" or (method is None and not settings.stripe_enabled)
        approval = approvals.request_fields(b, shape.start, now, method,  # (issue 24; no query)
                                            by_staff=actor.is_admin or actor.id == b.provider_id)
        user_locale = actor.locale
        if customer_id is not None:
            if user is None or not user.is_active:
                raise Unauthorized()
            user_locale = user.locale or actor.locale
        row = {**_INSERT_DEFAULTS,
               "reference": _new_reference(), "bookable_id": b.id, "provider_id": b.provider_id,
               "session_id": shape.session_id, "user_id": actor.id if guest[1] is None else None,
               "guest_name": guest[0], "guest_email": guest[1], "guest_phone": guest[2],
               "locale": user_locale or "en", "start_at": shape.start, "end_at": shape.end,
               "block_start_at": shape.block_start, "block_end_at": shape.block_end,
               "exclusive": b.capacity == 1 and b.kind != "event", "quantity": quantity,
               "status": BookingStatus.confirmed.value if confirmed else BookingStatus.pending.value,
               "hold_expires_at": None if confirmed else now + dt.timedelta(
                   minutes=settings.guest_hold_minutes if limits is not None else settings.hold_minutes),
               "guest_ip": limits.ip_key if limits is not None else None,
               "price_cents": price, "currency": b.currency, "notes": notes, "created_at": now, "updated_at": now,
               "list_price_cents": quote.list_price_cents, "discount_cents": quote.discount_cents,
               "discount_code_id": quote.discount_code_id}
        row.update(deposits.split(b, price, online=not confirmed))  # deposits (issue 26; no query)
        if snapshot:
            row["answers"] = snapshot
        if approval is not None:  # awaiting the provider's approval (services/approvals.py)
            row.update(approval)
        # Core inserts (the ORM unit of work cost more CPU than the round trips): the
        # booking, its outbox rows, the audit event, the idempotency record. The booking is
        # a plain row object (`PlainRow`), never in the session.
        if new_id is not None:
            row["id"] = new_id
            writes.insert(_BOOKINGS, [row])
        else:
            row["id"] = s.connection().execute(_INSERT_BOOKING, row).scalar_one()
        bk: Any = PlainRow({**_BOOKING_DEFAULTS, **row})
        writes.insert(_NOTIFICATIONS, notify.booking_event_values(
            s, booking=bk, event=("booking_confirmed" if confirmed else "booking_pending") if approval is None
            else "booking_awaiting_approval",
            extra={"actor_id": actor.id}, bookable=b, customer=user, provider=provider, heard_by=heard_by),
                     on_conflict="dedupe_key")
        at = utcnow()
        writes.insert(_AUDIT, [{"actor_id": actor.id, "action": "booking.created", "entity": "booking",
                                "entity_id": str(bk.id), "at": at,
                                "data": {"bookable_id": b.id, "start": bk.start_at.isoformat(),
                                         "quantity": quantity, "status": bk.status, "payment_method": method}}])
        if key is not None:
            writes.insert(idempotency.TABLE, [idempotency.record_values(scope, key, req_hash, resource_id=bk.id,
                                                                        status_code=201, at=at)])
        capacity.recount_or_fail(s, b, shape, quantity, bk.id, now, writes.items)  # type: ignore[arg-type]
        return booking_view(bk, b)


_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_BOOKINGS = Booking.__table__  # type: ignore[attr-defined]
_NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT_BOOKING = _BOOKINGS.insert().returning(_BOOKINGS.c.id)
#: a new booking's column defaults (the model's), for the Core insert
_BOOKING_DEFAULTS = {name: field.default for name, field in Booking.model_fields.items()
                     if name != "id" and field.default is not PydanticUndefined}
#: columns the database fills the same when the insert leaves them out (NULL, or a server
#: default equal to the model's): sent only when set, fewer parameters per booking
_DB_FILLED = ("cancel_reason", "cancelled_at", "approval_expires_at", "approval_method", "series_id", "answers",
              "fees_cents", "stripe_customer_ref")
_INSERT_DEFAULTS = {k: v for k, v in _BOOKING_DEFAULTS.items() if k not in _DB_FILLED}


def _new_reference() -> str:
    # one urandom call; 256 is a multiple of the 32-letter alphabet, so every letter is equally likely
    return "".join(_REF_ALPHABET[x % 32] for x in secrets.token_bytes(8))


def _replay(scope: str, key: str, request_hash: str, *, actor: Actor,
            manage_token: str | None = None, trusted: bool = False) -> BookingView | None:
    """The booking an earlier request with this key made, if any — for a caller who may see
    it (`_may_replay`; `trusted`: the caller already proved access, e.g. by a guest's email
    confirmation link); NotFound for anyone else."""
    with db.read_session() as s:
        rec = idempotency.lookup(s, scope, key)
        if rec is None:
            return None
        bk = s.get(Booking, rec.resource_id) if rec.resource_id is not None else None
        if bk is not None and not trusted and not _may_replay(actor, bk, rec.created_at, manage_token):
            # as if the key were unknown to them: before learning whether (or how) it was used
            raise NotFound(N_("This booking does not exist."))
        if rec.request_hash != request_hash:
            raise InvalidInput(N_("This idempotency key was already used for a different request."),
                               field="idempotency_key")
        if bk is None:
            return None
        return full_view(s, bk)


def confirm_guest_request(*, token: str | None, now: dt.datetime | None = None) -> BookingView:
    """Open a booking request's confirmation link: the guest has shown they read the
    address, so the booking is made now, through the normal capacity path (NotAvailable
    when the seats went meanwhile) and the guest rules (caps, quantity), then goes on as
    any guest booking (pending until paid, or confirmed). Opening the link again before it
    expires shows the same booking. A wrong or expired token → NotFound."""
    now = now or utcnow()
    request_id = token_id(token)
    with db.read_session() as rs:
        req = rs.get(GuestBookingRequest, request_id) if request_id is not None else None
        if req is None or not hmac.compare_digest(str(token).partition(".")[2].encode(),
                                                  request_signature(req.id, req.expires_at).encode()):  # type: ignore[arg-type]
            raise NotFound(REQUEST_NOT_VALID)
        if now > req.expires_at:  # (also once used: the booking's own emails carry its manage link)
            raise NotFound(REQUEST_NOT_VALID)
        if req.booking_id is not None:
            bk = rs.get(Booking, req.booking_id)
            if bk is not None:
                return full_view(rs, bk)
    view = _book_checked(
        actor=Actor.guest(locale=req.locale), service_id=req.bookable_id, start=req.start_at, quantity=req.quantity,
        notes=req.notes, guest={"name": req.guest_name, "email": req.guest_email, "phone": req.guest_phone},
        idempotency_key=f"guest-request:{req.id}", payment_method=req.payment_method, now=now,
        limits_ip_key=req.guest_ip, email_confirmed=True, replay_trusted=True, answers=req.answers,
        discount_code=req.discount_code)  # (the link proved access)
    with capacity.transaction() as s:
        s.exec(update(GuestBookingRequest).where(GuestBookingRequest.id == req.id,  # type: ignore[call-overload, arg-type]
                                                 GuestBookingRequest.booking_id.is_(None))  # type: ignore[union-attr]
               .values(booking_id=view.id))
    return view


def _lock_for_change(s: Session, actor: Actor, booking_id: Any, manage_token: str | None) -> tuple[Booking, bool, bool]:
    """The booking, locked in the capacity transaction `s` (whose lock timeout bounds the
    wait), and (owner, manager) as `access` tells; NotFound when the actor may not see it."""
    bk = capacity.lock_booking(s, booking_id, set_lock_timeout=False)
    owner, manager = access(actor, bk, manage_token)
    assert bk is not None and bk.id is not None
    return bk, owner, manager


def reschedule(
    *,
    actor: Actor,
    booking_id: int,
    start: dt.datetime | str | None = None,
    quantity: int | None = None,
    notes: str | None = None,
    manage_token: str | None = None,
    now: dt.datetime | None = None,
) -> BookingView:
    """Move a booking to another slot and/or change its seats or notes, atomically: if the
    new slot is taken (NotAvailable) the booking is left exactly as it was. Customers
    (owner, or guest with `manage_token`) respect the cancellation cut-off
    (refunds.check_customer_cutoff); its provider and admins don't. Quantity changes of a paid booking → Conflict."""
    now = now or utcnow()
    new_start = parse_aware_datetime(start, field="start") if start is not None else None
    new_qty = parse_int(quantity, field="quantity", lo=1, hi=capacity.MAX_QUANTITY) if quantity is not None else None
    if new_qty is not None and actor.role == "guest" and new_qty > get_settings().guest_max_quantity:
        # (a guest's manage link can't grow a booking past what a guest may book)
        raise InvalidInput(GUEST_QUANTITY, field="quantity", max=get_settings().guest_max_quantity)
    new_notes = validation.text(notes, field="notes", max_length=2000, multiline=True) if notes is not None else None
    with capacity.transaction() as s:
        bk, owner, manager = _lock_for_change(s, actor, booking_id, manage_token)
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None
        if not is_active(bk.status, bk.hold_expires_at, now):
            raise Conflict(N_("Only pending or confirmed bookings can be changed."))
        moving = new_start is not None and new_start != bk.start_at
        resizing = new_qty is not None and new_qty != bk.quantity
        if (moving or resizing) and not manager:
            refunds.check_customer_cutoff(bk, b, now, what="change")
        if not (moving or resizing):
            if new_notes is not None and new_notes != bk.notes:
                bk.notes = new_notes
                bk.version += 1
                bk.updated_at = now
                s.add(bk)
                audit.record(s, actor_id=actor.id, action="booking.notes_changed", entity="booking", entity_id=bk.id)
            s.flush()
            return full_view(s, bk, b)
        shape = resolve_start(s, b, new_start, now) if moving else _shape_of(s, bk, b)  # type: ignore[arg-type]
        qty = new_qty if new_qty is not None else bk.quantity
        if qty > shape.capacity:
            raise InvalidInput(capacity.AT_MOST_SEATS, field="quantity", max=shape.capacity)
        new_quote = pricing.requote(s, b, qty, bk) if resizing else None  # (its discount code kept)
        new_price = new_quote.price_cents if new_quote is not None else bk.price_cents
        if resizing and new_price != bk.price_cents and refunds.paid_cents(s, bk.id) > 0:
            raise Conflict(N_("The number of seats of a paid booking cannot be changed; cancel it and book again."))
        _sweep_overlapping_holds(s, b, shape, now, exclude_id=bk.id)
        old = {"start": bk.start_at.isoformat(), "quantity": bk.quantity}
        bk.start_at, bk.end_at = shape.start, shape.end
        bk.block_start_at, bk.block_end_at = shape.block_start, shape.block_end
        bk.session_id = shape.session_id
        bk.quantity = qty
        bk.price_cents = new_price
        if new_quote is not None:
            bk.list_price_cents, bk.discount_cents = new_quote.list_price_cents, new_quote.discount_cents
        if new_notes is not None:
            bk.notes = new_notes
        bk.version += 1
        bk.sequence += 1
        bk.updated_at = now
        s.add(bk)
        s.flush()
        audit.record(s, actor_id=actor.id, action="booking.rescheduled", entity="booking", entity_id=bk.id,
                     data={"from": old, "to": {"start": bk.start_at.isoformat(), "quantity": qty}})
        notify.booking_event(s, booking=bk, event="booking_rescheduled",
                             extra={"previous_start": old["start"], "actor_id": actor.id})
        s.flush()
        if moving or qty < old["quantity"]:  # seats freed at the old start: offered to its waitlist
            waitlist.offer_freed(s, bk, now=now, start_at=dt.datetime.fromisoformat(old["start"]),
                                 seats=old["quantity"] if moving else old["quantity"] - qty)
        view = full_view(s, bk, b)  # before the lock: under it only lock, re-count, COMMIT
        capacity.recount_or_fail(s, b, shape, qty, bk.id, now)
        return view


def cancel(
    *,
    actor: Actor,
    booking_id: int,
    reason: str | None = None,
    manage_token: str | None = None,
    now: dt.datetime | None = None,
) -> BookingView:
    """Cancel a pending or confirmed booking; its seats are free at once. Customers
    (owner, or guest with `manage_token`) can't cancel after the start or inside the
    cancellation cut-off (Forbidden, refunds.check_customer_cutoff); the provider and admins may. `refund_due_cents` is
    refunds.refund_due (the one refund rule; payments.cancel_and_refund executes it)."""
    now = now or utcnow()
    reason_text = validation.reason(reason, system=actor.is_system)
    with capacity.transaction() as s:
        bk, owner, manager = _lock_for_change(s, actor, booking_id, manage_token)
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None
        if bk.status not in ACTIVE_STATUSES:
            raise Conflict(N_("This booking can no longer be cancelled."))
        if not manager:
            refunds.check_customer_cutoff(bk, b, now, what="cancel")
        refund = refunds.refund_due(s, bk, b, by_manager=manager)
        bk.status = BookingStatus.cancelled.value
        bk.cancel_reason = reason_text or ("cancelled_by_provider" if manager and not owner else "cancelled_by_customer")
        bk.cancelled_at = now
        bk.refund_due_cents = refund
        fees.on_cancel(s, bk, b, now, by_manager=manager, actor_id=actor.id)  # a late cancellation's fee (issue 26)
        bk.version += 1
        bk.sequence += 1
        bk.updated_at = now
        s.add(bk)
        audit.record(s, actor_id=actor.id, action="booking.cancelled", entity="booking", entity_id=bk.id,
                     data={"reason": bk.cancel_reason, "refund_due_cents": refund, "by_manager": manager})
        notify.booking_event(s, booking=bk, event="booking_cancelled",
                             extra={"refund_due_cents": refund, "reason": bk.cancel_reason, "actor_id": actor.id})
        s.flush()
        waitlist.offer_freed(s, bk, now=now)  # (the freed seats go to the waitlist, in this transaction)
        return full_view(s, bk, b)


def _finish(actor: Actor, booking_id: int, status: str, event: str, now: dt.datetime | None) -> BookingView:
    now = now or utcnow()
    with capacity.transaction() as s:
        bk, owner, manager = _lock_for_change(s, actor, booking_id, None)
        if not manager:
            raise Forbidden(N_("Only the provider can mark a booking completed or no-show."))
        if bk.status != BookingStatus.confirmed.value:
            raise Conflict(N_("Only confirmed bookings can be marked completed or no-show."))
        if now < bk.start_at:
            raise Conflict(N_("This booking has not started yet."))
        bk.status = status
        bk.version += 1
        bk.updated_at = now
        s.add(bk)
        if status == BookingStatus.no_show.value:
            fees.on_no_show(s, bk, actor_id=actor.id)  # the no-show fee (issue 26)
        audit.record(s, actor_id=actor.id, action=f"booking.{status}", entity="booking", entity_id=bk.id)
        notify.booking_event(s, booking=bk, event=event, extra={"actor_id": actor.id})
        s.flush()
        return full_view(s, bk)


def complete(*, actor: Actor, booking_id: int, now: dt.datetime | None = None) -> BookingView:
    """Provider/admin: a confirmed booking that has started → completed."""
    return _finish(actor, booking_id, BookingStatus.completed.value, "booking_completed", now)


def mark_no_show(*, actor: Actor, booking_id: int, now: dt.datetime | None = None) -> BookingView:
    """Provider/admin: a confirmed booking that has started → no_show."""
    return _finish(actor, booking_id, BookingStatus.no_show.value, "booking_no_show", now)


class _SeatGone(Exception):
    pass


def confirm_payment(*, booking_id: int, now: dt.datetime | None = None, actor: Actor | None = None) -> bool:
    """Called by the payments service when a payment succeeded. pending → confirmed when
    the hold is still valid, or — hold expired (swept or not) — when the seats are still
    free (re-counted under the lock). Returns True when the booking is (now) confirmed,
    False when the seats were resold / the booking was cancelled otherwise (refund it)."""
    now = now or utcnow()
    actor = actor or Actor.system()
    try:
        with capacity.transaction() as s:
            bk = capacity.lock_booking(s, booking_id, set_lock_timeout=False)
            if bk is None:
                raise NotFound(N_("This booking does not exist."))
            if bk.status in (BookingStatus.confirmed.value, BookingStatus.completed.value):
                return True
            b = s.get(Bookable, bk.bookable_id)
            assert b is not None and bk.id is not None
            hold_valid = bk.status == BookingStatus.pending.value and is_active(bk.status, bk.hold_expires_at, now)
            revivable = (bk.status == BookingStatus.pending.value
                         or (bk.status == BookingStatus.cancelled.value and bk.cancel_reason == "hold_expired"))
            if not hold_valid and (not revivable or bk.start_at <= now):
                return False
            if not hold_valid and bk.discount_code_id is not None and not pricing.use_still_free(s, bk, now):
                return False  # (discount codes: its code was used up meanwhile; refunded like a resold seat)
            if not hold_valid:  # before touching the row (autoflush would hit the backstop)
                _sweep_overlapping_holds(s, b, _shape_of(s, bk, b), now, exclude_id=bk.id)
            bk.status = BookingStatus.confirmed.value
            bk.hold_expires_at = None
            bk.cancel_reason = None
            bk.cancelled_at = None
            bk.version += 1
            bk.sequence += 1  # the calendar entry goes from tentative to confirmed
            bk.updated_at = now
            s.add(bk)
            s.flush()
            audit.record(s, actor_id=actor.id, action="booking.payment_confirmed", entity="booking", entity_id=bk.id,
                         data={"hold_was_valid": hold_valid})
            notify.booking_event(s, booking=bk, event="booking_confirmed")
            s.flush()
            waitlist.end_offer_of(s, bk, now)  # a waitlist offer paid for: accepted
            if not hold_valid:
                try:
                    capacity.recount_or_fail(s, b, _shape_of(s, bk, b), bk.quantity, bk.id, now)
                except NotAvailable:
                    raise _SeatGone() from None
            return True
    except (_SeatGone, NotAvailable):
        return False


def release_expired_holds(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Job sweep: cancel pending bookings whose hold expired (cancel_reason "hold_expired").
    Safe to run in several processes at once (rows are claimed with SKIP LOCKED on
    PostgreSQL; SQLite has one writer). Returns how many were released."""
    now = now or utcnow()
    with capacity.transaction() as s:
        stmt = select(Booking).where(Booking.status == BookingStatus.pending.value,
                                     Booking.hold_expires_at <= now).order_by(Booking.id).limit(limit)  # type: ignore[operator]
        if db.is_postgres(s):
            stmt = stmt.with_for_update(skip_locked=True)
        rows = s.exec(stmt).all()
        rows = [*rows, *waitlist.lapsed_offer_holds(s, now, skip=list(rows), limit=limit)]  # by offer_expires_at
        # the counter rows the triggers will update, locked first and in id order, not in the
        # bookings' order, which could wait on a move between two sessions waiting on us
        capacity.lock_session_counters(s, (bk.session_id for bk in rows if bk.session_id is not None))
        for bk in rows:
            _expire(s, bk, now)
        s.flush()
        waitlist.freed_many(s, list(rows), now)  # lapsed offers end; freed seats go to the waitlist
        return len(rows)


#: a confirmed booking becomes `completed` this long after its end, which leaves the
#: provider time to mark a no-show first (only confirmed bookings can be marked so)
COMPLETE_AFTER = dt.timedelta(hours=24)
COMPLETE_BATCH = 500


def complete_past_bookings(*, now: dt.datetime | None = None, after: dt.timedelta = COMPLETE_AFTER,
                           limit: int = COMPLETE_BATCH) -> int:
    """Job sweep: mark confirmed bookings that ended more than `after` ago as completed.
    A conditional UPDATE (`WHERE status='confirmed'`) on rows picked with SKIP LOCKED on
    PostgreSQL, so it never waits for (nor overrides) a booking being changed right now.
    Returns how many were completed."""
    now = now or utcnow()
    cutoff = now - after
    with db.unit_of_work(lock_timeout=True) as s:
        pick = (select(Booking.id).where(Booking.status == BookingStatus.confirmed.value, Booking.end_at <= cutoff)
                .order_by(Booking.id).limit(limit))
        if db.is_postgres(s):
            pick = pick.with_for_update(skip_locked=True)
        ids = list(s.exec(pick).all())
        if not ids:
            return 0
        result = s.exec(  # type: ignore[call-overload]
            update(Booking)
            .where(Booking.id.in_(ids), Booking.status == BookingStatus.confirmed.value,  # type: ignore[union-attr]
                   Booking.end_at <= cutoff)
            .values(status=BookingStatus.completed.value, version=Booking.version + 1, updated_at=now)
            .returning(Booking.id)
        )
        done = [row[0] for row in result.all()]
        notify.bookings_completed(s, done)  # (reminders dropped, webhook events queued)
        for booking_id in done:
            audit.record(s, actor_id=None, action="booking.completed", entity="booking", entity_id=booking_id,
                         data={"by": "job"})
    return len(done)


def _sweep_overlapping_holds(s: Session, b: Bookable, shape: SlotShape, now: dt.datetime,
                             exclude_id: int | None = None) -> None:
    """Cancel the expired, not yet swept holds that overlap a new block (capacity-1
    bookables only, where the exclusion constraint would otherwise see them)."""
    if b.capacity != 1 or b.kind == "event":
        return
    rows = s.exec(select(Booking).where(
        Booking.bookable_id == b.id, Booking.status.in_(HELD_STATUSES),  # type: ignore[attr-defined]
        Booking.hold_expires_at <= now,  # type: ignore[operator]
        Booking.block_start_at < shape.block_end, Booking.block_end_at > shape.block_start,
    ).with_for_update()).all()
    for bk in rows:
        if bk.id != exclude_id:
            _expire(s, bk, now)


def _expire(s: Session, bk: Booking, now: dt.datetime) -> None:
    if bk.status == BookingStatus.awaiting_approval.value:  # a lapsed approval request
        approvals.release_request(s, bk, outcome="expired", reason=None, actor_id=None, now=now)
        return
    bk.status = BookingStatus.cancelled.value
    bk.cancel_reason = "hold_expired"
    bk.cancelled_at = now
    bk.updated_at = now
    bk.version += 1
    bk.sequence += 1
    s.add(bk)
    audit.record(s, actor_id=None, action="booking.hold_expired", entity="booking", entity_id=bk.id)
    notify.booking_event(s, booking=bk, event="booking_cancelled", extra={"reason": "hold_expired"})


def _shape_of(s: Session, bk: Booking, b: Bookable) -> SlotShape:
    cap = b.capacity
    if bk.session_id is not None:
        sess = s.get(EventSession, bk.session_id)
        cap = sess.capacity if sess is not None else cap
    return SlotShape(bk.start_at, bk.end_at, bk.block_start_at, bk.block_end_at, cap, bk.session_id)


def _may_replay(actor: Actor, bk: Booking, first_at: dt.datetime, manage_token: str | None,
                now: dt.datetime | None = None) -> bool:
    """May a retry of the request that made `bk` (at `first_at`) replay it to `actor`? When
    `actor` may see it now; or a guest without a token — the guest retrying an answer they
    never got, who has no manage link yet — within IDEMPOTENCY_GUEST_REPLAY_SECONDS."""
    if may_see(actor, bk, manage_token):
        return True
    window = dt.timedelta(seconds=get_settings().idempotency_guest_replay_seconds)
    return (actor.is_guest and manage_token is None and bk.user_id is None
            and (now or utcnow()) - first_at <= window)
