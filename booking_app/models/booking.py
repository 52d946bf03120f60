"""Booking Service tables."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, CheckConstraint, Column, Index, text
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class BookingStatus(str, enum.Enum):
    pending = "pending"
    confirmed = "confirmed"
    cancelled = "cancelled"
    completed = "completed"
    no_show = "no_show"
    # approval (issue 24): a request holding its seats until approval_expires_at
    awaiting_approval = "awaiting_approval"


#: Statuses that hold capacity (pending and awaiting_approval only until hold_expires_at,
#: which an approval request sets to its approval_expires_at: services/approvals.py).
ACTIVE_STATUSES = (BookingStatus.pending.value, BookingStatus.confirmed.value, BookingStatus.awaiting_approval.value)
#: The statuses whose seats are held only until hold_expires_at.
HELD_STATUSES = (BookingStatus.pending.value, BookingStatus.awaiting_approval.value)


class Booking(SQLModel, table=True):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="ck_bookings_quantity"),
        CheckConstraint("end_at > start_at", name="ck_bookings_range"),
        # bookable + start, covering what the per-bookable reports read (bookings by
        # bookable, rates, utilization): they never touch the wide table rows
        Index("ix_bookings_bookable_start", "bookable_id", "start_at", "status", "quantity", "end_at",
              "hold_expires_at"),
        Index("ix_bookings_provider_start", "provider_id", "start_at"),
        Index("ix_bookings_user_start", "user_id", "start_at"),
        Index("ix_bookings_status_hold", "status", "hold_expires_at"),
        # covering for reports by creation time (bookings made, active users)
        Index("ix_bookings_created_at", "created_at", "user_id", "quantity", "status", "bookable_id"),
        # covering for reports by the day a booking takes place (and by status)
        Index("ix_bookings_start_at", "start_at", "status", "quantity"),
        # only cancelled bookings have cancelled_at: small, and what "cancelled today" and
        # the missed-refund sweep filter on
        Index("ix_bookings_cancelled_at", "cancelled_at", sqlite_where=text("cancelled_at IS NOT NULL"),
              postgresql_where=text("cancelled_at IS NOT NULL")),
        # guests' active unpaid bookings per email / per client IP (the guest caps, migration 0005)
        Index("ix_bookings_guest_email", "guest_email", "end_at", sqlite_where=text("user_id IS NULL"),
              postgresql_where=text("user_id IS NULL")),
        Index("ix_bookings_guest_ip", "guest_ip", "end_at", sqlite_where=text("guest_ip IS NOT NULL"),
              postgresql_where=text("guest_ip IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=16, unique=True, index=True)
    bookable_id: int = Field(foreign_key="bookables.id")
    provider_id: int = Field(foreign_key="users.id")
    session_id: int | None = Field(default=None, foreign_key="event_sessions.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id")
    guest_name: str | None = Field(default=None, max_length=200)
    guest_email: str | None = Field(default=None, max_length=254)
    guest_phone: str | None = Field(default=None, max_length=20)
    # a guest booking's client IP as a keyed hash (services/guest_bookings.py: guest caps), never the address
    guest_ip: str | None = Field(default=None, max_length=32)
    # bumped when a guest's manage link is re-issued: links signed for an older version stop working
    manage_link_version: int = 0
    locale: str = Field(default="en", max_length=8)
    start_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    end_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # the time the booking blocks, buffers included (what overlaps are checked against)
    block_start_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    block_end_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # true when the bookable has capacity 1 (rooms/services): the PostgreSQL exclusion
    # constraint forbids overlapping active exclusive bookings of one bookable
    exclusive: bool = False
    quantity: int = 1
    status: str = Field(default=BookingStatus.confirmed.value, max_length=24)
    hold_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    price_cents: int = 0
    currency: str = Field(default="USD", max_length=3)
    notes: str = Field(default="", max_length=2000)
    cancel_reason: str | None = Field(default=None, max_length=500)
    refund_due_cents: int = 0
    cancelled_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    version: int = 1
    # ics SEQUENCE: bumped on every change the customer's calendar must follow
    sequence: int = 0
    # approval (issue 24, migration 0011): when an awaiting_approval request lapses, and the
    # payment method chosen with it (applied once approved)
    approval_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    approval_method: str | None = Field(default=None, max_length=16)
    # recurring series (issue 24, point 3, migration 0012): the booking_series row this booking
    # is an occurrence of (no foreign key: a column SQLite can drop in place)
    series_id: int | None = Field(default=None, index=True)
    # booking questions (issue 24, point 4; migration 0013): a snapshot of the questions
    # answered (id, type, label(s) at the time, value; services/booking_questions.py), null when none
    answers: list | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    # discount codes (issue 26, point 1, migration 0014): the price before the discount (the
    # bookable's price x quantity), the discount, and the code used (no foreign key: a column
    # SQLite can drop in place; codes are never deleted). price_cents stays what is paid.
    list_price_cents: int | None = None
    discount_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    discount_code_id: int | None = Field(default=None, index=True)
    # deposits and fees (issue 26, migration 0015): the deposit paid online at booking (0: the
    # whole price), what is left of the price after it, the no-show/late-cancel fees charged
    # or due (booking_fees), and the Stripe customer whose card was saved with consent
    deposit_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    balance_due_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    fees_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    stripe_customer_ref: str | None = Field(default=None, max_length=255)


class GuestBookingRequest(SQLModel, table=True):
    """A guest's booking request waiting for the guest to confirm their email address
    (GUEST_EMAIL_CONFIRMATION): it holds no capacity; opening the emailed link books it
    through the normal capacity path (services/bookings.py: confirm_guest_request)."""

    __tablename__ = "guest_booking_requests"
    __table_args__ = (Index("ix_guest_booking_requests_email", "guest_email", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    bookable_id: int = Field(foreign_key="bookables.id", index=True)
    start_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    quantity: int = 1
    guest_name: str = Field(max_length=200)
    guest_email: str = Field(max_length=254)
    guest_phone: str | None = Field(default=None, max_length=20)
    guest_ip: str | None = Field(default=None, max_length=32)
    notes: str = Field(default="", max_length=2000)
    payment_method: str | None = Field(default=None, max_length=16)
    locale: str = Field(default="en", max_length=8)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # the booking its link made (the link then only shows it again)
    booking_id: int | None = Field(default=None, foreign_key="bookings.id")
    # discount codes (issue 26, migration 0014): the code given with the request, checked again at booking
    discount_code: str | None = Field(default=None, max_length=32)
    # booking questions (issue 24, point 4): the checked answers, booked with the request
    answers: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
