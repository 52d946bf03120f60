"""Overload protection and the process's shutdown state.

`LoadShedMiddleware` (pure ASGI) caps the HTTP requests in flight in this process at
MAX_INFLIGHT_REQUESTS (0 = no cap). A request over the cap is answered at once with 503
problem+json and `Retry-After` instead of queueing behind the database pool: under a flood
every client gets a quick answer (its request changed nothing and may be retried with the
same Idempotency-Key) and the requests that were admitted still finish in time. Health,
readiness and metrics are exempt, so probes and scrapes keep working under load.

Shutdown: when the server's lifespan starts, the middleware chains this process's SIGTERM /
SIGINT handlers (uvicorn's, and any server that installs Python signal handlers). On the
signal the process is marked *draining* — GET /api/ready answers 503 so a proxy or
orchestrator stops sending new work — then, after SHUTDOWN_DRAIN_SECONDS (default 0), the
server's own handler runs: it stops accepting connections and lets in-flight requests
finish. Just before that, the *drain-end steps* run (`on_drain_end`, each bounded by
DRAIN_STEP_TIMEOUT): work that must happen while the process still fully works, not in the
server's own shutdown, which may be cut short (booking_app.py hands the open tabs over
there). A second signal stops at once. Draining is also set when the lifespan shuts down.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking_app.config import get_settings
from booking_app.i18n import N_, negotiate_locale, translate

log = logging.getLogger(__name__)

#: never shed: probes and scrapes must answer even (especially) when the app is saturated
EXEMPT_PATHS = frozenset({"/api/health", "/api/ready", "/metrics", "/ping", "/_health"})  # + Reflex's probes
RETRY_AFTER_SECONDS = 1

_TITLE = N_("Service busy")
_DETAIL = N_("The server is busy right now. Nothing was changed; please try again in a moment.")


# --- process state -------------------------------------------------------------------------

class _ProcessState:
    def __init__(self) -> None:
        self.draining = False
        self.inflight = 0
        self.shed_total = 0
        self.hooked = False
        self._lock = threading.Lock()

    def begin_draining(self) -> None:
        if not self.draining:
            self.draining = True
            log.info("shutting down: readiness now answers 503, in-flight requests are finishing")


STATE = _ProcessState()


def is_draining() -> bool:
    return STATE.draining


def begin_draining() -> None:
    STATE.begin_draining()


def inflight() -> int:
    return STATE.inflight


def _drain_delay() -> float:
    return get_settings().shutdown_drain_seconds


def install_shutdown_hook() -> bool:
    """Chain SIGTERM/SIGINT so that the process is marked draining before the server's own
    handler runs (after SHUTDOWN_DRAIN_SECONDS). Only from the main thread, once, and only
    over a Python handler the server installed (the default action is left alone)."""
    if STATE.hooked or threading.current_thread() is not threading.main_thread():
        return False
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    hooked = False
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue
        signal.signal(sig, _chained(previous, loop))
        hooked = True
    STATE.hooked = hooked
    return hooked


#: async steps run when the drain ends, before the server's own shutdown (`on_drain_end`)
DRAIN_STEPS: list[Callable[[], Awaitable[None]]] = []
#: the most one drain-end step may take before the shutdown goes on without it
DRAIN_STEP_TIMEOUT = 3.0
#: the running hand-over (kept referenced until it is done)
_HANDOVERS: set[asyncio.Task[None]] = set()


def on_drain_end(step: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """Register an async step to run on SIGTERM/SIGINT once the drain ends, just before the
    server's own shutdown starts (usable as a decorator). A failing or slow step is logged
    and the shutdown goes on."""
    DRAIN_STEPS.append(step)
    return step


async def run_drain_steps() -> None:
    for step in list(DRAIN_STEPS):
        try:
            await asyncio.wait_for(step(), DRAIN_STEP_TIMEOUT)
        except Exception:  # noqa: BLE001 - the shutdown must go on
            log.warning("drain-end step %s failed", getattr(step, "__qualname__", step), exc_info=True)


async def _hand_over(delay: float, previous: Callable[[int, Any], Any], signum: int, frame: Any) -> None:
    try:
        if delay > 0:
            await asyncio.sleep(delay)
        await run_drain_steps()
    finally:
        previous(signum, frame)


def _chained(previous: Callable[[int, Any], Any], loop: asyncio.AbstractEventLoop | None):
    pending = {"scheduled": False}

    def start(signum: int, frame: Any, delay: float) -> None:
        task = asyncio.ensure_future(_hand_over(delay, previous, signum, frame))
        _HANDOVERS.add(task)
        task.add_done_callback(_HANDOVERS.discard)

    def handler(signum: int, frame: Any) -> None:
        # runs in the main thread between two bytecodes: no locks, no logging here
        delay = _drain_delay()
        first = not STATE.draining
        STATE.draining = True
        usable_loop = loop is not None and not loop.is_closed()
        if first and usable_loop:
            assert loop is not None
            loop.call_soon_threadsafe(log.info, "shutting down (signal %s): readiness answers 503, draining "
                                      "for %.1f s, then in-flight requests finish", signum, delay)
        nothing_to_wait_for = delay <= 0 and not DRAIN_STEPS
        if not first or nothing_to_wait_for or not usable_loop or pending["scheduled"]:
            previous(signum, frame)
            return
        pending["scheduled"] = True
        assert loop is not None
        # wake the loop (a thread-safe call); after `delay` and the drain-end steps, hand over
        # to the server
        loop.call_soon_threadsafe(start, signum, frame, delay)

    return handler


def limit_worker_threads() -> int:
    """Size this process's thread pool for sync routes (anyio's default limiter, 40 threads)
    to the database pool: API_THREADS, by default DB_POOL_SIZE + DB_MAX_OVERFLOW + 2.

    Nearly every sync route needs a connection, so threads beyond the pool only queue for
    one inside SQLAlchemy's pool while contending for the GIL; measured on 2 cores with 64
    clients booking one slot, 10 threads instead of 40 gave ~25 % more bookings/s, a
    third lower p99 and a third less PostgreSQL CPU per booking (fewer backends waiting on
    the same advisory lock). Requests beyond it wait, in order, for a thread on the event
    loop, where LoadShedMiddleware bounds them. Call from the running event loop."""
    settings = get_settings()
    threads = settings.api_threads or settings.db_pool_size + settings.db_max_overflow + 2
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    return threads


#: collect the youngest generation every 50,000 net allocations instead of 700
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Fewer, cheaper garbage collections while serving: what exists at startup (modules,
    routes, compiled statements, ~1 M objects) is moved out of the collector's sight
    (`gc.freeze`), and the youngest generation is collected every 50,000 allocations
    instead of 700. A request allocates a few thousand short-lived objects, freed by
    reference counting; the default thresholds ran a collection every few requests and a
    full one that walked every object now and then, which showed as latency spikes. Measured
    on 2 cores, 64 clients booking: p99 ~280–430 ms → ~140–245 ms, same or better
    throughput, no change in memory per worker after load. Once per process."""
    if gc.get_threshold() == GC_THRESHOLDS:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _on_startup() -> None:
    STATE.draining = False  # a server (re)starts this app: ready again
    limit_worker_threads()
    tune_gc()
    try:
        install_shutdown_hook()
    except (ValueError, OSError):  # not allowed here (embedded server): no hook
        log.debug("could not chain the shutdown signal handlers", exc_info=True)


