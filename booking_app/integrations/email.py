"""Email adapters: our own message type, the transport chosen by settings, and the console one.

- SMTP (`SMTP_URL`, any provider): booking_app/integrations/email_smtp.py
- SendGrid (`SENDGRID_API_KEY`, `SENDGRID_API_BASE`): booking_app/integrations/email_sendgrid.py
- console (default): the message is logged; the outbox row stays visible to admins.

Every transport exposes `name` and `send(message) -> provider message id | None` and raises
`DeliveryError` (never an SDK exception) when the provider did not take the message.
"""
from __future__ import annotations

import collections
import email.message
import email.policy
import logging
import threading
from dataclasses import dataclass, field
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 15.0


class DeliveryError(Exception):
    """The provider did not accept the message. `transient` errors are worth retrying soon."""

    def __init__(self, message: str, *, transient: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str  # e.g. "text/calendar"
    params: dict[str, str] = field(default_factory=dict)  # e.g. {"method": "REQUEST"}


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str
    sender: str  # "Name <address>"
    attachments: tuple[Attachment, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


class EmailSender(Protocol):
    name: str

    def send(self, message: EmailMessage) -> str | None: ...


def sender_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def to_mime(message: EmailMessage) -> email.message.EmailMessage:
    """multipart/mixed( multipart/alternative(text/plain, text/html), attachments… )."""
    mime = email.message.EmailMessage(policy=email.policy.SMTP)
    mime["Subject"] = message.subject
    mime["From"] = message.sender
    mime["To"] = message.to
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=sender_domain(message.sender))
    mime.set_content(message.text, subtype="plain", charset="utf-8")
    mime.add_alternative(message.html, subtype="html", charset="utf-8")
    for att in message.attachments:
        maintype, _, subtype = att.content_type.partition("/")
        mime.add_attachment(att.content, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=att.filename, params=dict(att.params))
    for key, value in message.headers.items():  # after set_content, which drops Content-* headers
        mime[key] = value
    return mime


class ConsoleRecorder:
    """Console transports keep their last messages in memory (per subclass), for tests
    and for a look at what would have been sent."""

    name = "console"
    _recent: collections.deque
    _lock: threading.Lock

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._recent = collections.deque(maxlen=100)
        cls._lock = threading.Lock()

    def _record(self, message) -> None:
        with self._lock:
            self._recent.append(message)

    @classmethod
    def recent(cls) -> list:
        with cls._lock:
            return list(cls._recent)

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls._recent.clear()


class ConsoleEmailSender(ConsoleRecorder):
    """Embedded default: logs the message. The last messages are kept in memory too."""

    def send(self, message: EmailMessage) -> str | None:
        log.info("email (console) to=%s subject=%r attachments=%s\n%s", message.to, message.subject,
                 [a.filename for a in message.attachments], message.text)
        self._record(message)
        return None


def email_sender_from_settings(settings=None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> EmailSender:
    """SMTP if SMTP_URL is set, else SendGrid if SENDGRID_API_KEY is set, else the console."""
    if settings is None:
        from booking_app.config import get_settings

        settings = get_settings()
    if settings.smtp_url:
        from booking_app.integrations.email_smtp import SmtpEmailSender

        return SmtpEmailSender(settings.smtp_url, timeout=timeout)
    if settings.sendgrid_api_key:
        from booking_app.integrations.email_sendgrid import SendGridEmailSender

        return SendGridEmailSender(settings.sendgrid_api_key, base_url=settings.sendgrid_api_base, timeout=timeout)
    return ConsoleEmailSender()
