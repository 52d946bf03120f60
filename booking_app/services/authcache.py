"""Short-lived cache of bearer-token lookups (services/auth.py `authenticate`).

Every authenticated request used to read its token and user from the database; that
lookup was ~15 % of a booking's CPU. Entries live at most AUTH_CACHE_SECONDS (default 5 s;
0 turns the cache off) and never past the token's own expiry. They are dropped at once,
after the change commits, when a token is revoked (logout, password change or reset,
deactivation) and when a user's role, status or profile changes — in this process
directly, and in every other process through a Redis channel when REDIS_URL is set (each
process listens in a daemon thread). Without Redis, other processes see such a change
within AUTH_CACHE_SECONDS. Writes that matter don't rely on the cache anyway: the
booking transaction re-reads the customer's account and refuses a disabled one.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from booking_app.config import get_settings
from booking_app.services import redis_channel

log = logging.getLogger(__name__)

CHANNEL = "booking:auth:forget"
MAX_ENTRIES = 50_000

# token hash → (monotonic time cached, token expiry as a UTC timestamp, user id, value)
_entries: dict[str, tuple[float, float, int, Any]] = {}
_lock = threading.Lock()
_redis_failed = False
_publish_paused_until = 0.0


def get(token_hash: str) -> Any | None:
    ttl = get_settings().auth_cache_seconds
    if ttl <= 0:
        return None
    _ensure_listener()
    hit = _entries.get(token_hash)
    if hit is None:
        return None
    cached_at, expires_ts, _uid, value = hit
    if time.monotonic() - cached_at >= ttl or time.time() >= expires_ts:
        _entries.pop(token_hash, None)
        return None
    return value


def put(token_hash: str, *, user_id: int, expires_ts: float, value: Any) -> None:
    if get_settings().auth_cache_seconds <= 0:
        return
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()  # crude but bounded; a refill costs one lookup per token
        _entries[token_hash] = (time.monotonic(), expires_ts, user_id, value)


def _drop_local(kind: str, ident: str) -> None:
    with _lock:
        if kind == "token":
            _entries.pop(ident, None)
        elif kind == "user":
            for h in [h for h, e in _entries.items() if str(e[2]) == ident]:
                del _entries[h]
        else:
            _entries.clear()


def forget(kind: str, ident: Any) -> None:
    """Drop cached lookups now, here and (with Redis) in every process.
    kind: "token" (a token hash), "user" (a user id) or "all"."""
    global _publish_paused_until
    _drop_local(kind, str(ident))
    url = get_settings().redis_url
    if url and time.monotonic() >= _publish_paused_until:
        try:
            redis_channel.publisher(url).publish(CHANNEL, f"{kind}:{ident}")
        except Exception as exc:  # noqa: BLE001 - the TTL still bounds staleness
            _publish_paused_until = time.monotonic() + 10  # don't wait on a dead Redis every time
            _redis_warning(exc)


def forget_after_commit(session, kind: str, ident: Any) -> None:
    """`forget` once the session's transaction commits (a lookup racing the change can't
    re-cache the old state), and also now."""
    _drop_local(kind, str(ident))
    event.listen(session, "after_commit", _on_commit(lambda: forget(kind, ident)), once=True)


def _on_commit(fn: Callable[[], None]) -> Callable[[Any], None]:
    """An `after_commit` listener (it gets the session) that calls `fn`."""
    return lambda _session: fn()


def clear() -> None:
    with _lock:
        _entries.clear()


def _redis_warning(exc: Exception) -> None:
    global _redis_failed
    if not _redis_failed:
        _redis_failed = True
        log.warning("auth cache: Redis unavailable (%s); other processes rely on the %s s expiry",
                    exc, get_settings().auth_cache_seconds)


def _ensure_listener() -> None:
    """Start (once per process and Redis URL, also after a fork) the thread applying other
    processes' forgets."""
    _subscriber.ensure(get_settings().redis_url)


def _on_message(data: bytes) -> None:
    kind, _, ident = data.decode("utf-8", "replace").partition(":")
    _drop_local(kind, ident)


def _on_error(exc: Exception) -> None:
    _redis_warning(exc)
    clear()  # entries would otherwise outlive forgets we miss until we are back


_subscriber = redis_channel.Subscriber("auth-cache-listener", lambda _url: CHANNEL, on_message=_on_message,
                                       on_connect=lambda _reconnected: clear(),  # forgets missed meanwhile
                                       on_error=_on_error)
