"""A small Stripe API stub for tests, driven by the real `stripe` SDK.

Runs a threaded `http.server` on a free 127.0.0.1 port and answers the endpoints the app
uses with realistic JSON: Checkout Sessions (create / retrieve / expire; payment mode, with
`payment_intent_data.setup_future_usage`, and setup mode), Customers (create), saved
PaymentMethods (list), PaymentIntents (retrieve; create off-session with a saved card: the
outcome per customer is `stub.off_session_outcome[customer] = "succeeded" | "card_declined" |
"authentication_required"`, default succeeded) and Refunds (create). It honours `Idempotency-Key` like Stripe (same key and
same parameters → the first response again; same key, other parameters → 400
idempotency_error), records every request, and can be told to fail:

    stub.fail_next(500)                    # next request → 500 api_error
    stub.fail_next(402, error_type="card_error", code="card_declined", times=3)
    stub.delay_next(2.0)                   # next request answers after 2 s (client timeouts)

Test helpers: `complete_session(id)` (the customer paid), `event(type, obj)` → (payload,
signature header) signed with `webhook_secret`.

Usage:
    with StripeStub() as stub:
        StripeClient("sk_test_x", base_addresses={"api": stub.url})
"""
from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from booking_app.integrations.stripe_gateway import sign_webhook
from tests.stubs.local_http import LocalHttpStub


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]
    status: int = 0


