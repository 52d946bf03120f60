"""Liveness/readiness."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from booking_app import __version__
from booking_app.services import dbhealth

router = APIRouter(tags=["health"])


@router.get("/api/health", summary="Health: the app answers and its database is reachable",
            responses={503: {"description": "the database is unreachable (same body, status \"unavailable\")",
                             "content": {"application/json": {}}}})
async def health(request: Request) -> JSONResponse:
    database = await run_in_threadpool(dbhealth.database_status)
    ok = database == "ok"
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "database": database, "version": __version__},
        status_code=200 if ok else 503,
    )
