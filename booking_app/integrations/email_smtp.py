"""SMTP transport (works with any provider).

SMTP_URL forms:
  smtp://user:password@host:587?starttls=true   plain connection upgraded with STARTTLS
  smtp+starttls://user:password@host             the same (default port 587)
  smtps://user:password@host                     implicit TLS (default port 465)
  smtp://host:25                                 no TLS, no login (local relay)
Optional query parameters: `timeout` (seconds), `starttls` (true/false),
`verify` (false: accept self-signed certificates; only for local relays).
"""
from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from booking_app.integrations.delivery import DEFAULT_TIMEOUT_SECONDS, DeliveryError
from booking_app.integrations.email_message import EmailMessage, to_mime

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    timeout: float
    verify: bool


def parse_smtp_url(url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> SmtpConfig:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps", "smtp+starttls"):
        raise ValueError("SMTP_URL must start with smtp://, smtps:// or smtp+starttls://")
    if not parts.hostname:
        raise ValueError("SMTP_URL needs a host")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    implicit_tls = scheme == "smtps"
    starttls = scheme == "smtp+starttls" or query.get("starttls", "").lower() in _TRUE
    if implicit_tls and starttls:
        raise ValueError("SMTP_URL: use either smtps:// or STARTTLS, not both")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("SMTP_URL has an invalid port") from exc
    if port is None:
        port = 465 if implicit_tls else 587 if starttls else 25
    try:
        timeout = float(query.get("timeout", timeout))
    except ValueError as exc:
        raise ValueError("SMTP_URL timeout must be a number of seconds") from exc
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit_tls,
        starttls=starttls,
        timeout=timeout,
        verify=query.get("verify", "true").lower() in _TRUE,
    )


class SmtpEmailSender:
    name = "smtp"

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.config = parse_smtp_url(url, timeout=timeout)
        self._local = threading.local()  # a batch's connection belongs to one thread

    @property
    def _conn(self) -> smtplib.SMTP | None:
        return getattr(self._local, "conn", None)

    @_conn.setter
    def _conn(self, value: smtplib.SMTP | None) -> None:
        self._local.conn = value

    @property
    def _batching(self) -> bool:
        return getattr(self._local, "batching", False)

    @_batching.setter
    def _batching(self, value: bool) -> None:
        self._local.batching = value

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.config.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.implicit_tls:
            return smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=self._tls_context())
        return smtplib.SMTP(c.host, c.port, timeout=c.timeout)

    def _open(self) -> smtplib.SMTP:
        c = self.config
        smtp = self._connect()
        try:
            if c.starttls:
                smtp.starttls(context=self._tls_context())
            if c.username:
                smtp.login(c.username, c.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Reuse one connection (and login) for the messages sent inside this block."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    def send(self, message: EmailMessage) -> str | None:
        mime = to_mime(message)
        try:
            if self._batching:
                if self._conn is None:
                    self._conn = self._open()
                try:
                    refused = self._conn.send_message(mime)
                except BaseException:
                    self._drop()  # a broken or confused session: start afresh next time
                    raise
            else:
                with self._open() as smtp:
                    refused = smtp.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            transient = all(400 <= code < 500 for code in codes)
            raise DeliveryError(f"SMTP recipient refused: {exc.recipients}", transient=transient,
                                status=codes[0] if codes else None) from None
        except smtplib.SMTPResponseException as exc:
            detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {exc.smtp_code}: {detail}", transient=400 <= exc.smtp_code < 500,
                                status=exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:  # connection refused, timeout, TLS
            raise DeliveryError(f"SMTP error: {type(exc).__name__}: {exc}", transient=True) from None
        if refused:
            raise DeliveryError(f"SMTP recipient refused: {refused}", transient=False)
        return str(mime["Message-ID"])