@contextlib.asynccontextmanager
async def lifespan_watch():
    """The same as the middleware does on lifespan events, for servers where the API is
    mounted inside another app and gets no lifespan of its own (Reflex: register it with
    `app.register_lifespan_task(lifespan_watch)`)."""
    _on_startup()
    try:
        yield
    finally:
        STATE.begin_draining()


# --- the middleware --------------------------------------------------------------------------

def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def overloaded_body(locale: str) -> bytes:
    return json.dumps({
        "type": "/problems/overloaded",
        "title": translate(_TITLE, locale),
        "status": 503,
        "detail": translate(_DETAIL, locale),
    }, ensure_ascii=False).encode("utf-8")


class LoadShedMiddleware:
    """Answer 503 + Retry-After at once when MAX_INFLIGHT_REQUESTS requests are in flight.

    The cap is read from the settings on each request (a cached object), so tests and
    operators changing the environment take effect with a new settings cache."""

    def __init__(self, app: ASGIApp, *, max_inflight: int | None = None) -> None:
        self.app = app
        self._fixed_limit = max_inflight

    def _limit(self) -> int:
        if self._fixed_limit is not None:
            return self._fixed_limit
        return get_settings().max_inflight_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._watch_lifespan(receive), send)
            return
        if kind != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        limit = self._limit()
        if limit and STATE.inflight >= limit:
            STATE.shed_total += 1
            await self._reject(scope, send)
            return
        STATE.inflight += 1  # one event loop per process: no lock needed between awaits
        try:
            await self.app(scope, receive, send)
        finally:
            STATE.inflight -= 1

    @staticmethod
    def _watch_lifespan(receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _on_startup()
            elif message["type"] == "lifespan.shutdown":
                STATE.begin_draining()
            return message

        return wrapped

    @staticmethod
    async def _reject(scope: Scope, send: Send) -> None:
        locale = negotiate_locale(None, _header(scope, b"accept-language"))
        body = overloaded_body(locale)
        await send({
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                (b"cache-control", b"no-store"),
            ],
        })
        await send({"type": "http.response.body", "body": body})
