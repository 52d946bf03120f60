"""`GET /metrics` (Prometheus text format) and the middleware that measures every request."""
from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking_app.services import metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics of this process", include_in_schema=True,
            response_class=Response)
async def prometheus_metrics() -> Response:
    body, content_type = await run_in_threadpool(metrics.render_latest)
    return Response(content=body, media_type=content_type)


UNMATCHED_ROUTE = "<unmatched>"


class MetricsMiddleware:
    """Pure ASGI middleware: counts each HTTP request by method, route template and status,
    and times it. Streaming responses are timed to their last byte; an exception that
    escapes the app is recorded as a 500 and re-raised (the error handler answers it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status_holder[0] = 500
            raise
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            metrics.observe_request(method=scope.get("method", "GET"), route=template,
                                    status=status_holder[0], duration=time.perf_counter() - started)
