"""Notification routes: calendar feeds (services/feeds.py) and the admin's outbox view
(services/outbox_admin.py).

- GET    /api/calendar/{token}.ics          the feed (secret token in the URL, no login)
- POST   /api/calendar/feeds                 new feed URL for the signed-in user (shown once)
- GET    /api/calendar/feeds                 the user's feed URLs (without their tokens)
- DELETE /api/calendar/feeds/{id}            revoke one
- GET    /api/admin/notifications            the outbox (filters, newest first)
- GET    /api/admin/notifications/{id}       one row with a preview of its message
- POST   /api/admin/notifications/{id}/retry queue a failed/cancelled message again
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Query, Response

from booking_app.api.deps import require_admin, require_user
from booking_app.api.schemas import ApiModel, IdPath, RequestModel, SingleLineStr, UtcDateTime, problem_responses
from booking_app.services import feeds, outbox_admin
from booking_app.services.actors import Actor

router = APIRouter(prefix="/api", responses=problem_responses(422, 503))

# --- models --------------------------------------------------------------------------------------


class FeedCreateIn(RequestModel):
    scope: Literal["bookings", "schedule"] = "bookings"


class FeedOut(ApiModel):
    id: int
    scope: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None = None


class FeedCreatedOut(FeedOut):
    token: str
    url: str


class FeedListOut(ApiModel):
    items: list[FeedOut]


class NotificationOut(ApiModel):
    id: int
    channel: str
    to: str
    template: str
    locale: str
    status: str
    attempts: int
    next_attempt_at: UtcDateTime
    last_error: str | None = None
    transport: str | None = None
    provider_ref: str | None = None
    sent_at: UtcDateTime | None = None
    created_at: UtcDateTime
    booking_id: int | None = None
    user_id: int | None = None


class NotificationDetailOut(NotificationOut):
    subject: str | None = None
    body: str | None = None


class NotificationPageOut(ApiModel):
    items: list[NotificationOut]
    total: int


# --- calendar feeds ------------------------------------------------------------------------------

@router.get("/calendar/{token}.ics", tags=["calendar"], summary="Calendar feed (.ics) behind a secret token",
            response_class=Response, responses={200: {"content": {"text/calendar": {}}}, **problem_responses(404)})
def calendar_feed(token: str) -> Response:
    """404 for an unknown or revoked token, and whenever its owner may no longer have this
    feed: checked against the owner's current role and state on every read (a provider
    demoted to customer loses their schedule at once)."""
    body = feeds.feed_ics(token=token)
    return Response(content=body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300", "Content-Disposition": 'inline; filename="calendar.ics"',
                             "X-Robots-Tag": "noindex"})


@router.post("/calendar/feeds", status_code=201, response_model=FeedCreatedOut, tags=["calendar"],
             summary="Create a secret feed URL: your bookings, or (providers) your schedule",
             responses=problem_responses(401, 403))
def create_feed(body: FeedCreateIn | None = Body(default=None), actor: Actor = Depends(require_user)) -> FeedCreatedOut:
    feed = feeds.create_feed_token(actor=actor, scope=body.scope if body else "bookings")
    return FeedCreatedOut.model_validate(feed)


@router.get("/calendar/feeds", response_model=FeedListOut, tags=["calendar"], summary="Your feed URLs (tokens hidden)",
            responses=problem_responses(401))
def list_feeds(actor: Actor = Depends(require_user)) -> FeedListOut:
    return FeedListOut(items=[FeedOut.model_validate(f) for f in feeds.list_feed_tokens(actor=actor)])


@router.delete("/calendar/feeds/{id}", status_code=204, response_class=Response, tags=["calendar"],
               summary="Revoke a feed URL", responses=problem_responses(401, 404))
def revoke_feed(id: IdPath, actor: Actor = Depends(require_user)) -> Response:  # noqa: A002
    feeds.revoke_feed_token(actor=actor, token_id=id)
    return Response(status_code=204)


# --- admin: outbox --------------------------------------------------------------------------------

@router.get("/admin/notifications", response_model=NotificationPageOut, tags=["admin"],
            summary="The outbox: every email/SMS with its delivery status", responses=problem_responses(401, 403))
def admin_list_notifications(
    status: Literal["pending", "sending", "sent", "failed", "cancelled"] | None = Query(default=None),
    channel: Literal["email", "sms"] | None = Query(default=None),
    template: SingleLineStr | None = Query(default=None, max_length=64),
    booking_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
    q: SingleLineStr | None = Query(default=None, max_length=254, description="part of the recipient address"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=10_000_000),
    actor: Actor = Depends(require_admin),
) -> NotificationPageOut:
    page = outbox_admin.list_notifications(actor=actor, status=status, channel=channel, template=template,
                                            booking_id=booking_id, q=q, limit=limit, offset=offset)
    return NotificationPageOut(items=[NotificationOut.model_validate(n) for n in page.items], total=page.total)


@router.get("/admin/notifications/{id}", response_model=NotificationDetailOut, tags=["admin"],
            summary="One outbox row with a preview of its message", responses=problem_responses(401, 403, 404))
def admin_get_notification(id: IdPath, actor: Actor = Depends(require_admin)) -> NotificationDetailOut:  # noqa: A002
    return NotificationDetailOut.model_validate(outbox_admin.get_notification(actor=actor, notification_id=id))


@router.post("/admin/notifications/{id}/retry", response_model=NotificationOut, tags=["admin"],
             summary="Send a failed or cancelled message again", responses=problem_responses(401, 403, 404, 409))
def admin_retry_notification(id: IdPath, actor: Actor = Depends(require_admin)) -> NotificationOut:  # noqa: A002
    return NotificationOut.model_validate(outbox_admin.retry_notification(actor=actor, notification_id=id))
