"""Request/response models of the catalog and availability routes (Calendar Service)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from booking_app.api.schemas import ApiModel, MultiLineStr, RequestModel, SingleLineStr, UtcDateTime
from booking_app.api.schemas_questions import QuestionIn, QuestionOut, questions_field
from booking_app.services.catalog import MAX_REMINDER_OFFSET_MINUTES, MAX_REMINDER_OFFSETS

Kind = Literal["room", "service", "event"]
# integer fields are strict (JSON numbers only, no "5", no true): wrong types are a 422

DURATION = Field(ge=1, le=24 * 60, strict=True)
CAPACITY = Field(ge=1, le=100_000, strict=True)
PRICE = Field(ge=0, le=100_000_000, strict=True)
HHMM = Field(min_length=4, max_length=5, examples=["09:00"])
ReminderOffset = Annotated[int, Field(ge=1, le=MAX_REMINDER_OFFSET_MINUTES, strict=True)]
REMINDERS_DOC = ("booking reminders, in minutes before the start (e.g. [1440, 60] = a day and an hour before); "
                 "[] = the site's defaults")


def reminders_field() -> object:
    return Field(default=None, max_length=MAX_REMINDER_OFFSETS, examples=[[1440, 60]],
                 description=REMINDERS_DOC + " (null = the defaults too)")


class BookableOut(ApiModel):
    id: int
    provider_id: int
    provider_name: str
    kind: Kind
    name: str
    description: str
    location: str
    duration_minutes: int
    capacity: int
    price_cents: int
    currency: str
    timezone: str
    is_active: bool
    buffer_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    max_advance_days: int
    cancel_cutoff_hours: int
    refund_percent: int
    reminder_offsets: list[int] = Field(description=REMINDERS_DOC + "; distinct, largest first")
    created_at: UtcDateTime
    updated_at: UtcDateTime
    questions: list[QuestionOut] = Field(default_factory=list, description="booking questions (issue 24)")
    requires_approval: bool = Field(default=False, description="bookings wait for the provider's approval")
    approval_expiry_hours: int | None = Field(default=None, description=(
        "hours a booking awaiting approval holds its seats; null: the server's APPROVAL_EXPIRY_HOURS"))
    deposit_percent: int | None = Field(default=None, description="the deposit charged online at booking, in "
                                        "percent of the price (half-up to a whole minor unit); or deposit_cents")
    deposit_cents: int | None = Field(default=None, description="the deposit as a fixed amount (at most the price)")
    no_show_fee_cents: int = Field(default=0, description="charged when the provider marks a no-show (0: none)")
    late_cancel_fee_cents: int = Field(default=0, description=(
        "charged when the customer cancels after the cut-off, which they may then do until the start (0: none)"))


class BookablePageOut(ApiModel):
    items: list[BookableOut]
    total: int


class BookableCreateIn(RequestModel):
    name: SingleLineStr = Field(min_length=1, max_length=200)
    kind: Kind
    description: MultiLineStr | None = Field(default=None, max_length=5000)
    location: SingleLineStr | None = Field(default=None, max_length=200)
    duration_minutes: int = DURATION
    capacity: int = CAPACITY
    price_cents: int = PRICE
    currency: SingleLineStr = Field(min_length=3, max_length=3, examples=["EUR"])
    timezone: SingleLineStr = Field(min_length=1, max_length=64, examples=["Europe/Madrid"])
    buffer_minutes: int | None = Field(default=None, ge=0, le=24 * 60, strict=True)
    buffer_before_minutes: int | None = Field(default=None, ge=0, le=24 * 60, strict=True)
    buffer_after_minutes: int | None = Field(default=None, ge=0, le=24 * 60, strict=True)
    min_notice_minutes: int | None = Field(default=None, ge=0, le=365 * 24 * 60, strict=True)
    max_advance_days: int | None = Field(default=None, ge=1, le=3 * 366, strict=True)
    cancel_cutoff_hours: int | None = Field(default=None, ge=0, le=365 * 24, strict=True)
    refund_percent: int | None = Field(default=None, ge=0, le=100, strict=True)
    provider_id: int | None = Field(default=None, ge=1, le=2**31 - 1, strict=True,
                                    description="admins only: the provider who owns it")
    reminder_offsets: list[ReminderOffset] | None = reminders_field()
    questions: list[QuestionIn] | None = questions_field()
    requires_approval: bool | None = Field(default=None, strict=True,
                                           description="bookings wait for the provider's approval")
    approval_expiry_hours: int | None = Field(default=None, ge=1, le=30 * 24, strict=True,
                                              description="hours a request holds its seats (null: the default)")
    deposit_percent: int | None = Field(default=None, ge=1, le=100, strict=True,
                                        description="deposit in percent of the price (null: none)")
    deposit_cents: int | None = Field(default=None, ge=1, le=100_000_000, strict=True,
                                      description="deposit as an amount (null: none; not with deposit_percent)")
    no_show_fee_cents: int | None = Field(default=None, ge=0, le=100_000_000, strict=True)
    late_cancel_fee_cents: int | None = Field(default=None, ge=0, le=100_000_000, strict=True)


class BookableUpdateIn(RequestModel):
    name: SingleLineStr | None = Field(default=None, min_length=1, max_length=200)
    description: MultiLineStr | None = Field(default=None, max_length=5000)
    location: SingleLineStr | None = Field(default=None, max_length=200)
    duration_minutes: int | None = Field(default=None, ge=1, le=24 * 60, strict=True)
    capacity: int | None = Field(default=None, ge=1, le=100_000, strict=True,
                                 description="events: upcoming sessions that had the old capacity get the new one "
                                             "(seats already sold stay sold)")
    price_cents: int | None = Field(default=None, ge=0, le=100_000_000, strict=True)
    currency: SingleLineStr | None = Field(default=None, min_length=3, max_length=3)
    timezone: SingleLineStr | None = Field(default=None, min_length=1, max_length=64)
    is_active: bool | None = Field(default=None, strict=True)
    buffer_minutes: int | None = Field(default=None, ge=0, le=24 * 60, strict=True)
    buffer_before_minutes: int | None = Field(default=None, ge=0, le=24 * 60, strict=True)
    buffer_after_minutes: int | None = Field(default=None, ge=0, le=24 * 60, strict=True)
    min_notice_minutes: int | None = Field(default=None, ge=0, le=365 * 24 * 60, strict=True)
    max_advance_days: int | None = Field(default=None, ge=1, le=3 * 366, strict=True)
    cancel_cutoff_hours: int | None = Field(default=None, ge=0, le=365 * 24, strict=True)
    refund_percent: int | None = Field(default=None, ge=0, le=100, strict=True)
    reminder_offsets: list[ReminderOffset] | None = reminders_field()
    questions: list[QuestionIn] | None = questions_field()
    requires_approval: bool | None = Field(default=None, strict=True,
                                           description="bookings wait for the provider's approval")
    approval_expiry_hours: int | None = Field(default=None, ge=1, le=30 * 24, strict=True,
                                              description="hours a request holds its seats (null: the default)")
    deposit_percent: int | None = Field(default=None, ge=1, le=100, strict=True,
                                        description="deposit in percent of the price (null: none)")
    deposit_cents: int | None = Field(default=None, ge=1, le=100_000_000, strict=True,
                                      description="deposit as an amount (null: none; not with deposit_percent)")
    no_show_fee_cents: int | None = Field(default=None, ge=0, le=100_000_000, strict=True)
    late_cancel_fee_cents: int | None = Field(default=None, ge=0, le=100_000_000, strict=True)


class WeeklyIn(RequestModel):
    weekday: int = Field(ge=0, le=6, strict=True, description="0 = Monday")
    start: SingleLineStr = HHMM
    end: SingleLineStr = Field(min_length=4, max_length=5, examples=["17:00"], description='"24:00" = end of day')


class ExceptionIn(RequestModel):
    date: dt.date
    closed: bool | None = Field(default=None, strict=True)
    start: SingleLineStr | None = Field(default=None, min_length=4, max_length=5)
    end: SingleLineStr | None = Field(default=None, min_length=4, max_length=5)


class AvailabilityIn(RequestModel):
    weekly: list[WeeklyIn] = Field(default_factory=list, max_length=7 * 24)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=1000)


class WeeklyOut(ApiModel):
    weekday: int
    start: str
    end: str


class ExceptionOut(ApiModel):
    date: dt.date
    closed: bool
    start: str | None = None
    end: str | None = None


class OutsideBookingOut(ApiModel):
    id: int
    reference: str
    start: UtcDateTime
    end: UtcDateTime
    status: str
    quantity: int


class AvailabilityOut(ApiModel):
    bookable_id: int
    weekly: list[WeeklyOut]
    exceptions: list[ExceptionOut]
    outside_bookings: list[OutsideBookingOut] = Field(
        default_factory=list, description="future bookings now outside the hours (kept; for the provider to handle)")


class SessionIn(RequestModel):
    start: AwareDatetime
    capacity: int | None = Field(default=None, ge=1, le=100_000, strict=True)


class SessionOut(ApiModel):
    id: int
    bookable_id: int
    start: UtcDateTime
    end: UtcDateTime
    capacity: int
    is_cancelled: bool


class SlotOut(ApiModel):
    start: UtcDateTime
    end: UtcDateTime
    remaining: int


class SlotsOut(ApiModel):
    slots: list[SlotOut]
