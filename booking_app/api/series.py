"""Recurring series routes (issue 24, point 3): /api/series… and the series branch of
POST /api/bookings (a body with `recurrence`). Thin: parse, call services/series.py, shape
the answer."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

import booking_app.api.idempotency as idempotency
import booking_app.api.schemas_bookings as schemas_bookings
from booking_app.api.deps import client_ip, get_actor
from booking_app.api.errors import request_locale
from booking_app.api.schemas import (
    MAX_ID,
    ApiModel,
    IdPath,
    MultiLineStr,
    RequestModel,
    SingleLineStr,
    UtcDateTime,
    problem_responses,
)
from booking_app.api.schemas_series import RecurrenceIn
from booking_app.i18n import translate
from booking_app.services import series, series_payments
from booking_app.services.actors import Actor
from booking_app.services.errors import Unauthorized
from booking_app.services.idempotency import scope_for

router = APIRouter(prefix="/api/series", tags=["bookings"], responses=problem_responses(401, 404, 422, 503))

MANAGE_TOKEN = Query(default=None, max_length=100,
                     description="guests: the signed token of any of the series' bookings (from its email)")


class SeriesPreviewIn(RequestModel):
    service_id: int = Field(ge=1, le=MAX_ID, strict=True)
    start: AwareDatetime = Field(description="the first occurrence: a free slot's start (ISO 8601 with offset)")
    quantity: int = Field(default=1, ge=1, le=1000, strict=True)
    recurrence: RecurrenceIn
    discount_code: SingleLineStr | None = Field(default=None, min_length=1, max_length=64, description=(
        "show each free date's price with this code (422 discount_code_invalid if it cannot cover every free date)"))


class OccurrenceOut(ApiModel):
    start: UtcDateTime
    available: bool
    reason: str | None = Field(default=None, description="taken | unavailable (not a slot: closed, notice, …)")
    message: str | None = Field(default=None, description="why it is unavailable, in the caller's language")
    list_price_cents: int | None = Field(default=None, description="a free date: its price before any discount")
    discount_cents: int | None = Field(default=None, description="a free date: the discount code's discount")
    price_cents: int | None = Field(default=None, description="a free date: what it would cost")


class SeriesPreviewOut(ApiModel):
    occurrences: list[OccurrenceOut]


class SkippedOut(ApiModel):
    start: UtcDateTime
    reason: str


class SeriesBookedOut(ApiModel):
    series_id: int
    bookings: list[schemas_bookings.BookingOut]
    skipped: list[SkippedOut]
    checkout_url: str | None = Field(default=None, description=(
        "`payment_method` card/paypal/… of a priced service: the one Stripe Checkout page paying the whole "
        "series (its bookings stay pending until it is paid; docs/series.md)"))


class KeptOut(ApiModel):
    booking_id: int
    detail: str


class SeriesOut(ApiModel):
    id: int
    service_id: int
    frequency: str
    interval: int
    count: int | None
    until: str | None
    by: str
    mode: str
    quantity: int
    created_at: UtcDateTime
    bookings: list[schemas_bookings.BookingOut]
    cancelled: list[int] = Field(default_factory=list, description="DELETE: the bookings it cancelled")
    kept: list[KeptOut] = Field(default_factory=list, description="DELETE: the ones it could not cancel, and why")


def _series_out(view: series.SeriesView) -> SeriesOut:
    return SeriesOut(id=view.id, service_id=view.service_id, frequency=view.frequency, interval=view.interval,
                     count=view.count, until=view.until.isoformat() if view.until else None, by=view.by,
                     mode=view.mode, quantity=view.quantity, created_at=view.created_at,
                     bookings=[schemas_bookings.BookingOut.model_validate(b) for b in view.bookings])


def create_series(body: schemas_bookings.BookingCreateIn, request: Request, actor: Actor) -> JSONResponse:
    """POST /api/bookings with `recurrence`: book the series → 201 {series_id, bookings,
    skipped}. An `Idempotency-Key` replays the first answer (api/idempotency.py: the key is
    the caller's — a user's, or a guest's email address's)."""
    assert body.recurrence is not None

    def call() -> idempotency.Outcome:
        paid = series_payments.book_series_and_pay(
            actor=actor, service_id=body.service_id, start=body.start, recurrence_rule=body.recurrence.model_dump(),
            quantity=body.quantity, notes=body.notes or "", guest=body.guest.model_dump() if body.guest else None,
            payment_method=body.payment_method, client_ip=client_ip(request) if actor.is_guest else None,
            answers=body.answers, discount_code=body.discount_code)
        booked = paid.booked
        out = SeriesBookedOut(series_id=booked.series_id, checkout_url=paid.checkout_url,
                              bookings=[schemas_bookings.BookingOut.model_validate(b) for b in booked.bookings],
                              skipped=[SkippedOut(start=x.start, reason=x.reason) for x in booked.skipped])
        return 201, out.model_dump(mode="json"), booked.series_id

    key = idempotency.header_key(request)
    if key is None:
        status, payload, _id = call()
        return JSONResponse(payload, status_code=status)
    scope = scope_for("series", user_id=None if actor.is_guest else actor.id,
                      email=body.guest.email if actor.is_guest and body.guest else None)
    return idempotency.run(key=key, scope=scope, body=body.model_dump(mode="json"), call=call)


@router.post("/preview", response_model=SeriesPreviewOut, operation_id="preview_series",
             summary="The dates a recurring series would have, each free or not (nothing is held)")
def preview_series(body: SeriesPreviewIn, request: Request, actor: Actor = Depends(get_actor)) -> SeriesPreviewOut:
    occurrences = series.preview(actor=actor, service_id=body.service_id, start=body.start,
                                 recurrence_rule=body.recurrence.model_dump(), quantity=body.quantity,
                                 discount_code=body.discount_code)
    locale = request_locale(request)
    return SeriesPreviewOut(occurrences=[
        OccurrenceOut(start=o.start, available=o.available, reason=o.reason,
                      message=translate(o.message, locale) if o.message else None,
                      **({"list_price_cents": o.quote.list_price_cents, "discount_cents": o.quote.discount_cents,
                          "price_cents": o.quote.price_cents} if o.quote is not None else {}))
        for o in occurrences])


@router.get("/{id}", response_model=SeriesOut, operation_id="get_series",
            summary="A series and its bookings (its customer, its provider, admin)")
def get_series(id: IdPath, actor: Actor = Depends(get_actor),  # noqa: A002
               token: str | None = MANAGE_TOKEN) -> SeriesOut:
    if actor.is_guest and not token:
        raise Unauthorized()
    return _series_out(series.get_series(actor=actor, series_id=id, manage_token=token))


@router.delete("/{id}", response_model=SeriesOut, operation_id="cancel_series",
               summary="Cancel a series: all its coming bookings, or from_booking_id and the ones after it",
               description="Each booking is cancelled as by DELETE /api/bookings/{id} (its refund by the policy); "
                           "one the customer may no longer cancel is kept and listed in `kept`.")
def cancel_series(request: Request, id: IdPath, actor: Actor = Depends(get_actor),  # noqa: A002
                  from_booking_id: int | None = Query(default=None, ge=1, le=MAX_ID),
                  token: str | None = MANAGE_TOKEN,
                  reason: MultiLineStr | None = Query(default=None, max_length=500)) -> SeriesOut:
    if actor.is_guest and not token:
        raise Unauthorized()
    done = series.cancel_series(actor=actor, series_id=id, from_booking_id=from_booking_id, reason=reason,
                                manage_token=token)
    out = _series_out(done.series)
    locale = request_locale(request)
    out.cancelled = done.cancelled
    out.kept = [KeptOut(booking_id=bid, detail=exc.translated(locale)) for bid, exc in done.kept]
    return out
