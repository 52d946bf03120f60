"""Booking routes (Booking Service): /api/bookings…

Thin: parse, call services/bookings.py (which decides who may see or change what, and
never oversells), shape the answer. `Idempotency-Key` on POST is handled by the service in
the booking's own transaction (the record and the booking commit together), so a retry
after a lost response replays the booking instead of booking twice. Guests book with
`guest: {name, email, phone?}` and manage their booking with the signed `token` from the
emailed link.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from booking_app.api import idempotency
from booking_app.api import schemas_bookings as sb
from booking_app.api.deps import get_actor
from booking_app.api.schemas import IdPath, problem_responses
from booking_app.services import bookings, payments
from booking_app.services.actors import Actor
from booking_app.services.errors import Unauthorized

# (no router-level get_locale: every route resolves get_actor, which records the user's
# locale for translated errors; the extra dependency cost ~4% of a booking's CPU)
router = APIRouter(prefix="/api/bookings", tags=["bookings"],
                   responses=problem_responses(401, 404, 422, 503))

MANAGE_TOKEN = Query(default=None, max_length=100, description="guests: the signed token from the emailed link")
DATE_QUERY = dict(min_length=1, max_length=40, examples=["2026-12-01"])


#: OpenAPI links from a created booking to the operations on it (stateful API testing, client hints)
CREATED_LINKS = {
    "description": "Booked",
    "links": {
        name: {"operationId": op, "parameters": {param: "$response.body#/id"}, "description": text}
        for name, op, param, text in (
            ("GetBooking", "get_booking", "id", "The booking"),
            ("UpdateBooking", "update_booking", "id", "Reschedule it"),
            ("CancelBooking", "cancel_booking", "id", "Cancel it"),
            ("GetPayment", "get_payment", "booking_id", "Its payment"),
        )
    },
}


def _out(view: bookings.BookingView) -> sb.BookingOut:
    return sb.BookingOut.model_validate(view)  # from_attributes: no dataclass copy


def _identified(actor: Actor, token: str | None) -> None:
    """A guest without a manage token gets 401 (sign in), not 404."""
    if actor.is_guest and not token:
        raise Unauthorized()


@router.get("", response_model=sb.BookingPageOut, summary="My bookings, my services' bookings, or all (admin)",
            responses=problem_responses(403))
def list_bookings(
    actor: Actor = Depends(get_actor),
    scope: Literal["mine", "provider", "all"] = Query(default="mine"),
    status: sb.BookingStatusName | None = Query(default=None),
    date_from: str | None = Query(default=None, alias="from", **DATE_QUERY),
    date_to: str | None = Query(default=None, alias="to", **DATE_QUERY),
    service_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
    limit: int = Query(default=50, ge=1, le=bookings.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> sb.BookingPageOut:
    _identified(actor, None)
    items, total = bookings.list_bookings(actor=actor, scope=scope, status=status, date_from=date_from,
                                          date_to=date_to, service_id=service_id, limit=limit, offset=offset)
    return sb.BookingPageOut(items=[_out(v) for v in items], total=total)


@router.post("", status_code=201, response_model=sb.BookingOut, operation_id="create_booking",
             summary="Book a slot (409 when it is not available)",
             responses={**problem_responses(409), 201: CREATED_LINKS},
             # (the header is read and checked by idempotency.header_key: a declared Header
             # parameter would cost every booking a round of FastAPI's parameter validation)
             openapi_extra={"parameters": [idempotency.HEADER_DOC]})
def create_booking(body: sb.BookingCreateIn, request: Request, actor: Actor = Depends(get_actor)) -> Response:
    key = idempotency.header_key(request)
    if actor.is_guest and body.guest is None:
        raise Unauthorized()
    view = bookings.book(
        actor=actor, service_id=body.service_id, start=body.start, quantity=body.quantity, notes=body.notes or "",
        guest=body.guest.model_dump() if body.guest is not None else None, idempotency_key=key,
        payment_method=body.payment_method,
    )
    # serialised by pydantic-core straight to bytes (no dict + json.dumps round)
    return Response(_out(view).model_dump_json(), status_code=201, media_type="application/json")


@router.get("/{id}", operation_id="get_booking",
            response_model=sb.BookingOut, summary="One booking (owner, its provider, admin)")
def get_booking(id: IdPath, actor: Actor = Depends(get_actor),  # noqa: A002
                token: str | None = MANAGE_TOKEN) -> sb.BookingOut:
    _identified(actor, token)
    return _out(bookings.get_booking(actor=actor, booking_id=id, manage_token=token))


@router.put("/{id}", operation_id="update_booking", response_model=sb.BookingOut,
            summary="Reschedule / change seats or notes (atomic: the old slot is kept if the new one is taken)",
            responses=problem_responses(403, 409))
def update_booking(id: IdPath, body: sb.BookingUpdateIn, actor: Actor = Depends(get_actor),  # noqa: A002
                   token: str | None = MANAGE_TOKEN) -> sb.BookingOut:
    _identified(actor, token)
    return _out(bookings.reschedule(actor=actor, booking_id=id, start=body.start, quantity=body.quantity,
                                    notes=body.notes, manage_token=token))


@router.delete("/{id}", operation_id="cancel_booking",
               response_model=sb.BookingOut, summary="Cancel (refund per policy)",
               responses=problem_responses(403, 409))
def cancel_booking(id: IdPath, actor: Actor = Depends(get_actor),  # noqa: A002
                   token: str | None = MANAGE_TOKEN,
                   reason: str | None = Query(default=None, max_length=500)) -> sb.BookingOut:
    _identified(actor, token)
    return _out(payments.cancel_and_refund(actor=actor, booking_id=id, reason=reason, manage_token=token))
