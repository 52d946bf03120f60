"""Audit trail: one row per audited action, written in the same transaction as the action,
and the admin's search over it (filters, paging, CSV).

Rows are append-only: nothing here (nor anywhere else) updates or deletes them; on
PostgreSQL a trigger refuses it (migration 0006). Each row may carry the client IP of the
request behind it: the API and the UI put it in `request_ip` for the duration of a request
or event (`with audit.from_ip(ip): ...`), so services need no IP parameter to record it.
"""
from __future__ import annotations

import contextlib
import contextvars
import csv
import dataclasses
import datetime as dt
import io
import ipaddress
import json
import zoneinfo
from typing import Any, Iterator

from sqlalchemy import and_, or_
from sqlmodel import Session, func, select

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import AuditEvent
from booking_app.services import validation
from booking_app.services.actors import Actor, require_admin
from booking_app.services.errors import InvalidInput

#: the client IP of the request or UI event being served (None: a job, the CLI)
request_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_request_ip", default=None)

MAX_PAGE = 200
#: a CSV export holds at most this many rows (newest first); narrow the filters for older ones
MAX_CSV_ROWS = 50_000
_CSV_CHUNK = 1_000
CSV_COLUMNS = ("id", "at", "actor_id", "action", "entity", "entity_id", "ip", "data")
MAX_ACTION = 64


@contextlib.contextmanager
def from_ip(ip: str | None) -> Iterator[None]:
    """Attribute the audit rows written inside the block to client `ip`."""
    reset = request_ip.set(_clean_ip(ip))
    try:
        yield
    finally:
        request_ip.reset(reset)


def _clean_ip(ip: Any) -> str | None:
    if not isinstance(ip, str) or not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        return None


def record(session: Session, *, actor_id: int | None, action: str, entity: str, entity_id: Any,
           data: dict[str, Any] | None = None, ip: str | None = None) -> None:
    """Add one audit row to the caller's transaction. The IP: `ip`, else the one in `data`
    (sign-ins put it there), else the request's (`request_ip`)."""
    data = data or {}
    address = _clean_ip(ip) or _clean_ip(data.get("ip")) or request_ip.get()
    session.add(AuditEvent(actor_id=actor_id, action=action, entity=entity, entity_id=str(entity_id)[:64],
                           data=data, ip=address))


def record_now(*, actor_id: int | None, action: str, entity: str, entity_id: Any,
               data: dict[str, Any] | None = None, ip: str | None = None) -> None:
    """One audit row in a transaction of its own: for reads and refusals, which have none
    (an export, an outbox read, a wrong password)."""
    with db.unit_of_work() as s:
        record(s, actor_id=actor_id, action=action, entity=entity, entity_id=entity_id, data=data, ip=ip)


# ---------------------------------------------------------------------------------------
# The admin's search
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AuditFilters:
    """Validated filters. `user_id`: what the user did or what was done to their account;
    `action`: exact, or a family with a trailing `.*` (e.g. `user.*`); `start`/`end`: UTC,
    end exclusive."""

    actor_id: int | None = None
    user_id: int | None = None
    action: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    ip: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent]
    total: int


