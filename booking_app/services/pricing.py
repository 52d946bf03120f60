"""What a booking costs: the one home of the price (issue 26).

list price = the bookable's price x quantity → minus a discount code's discount (percent:
money.percent_of, half-up; fixed: at most the list price) → the price the customer pays.
The price is always computed here, from the bookable row and the code row, never taken from
a client. `quote` is pure (no query: a booking without a code pays for nothing more);
`quote_with_code` checks a typed code in the booking's transaction (bookings.book) and
`preview` shows the review step the same figures before booking.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from booking_app import db
from booking_app.models import Bookable, DiscountCode, utcnow
from booking_app.services import discounts, validation
from booking_app.services.actors import Actor
from booking_app.services.bookable_access import load_bookable
from booking_app.services.errors import InvalidInput
from booking_app.services.money import percent_of


@dataclass(frozen=True)
class PriceQuote:
    list_price_cents: int
    discount_cents: int
    price_cents: int
    currency: str
    discount_code_id: int | None = None
    discount_code: str | None = None


def quote(bookable: Bookable, quantity: int, code: DiscountCode | None = None) -> PriceQuote:
    """The price of `quantity` seats of `bookable`, with `code` (already checked by
    discounts.usable_code) applied."""
    list_price = int(bookable.price_cents) * int(quantity)
    discount = 0
    if code is not None:
        if code.percent_off is not None:
            discount = percent_of(list_price, code.percent_off)  # half-up: the one rounding rule
        else:
            discount = min(int(code.amount_off_cents or 0), list_price)
    return PriceQuote(list_price_cents=list_price, discount_cents=discount, price_cents=list_price - discount,
                      currency=bookable.currency, discount_code_id=code.id if code is not None else None,
                      discount_code=code.code if code is not None else None)


def quote_with_code(s: Session, bookable: Bookable, quantity: int, code_text: Any, *, customer_id: int | None,
                    email: str | None, now: dt.datetime, lock: bool = True, uses: int = 1) -> PriceQuote:
    """The price (of one booking) with the typed code, checked (discounts.usable_code; with
    `lock`, the code row stays locked until the caller's transaction ends: its uses are
    counted under it). `uses`: how many bookings take it at once (a series: one per date,
    services/series.py) — all of them must fit, else DiscountCodeInvalid."""
    list_price = int(bookable.price_cents) * int(quantity)
    code = discounts.usable_code(s, code_text, bookable=bookable, list_price_cents=list_price,
                                 customer_id=customer_id, email=email, now=now, lock=lock, uses=uses)
    return quote(bookable, quantity, code)


def preview(*, actor: Actor, service_id: Any, quantity: Any = 1, discount_code: Any = None,
            email: str | None = None, now: dt.datetime | None = None) -> PriceQuote:
    """The review step's figures: the price of `quantity` seats with `discount_code` (if
    any), as the booking would be charged now (DiscountCodeInvalid for a code that would
    be refused). `email`: a guest's address (per-customer limits)."""
    now = now or utcnow()
    qty = validation.parse_int(quantity, field="quantity", lo=1, hi=1000)
    with db.read_session() as s:
        b = load_bookable(s, service_id)
        if discount_code in (None, ""):
            return quote(b, qty)
        guest_email = None
        if actor.is_guest and email:
            try:
                guest_email = validation.email(email)
            except InvalidInput:
                guest_email = None
        return quote_with_code(s, b, qty, discount_code, customer_id=actor.id, email=guest_email, now=now, lock=False)



def requote(s: Session, bookable: Bookable, quantity: int, booking: Any) -> PriceQuote:
    """A booking's price for a new quantity: its discount code (if any) applied again, without
    taking another use (the booking holds its use already). A query only when it has a code."""
    code_id = getattr(booking, "discount_code_id", None)
    code = s.get(DiscountCode, code_id) if code_id is not None else None
    return quote(bookable, quantity, code)


def use_still_free(s: Session, booking: Any, now: dt.datetime) -> bool:
    """A lapsed booking that is being revived (a late payment, bookings.confirm_payment): may it
    take its discount code's use back? The code row is locked and its uses re-counted, as at
    booking (discounts.usable_code); False when the code has been used up meanwhile."""
    code = s.get(DiscountCode, booking.discount_code_id, with_for_update=discounts.LOCKING and db.is_postgres(s))
    if code is None:
        return False
    return discounts.uses_left(s, code, customer_id=booking.user_id,
                               email=booking.guest_email if booking.user_id is None else None, now=now)
