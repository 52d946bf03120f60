"""Calendar subscriptions: busy times from outside calendars (issue 25, point 2).

- `add` / `list_for` / `remove`: a provider's (or admin's) iCalendar feed URLs, optionally
  for one bookable; `webcal://` is https; basic-auth credentials are sealed (mfa.seal). The
  URL must pass services/url_safety (422 otherwise), at registration and at every fetch.
- `sync_due()` (the job, every minute): claims the subscriptions whose `next_sync_at` has come
  (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite a conditional UPDATE; a lease), fetches each
  (conditional GET with ETag / Last-Modified, bounded time and size, redirects re-checked),
  expands it (services/calendar_expand.py) over the booking horizon and replaces the
  subscription's busy intervals in one transaction. A 304 keeps them; a failure records
  `last_error` and keeps the last good set. Next sync: CALENDAR_SYNC_INTERVAL_MINUTES later.

The slot queries and the booking engine read the intervals (services/availability.py,
services/capacity.py): a busy interval takes the whole capacity of what it covers.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import time
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from sqlalchemy import and_, delete, insert, or_, update
from sqlmodel import func, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Bookable, CalendarBusyInterval, CalendarSubscription, User, utcnow
from booking_app.services import claims, mfa, url_safety
from booking_app.services.actors import Actor, require_staff
from booking_app.services.bookable_access import load_bookable, load_owned
from booking_app.services.calendar_expand import FeedError, busy_intervals
from booking_app.services.errors import InvalidInput
from booking_app.services.validation import zone

log = logging.getLogger(__name__)

MAX_PER_OWNER = 20
MAX_BYTES = 5 * 1024 * 1024
TIMEOUT_SECONDS = 10.0
TOTAL_SECONDS = 30.0
MAX_REDIRECTS = 5
LEASE_SECONDS = 300.0
BATCH_SIZE = 10
#: the busy set covers the bookables' maximum advance plus this slack; a conditional GET is
#: sent only while the stored set still reaches far enough (else the feed is fetched whole)
HORIZON_SLACK = dt.timedelta(days=30)
LOOKBEHIND = dt.timedelta(days=1)
MAX_CREDENTIAL_LENGTH = 200
USER_AGENT = "booking-app calendar sync"

TOO_MANY = N_("You can add at most {max} calendar subscriptions.")
PASSWORD_WITHOUT_USER = N_("Enter the user name that goes with the password.")
CREDENTIAL_TOO_LONG = N_("This field is too long (at most {max} characters).")
SUBSCRIPTION_NOT_FOUND = N_("This calendar subscription does not exist.")
PROVIDERS_ONLY = N_("Only providers can add calendar subscriptions.")
NOT_FOR_EVENTS = N_("Busy times apply to rooms and services, not to events.")


# --- registration ----------------------------------------------------------------------------

def normalise_url(url: Any) -> str:
    """`webcal://` / `webcals://` → https://, then the one URL rule (url_safety); InvalidInput."""
    raw = url.strip() if isinstance(url, str) else ""
    lower = raw.lower()
    for prefix in ("webcals://", "webcal://"):
        if lower.startswith(prefix):
            raw = "https://" + raw[len(prefix):]
            break
    try:
        return url_safety.check_url(raw)
    except url_safety.UnsafeUrl as exc:
        raise InvalidInput(exc.message, field="url") from None


def _seal_credentials(username: Any, password: Any) -> str | None:
    username = username.strip() if isinstance(username, str) else ""
    password = password if isinstance(password, str) else ""
    if not username:
        if password:
            raise InvalidInput(PASSWORD_WITHOUT_USER, field="username")
        return None
    for field, value in (("username", username), ("password", password)):
        if len(value) > MAX_CREDENTIAL_LENGTH:
            raise InvalidInput(CREDENTIAL_TOO_LONG, field=field, max=MAX_CREDENTIAL_LENGTH)
    return mfa.seal(json.dumps([username, password]))  # (ASCII: json escapes the rest)


def _credentials(subscription_id: int, sealed: str | None) -> tuple[str, str] | None:
    """The subscription's (username, password); sealed with SECRET_KEY_PREVIOUS, they are
    sealed again with the current key (as two-factor secrets are)."""
    if not sealed:
        return None
    try:
        opened, old = mfa.unseal(sealed)
        username, password = json.loads(opened)
    except ValueError:
        raise FetchError("the stored credentials can't be opened (SECRET_KEY changed without "
                         "SECRET_KEY_PREVIOUS?): add the calendar again") from None
    if old:
        with db.unit_of_work() as s:
            s.exec(update(CalendarSubscription).where(  # type: ignore[call-overload]
                CalendarSubscription.id == subscription_id, CalendarSubscription.credentials_sealed == sealed)
                .values(credentials_sealed=mfa.seal(opened)))
    return str(username), str(password)


