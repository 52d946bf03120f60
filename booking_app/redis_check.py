"""Redis at start-up: the UI server refuses to start without it when REDIS_URL is set.

With REDIS_URL set, the Reflex UI keeps every browser tab's state in Redis and several app
processes share it; a UI server that started without Redis could serve no page event. So
`reflex run` (rxconfig.py) checks first — waiting up to REDIS_STARTUP_WAIT_SECONDS for a
Redis that is still starting — and otherwise exits with status 1 and one line naming
REDIS_URL and the address it points at (never its password). Once running, Redis may go
away and come back: pages reconnect by themselves (ui/redis_outage.py). The REST API alone
(`uvicorn booking_app.api:api`) starts without Redis: it only uses it to share its token
cache invalidations and dashboard figures, and degrades to per-process ones.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit


def redacted_address(url: str) -> str:
    """`url` without its user name and password: scheme://host:port/db."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an address that can't be read)"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def redis_unreachable(url: str, wait_seconds: float) -> str | None:
    """None when Redis at `url` answers a PING within `wait_seconds` (tried every half
    second), else why not (one line)."""
    import redis

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        except ValueError as exc:  # a malformed URL: no point in waiting
            return str(exc)
        try:
            client.ping()
            return None
        except redis.RedisError as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
        finally:
            client.close()
        if time.monotonic() >= deadline:
            return reason
        time.sleep(0.5)


def require_redis(url: str, wait_seconds: float) -> None:
    """Exit (status 1, one line on stderr) unless Redis at `url` answers."""
    reason = redis_unreachable(url, wait_seconds)
    if reason is not None:
        raise SystemExit(
            f"error: REDIS_URL is set to {redacted_address(url)}, but Redis does not answer there "
            f"({reason}). Start Redis, correct REDIS_URL, or unset it to run a single process without Redis.")
