"""The OpenAPI document, completed in one place so that it tells the truth about every route.

`install(app)` wraps `app.openapi`; the first build of /api/openapi.json then, for every
operation of every router (routes added later are covered without a line of their own):

- security, read from the route's dependencies: `require_user` / `require_role` → the bearer
  token is required; `get_actor` alone → optional (`[{}, {"HTTPBearer": []}]`: anonymous
  callers are served, a token that is sent must be valid); neither → no security;
- the error statuses the route can answer whatever its own code does: 401 (a bad token) where
  a token is read, 403 where a role is required, 404 where the path names an object, 422
  where there are parameters or a body (including a body that isn't JSON), 413 (body cap)
  where there is a body, 429 where there is a body and no sign-in is required (the per-IP and
  per-email limits of sign-up, sign-in, password reset and guest bookings), 503 (busy, load
  shedding) everywhere — plus whatever the route declares itself (409, 502, a signed-in
  user's throttled password check's 429, …);
- every error response as `application/problem+json` with the shared `Problem` schema, and a
  required `Retry-After` header on 429 and 503.

Probes (/api/health, /api/ready, /metrics: exempt from load shedding, their own bodies) keep
exactly what their routes declare.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from booking_app.api.deps import BEARER_SCHEME, get_actor, require_user
from booking_app.api.errors import PROBLEM
from booking_app.api.loadshed import EXEMPT_PATHS
from booking_app.api.schemas import problem_responses

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER_REQUIRED: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
BEARER_OPTIONAL: list[dict[str, list[str]]] = [{}, {"HTTPBearer": []}]
RETRY_AFTER = {"description": "seconds to wait before trying again", "required": True,
               "schema": {"type": "integer", "minimum": 0}}
#: FastAPI's own 422 documentation (a JSON body of another shape), replaced by the Problem
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def _needs(dependant: Dependant, call: Any) -> bool:
    return dependant.call is call or any(_needs(d, call) for d in dependant.dependencies)


def _needs_role(dependant: Dependant) -> bool:
    """Whether a dependency made by deps.require_role is among the route's dependencies."""
    return getattr(dependant.call, "roles", None) is not None or any(_needs_role(d) for d in dependant.dependencies)


def _error_statuses(operation: dict[str, Any], dependant: Dependant) -> set[int]:
    statuses = {503}
    takes_token = _needs(dependant, get_actor)
    role = _needs_role(dependant)
    body = "requestBody" in operation
    parameters = operation.get("parameters") or []
    if takes_token:
        statuses.add(401)
    if role:
        statuses.add(403)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if parameters or body:
        statuses.add(422)
    if body:
        statuses.add(413)
        if not _needs(dependant, require_user):
            statuses.add(429)
    return statuses


def _problem_response(code: int, response: dict[str, Any]) -> dict[str, Any]:
    """`response` (as the route declared it, maybe empty) documented as problem+json."""
    default = problem_responses(code)[code]
    content = response.get("content") or {}
    refs_fastapi = any(name in json.dumps(content) for name in _FASTAPI_VALIDATION)
    if not content or refs_fastapi:
        content = {PROBLEM: {"schema": PROBLEM_REF}}
    elif PROBLEM in content:
        content[PROBLEM] = {**content[PROBLEM], "schema": PROBLEM_REF}
    out = {**response, "content": content}
    if not out.get("description") or refs_fastapi:
        out["description"] = default["description"]
    if code in (429, 503):
        out["headers"] = {**out.get("headers", {}), "Retry-After": RETRY_AFTER}
    return out


def document_operation(operation: dict[str, Any], dependant: Dependant) -> None:
    """Security and error responses of one operation (see the module docstring)."""
    if _needs(dependant, require_user):
        operation["security"] = BEARER_REQUIRED
    elif _needs(dependant, get_actor):
        operation["security"] = BEARER_OPTIONAL
    responses = operation.setdefault("responses", {})
    for code in sorted(_error_statuses(operation, dependant)):
        responses.setdefault(str(code), {})
    for key in list(responses):
        if key.isdigit() and int(key) >= 400:
            responses[key] = _problem_response(int(key), responses[key])
    operation["responses"] = dict(sorted(responses.items()))


def complete(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Complete a document FastAPI built for `app` (in place; also returned)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["HTTPBearer"] = BEARER_SCHEME
    components.setdefault("schemas", {})["Problem"] = problem_responses(400)[400]["content"][PROBLEM]["schema"]
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, routing.APIRoute) or not route.include_in_schema:
            continue
        if context.path_format in EXEMPT_PATHS:
            continue
        for method in context.methods or ():
            operation = schema.get("paths", {}).get(context.path_format, {}).get(method.lower())
            if operation is not None:
                document_operation(operation, route.dependant)
    text = json.dumps({k: v for k, v in schema.items() if k != "components"}) + json.dumps(
        {k: v for k, v in components["schemas"].items() if k not in _FASTAPI_VALIDATION})
    if f'"#/components/schemas/{_FASTAPI_VALIDATION[0]}"' not in text:
        for name in _FASTAPI_VALIDATION:
            components["schemas"].pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document from `app.openapi()` (built once, then cached by FastAPI)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        app.openapi_schema = complete(app, build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
