"""Small local HTTP stubs of SendGrid (v3 Mail Send) and Twilio (Messages API).

Each runs a threaded `http.server` on a free 127.0.0.1 port, records every request (method,
path, headers, raw body, parsed JSON or form) and answers like the provider. They can be
told to misbehave:

    stub.fail_next(500, times=3)      # next 3 requests → 500 with the provider's error body
    stub.fail_next(429)               # rate limited
    stub.delay_next(2.0)              # the next request answers after 2 s (client timeouts)

Usage:
    with SendGridStub() as sg:
        SendGridAPIClient("SG.x", host=sg.url)
    with TwilioStub() as tw:
        ... TWILIO_API_BASE=tw.url
"""
from __future__ import annotations

import abc
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from tests.stubs.local_http import LocalHttpStub


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    status: int = 0


@dataclass
class _Fault:
    status: int = 0
    delay: float = 0.0


class ProviderStub(LocalHttpStub):
    """Base: recording, fault injection (the lifecycle: LocalHttpStub). Subclasses implement `answer`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    # --- faults -------------------------------------------------------------------------
    def fail_next(self, status: int = 500, *, times: int = 1) -> None:
        with self._lock:
            self._faults.extend(_Fault(status=status) for _ in range(times))

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        with self._lock:
            self._faults.extend(_Fault(delay=seconds) for _ in range(times))

    def calls(self, status: int | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if status is None or r.status == status]

    # --- dispatch -------------------------------------------------------------------------
    def _serve(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k.lower(): v for k, v in headers.items()}
        rec = Recorded(method=method, path=urllib.parse.urlsplit(path).path, headers=headers, body=raw)
        ctype = headers.get("content-type", "")
        if raw and "json" in ctype:
            rec.json = json.loads(raw)
        elif raw and "x-www-form-urlencoded" in ctype:
            rec.form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        with self._lock:
            self.requests.append(rec)
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
            fault = None
        if fault is not None:
            status, body = self.error(fault.status, rec)
        else:
            status, body = self.answer(rec)
        rec.status = status
        extra = self.headers_for(status, rec)
        return status, {"Content-Type": "application/json", **extra}, json.dumps(body).encode() if body is not None else b""

    @abc.abstractmethod
    def answer(self, rec: Recorded) -> tuple[int, Any]:
        """The provider's answer to an accepted request: (status, JSON body)."""

    @abc.abstractmethod
    def error(self, status: int, rec: Recorded) -> tuple[int, Any]:
        """The provider's error body for an injected fault of this status."""

    def headers_for(self, status: int, rec: Recorded) -> dict[str, str]:
        return {}


class SendGridStub(ProviderStub):
    """POST /v3/mail/send → 202 (empty body, X-Message-Id), like SendGrid."""

    def answer(self, rec: Recorded) -> tuple[int, Any]:
        if rec.method != "POST" or rec.path != "/v3/mail/send":
            return 404, {"errors": [{"message": "not found", "field": None, "help": None}]}
        if not rec.headers.get("authorization", "").startswith("Bearer "):
            return 401, {"errors": [{"message": "Permission denied, wrong credentials", "field": None, "help": None}]}
        body = rec.json or {}
        missing = [k for k in ("personalizations", "from", "subject", "content") if not body.get(k)]
        if missing:
            return 400, {"errors": [{"message": f"missing {m}", "field": m, "help": None} for m in missing]}
        return 202, None

    def error(self, status: int, rec: Recorded) -> tuple[int, Any]:
        return status, {"errors": [{"message": f"Simulated {status}", "field": None, "help": None}]}

    def headers_for(self, status: int, rec: Recorded) -> dict[str, str]:
        return {"X-Message-Id": secrets.token_urlsafe(16)} if status == 202 else {}


class TwilioStub(ProviderStub):
    """POST /2010-04-01/Accounts/{sid}/Messages.json → 201 message resource, like Twilio."""

    def answer(self, rec: Recorded) -> tuple[int, Any]:
        parts = rec.path.strip("/").split("/")
        if rec.method != "POST" or len(parts) != 4 or parts[:2] != ["2010-04-01", "Accounts"] or parts[3] != "Messages.json":
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        if not rec.headers.get("authorization", "").startswith("Basic "):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        form = rec.form
        if not form.get("To") or not (form.get("From") or form.get("MessagingServiceSid")) or not form.get("Body"):
            return 400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        return 201, {
            "sid": sid, "account_sid": parts[2], "to": form["To"], "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "body": form["Body"], "status": "queued",
            "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01", "price": None,
            "price_unit": "USD", "error_code": None, "error_message": None, "date_created": now, "date_updated": now,
            "date_sent": None, "uri": f"/2010-04-01/Accounts/{parts[2]}/Messages/{sid}.json", "subresource_uris": {},
        }

    def error(self, status: int, rec: Recorded) -> tuple[int, Any]:
        code = {400: 21211, 401: 20003, 429: 20429}.get(status, 20500)
        return status, {"code": code, "message": f"Simulated {status}", "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status}