def as_dict(sub: CalendarSubscription) -> dict[str, Any]:
    """The API's view (credentials never leave the server; `has_credentials` says if any)."""
    return {"id": sub.id, "url": sub.url, "service_id": sub.service_id, "owner_id": sub.owner_id,
            "has_credentials": bool(sub.credentials_sealed), "last_synced_at": sub.last_synced_at,
            "last_error": sub.last_error, "created_at": sub.created_at}


def add(*, actor: Actor, url: Any, service_id: Any = None, username: Any = None, password: Any = None,
        sync: bool = True) -> dict[str, Any]:
    """Add a subscription of the actor's (for `service_id`: its provider's, which the actor
    must manage). `sync`: fetch it right away (after the commit; its outcome is in the answer)."""
    require_staff(actor, PROVIDERS_ONLY)
    clean = normalise_url(url)
    sealed = _seal_credentials(username, password)
    with db.unit_of_work() as s:
        owner_id = actor.id
        if service_id is not None:
            bookable = load_bookable(s, service_id, actor, manage=True)
            if bookable.kind == "event":
                raise InvalidInput(NOT_FOR_EVENTS, field="service_id")
            owner_id = bookable.provider_id
        count = s.exec(select(func.count()).select_from(CalendarSubscription)
                       .where(CalendarSubscription.owner_id == owner_id)).one()
        if count >= MAX_PER_OWNER:
            raise InvalidInput(TOO_MANY, field="url", max=MAX_PER_OWNER)
        sub = CalendarSubscription(owner_id=owner_id, service_id=service_id, url=clean, credentials_sealed=sealed)
        s.add(sub)
        s.flush()
        sub_id = sub.id
    assert sub_id is not None
    if sync:
        sync_now(sub_id)
    return get(actor=actor, subscription_id=sub_id)


def _visible(actor: Actor):
    if actor.is_admin:
        return True
    return CalendarSubscription.owner_id == actor.id


def list_for(*, actor: Actor) -> list[dict[str, Any]]:
    """The actor's subscriptions (an admin: everyone's), newest first."""
    require_staff(actor)
    with db.read_session() as s:
        rows = s.exec(select(CalendarSubscription).where(_visible(actor))
                      .order_by(CalendarSubscription.id.desc())).all()  # type: ignore[union-attr]
        return [as_dict(r) for r in rows]


def get(*, actor: Actor, subscription_id: Any) -> dict[str, Any]:
    with db.read_session() as s:
        return as_dict(_load(s, actor, subscription_id))


def _load(s: Any, actor: Actor, subscription_id: Any) -> CalendarSubscription:
    """The subscription if the actor owns it (or is an admin); NotFound otherwise (no hint
    that someone else's exists)."""
    return load_owned(s, CalendarSubscription, subscription_id, actor, owner="owner_id",
                      not_found=SUBSCRIPTION_NOT_FOUND)


def remove(*, actor: Actor, subscription_id: Any) -> None:
    """Remove a subscription and its busy intervals (their slots are free again)."""
    with db.unit_of_work() as s:
        sub = _load(s, actor, subscription_id)
        s.exec(delete(CalendarBusyInterval).where(CalendarBusyInterval.subscription_id == sub.id))  # type: ignore[call-overload]
        s.delete(sub)


def bookable_choices(*, actor: Actor) -> list[tuple[int, str]]:
    """(id, name) of the bookables a subscription of the actor may be limited to: their own
    rooms and services (events keep their sessions, whatever outside calendars say)."""
    if actor.id is None:
        return []
    B = Bookable
    with db.read_session() as s:
        rows = s.exec(select(B.id, B.name).where(B.provider_id == actor.id, B.kind != "event")
                      .order_by(B.name, B.id)).all()
        return [(int(i), str(n)) for i, n in rows]


def busy_for(*, actor: Actor, subscription_id: Any) -> list[tuple[dt.datetime, dt.datetime]]:
    """The stored busy intervals of a subscription (UTC), for its owner."""
    with db.read_session() as s:
        sub = _load(s, actor, subscription_id)
        B = CalendarBusyInterval
        rows = s.exec(select(B.start_at, B.end_at).where(B.subscription_id == sub.id).order_by(B.start_at)).all()
        return [(a, b) for a, b in rows]


# --- fetching --------------------------------------------------------------------------------

class FetchError(Exception):
    """The feed could not be fetched (the message is stored as `last_error`)."""


@dataclasses.dataclass(frozen=True)
class Fetched:
    body: bytes | None  # None: 304 Not Modified
    etag: str | None
    last_modified: str | None


def _pinned(target: url_safety.Target, ip: Any) -> tuple[str, str]:
    """(URL with the checked address in place of the name, Host header): the connection
    goes to the address url_safety checked, not to a second DNS answer."""
    parts = urlsplit(target.url)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    url = urlunsplit((target.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))
    name = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return url, (name if target.port == default else f"{name}:{target.port}")


