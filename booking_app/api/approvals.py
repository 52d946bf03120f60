"""Approval routes (issue 24, point 2): the provider (or an admin) approves or declines a
booking awaiting approval. Thin: the rules are services/approvals.py's."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

import booking_app.api.schemas_bookings as schemas_bookings
from booking_app.api.deps import require_user
from booking_app.api.schemas import IdPath, MultiLineStr, RequestModel, problem_responses
from booking_app.services import approvals
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api/bookings", tags=["bookings"], responses=problem_responses(401, 403, 404, 409, 422, 503))


class DeclineIn(RequestModel):
    reason: MultiLineStr | None = Field(default=None, max_length=500, description="told to the customer")


def _out(view) -> schemas_bookings.BookingOut:  # type: ignore[no-untyped-def]
    return schemas_bookings.BookingOut.model_validate(view)


@router.post("/{id}/approve", operation_id="approve_booking", response_model=schemas_bookings.BookingOut,
             summary="Approve a booking awaiting approval (its provider, admin): confirmed, or pending payment")
def approve_booking(id: IdPath, actor: Actor = Depends(require_user)) -> schemas_bookings.BookingOut:  # noqa: A002
    return _out(approvals.approve(actor=actor, booking_id=id))


@router.post("/{id}/decline", operation_id="decline_booking", response_model=schemas_bookings.BookingOut,
             summary="Decline a booking awaiting approval (its provider, admin): its seats are free at once")
def decline_booking(id: IdPath, body: DeclineIn | None = None,  # noqa: A002
                    actor: Actor = Depends(require_user)) -> schemas_bookings.BookingOut:
    return _out(approvals.decline(actor=actor, booking_id=id, reason=body.reason if body is not None else None))
