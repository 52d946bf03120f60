"""Request figures of the live dashboard: a one-minute window and per-period history.

Fed by `record_request()` (from metrics.observe_request, for every HTTP request):
- `window_stats()`: requests/s, p95 latency and error rate over the last 60 seconds
  (Prometheus computes those with `rate()`/`histogram_quantile()`; the dashboard needs them
  without a Prometheus server).
- `request_history()`, the dashboard's charts: each process counts its requests per
  wall-clock minute (last hour) and quarter hour (last day) in `HISTORIES`.

With REDIS_URL set both cover every process: a daemon thread of each process publishes its
window (latency histogram, request and error counts, its age) every `PUBLISH_SECONDS` to a
Redis key of its own that expires after `SHARE_TTL_SECONDS`, plus the current and previous
history period to a Redis hash of its own (expiring once the history no longer covers it);
readers merge the live processes' figures (histograms summed, then the p95; requests/s
summed over processes). A process that stops publishing drops out when its key expires.
Without Redis the figures are this process's. Redis trouble never fails a request or the
dashboard: the figures fall back to this process's (logged once).
"""
from __future__ import annotations

import bisect
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from booking_app.config import get_settings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# One-minute sliding window (per process)
# ---------------------------------------------------------------------------------------

WINDOW_SECONDS = 60
# latency buckets of the window (seconds): log-spaced from 1 ms to ~60 s, fine enough for
# a p95 within a few percent (linear interpolation inside the bucket)
_WINDOW_BOUNDS: tuple[float, ...] = tuple(0.001 * (1.25 ** i) for i in range(50))


class _Slot:
    __slots__ = ("second", "count", "errors", "buckets")

    def __init__(self) -> None:
        self.second = -1
        self.count = 0
        self.errors = 0
        self.buckets = [0] * (len(_WINDOW_BOUNDS) + 1)

    def reset(self, second: int) -> None:
        self.second = second
        self.count = 0
        self.errors = 0
        self.buckets = [0] * (len(_WINDOW_BOUNDS) + 1)


