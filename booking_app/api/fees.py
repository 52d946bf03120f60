"""No-show and late-cancel fees over REST (issue 26): "charge again" for a fee whose charge
was declined. Thin: the rule (who, which statuses, one charge at a time) is
services/fees.charge_again, which the provider's booking list calls too."""
from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends
from pydantic import Field

import booking_app.api.payments as payments_api
from booking_app.api.deps import require_user
from booking_app.api.schemas import IdPath, problem_responses
from booking_app.services import fees
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api/fees", tags=["payments"], responses=problem_responses(401, 403, 404, 409, 422, 503))


class FeeChargeOut(payments_api.FeeOut):
    booking_id: int
    attempts: int = Field(description="charges tried so far")
    last_error: str | None = Field(description="why the last charge did not collect it (e.g. the card was declined)")


@router.post("/{id}/charge", response_model=FeeChargeOut, operation_id="charge_fee_again",
             summary="Charge a declined (or uncollected) fee again to the saved card (the booking's provider, admin)")
def charge_fee_again(id: IdPath, actor: Actor = Depends(require_user)) -> FeeChargeOut:  # noqa: A002
    view = fees.charge_again(actor=actor, fee_id=id)
    return FeeChargeOut.model_validate(asdict(view))
