"""Is the database there, and which of its errors mean what: the probes' question
(api/health.py, api/ready.py) and the error classes api/errors.py maps to answers. The API
names them here and never imports SQLAlchemy itself."""
from __future__ import annotations

from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from booking_app import db

#: a value the database refused (NUL, an out-of-range number or date…): bad input, a 422
INPUT_REFUSED_ERRORS: tuple[type[Exception], ...] = (DataError,)
#: no pooled connection came free within DB_POOL_TIMEOUT
POOL_TIMEOUT_ERROR: type[Exception] = PoolTimeout
#: the database can't be reached right now (see db.UNAVAILABLE_ERRORS)
UNAVAILABLE_ERRORS = db.UNAVAILABLE_ERRORS


def database_status() -> str:
    """'ok' when the database answers a ping, else 'unreachable' (blocking: run it in a thread)."""
    try:
        db.ping()
    except (SQLAlchemyError, *db.UNAVAILABLE_ERRORS):  # (psycopg's own, from a connection it dropped)
        return "unreachable"
    return "ok"
