"""SendGrid transport (v3 Mail Send API through the official SDK).

`SENDGRID_API_BASE` points the SDK elsewhere (tests use a local stub server).
"""
from __future__ import annotations

import base64
from email.utils import parseaddr

from booking_app.integrations.delivery import DEFAULT_TIMEOUT_SECONDS, DeliveryError
from booking_app.integrations.email_message import EmailMessage, safe_message


class SendGridEmailSender:
    name = "sendgrid"

    def __init__(self, api_key: str, *, base_url: str = "https://api.sendgrid.com",
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if not api_key:
            raise ValueError("SENDGRID_API_KEY is empty")
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _client(self):
        from sendgrid import SendGridAPIClient

        client = SendGridAPIClient(api_key=self.api_key, host=self.base_url)
        client.client.timeout = self.timeout  # propagated to every request the SDK builds
        return client

    @staticmethod
    def _mail(message: EmailMessage):
        from sendgrid.helpers.mail import (
            Attachment,
            Disposition,
            FileContent,
            FileName,
            FileType,
            From,
            Header,
            Mail,
            To,
        )

        name, address = parseaddr(message.sender)
        mail = Mail(
            from_email=From(address, name or None),
            to_emails=To(message.to),
            subject=message.subject,
            plain_text_content=message.text,
            html_content=message.html,
        )
        for key, value in message.headers.items():
            mail.add_header(Header(key, value))
        for att in message.attachments:
            params = "".join(f"; {k}={v}" for k, v in att.params.items())
            mail.add_attachment(Attachment(
                FileContent(base64.b64encode(att.content).decode("ascii")),
                FileName(att.filename),
                FileType(f"{att.content_type}{params}"),
                Disposition("attachment"),
            ))
        return mail

    def send(self, message: EmailMessage) -> str | None:
        from python_http_client.exceptions import HTTPError

        mail = self._mail(safe_message(message))  # single-line header values only
        try:
            response = self._client().send(mail)
        except HTTPError as exc:
            status = getattr(exc, "status_code", None)
            body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
            transient = status is None or status >= 500 or status in (408, 429)
            raise DeliveryError(f"SendGrid HTTP {status}: {body[:500]}", transient=transient, status=status) from None
        except Exception as exc:  # timeouts, refused connections (urllib raises URLError/OSError)
            raise DeliveryError(f"SendGrid unreachable: {type(exc).__name__}: {exc}", transient=True) from None
        status = getattr(response, "status_code", None)
        if status is None or not 200 <= int(status) < 300:
            raise DeliveryError(f"SendGrid HTTP {status}", transient=True, status=status)
        headers = getattr(response, "headers", None) or {}
        return headers.get("X-Message-Id") if hasattr(headers, "get") else None
