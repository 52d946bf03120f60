"""Discount code routes (issue 26, point 1; services/discounts.py): admins' codes apply to any
bookable, providers' to their own.

- POST   /api/discount-codes        new code (201)
- GET    /api/discount-codes        your codes (admin: all), with their uses
- GET/PUT/DELETE /api/discount-codes/{id}   read (with `uses`) / change / deactivate

Codes are trimmed and case-insensitive; bad input is 422 problem+json. Customers use a code
with `discount_code` on POST /api/bookings (services/pricing.py computes the price).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, Field

from booking_app.api.deps import require_provider
from booking_app.api.schemas import MAX_ID, ApiModel, IdPath, RequestModel, SingleLineStr, UtcDateTime, problem_responses
from booking_app.services import discounts
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api/discount-codes", tags=["discount codes"],
                   responses=problem_responses(401, 403, 422, 503))

Code = Annotated[SingleLineStr, Field(min_length=1, max_length=64, examples=["SUMMER-10"],
                                      description="3-32 letters, digits, - or _ (case-insensitive, trimmed)")]
Count = Annotated[int, Field(ge=1, le=discounts.MAX_USES, strict=True)]
Cents = Annotated[int, Field(ge=0, le=discounts.MAX_AMOUNT, strict=True)]
ServiceIds = Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]],
                       Field(max_length=discounts.MAX_SERVICES, description="limit to these bookables (empty: all)")]
Kinds = Annotated[list[Literal["room", "service", "event"]], Field(max_length=3, description="limit to these kinds")]
Currency = Annotated[SingleLineStr, Field(min_length=3, max_length=3, examples=["EUR"])]


class DiscountCodeIn(RequestModel):
    code: Code
    percent_off: Annotated[int, Field(ge=1, le=100, strict=True)] | None = None
    amount_off_cents: Annotated[int, Field(ge=1, le=discounts.MAX_AMOUNT, strict=True)] | None = Field(
        default=None, description="a fixed amount off (with `currency`); never more than the price")
    currency: Currency | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    max_uses: Count | None = Field(default=None, description="total uses (a cancelled or lapsed booking gives its use back)")
    max_uses_per_customer: Count | None = Field(default=None, description="per signed-in customer or guest email")
    min_price_cents: Cents | None = None
    service_ids: ServiceIds | None = None
    kinds: Kinds | None = None
    active: bool = True


class DiscountCodeUpdateIn(RequestModel):
    code: Code | None = None
    percent_off: Annotated[int, Field(ge=1, le=100, strict=True)] | None = None
    amount_off_cents: Annotated[int, Field(ge=1, le=discounts.MAX_AMOUNT, strict=True)] | None = None
    currency: Currency | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    max_uses: Count | None = None
    max_uses_per_customer: Count | None = None
    min_price_cents: Cents | None = None
    service_ids: ServiceIds | None = None
    kinds: Kinds | None = None
    active: bool | None = None


class DiscountCodeOut(ApiModel):
    id: int
    code: str
    provider_id: int | None = Field(description="the provider whose bookables it applies to; null: any (admin's)")
    percent_off: int | None
    amount_off_cents: int | None
    currency: str | None
    valid_from: UtcDateTime | None
    valid_until: UtcDateTime | None
    max_uses: int | None
    max_uses_per_customer: int | None
    min_price_cents: int
    service_ids: list[int]
    kinds: list[str]
    active: bool
    uses: int = Field(description="bookings holding the code now (not cancelled, no lapsed hold)")
    created_at: UtcDateTime
    updated_at: UtcDateTime


class DiscountCodeListOut(ApiModel):
    items: list[DiscountCodeOut]


def _data(body: RequestModel, *, partial: bool) -> dict:
    data = body.model_dump(exclude_unset=partial)
    if partial and data.get("active", True) is None:
        data.pop("active")
    return data


@router.post("", status_code=201, response_model=DiscountCodeOut,
             summary="Create a discount code (admin: any bookable; provider: your own)")
def create_discount_code(body: DiscountCodeIn, actor: Actor = Depends(require_provider)) -> DiscountCodeOut:
    data = _data(body, partial=False)  # (exactly one of percent_off, amount_off_cents: the service checks)
    return DiscountCodeOut.model_validate(discounts.create_code(actor=actor, data=data))


@router.get("", response_model=DiscountCodeListOut, summary="Your discount codes (admin: all), with their uses")
def list_discount_codes(actor: Actor = Depends(require_provider)) -> DiscountCodeListOut:
    return DiscountCodeListOut(items=[DiscountCodeOut.model_validate(c) for c in discounts.list_codes(actor=actor)])


@router.get("/{id}", response_model=DiscountCodeOut, summary="One discount code, with its uses",
            responses=problem_responses(404))
def get_discount_code(id: IdPath, actor: Actor = Depends(require_provider)) -> DiscountCodeOut:  # noqa: A002
    return DiscountCodeOut.model_validate(discounts.get_code(actor=actor, code_id=id))


@router.put("/{id}", response_model=DiscountCodeOut, summary="Change a discount code (the fields given)",
            responses=problem_responses(404))
def update_discount_code(id: IdPath, body: DiscountCodeUpdateIn,  # noqa: A002
                         actor: Actor = Depends(require_provider)) -> DiscountCodeOut:
    data = _data(body, partial=True)
    if "percent_off" in data or "amount_off_cents" in data:  # switching kind: the other one goes
        data.setdefault("percent_off", None)
        data.setdefault("amount_off_cents", None)
    return DiscountCodeOut.model_validate(discounts.update_code(actor=actor, code_id=id, data=data))


@router.delete("/{id}", response_model=DiscountCodeOut,
               summary="Deactivate a discount code (kept for the bookings and reports that use it)",
               responses=problem_responses(404))
def deactivate_discount_code(id: IdPath, actor: Actor = Depends(require_provider)) -> DiscountCodeOut:  # noqa: A002
    return DiscountCodeOut.model_validate(discounts.deactivate_code(actor=actor, code_id=id))
