"""Waitlist with held offers (issue 24, point 1): join a full slot's queue, and the one hook
that hands freed seats to it, `offer_freed`, called in the transaction that frees them.

An offer holds the freed seats as a `pending` booking whose `hold_expires_at` outlasts the
offer's expiry by OFFER_GRACE, so the capacity engine counts it like any hold and nobody else
can take the seats, not even between the offer's expiry and the next sweep; accepting
(services/waitlist_accept.py, until `offer_expires_at`) turns it into the normal booking; a
lapse (the hold sweep, by `offer_expires_at`: `lapsed_offer_holds`) or a decline cancels it
and hands the seats to the next entry in the same transaction. Entry reads,
provider actions and reports: services/waitlist_admin.py. Design: docs/waitlist.md.

This module must not import services/bookings.py or payments.py (they call it).
"""
from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Bookable, Booking, BookingStatus, User, WaitlistEntry, WaitlistStatus
from booking_app.models.base import utcnow
from booking_app.models.waitlist import OPEN_STATUSES
from booking_app.services import audit, availability, booking_questions, capacity, outbox, webhooks
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, Forbidden, InvalidInput, NotAvailable, NotFound
from booking_app.services.guest_bookings import GUEST_QUANTITY, guest_fields
from booking_app.services.slots import SlotShape
from booking_app.services.validation import parse_aware_datetime, parse_int
from booking_app.services.waitlist_views import EntryView, entry_view, sign_entry

NOT_FOUND = N_("This waitlist entry does not exist.")
HAS_ROOM = N_("This time still has room: book it instead.")
CLOSED = N_("The waitlist of this service is closed.")
ALREADY = N_("You are already on the waitlist for this time.")
TOO_MANY = N_("You are on too many waitlists already.")
NOT_OFFERED = N_("This offer is no longer open.")
#: open entries (waiting or offered) one person may have at once
MAX_OPEN_PER_PERSON = 20
#: cancel reasons of an offer's hold booking that end the offer
DECLINED_REASON = "waitlist_declined"
#: how long an offer's hold outlasts the offer: the hold sweep (every 30 s) lapses the offer
#: and passes it on within it, so the engine never counts a lapsed offer's seats as free
#: before the next person holds them (if the jobs stop, the seats free after this margin)
OFFER_GRACE = dt.timedelta(minutes=5)
#: how far a freed service booking looks for the provider's other services' queues
_SERVICE_REACH = dt.timedelta(days=1)


# --- tokens (a guest's accept/decline link) --------------------------------------------------


def entry_token(entry_id: int) -> str:
    """The signed token of a guest's waitlist links: `<id>.<HMAC-SHA256 of the id with
    SECRET_KEY>` (like services/manage_links.py); it works while the entry is open."""
    return sign_entry(entry_id)


def token_grants(token: Any, entry: WaitlistEntry | None) -> bool:
    """True when `token` is the entry's own (constant-time compare)."""
    if entry is None or entry.id is None or not isinstance(token, str) or len(token) > 100 or "." not in token:
        return False
    return hmac.compare_digest(token.encode(), sign_entry(entry.id).encode())


def accept_url(entry: WaitlistEntry) -> str:
    """The one-click link of an offer: the waitlist page with the entry (and a guest's token)."""
    base = f"{get_settings().public_url.rstrip('/')}/waitlist?entry={entry.id}"
    return f"{base}&token={entry_token(entry.id)}" if entry.user_id is None else base  # type: ignore[arg-type]


def is_owner(actor: Actor, entry: WaitlistEntry, token: Any = None) -> bool:
    """Its customer: the signed-in user who joined, or whoever holds a guest entry's token."""
    if entry.user_id is not None:
        return actor.id is not None and actor.id == entry.user_id
    return token_grants(token, entry)


def is_manager(actor: Actor, entry: WaitlistEntry) -> bool:
    return actor.is_admin or (actor.is_provider and actor.id is not None and actor.id == entry.provider_id)


