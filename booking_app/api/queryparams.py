"""A query parameter given twice (`?tz=UTC&tz=…`) is a 422 problem, not "the last one wins".

FastAPI reads a single-valued query parameter from its last occurrence and ignores the others,
so a request the OpenAPI document calls invalid (an array where one value is declared) was
answered as if it were valid — and a proxy or filter reading the first value would see another
request than the app (HTTP parameter pollution). Parameters declared as lists may repeat.
A pure ASGI middleware: a request without `&` in its query string costs one byte search.
"""
from __future__ import annotations

import collections.abc
import typing
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from booking_app.api.errors import problem, request_locale
from booking_app.i18n import N_, translate

REPEATED = N_("The query parameter {name} was given more than once.")
_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)


def _is_sequence(annotation: Any) -> bool:
    if typing.get_origin(annotation) in _SEQUENCES or annotation in _SEQUENCES:
        return True
    return any(_is_sequence(arg) for arg in typing.get_args(annotation))  # Optional[...], Annotated[...]


def _list_parameters(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params if _is_sequence(field.field_info.annotation)}
    for sub in dependant.dependencies:
        names |= _list_parameters(sub)
    return names


def repeated_parameter(query_string: bytes, may_repeat: collections.abc.Container[str]) -> str | None:
    """The first single-valued parameter named more than once in `query_string`, if any."""
    seen: set[str] = set()
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen and name not in may_repeat:
            return name
        seen.add(name)
    return None


class RepeatedQueryParameterMiddleware:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self._api = api
        self._may_repeat: set[str] | None = None

    def _list_names(self) -> set[str]:
        if self._may_repeat is None:  # the routes are all included by the first request
            self._may_repeat = set()
            for context in routing.iter_route_contexts(self._api.routes):
                if isinstance(context.original_route, routing.APIRoute):
                    self._may_repeat |= _list_parameters(context.original_route.dependant)
        return self._may_repeat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string") or b""
        if scope["type"] == "http" and b"&" in query and "/api/" in scope.get("path", ""):
            name = repeated_parameter(query, self._list_names())
            if name is not None:
                request = Request(scope)
                message = translate(REPEATED, request_locale(request), name=name)
                response = problem(request, 422, message, code="invalid_input",
                                   errors=[{"field": name, "message": message, "type": "repeated"}])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RepeatedQueryParameterMiddleware, api=app)