def _id(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise InvalidInput(N_("Enter a whole number of at least 1."), field=field)
    return value


def _moment(value: Any, field: str, tz: str, *, end: bool) -> dt.datetime | None:
    """A day (YYYY-MM-DD in `tz`; `to` includes the whole day) or an ISO 8601 date and time
    with an offset → UTC. Dates are bounded by the shared rules (services/validation.py)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and len(value.strip()) == 10:
        day = validation.date(value, field=field)
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = validation.bounded_date(value, field=field)
    else:
        return validation.aware_datetime(value, field=field)
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=zoneinfo.ZoneInfo(tz)).astimezone(dt.timezone.utc)


def make_filters(*, actor_id: Any = None, user_id: Any = None, action: str | None = None,
                 date_from: Any = None, date_to: Any = None, ip: str | None = None,
                 tz: str | None = None) -> AuditFilters:
    """Check the filters (InvalidInput naming the field); days are read in `tz` (UTC if none)."""
    tz = validation.timezone(tz, field="tz") or "UTC"
    action = validation.text(action, field="action", max_length=MAX_ACTION + 2).strip() or None
    if action is not None:
        stem = action[:-2] if action.endswith(".*") else action
        if not stem or len(stem) > MAX_ACTION or not all(c.isalnum() or c in "._-" for c in stem):
            raise InvalidInput(N_("Enter an action such as user.login, or a family such as user.*."), field="action")
    address = None
    if ip is not None and ip != "":
        address = _clean_ip(ip) if isinstance(ip, str) and len(ip) <= 64 else None
        if address is None:
            raise InvalidInput(N_("Enter an IP address."), field="ip")
    start = _moment(date_from, "from", tz, end=False)
    end = _moment(date_to, "to", tz, end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInput(N_("The start date must not be after the end date."), field="from")
    return AuditFilters(actor_id=_id(actor_id, "actor_id"), user_id=_id(user_id, "user_id"), action=action,
                        start=start, end=end, ip=address)


def _conditions(f: AuditFilters) -> list:
    cond: list = []
    if f.actor_id is not None:
        cond.append(AuditEvent.actor_id == f.actor_id)
    if f.user_id is not None:
        cond.append(or_(AuditEvent.actor_id == f.user_id,
                        and_(AuditEvent.entity == "user", AuditEvent.entity_id == str(f.user_id))))
    if f.action is not None:
        if f.action.endswith(".*"):
            cond.append(AuditEvent.action.startswith(f.action[:-1], autoescape=True))  # type: ignore[attr-defined]
        else:
            cond.append(AuditEvent.action == f.action)
    if f.start is not None:
        cond.append(AuditEvent.at >= f.start)
    if f.end is not None:
        cond.append(AuditEvent.at < f.end)
    if f.ip is not None:
        cond.append(AuditEvent.ip == f.ip)
    return cond


def _newest_first():
    return (AuditEvent.at.desc(), AuditEvent.id.desc())  # type: ignore[attr-defined, union-attr]


def list_events(*, actor: Actor, filters: AuditFilters | None = None, limit: int = 50,
                offset: int = 0) -> AuditPage:
    """Audit rows matching `filters`, newest first, a page at a time (admins only)."""
    require_admin(actor, signed_in=True)
    filters = filters or AuditFilters()
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(N_("Limit must be between {min} and {max}."), field="limit", min=1, max=MAX_PAGE)
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 10_000_000:
        raise InvalidInput(N_("Offset must not be negative."), field="offset")
    cond = _conditions(filters)
    with db.read_session() as s:
        total = s.exec(select(func.count()).select_from(AuditEvent).where(*cond)).one()
        rows = s.exec(select(AuditEvent).where(*cond).order_by(*_newest_first()).offset(offset).limit(limit)).all()
    return AuditPage(items=list(rows), total=int(total))


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ (or tab / CR) gets a quote."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_row(e: AuditEvent) -> list[Any]:
    at = e.at.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    data = json.dumps(e.data or {}, ensure_ascii=False, sort_keys=True, default=str)
    return [csv_cell(v) for v in (e.id, at, e.actor_id, e.action, e.entity, e.entity_id, e.ip, data)]


def export_csv(*, actor: Actor, filters: AuditFilters | None = None) -> Iterator[str]:
    """The filtered rows as CSV (header first, newest first, at most MAX_CSV_ROWS), in
    chunks read a thousand rows at a time. The export itself is audited before any row is
    read."""
    require_admin(actor, signed_in=True)
    filters = filters or AuditFilters()
    record_now(actor_id=actor.id, action="audit.exported", entity="audit", entity_id="-", data=filters.as_dict())
    return _csv_chunks(filters)


def _csv_chunks(filters: AuditFilters) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    cond = _conditions(filters)
    sent = 0
    last: tuple[dt.datetime, int] | None = None
    while sent < MAX_CSV_ROWS:
        page = cond[:]
        if last is not None:  # keyset paging: rows written meanwhile don't shift the pages
            page.append(or_(AuditEvent.at < last[0], and_(AuditEvent.at == last[0], AuditEvent.id < last[1])))
        with db.read_session() as s:
            rows = s.exec(select(AuditEvent).where(*page).order_by(*_newest_first())
                          .limit(min(_CSV_CHUNK, MAX_CSV_ROWS - sent))).all()
        if not rows:
            return
        buf.seek(0)
        buf.truncate()
        for e in rows:
            writer.writerow(_csv_row(e))
        sent += len(rows)
        last = (rows[-1].at, rows[-1].id)
        yield buf.getvalue()


def csv_text(*, actor: Actor, filters: AuditFilters | None = None) -> str:
    """export_csv joined into one text (the UI's download)."""
    return "".join(export_csv(actor=actor, filters=filters))