def load_entry(s: Session, actor: Actor, entry_id: Any, token: Any = None, *, lock: bool = False,
               owner_only: bool = False) -> WaitlistEntry:
    """The entry `actor` (or a token holder) may act on, optionally locked; NotFound otherwise
    (existence is not revealed)."""
    if isinstance(entry_id, bool) or not isinstance(entry_id, int):
        raise NotFound(NOT_FOUND)
    stmt = select(WaitlistEntry).where(WaitlistEntry.id == entry_id)
    if lock and db.is_postgres(s):
        stmt = stmt.with_for_update()
    entry = s.exec(stmt).first()
    if entry is None or not (is_owner(actor, entry, token) or (not owner_only and is_manager(actor, entry))):
        raise NotFound(NOT_FOUND)
    return entry


# --- join ------------------------------------------------------------------------------------


def offer_minutes(b: Bookable) -> int:
    """How long an offer of `b` holds its seats: its own override, else WAITLIST_OFFER_MINUTES."""
    return int(b.waitlist_offer_minutes or get_settings().waitlist_offer_minutes)


def join(*, actor: Actor, service_id: Any, start: dt.datetime | str, quantity: Any = 1,
         guest: Mapping[str, Any] | Any | None = None, answers: Mapping[str, Any] | Any | None = None,
         now: dt.datetime | None = None) -> EntryView:
    """Join the waitlist of a full slot (or event session) of `service_id` at `start`.

    Signed-in customers join for themselves; guests give `guest={name, email, phone?}`
    (at most GUEST_MAX_QUANTITY seats). The slot must be a real, bookable start that is
    full: with room left → Conflict (book it instead), checked under the capacity lock so a
    seat freed meanwhile is either seen here or offered to this entry. `answers`: the
    bookable's booking questions, checked as for a booking (services/booking_questions.py,
    field `answers.<id>`); the snapshot is kept on the entry for the offer's booking. Errors: NotFound,
    InvalidInput, Conflict (room left, waitlist closed, already waiting, too many), Busy."""
    now = now or utcnow()
    start_at = parse_aware_datetime(start, field="start")
    qty = parse_int(quantity, field="quantity", lo=1, hi=capacity.MAX_QUANTITY)
    name = email = phone = None
    if actor.is_guest:
        if actor.role != "guest":
            raise Forbidden()
        if guest is None:
            raise InvalidInput(N_("Give your name and email address to book as a guest."), field="guest")
        name, email, phone = guest_fields(guest)
        if qty > get_settings().guest_max_quantity:
            raise InvalidInput(GUEST_QUANTITY, field="quantity", max=get_settings().guest_max_quantity)
    elif guest is not None:
        if not (actor.is_admin or actor.is_provider):
            raise InvalidInput(N_("Signed-in customers book for themselves."), field="guest")
        name, email, phone = guest_fields(guest)
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise NotFound(N_("This service does not exist."))
    with capacity.transaction() as s:
        b = s.get(Bookable, service_id)
        if b is None or not b.is_active:
            raise NotFound(N_("This service does not exist."))
        if b.waitlist_closed:
            raise Conflict(CLOSED)
        snapshot = booking_questions.check_answers(b.questions, answers)
        try:
            shape = availability.resolve_start(s, b, start_at, now)
        except NotAvailable as exc:
            raise InvalidInput(exc.message, field="start", **exc.params) from None
        if qty > shape.capacity:
            raise InvalidInput(capacity.AT_MOST_SEATS, field="quantity", max=shape.capacity)
        _lock(s, b, shape)
        if availability.seats_used(s, b, shape, now) + qty <= shape.capacity:
            raise Conflict(HAS_ROOM)
        user_id = actor.id if email is None else None
        mine = _open_of(user_id, email)
        if s.exec(select(WaitlistEntry.id).where(*mine, WaitlistEntry.bookable_id == b.id,
                                                 WaitlistEntry.start_at == shape.start)).first() is not None:
            raise Conflict(ALREADY)
        if s.exec(select(func.count()).select_from(WaitlistEntry).where(*mine)).one() >= MAX_OPEN_PER_PERSON:
            raise Conflict(TOO_MANY)
        locale = actor.locale
        if user_id is not None:
            user = s.get(User, user_id)
            locale = (user.locale if user is not None else None) or actor.locale
        entry = WaitlistEntry(bookable_id=b.id, provider_id=b.provider_id, session_id=shape.session_id,
                              start_at=shape.start, quantity=qty, user_id=user_id, guest_name=name,
                              guest_email=email, guest_phone=phone, locale=locale or "en",
                              created_at=now, updated_at=now, answers=snapshot)
        s.add(entry)
        s.flush()
        audit.record(s, actor_id=actor.id, action="waitlist.joined", entity="waitlist_entry", entity_id=entry.id,
                     data={"bookable_id": b.id, "start": shape.start.isoformat(), "quantity": qty})
        return entry_view(s, entry, b, with_token=email is not None)


