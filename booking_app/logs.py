"""Logging setup for the app and the CLI: JSON lines or text, each carrying the request id.

`configure_logging()` is the one setup (called by the API at start-up and by the CLI): one
handler on the root logger writing to stderr, at LOG_LEVEL, in LOG_FORMAT — `json` (one
object per line, for a log shipper; the default in production) or `text` (for a person at a
terminal; the default elsewhere). Calling it again replaces its own handler, never another's.

`request_id` is the id of the request being handled (a context variable: set by the request
log middleware, api/requestlog.py, and copied into worker threads with the context); the
`RequestIdFilter` on the handler stamps it on every record, so every line written while a
request is handled names it. Lines outside a request carry none.

No secret and no personal data: the access line holds a route template and ids, never a
raw path, query or body; the loggers that do name a raw path (servers' access loggers, the
API's error logger) carry api/logredact.py's filter, which blanks tokens before any handler
formats the record.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

from booking_app.config import get_settings

#: the id of the request being handled in this context ("" outside a request)
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

#: record attributes the JSON formatter writes when present (the access line's fields)
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "user_id", "kind")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps `record.request_id` (the current request's id, or "-") on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id,
    the access line's fields when the record has them, and the exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid and rid != "-":
            entry["request_id"] = rid
        for field in ACCESS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _OurHandler(logging.StreamHandler):
    """Marks the handler configure_logging() installed, so a second call replaces it."""


#: loggers kept at WARNING below LOG_LEVEL=DEBUG
CHATTY_LIBRARIES = ("apscheduler", "alembic.runtime.plugins")


def configure_logging(settings=None) -> logging.Handler:
    """Install the root handler for LOG_FORMAT / LOG_LEVEL (`settings`, default the process'
    settings). Idempotent; returns the handler."""
    settings = settings or get_settings()
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format_resolved == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # libraries that narrate routine work at INFO (every job run, every migration plugin):
    # only their warnings, unless LOG_LEVEL asks for DEBUG
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    return handler
