"""Busy times from outside calendars: a provider's iCalendar subscriptions and the busy
intervals their last good sync produced (UTC, split into pieces of at most one day so that
an overlap query needs only a bounded `start_at` range, like bookings' LOOKBACK)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow

#: the longest stored busy piece: an overlap query then needs only `start_at >= a - MAX_BUSY_PIECE`
MAX_BUSY_PIECE = dt.timedelta(days=1)


class CalendarSubscription(SQLModel, table=True):
    """An iCalendar feed URL of a provider (`owner_id`), for one bookable (`service_id`) or,
    when None, all of the provider's bookables. Basic-auth credentials (CalDAV-style private
    feeds) are sealed (services/mfa.seal). `etag`/`last_modified`: the conditional GET's
    validators of the last good fetch. `next_sync_at`/`claimed_until`: the sync job's queue."""

    __tablename__ = "calendar_subscriptions"
    __table_args__ = (Index("ix_calendar_subscriptions_next_sync_at", "next_sync_at"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    service_id: int | None = Field(default=None, foreign_key="bookables.id", ondelete="CASCADE")
    url: str = Field(max_length=2000)
    credentials_sealed: str | None = Field(default=None, max_length=2000)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    #: how far the stored busy set reaches (a conditional GET only while it reaches far enough)
    expanded_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_synced_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_attempt_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, max_length=2000)
    next_sync_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class CalendarBusyInterval(SQLModel, table=True):
    """A busy piece [start_at, end_at) (UTC, at most one day long) of a subscription: it
    takes the whole capacity of the provider's bookables (`bookable_id` None) or of one."""

    __tablename__ = "calendar_busy_intervals"
    __table_args__ = (Index("ix_calendar_busy_intervals_provider_start", "provider_id", "start_at"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="calendar_subscriptions.id", index=True, ondelete="CASCADE")
    provider_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    bookable_id: int | None = Field(default=None, foreign_key="bookables.id", ondelete="CASCADE")
    start_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    end_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
