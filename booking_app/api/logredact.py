"""Secrets never reach an access log: query tokens and token path segments are redacted.

A feed URL (`/api/calendar/<token>.ics`), a guest's manage link (`?token=`), a password
reset or an email confirmation link (`?token=`, `?code=`) grant access to whoever holds
them; an access log line is read by more people, kept longer and shipped further than the
link itself. `install()` puts one `logging.Filter` on every logger that writes request
lines — Granian's `granian.access` (off under `reflex run --env prod`, on when an operator
runs Granian with `--access-log`), `uvicorn.access` (the API served alone), gunicorn's and
hypercorn's — and on our own error logger, which names the path of a failed request.
The filter rewrites the record's arguments (and message) before any handler formats it.

`redact()` is the one rule: values of query parameters named `token`, `code`, or with
`token`, `secret`, `password` or `signature` in their name become `[redacted]`; so do the
token segments of the paths in `TOKEN_PATHS`.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"

#: query parameters whose value is a secret (name matched case-insensitively)
_PARAM = r"(?:token|code|[\w.\-]*(?:token|secret|password|signature)[\w.\-]*)"
#: `name=value` at the start of a text (a bare query string) or after ?, & or ;
_QUERY_SECRET = re.compile(rf"(?i)((?:^|[?&;]){_PARAM}=)[^&;#\s\"']*")
#: paths with a secret segment: the part matched by the group `secret` is redacted
TOKEN_PATHS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?i)/api/calendar/(?P<secret>[^/?#\s\"']+?)\.ics"),
)

#: loggers that write one line per request (servers), and ours that names request paths
ACCESS_LOGGERS = ("granian.access", "uvicorn.access", "gunicorn.access", "hypercorn.access",
                  "booking_app.api.errors")


def redact(text: str) -> str:
    """`text` (a path, a query string, a request line or a whole log message) with every
    secret query value and token path segment replaced by `[redacted]`."""
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    for pattern in TOKEN_PATHS:
        text = pattern.sub(_blank_secret, text)
    return text


def _blank_secret(match: re.Match[str]) -> str:
    whole, start = match.group(0), match.start()
    return whole[: match.start("secret") - start] + REDACTED + whole[match.end("secret") - start:]


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("latin-1")).encode("latin-1")
    return value


class RedactTokens(logging.Filter):
    """Rewrites a log record's message and arguments with `redact()`; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, MutableMapping):  # Granian, gunicorn: one dict of fields (path, query…)
            for key, value in list(args.items()):
                if isinstance(value, (str, bytes)):
                    args[key] = _redact_value(value)  # in place: keeps a dict subclass' lookups
        elif isinstance(args, Mapping):
            record.args = {key: _redact_value(value) for key, value in args.items()}
        elif isinstance(args, tuple):  # uvicorn: (client, method, path?query, version, status)
            record.args = tuple(_redact_value(value) for value in args)
        return True


_FILTER = RedactTokens()


def install(*, loggers: tuple[str, ...] = ACCESS_LOGGERS) -> None:
    """Put the filter on the request-logging loggers (idempotent; safe before and after the
    server configures its logging: `logging.config.dictConfig` keeps a logger's filters)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
