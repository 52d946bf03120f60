"""Payment gateway: the only module that imports the Stripe SDK.

The rest of the code sees `PaymentGateway` (a small interface), the dataclasses below and
`GatewayError` — never a Stripe object. Two implementations:

- `StripeGateway`: the real one, a `stripe.StripeClient` whose API base address comes from
  settings (`STRIPE_API_BASE`, so tests point the real SDK at a local stub server).
  Checkout Sessions (hosted payment page: card data never touches our servers, PCI SAQ A),
  refunds, and webhook verification with `stripe.Webhook.construct_event`.
- `FakeGateway`: in memory, for fast unit tests of the payment service.

`get_gateway()` picks the real one when `STRIPE_SECRET_KEY` is set; tests may install any
gateway with `set_gateway()`.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import stripe

from booking_app.config import get_settings

#: Stripe Checkout requires `expires_at` between 30 minutes and 24 hours after creation.
CHECKOUT_MIN_LIFETIME = dt.timedelta(minutes=30)
CHECKOUT_MAX_LIFETIME = dt.timedelta(hours=24)

#: Our locales → Stripe Checkout's locale codes; Checkout has no Arabic, so "ar" (and anything
#: unknown) is "auto": the browser's language.
CHECKOUT_LOCALES = {"en": "en", "es": "es", "fr": "fr", "de": "de", "it": "it", "nl": "nl", "pl": "pl", "tr": "tr",
                    "pt_BR": "pt-BR"}

#: Timeout of one call to Stripe and the SDK's own retries (same idempotency key).
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_NETWORK_RETRIES = 1


# ----------------------------------------------------------------------------------------
# Our types
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckoutRequest:
    idempotency_key: str
    booking_id: int
    payment_id: int
    amount_cents: int
    currency: str  # ISO, any case
    product_name: str
    method_types: tuple[str, ...]
    success_url: str
    cancel_url: str
    expires_at: dt.datetime
    customer_email: str | None = None
    locale: str | None = None
    # deposits and fees (issue 26): the Stripe customer to attach the payment to; save_card asks
    # Stripe to keep the card for later off-session charges (setup_future_usage), mode "setup"
    # saves a card without a payment; extra metadata (e.g. the fee id of a fee's payment link)
    customer: str | None = None
    save_card: bool = False
    mode: str = "payment"
    extra_metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OffSessionCharge:
    """An off-session PaymentIntent (a fee charged to a saved card): status succeeded, or
    requires_action when the bank asks the customer to authenticate (SCA)."""

    id: str
    status: str
    amount_cents: int


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    payment_intent: str | None
    amount_cents: int | None
    currency: str | None
    expires_at: dt.datetime | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # pending | succeeded | failed | canceled | requires_action
    amount_cents: int


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    object: dict[str, Any]  # data.object as plain JSON
    created: int = 0


class GatewayError(Exception):
    """A failed call to the payment provider.

    kind: "card" (declined: the customer must use another method), "invalid" (the
    provider rejected the request; retrying it unchanged fails again), "network" (no
    answer: timeout, connection error; or rate limited / idempotency conflict, where
    Stripe did not run the request: retry with the SAME idempotency key, which returns the
    first result if it did run), "unavailable" (a 5xx: Stripe stores that answer under the
    idempotency key, so a retry needs a new key, after checking nothing was done),
    "config" (bad API key or permissions).
    """

    def __init__(self, message: str, *, kind: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.kind in ("network", "unavailable")

    @property
    def same_key_retry(self) -> bool:
        return self.kind == "network"


class WebhookSignatureError(Exception):
    """The webhook body is not signed with our secret (or is not a valid event)."""


class PaymentGateway(Protocol):
    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession: ...

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession: ...

    def expire_checkout_session(self, session_id: str) -> CheckoutSession: ...

    def refund(self, *, payment_intent: str, amount_cents: int, idempotency_key: str,
               metadata: dict[str, str] | None = None) -> RefundResult: ...

    def find_refund(self, *, payment_intent: str, refund_ref: str) -> RefundResult | None: ...

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent: ...

    def create_customer(self, *, email: str | None, name: str | None, idempotency_key: str,
                        metadata: dict[str, str]) -> str: ...

    def saved_card(self, customer: str) -> str | None: ...

    def charge_off_session(self, *, customer: str, payment_method: str, amount_cents: int, currency: str,
                           idempotency_key: str, metadata: dict[str, str]) -> OffSessionCharge: ...


# ----------------------------------------------------------------------------------------
# Helpers shared by both implementations
# ----------------------------------------------------------------------------------------

def checkout_params(request: CheckoutRequest) -> dict[str, Any]:
    """The Checkout Session create parameters for `request` (one line item, our ids as metadata)."""
    metadata = {"booking_id": str(request.booking_id), "payment_id": str(request.payment_id),
                **request.extra_metadata}
    if request.mode == "setup":
        return setup_params(request, metadata)
    params: dict[str, Any] = {
        "mode": "payment",
        "payment_method_types": list(request.method_types),
        "line_items": [{
            "quantity": 1,
            "price_data": {
                "currency": request.currency.lower(),
                "unit_amount": request.amount_cents,
                "product_data": {"name": request.product_name[:250] or "Booking"},
            },
        }],
        "client_reference_id": str(request.booking_id),
        "metadata": metadata,
        # PaymentIntent events (payment_intent.payment_failed) carry our ids too
        "payment_intent_data": {"metadata": metadata},
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "expires_at": int(request.expires_at.timestamp()),
        "locale": CHECKOUT_LOCALES.get(request.locale or "", "auto"),
    }
    if request.customer:
        params["customer"] = request.customer
    elif request.customer_email:
        params["customer_email"] = request.customer_email
    if request.save_card:
        params["payment_intent_data"]["setup_future_usage"] = "off_session"
    return params


def setup_params(request: CheckoutRequest, metadata: dict[str, str]) -> dict[str, Any]:
    """A setup-mode Checkout Session: the customer saves a card (no payment now), for fees
    charged later off-session (free and pay-on-site bookings)."""
    return {
        "mode": "setup",
        "currency": request.currency.lower(),
        "payment_method_types": ["card"],
        "customer": request.customer,
        "client_reference_id": str(request.booking_id),
        "metadata": metadata,
        "setup_intent_data": {"metadata": metadata},
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "expires_at": int(request.expires_at.timestamp()),
        "locale": CHECKOUT_LOCALES.get(request.locale or "", "auto"),
    }


def _ts(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    return dt.datetime.fromtimestamp(int(value), tz=dt.timezone.utc)


def _session_from_json(data: dict[str, Any]) -> CheckoutSession:
    pi = data.get("payment_intent")
    if isinstance(pi, dict):
        pi = pi.get("id")
    return CheckoutSession(
        id=str(data["id"]),
        url=data.get("url"),
        status=str(data.get("status") or "open"),
        payment_status=str(data.get("payment_status") or "unpaid"),
        payment_intent=pi,
        amount_cents=data.get("amount_total"),
        currency=(data.get("currency") or None),
        expires_at=_ts(data.get("expires_at")),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def _signed_at(signature: str) -> int:
    """The `t=` timestamp of a `Stripe-Signature` header, read as the SDK reads the one its
    signature check covered (the first `t` item); a header with several is refused."""
    stamps = [value for name, _, value in (item.partition("=") for item in signature.split(",")) if name == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or len(stamps[0]) > 12:
        raise WebhookSignatureError("no single timestamp in the Stripe-Signature header")
    return int(stamps[0])


def verify_webhook(payload: bytes | str, signature: str | None, secret: str | None, *,
                   tolerance: int | None = None, now: float | None = None) -> WebhookEvent:
    """Check the `Stripe-Signature` header (HMAC-SHA256) and parse the event.

    The signed timestamp must lie within `tolerance` seconds (STRIPE_WEBHOOK_TOLERANCE_SECONDS,
    default 300) of our clock in BOTH directions: the SDK only refuses old timestamps, and a
    timestamp far in the future would let a captured event be replayed until that time."""
    if not secret:
        raise WebhookSignatureError("webhook secret not configured")
    if not signature:
        raise WebhookSignatureError("missing Stripe-Signature header")
    if tolerance is None:
        tolerance = get_settings().stripe_webhook_tolerance_seconds
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    try:
        stripe.Webhook.construct_event(text, signature, secret, tolerance=None)  # the window: below
        data = json.loads(text)
    except (stripe.SignatureVerificationError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise WebhookSignatureError(str(exc) or "invalid signature") from exc
    skew = (time.time() if now is None else now) - _signed_at(signature)
    if abs(skew) > tolerance:
        raise WebhookSignatureError(f"timestamp outside the {tolerance} s tolerance ({skew:+.0f} s)")
    if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
        raise WebhookSignatureError("not an event")
    obj = data["data"].get("object")
    if not isinstance(obj, dict) or not data.get("id") or not data.get("type"):
        raise WebhookSignatureError("not an event")
    return WebhookEvent(id=str(data["id"]), type=str(data["type"]), object=obj, created=int(data.get("created") or 0))


def sign_webhook(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A valid `Stripe-Signature` header for `payload` (tests, stub servers, local tools)."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


def _map_error(exc: stripe.StripeError) -> GatewayError:
    status = getattr(exc, "http_status", None)
    code = getattr(exc, "code", None)
    message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
    if isinstance(exc, stripe.CardError):
        kind = "card"
    elif isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        kind = "config"
    elif isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or status in (409, 429):
        kind = "network"
    elif isinstance(exc, (stripe.InvalidRequestError, stripe.IdempotencyError)):
        kind = "invalid"
    elif status is not None and 400 <= status < 500:
        kind = "invalid"
    else:  # APIError, 5xx, anything unknown
        kind = "unavailable"
    return GatewayError(message, kind=kind, code=code, status=status)


# ----------------------------------------------------------------------------------------
# The real gateway
# ----------------------------------------------------------------------------------------

class StripeGateway:
    """Stripe through the official SDK (`StripeClient`), against `api_base`."""

    def __init__(self, *, secret_key: str, webhook_secret: str | None, api_base: str,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, max_network_retries: int = DEFAULT_NETWORK_RETRIES) -> None:
        self._webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=max_network_retries,
        )

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        try:
            session = self._client.v1.checkout.sessions.create(
                params=checkout_params(request),  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        return _session_from_json(session.to_dict())

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        try:
            session = self._client.v1.checkout.sessions.retrieve(session_id)
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        return _session_from_json(session.to_dict())

    def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        try:
            session = self._client.v1.checkout.sessions.expire(
                session_id, options={"idempotency_key": f"expire-{session_id}"}
            )
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        return _session_from_json(session.to_dict())

    def refund(self, *, payment_intent: str, amount_cents: int, idempotency_key: str,
               metadata: dict[str, str] | None = None) -> RefundResult:
        params: dict[str, Any] = {"payment_intent": payment_intent, "amount": amount_cents}
        if metadata:
            params["metadata"] = metadata
        try:
            refund = self._client.v1.refunds.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        return RefundResult(id=refund.id, status=str(refund.status or "pending"), amount_cents=int(refund.amount))

    def find_refund(self, *, payment_intent: str, refund_ref: str) -> RefundResult | None:
        """The refund made for our refund row `refund_ref` (metadata.refund_id), if any."""
        try:
            page = self._client.v1.refunds.list(params={"payment_intent": payment_intent, "limit": 100})
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        for refund in page.data:
            data = refund.to_dict()
            if (data.get("metadata") or {}).get("refund_id") == refund_ref and data.get("status") not in ("failed", "canceled"):
                return RefundResult(id=str(data["id"]), status=str(data.get("status")), amount_cents=int(data["amount"]))
        return None

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        return verify_webhook(payload, signature, self._webhook_secret)

    def create_customer(self, *, email: str | None, name: str | None, idempotency_key: str,
                        metadata: dict[str, str]) -> str:
        params: dict[str, Any] = {"metadata": metadata}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        try:
            customer = self._client.v1.customers.create(params=params,  # type: ignore[arg-type]
                                                        options={"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        return str(customer.id)

    def saved_card(self, customer: str) -> str | None:
        """The customer's saved card (the newest), or None."""
        try:
            page = self._client.v1.payment_methods.list(params={"customer": customer, "type": "card", "limit": 1})
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        return str(page.data[0].id) if page.data else None

    def charge_off_session(self, *, customer: str, payment_method: str, amount_cents: int, currency: str,
                           idempotency_key: str, metadata: dict[str, str]) -> OffSessionCharge:
        """Charge a saved card without the customer (a fee). A decline raises GatewayError
        kind "card"; a bank asking for authentication returns status requires_action."""
        params: dict[str, Any] = {"amount": amount_cents, "currency": currency.lower(), "customer": customer,
                                  "payment_method": payment_method, "off_session": True, "confirm": True,
                                  "metadata": metadata}
        try:
            intent = self._client.v1.payment_intents.create(params=params,  # type: ignore[arg-type]
                                                            options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            if exc.code == "authentication_required":
                pi = ((exc.json_body or {}).get("error") or {}).get("payment_intent") or {}
                return OffSessionCharge(id=str(pi.get("id") or ""), status="requires_action", amount_cents=amount_cents)
            raise _map_error(exc) from exc
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc
        return OffSessionCharge(id=str(intent.id), status=str(intent.status), amount_cents=int(intent.amount))


# ----------------------------------------------------------------------------------------
# The in-memory fake
# ----------------------------------------------------------------------------------------

class FakeGateway:
    """Behaves like Stripe for our purposes: idempotency keys, session lifecycle, refunds.

    `fail_with(GatewayError(...), times=n)` makes the next n calls fail; `complete(session_id)`
    simulates the customer paying (returns the session as JSON, for building an event).
    """

    def __init__(self, *, webhook_secret: str | None = "whsec_fake") -> None:
        self.webhook_secret = webhook_secret
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._by_key: dict[str, Any] = {}
        self._failures: list[GatewayError] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_with(self, error: GatewayError, times: int = 1) -> None:
        self._failures.extend([error] * times)

    def _maybe_fail(self) -> None:
        if self._failures:
            raise self._failures.pop(0)

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        params = checkout_params(request)
        with self._lock:
            self.calls.append(("create_checkout_session", params))
            self._maybe_fail()
            if request.idempotency_key in self._by_key:
                return _session_from_json(self.sessions[self._by_key[request.idempotency_key]])
            sid = f"cs_fake_{next(self._ids)}_{uuid.uuid4().hex[:8]}"
            self.sessions[sid] = {
                "id": sid, "url": f"https://checkout.stripe.test/pay/{sid}", "status": "open",
                "payment_status": "unpaid", "payment_intent": None, "amount_total": request.amount_cents,
                "currency": request.currency.lower(), "expires_at": params["expires_at"],
                "metadata": params["metadata"], "client_reference_id": params["client_reference_id"],
                "payment_method_types": params["payment_method_types"],
            }
            self._by_key[request.idempotency_key] = sid
            return _session_from_json(self.sessions[sid])

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        with self._lock:
            self.calls.append(("retrieve_checkout_session", {"id": session_id}))
            self._maybe_fail()
            if session_id not in self.sessions:
                raise GatewayError("No such checkout.session", kind="invalid", code="resource_missing", status=404)
            return _session_from_json(self.sessions[session_id])

    def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        with self._lock:
            self.calls.append(("expire_checkout_session", {"id": session_id}))
            self._maybe_fail()
            session = self.sessions.get(session_id)
            if session is None:
                raise GatewayError("No such checkout.session", kind="invalid", code="resource_missing", status=404)
            if session["status"] != "open":
                raise GatewayError("Only open sessions can be expired", kind="invalid", status=400)
            session["status"] = "expired"
            return _session_from_json(session)

    def complete(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        with self._lock:
            session = self.sessions[session_id]
            session["status"] = "complete"
            session["payment_status"] = payment_status
            session["payment_intent"] = session["payment_intent"] or f"pi_fake_{next(self._ids)}"
            return dict(session)

    def refund(self, *, payment_intent: str, amount_cents: int, idempotency_key: str,
               metadata: dict[str, str] | None = None) -> RefundResult:
        with self._lock:
            self.calls.append(("refund", {"payment_intent": payment_intent, "amount": amount_cents}))
            self._maybe_fail()
            if idempotency_key in self._by_key:
                return self._by_key[idempotency_key]
            paid = sum(int(s["amount_total"]) for s in self.sessions.values()
                       if s["payment_intent"] == payment_intent and s["payment_status"] == "paid")
            refunded = sum(r["amount"] for r in self.refunds if r["payment_intent"] == payment_intent)
            if amount_cents < 1 or refunded + amount_cents > paid:
                raise GatewayError("Refund amount exceeds the charge", kind="invalid", code="amount_too_large", status=400)
            result = RefundResult(id=f"re_fake_{next(self._ids)}", status="succeeded", amount_cents=amount_cents)
            if metadata and metadata.get("refund_id"):
                self._by_key[f"refund_ref:{metadata['refund_id']}"] = result
            self.refunds.append({"id": result.id, "payment_intent": payment_intent, "amount": amount_cents,
                                 "metadata": metadata or {}})
            self._by_key[idempotency_key] = result
            return result

    def find_refund(self, *, payment_intent: str, refund_ref: str) -> RefundResult | None:
        with self._lock:
            self.calls.append(("find_refund", {"payment_intent": payment_intent, "refund_ref": refund_ref}))
            self._maybe_fail()
            return self._by_key.get(f"refund_ref:{refund_ref}")

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        return verify_webhook(payload, signature, self.webhook_secret)

    def create_customer(self, *, email: str | None, name: str | None, idempotency_key: str,
                        metadata: dict[str, str]) -> str:
        with self._lock:
            self.calls.append(("create_customer", {"email": email, "metadata": metadata}))
            self._maybe_fail()
            if idempotency_key not in self._by_key:
                self._by_key[idempotency_key] = f"cus_fake_{next(self._ids)}"
            return self._by_key[idempotency_key]

    def saved_card(self, customer: str) -> str | None:
        with self._lock:
            self.calls.append(("saved_card", {"customer": customer}))
            self._maybe_fail()
            return f"pm_fake_{customer}"

    def charge_off_session(self, *, customer: str, payment_method: str, amount_cents: int, currency: str,
                           idempotency_key: str, metadata: dict[str, str]) -> OffSessionCharge:
        with self._lock:
            self.calls.append(("charge_off_session", {"customer": customer, "amount": amount_cents}))
            self._maybe_fail()
            if idempotency_key not in self._by_key:
                self._by_key[idempotency_key] = OffSessionCharge(id=f"pi_fake_{next(self._ids)}", status="succeeded",
                                                                 amount_cents=amount_cents)
            return self._by_key[idempotency_key]


# ----------------------------------------------------------------------------------------
# Selection
# ----------------------------------------------------------------------------------------

_override: PaymentGateway | None = None
_cached: tuple[tuple, StripeGateway] | None = None
_select_lock = threading.Lock()


def set_gateway(gateway: PaymentGateway | None) -> None:
    """Install a gateway for this process (tests); None goes back to the settings."""
    global _override
    _override = gateway


def get_gateway() -> PaymentGateway | None:
    """The gateway for the current settings, or None when Stripe is not configured."""
    global _cached
    if _override is not None:
        return _override
    settings = get_settings()
    if not settings.stripe_secret_key:
        return None
    key = (settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_base)
    with _select_lock:
        if _cached is None or _cached[0] != key:
            _cached = (key, StripeGateway(secret_key=settings.stripe_secret_key,
                                          webhook_secret=settings.stripe_webhook_secret,
                                          api_base=settings.stripe_api_base))
        return _cached[1]


def webhook_secret_configured() -> bool:
    if _override is not None:
        return True
    return bool(get_settings().stripe_webhook_secret)