def _open_of(user_id: int | None, email: str | None) -> list[Any]:
    who = WaitlistEntry.user_id == user_id if user_id is not None else WaitlistEntry.guest_email == email
    return [who, WaitlistEntry.status.in_(OPEN_STATUSES)]  # type: ignore[attr-defined]


def _lock(s: Session, b: Bookable, shape: SlotShape) -> None:
    """The capacity lock of the slot (capacity.py's: a session's counter row, else the
    bookable's / provider's advisory lock)."""
    with capacity.busy_on_lock_wait():
        if shape.session_id is not None:
            capacity.lock_session_counters(s, [shape.session_id])
        else:
            capacity.lock(s, capacity.lock_key(b))


# --- the hook: seats were freed ----------------------------------------------------------------


def offer_freed(s: Session, freed: Booking | Bookable, *, now: dt.datetime, start_at: dt.datetime | None = None,
                seats: int | None = None) -> int:
    """THE hook of every path that frees capacity, called inside its capacity transaction
    after the change is flushed: hold the freed seats for the next waiting entries, in order
    (an entry wanting more seats than are left is passed over), for `offer_minutes`.

    `freed`: a Booking that just stopped holding its seats (cancelled, hold expired, declined;
    or moved away — then `start_at` is its old start); an offer's own booking ends its offer
    (lapsed or declined) first. Or a Bookable whose capacity or hours grew: its queues at
    `start_at` (None: all its upcoming queues). `seats`: at most this many seats are offered
    (default: the freed booking's quantity; a bookable: whatever is free). Each slot is
    re-counted under the capacity lock, so never more than is free is held. Returns how
    many offers were made. One query (the queue lookup) when nobody waits."""
    if isinstance(freed, Booking):
        end_offer_of(s, freed, now)
        b = s.get(Bookable, freed.bookable_id)
        start = start_at or freed.start_at
        limit = freed.quantity if seats is None else seats
        reach: tuple[dt.datetime, dt.datetime] | None = (start, start)
        if b is not None and b.kind == "service":  # the provider's time: their other services' queues too
            length = freed.end_at - freed.start_at
            reach = (start - _SERVICE_REACH, start + length + _SERVICE_REACH)
    else:
        b, limit = freed, seats
        reach = (start_at, start_at) if start_at is not None else None
    if b is None or b.waitlist_closed:
        return 0
    queues = _queues(s, b, reach, now, service=isinstance(freed, Booking) and b.kind == "service")
    made = 0
    for bookable_id, queue_start in queues:
        if limit is not None and limit <= 0:
            break
        qb = b if bookable_id == b.id else s.get(Bookable, bookable_id)
        if qb is None or qb.waitlist_closed or not qb.is_active:
            continue
        n, seats_held = _offer_at(s, qb, queue_start, now, limit)
        made += n
        if limit is not None:
            limit -= seats_held
    return made


def _queues(s: Session, b: Bookable, reach: tuple[dt.datetime, dt.datetime] | None, now: dt.datetime, *,
            service: bool) -> list[tuple[int, dt.datetime]]:
    """The (bookable, start) queues with waiting entries that the freed seats may serve, in
    order of their first entry."""
    e = WaitlistEntry
    cond: list[Any] = [e.status == WaitlistStatus.waiting.value, e.start_at > now]  # type: ignore[operator]
    if service:
        cond.append(e.provider_id == b.provider_id)
    else:
        cond.append(e.bookable_id == b.id)
    if reach is not None:
        if reach[0] == reach[1]:
            cond.append(e.start_at == reach[0])
        else:
            cond += [e.start_at >= reach[0], e.start_at < reach[1]]  # type: ignore[operator]
    rows = s.exec(select(e.bookable_id, e.start_at, func.min(e.id)).where(*cond)
                  .group_by(e.bookable_id, e.start_at).order_by(func.min(e.id)).limit(200)).all()
    return [(r[0], r[1]) for r in rows]


