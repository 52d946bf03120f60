"""Signed outgoing webhooks: endpoints, the events they get, and their delivery.

- Endpoints: an admin's endpoint gets the events of every bookable, a provider's those of
  their own bookables. The signing secret is shown once (on create and on rotate) and
  stored sealed (services/mfa.seal: AES-GCM under a key derived from SECRET_KEY). After a
  rotation the previous secret signs too for WEBHOOK_SECRET_OVERLAP_HOURS (two `v1=`).
- Events are queued by services/notify.py inside the business transaction as outbox rows
  (channel "webhook", one per endpoint: `event_rows`), so every path fires them and a
  rollback sends nothing. The relay (services/relay.py) calls `relay_webhooks`: it turns
  those rows into `webhook_deliveries` (the delivery log) and POSTs them.
- Ordering: per endpoint, deliveries go out one at a time in id order (the order the relay
  took the events from the outbox, which is the order of their outbox rows); a delivery is
  not attempted while an earlier one of the same endpoint is pending — it waits until that
  one is delivered or given up. A redelivery is a new row, queued behind the others.
- Retries: RETRY_DELAYS (first retry after 30 s, giving up after about a day); every
  attempt is signed afresh (`Booking-Signature: t=<unix>,v1=<hex>`), times out after 10 s,
  reads at most MAX_RESPONSE_BYTES of the answer and follows no redirect (a 3xx fails).
  The target is checked again before each attempt (services/url_safety.py) and the
  connection goes to the address checked.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import and_, bindparam, exists, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Booking, Notification, NotificationStatus, User, WebhookDelivery, \
    WebhookDeliveryStatus, WebhookEndpoint, utcnow
from booking_app.services import audit, mfa, outbox, url_safety
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, InvalidInput, NotFound

log = logging.getLogger(__name__)

#: every event an endpoint may subscribe to (a new one: one line here, and queue it in notify)
EVENTS = (
    "booking.created",
    "booking.confirmed",
    "booking.rescheduled",
    "booking.cancelled",
    "booking.completed",
    "booking.no_show",
    "payment.succeeded",
    "payment.refunded",
)
CHANNEL = "webhook"  # the outbox channel of queued events
SIGNATURE_HEADER = "Booking-Signature"
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 4096
#: seconds before attempt n+1 after attempt n failed; after the last one the delivery is
#: given up (30 s + 2 + 10 + 30 min + 1 + 2 + 4 + 8 + 8 h ≈ 23.7 h: about a day)
RETRY_DELAYS = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE_SECONDS = 120.0
BATCH_SIZE = 50
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
    if actor.id is None or not (actor.is_admin or actor.is_provider):
        raise Forbidden(STAFF_ONLY)
    return actor.id


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
    q = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if lock and db.is_postgres(s):
        q = q.with_for_update()
    ep = s.exec(q).first()
    if ep is None or not (actor.is_admin or ep.owner_id == actor.id):
        raise NotFound(NOT_FOUND)
    return ep


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
        "cancel_reason": booking.cancel_reason,
        "version": booking.version,
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


# --- the relay's part --------------------------------------------------------------------------

@dataclasses.dataclass
class WebhookStats:
    queued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


def _queued(now: dt.datetime):
    """Queued events: pending webhook outbox rows (due at once: bounded by `now` so that the
    status/due index skips the many pending reminders of later days)."""
    return and_(Notification.status == NotificationStatus.pending.value, Notification.next_attempt_at <= now,
                Notification.channel == CHANNEL)


def promote(*, now: dt.datetime, limit: int = 500) -> int:
    """Turn queued outbox rows (channel "webhook") into deliveries, in outbox id order. On
    PostgreSQL the rows are locked (waiting, not skipping), so two relays promote one after
    the other and ids of deliveries follow the outbox order."""
    with db.unit_of_work() as s:
        q = (select(Notification.id, Notification.context, Notification.template, Notification.booking_id,
                    Notification.created_at)
             .where(_queued(utcnow())).order_by(Notification.id).limit(limit))  # type: ignore[arg-type]
        if db.is_postgres(s):
            q = q.with_for_update()
        rows = s.exec(q).all()
        if not rows:
            return 0
        wanted = {int((ctx or {}).get("endpoint_id") or 0) for _id, ctx, _t, _b, _c in rows}
        live = set(s.exec(select(WebhookEndpoint.id).where(WebhookEndpoint.id.in_(wanted))).all())  # type: ignore[union-attr]
        values = []
        for nid, ctx, template, booking_id, created_at in rows:
            ctx = ctx or {}
            ep_id = int(ctx.get("endpoint_id") or 0)
            event = ctx.get("event") or {}
            if ep_id not in live or not event:
                continue
            values.append(dict(endpoint_id=ep_id, notification_id=nid, event_id=str(event.get("id"))[:64],
                               event=template, booking_id=booking_id, body=encode(event),
                               status=WebhookDeliveryStatus.pending.value, attempts=0, next_attempt_at=now,
                               created_at=created_at or now))
        if values:
            s.connection().execute(outbox.dialect_insert(s)(WebhookDelivery.__table__)  # type: ignore[attr-defined]
                                   .on_conflict_do_nothing(index_elements=["notification_id"]), values)
        s.exec(update(Notification).where(Notification.id.in_([r[0] for r in rows]))  # type: ignore[call-overload, union-attr]
               .values(status=NotificationStatus.sent.value, sent_at=now, transport=CHANNEL, attempts=1,
                       claimed_until=None))
        return len(values)


def _work_waiting(now: dt.datetime) -> bool:
    """Whether a queued event or a due delivery is waiting."""
    with db.read_session() as s:
        queued = s.exec(select(Notification.id).where(_queued(utcnow())).limit(1)).first()
        return queued is not None or s.exec(
            select(WebhookDelivery.id).where(_due(WebhookDelivery, now)).limit(1)).first() is not None


def encode(event: dict[str, Any]) -> str:
    """The body as sent: compact JSON, keys in a fixed order (id, type, created_at, data)."""
    ordered = {k: event.get(k) for k in ("id", "type", "created_at", "data")}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class Claimed:
    id: int
    endpoint_id: int
    event: str
    body: str
    attempts: int
    claimed_until: dt.datetime


def _due(d: Any, now: dt.datetime):
    return or_(and_(d.status == WebhookDeliveryStatus.pending.value, d.next_attempt_at <= now),
               and_(d.status == WebhookDeliveryStatus.sending.value, d.claimed_until < now))


def claim_due(*, now: dt.datetime, limit: int = BATCH_SIZE, lease_seconds: float = LEASE_SECONDS) -> list[Claimed]:
    """Claim the due deliveries that are first in their endpoint's line: no earlier delivery
    of the same endpoint is still pending or being sent. At most one per endpoint."""
    lease = now + dt.timedelta(seconds=lease_seconds)
    earlier = aliased(WebhookDelivery)
    open_states = (WebhookDeliveryStatus.pending.value, WebhookDeliveryStatus.sending.value)
    with db.unit_of_work() as s:
        pick = (select(WebhookDelivery.id)
                .where(_due(WebhookDelivery, now))
                .where(~exists().where(earlier.endpoint_id == WebhookDelivery.endpoint_id,
                                       earlier.id < WebhookDelivery.id, earlier.status.in_(open_states)))  # type: ignore[union-attr, operator, attr-defined]
                .order_by(WebhookDelivery.id).limit(limit))  # type: ignore[arg-type]
        if db.is_postgres(s):
            pick = pick.with_for_update(skip_locked=True)
        ids = list(s.exec(pick).all())
        if not ids:
            return []
        result = s.exec(  # type: ignore[call-overload]
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), _due(WebhookDelivery, now))  # type: ignore[union-attr]
            .values(status=WebhookDeliveryStatus.sending.value, claimed_until=lease,
                    attempts=WebhookDelivery.attempts + 1)
            .returning(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.event, WebhookDelivery.body,
                       WebhookDelivery.attempts))
        rows = [Claimed(id=r[0], endpoint_id=r[1], event=r[2], body=r[3], attempts=r[4], claimed_until=lease)
                for r in result.all()]
    rows.sort(key=lambda r: r.id)
    return rows


def _finish(row: Claimed, **values: Any) -> bool:
    with db.unit_of_work() as s:
        result = s.exec(  # type: ignore[call-overload]
            update(WebhookDelivery)
            .where(WebhookDelivery.id == row.id, WebhookDelivery.status == WebhookDeliveryStatus.sending.value,
                   WebhookDelivery.claimed_until == row.claimed_until)
            .values(claimed_until=None, **values))
        return bool(result.rowcount)


def signing_secrets(ep: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during the overlap.
    A secret still sealed with SECRET_KEY_PREVIOUS is sealed again with SECRET_KEY."""
    current, old_key = mfa.unseal(ep.secret_sealed)
    out = [current]
    previous = None
    if ep.previous_secret_sealed and ep.previous_secret_until is not None and ep.previous_secret_until > now:
        previous, old_prev = mfa.unseal(ep.previous_secret_sealed)
        old_key = old_key or old_prev
        out.append(previous)
    if old_key:
        values: dict[str, Any] = {"secret_sealed": mfa.seal(current)}
        if previous is not None:
            values["previous_secret_sealed"] = mfa.seal(previous)
        with db.unit_of_work() as s:
            s.exec(update(WebhookEndpoint).where(WebhookEndpoint.id == ep.id,  # type: ignore[call-overload]
                                                 WebhookEndpoint.secret_sealed == ep.secret_sealed).values(**values))
    return out


