"""Request body cap: a body larger than MAX_REQUEST_BODY_BYTES is answered with 413
problem+json before anything reads or parses it.

`BodyLimitMiddleware` (pure ASGI) checks `Content-Length` first and refuses at once, without
reading a byte of the body. A body without one (chunked transfer encoding) is counted as
its chunks stream in: the chunk that crosses the cap raises `BodyTooLarge` out of
`receive()`, so the route never sees a truncated body; the exception becomes the same 413
(through the API's exception handler, or here when it escapes the app before any
response started). The Stripe webhook keeps its own, smaller cap (api/payments.py).
"""
from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking_app.api.errors import problem, request_locale
from booking_app.config import get_settings
from booking_app.i18n import N_, translate

_DETAIL = N_("The request body is larger than the limit of {max} bytes.")


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive()` when a streamed body crosses the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413)
        self.limit = limit


def too_large(request: Request, limit: int) -> Response:
    """The 413 problem+json answer, in the caller's language."""
    detail = translate(_DETAIL, request_locale(request), max=limit)
    return problem(request, 413, detail, code="too_large")


async def _body_too_large(request: Request, exc: Exception) -> Response:
    return too_large(request, exc.limit if isinstance(exc, BodyTooLarge) else get_settings().max_request_body_bytes)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers") or ():
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else None
    return None


class BodyLimitMiddleware:
    """413 for request bodies over MAX_REQUEST_BODY_BYTES (read from the settings on each
    request, a cached object; `max_bytes` fixes it, for tests)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int | None = None) -> None:
        self.app = app
        self._fixed = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._fixed if self._fixed is not None else get_settings().max_request_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            await too_large(Request(scope), limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await too_large(Request(scope), limit)(scope, receive, send)


def install(app) -> None:  # noqa: ANN001 (a FastAPI app)
    """Add the middleware and the handler that turns `BodyTooLarge` into the 413."""
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    app.add_middleware(BodyLimitMiddleware)
