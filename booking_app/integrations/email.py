"""Email: the transport chosen by settings, and the console one.

- SMTP (`SMTP_URL`, any provider): booking_app/integrations/email_smtp.py
- SendGrid (`SENDGRID_API_KEY`, `SENDGRID_API_BASE`): booking_app/integrations/email_sendgrid.py
- console (default): the message is logged; the outbox row stays visible to admins.

Every transport exposes `name` and `send(message) -> provider message id | None` and raises
`DeliveryError` (integrations/delivery.py), never an SDK exception, when the provider did
not take the message. The message type is in integrations/email_message.py.
"""
from __future__ import annotations

import logging

from booking_app.config import get_settings
from booking_app.integrations.delivery import DEFAULT_TIMEOUT_SECONDS, ConsoleRecorder
from booking_app.integrations.email_message import EmailMessage, EmailSender, safe_message
from booking_app.integrations.email_sendgrid import SendGridEmailSender
from booking_app.integrations.email_smtp import SmtpEmailSender

log = logging.getLogger(__name__)


class ConsoleEmailSender(ConsoleRecorder):
    """Embedded default: logs the message. The last messages are kept in memory too."""

    def send(self, message: EmailMessage) -> str | None:
        message = safe_message(message)
        log.info("email (console) to=%s subject=%r attachments=%s\n%s", message.to, message.subject,
                 [a.filename for a in message.attachments], message.text)
        self._record(message)
        return None


def email_sender_from_settings(settings=None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> EmailSender:
    """SMTP if SMTP_URL is set, else SendGrid if SENDGRID_API_KEY is set, else the console."""
    if settings is None:
        settings = get_settings()
    if settings.smtp_url:
        return SmtpEmailSender(settings.smtp_url, timeout=timeout)
    if settings.sendgrid_api_key:
        return SendGridEmailSender(settings.sendgrid_api_key, base_url=settings.sendgrid_api_base, timeout=timeout)
    return ConsoleEmailSender()
