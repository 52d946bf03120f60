"""`Idempotency-Key` support for POST routes (POST /api/bookings, POST /api/payments/process).

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
(POST /api/bookings replays in services/bookings.py, which re-checks access the same way;
its guests pass their manage token as `?token=`: `query_token`, `TOKEN_DOC`.)

Usage in a route:

    key = idempotency.header_key(request)              # None when the header is absent
    return idempotency.run(key=key, scope=f"booking:user:{actor.id}", body=body.model_dump(mode="json"),
                           call=lambda: (201, payload_dict, resource_id),
                           check_access=lambda: service.require_access(...))  # raises NotFound
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import delete, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import IdempotencyRecord, utcnow
from booking_app.services import validation
from booking_app.services.errors import Conflict, InvalidInput

HEADER = "Idempotency-Key"
MAX_KEY = 200
KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, no spaces
#: a claim without a stored response older than this is taken over by a retry (the first
#: request died between its commit and storing its answer, or before doing anything)
STALE_AFTER = dt.timedelta(seconds=60)

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


def fingerprint(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def scope_for(prefix: str, *, user_id: int | None = None, email: str | None = None) -> str:
    if user_id is not None:
        return f"{prefix}:user:{user_id}"
    digest = hashlib.sha256((email or "").strip().lower().encode("utf-8")).hexdigest()[:40]
    return f"{prefix}:guest:{digest}"


def _replay(record: IdempotencyRecord) -> JSONResponse:
    return JSONResponse(record.response, status_code=record.status_code or 200,
                        headers={"Idempotent-Replayed": "true"})


def _claim(scope: str, key: str, request_hash: str) -> int | JSONResponse:
    """Claim the key (returns the record id) or answer from an earlier request."""
    for _attempt in range(2):
        try:
            with db.unit_of_work() as s:
                record = s.exec(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                                IdempotencyRecord.key == key)).first()
                if record is not None:
                    if record.request_hash != request_hash:
                        raise InvalidInput(N_("This Idempotency-Key was already used with a different request."),
                                           field=HEADER)
                    if record.status_code is not None:
                        return _replay(record)
                    if utcnow() - record.created_at < STALE_AFTER:
                        raise Conflict(N_("A request with this Idempotency-Key is still being processed. "
                                          "Try again in a moment."))
                    record.created_at = utcnow()
                    s.add(record)
                    assert record.id is not None
                    return record.id
                record = IdempotencyRecord(scope=scope, key=key, request_hash=request_hash)
                s.add(record)
                s.flush()
                assert record.id is not None
                return record.id
        except IntegrityError:
            continue  # a concurrent request claimed it first: look again
    raise Conflict(N_("A request with this Idempotency-Key is still being processed. Try again in a moment."))


def _complete(record_id: int, outcome: Outcome) -> None:
    status, payload, resource_id = outcome
    with db.unit_of_work() as s:
        record = s.get(IdempotencyRecord, record_id)
        if record is not None:
            record.status_code = status
            record.response = payload
            record.resource_id = resource_id
            s.add(record)


def _abandon(record_id: int) -> None:
    with db.unit_of_work() as s:
        s.exec(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))  # type: ignore[call-overload]


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
        claimed = _claim(scope[:100], key, fingerprint(body))
    except (InvalidInput, Conflict):
        if check_access is not None:
            check_access()
        raise
    if isinstance(claimed, JSONResponse):
        if check_access is not None:
            check_access()
        return claimed
    try:
        outcome = call()
    except BaseException:
        _abandon(claimed)
        raise
    _complete(claimed, outcome)
    return JSONResponse(outcome[1], status_code=outcome[0])