def sign(body: str, secrets_: list[str], timestamp: int) -> str:
    """`t=<unix>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 of "<t>.<body>" with each secret."""
    message = f"{timestamp}.{body}".encode("utf-8")
    sigs = [hmac.new(sec.encode("utf-8"), message, hashlib.sha256).hexdigest() for sec in secrets_]
    return ",".join([f"t={timestamp}"] + [f"v1={sig}" for sig in sigs])


def verify(body: str | bytes, header: str, secret: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (tests and docs): some v1 matches and t is recent."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = next((v for k, v in parts if k == "t"), None)
    if ts is None or not ts.isdigit() or abs((now or time.time()) - int(ts)) > tolerance:
        return False
    expected = hmac.new(secret.encode("utf-8"), f"{ts}.{body}".encode("utf-8"), hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


class SendFailed(Exception):
    def __init__(self, message: str, response_code: int | None = None) -> None:
        super().__init__(message)
        self.response_code = response_code


def post(url: str, body: str, headers: dict[str, str], *, timeout: float = TIMEOUT_SECONDS) -> int:
    """POST `body` to `url` after checking its target again; connects to the checked address
    (TLS still verified against the host name), follows no redirect, reads at most
    MAX_RESPONSE_BYTES. Returns the 2xx status, else raises SendFailed."""
    try:
        target = url_safety.resolve_target(url)
    except url_safety.UnsafeUrl as exc:
        raise SendFailed(f"target refused: {exc}") from None
    split = httpx.URL(url)
    host_header = target.host if split.port is None else f"{target.host}:{target.port}"
    if ":" in target.host and split.port is None:
        host_header = f"[{target.host}]"
    elif ":" in target.host:
        host_header = f"[{target.host}]:{target.port}"
    last: Exception | None = None
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False) as client:
        for ip in target.ips:
            pinned = split.copy_with(host=str(ip))
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            try:
                with client.stream("POST", pinned, content=body.encode("utf-8"),
                                   headers={**headers, "Host": host_header}, extensions=extensions) as resp:
                    got = 0
                    for chunk in resp.iter_raw():
                        got += len(chunk)
                        if got >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                            break
                    code = resp.status_code
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc
                continue
            except httpx.HTTPError as exc:
                raise SendFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
            if 200 <= code < 300:
                return code
            if 300 <= code < 400:
                raise SendFailed(f"HTTP {code}: redirect not followed", code)
            raise SendFailed(f"HTTP {code}", code)
    raise SendFailed(f"could not connect: {type(last).__name__}: {last}"[:500] if last else "could not connect")


def deliver(row: Claimed, *, now: dt.datetime) -> tuple[bool, int | None, str | None]:
    """One attempt: (delivered, response code, error)."""
    with db.read_session() as s:
        ep = s.get(WebhookEndpoint, row.endpoint_id)
        owner = s.get(User, ep.owner_id) if ep is not None else None
    if ep is None or not ep.active or owner is None or not owner.is_active \
            or owner.role not in (("admin",) if ep.all_bookables else ("provider", "admin")):
        return False, None, "endpoint deactivated"
    try:
        keys = signing_secrets(ep, now)
    except ValueError:
        return False, None, "the secret can't be opened (SECRET_KEY changed without SECRET_KEY_PREVIOUS?)"
    headers = {"Content-Type": "application/json", "User-Agent": "booking-webhooks/1",
               SIGNATURE_HEADER: sign(row.body, keys, int(time.time())), "Booking-Event": row.event,
               "Booking-Delivery": str(row.id)}
    try:
        code = post(ep.url, row.body, headers)
    except SendFailed as exc:
        return False, exc.response_code, str(exc)
    return True, code, None


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt (±10 % jitter)."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return dt.timedelta(seconds=base * random.uniform(0.9, 1.1))


PURGE_EVERY_SECONDS = 3600.0
_last_purge = -PURGE_EVERY_SECONDS  # (this process's: the first tick purges)


def purge_log(*, now: dt.datetime, limit: int = 1000) -> int:
    """Remove up to `limit` delivered or given-up deliveries older than WEBHOOK_LOG_DAYS."""
    cutoff = now - dt.timedelta(days=get_settings().webhook_log_days)
    done = (WebhookDeliveryStatus.delivered.value, WebhookDeliveryStatus.failed.value)
    with db.read_session() as s:
        ids = list(s.exec(select(WebhookDelivery.id).where(WebhookDelivery.status.in_(done),  # type: ignore[attr-defined]
                                                           WebhookDelivery.created_at < cutoff)
                          .order_by(WebhookDelivery.id).limit(limit)).all())
    if not ids:
        return 0
    with db.unit_of_work() as s:
        s.exec(WebhookDelivery.__table__.delete().where(  # type: ignore[call-overload, attr-defined]
            WebhookDelivery.__table__.c.id.in_(ids),  # type: ignore[attr-defined]
            WebhookDelivery.__table__.c.status.in_(done)))  # type: ignore[attr-defined]
    return len(ids)


def relay_webhooks(*, now: dt.datetime | None = None, max_rounds: int = 100) -> WebhookStats:
    """Promote queued events, then deliver what is due, endpoint by endpoint in order (a
    round takes the first due delivery of each endpoint; rounds repeat while any went).
    Once an hour (per process) old finished deliveries leave the log (`purge_log`)."""
    global _last_purge
    now = now or utcnow()
    stats = WebhookStats()
    if time.monotonic() - _last_purge > PURGE_EVERY_SECONDS:
        _last_purge = time.monotonic()
        purge_log(now=now)
    if not _work_waiting(now):  # (a read: the usual tick takes no write lock)
        return stats
    stats.queued = promote(now=now)
    for _ in range(max_rounds):
        rows = claim_due(now=now)
        if not rows:
            break
        for row in rows:
            ok, code, error = deliver(row, now=now)
            at = utcnow()
            if ok:
                _finish(row, status=WebhookDeliveryStatus.delivered.value, response_code=code, last_error=None,
                        last_attempt_at=at, delivered_at=at)
                stats.delivered += 1
            elif row.attempts >= MAX_ATTEMPTS or error == "endpoint deactivated":
                _finish(row, status=WebhookDeliveryStatus.failed.value, response_code=code,
                        last_error=(error or "")[:2000], last_attempt_at=at)
                stats.failed += 1
                log.warning("webhook delivery %s given up after %s attempts: %s", row.id, row.attempts, error)
            else:
                _finish(row, status=WebhookDeliveryStatus.pending.value, response_code=code,
                        last_error=(error or "")[:2000], last_attempt_at=at,
                        next_attempt_at=now + retry_delay(row.attempts))
                stats.retried += 1
                log.info("webhook delivery %s attempt %s failed, will retry: %s", row.id, row.attempts, error)
    return stats
