"""Recurring series (issue 24, point 3): preview, book, read and cancel a series of bookings
of one bookable — every day / week / N weeks / month (by date or by weekday), N times or
until a date (services/recurrence.py expands the rule; docs/series.md says why it is so).

- Each occurrence must be a real slot (`availability.resolve_start_with_usage`: opening
  hours, sessions, notice, advance — the one home of the slot rules).
- Booking goes through the capacity engine (services/capacity.py): one unit of work inserts
  the occurrences in time order, takes the capacity lock once and re-counts each
  (`capacity.recount_each`). `all_or_nothing`: any occurrence taken → nothing is written
  (NotAvailable). `skip_taken`: the ones taken are left out (PostgreSQL: an overlap the
  exclusion backstop refuses is caught in a savepoint), the rest commit together.
- Every occurrence is an ordinary booking with `series_id`: the existing reschedule and
  cancel paths (with their refund rule, `payments.cancel_and_refund`) work on each one.
- One confirmation for the customer listing the dates (template `series_confirmed`), one
  notice for the provider; reminders and webhook events per occurrence as for any booking.
"""
from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Bookable, Booking, BookingSeries, BookingStatus, User
from booking_app.models.base import utcnow
from booking_app.services import (
    audit,
    booking_questions,
    bookings,
    capacity,
    deposits,
    messages,
    notify,
    outbox,
    payments,
    pricing,
    recurrence,
    validation,
)
from booking_app.services.actors import Actor
from booking_app.services.availability import resolve_start_with_usage
from booking_app.services.booking_queries import (
    BookingView,
    booking_view,
    check_payment_method,
    is_owner,
    may_see,
    payment_statuses,
)
from booking_app.services.errors import Forbidden, InvalidInput, NotAvailable, NotFound, ServiceError, Unauthorized
from booking_app.services.guest_bookings import (
    CONFIRM_FIRST,
    GUEST_QUANTITY,
    check_guest_caps,
    count_guest_request,
    guest_fields,
    guest_ip_key,
    lock_guest,
)
from booking_app.services.manage_links import booking_manage_token
from booking_app.services.slots import SlotShape, is_active
from booking_app.services.validation import parse_aware_datetime, parse_int

#: why an occurrence is not booked: its time is taken (capacity), or it is no slot at all
#: (closed, outside the hours, no session, inside the notice …)
TAKEN, UNAVAILABLE = "taken", "unavailable"
PAY_ON_SITE = N_("A series is paid on site: choose “pay on site”.")
NOT_FOR_APPROVAL = N_("Bookings of this service need the provider's approval: book one date at a time.")
SERIES_TAKEN = N_("Not every date of the series is available: see the preview, or choose to skip the taken dates.")
NONE_FREE = N_("None of the dates of the series is available.")
SERIES_NOT_FOUND = N_("This series does not exist.")
NOT_IN_SERIES = N_("This booking is not part of the series.")


@dataclass(frozen=True)
class Occurrence:
    start: dt.datetime
    available: bool
    reason: str | None = None  # TAKEN | UNAVAILABLE
    message: str | None = None  # the msgid saying why it is unavailable (translated at the edge)
    quote: pricing.PriceQuote | None = None  # a free date: what it would cost (with the discount code)


@dataclass(frozen=True)
class Skipped:
    start: dt.datetime
    reason: str


@dataclass
class SeriesBooked:
    series_id: int
    bookings: list[BookingView]
    skipped: list[Skipped]


@dataclass
class SeriesView:
    id: int
    service_id: int
    frequency: str
    interval: int
    count: int | None
    until: dt.date | None
    by: str
    mode: str
    quantity: int
    created_at: dt.datetime
    bookings: list[BookingView]


@dataclass(frozen=True)
class _Request:
    service_id: int
    start: dt.datetime
    rule: recurrence.Recurrence
    quantity: int


def _parse(service_id: Any, start: Any, raw_rule: Any, quantity: Any) -> _Request:
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise NotFound(N_("This service does not exist."))
    return _Request(service_id=service_id, start=parse_aware_datetime(start, field="start"),
                    rule=recurrence.parse(raw_rule, max_count=get_settings().series_max_occurrences),
                    quantity=parse_int(quantity, field="quantity", lo=1, hi=capacity.MAX_QUANTITY))


def _bookable(s: Session, service_id: int) -> Bookable:
    b = s.get(Bookable, service_id)
    if b is None or not b.is_active:
        raise NotFound(N_("This service does not exist."))
    return b


