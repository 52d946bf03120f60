"""Payment routes (Payment Service): /api/payments…

Thin: parse, call services/payments.py (refunds: services/refunds.py; the webhook:
services/stripe_webhooks.py), shape the answer. The amount is never taken from
the client (request models forbid unknown fields, so a sent `amount_cents` is a 422).
`POST /process` honours `Idempotency-Key` (booking_app/api/idempotency.py). The Stripe
webhook reads the raw body (the signature covers the exact bytes).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import Field, StringConstraints

import booking_app.api.idempotency as idempotency
from booking_app.api.deps import REAUTH_HEADER, get_actor, get_locale, require_user
from booking_app.api.errors import problem
from booking_app.api.schemas import MAX_ID, ApiModel, IdPath, MultiLineStr, RequestModel, UtcDateTime, problem_responses
from booking_app.i18n import N_, translate
from booking_app.services import payment_records, payments, refunds, stripe_webhooks
from booking_app.services.actors import Actor
from booking_app.services.errors import Unauthorized
from booking_app.services.idempotency import scope_for

router = APIRouter(prefix="/api/payments", tags=["payments"])

#: Stripe events are a few kB; anything far larger is not one.
MAX_WEBHOOK_BYTES = 512 * 1024

MANAGE_TOKEN = Query(default=None, max_length=100, description="guests: the signed token from the emailed link")

MethodName = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class ProcessIn(RequestModel):
    booking_id: int = Field(ge=1, le=MAX_ID)
    method: MethodName = Field(examples=["card", "paypal", "on_site"])


class RefundIn(RequestModel):
    amount_cents: int | None = Field(default=None, ge=1, le=10**12,
                                     description="default: everything not yet refunded")
    note: MultiLineStr | None = Field(default=None, max_length=500)


class RefundOut(ApiModel):
    id: int
    amount_cents: int
    currency: str
    status: str
    reason: str
    created_at: UtcDateTime


class PaymentOut(ApiModel):
    payment_id: int
    booking_id: int
    status: str
    method: str
    provider: str
    amount_cents: int
    refunded_cents: int
    currency: str
    checkout_url: str | None = Field(description="Stripe Checkout page to send the customer to (online methods)")
    expires_at: UtcDateTime | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    refunds: list[RefundOut]
    purpose: str = Field(default="booking", description="booking (the price, or its deposit) | balance (the rest "
                                                         "after a deposit)")


class FeeOut(ApiModel):
    id: int
    kind: str = Field(description="no_show | late_cancel")
    amount_cents: int
    currency: str
    status: str = Field(description="due | charged | failed (declined: due) | requires_action (the customer was "
                                    "sent checkout_url to authenticate) | charging")
    checkout_url: str | None
    created_at: UtcDateTime


class MoneyOut(ApiModel):
    price_cents: int
    deposit_cents: int
    paid_cents: int = Field(description="received for the price and not refunded")
    balance_due_cents: int
    fees_cents: int
    fees_due_cents: int
    due_cents: int = Field(description="balance_due_cents + fees_due_cents")
    currency: str
    fees: list[FeeOut]


class MethodOut(ApiModel):
    method: str
    online: bool


class MethodsOut(ApiModel):
    items: list[MethodOut]


class WebhookOut(ApiModel):
    received: bool
    event_id: str
    outcome: str


def _out(view: payment_records.PaymentView) -> PaymentOut:
    return PaymentOut.model_validate(asdict(view))


@router.get("/methods", response_model=MethodsOut, summary="Payment methods a customer may choose now")
def list_methods() -> MethodsOut:
    return MethodsOut(items=[MethodOut(method=m.method, online=m.online) for m in payments.available_methods()])


@router.post("/process", status_code=201, response_model=PaymentOut,
             summary="Pay a booking: Stripe Checkout (returns checkout_url) or on site",
             responses=problem_responses(401, 404, 409, 422, 502, 503),
             openapi_extra={"parameters": [idempotency.HEADER_DOC]})
def process_payment(request: Request, body: ProcessIn, actor: Actor = Depends(get_actor),
                    token: str | None = MANAGE_TOKEN, _locale: str = Depends(get_locale)) -> JSONResponse:
    if actor.is_guest and not token:
        raise Unauthorized()
    key = idempotency.header_key(request)

    def call() -> idempotency.Outcome:
        view = payments.process(actor=actor, booking_id=body.booking_id, method=body.method,
                                manage_token=None if actor.id is not None else token)
        return 201, _out(view).model_dump(mode="json"), view.payment_id

    def may_replay() -> None:  # a stored answer reaches only whoever may see this payment now
        payments.require_payment_access(actor=actor, booking_id=body.booking_id, manage_token=token)

    scope = (scope_for("payment", user_id=actor.id) if actor.id is not None
             else scope_for("payment", guest_booking_id=body.booking_id))
    return idempotency.run(key=key, scope=scope, body=body.model_dump(mode="json"), call=call,
                           check_access=may_replay)


@router.get("/{booking_id}", operation_id="get_payment",
            response_model=PaymentOut, summary="The booking's payment and its status",
            responses=problem_responses(401, 404))
def get_payment(booking_id: IdPath, actor: Actor = Depends(get_actor), token: str | None = MANAGE_TOKEN,
                _locale: str = Depends(get_locale)) -> PaymentOut:
    if actor.is_guest and not token:
        raise Unauthorized()
    return _out(payments.get_payment(actor=actor, booking_id=booking_id, manage_token=token))


@router.post("/{booking_id}/balance", status_code=201, response_model=PaymentOut, operation_id="pay_balance",
             summary="Pay the rest of the price after the deposit: Stripe Checkout (returns checkout_url)",
             responses=problem_responses(401, 404, 409, 422, 502, 503))
def pay_balance(booking_id: IdPath, actor: Actor = Depends(get_actor), token: str | None = MANAGE_TOKEN,
                _locale: str = Depends(get_locale)) -> PaymentOut:
    if actor.is_guest and not token:
        raise Unauthorized()
    return _out(payments.pay_balance(actor=actor, booking_id=booking_id,
                                     manage_token=None if actor.id is not None else token))


@router.get("/{booking_id}/money", response_model=MoneyOut, operation_id="get_booking_money",
            summary="The booking's paid / due figures, deposit and fees", responses=problem_responses(401, 404))
def get_money(booking_id: IdPath, actor: Actor = Depends(get_actor), token: str | None = MANAGE_TOKEN,
              _locale: str = Depends(get_locale)) -> MoneyOut:
    if actor.is_guest and not token:
        raise Unauthorized()
    money = payments.booking_money(actor=actor, booking_id=booking_id, manage_token=token)
    s = money.summary
    return MoneyOut(price_cents=s.price_cents, deposit_cents=s.deposit_cents, paid_cents=s.paid_cents,
                    balance_due_cents=s.balance_due_cents, fees_cents=s.fees_cents, fees_due_cents=s.fees_due_cents,
                    due_cents=s.due_cents, currency=s.currency,
                    fees=[FeeOut.model_validate(asdict(f)) for f in money.fees])


@router.post("/{booking_id}/mark-paid", response_model=PaymentOut,
             summary="Provider/admin: the on-site payment was received",
             responses=problem_responses(401, 403, 404, 409))
def mark_paid(booking_id: IdPath, actor: Actor = Depends(require_user),
              _locale: str = Depends(get_locale)) -> PaymentOut:
    return _out(payments.mark_paid(actor=actor, booking_id=booking_id))


@router.post("/{booking_id}/refund", response_model=PaymentOut,
             summary="Provider/admin: refund (part of) the booking's payment (above REAUTH_REFUND_ABOVE_CENTS: "
                     "a recent sign-in or X-Reauth)",
             responses=problem_responses(401, 403, 404, 409, 422, 429, 502))
def refund(booking_id: IdPath, body: RefundIn | None = None, actor: Actor = Depends(require_user),
           _locale: str = Depends(get_locale),
           _x_reauth: str | None = REAUTH_HEADER) -> PaymentOut:
    body = body or RefundIn()
    return _out(refunds.refund(actor=actor, booking_id=booking_id, amount_cents=body.amount_cents, note=body.note))


@router.post("/webhook/stripe", response_model=WebhookOut, summary="Stripe webhook (signed events)",
             responses=problem_responses(400, 413, 503))
async def stripe_webhook(request: Request) -> JSONResponse:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_WEBHOOK_BYTES:
        return problem(request, 413, translate(N_("Request too large"), None), code="too_large")
    payload = await request.body()
    if len(payload) > MAX_WEBHOOK_BYTES:
        return problem(request, 413, translate(N_("Request too large"), None), code="too_large")
    signature = request.headers.get("stripe-signature")
    result = await run_in_threadpool(stripe_webhooks.handle_stripe_webhook, payload=payload, signature=signature)
    return JSONResponse({"received": True, "event_id": result.event_id, "outcome": result.outcome})