def fetch(url: str, *, etag: str | None = None, last_modified: str | None = None,
          credentials: tuple[str, str] | None = None) -> Fetched:
    """GET the feed: conditional when validators are given, at most MAX_BYTES, TIMEOUT_SECONDS
    per step and TOTAL_SECONDS in all, redirects followed (MAX_REDIRECTS) only to targets
    url_safety allows. Credentials go to the subscription's own host only. Raises FetchError."""
    deadline = time.monotonic() + TOTAL_SECONDS
    origin = urlsplit(url).hostname
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    with httpx.Client(timeout=httpx.Timeout(TIMEOUT_SECONDS), follow_redirects=False, verify=True,
                      trust_env=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                target = url_safety.resolve_target(url)
            except url_safety.UnsafeUrl as exc:
                raise FetchError(f"address refused: {exc}") from None
            send = dict(headers)
            if credentials and urlsplit(url).hostname == origin:
                send["Authorization"] = "Basic " + base64.b64encode(
                    f"{credentials[0]}:{credentials[1]}".encode()).decode("ascii")
            response = _get(client, target, send, deadline)
            if response[0] in (301, 302, 303, 307, 308):
                location = response[1].get("location")
                if not location:
                    raise FetchError(f"HTTP {response[0]} without a Location")
                url = urljoin(url, location)
                continue
            status, got_headers, body = response
            if status == 304 and (etag or last_modified):
                return Fetched(None, etag, last_modified)
            if status != 200:
                raise FetchError(f"HTTP {status}")
            return Fetched(body, got_headers.get("etag"), got_headers.get("last-modified"))
    raise FetchError("too many redirects")


def _get(client: httpx.Client, target: url_safety.Target, headers: dict[str, str],
         deadline: float) -> tuple[int, httpx.Headers, bytes]:
    """One GET to the first of the target's addresses that answers: (status, headers, body)."""
    last: Exception | None = None
    for ip in target.ips[:3]:
        pinned, host = _pinned(target, ip)
        ext = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = client.build_request("GET", pinned, headers={**headers, "Host": host}, extensions=ext)
        try:
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            last = exc
            continue
        try:
            if response.status_code != 200:
                return response.status_code, response.headers, b""
            length = response.headers.get("content-length")
            if length and length.isdigit() and int(length) > MAX_BYTES:
                raise FetchError(f"the feed is larger than {MAX_BYTES // (1024 * 1024)} MiB")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise FetchError(f"the feed is larger than {MAX_BYTES // (1024 * 1024)} MiB")
                if time.monotonic() > deadline:
                    raise FetchError("the feed took too long to download")
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)
        except httpx.HTTPError as exc:
            raise FetchError(f"download failed: {type(exc).__name__}") from None
        finally:
            response.close()
    raise FetchError(f"could not connect: {type(last).__name__ if last else 'no address'}")


# --- the job ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Claimed:
    id: int
    url: str
    owner_id: int
    service_id: int | None
    credentials_sealed: str | None
    etag: str | None
    last_modified: str | None
    expanded_until: dt.datetime | None
    lease: dt.datetime


def _due(now: dt.datetime):
    S = CalendarSubscription
    return and_(S.next_sync_at <= now, or_(S.claimed_until.is_(None), S.claimed_until < now))  # type: ignore[union-attr,operator]


def claim(*, now: dt.datetime, limit: int = BATCH_SIZE, ids: list[int] | None = None) -> list[Claimed]:
    """Claim up to `limit` due subscriptions (or the given `ids`, due or not, unless another
    process holds them) with a lease, in one short transaction."""
    S = CalendarSubscription
    lease = now + dt.timedelta(seconds=LEASE_SECONDS)
    free = or_(S.claimed_until.is_(None), S.claimed_until < now)  # type: ignore[union-attr,operator]
    cond = and_(S.id.in_(ids), free) if ids is not None else _due(now)  # type: ignore[union-attr]
    with db.unit_of_work() as s:
        rows = claims.claim_rows(s, S, cond, order_by=(S.next_sync_at, S.id), limit=limit,
                                 values={"claimed_until": lease, "last_attempt_at": now},
                                 returning=(S.id, S.url, S.owner_id, S.service_id, S.credentials_sealed, S.etag,
                                            S.last_modified, S.expanded_until))
    return [Claimed(*r, lease) for r in rows]


