"""Recurring series (issue 24, point 3): one row per series; its occurrences are ordinary
bookings carrying `bookings.series_id` (services/series.py)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class BookingSeries(SQLModel, table=True):
    """The rule a series was booked with, who booked it, and its mode."""

    __tablename__ = "booking_series"

    id: int | None = Field(default=None, primary_key=True)
    bookable_id: int = Field(foreign_key="bookables.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    guest_email: str | None = Field(default=None, max_length=254)
    frequency: str = Field(max_length=8)
    interval: int = 1
    count: int | None = None
    until: dt.date | None = None
    by: str = Field(default="date", max_length=8)
    mode: str = Field(default="all_or_nothing", max_length=16)
    quantity: int = 1
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
