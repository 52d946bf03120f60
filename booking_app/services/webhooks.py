"""Signed outgoing webhooks: endpoints and the events they get.

- Endpoints: an admin's endpoint gets the events of every bookable, a provider's those of
  their own bookables. The signing secret is shown once (on create and on rotate) and
  stored sealed (services/mfa.seal: AES-GCM under a key derived from SECRET_KEY). After a
  rotation the previous secret signs too for WEBHOOK_SECRET_OVERLAP_HOURS (two `v1=`).
- Events are queued by services/notify.py inside the business transaction as outbox rows
  (channel "webhook", one per endpoint: `event_rows`), so every path fires them and a
  rollback sends nothing. Their delivery (promotion into `webhook_deliveries`, ordering,
  signing, retries, log purge) is services/webhook_delivery.py, run by the relay.
- A redelivery is a new delivery row, queued behind the endpoint's others.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
import uuid
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Booking, User, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, utcnow
from booking_app.services import audit, booking_questions, mfa, outbox, url_safety
from booking_app.services.actors import Actor, require_staff
from booking_app.services.bookable_access import load_owned
from booking_app.services.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

#: every event an endpoint may subscribe to (a new one: one line here, and queue it in notify)
EVENTS = (
    "booking.created",
    "booking.confirmed",
    "booking.rescheduled",
    "booking.cancelled",
    "booking.completed",
    "booking.no_show",
    "booking.awaiting_approval",
    "booking.approved",
    "booking.declined",
    "payment.succeeded",
    "payment.refunded",
    "fee.charged",  # a no-show / late-cancel fee collected (services/fees.py)
    "fee.failed",  # its charge was declined: still owed, "charge again" may retry it
    "waitlist.offered",
    "waitlist.accepted",
    "waitlist.lapsed",
)
CHANNEL = "webhook"  # the outbox channel of queued events
MAX_ENDPOINTS_PER_OWNER = 20

NO_EVENTS = N_("Choose at least one event.")
UNKNOWN_EVENT = N_("Unknown event: {event}.")
TOO_MANY = N_("You have too many webhook endpoints already.")
NOT_FOUND = N_("This webhook endpoint does not exist.")
DELIVERY_NOT_FOUND = N_("This delivery does not exist.")
STAFF_ONLY = N_("Only providers and admins can manage webhooks.")


# --- endpoints -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class EndpointView:
    id: int
    url: str
    events: list[str]
    active: bool
    owner_id: int
    all_bookables: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    previous_secret_until: dt.datetime | None
    secret: str | None = None  # only right after create / rotate


@dataclasses.dataclass(frozen=True)
class DeliveryView:
    id: int
    endpoint_id: int
    event: str
    event_id: str
    status: str
    response_code: int | None
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime | None


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _view(ep: WebhookEndpoint, secret: str | None = None, now: dt.datetime | None = None) -> EndpointView:
    until = ep.previous_secret_until
    if until is not None and until <= (now or utcnow()):
        until = None
    assert ep.id is not None
    return EndpointView(id=ep.id, url=ep.url, events=list(ep.events or []), active=bool(ep.active),
                        owner_id=ep.owner_id, all_bookables=bool(ep.all_bookables), created_at=ep.created_at,
                        updated_at=ep.updated_at, previous_secret_until=until, secret=secret)


def _staff(actor: Actor) -> int:
    return require_staff(actor, STAFF_ONLY)


def clean_events(events: Any) -> list[str]:
    """The subscribed events, validated (InvalidInput), in EVENTS order."""
    if not isinstance(events, (list, tuple)) or not events:
        raise InvalidInput(NO_EVENTS, field="events")
    for e in events:
        if e not in EVENTS:
            raise InvalidInput(UNKNOWN_EVENT, field="events", event=str(e)[:64])
    return [e for e in EVENTS if e in events]


def clean_url(url: Any) -> str:
    try:
        return url_safety.check_url(str(url or ""))
    except url_safety.UnsafeUrl as exc:
        raise InvalidInput(exc.message, field="url") from None


def _owned(s: Session, actor: Actor, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    _staff(actor)
    return load_owned(s, WebhookEndpoint, endpoint_id, actor, owner="owner_id", not_found=NOT_FOUND, lock=lock)


def create_endpoint(*, actor: Actor, url: str, events: list[str], active: bool = True) -> EndpointView:
    """A new endpoint of the actor (admin: every bookable; provider: their own). The result
    carries the secret: the only time it is shown."""
    owner_id = _staff(actor)
    events = clean_events(events)
    url = clean_url(url)
    secret = new_secret()
    now = utcnow()
    with db.unit_of_work() as s:
        count = len(s.exec(select(WebhookEndpoint.id).where(WebhookEndpoint.owner_id == owner_id)).all())
        if count >= MAX_ENDPOINTS_PER_OWNER:
            raise InvalidInput(TOO_MANY)
        ep = WebhookEndpoint(owner_id=owner_id, all_bookables=actor.is_admin, url=url, events=events,
                             active=bool(active), secret_sealed=mfa.seal(secret), created_at=now, updated_at=now)
        s.add(ep)
        s.flush()
        audit.record(s, actor_id=actor.id, action="webhook.created", entity="webhook_endpoint", entity_id=ep.id,
                     data={"url": url, "events": events})
        return _view(ep, secret, now)


def list_endpoints(*, actor: Actor) -> list[EndpointView]:
    """The actor's endpoints (an admin: everybody's), oldest first."""
    owner_id = _staff(actor)
    with db.read_session() as s:
        q = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
        if not actor.is_admin:
            q = q.where(WebhookEndpoint.owner_id == owner_id)
        return [_view(ep) for ep in s.exec(q).all()]


def get_endpoint(*, actor: Actor, endpoint_id: int) -> EndpointView:
    with db.read_session() as s:
        return _view(_owned(s, actor, endpoint_id))


def update_endpoint(*, actor: Actor, endpoint_id: int, url: str | None = None, events: list[str] | None = None,
                    active: bool | None = None) -> EndpointView:
    """Change the URL, the events and/or the active flag (what is None stays). Deactivating
    gives up the endpoint's undelivered deliveries (they can be redelivered later)."""
    clean = clean_url(url) if url is not None else None
    chosen = clean_events(events) if events is not None else None
    now = utcnow()
    with db.unit_of_work() as s:
        ep = _owned(s, actor, endpoint_id, lock=True)
        if clean is not None:
            ep.url = clean
        if chosen is not None:
            ep.events = chosen
        if active is not None:
            if ep.active and not active:
                _give_up_open(s, ep.id, now, "endpoint deactivated")  # type: ignore[arg-type]
            ep.active = bool(active)
        ep.updated_at = now
        s.add(ep)
        audit.record(s, actor_id=actor.id, action="webhook.updated", entity="webhook_endpoint", entity_id=ep.id,
                     data={"url": ep.url, "events": list(ep.events), "active": ep.active})
        s.flush()
        return _view(ep, now=now)


