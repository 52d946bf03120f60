"""Waitlist tables (issue 24, point 1): who waits for a full slot or session, in order.

An entry waits for one start of one bookable (`start_at`, UTC; an event's session). When
seats free up, `services/waitlist.offer_freed` holds them for the next entries as `pending`
bookings (`booking_id`) until `offer_expires_at` — the capacity engine counts them like any
hold, so nobody else can take them. docs/waitlist.md.
"""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, CheckConstraint, Column, Index
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class WaitlistStatus(str, enum.Enum):
    waiting = "waiting"
    offered = "offered"
    accepted = "accepted"
    declined = "declined"
    lapsed = "lapsed"
    left = "left"
    closed = "closed"  # the provider closed the bookable's waitlist


#: statuses of an entry still in the queue (waiting, or holding an offer)
OPEN_STATUSES = (WaitlistStatus.waiting.value, WaitlistStatus.offered.value)


class WaitlistEntry(SQLModel, table=True):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="ck_waitlist_entries_quantity"),
        # the queue of one start (and a provider's services' queues): open entries in order
        Index("ix_waitlist_entries_slot", "bookable_id", "start_at", "status", "id"),
        Index("ix_waitlist_entries_provider", "provider_id", "status", "start_at"),
        Index("ix_waitlist_entries_user", "user_id", "status"),
        Index("ix_waitlist_entries_booking", "booking_id"),
        Index("ix_waitlist_entries_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    bookable_id: int = Field(foreign_key="bookables.id")
    provider_id: int = Field(foreign_key="users.id")
    session_id: int | None = Field(default=None, foreign_key="event_sessions.id")
    start_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    quantity: int = 1
    user_id: int | None = Field(default=None, foreign_key="users.id")
    guest_name: str | None = Field(default=None, max_length=200)
    guest_email: str | None = Field(default=None, max_length=254)
    guest_phone: str | None = Field(default=None, max_length=20)
    locale: str = Field(default="en", max_length=8)
    status: str = Field(default=WaitlistStatus.waiting.value, max_length=16)
    # the pending booking holding the offered seats (and, once accepted, the booking)
    booking_id: int | None = Field(default=None, foreign_key="bookings.id")
    offered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    offer_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    decided_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # booking questions (issue 24, point 4): the answers checked at join (booking_questions
    # snapshot), given to the offer's held booking; null when none asked (or an older entry)
    answers: list | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
