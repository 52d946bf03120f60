"""Waitlist reads and the provider's actions (issue 24, point 1): list entries (a customer's
own; a provider's per bookable), get one, offer free seats now, close / reopen a bookable's
waitlist (the report figures: services/waitlist_views.py)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import select

from booking_app import db
from booking_app.models import Bookable, User, WaitlistEntry, WaitlistStatus
from booking_app.models.base import utcnow
from booking_app.services import audit, capacity, waitlist
from booking_app.services.actors import Actor
from booking_app.services.bookable_access import load_bookable
from booking_app.services.errors import Unauthorized
from booking_app.services.waitlist_views import EntryView, entry_view, positions

MAX_LIST = 200


def list_entries(*, actor: Actor, service_id: Any = None, open_only: bool = False) -> list[EntryView]:
    """Without `service_id`: the caller's own entries (newest first). With it: a provider's
    (or an admin's) whole queue of that bookable, upcoming starts first, in queue order
    (NotFound/Forbidden for a bookable they don't manage); a customer: their own entries there."""
    if actor.is_guest:
        raise Unauthorized()
    with db.read_session() as s:
        e = WaitlistEntry
        stmt = select(e)
        staff = False
        if service_id is not None:
            staff = actor.is_admin or actor.is_provider
            load_bookable(s, service_id, actor, manage=staff)
            stmt = stmt.where(e.bookable_id == service_id)
        if not staff:
            stmt = stmt.where(e.user_id == actor.id)
        if open_only:
            stmt = stmt.where(e.status.in_((WaitlistStatus.waiting.value, WaitlistStatus.offered.value)))  # type: ignore[attr-defined]
        if staff:
            stmt = stmt.order_by(e.start_at, e.id)  # type: ignore[arg-type]
        else:
            stmt = stmt.order_by(e.id.desc())  # type: ignore[union-attr]
        rows = list(s.exec(stmt.limit(MAX_LIST)).all())
        places = positions(s, rows)
        bookables = {b.id: b for b in s.exec(select(Bookable).where(
            Bookable.id.in_({r.bookable_id for r in rows}))).all()} if rows else {}  # type: ignore[union-attr]
        users = {u.id: (u.full_name or u.username) for u in s.exec(select(User).where(
            User.id.in_({r.user_id for r in rows if r.user_id}))).all()} if rows else {}  # type: ignore[union-attr]
        return [entry_view(s, r, bookables.get(r.bookable_id), position=places.get(r.id or 0),
                           names=users) for r in rows]


def get_entry(*, actor: Actor, entry_id: Any, token: Any = None) -> EntryView:
    """One entry, for its customer (or a guest holding its token), its provider, an admin."""
    with db.read_session() as s:
        entry = waitlist.load_entry(s, actor, entry_id, token)
        return entry_view(s, entry)


def offer_now(*, actor: Actor, service_id: Any, now: dt.datetime | None = None) -> int:
    """The provider's "Offer now": offer whatever is free in the bookable's upcoming queues
    (`waitlist.offer_freed`, under the capacity lock) → how many offers were made."""
    now = now or utcnow()
    with capacity.transaction() as s:
        b = load_bookable(s, service_id, actor, manage=True)
        made = waitlist.offer_freed(s, b, now=now)
        audit.record(s, actor_id=actor.id, action="waitlist.offer_now", entity="bookable", entity_id=b.id,
                     data={"offers": made})
        return made


def set_closed(*, actor: Actor, service_id: Any, closed: bool, now: dt.datetime | None = None) -> int:
    """Close (or reopen) a bookable's waitlist. Closing takes no new entries, offers nothing
    more and ends the waiting entries (status `closed`); open offers stay valid. → how many
    entries were ended."""
    now = now or utcnow()
    with capacity.transaction() as s:
        b = load_bookable(s, service_id, actor, manage=True)
        b.waitlist_closed = bool(closed)
        s.add(b)
        ended = 0
        if closed:
            for entry in s.exec(select(WaitlistEntry).where(WaitlistEntry.bookable_id == b.id,
                                                            WaitlistEntry.status == WaitlistStatus.waiting.value)).all():
                entry.status = WaitlistStatus.closed.value
                entry.decided_at = now
                entry.updated_at = now
                s.add(entry)
                ended += 1
        audit.record(s, actor_id=actor.id, action="waitlist.closed" if closed else "waitlist.reopened",
                     entity="bookable", entity_id=b.id, data={"entries_ended": ended})
        return ended


def managed_bookables(*, actor: Actor, limit: int = 500) -> list[tuple[int, str, bool]]:
    """(id, name, waitlist closed) of the bookables whose waitlists `actor` manages: a
    provider's own, every one for an admin."""
    if actor.is_guest or not (actor.is_admin or actor.is_provider):
        return []
    with db.read_session() as s:
        stmt = select(Bookable.id, Bookable.name, Bookable.waitlist_closed)
        if not actor.is_admin:
            stmt = stmt.where(Bookable.provider_id == actor.id)
        rows = s.exec(stmt.order_by(Bookable.name, Bookable.id).limit(limit)).all()  # type: ignore[arg-type]
        return [(int(i), str(n), bool(c)) for i, n, c in rows]


def sweep(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Job sweep: waiting entries whose time has come are ended (status `closed`: nothing can
    be offered any more). Repeat-safe (a conditional change of waiting rows; rows claimed
    with SKIP LOCKED on PostgreSQL). Offers themselves never wait for a sweep: they are made
    in the transaction that frees the seats, and a lapsed offer's hold is released (and passed
    on) by the hold sweep. → how many entries were ended."""
    now = now or utcnow()
    with db.unit_of_work(lock_timeout=True) as s:
        stmt = (select(WaitlistEntry).where(WaitlistEntry.status == WaitlistStatus.waiting.value,
                                            WaitlistEntry.start_at <= now)  # type: ignore[operator]
                .order_by(WaitlistEntry.id).limit(limit))
        if db.is_postgres(s):
            stmt = stmt.with_for_update(skip_locked=True)
        rows = s.exec(stmt).all()
        for entry in rows:
            entry.status = WaitlistStatus.closed.value
            entry.decided_at = now
            entry.updated_at = now
            s.add(entry)
        return len(rows)
