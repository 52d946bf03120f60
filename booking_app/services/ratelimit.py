"""Sliding-window rate limits counted in the database (`RateLimitEvent` rows).

Every app process sees the same counts. `check` raises `RateLimited` (HTTP 429 with
Retry-After) when a key has reached its limit inside the window; `hit` counts one event;
`clear` forgets a key (e.g. the failures of an account after a successful login).
`RATE_LIMITS_ENABLED=false` switches every limit off.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from sqlmodel import Session, delete, func, select

from booking_app.config import get_settings
from booking_app.models import RateLimitEvent, utcnow
from booking_app.services.errors import RateLimited

MAX_KEY = 200


def enabled() -> bool:
    return get_settings().rate_limits_enabled


def _key(key: str) -> str:
    return key[:MAX_KEY]


def retry_after(session: Session, key: str, *, limit: int, window: dt.timedelta,
                now: dt.datetime | None = None) -> int | None:
    """Seconds until `key` may act again, or None when it is below its limit."""
    now = now or utcnow()
    since = now - window
    key = _key(key)
    count, oldest = session.exec(
        select(func.count(), func.min(RateLimitEvent.at)).where(RateLimitEvent.key == key, RateLimitEvent.at > since)
    ).one()
    if count < limit:
        return None
    if count > limit:
        # the event that has to age out is the (count - limit + 1)-th oldest
        oldest = session.exec(
            select(RateLimitEvent.at).where(RateLimitEvent.key == key, RateLimitEvent.at > since)
            .order_by(RateLimitEvent.at).offset(count - limit).limit(1)
        ).first() or oldest
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.timezone.utc)
    return max(1, math.ceil((oldest + window - now).total_seconds()))


def check(session: Session, keys: Iterable[str], *, limit: int, window: dt.timedelta) -> None:
    """Raise RateLimited when any key has `limit` events in the last `window`."""
    if not enabled():
        return
    waits = [w for k in keys if (w := retry_after(session, k, limit=limit, window=window)) is not None]
    if waits:
        raise RateLimited(retry_after=max(waits))


def hit(session: Session, keys: Iterable[str]) -> None:
    if not enabled():
        return
    now = utcnow()
    for key in keys:
        session.add(RateLimitEvent(key=_key(key), at=now))


def clear(session: Session, key: str) -> None:
    session.exec(delete(RateLimitEvent).where(RateLimitEvent.key == _key(key)))  # type: ignore[call-overload]


def prune(session: Session, *, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Delete events older than any window (called by a periodic job)."""
    result = session.exec(delete(RateLimitEvent).where(RateLimitEvent.at < utcnow() - older_than))  # type: ignore[call-overload]
    return result.rowcount or 0
