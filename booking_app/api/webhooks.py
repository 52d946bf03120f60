"""Webhook routes (services/webhooks.py): providers' and admins' endpoints and their deliveries.

- POST   /api/webhooks                                          new endpoint (secret shown once)
- GET    /api/webhooks                                          your endpoints (admin: all)
- GET/PUT/DELETE /api/webhooks/{id}                             read / change / remove
- POST   /api/webhooks/{id}/rotate-secret                       new secret (the old one signs too for a while)
- GET    /api/webhooks/{id}/deliveries                          the delivery log, newest first
- POST   /api/webhooks/{id}/deliveries/{delivery_id}/redeliver  queue the event again (202)
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from booking_app.api.deps import require_provider
from booking_app.api.schemas import ApiModel, IdPath, RequestModel, UtcDateTime, problem_responses
from booking_app.services import webhooks
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api", tags=["webhooks"], responses=problem_responses(401, 403, 422, 503))

WebhookEvent = Literal[webhooks.EVENTS]  # type: ignore[valid-type]
WebhookUrl = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$",
                                  description="https (http outside production); no private, loopback or "
                                              "link-local targets")]
EventList = Annotated[list[WebhookEvent], Field(min_length=1, max_length=32)]


class WebhookIn(RequestModel):
    url: WebhookUrl
    events: EventList
    active: bool = True


class WebhookUpdateIn(RequestModel):
    url: WebhookUrl | None = None
    events: EventList | None = None
    active: bool | None = None


class WebhookOut(ApiModel):
    id: int
    url: str
    events: list[str]
    active: bool
    owner_id: int
    all_bookables: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime
    previous_secret_until: UtcDateTime | None = Field(
        default=None, description="during a rotation: until when the previous secret also signs")


class WebhookSecretOut(WebhookOut):
    secret: str = Field(description="shown only now: store it to verify the Booking-Signature header")


class WebhookListOut(ApiModel):
    items: list[WebhookOut]


class DeliveryOut(ApiModel):
    id: int
    event: str
    event_id: str
    status: Literal["pending", "sending", "delivered", "failed"]
    response_code: int | None = None
    attempts: int
    last_error: str | None = None
    created_at: UtcDateTime
    last_attempt_at: UtcDateTime | None = None
    delivered_at: UtcDateTime | None = None
    next_attempt_at: UtcDateTime | None = None


class DeliveryListOut(ApiModel):
    items: list[DeliveryOut]


@router.post("/webhooks", status_code=201, response_model=WebhookSecretOut,
             summary="Register a webhook endpoint (admin: every bookable; provider: your own)")
def create_webhook(body: WebhookIn, actor: Actor = Depends(require_provider)) -> WebhookSecretOut:
    return WebhookSecretOut.model_validate(
        webhooks.create_endpoint(actor=actor, url=body.url, events=list(body.events), active=body.active))


@router.get("/webhooks", response_model=WebhookListOut, summary="Your webhook endpoints (admin: everybody's)")
def list_webhooks(actor: Actor = Depends(require_provider)) -> WebhookListOut:
    return WebhookListOut(items=[WebhookOut.model_validate(e) for e in webhooks.list_endpoints(actor=actor)])


@router.get("/webhooks/{id}", response_model=WebhookOut, summary="One webhook endpoint",
            responses=problem_responses(404))
def get_webhook(id: IdPath, actor: Actor = Depends(require_provider)) -> WebhookOut:  # noqa: A002
    return WebhookOut.model_validate(webhooks.get_endpoint(actor=actor, endpoint_id=id))


@router.put("/webhooks/{id}", response_model=WebhookOut, summary="Change a webhook endpoint (URL, events, active)",
            responses=problem_responses(404))
def update_webhook(id: IdPath, body: WebhookUpdateIn, actor: Actor = Depends(require_provider)) -> WebhookOut:  # noqa: A002
    return WebhookOut.model_validate(webhooks.update_endpoint(
        actor=actor, endpoint_id=id, url=body.url, events=list(body.events) if body.events is not None else None,
        active=body.active))


@router.delete("/webhooks/{id}", status_code=204, response_class=Response,
               summary="Remove a webhook endpoint and its delivery log", responses=problem_responses(404))
def delete_webhook(id: IdPath, actor: Actor = Depends(require_provider)) -> Response:  # noqa: A002
    webhooks.delete_endpoint(actor=actor, endpoint_id=id)
    return Response(status_code=204)


@router.post("/webhooks/{id}/rotate-secret", response_model=WebhookSecretOut,
             summary="A new signing secret; the previous one keeps signing during the overlap",
             responses=problem_responses(404))
def rotate_webhook_secret(id: IdPath, actor: Actor = Depends(require_provider)) -> WebhookSecretOut:  # noqa: A002
    return WebhookSecretOut.model_validate(webhooks.rotate_secret(actor=actor, endpoint_id=id))


@router.get("/webhooks/{id}/deliveries", response_model=DeliveryListOut,
            summary="The endpoint's recent deliveries, newest first", responses=problem_responses(404))
def list_webhook_deliveries(id: IdPath, limit: int = Query(default=50, ge=1, le=200),  # noqa: A002
                            actor: Actor = Depends(require_provider)) -> DeliveryListOut:
    return DeliveryListOut(items=[DeliveryOut.model_validate(d) for d in
                                  webhooks.list_deliveries(actor=actor, endpoint_id=id, limit=limit)])


@router.post("/webhooks/{id}/deliveries/{delivery_id}/redeliver", status_code=202, response_model=DeliveryOut,
             summary="Send a delivery's event again (queued behind the endpoint's others)",
             responses=problem_responses(404))
def redeliver_webhook(id: IdPath, delivery_id: IdPath, actor: Actor = Depends(require_provider)) -> DeliveryOut:  # noqa: A002
    return DeliveryOut.model_validate(webhooks.redeliver(actor=actor, endpoint_id=id, delivery_id=delivery_id))