def _offer_at(s: Session, b: Bookable, start: dt.datetime, now: dt.datetime, limit: int | None) -> tuple[int, int]:
    """Offer the free seats of `b` at `start` to its queue, under the capacity lock →
    (offers made, seats held)."""
    try:
        shape = availability.resolve_start(s, b, start, now)
    except NotAvailable:
        return 0, 0  # no longer a bookable start (past, closed): nothing to offer
    _lock(s, b, shape)
    if b.capacity == 1 and b.kind != "event" and _expired_hold_overlaps(s, b, shape, now):
        return 0, 0  # (the exclusion backstop would refuse the offer): the hold sweep offers it
    used = availability.seats_used(s, b, shape, now)
    free = shape.capacity - used
    if limit is not None:
        free = min(free, limit)
    if free <= 0:
        return 0, 0
    waiting = s.exec(select(WaitlistEntry).where(
        WaitlistEntry.bookable_id == b.id, WaitlistEntry.start_at == start,
        WaitlistEntry.status == WaitlistStatus.waiting.value).order_by(WaitlistEntry.id)).all()
    made = held = 0
    for entry in waiting:
        if entry.quantity > free:
            continue
        _make_offer(s, b, shape, entry, now)
        free -= entry.quantity
        held += entry.quantity
        made += 1
        if free <= 0:
            break
    return made, held


def _expired_hold_overlaps(s: Session, b: Bookable, shape: SlotShape, now: dt.datetime) -> bool:
    return s.exec(select(Booking.id).where(
        Booking.bookable_id == b.id, Booking.status == BookingStatus.pending.value,
        Booking.hold_expires_at <= now,  # type: ignore[operator]
        Booking.block_start_at < shape.block_end, Booking.block_end_at > shape.block_start).limit(1)).first() is not None


_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _reference() -> str:
    return "".join(_REF_ALPHABET[x % 32] for x in secrets.token_bytes(8))


def _make_offer(s: Session, b: Bookable, shape: SlotShape, entry: WaitlistEntry, now: dt.datetime) -> None:
    """Hold the seats for `entry` (a pending booking until the offer expires) and tell them."""
    expires = now + dt.timedelta(minutes=offer_minutes(b))
    expires = min(expires, shape.start) if shape.start > now else expires
    bk = Booking(reference=_reference(), bookable_id=b.id, provider_id=b.provider_id, session_id=shape.session_id,
                 user_id=entry.user_id, guest_name=entry.guest_name, guest_email=entry.guest_email,
                 guest_phone=entry.guest_phone, locale=entry.locale, start_at=shape.start, end_at=shape.end,
                 block_start_at=shape.block_start, block_end_at=shape.block_end,
                 exclusive=b.capacity == 1 and b.kind != "event", quantity=entry.quantity,
                 status=BookingStatus.pending.value, hold_expires_at=expires + OFFER_GRACE,
                 price_cents=b.price_cents * entry.quantity, currency=b.currency, notes="", created_at=now, updated_at=now,
                 answers=entry.answers)  # (the answers given at join)
    s.add(bk)
    s.flush()
    entry.status = WaitlistStatus.offered.value
    entry.booking_id = bk.id
    entry.offered_at = now
    entry.offer_expires_at = expires
    entry.updated_at = now
    s.add(entry)
    s.flush()
    audit.record(s, actor_id=None, action="waitlist.offered", entity="waitlist_entry", entity_id=entry.id,
                 data={"booking_id": bk.id, "offer_expires_at": expires.isoformat()})
    notify_entry(s, entry, bk, b, "waitlist.offered")


