"""Calendar subscriptions (busy times from outside calendars): thin layer over
booking_app/services/calendar_sync.py.

- POST   /api/calendar/subscriptions            add a feed URL (provider; admin) → 201; the sync job
                                                fetches it within a minute (or POST …/sync)
- GET    /api/calendar/subscriptions            the caller's subscriptions (admin: all)
- DELETE /api/calendar/subscriptions/{id}       remove one (its owner, admin)
- POST   /api/calendar/subscriptions/{id}/sync  fetch it again now (its owner, admin)
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from booking_app.api.deps import require_provider
from booking_app.api.schemas import (ApiModel, IdPath, RequestModel, SecretText, SingleLineStr, UtcDateTime,
                                     problem_responses)
from booking_app.services import calendar_sync
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api/calendar/subscriptions", tags=["calendar"], responses=problem_responses(422, 503))


class SubscriptionIn(RequestModel):
    url: SingleLineStr = Field(min_length=1, max_length=2000, examples=["https://calendar.example.com/me.ics"],
                               description="an iCalendar feed (https://, or webcal:// read as https://)")
    service_id: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                   description="only this bookable; default: all of the provider's bookables")
    username: SingleLineStr | None = Field(default=None, max_length=calendar_sync.MAX_CREDENTIAL_LENGTH,
                                           description="basic-auth user name (private CalDAV-style feeds)")
    password: SecretText | None = Field(default=None, max_length=calendar_sync.MAX_CREDENTIAL_LENGTH,
                                        description="basic-auth password, stored encrypted, never shown again")


class SubscriptionOut(ApiModel):
    id: int
    url: str
    service_id: int | None = None
    owner_id: int
    has_credentials: bool
    last_synced_at: UtcDateTime | None = None
    last_error: str | None = None
    created_at: UtcDateTime


class SubscriptionListOut(ApiModel):
    items: list[SubscriptionOut]


@router.post("", status_code=201, response_model=SubscriptionOut,
             summary="Add an outside calendar whose busy times block your slots (fetched by the sync job "
                     "within a minute; POST …/{id}/sync fetches it at once)",
             responses=problem_responses(401, 403, 404))
def add_subscription(body: SubscriptionIn, actor: Actor = Depends(require_provider)) -> SubscriptionOut:
    sub = calendar_sync.add(actor=actor, url=body.url, service_id=body.service_id, username=body.username,
                            password=body.password, sync=False)
    return SubscriptionOut.model_validate(sub)


@router.get("", response_model=SubscriptionListOut, summary="Your calendar subscriptions (admin: everyone's)",
            responses=problem_responses(401, 403))
def list_subscriptions(actor: Actor = Depends(require_provider)) -> SubscriptionListOut:
    return SubscriptionListOut(items=[SubscriptionOut.model_validate(s) for s in calendar_sync.list_for(actor=actor)])


@router.delete("/{id}", status_code=204, response_class=Response, summary="Remove a calendar subscription",
               responses=problem_responses(401, 403, 404))
def remove_subscription(id: IdPath, actor: Actor = Depends(require_provider)) -> Response:  # noqa: A002
    calendar_sync.remove(actor=actor, subscription_id=id)
    return Response(status_code=204)


@router.post("/{id}/sync", response_model=SubscriptionOut, summary="Fetch a calendar subscription again now",
             responses=problem_responses(401, 403, 404))
def sync_subscription(id: IdPath, actor: Actor = Depends(require_provider)) -> SubscriptionOut:  # noqa: A002
    return SubscriptionOut.model_validate(calendar_sync.sync_now_for(actor=actor, subscription_id=id))
