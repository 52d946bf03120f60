"""Optional OpenTelemetry traces: requests, database statements and background jobs.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. Off means off: `setup()` returns False
without importing anything of OpenTelemetry, no middleware is added, no engine listener is
registered, and the few call sites on the hot path test the module flag `tracing` (one
attribute read) — the instruction-count bench shows no difference (docs/performance.md).

On, `setup()` builds a tracer provider (service name OTEL_SERVICE_NAME) whose spans go in
batches over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, and:
- `api/requestlog.TraceMiddleware` (added only when on, inside the request log one) opens one server
  span per request and websocket handshake, named `METHOD <route template>`, with the
  request id (`booking.request_id`), the route and the status; the request's other spans
  nest under it;
- SQLAlchemy engine events give one client span per statement (`db.query.text` is the
  parameterised SQL: values never reach a span);
- `db_block()` spans the booking's raw psycopg pipeline (db.autocommit), whose statements
  SQLAlchemy does not see;
- `job_span()` spans each background sweep run (jobs/scheduler.py).

The optional imports below are inside the functions on purpose: the packages must not be
loaded (nor cost start-up time and memory) in a process that doesn't trace.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from booking_app import __version__
from booking_app.config import get_settings
from booking_app.logs import request_id

log = logging.getLogger(__name__)

#: True once setup() turned tracing on (read on the hot path: a plain module attribute)
tracing: bool = False
_provider: Any = None
_tracer: Any = None
_trace: Any = None  # the opentelemetry.trace and .context modules, bound by setup()
_context: Any = None
_NULL = contextlib.nullcontext()
ATTR_REQUEST_ID = "booking.request_id"


def setup(settings=None) -> bool:
    """Turn tracing on when OTEL_EXPORTER_OTLP_ENDPOINT is set (idempotent). Returns whether on."""
    global tracing, _provider, _tracer, _trace, _context
    if tracing:
        return True
    endpoint = (settings or get_settings()).otel_exporter_otlp_endpoint
    if not endpoint:
        return False
    from opentelemetry import context, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    settings = settings or get_settings()
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name,
                                                        "service.version": __version__}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    _provider, _trace, _context = provider, trace, context
    _tracer = provider.get_tracer("booking_app", __version__)
    event.listen(Engine, "before_cursor_execute", _before_statement)
    event.listen(Engine, "after_cursor_execute", _after_statement)
    event.listen(Engine, "handle_error", _statement_failed)
    tracing = True
    log.info("tracing on: spans to %s/v1/traces", endpoint.rstrip("/"))
    return True


def shutdown() -> None:
    """Flush the spans still queued and turn tracing off (process exit, tests)."""
    global tracing, _provider, _tracer
    if not tracing:
        return
    tracing = False
    for name, listener in (("before_cursor_execute", _before_statement), ("after_cursor_execute", _after_statement),
                           ("handle_error", _statement_failed)):
        if event.contains(Engine, name, listener):
            event.remove(Engine, name, listener)
    _provider.shutdown()
    _provider = _tracer = None


def flush(timeout_ms: int = 10_000) -> bool:
    """Export the finished spans now (tests, the CLI before it exits)."""
    return bool(_provider.force_flush(timeout_ms)) if tracing else True


def _attributes(**extra: Any) -> dict[str, Any]:
    rid = request_id.get()
    return {ATTR_REQUEST_ID: rid, **extra} if rid else extra


# --- database ----------------------------------------------------------------------------
def _before_statement(conn, _cursor, statement, _parameters, context, _executemany) -> None:
    span = _tracer.start_span(
        statement.split(None, 1)[0].upper() if statement else "SQL", kind=_trace.SpanKind.CLIENT,
        attributes=_attributes(**{"db.system.name": conn.dialect.name, "db.query.text": statement[:2000]}))
    if context is not None:
        context._booking_span = span


def _after_statement(_conn, _cursor, _statement, _parameters, context, _executemany) -> None:
    span = getattr(context, "_booking_span", None)
    if span is not None:
        span.end()
        context._booking_span = None


def _statement_failed(exception_context) -> None:
    span = getattr(exception_context.execution_context, "_booking_span", None)
    if span is not None:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(exception_context.original_exception).__name__))
        span.end()
        exception_context.execution_context._booking_span = None


@contextlib.contextmanager
def _span(name: str, kind_name: str, attributes: dict[str, Any]):
    with _tracer.start_as_current_span(name, kind=getattr(_trace.SpanKind, kind_name),
                                       attributes=_attributes(**attributes)) as span:
        yield span


def db_block(name: str):
    """A span around statements sent to psycopg directly (the booking pipeline), or a no-op."""
    return _span(name, "CLIENT", {"db.system.name": "postgresql"}) if tracing else _NULL


# --- jobs --------------------------------------------------------------------------------
def job_span(name: str):
    """A span around one run of background job `name`, or a no-op when not tracing."""
    return _span(f"job {name}", "INTERNAL", {"booking.job": name}) if tracing else _NULL


# --- requests (api/requestlog.TraceMiddleware) ------------------------------------------
def start_request_span(method: str, scheme: str) -> tuple[Any, object]:
    """Open a request's server span and make it the current one; → (span, context token)."""
    span = _tracer.start_span(method, kind=_trace.SpanKind.SERVER,
                              attributes=_attributes(**{"http.request.method": method, "url.scheme": scheme}))
    return span, _context.attach(_trace.set_span_in_context(span))


def end_request_span(span: Any, token: object, route: str, status: int, exc: BaseException | None) -> None:
    """Close a request's span: named `METHOD <route template>`, with its status."""
    _context.detach(token)
    span.update_name(f"{span.name} {route}")
    span.set_attribute("http.route", route)
    if status:
        span.set_attribute("http.response.status_code", status)
    if exc is not None:
        span.record_exception(exc)
    if status >= 500 or exc is not None:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR))
    span.end()