def end_offer_of(s: Session, bk: Booking, now: dt.datetime) -> WaitlistEntry | None:
    """`bk` stopped holding its seats: if it was an open offer's hold, the offer ends —
    lapsed (its hold expired) or declined (cancelled) → the entry, else None."""
    if bk.id is None or bk.status == BookingStatus.pending.value:
        return None
    entry = s.exec(select(WaitlistEntry).where(WaitlistEntry.booking_id == bk.id,
                                               WaitlistEntry.status == WaitlistStatus.offered.value)).first()
    if entry is None:
        return None
    if bk.status == BookingStatus.confirmed.value:  # paid through the normal payment path: accepted
        entry.status = WaitlistStatus.accepted.value
    elif bk.cancel_reason == "hold_expired":
        entry.status = WaitlistStatus.lapsed.value
    else:
        entry.status = WaitlistStatus.declined.value
    entry.decided_at = now
    entry.updated_at = now
    s.add(entry)
    s.flush()
    audit.record(s, actor_id=None, action=f"waitlist.{entry.status}", entity="waitlist_entry", entity_id=entry.id,
                 data={"booking_id": bk.id})
    if entry.status in (WaitlistStatus.lapsed.value, WaitlistStatus.accepted.value):
        notify_entry(s, entry, bk, None, f"waitlist.{entry.status}")
    return entry


def lapsed_offer_holds(s: Session, now: dt.datetime, *, skip: list[Booking], limit: int = 1000) -> list[Booking]:
    """For the hold sweep: the hold bookings of open offers past `offer_expires_at` whose hold
    still runs (the OFFER_GRACE margin), locked (SKIP LOCKED on PostgreSQL) and not in `skip`
    (the sweep's own expired holds). A hold no longer ending OFFER_GRACE after the offer
    (payments.py extended it for a Checkout its owner opened through the normal payment path)
    is left to its own expiry."""
    stmt = (select(Booking, WaitlistEntry.offer_expires_at)
            .join(WaitlistEntry, WaitlistEntry.booking_id == Booking.id)
            .where(WaitlistEntry.status == WaitlistStatus.offered.value,
                   WaitlistEntry.offer_expires_at <= now,  # type: ignore[operator]
                   Booking.status == BookingStatus.pending.value, Booking.hold_expires_at > now)  # type: ignore[operator]
            .order_by(Booking.id).limit(limit))
    if db.is_postgres(s):
        stmt = stmt.with_for_update(of=Booking, skip_locked=True)
    seen = {bk.id for bk in skip}
    return [bk for bk, until in s.exec(stmt).all()
            if bk.id not in seen and bk.hold_expires_at is not None and until is not None
            and bk.hold_expires_at == until + OFFER_GRACE]


def freed_many(s: Session, bookings: list[Booking], now: dt.datetime) -> int:
    """`offer_freed` for each booking a sweep released (expired holds), in order. The
    capacity locks it will take are taken first, in sorted order (the sweep's session
    counters are already locked), so that two sweeps never wait on each other in a cycle."""
    bookable_ids = {bk.bookable_id for bk in bookings if bk.session_id is None}
    if bookable_ids and capacity.pipelined(s):
        rows = s.exec(select(Bookable).where(Bookable.id.in_(bookable_ids))).all()  # type: ignore[attr-defined]
        with capacity.busy_on_lock_wait():
            capacity.lock(s, *(capacity.lock_key(b) for b in rows))
    return sum(offer_freed(s, bk, now=now) for bk in bookings)


# --- notifications -------------------------------------------------------------------------------


def notify_entry(s: Session, entry: WaitlistEntry, bk: Booking, b: Bookable | None, event: str) -> None:
    """Queue what an entry's event tells: the offer email/SMS (with the one-click accept
    link) for `waitlist.offered`, and the webhook event to subscribed endpoints."""
    b = b or s.get(Bookable, entry.bookable_id)
    customer = outbox.customer_of(s, bk, b)
    rows: list[dict[str, Any]] = []
    if event == "waitlist.offered":
        base = outbox.booking_snapshot(s, bk, b, customer=customer)
        base.pop("manage_url", None)  # (the offer's link is the accept link)
        base.update(accept_url=accept_url(entry), offer_until=outbox.jsonable(entry.offer_expires_at),
                    hold_expires_at=outbox.jsonable(entry.offer_expires_at))  # ("accept by": not the grace)
        key = f"waitlist_offered:{entry.id}:{bk.id}"
        if customer.wants_email:
            rows.append(dict(channel="email", to=customer.email or "", template="waitlist_offered",
                             locale=customer.locale, context=outbox.personal(base, customer),
                             dedupe_key=f"email:{key}", booking_id=bk.id, user_id=customer.user_id))
        if customer.wants_sms:
            rows.append(dict(channel="sms", to=customer.phone or "", template="waitlist_offered",
                             locale=customer.locale, context=outbox.personal(base, customer),
                             dedupe_key=f"sms:{key}", booking_id=bk.id, user_id=customer.user_id))
    if event in webhooks.EVENTS:
        data = {"waitlist_entry": {"id": entry.id, "status": entry.status, "quantity": entry.quantity,
                                   "start": outbox.jsonable(entry.start_at),
                                   "offer_expires_at": outbox.jsonable(entry.offer_expires_at)},
                "booking": webhooks.booking_data(bk, b, customer_name=customer.name, customer_email=customer.email)}
        rows.extend(webhooks.event_rows(s, event=event, provider_id=entry.provider_id, booking_id=bk.id, data=data,
                                        dedupe=f"{event}:{entry.id}:{bk.id}"))
    if rows:
        outbox.insert_values(s, outbox.notification_values(rows, json_safe=True))