def _window(s: Any, c: Claimed, now: dt.datetime) -> tuple[Any, dt.datetime, dt.datetime]:
    """(zone for floating times and all-day events, window start, window end): the bookable's
    zone and advance, or the provider's zone and the longest advance of their bookables."""
    B = Bookable
    if c.service_id is not None:
        row = s.exec(select(B.timezone, B.max_advance_days).where(B.id == c.service_id)).first()
        tz, days = (row[0], row[1]) if row else ("UTC", 365)
    else:
        user_tz = s.exec(select(User.timezone).where(User.id == c.owner_id)).first()
        days = s.exec(select(func.max(B.max_advance_days)).where(B.provider_id == c.owner_id)).one() or 365
        first_tz = s.exec(select(B.timezone).where(B.provider_id == c.owner_id).order_by(B.id)).first()
        tz = first_tz or user_tz or "UTC"
    return zone(tz), now - LOOKBEHIND, now + dt.timedelta(days=int(days) + 1) + HORIZON_SLACK


def _finish(c: Claimed, now: dt.datetime, **values: Any) -> bool:
    """Record an outcome (if our lease still holds) and schedule the next sync."""
    S = CalendarSubscription
    interval = dt.timedelta(minutes=get_settings().calendar_sync_interval_minutes)
    with db.unit_of_work() as s:
        result = s.exec(update(S).where(S.id == c.id, S.claimed_until == c.lease)  # type: ignore[call-overload]
                        .values(claimed_until=None, next_sync_at=now + interval, **values))
        return bool(result.rowcount)


def _store(c: Claimed, fetched: Fetched, pieces: list[tuple[dt.datetime, dt.datetime]], now: dt.datetime,
           reach: dt.datetime) -> bool:
    """Replace the subscription's busy intervals and record the sync, in one transaction
    (nothing is written when our lease was lost or the subscription was removed meanwhile)."""
    S, B = CalendarSubscription, CalendarBusyInterval
    interval = dt.timedelta(minutes=get_settings().calendar_sync_interval_minutes)
    with db.unit_of_work() as s:
        result = s.exec(update(S).where(S.id == c.id, S.claimed_until == c.lease)  # type: ignore[call-overload]
                        .values(claimed_until=None, next_sync_at=now + interval, last_synced_at=now,
                                last_error=None, etag=(fetched.etag or "")[:500] or None,
                                last_modified=(fetched.last_modified or "")[:100] or None, expanded_until=reach))
        if not result.rowcount:
            return False
        s.exec(delete(B).where(B.subscription_id == c.id))  # type: ignore[call-overload]
        if pieces:
            s.connection().execute(insert(B), [
                {"subscription_id": c.id, "provider_id": c.owner_id, "bookable_id": c.service_id,
                 "start_at": a, "end_at": z} for a, z in pieces])
    return True


def _sync_claimed(c: Claimed, now: dt.datetime) -> str:
    """Fetch, expand and store one claimed subscription → "synced" | "unchanged" | "failed"."""
    try:
        with db.read_session() as s:
            tz, lo, hi = _window(s, c, now)
        # the stored set must still reach the horizon for "not modified" to keep it
        conditional = c.expanded_until is not None and c.expanded_until >= hi - HORIZON_SLACK
        fetched = fetch(c.url, etag=c.etag if conditional else None,
                        last_modified=c.last_modified if conditional else None,
                        credentials=_credentials(c.id, c.credentials_sealed))
        if fetched.body is None:
            _finish(c, now, last_synced_at=now, last_error=None)
            return "unchanged"
        pieces = busy_intervals(fetched.body, zone=tz, window_start=lo, window_end=hi)
    except (FetchError, FeedError) as exc:
        _finish(c, now, last_error=str(exc)[:2000])
        return "failed"
    except Exception as exc:  # noqa: BLE001 - one bad feed must not stop the others
        log.exception("calendar subscription %s: sync failed", c.id)
        _finish(c, now, last_error=f"internal error: {type(exc).__name__}")
        return "failed"
    _store(c, fetched, pieces, now, hi)
    return "synced"


def sync_due(*, now: dt.datetime | None = None) -> int:
    """The job: sync every due subscription (batch by batch) → how many were attempted."""
    total = 0
    while True:
        now_ = now or utcnow()
        batch = claim(now=now_)
        if not batch:
            return total
        for c in batch:
            _sync_claimed(c, now_)
        total += len(batch)
        if now is not None:  # a fixed clock (tests): one pass
            return total


def sync_now(subscription_id: int, *, now: dt.datetime | None = None) -> str | None:
    """Sync one subscription right away (after adding it, or "sync now") unless another
    process is syncing it → its outcome, or None when it was busy."""
    now = now or utcnow()
    claimed = claim(now=now, ids=[subscription_id], limit=1)
    return _sync_claimed(claimed[0], now) if claimed else None


def sync_now_for(*, actor: Actor, subscription_id: Any) -> dict[str, Any]:
    """`sync_now` for its owner (or an admin) → the subscription as it is afterwards."""
    with db.read_session() as s:
        sub_id = _load(s, actor, subscription_id).id
    assert sub_id is not None
    sync_now(sub_id)
    return get(actor=actor, subscription_id=sub_id)
