"""Deposits (issue 26, point 2): the one home of the deposit split and of "paid / due".

- A bookable asks for a deposit as a percent of the price (`deposit_percent`, rounded by
  `money.percent_of`, half-up to a whole minor unit) or a fixed amount (`deposit_cents`,
  at most the price); at most one of the two. The deposit applies to bookings paid online:
  Stripe Checkout charges it at booking, the rest (`balance_due_cents`) is paid on site or
  online later ("Pay the balance", payments.pay_balance). A deposit that rounds to 0 or
  reaches the whole price is no deposit: the whole price is paid at once.
- `money_summary` is what the booking page, the provider's details, the API and the emails
  show: paid (kept, after refunds), the balance due, the fees charged and the fees due.
- Card saving for fees: `saves_card` says whether Checkout keeps the card
  (`setup_future_usage="off_session"`) for a later no-show or late-cancel fee.

See docs/deposits-and-fees.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from booking_app.i18n import N_
from booking_app.models import Bookable, Booking, BookingFee, Payment
from booking_app.services import money
from booking_app.services.errors import InvalidInput
from booking_app.services.validation import parse_int

#: The largest deposit or fee in minor units (the catalog's price limit).
MAX_AMOUNT_CENTS = 100_000_000
#: Payment purposes (payments.purpose): the price or its deposit; the balance after a deposit.
BOOKING = "booking"
BALANCE = "balance"
#: Fee statuses that are still owed (services/fees.py).
FEE_OWED_STATUSES = ("due", "failed", "requires_action")
POLICY_FIELDS = ("deposit_percent", "deposit_cents", "no_show_fee_cents", "late_cancel_fee_cents")
_PAID = ("succeeded", "partially_refunded")


def deposit_of(price_cents: int, *, deposit_percent: int | None, deposit_cents: int | None) -> int:
    """The deposit of a price: percent → money.percent_of (half-up), fixed → at most the
    price; 0 when there is none (or it rounds to nothing), the price when it covers it."""
    price = max(int(price_cents or 0), 0)
    if price == 0:
        return 0
    if deposit_percent is not None:
        return min(money.percent_of(price, deposit_percent), price)
    if deposit_cents is not None:
        return min(int(deposit_cents), price)
    return 0


def split(bookable: Bookable, price_cents: int, *, online: bool) -> dict[str, int]:
    """A new booking's deposit columns: `deposit_cents` (charged by Checkout now) and
    `balance_due_cents` (the rest). Not online, or no real deposit: both 0 (the whole price
    is paid at once, on site or by Checkout)."""
    if not online:
        return {"deposit_cents": 0, "balance_due_cents": 0}
    deposit = deposit_of(price_cents, deposit_percent=bookable.deposit_percent, deposit_cents=bookable.deposit_cents)
    if deposit <= 0 or deposit >= price_cents:
        return {"deposit_cents": 0, "balance_due_cents": 0}
    return {"deposit_cents": deposit, "balance_due_cents": price_cents - deposit}


def first_charge(booking: Booking, *, online: bool) -> int:
    """What the first payment of a booking charges: its deposit online, else the price.
    Paying on site takes the whole price (a deposit is an online thing)."""
    if online and booking.deposit_cents and 0 < booking.deposit_cents < booking.price_cents:
        return booking.deposit_cents
    return booking.price_cents


def after_first_payment(booking: Booking, payment: Payment) -> None:
    """A first payment of the whole price (on site, or a session switched away from the
    deposit) leaves no balance; a deposit leaves the rest."""
    if payment.purpose == BOOKING and payment.amount_cents >= booking.price_cents:
        booking.balance_due_cents = 0


def after_balance_paid(booking: Booking, payment: Payment) -> None:
    """The balance payment succeeded: nothing is left to pay of the price."""
    booking.balance_due_cents = max(0, booking.balance_due_cents - payment.amount_cents)


def saves_card(bookable: Bookable | None) -> bool:
    """Whether booking it saves the customer's card (with consent) for a later fee."""
    return bookable is not None and ((bookable.no_show_fee_cents or 0) > 0 or (bookable.late_cancel_fee_cents or 0) > 0)


def clean_policy(values: dict[str, Any]) -> dict[str, Any]:
    """Validate the deposit and fee fields present in `values` → column values. A deposit is
    a percent (1-100) or an amount (≥ 1), never both; null clears it. Fees: 0 or more."""
    out: dict[str, Any] = {}
    for name, lo, hi in (("deposit_percent", 1, 100), ("deposit_cents", 1, MAX_AMOUNT_CENTS)):
        if name in values:
            out[name] = None if values[name] is None else parse_int(values[name], field=name, lo=lo, hi=hi)
    for name in ("no_show_fee_cents", "late_cancel_fee_cents"):
        if name in values:
            if values[name] is None:
                raise InvalidInput(N_("This field is required."), field=name)
            out[name] = parse_int(values[name], field=name, lo=0, hi=MAX_AMOUNT_CENTS)
    if out.get("deposit_percent") is not None and out.get("deposit_cents") is not None:
        raise InvalidInput(N_("Ask for a deposit as a percent or as an amount, not both."), field="deposit_cents")
    if out.get("deposit_percent") is not None and "deposit_cents" not in out:
        out["deposit_cents"] = None  # a percent replaces a fixed amount
    if out.get("deposit_cents") is not None and "deposit_percent" not in out:
        out["deposit_percent"] = None
    return out


@dataclass(frozen=True)
class MoneySummary:
    """What the booking shows: paid (kept) / due, and its fees."""

    price_cents: int
    deposit_cents: int
    paid_cents: int  # received for the price and not refunded
    balance_due_cents: int  # left to pay of the price after the deposit
    fees_cents: int  # no-show / late-cancel fees charged or owed
    fees_paid_cents: int
    fees_due_cents: int
    currency: str

    @property
    def due_cents(self) -> int:
        return self.balance_due_cents + self.fees_due_cents


def money_summary(s: Session, booking: Booking) -> MoneySummary:
    """The booking's paid / due figures (two small queries)."""
    assert booking.id is not None
    rows = s.exec(select(Payment.amount_cents, Payment.refunded_cents, Payment.status).where(  # type: ignore[call-overload]
        Payment.booking_id == booking.id)).all()
    paid = sum(max(a - (r or 0), 0) for a, r, st in rows if st in _PAID)
    fees = s.exec(select(BookingFee.amount_cents, BookingFee.status).where(  # type: ignore[call-overload]
        BookingFee.booking_id == booking.id)).all()
    fees_due = sum(a for a, st in fees if st in FEE_OWED_STATUSES)
    fees_paid = sum(a for a, st in fees if st == "charged")
    balance = booking.balance_due_cents if booking.status not in ("cancelled",) else 0
    return MoneySummary(price_cents=booking.price_cents, deposit_cents=booking.deposit_cents, paid_cents=paid,
                        balance_due_cents=balance, fees_cents=booking.fees_cents, fees_paid_cents=fees_paid,
                        fees_due_cents=fees_due, currency=booking.currency)
