"""Readiness: `GET /api/ready` — may a load balancer send this process new work?

Ready when the database answers within READY_DB_TIMEOUT_SECONDS and the process is not
shutting down. While the database is away (restart, failover) it answers 503, and 200 again
as soon as a connection works (the pool replaces its dead connections by itself: see db.py).
After SIGTERM (see api/loadshed.py) it answers 503 so a proxy or an
orchestrator drains the process while its in-flight requests finish. Liveness stays
`GET /api/health`. Neither probe is ever shed by the overload guard.
"""
from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

import booking_app.api.loadshed as loadshed
from booking_app import __version__
from booking_app.services import dbhealth

router = APIRouter(tags=["health"])

#: a probe must answer quickly even when the pool is saturated
READY_DB_TIMEOUT_SECONDS = 2.0


async def _database() -> str:
    try:
        return await asyncio.wait_for(run_in_threadpool(dbhealth.database_status), timeout=READY_DB_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        return "timeout"


@router.get("/api/ready", summary="Readiness: database reachable and not shutting down (503 otherwise)",
            responses={503: {"description": "not ready: shutting down, or the database does not answer",
                             "content": {"application/json": {}},
                             "headers": {"Retry-After": {"required": True, "schema": {"type": "integer"}}}}})
async def ready() -> JSONResponse:
    if loadshed.is_draining():
        body = {"status": "draining", "database": "skipped", "inflight": loadshed.inflight(),
                "version": __version__}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5", "Cache-Control": "no-store"})
    database = await _database()
    ok = database == "ok" and not loadshed.is_draining()
    body = {"status": "ready" if ok else ("draining" if loadshed.is_draining() else "unavailable"),
            "database": database, "inflight": loadshed.inflight(), "version": __version__}
    headers = {"Cache-Control": "no-store"}
    if not ok:
        headers["Retry-After"] = "5"
    return JSONResponse(body, status_code=200 if ok else 503, headers=headers)
