"""`Idempotency-Key` for POST routes: the HTTP side (header, `?token=`, replayed responses) of
services/idempotency.py, which keeps the records.

The first request with a key claims an `IdempotencyRecord` (scope + key, unique) holding
the SHA-256 of its canonical body; when it succeeds, its status and JSON body are stored
and every retry with the same key and body gets exactly that response again. The same key
with a different body is a 422. A retry while the first request is still running is a
409. When the first request fails (busy, not available, invalid…) nothing was changed, so
the claim is dropped and a retry runs again.

Replays re-check access (`check_access`, the service's own rule): a stored answer goes only
to a caller who may see its resource now — not to someone else who sent the same key and
body with a wrong manage token, nor to a user who has since lost the access. Anyone else
gets the route's own 404, as if the key were unknown, before learning whether it was used.
(POST /api/bookings replays in services/bookings.py, in the booking's own transaction, with
the same records and scope rule, and re-checks access the same way;
its guests pass their manage token as `?token=`: `query_token`, `TOKEN_DOC`.)

Usage in a route:

    key = idempotency.header_key(request)              # None when the header is absent
    scope = scope_for("payment", user_id=actor.id)     # services/idempotency.py: the scope rule
    return idempotency.run(key=key, scope=scope, body=body.model_dump(mode="json"),
                           call=lambda: (201, payload_dict, resource_id),
                           check_access=lambda: service.require_access(...))  # raises NotFound
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from booking_app.i18n import N_
from booking_app.services import idempotency as records
from booking_app.services import validation
from booking_app.services.errors import Conflict, InvalidInput
from booking_app.services.idempotency import MAX_KEY, fingerprint

__all__ = ["HEADER", "HEADER_DOC", "TOKEN_DOC", "Outcome", "header_key", "query_token", "run"]

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, no spaces

Outcome = tuple[int, dict[str, Any], int | None]  # status, JSON body, resource id

HEADER_DOC = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Retry-safe key: the same key and body replay the first response; "
    "the same key with another body is a 422.",
    "schema": {"type": "string", "maxLength": MAX_KEY},
}


TOKEN_DOC = {
    "name": "token",
    "in": "query",
    "required": False,
    "description": "guests: the booking's manage token. An Idempotency-Key replay of a guest's booking needs "
    "it once the retry window (IDEMPOTENCY_GUEST_REPLAY_SECONDS) has passed; a wrong one is a 404.",
    "schema": {"type": "string", "maxLength": 100},
}


def query_token(request: Request) -> str | None:
    """The `?token=` (a guest's manage token) of a request, read without a declared
    parameter (like the header: no per-request parameter validation on the booking path),
    held to what TOKEN_DOC promises: the shared character rule, at most 100 characters."""
    raw = request.query_params.get("token")
    if not raw:
        return None
    return validation.text(raw, field="token", max_length=100) or None


def header_key(request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not KEY_RE.match(key):
        raise InvalidInput(N_("The Idempotency-Key header must be 1–200 visible ASCII characters."),
                           field=HEADER)
    return key


def _replay(record: records.StoredAnswer) -> JSONResponse:
    return JSONResponse(record.response, status_code=record.status_code or 200,
                        headers={"Idempotent-Replayed": "true"})


def run(*, key: str | None, scope: str, body: Any, call: Callable[[], Outcome],
        check_access: Callable[[], None] | None = None) -> JSONResponse:
    """Run `call` at most once per (scope, key) and body; replay its answer on retries.
    `check_access` raises (NotFound) unless the caller may see the resource now: called
    whenever the key was used before, so a stored answer (or the news that the key is in
    use) reaches no one else."""
    if key is None:
        status, payload, _rid = call()
        return JSONResponse(payload, status_code=status)
    try:
        claimed = records.claim(scope, key, fingerprint(body), field=HEADER)
    except (InvalidInput, Conflict):
        if check_access is not None:
            check_access()
        raise
    if not isinstance(claimed, int):
        if check_access is not None:
            check_access()
        return _replay(claimed)
    try:
        outcome = call()
    except BaseException:
        records.abandon(claimed)
        raise
    records.complete(claimed, *outcome)
    return JSONResponse(outcome[1], status_code=outcome[0])