def _starts(b: Bookable, req: _Request, now: dt.datetime) -> list[dt.datetime]:
    return recurrence.expand(req.start, req.rule, validation.zone(b.timezone),
                             horizon=now + dt.timedelta(days=b.max_advance_days), horizon_days=b.max_advance_days,
                             max_count=get_settings().series_max_occurrences)


def _check(s: Session, b: Bookable, starts: list[dt.datetime], quantity: int, now: dt.datetime
           ) -> list[tuple[Occurrence, SlotShape | None]]:
    """Each start: a free slot (with its shape), taken, or no slot (with the reason)."""
    out: list[tuple[Occurrence, SlotShape | None]] = []
    for at in starts:
        try:
            shape, used, _expired = resolve_start_with_usage(s, b, at, now, quantity=quantity)
        except NotAvailable as exc:
            out.append((Occurrence(at, False, UNAVAILABLE, exc.message), None))
            continue
        if quantity > shape.capacity:
            raise InvalidInput(capacity.AT_MOST_SEATS, field="quantity", max=shape.capacity)
        if used + quantity > shape.capacity:
            out.append((Occurrence(at, False, TAKEN), shape))
        else:
            out.append((Occurrence(at, True), shape))
    return out


def preview(*, actor: Actor, service_id: Any, start: Any, recurrence_rule: Any, quantity: Any = 1,
            now: dt.datetime | None = None, discount_code: str | None = None) -> list[Occurrence]:
    """The occurrences a series would have, each free or not (and why), each free one with
    its price (`discount_code` applied as booking would: DiscountCodeInvalid if it cannot
    cover every free date) — nothing is held. InvalidInput for a bad rule (or one reaching
    past the bookable's max advance / the SERIES_MAX_OCCURRENCES limit); NotFound for an
    unknown bookable."""
    now = now or utcnow()
    req = _parse(service_id, start, recurrence_rule, quantity)
    with db.read_session() as s:
        b = _bookable(s, req.service_id)
        found = [occ for occ, _shape in _check(s, b, _starts(b, req, now), req.quantity, now)]
        free = sum(1 for occ in found if occ.available)
        if discount_code is not None and free:
            quote = pricing.quote_with_code(s, b, req.quantity, discount_code, uses=free, now=now, lock=False,
                                            customer_id=None if actor.is_guest else actor.id, email=None)
        else:
            quote = pricing.quote(b, req.quantity)
        return [replace(occ, quote=quote) if occ.available else occ for occ in found]


