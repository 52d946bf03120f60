"""RFC 9457 problem+json for every error the API returns."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from booking_app.config import get_settings
from booking_app.i18n import N_, negotiate_locale, translate
from booking_app.services import dbhealth
from booking_app.services.errors import Busy, RateLimited, ServiceError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

_ERROR = N_("Error")
#: a request body that is not JSON at all (a 422 like any other invalid input)
BODY_NOT_JSON = N_("The request body is not valid JSON.")

_TITLES = {
    400: N_("Bad request"),
    401: N_("Not signed in"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    413: N_("Request too large"),
    415: N_("Unsupported media type"),
    422: N_("Invalid input"),
    429: N_("Too many requests"),
    500: N_("Internal server error"),
    502: N_("Upstream error"),
    503: N_("Service busy"),
}


def request_locale(request: Request) -> str:
    user_locale = getattr(request.state, "user_locale", None)
    return negotiate_locale(user_locale, request.headers.get("accept-language"))


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    locale = request_locale(request)
    title = translate(_TITLES.get(status, _ERROR), locale)
    body: dict[str, Any] = {
        "type": f"/problems/{code}" if code else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if code:  # the machine-readable kind ("mfa_required", "reauth_required", …), also in `type`
        body["code"] = code
    body.update({k: v for k, v in extra.items() if v is not None})
    request_id = request.scope.get("state", {}).get("request_id")  # api/requestlog.py
    if request_id:
        body["request_id"] = request_id
        if status >= 500:  # (a 500 is answered outside the request log middleware, which sets it)
            headers = {**(headers or {}), "X-Request-ID": request_id}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    headers = None
    if isinstance(exc, (Busy, RateLimited)):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(
        request,
        exc.status,
        exc.translated(request_locale(request)),
        code=exc.code,
        headers=headers,
        field=exc.field,
        **getattr(exc, "problem_fields", {}),  # e.g. the sign-in challenge of `mfa_required`
    )


def _loc_to_field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    matched = request.scope.get("route")
    if matched is not None and any(tuple(err.get("loc", ("",)))[:1] == ("path",) for err in exc.errors()):
        if all(context.original_route is not matched for context in _path_routes(request)):
            # the path names a fixed resource (…/confirm-email) that lacks this method; only the
            # parameter of another route (…/{id}) took its text: 405, as for any other method
            return _method_not_allowed(request)
    locale = request_locale(request)
    errors = []
    for err in exc.errors():
        field = _loc_to_field(err.get("loc", ()))
        msg = err.get("msg", "")
        ctx = err.get("ctx") or {}
        # custom validators raise ValueError(msgid): translate those; pydantic's own
        # messages are English and come with their machine-readable type
        if msg.startswith("Value error, "):
            msg = translate(msg[len("Value error, "):], locale)
        elif err.get("type") == "json_invalid":
            msg = translate(BODY_NOT_JSON, locale)
        errors.append({"field": field, "message": msg, "type": err.get("type")})
        del ctx
    detail = translate(N_("Some fields are not valid."), locale)
    if errors:
        first = errors[0]
        detail = f"{detail} {first['field']}: {first['message']}" if first["field"] else f"{detail} {first['message']}"
    return problem(request, 422, detail, code="invalid_input", errors=errors)


def _body_not_json(request: Request) -> JSONResponse:
    message = translate(BODY_NOT_JSON, request_locale(request))
    return problem(request, 422, message, code="invalid_input",
                   errors=[{"field": "", "message": message, "type": "json_invalid"}])


def _path_routes(request: Request) -> list[RouteContext]:
    """The routes of the requested path, whatever their method; of several templates that match,
    the most specific: a literal `/api/bookings/confirm-email` rather than `/api/bookings/{id}`."""
    routes = [context for context in iter_route_contexts(getattr(request.app, "routes", ()))
              if context.methods and context.matches(request.scope)[0] is not Match.NONE]
    fewest = min((len(context.param_convertors) for context in routes), default=0)
    return [context for context in routes if len(context.param_convertors) == fewest]


def _allowed_methods(request: Request) -> str:
    """Every method the requested path answers, for `Allow`. (Starlette's 405 names only the
    methods of the first route whose path matched; a path's methods are often separate routes.)"""
    return ", ".join(sorted({method for context in _path_routes(request) for method in context.methods or ()}))


def _method_not_allowed(request: Request) -> JSONResponse:
    detail = translate(_TITLES[405], request_locale(request))
    return problem(request, 405, detail, headers={"Allow": _allowed_methods(request)})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI's own 400 for a body it could not decode (raised from the decoding error:
        # bytes that aren't UTF-8, nesting too deep): the 422 of any body that isn't JSON
        return _body_not_json(request)
    if exc.status_code == 405:
        return _method_not_allowed(request)
    headers = getattr(exc, "headers", None)
    detail = exc.detail if isinstance(exc.detail, str) else translate(_TITLES.get(exc.status_code, _ERROR), request_locale(request))
    return problem(request, exc.status_code, detail, headers=headers)


async def _pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    """No database connection free within DB_POOL_TIMEOUT: busy, nothing was changed."""
    return await _service_error(request, Busy(retry_after=1))


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database can't be reached (restart, failover, a dropped connection: dbhealth.UNAVAILABLE_ERRORS):
    503 + Retry-After, never a 500. The pool heals by itself; a client retrying a POST with its
    Idempotency-Key gets the first answer replayed if the change did commit."""
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__,
                str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "")
    return await _service_error(request, Busy(retry_after=get_settings().db_unavailable_retry_after_seconds))


async def _unusable_input(request: Request, exc: Exception) -> JSONResponse:
    """The safety net behind the input rules (services/validation.py): a value the database
    refuses (DataError: NUL, out-of-range number or date…), that overflows date arithmetic
    (OverflowError) or can't be encoded (UnicodeEncodeError) came from the request, so it
    is a 422, not a 500. Logged as a warning: each one is an input rule still missing."""
    log.warning("input the edges let through on %s %s: %s: %s", request.method, request.url.path,
                type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "")
    return problem(request, 422, translate(N_("Some of the input could not be processed: a value is out of range "
                                              "or contains characters that are not allowed."),
                                           request_locale(request)), code="invalid_input")


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        request,
        500,
        translate(N_("Something went wrong on our side. Please try again."), request_locale(request)),
        code="internal",
    )


class UnservedMethodRoute(BaseRoute):
    """The API's last route: an /api/… request whose path exists, but not with its method, gets
    the 405 problem with the full `Allow` here. Without it, where the web UI is mounted behind the
    API (Reflex's static files at ""), that mount would take the request and answer a plain-text
    405 `Allow: GET, HEAD`. Requests some route serves (also one added later) never match it."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or "/api/" not in scope.get("path", ""):
            return Match.NONE, {}
        partial = False
        for context in iter_route_contexts(self._app.routes):
            if context.original_route is self or not context.methods:
                continue
            match = context.matches(scope)[0]
            if match is Match.FULL:
                return Match.NONE, {}
            partial = partial or match is Match.PARTIAL
        return (Match.FULL, {}) if partial else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise StarletteHTTPException(status_code=405)  # answered by _http_error


def install_unserved_method_route(app: FastAPI) -> None:
    """Append UnservedMethodRoute: call it after the API's own routes are included."""
    app.router.routes.append(UnservedMethodRoute(app))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(dbhealth.POOL_TIMEOUT_ERROR, _pool_timeout)  # type: ignore[arg-type]
    for unusable in (*dbhealth.INPUT_REFUSED_ERRORS, OverflowError, UnicodeEncodeError):
        app.add_exception_handler(unusable, _unusable_input)  # type: ignore[arg-type]
    for unavailable in dbhealth.UNAVAILABLE_ERRORS:
        if unavailable is not dbhealth.POOL_TIMEOUT_ERROR:
            app.add_exception_handler(unavailable, _database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)
