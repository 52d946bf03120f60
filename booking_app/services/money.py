"""Money as text: a price typed by a person ↔ integer minor units of its currency.

The one home of price parsing and of a currency's minor unit: "12.50" EUR → 1250, "1200" JPY → 1200 (the currency's
exponent, from Babel's currency data). The catalog checks the stored amount's range.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import UnknownCurrencyError, get_currency_precision

from booking_app.i18n import N_
from booking_app.services.errors import InvalidInput

DEFAULT_EXPONENT = 2  # an unknown or malformed currency code
PRICE_FIELD = "price_cents"


def exponent(currency: str) -> int:
    """The number of decimal places of `currency`'s minor unit (EUR 2, JPY 0, KWD 3)."""
    code = (currency or "").strip().upper()
    if len(code) != 3:
        return DEFAULT_EXPONENT
    try:
        return int(get_currency_precision(code))
    except (UnknownCurrencyError, ValueError, TypeError):
        return DEFAULT_EXPONENT


def parse_price(text: str, currency: str) -> int:
    """A typed price → minor units: "12.50" → 1250, "12,5" → 1250, "" → 0 (free).

    InvalidInput (field `price_cents`) for anything that is not a non-negative amount
    with at most the currency's decimal places."""
    raw = (text or "").strip().replace(",", ".")
    if not raw:
        return 0
    bad = InvalidInput(N_("Enter a price like 12.50."), field=PRICE_FIELD)
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise bad from None
    digits = exponent(currency)
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal(1).scaleb(-digits)):
        raise bad
    return int(amount.scaleb(digits))


def to_decimal(minor: int, currency: str) -> Decimal:
    """Minor units → the amount: 1250 EUR → Decimal("12.50"), 1200 JPY → Decimal("1200")."""
    return Decimal(int(minor or 0)).scaleb(-exponent(currency))


def format_price(minor: int, currency: str) -> str:
    """Minor units → the amount as `parse_price` reads it back: 1250 EUR → "12.50"."""
    digits = exponent(currency)
    if not digits:
        return str(int(minor))
    return str(Decimal(int(minor)).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))


def percent_of(minor: int, percent: int | Decimal | str) -> int:
    """`percent` % of an amount in minor units, rounded half-up to a whole minor unit.

    The one rounding rule for every derived amount (discounts, deposits, fees): half a cent
    goes up, the rule people check by hand (banker's rounding would make 10 % of 12.25 → 1.22
    but 10 % of 12.35 → 1.24). 1225 × 10 % → 123; 1235 × 10 % → 124; 5 × 50 % → 3; 0 → 0."""
    share = Decimal(int(minor)) * Decimal(str(percent)) / Decimal(100)
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