def book_series(*, actor: Actor, service_id: Any, start: Any, recurrence_rule: Any, quantity: Any = 1,
                notes: str | None = "", guest: Mapping[str, Any] | Any | None = None,
                payment_method: str | None = None, client_ip: str | None = None,
                now: dt.datetime | None = None, answers: Mapping[str, Any] | None = None,
                discount_code: str | None = None, pay_online: bool = False) -> SeriesBooked:
    """Book a series (see the module docstring): signed-in customers for themselves, guests
    with `guest={name, email, phone?}` (the guest rules of `bookings.book` apply: quantity
    cap, rate limit, caps), staff for a walk-in `guest`. Priced bookables: pay on site, or
    online with `pay_online` (services/series_payments.py: the dates stay pending with their
    hold until its one Checkout is paid). `discount_code`: each date priced with it
    (services/pricing.py), each taking one use under the code's lock — it must cover every
    date to be booked, else DiscountCodeInvalid and nothing is booked. Errors: InvalidInput,
    NotFound, NotAvailable (a taken date in all_or_nothing, or no free date at all), Busy."""
    now = now or utcnow()
    settings = get_settings()
    req = _parse(service_id, start, recurrence_rule, quantity)
    notes_text = validation.text(notes, field="notes", max_length=2000, multiline=True)
    method = check_payment_method(payment_method)
    guest_name = guest_email = guest_phone = None
    ip_key = None
    if actor.is_guest:
        if actor.role != "guest":
            raise Forbidden()
        if settings.guest_email_confirmation:
            raise InvalidInput(CONFIRM_FIRST, field="guest")
        if guest is None:
            raise InvalidInput(N_("Give your name and email address to book as a guest."), field="guest")
        guest_name, guest_email, guest_phone = guest_fields(guest)
        if req.quantity > settings.guest_max_quantity:
            raise InvalidInput(GUEST_QUANTITY, field="quantity", max=settings.guest_max_quantity)
        ip_key = guest_ip_key(client_ip)
    elif guest is not None:
        if not (actor.is_admin or actor.is_provider):
            raise InvalidInput(N_("Signed-in customers book for themselves."), field="guest")
        guest_name, guest_email, guest_phone = guest_fields(guest)
    # expired holds would stand in the way of the exclusion backstop: swept first (a job's
    # own transaction; what it frees is free for everyone)
    bookings.release_expired_holds(now=now)
    with capacity.transaction() as s:
        b = _bookable(s, req.service_id)
        # booking questions (services/booking_questions.py): every occurrence keeps the answers
        snapshot = booking_questions.check_answers(b.questions, answers) if b.questions or answers else None
        if getattr(b, "requires_approval", False):
            raise InvalidInput(NOT_FOR_APPROVAL, field="recurrence")
        # online payment (services/series_payments.py, `pay_online`): the dates stay pending with their
        # hold until the one Checkout of the series is paid
        online = (pay_online and method not in (None, "on_site") and b.price_cents * req.quantity > 0
                  and settings.stripe_enabled and method in settings.online_payment_methods)
        if (b.price_cents * req.quantity > 0 and method != "on_site" and not online
                and (method is not None or settings.stripe_enabled)):
            raise InvalidInput(PAY_ON_SITE, field="payment_method")
        checked = _check(s, b, _starts(b, req, now), req.quantity, now)
        skipped = [Skipped(occ.start, occ.reason or UNAVAILABLE) for occ, _shape in checked if not occ.available]
        if skipped and req.rule.mode == "all_or_nothing":
            raise NotAvailable(SERIES_TAKEN)
        free = [shape for occ, shape in checked if occ.available and shape is not None]
        if not free:
            raise NotAvailable(NONE_FREE)
        user = None
        if actor.is_guest:
            lock_guest(s, guest_email or "", ip_key)
            count_guest_request(s, "booking", guest_email or "", ip_key)
            check_guest_caps(s, guest_email or "", ip_key, now, adding=len(free))  # (each date holds seats)
        elif guest_email is None:
            user = s.get(User, actor.id)
            if user is None or not user.is_active:
                raise Unauthorized()
        if discount_code is not None:  # (discount codes: one use per date, counted under the code's lock)
            quote = pricing.quote_with_code(s, b, req.quantity, discount_code, uses=len(free), now=now,
                                            customer_id=actor.id if guest_email is None else None, email=guest_email)
        else:
            quote = pricing.quote(b, req.quantity)  # (no query)
        series = BookingSeries(bookable_id=b.id, user_id=actor.id if guest_email is None else None,
                               guest_email=guest_email, frequency=req.rule.frequency, interval=req.rule.interval,
                               count=req.rule.count, until=req.rule.until, by=req.rule.by, mode=req.rule.mode,
                               quantity=req.quantity, created_at=now)
        s.add(series)
        s.flush()
        assert series.id is not None
        fields = dict(bookable_id=b.id, provider_id=b.provider_id, series_id=series.id,
                      user_id=actor.id if guest_email is None else None, guest_name=guest_name,
                      guest_email=guest_email, guest_phone=guest_phone, guest_ip=ip_key,
                      locale=(user.locale if user is not None else None) or actor.locale or "en",
                      exclusive=b.capacity == 1 and b.kind != "event", quantity=req.quantity,
                      status=BookingStatus.pending.value if online else BookingStatus.confirmed.value,
                      hold_expires_at=now + dt.timedelta(minutes=settings.guest_hold_minutes if actor.is_guest
                                                         else settings.hold_minutes) if online else None,
                      price_cents=quote.price_cents,
                      list_price_cents=quote.list_price_cents, discount_cents=quote.discount_cents,
                      discount_code_id=quote.discount_code_id, currency=b.currency, notes=notes_text, created_at=now, updated_at=now, answers=snapshot,
                      **deposits.split(b, quote.price_cents, online=online))  # (paid online: each date's deposit)
        made = _insert(s, free, fields, skipped, skip=req.rule.mode == "skip_taken")
        fits = capacity.recount_each(s, b, [(shape, bk.id) for bk, shape in made], req.quantity, now)  # type: ignore[misc]
        kept: list[Booking] = []
        for (bk, shape), ok in zip(made, fits):
            if ok:
                kept.append(bk)
            elif req.rule.mode == "all_or_nothing":
                raise NotAvailable(SERIES_TAKEN)
            else:
                skipped.append(Skipped(shape.start, TAKEN))
                s.delete(bk)
        if not kept:
            raise NotAvailable(NONE_FREE)
        s.flush()
        skipped.sort(key=lambda x: x.start)
        audit.record(s, actor_id=actor.id, action="series.created", entity="booking_series", entity_id=series.id,
                     data={"bookable_id": b.id, "rule": req.rule.as_dict(), "booked": len(kept),
                           "skipped": [x.start.isoformat() for x in skipped], "payment_method": method})
        if not online:  # (paid online: the confirmation goes out once paid, series_payments)
            notify_booked(s, b, kept, skipped, actor=actor, user=user)
        views = [booking_view(bk, b) for bk in kept]
    return SeriesBooked(series_id=series.id, bookings=views, skipped=skipped)


