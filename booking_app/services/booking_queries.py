"""Booking reads: the read model (`BookingView`), who may see and change a booking
(`access`: its customer, a guest holding a current manage link, its provider, an admin;
NotFound for anyone else — existence is not revealed), one booking and listings.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, func, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Bookable, Booking, BookingStatus, Payment, User
from booking_app.services.actors import Actor, is_manager
from booking_app.services.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from booking_app.services.manage_links import LINK_NOT_VALID, manage_token_grants
from booking_app.services.validation import parse_aware_datetime, parse_date, parse_int, zone

MAX_PAGE = 200
STATUSES = tuple(s.value for s in BookingStatus)
PAYMENT_METHODS = ("on_site", "card", "paypal")


@dataclass
class BookingView:
    id: int
    reference: str
    service_id: int
    service_name: str
    service_kind: str
    timezone: str  # the bookable's
    provider_id: int
    session_id: int | None
    user_id: int | None
    guest_name: str | None
    guest_email: str | None
    guest_phone: str | None
    start: dt.datetime
    end: dt.datetime
    quantity: int
    status: str
    hold_expires_at: dt.datetime | None
    price_cents: int
    currency: str
    payment_status: str  # latest Payment's status, "none" without one
    notes: str
    refund_due_cents: int
    cancel_reason: str | None
    cancelled_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    sequence: int
    # who booked: the user's full name (or username) and email, the guest's for guests; None
    # where the caller did not load the user (only get_booking/list_bookings do)
    customer_name: str | None = None
    customer_email: str | None = None
    # the version its guest manage links are signed for (booking_manage_token)
    link_version: int = 0
    # discount codes (issue 26): the price before the discount and the discount (price_cents: what is paid)
    list_price_cents: int = 0
    discount_cents: int = 0
    # booking questions: the snapshot of the questions answered (services/booking_questions.py)
    answers: list[dict[str, Any]] | None = None
    # approval (issue 24): until when a request awaiting approval holds its seats
    approval_expires_at: dt.datetime | None = None
    # deposits and fees (issue 26): the deposit, the balance left after it, the fees charged or due
    deposit_cents: int = 0
    balance_due_cents: int = 0
    fees_cents: int = 0


def booking_view(bk: Booking, b: Bookable, payment_status: str = "none",
          customer: tuple[str | None, str | None, str | None] | None = None) -> BookingView:
    """`customer`: the booking user's (full_name, username, email) when loaded."""
    assert bk.id is not None
    if bk.user_id is None:
        c_name, c_email = bk.guest_name, bk.guest_email
    elif customer is not None:
        c_name, c_email = (customer[0] or customer[1] or None), customer[2]
    else:
        c_name = c_email = None
    return BookingView(
        id=bk.id, reference=bk.reference, service_id=bk.bookable_id, service_name=b.name, service_kind=b.kind,
        timezone=b.timezone, provider_id=bk.provider_id, session_id=bk.session_id, user_id=bk.user_id,
        guest_name=bk.guest_name, guest_email=bk.guest_email, guest_phone=bk.guest_phone, start=bk.start_at,
        end=bk.end_at, quantity=bk.quantity, status=bk.status, hold_expires_at=bk.hold_expires_at,
        price_cents=bk.price_cents, currency=bk.currency, payment_status=payment_status, notes=bk.notes,
        refund_due_cents=bk.refund_due_cents, cancel_reason=bk.cancel_reason, cancelled_at=bk.cancelled_at,
        created_at=bk.created_at, updated_at=bk.updated_at, version=bk.version, sequence=bk.sequence,
        customer_name=c_name, customer_email=c_email, link_version=getattr(bk, "manage_link_version", 0) or 0,
        list_price_cents=_list_price(bk), discount_cents=getattr(bk, "discount_cents", 0) or 0,
        answers=getattr(bk, "answers", None),
        approval_expires_at=getattr(bk, "approval_expires_at", None),
        deposit_cents=getattr(bk, "deposit_cents", 0) or 0, balance_due_cents=getattr(bk, "balance_due_cents", 0) or 0,
        fees_cents=getattr(bk, "fees_cents", 0) or 0,
    )


