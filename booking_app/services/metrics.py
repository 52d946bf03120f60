"""Prometheus metrics of this application, the database pool and job lag, and the system
snapshot of the live dashboard.

- Prometheus metrics in `REGISTRY`, served at `/metrics`:
  `booking_http_requests_total{method,route,status}`,
  `booking_http_request_duration_seconds{method,route}` (histogram),
  `booking_http_errors_total{method,route}` (5xx and unhandled exceptions),
  `booking_db_pool_{size,checked_out,overflow,checked_in}` (SQLAlchemy pool of this process),
  `booking_job_lag_seconds{job}` (how late the oldest due work of a background sweep is).
- `observe_request()` (called by the ASGI middleware in `booking_app/api/metrics.py`) counts
  a request in those metrics and hands it to services/request_stats.py, the one-minute
  window and per-period history of the dashboard (shared by all processes through Redis).
- `system_snapshot()`: the dashboard's "system" figures (window, pool, job lag).

Route labels are route *templates* (`/api/bookings/{id}`), never raw paths, so the label
set stays small. Multi-process servers: set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory and `/metrics` aggregates all worker processes (prometheus_client's multiprocess
mode).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from booking_app import db
from booking_app.models import Booking, BookingStatus, Notification, NotificationStatus
from booking_app.services import request_stats

log = logging.getLogger(__name__)

_MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

#: Registry of this application's metrics (not prometheus_client's global one, so that
#: importing this module twice in tests never registers a metric twice).
REGISTRY = CollectorRegistry(auto_describe=True)
if not _MULTIPROC:
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector

    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)
    GCCollector(registry=REGISTRY)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "booking_http_requests", "HTTP requests handled, by method, route template and status code.",
    ["method", "route", "status"], registry=REGISTRY,
)
LATENCY = Histogram(
    "booking_http_request_duration_seconds", "HTTP request latency in seconds, by method and route template.",
    ["method", "route"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
ERRORS = Counter(
    "booking_http_errors", "HTTP requests that ended in a server error (5xx or an unhandled exception).",
    ["method", "route"], registry=REGISTRY,
)
_gauge_mode = {"multiprocess_mode": "livesum"} if _MULTIPROC else {}
DB_POOL_SIZE = Gauge("booking_db_pool_size", "Configured size of the database connection pool.", registry=REGISTRY, **_gauge_mode)
DB_POOL_CHECKED_OUT = Gauge("booking_db_pool_checked_out", "Database connections in use.", registry=REGISTRY, **_gauge_mode)
DB_POOL_OVERFLOW = Gauge("booking_db_pool_overflow", "Connections open beyond the pool size (negative: not yet opened).", registry=REGISTRY, **_gauge_mode)
DB_POOL_CHECKED_IN = Gauge("booking_db_pool_checked_in", "Idle connections in the pool.", registry=REGISTRY, **_gauge_mode)
JOB_LAG = Gauge(
    "booking_job_lag_seconds", "Age of the oldest due item a background sweep has not processed yet (0 = up to date).",
    ["job"], registry=REGISTRY, **({"multiprocess_mode": "max"} if _MULTIPROC else {}),
)




#: (method, route, status) → its request counter, latency histogram and error counter (5xx)
_labelled: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}


def observe_request(*, method: str, route: str, status: int, duration: float) -> None:
    """Record one finished HTTP request (status 500 for an unhandled exception)."""
    if not math.isfinite(duration) or duration < 0:
        duration = 0.0
    error = status >= 500
    children = _labelled.get((method, route, status))
    if children is None:  # (labels() validates and locks on every call: once per label set)
        if len(_labelled) >= 10_000:
            _labelled.clear()
        children = _labelled[(method, route, status)] = (
            REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route),
            ERRORS.labels(method, route) if error else None)
    children[0].inc()
    children[1].observe(duration)
    if children[2] is not None:
        children[2].inc()
    request_stats.record_request(duration, error)


# ---------------------------------------------------------------------------------------
# Database pool and job lag (read when asked: at scrape time and for the dashboard)
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolStats:
    size: int
    checked_out: int
    overflow: int
    checked_in: int


def pool_stats() -> PoolStats:
    """The SQLAlchemy pool of this process's engine (DATABASE_URL)."""
    pool = db.get_engine().pool

    def _num(name: str) -> int:
        fn = getattr(pool, name, None)
        try:
            return int(fn()) if callable(fn) else 0
        except Exception:  # pools without that statistic (StaticPool, NullPool)
            return 0

    return PoolStats(size=_num("size"), checked_out=_num("checkedout"), overflow=_num("overflow"),
                     checked_in=_num("checkedin"))


def job_lag_seconds(now: dt.datetime | None = None) -> dict[str, float]:
    """How far behind each database-driven sweep is, in seconds.

    - outbox_relay: age of the oldest notification that is due and still pending;
    - hold_expiry: age of the oldest pending booking whose hold has expired but which has
      not been released yet.
    0 means nothing is overdue. Both are index lookups (status + due time).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    with db.read_session() as s:
        oldest_due = s.execute(
            select(func.min(Notification.next_attempt_at)).where(
                Notification.status == NotificationStatus.pending.value, Notification.next_attempt_at <= now)
        ).scalar()
        oldest_hold = s.execute(
            select(func.min(Booking.hold_expires_at)).where(
                Booking.status == BookingStatus.pending.value, Booking.hold_expires_at <= now)
        ).scalar()

    def _age(value) -> float:
        if value is None:
            return 0.0
        if value.tzinfo is None:  # raw aggregate on SQLite comes back as text/naive
            value = value.replace(tzinfo=dt.timezone.utc)
        return max(0.0, round((now - value).total_seconds(), 3))

    return {"outbox_relay": _age(_as_datetime(oldest_due)), "hold_expiry": _age(_as_datetime(oldest_hold))}


def _as_datetime(value):
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def refresh_gauges(now: dt.datetime | None = None) -> None:
    """Update the pool and job-lag gauges (called before each /metrics scrape)."""
    stats = pool_stats()
    DB_POOL_SIZE.set(stats.size)
    DB_POOL_CHECKED_OUT.set(stats.checked_out)
    DB_POOL_OVERFLOW.set(stats.overflow)
    DB_POOL_CHECKED_IN.set(stats.checked_in)
    try:
        lags = job_lag_seconds(now)
    except Exception:  # an unreachable database must not break the scrape
        return
    for job, lag in lags.items():
        JOB_LAG.labels(job).set(lag)


def system_snapshot(now: dt.datetime | None = None) -> dict:
    """The numbers the live dashboard shows under "system"."""
    stats = pool_stats()
    try:
        lags = job_lag_seconds(now)
    except Exception:
        lags = {}
    return {
        **request_stats.window_stats(),
        "db_pool": asdict(stats),
        "job_lag_seconds": lags,
        "max_job_lag_seconds": max(lags.values()) if lags else None,
    }


def render_latest() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric: (body, content type)."""
    refresh_gauges()
    if _MULTIPROC:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
