"""Discount codes (issue 26, point 1): a code a customer enters at review for a lower price.

A code is stored normalised (trimmed, upper case: codes are case-insensitive) and unique.
`provider_id` is the provider whose bookables it may apply to (None: an admin's code, any
bookable). Its uses are not a counter: they are the bookings that carry `discount_code_id`
and still hold it (services/discounts.py: `USE_HELD`), so a cancelled or lapsed booking
gives its use back by itself. The rules: services/discounts.py; the price: services/pricing.py.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class DiscountCode(SQLModel, table=True):
    __tablename__ = "discount_codes"
    __table_args__ = (
        CheckConstraint("percent_off IS NULL OR (percent_off >= 1 AND percent_off <= 100)",
                        name="ck_discount_codes_percent"),
        CheckConstraint("amount_off_cents IS NULL OR amount_off_cents >= 1", name="ck_discount_codes_amount"),
        CheckConstraint("(percent_off IS NULL) <> (amount_off_cents IS NULL)", name="ck_discount_codes_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    # whose bookables it applies to: a provider's own code; None = an admin's (any bookable)
    provider_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="users.id")
    percent_off: int | None = None
    amount_off_cents: int | None = None
    currency: str | None = Field(default=None, max_length=3)  # a fixed amount's currency
    valid_from: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    valid_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    max_uses: int | None = None
    max_uses_per_customer: int | None = None
    min_price_cents: int = 0
    # limits: bookable ids and kinds (empty: no limit)
    service_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    kinds: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
