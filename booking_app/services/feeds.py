"""Calendar feeds: secret per-user `.ics` URLs of one's bookings (or a provider's schedule).

Only a token's hash is stored; `feed_allowed` is the one rule of who may have which feed,
checked on creation, on every read, and when a user's role changes (accounts).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_, translate
from booking_app.integrations import ics
from booking_app.models import Bookable, Booking, BookingStatus, CalendarFeedToken, User, utcnow
from booking_app.models.notification import FeedScope
from booking_app.services import audit, booking_questions, outbox
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, InvalidInput, NotFound
from booking_app.services.messages import REFERENCE_LINE

FEED_LOOKBACK = dt.timedelta(days=30)
FEED_MAX_EVENTS = 2000
FEED_NAMES = {FeedScope.bookings.value: N_("My bookings"), FeedScope.schedule.value: N_("My schedule")}


@dataclasses.dataclass(frozen=True)
class FeedToken:
    id: int
    scope: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    token: str | None = None  # only right after creation
    url: str | None = None  # only right after creation


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def feed_url(token: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}/api/calendar/{token}.ics"


#: feed scopes that show other people's data (customer names): staff roles only
STAFF_FEED_ROLES = {FeedScope.schedule.value: frozenset({"provider", "admin"})}


def feed_allowed(scope: str, role: str) -> bool:
    """May a user with `role` have (and read) a feed of `scope`? The one rule, checked when a
    feed is created, on every read of it, and when a user's role changes."""
    allowed = STAFF_FEED_ROLES.get(scope)
    return allowed is None or role in allowed


def revoke_disallowed_feeds(s: Session, *, user_id: int, role: str, active: bool, actor_id: int | None,
                            reason: str) -> int:
    """Inside the caller's transaction (a role change, a deactivation): revoke the user's
    live feed tokens that `role` may no longer have, and every staff-scope one of a user who
    is no longer active; one audit event each. Returns how many were revoked."""
    rows = s.exec(select(CalendarFeedToken).where(CalendarFeedToken.user_id == user_id,
                                                  CalendarFeedToken.revoked_at.is_(None))).all()  # type: ignore[union-attr]
    now = utcnow()
    revoked = 0
    for row in rows:
        if feed_allowed(row.scope, role) and (active or row.scope not in STAFF_FEED_ROLES):
            continue
        row.revoked_at = now
        s.add(row)
        audit.record(s, actor_id=actor_id, action="calendar_feed.revoked", entity="calendar_feed", entity_id=row.id,
                     data={"scope": row.scope, "reason": reason})
        revoked += 1
    return revoked


def create_feed_token(*, actor: Actor, scope: str = FeedScope.bookings.value) -> FeedToken:
    """A new secret feed URL for the signed-in user (shown once; only its hash is kept)."""
    if actor.is_guest or actor.id is None:
        raise Forbidden()
    if scope not in {s.value for s in FeedScope}:
        raise InvalidInput(N_("Unknown calendar feed type."), field="scope")
    if not feed_allowed(scope, actor.role):
        raise Forbidden(N_("Only providers have a schedule feed."))
    token = secrets.token_urlsafe(32)
    with db.unit_of_work() as s:
        if s.get(User, actor.id) is None:
            raise NotFound()
        row = CalendarFeedToken(user_id=actor.id, scope=scope, token_hash=_hash_token(token))
        s.add(row)
        s.flush()
        audit.record(s, actor_id=actor.id, action="calendar_feed.created", entity="calendar_feed", entity_id=row.id,
                     data={"scope": scope})
        assert row.id is not None
        return FeedToken(id=row.id, scope=row.scope, created_at=row.created_at, revoked_at=None, token=token,
                         url=feed_url(token))