def delete_endpoint(*, actor: Actor, endpoint_id: int) -> None:
    """Remove the endpoint and its delivery log."""
    with db.unit_of_work() as s:
        ep = _owned(s, actor, endpoint_id, lock=True)
        s.exec(WebhookDelivery.__table__.delete().where(  # type: ignore[call-overload, attr-defined]
            WebhookDelivery.__table__.c.endpoint_id == ep.id))  # type: ignore[attr-defined]
        audit.record(s, actor_id=actor.id, action="webhook.deleted", entity="webhook_endpoint", entity_id=ep.id,
                     data={"url": ep.url})
        s.delete(ep)


def rotate_secret(*, actor: Actor, endpoint_id: int) -> EndpointView:
    """A new secret (returned once); the current one keeps signing alongside it for
    WEBHOOK_SECRET_OVERLAP_HOURS, so receivers can switch without losing an event."""
    secret = new_secret()
    now = utcnow()
    with db.unit_of_work() as s:
        ep = _owned(s, actor, endpoint_id, lock=True)
        ep.previous_secret_sealed = ep.secret_sealed
        ep.previous_secret_until = now + dt.timedelta(hours=get_settings().webhook_secret_overlap_hours)
        ep.secret_sealed = mfa.seal(secret)
        ep.updated_at = now
        s.add(ep)
        audit.record(s, actor_id=actor.id, action="webhook.secret_rotated", entity="webhook_endpoint",
                     entity_id=ep.id)
        s.flush()
        return _view(ep, secret, now)


def _delivery_view(d: WebhookDelivery) -> DeliveryView:
    assert d.id is not None
    pending = d.status in (WebhookDeliveryStatus.pending.value, WebhookDeliveryStatus.sending.value)
    return DeliveryView(id=d.id, endpoint_id=d.endpoint_id, event=d.event, event_id=d.event_id, status=d.status,
                        response_code=d.response_code, attempts=d.attempts, last_error=d.last_error,
                        created_at=d.created_at, last_attempt_at=d.last_attempt_at, delivered_at=d.delivered_at,
                        next_attempt_at=d.next_attempt_at if pending else None)


