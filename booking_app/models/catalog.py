"""Calendar Service tables: bookables, weekly hours, date exceptions, event sessions."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, CheckConstraint, Column, Index, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class BookableKind(str, enum.Enum):
    room = "room"
    service = "service"
    event = "event"


class Bookable(SQLModel, table=True):
    __tablename__ = "bookables"
    __table_args__ = (
        CheckConstraint("capacity >= 1", name="ck_bookables_capacity"),
        CheckConstraint("duration_minutes >= 1", name="ck_bookables_duration"),
        CheckConstraint("price_cents >= 0", name="ck_bookables_price"),
        CheckConstraint("refund_percent >= 0 AND refund_percent <= 100", name="ck_bookables_refund"),
        Index("ix_bookables_active_kind", "is_active", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200, index=True)
    description: str = Field(default="", max_length=5000)
    location: str = Field(default="", max_length=200, index=True)
    duration_minutes: int = 60
    capacity: int = 1
    price_cents: int = 0
    currency: str = Field(default="USD", max_length=3)
    timezone: str = Field(default="UTC", max_length=64)
    is_active: bool = True
    # policy
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    max_advance_days: int = 365
    cancel_cutoff_hours: int = 0
    refund_percent: int = 100
    # comma-separated reminder offsets in minutes before start, e.g. "1440,60"; empty = defaults
    reminder_offsets: str = Field(default="", max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # waitlist (issue 24, point 1; migration 0010): minutes an offer holds its seats (None:
    # WAITLIST_OFFER_MINUTES); a closed waitlist takes no one and offers nothing
    waitlist_offer_minutes: int | None = Field(default=None)
    waitlist_closed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # approval (issue 24, migration 0011): bookings wait for the provider's approval, for at
    # most approval_expiry_hours (None: the APPROVAL_EXPIRY_HOURS setting)
    requires_approval: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    approval_expiry_hours: int | None = None
    # deposits and fees (issue 26, migration 0015): the deposit Checkout charges at booking
    # (a percent of the price or a fixed amount, at most one; both None: the whole price),
    # and the fees for a no-show or a cancellation after the cut-off (0: none)
    deposit_percent: int | None = None
    deposit_cents: int | None = None
    no_show_fee_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    late_cancel_fee_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # booking questions (issue 24, point 4; migration 0013; services/booking_questions.py):
    # the typed questions asked when booking, null when none
    questions: list | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))


class AvailabilityRule(SQLModel, table=True):
    """Weekly open hours: weekday 0 = Monday; several ranges per day allowed."""

    __tablename__ = "availability_rules"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="ck_availability_rules_weekday"),
        CheckConstraint("start_time < end_time", name="ck_availability_rules_range"),
    )

    id: int | None = Field(default=None, primary_key=True)
    bookable_id: int = Field(foreign_key="bookables.id", index=True, ondelete="CASCADE")
    weekday: int
    start_time: dt.time
    end_time: dt.time


class AvailabilityException(SQLModel, table=True):
    """A closed day, or special hours replacing the weekly hours on that date."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (Index("ix_availability_exceptions_bookable_date", "bookable_id", "date"),)

    id: int | None = Field(default=None, primary_key=True)
    bookable_id: int = Field(foreign_key="bookables.id", ondelete="CASCADE")
    date: dt.date
    closed: bool = True
    start_time: dt.time | None = None
    end_time: dt.time | None = None


class EventSession(SQLModel, table=True):
    """An explicit dated session of an event (kind=event)."""

    __tablename__ = "event_sessions"
    __table_args__ = (
        UniqueConstraint("bookable_id", "start_at", name="uq_event_sessions_start"),
        CheckConstraint("capacity >= 1", name="ck_event_sessions_capacity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    bookable_id: int = Field(foreign_key="bookables.id", index=True, ondelete="CASCADE")
    start_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    end_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    capacity: int
    is_cancelled: bool = False
    # seats of the session's pending/confirmed bookings, kept by triggers on bookings
    # (migration 0003); never written by the application
    seats_taken: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
