"""Outgoing webhooks: endpoints (who gets which events, a sealed signing secret) and the
delivery log (one row per event and endpoint, retried by the relay)."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class WebhookDeliveryStatus(str, enum.Enum):
    pending = "pending"  # waiting for its turn or its next attempt
    sending = "sending"  # claimed by a relay (lease until claimed_until)
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # given up (attempts exhausted, endpoint gone or refused)


class WebhookEndpoint(SQLModel, table=True):
    """A receiver URL. `all_bookables`: an admin's endpoint (every event); otherwise only
    events of the owner's bookables. The secret is sealed (services/mfa.seal) since we sign
    with it; after a rotation the previous one signs too until `previous_secret_until`."""

    __tablename__ = "webhook_endpoints"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    all_bookables: bool = False
    url: str = Field(max_length=2000)
    events: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    secret_sealed: str = Field(max_length=400)
    previous_secret_sealed: str | None = Field(default=None, max_length=400)
    previous_secret_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: the exact JSON body (signed afresh at each attempt) and
    the log of its attempts. Per endpoint, rows go out in id order (services/webhooks.py)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "id"),
        Index("ix_webhook_deliveries_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE")
    #: the outbox row it came from (unique: one delivery per outbox row; None: a redelivery)
    notification_id: int | None = Field(default=None, unique=True)
    event_id: str = Field(max_length=64)
    event: str = Field(max_length=64)
    booking_id: int | None = Field(default=None, index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=WebhookDeliveryStatus.pending.value, max_length=16)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    response_code: int | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    last_attempt_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    delivered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
