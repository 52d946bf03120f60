"""services/pricing.quote: list price × quantity → discount → price, the one home of what a
booking costs (pure: no database). Percent discounts round half-up (money.percent_of)."""
from __future__ import annotations

import pytest

from booking_app.models import Bookable, DiscountCode
from booking_app.services import pricing


def bookable(price: int, currency: str = "EUR") -> Bookable:
    return Bookable(id=1, provider_id=1, kind="room", name="R", price_cents=price, currency=currency)


@pytest.mark.parametrize("price, qty, percent, discount", [
    (1225, 1, 10, 123),   # 122.5 → 123 (half-up, not banker's 122)
    (1235, 1, 10, 124),   # 123.5 → 124
    (1215, 1, 10, 122),   # 121.5 → 122
    (5, 1, 50, 3),        # 2.5 → 3
    (1, 1, 1, 0),         # 0.01 → 0
    (999, 3, 33, 989),    # 2997 × 33 % = 989.01 → 989
    (1000, 1, 100, 1000),
    (0, 1, 50, 0),
])
def test_percent_codes_round_half_up_on_the_whole_booking(price, qty, percent, discount):
    q = pricing.quote(bookable(price), qty, DiscountCode(id=7, code="P", percent_off=percent))
    assert (q.list_price_cents, q.discount_cents, q.price_cents) == (price * qty, discount, price * qty - discount)
    assert (q.discount_code_id, q.discount_code, q.currency) == (7, "P", "EUR")


@pytest.mark.parametrize("price, qty, amount, discount", [(1000, 1, 250, 250), (1000, 2, 250, 250),
                                                         (100, 1, 250, 100), (0, 1, 1, 0)])
def test_fixed_codes_take_off_once_per_booking_never_below_zero(price, qty, amount, discount):
    q = pricing.quote(bookable(price), qty, DiscountCode(id=8, code="F", amount_off_cents=amount, currency="EUR"))
    assert (q.discount_cents, q.price_cents) == (discount, price * qty - discount)


def test_without_a_code_the_price_is_the_list_price():
    q = pricing.quote(bookable(1500, "JPY"), 3)
    assert q == pricing.PriceQuote(list_price_cents=4500, discount_cents=0, price_cents=4500, currency="JPY")
