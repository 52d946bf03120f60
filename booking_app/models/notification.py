"""Notification Service tables: the outbox and calendar-feed tokens."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class NotificationStatus(str, enum.Enum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"


class Notification(SQLModel, table=True):
    """Outbox row: written inside the business transaction, delivered by the relay job."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=8)  # email | sms
    to: str = Field(max_length=254)
    template: str = Field(max_length=64)
    locale: str = Field(default="en", max_length=8)
    context: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str = Field(max_length=200, unique=True)
    booking_id: int | None = Field(default=None, foreign_key="bookings.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    status: str = Field(default=NotificationStatus.pending.value, max_length=16)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, max_length=2000)
    # which adapter delivered it (smtp | sendgrid | twilio | console) and its message id
    transport: str | None = Field(default=None, max_length=16)
    provider_ref: str | None = Field(default=None, max_length=255)
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class FeedScope(str, enum.Enum):
    bookings = "bookings"  # the user's own upcoming bookings
    schedule = "schedule"  # a provider's schedule: bookings of the provider's bookables


class CalendarFeedToken(SQLModel, table=True):
    """Secret, revocable token for a user's `.ics` feed (only its hash is stored)."""

    __tablename__ = "calendar_feed_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    scope: str = Field(default=FeedScope.bookings.value, max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
