"""Delivery of webhook events (the relay's side of services/webhooks.py).

- The relay (services/relay.py) calls `relay_webhooks`: it turns queued outbox rows
  (channel "webhook", written by webhooks.event_rows in the business transaction) into
  `webhook_deliveries` (the delivery log) and POSTs them.
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
import logging
import random
import time
from typing import Any

import httpx
from sqlalchemy import and_, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import select

from booking_app import db
from booking_app.config import get_settings
from booking_app.models import Notification, NotificationStatus, User, WebhookDelivery, WebhookDeliveryStatus, \
    WebhookEndpoint, utcnow
from booking_app.services import claims, mfa, outbox, url_safety
from booking_app.services.webhooks import CHANNEL, encode

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Booking-Signature"
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 4096
#: seconds before attempt n+1 after attempt n failed; after the last one the delivery is
#: given up (30 s + 2 + 10 + 30 min + 1 + 2 + 4 + 8 + 8 h ≈ 23.7 h: about a day)
RETRY_DELAYS = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE_SECONDS = 120.0
BATCH_SIZE = 50


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
        taken = claims.claim_rows(
            s, WebhookDelivery, _due(WebhookDelivery, now), order_by=(WebhookDelivery.id,), limit=limit,
            pick_only=~exists().where(earlier.endpoint_id == WebhookDelivery.endpoint_id,
                                      earlier.id < WebhookDelivery.id, earlier.status.in_(open_states)),  # type: ignore[union-attr, operator, attr-defined]
            values={"status": WebhookDeliveryStatus.sending.value, "claimed_until": lease,
                    "attempts": WebhookDelivery.attempts + 1},
            returning=(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.event, WebhookDelivery.body,
                       WebhookDelivery.attempts))
        rows = [Claimed(id=r[0], endpoint_id=r[1], event=r[2], body=r[3], attempts=r[4], claimed_until=lease)
                for r in taken]
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