_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _reference() -> str:
    return "".join(_REF_ALPHABET[x % 32] for x in secrets.token_bytes(8))


def _insert(s: Session, shapes: list[SlotShape], fields: dict[str, Any], skipped: list[Skipped], *,
            skip: bool) -> list[tuple[Booking, SlotShape]]:
    """The occurrences as bookings, in time order (two series racing insert in the same
    order). PostgreSQL, skip_taken: each in a savepoint, so that one the exclusion backstop
    refuses (taken meanwhile) is skipped; all_or_nothing: that error ends the transaction
    (capacity.transaction → NotAvailable)."""
    made: list[tuple[Booking, SlotShape]] = []
    savepoints = skip and db.is_postgres(s)
    for shape in sorted(shapes, key=lambda x: x.start):
        bk = Booking(reference=_reference(), session_id=shape.session_id, start_at=shape.start, end_at=shape.end,
                     block_start_at=shape.block_start, block_end_at=shape.block_end, **fields)
        if not savepoints:
            s.add(bk)
            s.flush()
            made.append((bk, shape))
            continue
        try:
            with s.begin_nested():
                s.add(bk)
                s.flush()
        except IntegrityError as exc:
            if db.sqlstate(exc) != "23P01":
                raise
            skipped.append(Skipped(shape.start, TAKEN))
            continue
        made.append((bk, shape))
    return made


def _dates_text(rows: list[tuple[dt.datetime, dt.datetime | None]], tz: str, locale: str) -> str:
    return "; ".join(messages.format_when(a, z, tz, locale) for a, z in rows)


def notify_booked(s: Session, b: Bookable, kept: list[Booking], skipped: list[Skipped], *, actor: Actor,
                  user: User | None) -> None:
    """Per occurrence: reminders and webhook events (as any booking's); the customer's and
    the provider's one message each, listing the dates (not one per occurrence)."""
    values: list[dict[str, Any]] = []
    for bk in kept:
        rows = notify.booking_event_values(s, booking=bk, event="booking_confirmed", extra={"actor_id": actor.id},
                                           bookable=b, customer=user)
        values.extend(r for r in rows if r.get("template") not in ("booking_confirmed", "provider_new_booking"))
    first = kept[0]
    customer = outbox.customer_of(s, first, b, user)
    provider = outbox.provider_of(s, first)
    base = outbox.booking_snapshot(s, first, b, customer=customer, provider=provider)
    rows: list[dict[str, Any]] = []
    key = f"series:{first.series_id}"
    occurrences = [(bk.start_at, bk.end_at) for bk in kept]
    if customer.wants_email:
        rows.append(dict(channel="email", to=customer.email or "", template="series_confirmed",
                         locale=customer.locale, booking_id=first.id, user_id=customer.user_id,
                         dedupe_key=f"email:{key}",
                         context=outbox.personal(base, customer, count=len(kept),
                                                 dates=_dates_text(occurrences, customer.timezone, customer.locale),
                                                 skipped_dates=_dates_text([(x.start, None) for x in skipped],
                                                                           customer.timezone, customer.locale))))
    if provider is not None and provider.wants_email and actor.id != provider.user_id:
        provider_base = {k: v for k, v in base.items() if k != "manage_url"}
        rows.append(dict(channel="email", to=provider.email or "", template="provider_new_series",
                         locale=provider.locale, booking_id=first.id, user_id=provider.user_id,
                         dedupe_key=f"email:provider:{key}",
                         context=outbox.personal(provider_base, provider, count=len(kept),
                                                 dates=_dates_text(occurrences, provider.timezone or b.timezone,
                                                                   provider.locale))))
    outbox.insert_values(s, values + outbox.notification_values(rows, json_safe=True))


# --- reading and managing ----------------------------------------------------------------------