def _list_price(bk: Any) -> int:
    """A booking's list price (bookings made before discount codes: their price)."""
    value = getattr(bk, "list_price_cents", None)
    return bk.price_cents if value is None else value


def payment_statuses(s: Session, ids: list[int]) -> dict[int, str]:
    """booking id → status of its latest Payment of the price (one query; a balance payment
    after a deposit, issue 26, does not change it)."""
    if not ids:
        return {}
    rows = s.exec(select(Payment.booking_id, Payment.status, Payment.created_at, Payment.id)  # type: ignore[call-overload]
                  .where(Payment.booking_id.in_(ids), Payment.purpose == "booking")).all()  # type: ignore[attr-defined]
    latest: dict[int, tuple] = {}
    for bid, status, created, pid in rows:
        if bid not in latest or (created, pid) > latest[bid][0]:
            latest[bid] = ((created, pid), status)
    return {bid: v[1] for bid, v in latest.items()}


def full_view(s: Session, bk: Booking, b: Bookable | None = None) -> BookingView:
    b = b or s.get(Bookable, bk.bookable_id)
    assert b is not None and bk.id is not None
    return booking_view(bk, b, payment_statuses(s, [bk.id]).get(bk.id, "none"))


def check_payment_method(value: Any) -> str | None:
    """A booking's `payment_method`: None, "on_site" or an enabled online method."""
    if value in (None, ""):
        return None
    allowed = ["on_site", *get_settings().online_payment_methods]
    if value not in allowed:
        raise InvalidInput(N_("This payment method is not available."), field="payment_method")
    return value


def is_owner(actor: Actor, bk: Booking, manage_token: str | None) -> bool:
    """Its customer: the signed-in user who booked, or — for a guest booking — whoever holds
    a current manage link of it."""
    if bk.user_id is not None:
        return actor.id is not None and actor.id == bk.user_id
    return manage_token is not None and manage_token_grants(manage_token, bk)


def access(actor: Actor, bk: Booking | None, manage_token: str | None) -> tuple[bool, bool]:
    """(may see/change as its customer, may manage as provider/admin); NotFound otherwise."""
    if bk is None:
        raise NotFound(LINK_NOT_VALID if manage_token is not None else N_("This booking does not exist."))
    manager = is_manager(actor, bk)
    owner = is_owner(actor, bk, manage_token)
    if not (manager or owner):
        if manage_token is not None:  # wrong, re-issued or expired: one answer for all
            raise NotFound(LINK_NOT_VALID)
        raise NotFound(N_("This booking does not exist."))
    return owner, manager


def may_see(actor: Actor, bk: Booking | None, manage_token: str | None) -> bool:
    """`access` as a yes/no."""
    try:
        access(actor, bk, manage_token)
    except NotFound:
        return False
    return True


def may_see_booking(*, actor: Actor, booking_id: Any, manage_token: str | None = None) -> bool:
    """May `actor` (a guest: holding `manage_token`) see booking `booking_id` now? Its
    customer, a guest with a current manage link, its provider or an admin (`access`)."""
    if isinstance(booking_id, bool) or not isinstance(booking_id, int):
        return False
    with db.read_session() as s:
        return may_see(actor, s.get(Booking, booking_id), manage_token)


def get_booking(*, actor: Actor, booking_id: int, manage_token: str | None = None) -> BookingView:
    """One booking, for its customer (or a guest holding its manage token), its provider or
    an admin; NotFound for anyone else (existence is not revealed)."""
    with db.read_session() as s:
        bk = s.get(Booking, booking_id) if isinstance(booking_id, int) and not isinstance(booking_id, bool) else None
        access(actor, bk, manage_token)
        assert bk is not None
        b = s.get(Bookable, bk.bookable_id)
        assert b is not None
        u = s.get(User, bk.user_id) if bk.user_id is not None else None
        return booking_view(bk, b, payment_statuses(s, [bk.id]).get(bk.id, "none"),  # type: ignore[list-item]
                     (u.full_name, u.username, u.email) if u is not None else None)


