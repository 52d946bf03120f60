"""Waitlist routes (issue 24, point 1; services/waitlist*.py).

- POST   /api/waitlist                 join a full slot's waitlist (user or guest) → 201; 409 if it has room
- GET    /api/waitlist                 my entries; provider/admin: `?service_id=` that bookable's queue
- GET    /api/waitlist/{id}            one entry (owner, guest `?token=`, its provider, admin)
- DELETE /api/waitlist/{id}            leave (owner, guest `?token=`, its provider, admin) → 204
- POST   /api/waitlist/{id}/accept     take the open offer → 201 booking (+ Checkout URL when priced); else 409
- POST   /api/waitlist/{id}/decline    turn the offer down → 200 entry; it passes to the next person
- POST   /api/waitlist/offer-now       provider/admin: offer what is free in a bookable's queues now
- POST   /api/waitlist/close           provider/admin: close (or reopen) a bookable's waitlist
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, Field

from booking_app.api.deps import get_actor, require_provider, require_user
from booking_app.api.schemas import MAX_ID, ApiModel, IdPath, RequestModel, UtcDateTime, problem_responses
from booking_app.api.schemas_bookings import BookingOut, GuestIn
from booking_app.api.schemas_questions import AnswersIn, AnswersOut, answers_field
from booking_app.services import waitlist, waitlist_accept, waitlist_admin
from booking_app.services.actors import Actor
from booking_app.services.errors import Unauthorized

router = APIRouter(prefix="/api/waitlist", tags=["waitlist"], responses=problem_responses(401, 404, 422, 503))

TOKEN = Query(default=None, max_length=100, description="guests: the signed token from the emailed link")


class WaitlistJoinIn(RequestModel):
    service_id: int = Field(ge=1, le=MAX_ID, strict=True)
    start: AwareDatetime = Field(description="the full slot's (or session's) start (ISO 8601 with offset)")
    quantity: int = Field(default=1, ge=1, le=1000, strict=True)
    guest: GuestIn | None = None
    answers: AnswersIn | None = answers_field()


class WaitlistEntryOut(ApiModel):
    id: int
    service_id: int
    service_name: str
    timezone: str
    start: UtcDateTime
    quantity: int
    position: int | None = Field(default=None, description="1 = next in line (status waiting only)")
    status: Literal["waiting", "offered", "accepted", "declined", "lapsed", "left", "closed"]
    offer_expires_at: UtcDateTime | None = Field(default=None, description="status offered: accept before then")
    booking_id: int | None = None
    customer_name: str
    created_at: UtcDateTime
    token: str | None = Field(default=None, description="a guest's entry: the token for its links (shown once)")
    answers: AnswersOut = Field(default_factory=dict, description="answers to the booking questions given at "
                                                                  "join (the offer's booking takes them)")


class WaitlistListOut(ApiModel):
    items: list[WaitlistEntryOut]


class WaitlistAcceptOut(BookingOut):
    checkout_url: str | None = Field(default=None, description="a priced booking paid online: pay here")
    manage_token: str | None = Field(default=None, description="a guest's booking: its manage token")


class WaitlistServiceIn(RequestModel):
    service_id: int = Field(ge=1, le=MAX_ID, strict=True)


class WaitlistCloseIn(WaitlistServiceIn):
    closed: bool = Field(default=True, strict=True)


class OffersOut(ApiModel):
    offers: int


class ClosedOut(ApiModel):
    closed: bool
    entries_ended: int


def _out(view: waitlist.EntryView) -> WaitlistEntryOut:
    return WaitlistEntryOut.model_validate(view)


def _identified(actor: Actor, token: str | None) -> None:
    if actor.is_guest and not token:
        raise Unauthorized()


@router.post("", status_code=201, response_model=WaitlistEntryOut, operation_id="join_waitlist",
             summary="Join the waitlist of a full slot or session", responses=problem_responses(409, 429))
def join_waitlist(body: WaitlistJoinIn, actor: Actor = Depends(get_actor)) -> WaitlistEntryOut:
    if actor.is_guest and body.guest is None:
        raise Unauthorized()
    guest = body.guest.model_dump() if body.guest is not None else None
    return _out(waitlist.join(actor=actor, service_id=body.service_id, start=body.start, quantity=body.quantity,
                              guest=guest, answers=body.answers))


@router.get("", response_model=WaitlistListOut, operation_id="list_waitlist",
            summary="My waitlist entries; provider/admin: a bookable's queue", responses=problem_responses(403))
def list_waitlist(actor: Actor = Depends(require_user),
                  service_id: int | None = Query(default=None, ge=1, le=MAX_ID)) -> WaitlistListOut:
    return WaitlistListOut(items=[_out(v) for v in waitlist_admin.list_entries(actor=actor, service_id=service_id)])


@router.post("/offer-now", response_model=OffersOut, operation_id="waitlist_offer_now",
             summary="Provider: offer the free seats of a bookable's queues now", responses=problem_responses(403))
def offer_now(body: WaitlistServiceIn, actor: Actor = Depends(require_provider)) -> OffersOut:
    return OffersOut(offers=waitlist_admin.offer_now(actor=actor, service_id=body.service_id))


@router.post("/close", response_model=ClosedOut, operation_id="waitlist_close",
             summary="Provider: close (or reopen) a bookable's waitlist", responses=problem_responses(403))
def close_waitlist(body: WaitlistCloseIn, actor: Actor = Depends(require_provider)) -> ClosedOut:
    ended = waitlist_admin.set_closed(actor=actor, service_id=body.service_id, closed=body.closed)
    return ClosedOut(closed=body.closed, entries_ended=ended)


@router.get("/{id}", response_model=WaitlistEntryOut, operation_id="get_waitlist_entry",
            summary="One waitlist entry")
def get_entry(id: IdPath, actor: Actor = Depends(get_actor), token: str | None = TOKEN) -> WaitlistEntryOut:
    _identified(actor, token)
    return _out(waitlist_admin.get_entry(actor=actor, entry_id=id, token=token))


@router.delete("/{id}", status_code=204, operation_id="leave_waitlist", summary="Leave the waitlist",
               responses=problem_responses(409))
def leave_waitlist(id: IdPath, actor: Actor = Depends(get_actor), token: str | None = TOKEN) -> Response:
    _identified(actor, token)
    waitlist.leave(actor=actor, entry_id=id, token=token)
    return Response(status_code=204)


@router.post("/{id}/accept", status_code=201, response_model=WaitlistAcceptOut, operation_id="accept_waitlist_offer",
             summary="Take an open offer: the booking", responses=problem_responses(409, 502))
def accept_offer(id: IdPath, actor: Actor = Depends(get_actor), token: str | None = TOKEN) -> WaitlistAcceptOut:
    _identified(actor, token)
    result = waitlist_accept.accept(actor=actor, entry_id=id, token=token)
    out = WaitlistAcceptOut.model_validate(result.booking)
    out.checkout_url, out.manage_token = result.checkout_url, result.manage_token
    return out


@router.post("/{id}/decline", response_model=WaitlistEntryOut, operation_id="decline_waitlist_offer",
             summary="Turn an open offer down: it passes to the next person", responses=problem_responses(409))
def decline_offer(id: IdPath, actor: Actor = Depends(get_actor), token: str | None = TOKEN) -> WaitlistEntryOut:
    _identified(actor, token)
    return _out(waitlist.decline(actor=actor, entry_id=id, token=token))
