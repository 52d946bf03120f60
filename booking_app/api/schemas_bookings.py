"""Request/response models of the booking routes (Booking Service)."""
from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from booking_app.api.schemas import MAX_ID, ApiModel, MultiLineStr, RequestModel, SingleLineStr, UtcDateTime
from booking_app.api.schemas_questions import AnswersIn, AnswersOut, answers_field
from booking_app.api.schemas_series import RecurrenceIn

BookingStatusName = Literal["pending", "confirmed", "cancelled", "completed", "no_show", "awaiting_approval"]


class GuestIn(RequestModel):
    name: SingleLineStr = Field(min_length=1, max_length=200)
    email: SingleLineStr = Field(min_length=3, max_length=254)
    phone: SingleLineStr | None = Field(default=None, max_length=32)


class BookingCreateIn(RequestModel):
    service_id: int = Field(ge=1, le=MAX_ID, strict=True)
    start: AwareDatetime = Field(description="a free slot's start (ISO 8601 with offset)")
    quantity: int = Field(default=1, ge=1, le=1000, strict=True)
    notes: MultiLineStr | None = Field(default=None, max_length=2000)
    guest: GuestIn | None = Field(default=None, description="required without a token")
    payment_method: Literal["on_site", "card", "paypal"] | None = Field(
        default=None, description="on_site confirms at once; card/paypal hold the seats until paid")
    answers: AnswersIn | None = answers_field()
    # recurring series (issue 24, point 3): book every day/week/month (api/series.py)
    recurrence: RecurrenceIn | None = Field(default=None, description="book a series: 201 {series_id, bookings, skipped}")
    discount_code: SingleLineStr | None = Field(default=None, min_length=1, max_length=64, description=(
        "a discount code (case-insensitive); the price is computed by the server. An unknown, expired, "
        "used-up or not applicable code → 422 with code discount_code_invalid"))


class GuestRequestOut(ApiModel):
    """GUEST_EMAIL_CONFIRMATION: the guest's booking waits for them to open the emailed link."""
    status: Literal["email_confirmation_required"] = "email_confirmation_required"
    service_id: int
    start: UtcDateTime
    quantity: int
    email: str
    expires_at: UtcDateTime = Field(description="the emailed link works until then; nothing is held before")


class ConfirmEmailIn(RequestModel):
    token: SingleLineStr = Field(min_length=3, max_length=100, description="the token of the emailed link")


class ManageLinkIn(RequestModel):
    email: SingleLineStr = Field(min_length=3, max_length=254)
    reference: SingleLineStr = Field(min_length=1, max_length=32, description="the booking reference")


class BookingUpdateIn(RequestModel):
    start: AwareDatetime | None = None
    quantity: int | None = Field(default=None, ge=1, le=1000, strict=True)
    notes: MultiLineStr | None = Field(default=None, max_length=2000)


class BookingOut(ApiModel):
    id: int
    reference: str
    service_id: int
    user_id: int | None
    start: UtcDateTime
    end: UtcDateTime
    quantity: int
    status: BookingStatusName
    hold_expires_at: UtcDateTime | None
    price_cents: int
    currency: str
    payment_status: str
    notes: str
    refund_due_cents: int
    cancel_reason: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    customer_name: str | None = Field(default=None, description="who booked (user's name or guest's name); "
                                      "null where not loaded")
    answers: AnswersOut = Field(default_factory=dict, description="answers to the booking questions: "
                                                                 "{question id: value}")
    list_price_cents: int = Field(default=0, description="the price before any discount")
    discount_cents: int = Field(default=0, description="the discount code's discount (price_cents is what is paid)")
    approval_expires_at: UtcDateTime | None = Field(default=None, description=(
        "status awaiting_approval: the request holds its seats until then, unless approved or declined"))
    deposit_cents: int = Field(default=0, description="the deposit charged online at booking (0: none, the whole "
                                                      "price is paid at once)")
    balance_due_cents: int = Field(default=0, description="left to pay of the price after the deposit (on site, or "
                                                          "online: POST /api/payments/{booking_id}/balance)")
    fees_cents: int = Field(default=0, description="no-show and late-cancel fees charged or due")


class BookingPageOut(ApiModel):
    items: list[BookingOut]
    total: int