def list_deliveries(*, actor: Actor, endpoint_id: int, limit: int = 50) -> list[DeliveryView]:
    """The endpoint's most recent deliveries, newest first."""
    with db.read_session() as s:
        ep = _owned(s, actor, endpoint_id)
        rows = s.exec(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == ep.id)
                      .order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, 200)))).all()  # type: ignore[union-attr]
        return [_delivery_view(d) for d in rows]


def redeliver(*, actor: Actor, endpoint_id: int, delivery_id: int) -> DeliveryView:
    """Queue the delivery's event again for its endpoint (a new delivery, same event id and
    body, behind the endpoint's other deliveries)."""
    now = utcnow()
    with db.unit_of_work() as s:
        ep = _owned(s, actor, endpoint_id)
        old = s.get(WebhookDelivery, delivery_id)
        if old is None or old.endpoint_id != ep.id:
            raise NotFound(DELIVERY_NOT_FOUND)
        new = WebhookDelivery(endpoint_id=ep.id, event_id=old.event_id, event=old.event, booking_id=old.booking_id,  # type: ignore[arg-type]
                              body=old.body, status=WebhookDeliveryStatus.pending.value, next_attempt_at=now,
                              created_at=now)
        s.add(new)
        audit.record(s, actor_id=actor.id, action="webhook.redelivered", entity="webhook_endpoint",
                     entity_id=ep.id, data={"delivery_id": delivery_id})
        s.flush()
        return _delivery_view(new)


def forget_user(session: Session, user_id: int) -> None:
    """For an account being deleted (services/accounts.py), in its transaction: its own
    endpoints go (with their log), and the customer's name and email are blanked in the
    stored bodies of deliveries about their bookings."""
    own = list(session.exec(select(WebhookEndpoint.id).where(WebhookEndpoint.owner_id == user_id)).all())
    if own:
        session.exec(WebhookDelivery.__table__.delete().where(  # type: ignore[call-overload, attr-defined]
            WebhookDelivery.__table__.c.endpoint_id.in_(own)))  # type: ignore[attr-defined]
        session.exec(WebhookEndpoint.__table__.delete().where(  # type: ignore[call-overload, attr-defined]
            WebhookEndpoint.__table__.c.id.in_(own)))  # type: ignore[attr-defined]
    booking_ids = select(Booking.id).where(Booking.user_id == user_id)
    for d in session.exec(select(WebhookDelivery).where(WebhookDelivery.booking_id.in_(booking_ids))).all():  # type: ignore[union-attr]
        event = json.loads(d.body)
        customer = ((event.get("data") or {}).get("booking") or {}).get("customer")
        if isinstance(customer, dict):
            customer.update(name="", email=None)
            d.body = encode(event)
            session.add(d)


def _give_up_open(s: Session, endpoint_id: int, now: dt.datetime, reason: str) -> None:
    s.exec(update(WebhookDelivery).where(  # type: ignore[call-overload]
        WebhookDelivery.endpoint_id == endpoint_id,
        WebhookDelivery.status.in_((WebhookDeliveryStatus.pending.value, WebhookDeliveryStatus.sending.value)),  # type: ignore[attr-defined]
    ).values(status=WebhookDeliveryStatus.failed.value, claimed_until=None, last_error=reason))


# --- events: queued in the business transaction ----------------------------------------------

_EP = WebhookEndpoint.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]
#: built once: the booking hot path runs it for every new booking (a Core statement with a
#: cached compilation costs a quarter of the ORM select it replaces, docs/performance.md)
_SUBSCRIBERS = (
    sa_select(_EP.c.id, _EP.c.events, _EP.c.all_bookables, _USERS.c.role)
    .join(_USERS, _USERS.c.id == _EP.c.owner_id)
    .where(_EP.c.active.is_(True), _USERS.c.is_active.is_(True),
           or_(_EP.c.all_bookables.is_(True), _EP.c.owner_id == bindparam("provider_id")))
)


#: `_SUBSCRIBERS` on PostgreSQL as one JSON column for another statement (the booking's
#: first one, services/booking_rows.py: no query of its own); {provider}: the provider id's
#: SQL there. Read by `listeners_of`.
LISTENERS_PG_COLUMN = (
    "(SELECT coalesce(json_agg(json_build_array(e.id, e.events, e.all_bookables, o.role)), '[]')"
    " FROM webhook_endpoints e JOIN users o ON o.id = e.owner_id"
    " WHERE e.active AND o.is_active AND (e.all_bookables OR e.owner_id = {provider}))")