# --- leave, decline -------------------------------------------------------------------------------


def _end_hold(s: Session, bk: Booking, reason: str, now: dt.datetime) -> None:
    """Cancel an open offer's hold booking (declined or left): its seats are free again."""
    bk.status = BookingStatus.cancelled.value
    bk.cancel_reason = reason
    bk.cancelled_at = now
    bk.hold_expires_at = None
    bk.version += 1
    bk.updated_at = now
    s.add(bk)
    s.flush()
    audit.record(s, actor_id=None, action="booking.cancelled", entity="booking", entity_id=bk.id,
                 data={"reason": reason})


def locked_entry_and_hold(s: Session, actor: Actor, entry_id: Any, token: Any, *, owner_only: bool
                          ) -> tuple[WaitlistEntry, Booking | None]:
    """The entry and its offer's hold booking, locked in the order every path takes them
    (the booking row, then the entry: cancel → offer_freed does the same)."""
    entry = load_entry(s, actor, entry_id, token, owner_only=owner_only)
    bk = capacity.lock_booking(s, entry.booking_id) if entry.booking_id is not None else None
    entry = load_entry(s, actor, entry_id, token, lock=True, owner_only=owner_only)
    return entry, bk


def decline(*, actor: Actor, entry_id: Any, token: Any = None, now: dt.datetime | None = None,
            status: str = WaitlistStatus.declined.value) -> EntryView:
    """Its customer turns an open offer down (or `leave` ends an entry): the held seats pass
    to the next entries at once, in this transaction. Conflict when no offer is open."""
    now = now or utcnow()
    with capacity.transaction() as s:
        entry, bk = locked_entry_and_hold(s, actor, entry_id, token, owner_only=status == "declined")
        if entry.status != WaitlistStatus.offered.value or bk is None or bk.status != BookingStatus.pending.value:
            raise Conflict(NOT_OFFERED)
        entry.status = status
        entry.decided_at = now
        entry.updated_at = now
        s.add(entry)
        s.flush()
        _end_hold(s, bk, DECLINED_REASON, now)
        audit.record(s, actor_id=actor.id, action=f"waitlist.{status}", entity="waitlist_entry", entity_id=entry.id)
        offer_freed(s, bk, now=now)
        return entry_view(s, entry)


def leave(*, actor: Actor, entry_id: Any, token: Any = None, now: dt.datetime | None = None) -> None:
    """Leave the waitlist (its customer, its provider, an admin), at any time: a waiting
    entry is gone; an open offer is given up (passed on, as `decline`)."""
    now = now or utcnow()
    with capacity.transaction() as s:
        entry = load_entry(s, actor, entry_id, token, lock=True)
        if entry.status == WaitlistStatus.offered.value:
            pass  # (below, with the hold's lock order)
        elif entry.status == WaitlistStatus.waiting.value:
            entry.status = WaitlistStatus.left.value
            entry.decided_at = now
            entry.updated_at = now
            s.add(entry)
            audit.record(s, actor_id=actor.id, action="waitlist.left", entity="waitlist_entry", entity_id=entry.id)
            return
        else:
            raise Conflict(NOT_OFFERED)
    decline(actor=actor, entry_id=entry_id, token=token, now=now, status=WaitlistStatus.left.value)
