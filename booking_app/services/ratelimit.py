"""Rate limits and growing delays counted in the database (`RateLimitEvent` rows).

Every app process sees the same counts. Two kinds of limit, both raising `RateLimited`
(HTTP 429 with Retry-After, an inline message in the UI):

- a sliding window: `check` refuses a key that has `limit` events in the last `window`;
  `hit` counts one event (sign-ups, reset links);
- a growing delay (`Backoff`): after `free` failures a key must wait base·2^k seconds
  (k = failures beyond the free ones, capped) after its last failure; `attempt` refuses a
  key that is still waiting and otherwise counts the attempt as a failure up front, so
  concurrent guesses see each other, and `clear` takes it back when it succeeded
  (passwords: a wrong one can never lock anyone out for longer than the cap).

`remember`/`remembered` keep a fact for days (a client that signed in to an account).
`RATE_LIMITS_ENABLED=false` switches every limit off (nothing is counted either).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session, delete, func, or_, select

from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import RateLimitEvent, utcnow
from booking_app.services.errors import RateLimited

MAX_KEY = 200
#: prefix of the keys `remember` keeps (pruned after their own retention, not the day)
KNOWN = "known:"


WAIT_SECONDS = N_("Too many attempts. Please try again in {seconds} s.")
WAIT_MINUTES = N_("Too many attempts. Please try again in {minutes} min.")


def limited(seconds: int) -> RateLimited:
    """The 429 for a wait of `seconds` (Retry-After), saying how long in words a person reads."""
    if seconds < 120:
        return RateLimited(WAIT_SECONDS, retry_after=seconds, seconds=seconds)
    return RateLimited(WAIT_MINUTES, retry_after=seconds, minutes=math.ceil(seconds / 60))


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


def check(session: Session, keys: Iterable[str], *, limit: int, window: dt.timedelta,
          now: dt.datetime | None = None) -> None:
    """Raise RateLimited when any key has `limit` events in the last `window`."""
    if not enabled():
        return
    waits = [w for k in keys if (w := retry_after(session, k, limit=limit, window=window, now=now)) is not None]
    if waits:
        raise limited(max(waits))


def hit(session: Session, keys: Iterable[str], *, now: dt.datetime | None = None) -> None:
    """Count one event for each key (inside the caller's transaction)."""
    if not enabled():
        return
    now = now or utcnow()
    for key in keys:
        session.add(RateLimitEvent(key=_key(key), at=now))


@dataclass(frozen=True)
class Backoff:
    """A growing delay: `free` failures cost nothing; then the next attempt must wait
    `base`·2^k seconds after the last failure (k = failures beyond `free`), at most `cap`.
    Failures older than `window` are forgotten."""

    free: int
    base: float
    cap: float
    window: dt.timedelta

    def delay(self, failures: int) -> float:
        """Seconds to wait after the last of `failures` failures (0 while they are free)."""
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2 ** min(failures - self.free, 40))


def wait(session: Session, key: str, rule: Backoff, *, now: dt.datetime | None = None) -> int | None:
    """Seconds `key` must still wait under `rule`, or None when it may try now."""
    now = now or utcnow()
    failures, last = session.exec(
        select(func.count(), func.max(RateLimitEvent.at))
        .where(RateLimitEvent.key == _key(key), RateLimitEvent.at > now - rule.window)
    ).one()
    delay = rule.delay(failures)
    if not failures or not delay:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.timezone.utc)
    remaining = (last + dt.timedelta(seconds=delay) - now).total_seconds()
    return math.ceil(remaining) if remaining > 0 else None


def attempt(session: Session, rules: Mapping[str, Backoff], *, now: dt.datetime | None = None) -> None:
    """Raise RateLimited (the longest wait) when any key must still wait; otherwise count
    this attempt as a failure of every key now — call `clear` when it turns out right."""
    if not enabled():
        return
    if session.get_bind().dialect.name == "postgresql":
        # attempts on one key queue here (SQLite's write lock does the same): of concurrent
        # guesses each sees the ones before it, none slips through on a stale count
        for key in sorted(rules):
            session.exec(text("SELECT pg_advisory_xact_lock(hashtext(:k))").bindparams(k=_key(key)))  # type: ignore[call-overload]
    now = now or utcnow()
    waits = [w for key, rule in rules.items() if (w := wait(session, key, rule, now=now)) is not None]
    if waits:
        raise limited(max(waits))
    hit(session, rules, now=now)


def clear(session: Session, *keys: str) -> None:
    """Forget every event of these keys (e.g. an account's failures after a right password)."""
    if keys:
        session.exec(delete(RateLimitEvent).where(RateLimitEvent.key.in_([_key(k) for k in keys])))  # type: ignore[call-overload, attr-defined]


def clear_prefix(session: Session, prefix: str) -> None:
    """Forget every event whose key starts with `prefix` (e.g. all clients' failures on an
    account after its password was reset)."""
    session.exec(delete(RateLimitEvent).where(RateLimitEvent.key.startswith(prefix, autoescape=True)))  # type: ignore[call-overload, attr-defined]


def remember(session: Session, key: str, *, now: dt.datetime | None = None) -> None:
    """Note that `key` happened now (one row per key; kept `prune(known_for=...)` long)."""
    if not enabled():
        return
    key = _key(KNOWN + key)
    session.exec(delete(RateLimitEvent).where(RateLimitEvent.key == key))  # type: ignore[call-overload]
    session.add(RateLimitEvent(key=key, at=now or utcnow()))


def remembered(session: Session, key: str, *, within: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Whether `remember(key)` was called in the last `within`."""
    since = (now or utcnow()) - within
    return session.exec(
        select(func.count()).where(RateLimitEvent.key == _key(KNOWN + key), RateLimitEvent.at > since)
    ).one() > 0


def prune(session: Session, *, older_than: dt.timedelta = dt.timedelta(days=1),
          known_for: dt.timedelta = dt.timedelta(days=30), now: dt.datetime | None = None) -> int:
    """Delete events older than any window, and remembered facts older than `known_for`
    (called by a periodic job)."""
    now = now or utcnow()
    is_known = RateLimitEvent.key.startswith(KNOWN)  # type: ignore[attr-defined]
    result = session.exec(delete(RateLimitEvent).where(or_(  # type: ignore[call-overload]
        (RateLimitEvent.at < now - older_than) & ~is_known,
        (RateLimitEvent.at < now - known_for) & is_known,
    )))
    return result.rowcount or 0
