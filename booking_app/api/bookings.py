"""Booking routes (Booking Service): /api/bookings…

Thin: parse, call the booking services (bookings.py: book and change, never oversells;
booking_queries.py: reads and who may see what; guest_bookings.py: guest requests and
manage links), shape the answer. `Idempotency-Key` on POST is handled by the service in
the booking's own transaction (the record and the booking commit together), so a retry
after a lost response replays the booking instead of booking twice. Guests book with
`guest: {name, email, phone?}` and manage their booking with the signed `token` from the
emailed link.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

import booking_app.api.idempotency as idempotency
import booking_app.api.schemas_bookings as schemas_bookings
import booking_app.api.series as series_api
from booking_app.api.deps import client_ip, get_actor, require_user
from booking_app.api.schemas import IdPath, MultiLineStr, SingleLineStr, problem_responses
from booking_app.services import booking_queries, booking_questions, bookings, guest_bookings, payments
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


def _out(view: booking_queries.BookingView) -> schemas_bookings.BookingOut:
    return schemas_bookings.BookingOut.model_validate(view)  # from_attributes: no dataclass copy


def _identified(actor: Actor, token: str | None) -> None:
    """A guest without a manage token gets 401 (sign in), not 404."""
    if actor.is_guest and not token:
        raise Unauthorized()


@router.get("", response_model=schemas_bookings.BookingPageOut,
            summary="My bookings, my services' bookings, or all (admin)",
            description="`format=csv`: the page as CSV with a column per booking question answered (audited).",
            responses={**problem_responses(403),
                       200: {"content": {"application/json": {}, "text/csv": {}}, "description": "The bookings"}})
def list_bookings(
    actor: Actor = Depends(require_user),  # signed-in only: the OpenAPI document says so
    scope: Literal["mine", "provider", "all"] = Query(default="mine"),
    status: schemas_bookings.BookingStatusName | None = Query(default=None),
    date_from: SingleLineStr | None = Query(default=None, alias="from", **DATE_QUERY),
    date_to: SingleLineStr | None = Query(default=None, alias="to", **DATE_QUERY),
    service_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
    limit: int = Query(default=50, ge=1, le=booking_queries.MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=10_000_000),
    format: Literal["json", "csv"] = Query(default="json"),  # noqa: A002
) -> schemas_bookings.BookingPageOut | Response:
    if format == "csv":
        text = booking_questions.export_bookings_csv(actor=actor, scope=scope, status=status, date_from=date_from,
                                                     date_to=date_to, service_id=service_id, limit=limit,
                                                     offset=offset)
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="bookings.csv"'})
    items, total = booking_queries.list_bookings(actor=actor, scope=scope, status=status, date_from=date_from,
                                                 date_to=date_to, service_id=service_id, limit=limit,
                                                 offset=offset)
    return schemas_bookings.BookingPageOut(items=[_out(v) for v in items], total=total)


@router.post("", status_code=201, response_model=schemas_bookings.BookingOut | series_api.SeriesBookedOut,
             operation_id="create_booking",
             summary="Book a slot (409 when it is not available)",
             description="Guests (no token): at most GUEST_MAX_QUANTITY places (422), at most "
                         "GUEST_MAX_HOLDS_PER_EMAIL / _PER_IP active unpaid guest bookings (409), "
                         "rate-limited per email address and client (429). With GUEST_EMAIL_CONFIRMATION "
                         "a guest's booking is 202: nothing is held until the emailed link is opened "
                         "(POST /api/bookings/confirm-email). With `recurrence`: a recurring series, "
                         "201 {series_id, bookings, skipped} (docs/series.md).",
             responses={**problem_responses(409, 429), 201: CREATED_LINKS,
                        202: {"model": schemas_bookings.GuestRequestOut,
                              "description": "Guest: confirm your email address by the emailed link"}},
             # (the header is read and checked by idempotency.header_key: a declared Header
             # parameter would cost every booking a round of FastAPI's parameter validation)
             openapi_extra={"parameters": [idempotency.HEADER_DOC, idempotency.TOKEN_DOC]})
def create_booking(body: schemas_bookings.BookingCreateIn, request: Request,
                   actor: Actor = Depends(get_actor)) -> Response:
    key = idempotency.header_key(request)
    if actor.is_guest and body.guest is None:
        raise Unauthorized()
    if body.recurrence is not None:  # a recurring series (api/series.py)
        return series_api.create_series(body, request, actor)
    guest = body.guest.model_dump() if body.guest is not None else None
    ip = client_ip(request) if actor.is_guest else None
    if guest_bookings.guest_email_confirmation_required(actor):
        pending = guest_bookings.request_guest_booking(
            actor=actor, service_id=body.service_id, start=body.start, quantity=body.quantity,
            notes=body.notes or "", guest=guest, payment_method=body.payment_method, client_ip=ip, answers=body.answers,
            discount_code=body.discount_code)
        return Response(schemas_bookings.GuestRequestOut.model_validate(pending).model_dump_json(), status_code=202,
                        media_type="application/json")
    view = bookings.book(
        actor=actor, service_id=body.service_id, start=body.start, quantity=body.quantity, notes=body.notes or "",
        guest=guest, idempotency_key=key, payment_method=body.payment_method,
        manage_token=idempotency.query_token(request), client_ip=ip, answers=body.answers,
        discount_code=body.discount_code,
    )
    # serialised by pydantic-core straight to bytes (no dict + json.dumps round)
    return Response(_out(view).model_dump_json(), status_code=201, media_type="application/json")


@router.post("/confirm-email", status_code=201, response_model=schemas_bookings.BookingOut,
             operation_id="confirm_guest_booking",
             summary="Guest: open the emailed confirmation link — books now (409 when no longer available)",
             responses=problem_responses(409, 429))
def confirm_guest_booking(body: schemas_bookings.ConfirmEmailIn) -> schemas_bookings.BookingOut:
    return _out(bookings.confirm_guest_request(token=body.token))


@router.post("/manage-link", status_code=204, operation_id="request_manage_link",
             summary="Guest: email me a new manage link (the old one stops working)",
             description="Answers 204 whether or not the email address and reference match a booking.",
             responses=problem_responses(429))
def request_manage_link(body: schemas_bookings.ManageLinkIn, request: Request) -> Response:
    guest_bookings.request_manage_link(email=body.email, reference=body.reference, client_ip=client_ip(request))
    return Response(status_code=204)


@router.post("/{id}/manage-link", status_code=204, operation_id="reissue_manage_link",
             summary="Staff: revoke a guest booking's manage link and email the guest a new one",
             responses=problem_responses(403, 409))
def reissue_manage_link(id: IdPath, actor: Actor = Depends(require_user)) -> Response:  # noqa: A002
    guest_bookings.reissue_manage_link(actor=actor, booking_id=id)
    return Response(status_code=204)


@router.get("/{id}", operation_id="get_booking",
            response_model=schemas_bookings.BookingOut, summary="One booking (owner, its provider, admin)")
def get_booking(id: IdPath, actor: Actor = Depends(get_actor),  # noqa: A002
                token: str | None = MANAGE_TOKEN) -> schemas_bookings.BookingOut:
    _identified(actor, token)
    return _out(booking_queries.get_booking(actor=actor, booking_id=id, manage_token=token))


@router.put("/{id}", operation_id="update_booking", response_model=schemas_bookings.BookingOut,
            summary="Reschedule / change seats or notes (atomic: the old slot is kept if the new one is taken)",
            responses=problem_responses(403, 409))
def update_booking(id: IdPath, body: schemas_bookings.BookingUpdateIn, actor: Actor = Depends(get_actor),  # noqa: A002
                   token: str | None = MANAGE_TOKEN) -> schemas_bookings.BookingOut:
    _identified(actor, token)
    return _out(bookings.reschedule(actor=actor, booking_id=id, start=body.start, quantity=body.quantity,
                                    notes=body.notes, manage_token=token))


@router.delete("/{id}", operation_id="cancel_booking",
               response_model=schemas_bookings.BookingOut, summary="Cancel (refund per policy)",
               responses=problem_responses(403, 409))
def cancel_booking(id: IdPath, actor: Actor = Depends(get_actor),  # noqa: A002
                   token: str | None = MANAGE_TOKEN,
                   reason: MultiLineStr | None = Query(default=None, max_length=500)) -> schemas_bookings.BookingOut:
    _identified(actor, token)
    return _out(payments.cancel_and_refund(actor=actor, booking_id=id, reason=reason, manage_token=token))
