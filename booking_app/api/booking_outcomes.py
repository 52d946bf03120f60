"""The provider's outcome marks over REST: a booking that took place is `completed`, one
whose customer did not come is a `no_show` (and owes the bookable's no-show fee). Thin:
the same service calls as the provider's buttons (services/payments.mark_no_show records
and charges the fee; services/bookings.complete)."""
from __future__ import annotations

from fastapi import APIRouter, Depends

import booking_app.api.schemas_bookings as schemas_bookings
from booking_app.api.deps import require_user
from booking_app.api.schemas import IdPath, problem_responses
from booking_app.services import bookings, payments
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api/bookings", tags=["bookings"], responses=problem_responses(401, 403, 404, 409, 422, 503))


@router.post("/{id}/complete", operation_id="complete_booking", response_model=schemas_bookings.BookingOut,
             summary="Mark a confirmed booking that has started as completed (its provider, admin)")
def complete_booking(id: IdPath, actor: Actor = Depends(require_user)) -> schemas_bookings.BookingOut:  # noqa: A002
    return schemas_bookings.BookingOut.model_validate(bookings.complete(actor=actor, booking_id=id))


@router.post("/{id}/no-show", operation_id="mark_booking_no_show", response_model=schemas_bookings.BookingOut,
             summary="Mark a confirmed booking that has started as a no-show (its provider, admin); "
                     "the bookable's no-show fee is charged to the saved card")
def mark_booking_no_show(id: IdPath, actor: Actor = Depends(require_user)) -> schemas_bookings.BookingOut:  # noqa: A002
    return schemas_bookings.BookingOut.model_validate(payments.mark_no_show(actor=actor, booking_id=id))