def _to_utc_bound(value: Any, *, field: str, tz_name: str, end: bool) -> dt.datetime:
    if isinstance(value, dt.datetime) or (isinstance(value, str) and "T" in value):
        return parse_aware_datetime(value, field=field)
    day = parse_date(value, field=field)
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone(tz_name)).astimezone(dt.timezone.utc)


def list_bookings(
    *,
    actor: Actor,
    scope: str = "mine",
    status: str | None = None,
    date_from: dt.date | dt.datetime | str | None = None,
    date_to: dt.date | dt.datetime | str | None = None,
    service_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    user_id: int | None = None,
) -> tuple[list[BookingView], int]:
    """Bookings ordered by start. scope "mine": the actor's own; "provider": bookings of the
    provider's bookables (admins: every booking); "all": admins only. Dates are inclusive
    local dates in the actor's timezone (or aware datetimes). Returns (page, total)."""
    if actor.id is None and not actor.is_admin:
        raise Unauthorized()
    if scope not in ("mine", "provider", "all"):
        raise InvalidInput(N_("Scope must be mine, provider or all."), field="scope")
    if status not in (None, "") and status not in STATUSES:
        raise InvalidInput(N_("Unknown booking status."), field="status")
    limit = parse_int(limit, field="limit", lo=1, hi=MAX_PAGE)
    offset = parse_int(offset, field="offset", lo=0, hi=10_000_000)
    stmt = select(Booking)
    if scope == "mine":
        if actor.id is None:
            raise Unauthorized()
        stmt = stmt.where(Booking.user_id == actor.id)
    elif scope == "provider":
        if actor.is_provider:
            stmt = stmt.where(Booking.provider_id == actor.id)
        elif not actor.is_admin:
            raise Forbidden(N_("Only providers can see the bookings of their services."))
    elif not actor.is_admin:
        raise Forbidden(N_("Only admins can see all bookings."))
    if status:
        stmt = stmt.where(Booking.status == status)
    if service_id is not None:
        stmt = stmt.where(Booking.bookable_id == parse_int(service_id, field="service_id", lo=1, hi=2**31))
    if user_id is not None:  # one customer's bookings (admins: scope "all")
        stmt = stmt.where(Booking.user_id == parse_int(user_id, field="user_id", lo=1, hi=2**31))
    if date_from not in (None, ""):
        stmt = stmt.where(Booking.start_at >= _to_utc_bound(date_from, field="from", tz_name=actor.timezone, end=False))
    if date_to not in (None, ""):
        stmt = stmt.where(Booking.start_at < _to_utc_bound(date_to, field="to", tz_name=actor.timezone, end=True))
    with db.read_session() as s:
        total = s.exec(select(func.count()).select_from(stmt.subquery())).one()
        # the same filters, with the customer's name joined in (one query for the page)
        page_stmt = select(Booking, User.full_name, User.username, User.email).outerjoin(  # type: ignore[call-overload]
            User, User.id == Booking.user_id)  # type: ignore[arg-type]
        if stmt.whereclause is not None:
            page_stmt = page_stmt.where(stmt.whereclause)
        page = s.exec(page_stmt.order_by(Booking.start_at, Booking.id).offset(offset).limit(limit)).all()
        rows = [p[0] for p in page]
        customers = {p[0].id: (p[1], p[2], p[3]) for p in page}
        ids = [r.id for r in rows]
        bookables = {b.id: b for b in s.exec(select(Bookable).where(
            Bookable.id.in_({r.bookable_id for r in rows}))).all()} if rows else {}  # type: ignore[union-attr]
        pay = payment_statuses(s, ids)  # type: ignore[arg-type]
        return [booking_view(r, bookables[r.bookable_id], pay.get(r.id, "none"), customers[r.id])  # type: ignore[arg-type, index]
                for r in rows], int(total)