def _series_and_bookings(s: Session, series_id: Any) -> tuple[BookingSeries, list[Booking]]:
    if isinstance(series_id, bool) or not isinstance(series_id, int):
        raise NotFound(SERIES_NOT_FOUND)
    series = s.get(BookingSeries, series_id)
    if series is None:
        raise NotFound(SERIES_NOT_FOUND)
    rows = s.exec(select(Booking).where(Booking.series_id == series_id)
                  .order_by(Booking.start_at, Booking.id)).all()  # type: ignore[arg-type]
    return series, list(rows)


def _visible(actor: Actor, rows: list[Booking], manage_token: str | None) -> None:
    """Its customer, a guest holding a manage link of one of its bookings, its provider, an
    admin; NotFound for anyone else (existence is not revealed)."""
    if not any(may_see(actor, bk, manage_token) for bk in rows):
        raise NotFound(SERIES_NOT_FOUND)


def get_series(*, actor: Actor, series_id: Any, manage_token: str | None = None) -> SeriesView:
    """A series with its occurrences (every status), in time order."""
    with db.read_session() as s:
        series, rows = _series_and_bookings(s, series_id)
        _visible(actor, rows, manage_token)
        b = s.get(Bookable, series.bookable_id)
        assert b is not None and series.id is not None
        statuses = payment_statuses(s, [bk.id for bk in rows if bk.id is not None])
        return SeriesView(id=series.id, service_id=series.bookable_id, frequency=series.frequency,
                          interval=series.interval, count=series.count, until=series.until, by=series.by,
                          mode=series.mode, quantity=series.quantity, created_at=series.created_at,
                          bookings=[booking_view(bk, b, statuses.get(bk.id or 0, "none")) for bk in rows])


@dataclass
class SeriesCancelled:
    series: SeriesView
    cancelled: list[int]
    kept: list[tuple[int, ServiceError]]  # (booking id, why the cancel path refused it)


def cancel_series(*, actor: Actor, series_id: Any, from_booking_id: Any = None, reason: str | None = None,
                  manage_token: str | None = None, now: dt.datetime | None = None) -> SeriesCancelled:
    """Cancel the series' active occurrences — all, or `from_booking_id` and the ones after
    it — each through the one cancel path (`payments.cancel_and_refund`: its refund by the
    policy, its notices). An occurrence that path refuses (a customer inside its
    cancellation cut-off) is kept and listed with the reason; the others are cancelled.
    A guest's manage link of one occurrence manages the whole series (the same guest)."""
    now = now or utcnow()
    reason_text = validation.reason(reason)
    if from_booking_id is not None and (isinstance(from_booking_id, bool) or not isinstance(from_booking_id, int)):
        raise InvalidInput(NOT_IN_SERIES, field="from_booking_id")
    with db.read_session() as s:
        series, rows = _series_and_bookings(s, series_id)
        _visible(actor, rows, manage_token)
        if from_booking_id is not None:
            anchor = next((bk for bk in rows if bk.id == from_booking_id), None)
            if anchor is None:
                raise InvalidInput(NOT_IN_SERIES, field="from_booking_id")
            rows = [bk for bk in rows if (bk.start_at, bk.id or 0) >= (anchor.start_at, anchor.id or 0)]
        b = s.get(Bookable, series.bookable_id)
        assert b is not None
        targets = [bk for bk in rows if is_active(bk.status, bk.hold_expires_at, now) and bk.start_at > now]
        guest_owner = manage_token is not None and any(is_owner(actor, bk, manage_token) for bk in rows)
    cancelled: list[int] = []
    kept: list[tuple[int, ServiceError]] = []
    for bk in targets:
        assert bk.id is not None
        token = manage_token
        if guest_owner and bk.user_id is None:
            token = booking_manage_token(bk.id, bk.manage_link_version or 0)
        try:
            payments.cancel_and_refund(actor=actor, booking_id=bk.id, reason=reason_text, manage_token=token)
        except ServiceError as exc:
            kept.append((bk.id, exc))
            continue
        cancelled.append(bk.id)
    return SeriesCancelled(series=get_series(actor=actor, series_id=series_id, manage_token=manage_token),
                           cancelled=cancelled, kept=kept)



def series_of_booking(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> SeriesView | None:
    """The series a booking the caller may see is an occurrence of (None: not part of one,
    or not visible) — for the booking's page."""
    if isinstance(booking_id, bool) or not isinstance(booking_id, int):
        return None
    with db.read_session() as s:
        bk = s.get(Booking, booking_id)
        if bk is None or bk.series_id is None or not may_see(actor, bk, manage_token):
            return None
        series_id = bk.series_id
    return get_series(actor=actor, series_id=series_id, manage_token=manage_token)