class RequestWindow:
    """Requests of the last `seconds` seconds in one slot per second (bounded memory)."""

    def __init__(self, seconds: int = WINDOW_SECONDS, clock=time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._slots = [_Slot() for _ in range(seconds)]
        self._lock = threading.Lock()
        self._started = clock()

    def add(self, duration: float, error: bool) -> None:
        now = int(self.clock())
        idx = bisect.bisect_left(_WINDOW_BOUNDS, duration)
        with self._lock:
            slot = self._slots[now % self.seconds]
            if slot.second != now:
                slot.reset(now)
            slot.count += 1
            slot.errors += 1 if error else 0
            slot.buckets[idx] += 1

    def snapshot(self) -> dict[str, Any]:
        """This window's totals, as published for other processes: request and error
        counts, the non-empty latency buckets as [index, count] pairs, and `span`, the
        seconds the counts cover (a process younger than the window covers its age)."""
        now_f = self.clock()
        now = int(now_f)
        count = errors = 0
        buckets = [0] * (len(_WINDOW_BOUNDS) + 1)
        with self._lock:
            for slot in self._slots:
                if now - self.seconds < slot.second <= now:
                    count += slot.count
                    errors += slot.errors
                    for i, n in enumerate(slot.buckets):
                        if n:
                            buckets[i] += n
        span = max(1.0, min(float(self.seconds), now_f - self._started))
        return {"v": _SNAPSHOT_VERSION, "requests": count, "errors": errors, "span": round(span, 3),
                "buckets": [[i, n] for i, n in enumerate(buckets) if n]}

    def stats(self) -> dict[str, float | int | None]:
        return merge_snapshots([self.snapshot()])

    def clear(self) -> None:
        with self._lock:
            for slot in self._slots:
                slot.reset(-1)
            self._started = self.clock()


#: Layout of a published snapshot (bump when the buckets change: mixed versions during a
#: rolling deploy are then left out instead of being summed wrongly).
_SNAPSHOT_VERSION = 1


def merge_snapshots(snapshots: Iterable[dict[str, Any]]) -> dict[str, float | int | None]:
    """Requests/s, p95 latency (ms) and error rate of several windows together: counts and
    histograms summed, the p95 taken from the summed histogram, and requests/s the sum of
    each window's own rate (each divides by the seconds it covers)."""
    count = errors = n_windows = 0
    rate = 0.0
    buckets = [0] * (len(_WINDOW_BOUNDS) + 1)
    for snap in snapshots:
        n_windows += 1
        count += snap["requests"]
        errors += snap["errors"]
        rate += snap["requests"] / snap["span"]
        for i, n in snap["buckets"]:
            buckets[i] += n
    return {
        "requests": count,
        "requests_per_second": round(rate, 3),
        "p95_ms": None if count == 0 else round(_quantile(buckets, count, 0.95) * 1000, 2),
        "error_rate": 0.0 if count == 0 else round(errors / count, 4),
        "errors": errors,
        "processes": n_windows,
    }


def _valid_snapshot(data: Any) -> dict[str, Any] | None:
    """A snapshot read back from Redis, or None when it is not one of this version."""
    if not isinstance(data, dict) or data.get("v") != _SNAPSHOT_VERSION:
        return None
    try:
        requests, errors, span = int(data["requests"]), int(data["errors"]), float(data["span"])
        buckets = [(int(i), int(n)) for i, n in data["buckets"]]
    except (KeyError, TypeError, ValueError):
        return None
    if (requests < 0 or not 0 <= errors <= requests or not (math.isfinite(span) and span >= 1.0)
            or any(not 0 <= i <= len(_WINDOW_BOUNDS) or n < 0 for i, n in buckets)
            or sum(n for _, n in buckets) != requests):
        return None
    return {"v": _SNAPSHOT_VERSION, "requests": requests, "errors": errors, "span": span, "buckets": buckets}


def _quantile(buckets: list[int], total: int, q: float) -> float:
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if not n:
            continue
        if seen + n >= rank:
            lower = 0.0 if i == 0 else _WINDOW_BOUNDS[i - 1]
            upper = _WINDOW_BOUNDS[i] if i < len(_WINDOW_BOUNDS) else _WINDOW_BOUNDS[-1] * 1.25
            return lower + (upper - lower) * max(0.0, rank - seen) / n
        seen += n
    return _WINDOW_BOUNDS[-1]


WINDOW = RequestWindow()


# ---------------------------------------------------------------------------------------
# Per-minute (and per-quarter-hour) history, for the dashboard's charts
# ---------------------------------------------------------------------------------------

class RequestHistory:
    """Requests per wall-clock period (`period_seconds`, e.g. each minute) for the last
    `periods` periods: count, errors and the latency histogram of each. Wall-clock (not
    monotonic) so that the periods of different processes line up when merged."""

    def __init__(self, period_seconds: int, periods: int, clock=time.time) -> None:
        self.period_seconds = period_seconds
        self.periods = periods
        self.clock = clock
        self._slots: dict[int, list] = {}  # period index → [requests, errors, buckets]
        self._lock = threading.Lock()

    def index(self, at: float | None = None) -> int:
        """The number of the period that contains `at` (now by default)."""
        return int((self.clock() if at is None else at) // self.period_seconds)

    def add(self, duration: float, error: bool, bucket: int | None = None) -> None:
        idx = self.index()
        b = bisect.bisect_left(_WINDOW_BOUNDS, duration) if bucket is None else bucket
        with self._lock:
            slot = self._slots.get(idx)
            if slot is None:
                slot = self._slots[idx] = [0, 0, [0] * (len(_WINDOW_BOUNDS) + 1)]
                for old in [k for k in self._slots if k <= idx - self.periods]:
                    del self._slots[old]
            slot[0] += 1
            slot[1] += 1 if error else 0
            slot[2][b] += 1

    def snapshot(self, indexes: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """Period index → {requests, errors, buckets as [index, count] pairs} for the
        periods still kept (or just `indexes`), the format published to Redis."""
        with self._lock:
            keys = sorted(self._slots) if indexes is None else [i for i in indexes if i in self._slots]
            return {i: {"v": _SNAPSHOT_VERSION, "requests": self._slots[i][0], "errors": self._slots[i][1],
                        "buckets": [[j, n] for j, n in enumerate(self._slots[i][2]) if n]} for i in keys}

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


#: per minute for the last hour, per quarter hour for the last day
HISTORIES: dict[int, RequestHistory] = {60: RequestHistory(60, 60), 900: RequestHistory(900, 96)}


def merge_history(period_seconds: int, first: int, count: int, per_process: Iterable[dict[int, dict[str, Any]]],
                  now: float | None = None) -> list[dict[str, Any]]:
    """One point per period `first` … `first + count - 1`: requests, requests/s (the current,
    unfinished period divides by its elapsed seconds), p95 latency (ms, from the summed
    histograms; None without requests) and errors, summed over the processes' histories."""
    totals = [[0, 0, [0] * (len(_WINDOW_BOUNDS) + 1)] for _ in range(count)]
    for history in per_process:
        for idx, snap in history.items():
            k = idx - first
            if 0 <= k < count:
                totals[k][0] += snap["requests"]
                totals[k][1] += snap["errors"]
                for j, n in snap["buckets"]:
                    totals[k][2][j] += n
    now = time.time() if now is None else now
    points = []
    for k, (requests, errors, buckets) in enumerate(totals):
        start = (first + k) * period_seconds
        seconds = min(float(period_seconds), max(1.0, now - start))
        points.append({
            "requests": requests, "errors": errors,
            "requests_per_second": round(requests / seconds, 3),
            "p95_ms": None if requests == 0 else round(_quantile(buckets, requests, 0.95) * 1000, 2),
        })
    return points


def _valid_history_entry(data: Any) -> dict[str, Any] | None:
    """A history period read back from Redis, or None when it is not one of this version."""
    if not isinstance(data, dict) or data.get("v") != _SNAPSHOT_VERSION:
        return None
    try:
        requests, errors = int(data["requests"]), int(data["errors"])
        buckets = [(int(i), int(n)) for i, n in data["buckets"]]
    except (KeyError, TypeError, ValueError):
        return None
    if (requests < 0 or not 0 <= errors <= requests
            or any(not 0 <= i <= len(_WINDOW_BOUNDS) or n < 0 for i, n in buckets)
            or sum(n for _, n in buckets) != requests):
        return None
    return {"requests": requests, "errors": errors, "buckets": buckets}


# ---------------------------------------------------------------------------------------
# The window of every process, through Redis (REDIS_URL)
# ---------------------------------------------------------------------------------------

KEY_PREFIX = "booking:metrics:window"
#: how often each process publishes its window, and how long a published window lives
PUBLISH_SECONDS = 1.0
SHARE_TTL_SECONDS = 5.0
#: after a Redis failure the dashboard reads this process's window alone for this long
#: (instead of waiting for a timeout on every refresh)
RETRY_AFTER_SECONDS = 10.0


class SharedWindow:
    """A process's `RequestWindow` published to Redis under a key of its own, and the
    windows of all live processes merged. Keys: `<prefix>:<process id>` (a snapshot as
    JSON, expiring after `ttl` seconds) and the set `<prefix>:processes` of the ids."""

    def __init__(self, window: RequestWindow, client: Any, *, prefix: str = KEY_PREFIX,
                 process_id: str | None = None, ttl: float = SHARE_TTL_SECONDS,
                 histories: dict[int, RequestHistory] | None = None) -> None:
        self.window = window
        self.histories = histories or {}
        self.client = client
        self.prefix = prefix
        self.process_id = process_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ttl = ttl

    @property
    def members_key(self) -> str:
        return f"{self.prefix}:processes"

    def key(self, process_id: str) -> str:
        return f"{self.prefix}:{process_id}"

    def publish(self) -> None:
        """Write this process's current window (raises on Redis errors)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.key(self.process_id), json.dumps(self.window.snapshot(), separators=(",", ":")),
                 px=int(self.ttl * 1000))
        pipe.sadd(self.members_key, self.process_id)
        pipe.expire(self.members_key, 86400)  # the set itself goes once nobody publishes
        for seconds, history in self.histories.items():
            # the current period and the one before (its last requests may not be out yet);
            # the hash lives as long as the history covers, so a stopped process's past
            # requests stay in the charts until they scroll out
            current = history.index()
            entries = history.snapshot((current - 1, current))
            key, life = self.history_key(seconds, self.process_id), seconds * (history.periods + 1)
            if entries:
                pipe.hset(key, mapping={str(i): json.dumps(e, separators=(",", ":")) for i, e in entries.items()})
            pipe.hdel(key, *(str(current - history.periods - j) for j in range(1, 4)))
            pipe.expire(key, life)
            pipe.sadd(self.history_members_key(seconds), self.process_id)
            pipe.expire(self.history_members_key(seconds), life)
        pipe.execute()

    def withdraw(self) -> None:
        """Remove this process's window now (a clean shutdown; raises on Redis errors)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.key(self.process_id))
        pipe.srem(self.members_key, self.process_id)
        pipe.execute()

    def snapshots(self) -> list[dict[str, Any]]:
        """The windows of all live processes: this one's read locally (it is fresher than
        its last publication), the others' from Redis. Raises on Redis errors."""
        members = sorted(m.decode() if isinstance(m, bytes) else str(m)
                         for m in self.client.smembers(self.members_key))
        others = [m for m in members if m != self.process_id]
        found = [self.window.snapshot()]
        if not others:
            return found
        gone = []
        for member, raw in zip(others, self.client.mget([self.key(m) for m in others])):
            if raw is None:  # expired: that process stopped publishing
                gone.append(member)
                continue
            try:
                snap = _valid_snapshot(json.loads(raw))
            except ValueError:
                snap = None
            if snap is not None:
                found.append(snap)
        if gone:
            self.client.srem(self.members_key, *gone)
        return found

    def stats(self) -> dict[str, float | int | None]:
        return merge_snapshots(self.snapshots())

    def history_members_key(self, period_seconds: int) -> str:
        return f"{self.prefix}:history:{period_seconds}:processes"

    def history_key(self, period_seconds: int, process_id: str) -> str:
        return f"{self.prefix}:history:{period_seconds}:{process_id}"

    def histories_of_all(self, period_seconds: int) -> list[dict[int, dict[str, Any]]]:
        """The `period_seconds` history of every process that published one within the
        time it covers: this one's read locally, the others' from Redis (raises on Redis
        errors)."""
        mine = self.histories.get(period_seconds)
        found = [mine.snapshot()] if mine is not None else []
        members = sorted(m.decode() if isinstance(m, bytes) else str(m)
                         for m in self.client.smembers(self.history_members_key(period_seconds)))
        others = [m for m in members if m != self.process_id or mine is None]
        if not others:
            return found
        pipe = self.client.pipeline(transaction=False)
        for member in others:
            pipe.hgetall(self.history_key(period_seconds, member))
        gone = []
        for member, raw in zip(others, pipe.execute()):
            if not raw:  # expired: nothing of that process within the covered time
                gone.append(member)
                continue
            history = {}
            for field, value in raw.items():
                try:
                    entry = _valid_history_entry(json.loads(value))
                    idx = int(field)
                except ValueError:
                    continue
                if entry is not None:
                    history[idx] = entry
            found.append(history)
        if gone:
            self.client.srem(self.history_members_key(period_seconds), *gone)
        return found


_share_lock = threading.Lock()
_shared: SharedWindow | None = None
_shared_key: tuple[int, str] | None = None  # (pid, REDIS_URL) it was made for
_redis_down_until = 0.0
_redis_failing = False


def _redis_url() -> str | None:
    return get_settings().redis_url


def _sharing() -> SharedWindow | None:
    """This process's SharedWindow when REDIS_URL is set (made, with its publishing thread,
    on first use in each process: also after a fork); None without Redis."""
    url = _redis_url()
    if not url:
        if _shared_key is not None:
            _stop_sharing()
        return None
    key = (os.getpid(), url)
    if _shared_key == key:
        return _shared
    return _start_sharing(key)


def _stop_sharing() -> None:
    """Forget this process's SharedWindow (its publishing thread ends at its next turn)."""
    global _shared, _shared_key
    with _share_lock:
        _shared, _shared_key = None, None


def _start_sharing(key: tuple[int, str]) -> SharedWindow | None:
    global _shared, _shared_key
    with _share_lock:
        if _shared_key == key:
            return _shared
        try:
            import redis

            client = redis.Redis.from_url(key[1], socket_timeout=0.5, socket_connect_timeout=0.5)
        except Exception as exc:  # noqa: BLE001 - a malformed URL must not break requests
            _redis_failed(exc)
            _shared, _shared_key = None, key
            return None
        shared = SharedWindow(WINDOW, client, prefix=KEY_PREFIX, histories=HISTORIES)
        _shared, _shared_key = shared, key
        threading.Thread(target=_publish_loop, args=(shared,), name="metrics-window-publisher", daemon=True).start()
        return shared


def _publish_loop(shared: SharedWindow) -> None:
    """Publish `shared` every PUBLISH_SECONDS for as long as it is this process's."""
    while _shared is shared:
        try:
            shared.publish()
            _redis_ok()
        except Exception as exc:  # noqa: BLE001 - keep trying; the dashboard falls back
            _redis_failed(exc)
        time.sleep(PUBLISH_SECONDS)


def _redis_failed(exc: Exception) -> None:
    global _redis_failing, _redis_down_until
    _redis_down_until = time.monotonic() + RETRY_AFTER_SECONDS
    if not _redis_failing:
        _redis_failing = True
        log.warning("system metrics: Redis unavailable (%s); the dashboard shows this process's requests only", exc)


def _redis_ok() -> None:
    global _redis_failing, _redis_down_until
    _redis_down_until = 0.0
    if _redis_failing:
        _redis_failing = False
        log.info("system metrics: Redis reachable again; the dashboard shows all processes")


def record_request(duration: float, error: bool) -> None:
    """Count one finished request (`duration` in seconds, finite and >= 0) in this process's
    window and histories; starts the Redis publisher in this process when REDIS_URL is set."""
    WINDOW.add(duration, error)
    bucket = bisect.bisect_left(_WINDOW_BOUNDS, duration)
    for history in HISTORIES.values():
        history.add(duration, error, bucket)
    _sharing()  # starts the publisher in this process (a dict look-up after that)


def window_stats() -> dict[str, float | int | None]:
    """Requests/s, p95 latency (ms) and error rate over the last minute, with `processes`,
    the number of processes whose windows they cover: every live process with REDIS_URL
    set, else (or while Redis fails) this one."""
    shared = _sharing()
    if shared is not None and time.monotonic() >= _redis_down_until:
        try:
            stats = shared.stats()
            _redis_ok()
            return stats
        except Exception as exc:  # noqa: BLE001 - the dashboard must answer anyway
            _redis_failed(exc)
    return WINDOW.stats()


def request_history(period_seconds: int, first: int, count: int, now: float | None = None) -> dict[str, Any]:
    """Requests/s and p95 latency per period (`period_seconds`: 60 or 900) for the periods
    numbered `first` … `first + count - 1` (period number = Unix time // period_seconds),
    as {"points": [...], "shared": bool}: every app process's requests with REDIS_URL set
    (shared=True), else (or while Redis fails) this process's."""
    if period_seconds not in HISTORIES:
        raise ValueError(f"no request history per {period_seconds} s")
    shared = _sharing()
    if shared is not None and time.monotonic() >= _redis_down_until:
        try:
            histories = shared.histories_of_all(period_seconds)
            _redis_ok()
            return {"points": merge_history(period_seconds, first, count, histories, now), "shared": True}
        except Exception as exc:  # noqa: BLE001 - the dashboard must answer anyway
            _redis_failed(exc)
    return {"points": merge_history(period_seconds, first, count, [HISTORIES[period_seconds].snapshot()], now),
            "shared": False}
