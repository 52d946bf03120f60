"""One access log line per request, and the request id that ties a request's lines together.

`RequestLogMiddleware` (pure ASGI, the outermost middleware) sees every request on the port:
the API's, and — where the API is the Reflex app's `api_transformer` — the pages, static
files and the event socket's handshake. For each it

- takes the id from an incoming `X-Request-ID` when it is a sane short token (letters,
  digits, `.`, `_`, `-`, `:`, up to 64: what proxies and tracing tools send), else makes one;
- sets it for the request's context (`logs.request_id`: every log line written while the
  request is handled names it) and in `scope["state"]["request_id"]` (problem+json bodies
  carry it, api/errors.py);
- echoes it in the `X-Request-ID` response header (an error answered by the app's last-resort
  handler gets it from its problem body's headers, api/errors.py);
- writes one line to the `booking_app.access` logger at INFO: method, route *template*
  (`/api/bookings/{id}`; `<web>` for the UI's pages and files, `<unmatched>` for an API path
  no route serves — never the raw path, which can hold a token), status, duration in ms and
  the signed-in user's id when the API resolved one (api/deps.get_actor). Nothing else: no
  query, no body, no token, no email or name.

A websocket (the UI's event socket) is logged once, at its handshake (101 accepted, 403
refused), not when it closes hours later.

`TraceMiddleware`: the request's OpenTelemetry span (booking_app/telemetry.py), added by
api/app.py only when tracing is on.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking_app import telemetry
from booking_app.logs import request_id

log = logging.getLogger("booking_app.access")

HEADER = b"x-request-id"
#: an incoming X-Request-ID we keep: a short token without spaces, quotes or control characters
_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
UNMATCHED_ROUTE = "<unmatched>"
WEB_ROUTE = "<web>"


def _new_prefix() -> None:
    global _prefix
    _prefix = os.urandom(8).hex()


_prefix = ""
_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)  # workers forked from one parent differ
_counter = itertools.count(1)


def new_id() -> str:
    """A new request id, 32 hex digits: 16 random per process + 16 of a counter (unique, and
    cheaper on the hot path than a uuid4's 16 random bytes per request)."""
    return f"{_prefix}{next(_counter):016x}"


def incoming_or_new(scope: Scope) -> str:
    """The request's sane `X-Request-ID`, else a new id."""
    for key, value in scope.get("headers") or ():
        if key == HEADER:
            if _SANE.fullmatch(value):
                return value.decode("ascii")
            break
    return new_id()


def route_template(scope: Scope) -> str:
    """The template of the route that served the request; never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return path
    return UNMATCHED_ROUTE if scope.get("path", "").startswith("/api/") else WEB_ROUTE


class RequestLogMiddleware:
    """Request id + one access line per request (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = incoming_or_new(scope)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id.set(rid)
        header = (HEADER, rid.encode("ascii"))
        status = [0]

        async def send_with_id(message: Message) -> None:
            mtype = message["type"]
            if mtype == "http.response.start":
                status[0] = code = message["status"]
                headers = message.get("headers", ())
                # (a 5xx problem carries the id already: api/errors.problem sets it, for the 500
                # answered outside this middleware)
                if code < 500 or not any(key.lower() == HEADER for key, _ in headers):
                    message["headers"] = [*headers, header]
            elif mtype == "websocket.accept" and not status[0]:
                status[0] = 101
                message["headers"] = [*message.get("headers", ()), header]
                _access(scope, 101, started)
            elif mtype == "websocket.close" and not status[0]:
                status[0] = 403
                _access(scope, 403, started)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if kind == "http":
                _access(scope, 500, started)
            raise  # (the request id stays set: the last-resort handler's lines name it too)
        if kind == "http":
            _access(scope, status[0] or 500, started)
        request_id.reset(token)


def _access(scope: Scope, status: int, started: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    method = scope.get("method", "GET") if scope["type"] == "http" else "WS"
    route = route_template(scope)
    actor = scope.get("state", {}).get("actor")
    user_id = getattr(actor, "id", None)
    # (the record is made and handled directly: `log.info` would also walk the stack to find
    # the caller, a third of a line's cost, for a line whose origin is always this one)
    log.handle(log.makeRecord(
        log.name, logging.INFO, __file__, 0, "%s %s %s %.2f ms user=%s",
        (method, route, status, duration_ms, user_id if user_id is not None else "-"), None,
        extra={"kind": "access", "method": method, "route": route, "status": status, "duration_ms": duration_ms,
               "user_id": user_id}))


class TraceMiddleware:
    """One server span per request / websocket, named by method and route template, with the
    request id and status (inside RequestLogMiddleware, so the id is set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or not telemetry.tracing:
            await self.app(scope, receive, send)
            return
        span, token = telemetry.start_request_span(scope.get("method", "GET") if kind == "http" else "WS",
                                                   scope.get("scheme", "http"))
        status = [0]

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "websocket.accept" and not status[0]:
                status[0] = 101
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_traced)
        except BaseException as exc:
            error = exc
            raise
        finally:
            telemetry.end_request_span(span, token, route_template(scope), status[0] or (500 if error else 0), error)