def list_feed_tokens(*, actor: Actor) -> list[FeedToken]:
    if actor.is_guest or actor.id is None:
        raise Forbidden()
    with db.read_session() as s:
        rows = s.exec(select(CalendarFeedToken).where(CalendarFeedToken.user_id == actor.id)
                      .order_by(CalendarFeedToken.id)).all()
        return [FeedToken(id=r.id, scope=r.scope, created_at=r.created_at, revoked_at=r.revoked_at) for r in rows]  # type: ignore[arg-type]


def revoke_feed_token(*, actor: Actor, token_id: int) -> FeedToken:
    """Revoke one of the user's feed URLs (admins may revoke anyone's). Idempotent."""
    if actor.is_guest or actor.id is None:
        raise Forbidden()
    with db.unit_of_work() as s:
        row = s.get(CalendarFeedToken, token_id)
        if row is None or (row.user_id != actor.id and not actor.is_admin):
            raise NotFound(N_("Calendar feed not found."))
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            s.add(row)
            audit.record(s, actor_id=actor.id, action="calendar_feed.revoked", entity="calendar_feed", entity_id=row.id)
        return FeedToken(id=row.id, scope=row.scope, created_at=row.created_at, revoked_at=row.revoked_at)  # type: ignore[arg-type]


def feed_ics(*, token: str, now: dt.datetime | None = None) -> bytes:
    """The `.ics` calendar behind a feed token: the user's bookings, or a provider's schedule."""
    if not token or len(token) > 128:
        raise NotFound(N_("Calendar feed not found."))
    now = now or utcnow()
    settings = get_settings()
    with db.read_session() as s:
        row = s.exec(select(CalendarFeedToken).where(CalendarFeedToken.token_hash == _hash_token(token))).first()
        if row is None or row.revoked_at is not None:
            raise NotFound(N_("Calendar feed not found."))
        user = s.get(User, row.user_id)
        # the owner's CURRENT role and state, on every read: a demoted or deactivated
        # user's schedule (customer names) is gone at once, whatever the token
        if user is None or not user.is_active or not feed_allowed(row.scope, user.role):
            raise NotFound(N_("Calendar feed not found."))
        owner = Booking.provider_id if row.scope == FeedScope.schedule.value else Booking.user_id
        query = (
            select(Booking, Bookable)
            .join(Bookable, Bookable.id == Booking.bookable_id)  # type: ignore[arg-type]
            .where(owner == user.id, Booking.end_at >= now - FEED_LOOKBACK,
                   Booking.status.in_([BookingStatus.pending.value, BookingStatus.confirmed.value,  # type: ignore[attr-defined]
                                       BookingStatus.completed.value]))
            .order_by(Booking.start_at).limit(FEED_MAX_EVENTS)
        )
        pairs = s.exec(query).all()
        customers: dict[int, User] = {}
        if row.scope == FeedScope.schedule.value:
            ids = {b.user_id for b, _ in pairs if b.user_id}
            if ids:
                customers = {u.id: u for u in s.exec(select(User).where(User.id.in_(ids))).all()}  # type: ignore[union-attr,misc]
    locale = user.locale
    events = []
    for booking, bookable in pairs:
        if row.scope == FeedScope.schedule.value:
            who = customers.get(booking.user_id) if booking.user_id else None
            name = (who.full_name or who.username) if who else (booking.guest_name or "")
            summary = translate(N_("{service}: {customer}"), locale, service=bookable.name, customer=name) if name else bookable.name
        else:
            summary = bookable.name
        events.append(ics.IcsEvent(
            uid=ics.booking_uid(booking.reference, settings.public_url),
            start=booking.start_at, end=booking.end_at, summary=summary, sequence=booking.sequence,
            status=ics.STATUS_TENTATIVE if booking.status == BookingStatus.pending.value else ics.STATUS_CONFIRMED,
            description=booking_questions.with_answers(
                translate(REFERENCE_LINE.msgid, locale, reference=booking.reference), booking.answers, locale),
            location=bookable.location, url=outbox.booking_url(booking),
        ))
    name = f"{settings.app_name} · {translate(FEED_NAMES[row.scope], locale)}"
    return ics.feed(events, name=name, stamp=now)
