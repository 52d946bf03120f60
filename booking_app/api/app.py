"""The FastAPI application `api`: routers per module, problem+json errors, OpenAPI.

Served alone (`uvicorn booking_app.api:api`) or mounted into the Reflex app through
`rx.App(api_transformer=api)`.
"""
from __future__ import annotations

import contextlib

from fastapi import FastAPI

# siblings as `import booking_app.api.x as x`, never `from booking_app.api import x`: that names
# the package, whose __init__ imports this module (tests/test_architecture.py: no cycles)
import booking_app.api.approvals as approvals
import booking_app.api.audit as audit
import booking_app.api.bodylimit as bodylimit
import booking_app.api.booking_outcomes as booking_outcomes
import booking_app.api.bookings as bookings
import booking_app.api.browser_session as browser_session
import booking_app.api.calendar_subscriptions as calendar_subscriptions
import booking_app.api.catalog as catalog
import booking_app.api.discount_codes as discount_codes
import booking_app.api.docs as docs
import booking_app.api.embed as embed
import booking_app.api.errors as errors
import booking_app.api.fees as fees
import booking_app.api.health as health
import booking_app.api.logredact as logredact
import booking_app.api.metrics as metrics
import booking_app.api.notifications as notifications
import booking_app.api.openapi as openapi
import booking_app.api.payments as payments
import booking_app.api.queryparams as queryparams
import booking_app.api.ready as ready
import booking_app.api.reports as reports
import booking_app.api.requestlog as requestlog
import booking_app.api.security as security
import booking_app.api.series as series
import booking_app.api.users as users
import booking_app.api.waitlist as waitlist
import booking_app.api.webhooks as webhooks
from booking_app import __version__, logs, telemetry
from booking_app.api.loadshed import LoadShedMiddleware
from booking_app.api.metrics import MetricsMiddleware
from booking_app.jobs.scheduler import jobs_lifespan


@contextlib.asynccontextmanager
async def _lifespan(_app: FastAPI):
    async with jobs_lifespan():  # starts the jobs when JOBS_ENABLED
        yield


def create_api() -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Booking platform API",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,  # api/docs.py: Swagger UI from package files, no CDN
        redoc_url=None,
        # FastAPI's native OpenTelemetry: off (no OpenTelemetry SDK is configured here; its
        # per-request checks that one is cost ~2 % of a booking's CPU)
        telemetry={"tracing": False, "metrics": False, "logs": False},
        description="REST API of the self-hostable booking platform. All times UTC (ISO 8601), "
        "money in integer minor units with an ISO currency code.",
    )
    logs.configure_logging()  # LOG_FORMAT json|text, every line with its request id
    errors.install(app)
    logredact.install()  # no secret (feed/manage/reset token) in an access or error log line
    openapi.install(app)  # the document's security and error responses, completed centrally
    queryparams.install(app)  # a query parameter given twice is a 422 (innermost: only admitted requests)
    app.add_middleware(LoadShedMiddleware)  # inside the metrics one, so shed requests are counted
    bodylimit.install(app)  # 413 for oversized bodies before they take an in-flight slot
    app.add_middleware(MetricsMiddleware)
    security.install(app)  # CORS + security headers; outermost but for the request log's
    if telemetry.setup():  # OTEL_EXPORTER_OTLP_ENDPOINT set: a span per request; unset: nothing added
        app.add_middleware(requestlog.TraceMiddleware)
    # X-Request-ID on every response (a CORS preflight's too) and one access line per request
    app.add_middleware(requestlog.RequestLogMiddleware)
    docs.install(app)
    app.include_router(health.router)
    for router in _module_routers():
        app.include_router(router)
    errors.install_unserved_method_route(app)  # last: 405 + Allow before a mounted web UI
    return app


def _module_routers():
    """Routers of the service modules. Order matters for speed only: a request is matched
    against the routes in order, so the busiest (booking, then catalog reads) come first."""
    return [m.router for m in (bookings, catalog, payments, users, reports, notifications, audit, metrics, ready,
                               browser_session, webhooks, calendar_subscriptions, series, approvals,
                               embed, discount_codes, waitlist, booking_outcomes, fees)]


api = create_api()