@dataclass
class _Fault:
    status: int
    error_type: str
    code: str | None
    message: str
    delay: float = 0.0
    path_contains: str | None = None


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts/lists."""
    root: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                idx = int(part)
                while len(node) <= idx:
                    node.append(None)
                if last:
                    node[idx] = value
                else:
                    if node[idx] is None:
                        node[idx] = [] if nxt_is_index else {}
                    node = node[idx]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt_is_index else {})
    return root


@dataclass
class StripeStub(LocalHttpStub):
    webhook_secret: str = "whsec_test_stub"
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.payment_methods: dict[str, dict[str, Any]] = {}
        self.off_session_outcome: dict[str, str] = {}
        self._idem: dict[str, tuple[str, int, dict]] = {}
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # --- serving (the lifecycle: LocalHttpStub) ---------------------------------------------
    def _serve(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        parsed = urllib.parse.urlsplit(path)
        params = parse_form(raw.decode() if method == "POST" else parsed.query)
        status, body = self._dispatch(method, parsed.path, headers, params)
        out = {"Content-Type": "application/json", "Request-Id": f"req_{secrets.token_hex(6)}"}
        if status >= 500 or status == 402:
            out["Stripe-Should-Retry"] = "false" if status == 402 else "true"
        return status, out, json.dumps(body).encode()

    # --- fault injection ----------------------------------------------------------------
    def fail_next(self, status: int = 500, *, error_type: str | None = None, code: str | None = None,
                  message: str | None = None, times: int = 1, path_contains: str | None = None) -> None:
        error_type = error_type or {402: "card_error", 429: "rate_limit_error"}.get(
            status, "api_error" if status >= 500 else "invalid_request_error")
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(status, error_type, code, message or f"Simulated {status}",
                                           path_contains=path_contains))

    def delay_next(self, seconds: float, *, times: int = 1, path_contains: str | None = None) -> None:
        """The next request(s) stall for `seconds`, are then carried out (like a slow
        Stripe: the client has usually given up by then) and answered late."""
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(-1, "", None, "", delay=seconds, path_contains=path_contains))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self, method: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and path_contains in r.path]

    # --- dispatch -------------------------------------------------------------------------
    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.path_contains is None or fault.path_contains in path:
                    return self._faults.pop(i)
        return None

    def _dispatch(self, method: str, path: str, headers: dict[str, str], params: dict[str, Any]) -> tuple[int, dict]:
        headers = {k.lower(): v for k, v in headers.items()}
        record = RecordedRequest(method, path, headers, params)
        with self._lock:
            self.requests.append(record)
        fault = self._take_fault(path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
                return self._respond(method, path, headers, params, record)
            record.status = fault.status
            error = {"type": fault.error_type, "message": fault.message}
            if fault.code:
                error["code"] = fault.code
            if fault.error_type == "card_error":
                error["decline_code"] = fault.code or "generic_decline"
            return fault.status, {"error": error}
        return self._respond(method, path, headers, params, record)

    def _respond(self, method: str, path: str, headers: dict[str, str], params: dict[str, Any],
                 record: RecordedRequest) -> tuple[int, dict]:
        if not headers.get("authorization", "").startswith("Bearer sk_"):
            record.status = 401
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
        key = headers.get("idempotency-key")
        if method == "POST" and key:
            with self._lock:
                cached = self._idem.get(key)
            fingerprint = json.dumps([path, params], sort_keys=True)
            if cached is not None:
                if cached[0] != fingerprint:
                    record.status = 400
                    return 400, {"error": {"type": "idempotency_error", "message":
                                           "Keys for idempotent requests can only be used with the same parameters "
                                           "they were first used with."}}
                record.status = cached[1]
                return cached[1], cached[2]
        status, body = self._route(method, path, params)
        record.status = status
        if method == "POST" and key and status < 500:
            with self._lock:
                self._idem[key] = (json.dumps([path, params], sort_keys=True), status, body)
        return status, body

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._ids)}{secrets.token_hex(6)}"

    def _missing(self, kind: str, ident: str) -> tuple[int, dict]:
        return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                               "message": f"No such {kind}: '{ident}'", "param": "id"}}

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict]:
        parts = [p for p in path.split("/") if p]
        with self._lock:
            if parts[:3] == ["v1", "checkout", "sessions"]:
                if len(parts) == 3 and method == "POST":
                    return self._create_session(params)
                if len(parts) == 4 and method == "GET":
                    session = self.sessions.get(parts[3])
                    return (200, session) if session else self._missing("checkout.session", parts[3])
                if len(parts) == 5 and parts[4] == "expire" and method == "POST":
                    session = self.sessions.get(parts[3])
                    if session is None:
                        return self._missing("checkout.session", parts[3])
                    if session["status"] != "open":
                        return 400, {"error": {"type": "invalid_request_error", "message":
                                               f"Only Checkout Sessions with a status in [\"open\"] can be expired. "
                                               f"This Checkout Session has a status of \"{session['status']}\"."}}
                    session["status"] = "expired"
                    return 200, session
            if parts == ["v1", "customers"] and method == "POST":
                return self._create_customer(params)
            if parts == ["v1", "payment_methods"] and method == "GET":
                cus = params.get("customer")
                data = [pm for pm in self.payment_methods.values()
                        if pm["customer"] == cus and pm["type"] == params.get("type", "card")]
                data.sort(key=lambda pm: -pm["created"])
                return 200, {"object": "list", "url": "/v1/payment_methods", "has_more": False,
                             "data": data[:int(params.get("limit") or 10)]}
            if parts == ["v1", "payment_intents"] and method == "POST":
                return self._create_payment_intent(params)
            if parts[:2] == ["v1", "payment_intents"] and len(parts) == 3 and method == "GET":
                pi = self.payment_intents.get(parts[2])
                return (200, pi) if pi else self._missing("payment_intent", parts[2])
            if parts == ["v1", "refunds"] and method == "POST":
                return self._create_refund(params)
            if parts == ["v1", "refunds"] and method == "GET":
                pi_id = params.get("payment_intent")
                data = [r for r in self.refunds.values() if pi_id is None or r["payment_intent"] == pi_id]
                return 200, {"object": "list", "url": "/v1/refunds", "has_more": False, "data": data}
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({method}: {path})"}}

    def _create_customer(self, p: dict[str, Any]) -> tuple[int, dict]:
        cid = self._new_id("cus")
        customer = {"id": cid, "object": "customer", "email": p.get("email"), "name": p.get("name"),
                    "metadata": p.get("metadata") or {}, "created": int(time.time()), "livemode": False}
        self.customers[cid] = customer
        return 200, customer

    def _create_payment_intent(self, p: dict[str, Any]) -> tuple[int, dict]:
        """An off-session charge of a saved card (fees): succeeds, is declined (402
        card_declined) or needs the customer (402 authentication_required, the PaymentIntent
        left in requires_action), per `off_session_outcome[customer]`."""
        try:
            amount = int(p["amount"])
            currency = str(p["currency"])
        except (KeyError, TypeError, ValueError):
            return 400, {"error": {"type": "invalid_request_error", "message": "Missing required param: amount."}}
        cus, pm = p.get("customer"), p.get("payment_method")
        if cus not in self.customers:
            return self._missing("customer", str(cus))
        if pm not in self.payment_methods or self.payment_methods[pm]["customer"] != cus:
            return self._missing("payment_method", str(pm))
        if amount < 1:
            return 400, {"error": {"type": "invalid_request_error", "message": "Amount must be positive."}}
        outcome = self.off_session_outcome.get(cus, "succeeded")
        pi_id = self._new_id("pi")
        pi = {"id": pi_id, "object": "payment_intent", "amount": amount, "currency": currency, "customer": cus,
              "payment_method": pm, "amount_refunded": 0, "latest_charge": self._new_id("ch"),
              "metadata": p.get("metadata") or {}, "off_session": p.get("off_session"), "created": int(time.time()),
              "status": "succeeded", "amount_received": amount}
        if outcome != "succeeded":
            pi.update(status="requires_action" if outcome == "authentication_required" else "requires_payment_method",
                      amount_received=0)
            self.payment_intents[pi_id] = pi
            message = ("This payment requires authentication." if outcome == "authentication_required"
                       else "Your card was declined.")
            return 402, {"error": {"type": "card_error", "code": outcome, "decline_code": outcome,
                                   "message": message, "payment_intent": pi}}
        self.payment_intents[pi_id] = pi
        return 200, pi

    def _create_setup_session(self, p: dict[str, Any]) -> tuple[int, dict]:
        if p.get("customer") not in self.customers:
            return self._missing("customer", str(p.get("customer")))
        sid = self._new_id("cs")
        session = {
            "id": sid, "object": "checkout.session", "mode": "setup",
            "url": f"https://checkout.stripe.com/c/setup/{sid}", "status": "open", "payment_status":
            "no_payment_required", "payment_intent": None, "setup_intent": self._new_id("seti"),
            "amount_total": None, "currency": p.get("currency"), "customer": p.get("customer"),
            "client_reference_id": p.get("client_reference_id"), "metadata": p.get("metadata") or {},
            "success_url": p.get("success_url"), "cancel_url": p.get("cancel_url"),
            "expires_at": int(p.get("expires_at") or time.time() + 24 * 3600), "created": int(time.time()),
            "livemode": False, "locale": p.get("locale"),
        }
        self.sessions[sid] = session
        return 200, session

    def _save_card(self, customer: str) -> str:
        pm_id = self._new_id("pm")
        self.payment_methods[pm_id] = {"id": pm_id, "object": "payment_method", "type": "card", "customer": customer,
                                       "card": {"brand": "visa", "last4": "4242"}, "created": time.time()}
        return pm_id

    def _create_session(self, p: dict[str, Any]) -> tuple[int, dict]:
        if p.get("mode") == "setup":
            return self._create_setup_session(p)
        if p.get("customer") is not None and p["customer"] not in self.customers:
            return self._missing("customer", str(p["customer"]))
        try:
            item = p["line_items"][0]
            amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
            currency = item["price_data"]["currency"]
            expires_at = int(p["expires_at"]) if "expires_at" in p else int(time.time()) + 24 * 3600
        except (KeyError, IndexError, TypeError, ValueError):
            return 400, {"error": {"type": "invalid_request_error", "message": "Missing required param: line_items."}}
        now = int(time.time())
        if not (now + 30 * 60 - 5 <= expires_at <= now + 24 * 3600 + 5):
            return 400, {"error": {"type": "invalid_request_error", "param": "expires_at", "message":
                                   "The `expires_at` timestamp must be between 30 minutes and 24 hours from creation."}}
        if amount < 1:
            return 400, {"error": {"type": "invalid_request_error", "message": "Amount must be positive."}}
        sid = self._new_id("cs")
        session = {
            "id": sid, "object": "checkout.session", "mode": p.get("mode", "payment"),
            "url": f"https://checkout.stripe.com/c/pay/{sid}#fidkdWxOYHwnPyd1blpxYHZxWjA0",
            "status": "open", "payment_status": "unpaid", "payment_intent": None,
            "amount_total": amount, "amount_subtotal": amount, "currency": currency,
            "client_reference_id": p.get("client_reference_id"), "customer_email": p.get("customer_email"),
            "metadata": p.get("metadata") or {}, "payment_method_types": p.get("payment_method_types") or ["card"],
            "success_url": p.get("success_url"), "cancel_url": p.get("cancel_url"),
            "expires_at": expires_at, "created": now, "livemode": False, "locale": p.get("locale"),
            "payment_intent_data_metadata": (p.get("payment_intent_data") or {}).get("metadata") or {},
            "customer": p.get("customer"),
            "setup_future_usage": (p.get("payment_intent_data") or {}).get("setup_future_usage"),
        }
        self.sessions[sid] = session
        return 200, session

    def _create_refund(self, p: dict[str, Any]) -> tuple[int, dict]:
        pi_id = p.get("payment_intent")
        pi = self.payment_intents.get(pi_id or "")
        if pi is None:
            return self._missing("payment_intent", str(pi_id))
        amount = int(p.get("amount") or (pi["amount"] - pi["amount_refunded"]))
        if pi["amount_refunded"] >= pi["amount"]:
            return 400, {"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                                   "message": f"Charge {pi['latest_charge']} has already been refunded."}}
        if amount < 1 or pi["amount_refunded"] + amount > pi["amount"]:
            return 400, {"error": {"type": "invalid_request_error", "code": "amount_too_large", "param": "amount",
                                   "message": f"Refund amount ({amount}) is greater than unrefunded amount on charge"}}
        pi["amount_refunded"] += amount
        rid = self._new_id("re")
        refund = {"id": rid, "object": "refund", "amount": amount, "currency": pi["currency"],
                  "payment_intent": pi_id, "charge": pi["latest_charge"], "status": "succeeded",
                  "metadata": p.get("metadata") or {}, "created": int(time.time()), "reason": p.get("reason")}
        self.refunds[rid] = refund
        return 200, refund

    # --- test helpers -----------------------------------------------------------------
    def complete_session(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """The customer finished the hosted page: the session completes with a PaymentIntent."""
        with self._lock:
            session = self.sessions[session_id]
            session["status"] = "complete"
            if session["mode"] == "setup":  # the card is saved on the customer
                self._save_card(session["customer"])
                return dict(session)
            session["payment_status"] = payment_status
            if session.get("setup_future_usage") and session.get("customer"):
                self._save_card(session["customer"])
            if not session["payment_intent"]:
                pi_id = self._new_id("pi")
                self.payment_intents[pi_id] = {
                    "id": pi_id, "object": "payment_intent", "amount": session["amount_total"],
                    "amount_received": session["amount_total"] if payment_status == "paid" else 0,
                    "amount_refunded": 0, "currency": session["currency"],
                    "status": "succeeded" if payment_status == "paid" else "processing",
                    "latest_charge": self._new_id("ch"), "metadata": session["payment_intent_data_metadata"],
                }
                session["payment_intent"] = pi_id
            if payment_status == "paid":
                pi = self.payment_intents[session["payment_intent"]]
                pi["status"] = "succeeded"
                pi["amount_received"] = pi["amount"]
            return dict(session)

    def payment_intent(self, pi_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.payment_intents[pi_id])

    def charge_for(self, pi_id: str) -> dict[str, Any]:
        """The Charge object of a PaymentIntent (for charge.refunded events)."""
        with self._lock:
            pi = self.payment_intents[pi_id]
            return {"id": pi["latest_charge"], "object": "charge", "amount": pi["amount"],
                    "amount_refunded": pi["amount_refunded"], "currency": pi["currency"],
                    "payment_intent": pi_id, "refunded": pi["amount_refunded"] >= pi["amount"],
                    "metadata": pi["metadata"]}

    def event(self, event_type: str, obj: dict[str, Any], *, event_id: str | None = None,
              secret: str | None = None, timestamp: int | None = None) -> tuple[str, str]:
        """A webhook delivery: (JSON payload, Stripe-Signature header)."""
        payload = json.dumps({
            "id": event_id or self._new_id("evt"), "object": "event", "api_version": "2025-01-27.acacia",
            "created": int(time.time()), "type": event_type, "livemode": False, "pending_webhooks": 1,
            "data": {"object": obj}, "request": {"id": None, "idempotency_key": None},
        })
        return payload, sign_webhook(payload, secret or self.webhook_secret, timestamp=timestamp)
