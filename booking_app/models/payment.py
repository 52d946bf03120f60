"""Payment Service tables."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class PaymentStatus(str, enum.Enum):
    pending = "pending"
    requires_action = "requires_action"
    succeeded = "succeeded"
    failed = "failed"
    refunded = "refunded"
    partially_refunded = "partially_refunded"
    cancelled = "cancelled"


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_booking_created", "booking_id", "created_at"),
        # covering for revenue reports (paid payments by day, bookable, method, currency)
        Index("ix_payments_created_at", "created_at", "status", "currency", "amount_cents", "method", "booking_id"),
        Index("ix_payments_status", "status"),
        # the few payments with a refund, by last change, covering what the revenue reports
        # read of them (refunds recorded without a Refund row)
        Index("ix_payments_refunded_updated", "updated_at", "status", "refunded_cents", "currency", "method",
              "booking_id", sqlite_where=text("refunded_cents > 0"), postgresql_where=text("refunded_cents > 0")),
    )

    id: int | None = Field(default=None, primary_key=True)
    booking_id: int = Field(foreign_key="bookings.id")
    method: str = Field(max_length=32)
    provider: str = Field(default="manual", max_length=16)  # stripe | manual
    provider_ref: str | None = Field(default=None, max_length=255, index=True)  # checkout session id
    payment_intent_ref: str | None = Field(default=None, max_length=255, index=True)
    checkout_url: str | None = Field(default=None, max_length=2000)
    # when the checkout session stops accepting payment (requested from Stripe; kept so
    # that a retry of a failed create call sends exactly the same parameters)
    expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    amount_cents: int
    refunded_cents: int = 0
    currency: str = Field(max_length=3)
    status: str = Field(default=PaymentStatus.pending.value, max_length=24)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # deposits (issue 26, migration 0015): what the payment is for: booking (the price, or
    # its deposit) | balance (the rest of the price after a deposit)
    purpose: str = Field(default="booking", max_length=16, sa_column_kwargs={"server_default": "booking"})


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_status_claimed", "status", "claimed_until"),
        # by payment, covering the sum of a payment's succeeded refunds (revenue reports)
        Index("ix_refunds_payment_id", "payment_id", "status", "amount_cents"),
    )

    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payments.id")
    amount_cents: int
    currency: str = Field(max_length=3)
    provider_ref: str | None = Field(default=None, max_length=255)
    reason: str = Field(default="", max_length=200)
    # pending (queued: executed after commit, retried by the sweep) | processing (claimed by
    # one worker until claimed_until) | succeeded | failed
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ProcessedWebhookEvent(SQLModel, table=True):
    """Each provider event id once: written in the same transaction as its effect."""

    __tablename__ = "processed_webhook_events"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(default="stripe", max_length=16)
    event_id: str = Field(max_length=255, unique=True)
    event_type: str = Field(max_length=100)
    processed_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class BookingFee(SQLModel, table=True):
    """A no-show or late-cancel fee (issue 26, migration 0015; services/fees.py).

    status: due (recorded: no Stripe, no saved card, or not charged yet) | charged (the
    saved card paid off-session, or the customer paid the link) | failed (declined: still
    due) | requires_action (the bank asks the customer to authenticate: `checkout_url`
    was sent to them) | charging (a charge is under way; one a dead process left is finished
    by the fee_recovery sweep) | waived (the provider let it go)."""

    __tablename__ = "booking_fees"
    __table_args__ = (
        UniqueConstraint("booking_id", "kind", name="uq_booking_fees_booking_kind"),
        Index("ix_booking_fees_created_status", "created_at", "status", "currency", "amount_cents"),
    )

    id: int | None = Field(default=None, primary_key=True)
    booking_id: int = Field(foreign_key="bookings.id", index=True)
    kind: str = Field(max_length=16)  # no_show | late_cancel
    amount_cents: int
    currency: str = Field(max_length=3)
    status: str = Field(default="due", max_length=16)
    payment_intent_ref: str | None = Field(default=None, max_length=255)
    checkout_ref: str | None = Field(default=None, max_length=255, index=True)
    checkout_url: str | None = Field(default=None, max_length=2000)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
