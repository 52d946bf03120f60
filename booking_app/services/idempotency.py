"""Idempotency records: the one home of "the same request twice does it once".

An `IdempotencyRecord` is (scope, key) — unique — with the SHA-256 of the request's
canonical body (`fingerprint`), and once done its status, answer and resource id.
`scope_for` is the one scope rule: `<prefix>:user:<id>` for signed-in users,
`<prefix>:guest:<hash of the lower-cased email>` for guests (no address stored, never
cut at 100 characters), `<prefix>:guest-booking:<id>` for a guest paying with a booking's
manage link.

Two ways to use it:
- a route around any call (api/idempotency.py: `claim`, then `complete` or `abandon`);
- a service that writes the record in its own transaction, together with what it made
  (the booking service: `lookup` for the replay, `record_values` for the insert), so a
  retry after a lost answer replays instead of booking twice.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, delete, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import IdempotencyRecord, utcnow
from booking_app.services.errors import Conflict, InvalidInput

MAX_KEY = 200
#: a claim without a stored response older than this is taken over by a retry (the first
#: request died between its commit and storing its answer, or before doing anything)
STALE_AFTER = dt.timedelta(seconds=60)
TABLE = IdempotencyRecord.__table__  # type: ignore[attr-defined]
IN_PROGRESS = N_("A request with this Idempotency-Key is still being processed. Try again in a moment.")


def fingerprint(body: Any) -> str:
    """SHA-256 of the request's canonical JSON (sorted keys, compact, ASCII)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def scope_for(prefix: str, *, user_id: int | None = None, email: str | None = None,
              guest_booking_id: int | None = None) -> str:
    """Whose keys: a signed-in user's, or a guest's — by email address (hashed), or, where
    the guest acts on one booking with its manage link, by that booking."""
    if user_id is not None:
        return f"{prefix}:user:{user_id}"
    if guest_booking_id is not None:
        return f"{prefix}:guest-booking:{guest_booking_id}"
    digest = hashlib.sha256((email or "").strip().lower().encode("utf-8")).hexdigest()[:40]
    return f"{prefix}:guest:{digest}"


def check_key(value: Any) -> str | None:
    """A service's `idempotency_key` argument: None, or at most 200 printable characters."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > MAX_KEY or not value.isprintable():
        raise InvalidInput(N_("The idempotency key must be at most 200 printable characters."), field="idempotency_key")
    return value


def lookup(s: Session, scope: str, key: str) -> IdempotencyRecord | None:
    return s.exec(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope[:100],
                                                  IdempotencyRecord.key == key)).first()


def record_values(scope: str, key: str, request_hash: str, *, resource_id: int | None, status_code: int,
                  at: dt.datetime) -> dict[str, Any]:
    """The row of a record written in the caller's own transaction (a Core insert)."""
    return {"scope": scope[:100], "key": key, "request_hash": request_hash, "resource_id": resource_id,
            "status_code": status_code, "created_at": at}


#: what `claim` hands back for a request already answered: its status_code and response
StoredAnswer = IdempotencyRecord


def claim(scope: str, key: str, request_hash: str, *, field: str = "idempotency_key") -> int | StoredAnswer:
    """Claim (scope, key) for a request about to run: the new record's id — or the record
    of an earlier request with the same body that has its answer (replay it). The same key
    with another body → InvalidInput (on `field`); one still running → Conflict; a claim
    older than STALE_AFTER without an answer is taken over."""
    for _attempt in range(2):
        try:
            with db.unit_of_work() as s:
                record = lookup(s, scope, key)
                if record is not None:
                    if record.request_hash != request_hash:
                        raise InvalidInput(N_("This Idempotency-Key was already used with a different request."),
                                           field=field)
                    if record.status_code is not None:
                        return record
                    if utcnow() - record.created_at < STALE_AFTER:
                        raise Conflict(IN_PROGRESS)
                    record.created_at = utcnow()
                    s.add(record)
                    assert record.id is not None
                    return record.id
                record = IdempotencyRecord(scope=scope[:100], key=key, request_hash=request_hash)
                s.add(record)
                s.flush()
                assert record.id is not None
                return record.id
        except IntegrityError:
            continue  # a concurrent request claimed it first: look again
    raise Conflict(IN_PROGRESS)


def complete(record_id: int, status: int, response: dict[str, Any], resource_id: int | None) -> None:
    """Store the answer of the request that claimed `record_id`."""
    with db.unit_of_work() as s:
        record = s.get(IdempotencyRecord, record_id)
        if record is not None:
            record.status_code = status
            record.response = response
            record.resource_id = resource_id
            s.add(record)


def abandon(record_id: int) -> None:
    """The claiming request failed (nothing was changed): drop the claim, a retry runs again."""
    with db.unit_of_work() as s:
        s.exec(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))  # type: ignore[call-overload]
