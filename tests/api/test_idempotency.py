"""api/idempotency.py: the generic Idempotency-Key helper (used by POST /api/payments/process)."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from booking_app.services.errors import Conflict, InvalidInput, NotAvailable


def _run(key, body, call, scope="test:user:1"):
    from booking_app.api import idempotency

    return idempotency.run(key=key, scope=scope, body=body, call=call)


def test_same_key_and_body_replays_the_first_response(db_url):
    calls = []

    def call():
        calls.append(1)
        return 201, {"id": len(calls), "at": "2026-01-01T00:00:00Z"}, len(calls)

    first = _run("k1", {"a": 1, "b": [1, 2]}, call)
    again = _run("k1", {"b": [1, 2], "a": 1}, call)  # same body, other key order
    assert first.status_code == again.status_code == 201
    assert json.loads(first.body) == json.loads(again.body) == {"id": 1, "at": "2026-01-01T00:00:00Z"}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(calls) == 1
    with pytest.raises(InvalidInput):
        _run("k1", {"a": 2}, call)
    # keys are scoped (per user): another scope runs again
    assert json.loads(_run("k1", {"a": 1}, call, scope="test:user:2").body)["id"] == 2
    # no key: always runs
    _run(None, {"a": 1}, call)
    assert len(calls) == 3


def test_a_failed_request_leaves_no_claim(db_url):
    def fail():
        raise NotAvailable()

    with pytest.raises(NotAvailable):
        _run("k2", {"a": 1}, fail)
    assert _run("k2", {"a": 1}, lambda: (201, {"ok": True}, None)).status_code == 201


def test_in_progress_is_409_and_stale_claims_are_taken_over(db_url):
    from booking_app import db
    from booking_app.models import IdempotencyRecord

    started, release = threading.Event(), threading.Event()
    result = {}

    def slow():
        started.set()
        release.wait(10)
        return 201, {"slow": True}, None

    t = threading.Thread(target=lambda: result.setdefault("r", _run("k3", {"a": 1}, slow)))
    t.start()
    assert started.wait(10)
    with pytest.raises(Conflict):
        _run("k3", {"a": 1}, lambda: (201, {"fast": True}, None))
    release.set()
    t.join(10)
    assert json.loads(result["r"].body) == {"slow": True}
    # a claim whose request died (no stored answer) is taken over after a while
    with db.unit_of_work() as s:
        s.add(IdempotencyRecord(scope="test:user:1", key="k4", request_hash=_hash({"a": 1}),
                                created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)))
    assert json.loads(_run("k4", {"a": 1}, lambda: (200, {"rerun": True}, None)).body) == {"rerun": True}


def _hash(body):
    from booking_app.services.idempotency import fingerprint

    return fingerprint(body)


def test_header_validation():
    from fastapi import Request

    from booking_app.api import idempotency

    def req(value):
        return Request({"type": "http", "headers": [(b"idempotency-key", value.encode("latin-1"))]})

    assert idempotency.header_key(req("abc-123_X")) == "abc-123_X"
    for bad in ("", "has space", "x" * 201, "caf\xe9"):
        with pytest.raises(InvalidInput):
            idempotency.header_key(req(bad))