Listeners = list[tuple[int, list[str]]]


def listeners(session: Session, *, provider_id: int | None) -> Listeners:
    """(id, events) of the active endpoints that hear about a bookable of `provider_id`:
    admins' endpoints and the provider's own (their owners still active staff). One query
    for all the events of one change (`event_rows(..., heard_by=)`)."""
    return listeners_of(session.connection().execute(
        _SUBSCRIBERS, {"provider_id": provider_id if provider_id is not None else -1}))


def listeners_of(rows: Any) -> Listeners:
    """The listeners among (id, events, all_bookables, owner's role) rows of `_SUBSCRIBERS`
    or `LISTENERS_PG_COLUMN`: admins' endpoints and a provider's own."""
    return [(ep_id, list(events or [])) for ep_id, events, all_bookables, role in rows
            if role == "admin" or (not all_bookables and role == "provider")]


def subscribers(session: Session, *, provider_id: int | None, event: str,
                heard_by: Listeners | None = None) -> list[int]:
    """Ids of the endpoints subscribed to `event` of a bookable of `provider_id`."""
    if heard_by is None:
        heard_by = listeners(session, provider_id=provider_id)
    return [ep_id for ep_id, events in heard_by if event in events]


def anyone_listens(session: Session, event: str) -> bool:
    """Whether any active endpoint subscribes to `event` (a sweep's shortcut)."""
    rows = session.exec(select(WebhookEndpoint.events).where(WebhookEndpoint.active == True)).all()  # noqa: E712
    return any(event in (events or []) for events in rows)


def booking_data(booking: Any, bookable: Any, *, customer_name: str, customer_email: str | None) -> dict[str, Any]:
    """`data.booking` of an event: the stable schema documented in docs/webhooks.md."""
    return {
        "id": booking.id,
        "reference": booking.reference,
        "status": booking.status,
        "bookable": {"id": booking.bookable_id, "name": bookable.name if bookable else "",
                     "kind": bookable.kind if bookable else "", "timezone": bookable.timezone if bookable else "UTC"},
        "provider_id": booking.provider_id,
        "customer": {"user_id": booking.user_id, "name": customer_name or "", "email": customer_email or None,
                     "guest": booking.user_id is None},
        "start": outbox.jsonable(booking.start_at),
        "end": outbox.jsonable(booking.end_at),
        "quantity": booking.quantity,
        "price_cents": booking.price_cents,
        "currency": booking.currency,
        "hold_expires_at": outbox.jsonable(booking.hold_expires_at),
        "approval_expires_at": outbox.jsonable(getattr(booking, "approval_expires_at", None)),
        "cancel_reason": booking.cancel_reason,
        "version": booking.version,
        # booking questions: {question id: value} (services/booking_questions.py)
        "answers": booking_questions.answer_map(getattr(booking, "answers", None)),
    }


def event_rows(session: Session, *, event: str, provider_id: int | None, booking_id: int | None,
               data: dict[str, Any], dedupe: str, heard_by: Listeners | None = None) -> list[dict[str, Any]]:
    """Outbox rows (enqueue's keyword arguments) of one event: one per subscribed endpoint,
    all with the same event id. `dedupe` identifies the event (e.g. "booking.created:12:1");
    `heard_by`: `listeners(...)` when the caller has them already."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event}")
    endpoint_ids = subscribers(session, provider_id=provider_id, event=event, heard_by=heard_by)
    if not endpoint_ids:
        return []
    event_id = "evt_" + uuid.uuid4().hex
    created_at = outbox.jsonable(utcnow())
    return [dict(channel=CHANNEL, to=f"endpoint:{ep_id}", template=event, locale="",
                 context={"endpoint_id": ep_id, "event": {"id": event_id, "type": event, "created_at": created_at,
                                                         "data": data}},
                 dedupe_key=f"webhook:{ep_id}:{dedupe}"[:200], booking_id=booking_id, user_id=None)
            for ep_id in endpoint_ids]


def encode(event: dict[str, Any]) -> str:
    """The body as sent: compact JSON, keys in a fixed order (id, type, created_at, data)."""
    ordered = {k: event.get(k) for k in ("id", "type", "created_at", "data")}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
