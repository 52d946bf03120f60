"""Waitlist read model: `EntryView` (what the API and the pages show of an entry), the
position in its queue, and the report figures (services/reports.py: waitlist). A leaf of
the waitlist modules (no service imports), so that reports can read it without a cycle."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, select

from booking_app.config import get_settings
from booking_app.models import Bookable, User, WaitlistEntry, WaitlistStatus


@dataclass
class EntryView:
    id: int
    service_id: int
    service_name: str
    service_kind: str
    timezone: str  # the bookable's
    start: dt.datetime
    session_id: int | None
    quantity: int
    status: str
    position: int | None  # 1 = next in line (waiting entries only)
    offer_expires_at: dt.datetime | None
    booking_id: int | None
    user_id: int | None
    customer_name: str
    customer_email: str | None
    created_at: dt.datetime
    #: a guest's signed token (shown once to whoever joined; the links in emails carry it)
    token: str | None = None
    #: the booking questions' answers given at join (booking_questions snapshot), None when none
    answers: list[dict[str, Any]] | None = None


def sign_entry(entry_id: int) -> str:
    """`<id>.<HMAC-SHA256 of the id with SECRET_KEY>` (services/waitlist.py: entry_token)."""
    key = get_settings().secret_key.encode()
    mac = hmac.new(key, f"waitlist-entry:{entry_id}".encode(), hashlib.sha256).digest()
    return f"{int(entry_id)}." + base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def positions(s: Session, entries: list[WaitlistEntry]) -> dict[int, int]:
    """Each waiting entry's place in its queue (1 = next), one query per distinct queue."""
    out: dict[int, int] = {}
    for e in entries:
        if e.status != WaitlistStatus.waiting.value or e.id is None:
            continue
        ahead = s.exec(select(func.count()).select_from(WaitlistEntry).where(
            WaitlistEntry.bookable_id == e.bookable_id, WaitlistEntry.start_at == e.start_at,
            WaitlistEntry.status == WaitlistStatus.waiting.value, WaitlistEntry.id < e.id)).one()
        out[e.id] = int(ahead) + 1
    return out


def entry_view(s: Session, entry: WaitlistEntry, b: Bookable | None = None, *, with_token: bool = False,
               position: int | None = None, names: dict[int, str] | None = None) -> EntryView:
    b = b or s.get(Bookable, entry.bookable_id)
    assert entry.id is not None
    if position is None and entry.status == WaitlistStatus.waiting.value:
        position = positions(s, [entry]).get(entry.id)
    name, email = entry.guest_name or "", entry.guest_email
    if entry.user_id is not None:
        if names is not None and entry.user_id in names:
            name = names[entry.user_id]
            email = None
        else:
            u: Any = s.get(User, entry.user_id)
            if u is not None:
                name, email = u.full_name or u.username, u.email
    return EntryView(id=entry.id, service_id=entry.bookable_id, service_name=b.name if b else "",
                     service_kind=b.kind if b else "", timezone=b.timezone if b else "UTC", start=entry.start_at,
                     session_id=entry.session_id, quantity=entry.quantity, status=entry.status, position=position,
                     offer_expires_at=entry.offer_expires_at if entry.status == WaitlistStatus.offered.value else None,
                     booking_id=entry.booking_id, user_id=entry.user_id, customer_name=name, customer_email=email,
                     created_at=entry.created_at, token=sign_entry(entry.id) if with_token else None,
                     answers=entry.answers)


@dataclass
class WaitlistFigures:
    joined: int
    offered: int
    accepted: int
    lapsed: int
    declined: int
    #: accepted / offered (0 when nothing was offered)
    conversion: float


def figures(s: Any, start: dt.datetime, end: dt.datetime, provider_id: int | None = None) -> WaitlistFigures:
    """The waitlist figures of entries that joined in [start, end) (one aggregate query), in
    the caller's read session (services/reports.py)."""
    e = WaitlistEntry
    stmt = select(
        func.count(),
        func.coalesce(func.sum(case((e.offered_at.is_not(None), 1), else_=0)), 0),  # type: ignore[union-attr]
        *[func.coalesce(func.sum(case((e.status == st, 1), else_=0)), 0)
          for st in (WaitlistStatus.accepted.value, WaitlistStatus.lapsed.value, WaitlistStatus.declined.value)],
    ).select_from(e).where(e.created_at >= start, e.created_at < end)  # type: ignore[operator]
    if provider_id is not None:
        stmt = stmt.where(e.provider_id == provider_id)
    joined, offered, accepted, lapsed, declined = (int(x or 0) for x in s.exec(stmt).one())
    return WaitlistFigures(joined=joined, offered=offered, accepted=accepted, lapsed=lapsed, declined=declined,
                           conversion=round(accepted / offered, 4) if offered else 0.0)
