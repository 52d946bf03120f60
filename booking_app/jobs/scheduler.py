"""APScheduler 3 setup: one AsyncIOScheduler per process, in-memory job store.

Every job is a repeat-safe sweep that claims its rows in the database, so running the
scheduler in several processes at once is safe. Jobs are registered in `JOBS`.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.concurrency import run_in_threadpool

from booking_app import db, telemetry
from booking_app.config import get_settings
from booking_app.logs import configure_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    name: str
    target: str  # "module:function", a synchronous sweep returning a count
    seconds: float


#: The sweeps. Each module owns its function; the scheduler only runs them.
#: (outbox_relay runs every OUTBOX_INTERVAL_SECONDS; the others at the intervals below)
JOBS: list[JobSpec] = [
    JobSpec("outbox_relay", "booking_app.jobs.sweeps:relay_outbox", 5.0),
    JobSpec("reminders", "booking_app.jobs.sweeps:sweep_reminders", 60.0),
    JobSpec("hold_expiry", "booking_app.jobs.sweeps:expire_holds", 30.0),
    JobSpec("approval_expiry", "booking_app.jobs.sweeps:expire_approval_requests", 60.0),
    JobSpec("complete_bookings", "booking_app.jobs.sweeps:complete_past_bookings", 300.0),
    JobSpec("waitlist_sweep", "booking_app.services.waitlist_admin:sweep", 300.0),  # issue 24: past entries end
    JobSpec("payment_refunds", "booking_app.services.refunds:process_pending_refunds", 60.0),
    JobSpec("fee_recovery", "booking_app.jobs.sweeps:recover_fee_charges", 60.0),
    JobSpec("purge_credentials", "booking_app.services.auth:purge_expired", 3600.0),
    JobSpec("purge_guest_requests", "booking_app.services.guest_bookings:purge_guest_requests", 3600.0),
    # due subscriptions (each CALENDAR_SYNC_INTERVAL_MINUTES) are looked for every minute
    JobSpec("calendar_sync", "booking_app.services.calendar_sync:sync_due", 60.0),
]


def _resolve(target: str):
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def run_job_once(spec: JobSpec) -> int:
    """Run one sweep; a failure is logged and the sweep runs again at its next tick. The
    database being away (restart, failover) is one warning line per tick, not a traceback:
    every sweep claims its rows in the database, so an interrupted one loses nothing."""
    try:
        with telemetry.job_span(spec.name):  # a trace per run when tracing is on
            result = _resolve(spec.target)()
    except db.UNAVAILABLE_ERRORS as exc:
        log.warning("job %s failed (database unavailable, retried next tick): %s: %s", spec.name,
                    type(exc).__name__, (str(exc).strip().splitlines() or [""])[0][:300])
        return 0
    except Exception:  # a failing sweep must not stop the others; it runs again next tick
        log.exception("job %s failed", spec.name)
        return 0
    return int(result or 0)


def run_all_once() -> dict[str, int]:
    return {spec.name: run_job_once(spec) for spec in JOBS}


def create_scheduler() -> AsyncIOScheduler:
    settings = get_settings()
    # A sweep that is still busy when its next tick comes (a long outbox backlog) is the
    # design, not a fault: max_instances=1 + coalesce skip that tick. APScheduler logs each
    # skip as a warning; keep its log for real errors.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
    for spec in JOBS:
        seconds = settings.outbox_interval_seconds if spec.name == "outbox_relay" else spec.seconds

        async def _tick(spec: JobSpec = spec) -> None:
            try:
                await run_in_threadpool(run_job_once, spec)
            except asyncio.CancelledError:  # shutting down: the sweep's claims expire and are retried
                log.info("job %s interrupted by shutdown", spec.name)

        scheduler.add_job(_tick, "interval", seconds=seconds, id=spec.name, name=spec.name)
    return scheduler


_running: AsyncIOScheduler | None = None


@contextlib.asynccontextmanager
async def jobs_lifespan():
    """Run the jobs for as long as the app runs (when JOBS_ENABLED).

    Used as the FastAPI lifespan (`uvicorn booking_app.api:api`) and registered with
    Reflex (`app.register_lifespan_task`), whose top-level app does not run the lifespan
    of the mounted API. One scheduler per process, whichever starts first.
    """
    global _running
    if not get_settings().jobs_enabled or _running is not None or not JOBS:
        yield
        return
    scheduler = create_scheduler()
    scheduler.start()
    _running = scheduler
    log.info("jobs running in this process: %s", ", ".join(s.name for s in JOBS))
    try:
        yield
    finally:
        _running = None
        scheduler.shutdown(wait=False)


def run_forever(*, once: bool = False) -> None:
    configure_logging()
    telemetry.setup()  # spans of the runs when OTEL_EXPORTER_OTLP_ENDPOINT is set
    try:
        _run_forever(once=once)
    finally:
        telemetry.shutdown()  # export the spans still queued


def _run_forever(*, once: bool) -> None:
    if once:
        for name, count in run_all_once().items():
            print(f"{name}: {count}")
        return

    async def main() -> None:
        scheduler = create_scheduler()
        scheduler.start()
        log.info("jobs running: %s", ", ".join(s.name for s in JOBS) or "(none)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        scheduler.shutdown(wait=True)

    asyncio.run(main())
