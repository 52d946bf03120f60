"""SMS adapters: Twilio (official SDK) or the console, chosen by settings.

Twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM (an E.164 number or a
Messaging Service SID `MG…`). TWILIO_API_BASE points the SDK elsewhere (tests use a local
stub): a small HTTP client rewrites the scheme and host of every request.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from booking_app.config import get_settings
from booking_app.integrations.delivery import DEFAULT_TIMEOUT_SECONDS, ConsoleRecorder, DeliveryError

log = logging.getLogger(__name__)

E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
#: one GSM-7 segment is 160 characters, UCS-2 70; keep texts to a few segments
MAX_SMS_CHARS = 320

__all__ = ["ConsoleSmsSender", "DeliveryError", "SmsMessage", "SmsSender", "TwilioSmsSender",
           "is_e164", "sms_sender_from_settings"]


def is_e164(number: str | None) -> bool:
    return bool(number) and bool(E164_RE.match(number or ""))


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    body: str


class SmsSender(Protocol):
    name: str

    def send(self, message: SmsMessage) -> str | None: ...


#: control characters an SMS text never needs (line feeds stay; CR/LF pairs become one)
_SMS_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _check(message: SmsMessage) -> SmsMessage:
    """The message as it may be sent: an E.164 recipient (else a permanent DeliveryError)
    and a text without control characters other than line feeds (defence in depth, like
    the email headers: a value that reached the database another way can't smuggle them)."""
    if not is_e164(message.to):
        raise DeliveryError(f"not an E.164 phone number: {message.to!r}", transient=False)
    body = _SMS_CONTROLS.sub(" ", message.body.replace("\r\n", "\n"))
    return message if body == message.body else SmsMessage(to=message.to, body=body)


class ConsoleSmsSender(ConsoleRecorder):
    def send(self, message: SmsMessage) -> str | None:
        message = _check(message)
        log.info("sms (console) to=%s: %s", message.to, message.body)
        self._record(message)
        return None


def _rewriting_http_client(base_url: str, timeout: float):
    """A TwilioHttpClient sending every request to `base_url` (scheme + host rewritten)."""
    from twilio.http.http_client import TwilioHttpClient

    base = urlsplit(base_url)

    class _RewritingHttpClient(TwilioHttpClient):
        def request(self, method, url, *args, **kwargs):  # type: ignore[override]
            parts = urlsplit(url)
            url = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))
            return super().request(method, url, *args, **kwargs)

    return _RewritingHttpClient(timeout=timeout)


class TwilioSmsSender:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, sender: str, *,
                 base_url: str = "https://api.twilio.com", timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if not (account_sid and auth_token and sender):
            raise ValueError("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM must all be set")
        if not (is_e164(sender) or sender.startswith("MG")):
            raise ValueError("TWILIO_FROM must be an E.164 number or a Messaging Service SID (MG…)")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = None
        self._lock = threading.Lock()

    def _get_client(self):
        with self._lock:
            if self._client is None:
                from twilio.http.http_client import TwilioHttpClient
                from twilio.rest import Client

                if urlsplit(self.base_url).netloc == "api.twilio.com":
                    http_client = TwilioHttpClient(timeout=self.timeout)
                else:
                    http_client = _rewriting_http_client(self.base_url, self.timeout)
                self._client = Client(self.account_sid, self.auth_token, http_client=http_client)
            return self._client

    def send(self, message: SmsMessage) -> str | None:
        from twilio.base.exceptions import TwilioRestException

        message = _check(message)
        kwargs = {"to": message.to, "body": message.body[:MAX_SMS_CHARS]}
        if self.sender.startswith("MG"):
            kwargs["messaging_service_sid"] = self.sender
        else:
            kwargs["from_"] = self.sender
        try:
            result = self._get_client().messages.create(**kwargs)
        except TwilioRestException as exc:
            status = exc.status
            transient = status is None or status >= 500 or status in (408, 429)
            raise DeliveryError(f"Twilio HTTP {status} (code {exc.code}): {exc.msg}", transient=transient,
                                status=status) from None
        except Exception as exc:  # requests' timeouts and connection errors
            raise DeliveryError(f"Twilio unreachable: {type(exc).__name__}: {exc}", transient=True) from None
        return getattr(result, "sid", None)


def sms_sender_from_settings(settings=None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> SmsSender:
    if settings is None:
        settings = get_settings()
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        return TwilioSmsSender(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from,
                               base_url=settings.twilio_api_base, timeout=timeout)
    return ConsoleSmsSender()
