"""The outbox table: notification rows written inside the business transaction.

`enqueue` (and the batched `notification_values`/`insert_values`) add rows; recipients and
the booking snapshot say who hears and what a message may show. What each booking or
payment event queues is in services/notify.py, reminders in services/reminders.py; the
relay (services/relay.py) delivers the rows after commit, so a rolled-back transaction
sends nothing. The unique `dedupe_key` keeps every message to one row.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from booking_app.config import get_settings
from booking_app.integrations.sms import is_e164
from booking_app.models import Bookable, Booking, Notification, NotificationStatus, User, utcnow
from booking_app.services.manage_links import booking_manage_token

#: context keys that must not outlive delivery (scrubbed once the message is sent)
SECRET_CONTEXT_KEYS = ("token", "reset_url", "manage_url", "confirm_url", "approval_url", "pay_url")


def enqueue(
    session: Session,
    *,
    channel: str,
    to: str,
    template: str,
    locale: str,
    context: dict[str, Any],
    dedupe_key: str,
    booking_id: int | None = None,
    user_id: int | None = None,
    next_attempt_at: dt.datetime | None = None,
) -> Notification | None:
    """Add one outbox row unless one with the same dedupe key exists already.

    `INSERT … ON CONFLICT (dedupe_key) DO NOTHING`: a duplicate never aborts the caller's
    transaction, even when another transaction inserts the same key at the same moment.
    Returns the new row, or None for a duplicate.
    """
    now = utcnow()
    values = dict(channel=channel, to=to, template=template, locale=locale, context=jsonable(context),
                  dedupe_key=dedupe_key, booking_id=booking_id, user_id=user_id,
                  status=NotificationStatus.pending.value, attempts=0, next_attempt_at=next_attempt_at or now,
                  created_at=now)
    new_id = session.exec(  # type: ignore[call-overload]
        dialect_insert(session)(Notification).values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Notification.id)
    ).scalar()
    return session.get(Notification, new_id) if new_id is not None else None


def enqueue_many(session: Session, rows: list[dict[str, Any]]) -> int:
    """`enqueue` for several rows in one `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING`
    (one round trip, no read-back). Each row has enqueue's keyword arguments. Returns how
    many were new."""
    return insert_values(session, notification_values(rows))


def notification_values(rows: list[dict[str, Any]], *, json_safe: bool = False) -> list[dict[str, Any]]:
    """enqueue's keyword arguments → complete column values of new outbox rows (JSON-safe
    context; `json_safe`: the contexts are already). Callers that batch their writes (the
    booking hot path) insert these themselves with `ON CONFLICT (dedupe_key) DO NOTHING`."""
    now = utcnow()
    return [dict(channel=r["channel"], to=r["to"], template=r["template"], locale=r["locale"],
                 context=r["context"] if json_safe else jsonable(r["context"]), dedupe_key=r["dedupe_key"],
                 booking_id=r.get("booking_id"),
                 user_id=r.get("user_id"), status=NotificationStatus.pending.value, attempts=0,
                 next_attempt_at=r.get("next_attempt_at") or now, created_at=now) for r in rows]


def insert_values(session: Session, values: list[dict[str, Any]]) -> int:
    if not values:
        return 0
    stmt = (dialect_insert(session)(Notification.__table__)  # type: ignore[attr-defined]
            .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Notification.__table__.c.id))  # type: ignore[attr-defined]
    session.flush()  # like an ORM statement would (rows it may refer to are written first)
    # executemany: SQLAlchemy sends one multi-row INSERT ("insertmanyvalues") from a cached statement
    return len(session.connection().execute(stmt, values).all())


def dialect_insert(session: Session):
    """The dialect's `insert` (with `on_conflict_do_nothing`) for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# --- recipients and snapshots ----------------------------------------------------------------

class Recipient:
    """Where and how one person hears about a booking."""

    def __init__(self, *, user: User | None, email: str | None, phone: str | None, locale: str,
                 timezone: str, name: str, wants_email: bool, wants_sms: bool) -> None:
        self.user = user
        self.email = email
        self.phone = phone
        self.locale = locale
        self.timezone = timezone
        self.name = name
        self.wants_email = bool(email) and wants_email
        self.wants_sms = wants_sms and is_e164(phone)

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user else None


def customer_of(session: Session, booking: Booking, bookable: Bookable | None, user: User | None = None) -> Recipient:
    """`user`: the booking's user when the caller has it at hand (saves a lookup)."""
    if user is None or user.id != booking.user_id:
        user = session.get(User, booking.user_id) if booking.user_id else None
    tz = bookable.timezone if bookable else get_settings().default_timezone
    if user is not None:
        active = bool(user.is_active)
        return Recipient(user=user, email=user.email, phone=user.phone, locale=user.locale or booking.locale,
                         timezone=user.timezone or tz, name=user.full_name or user.username,
                         wants_email=active and user.notify_email, wants_sms=active and user.notify_sms)
    # a guest: email only (no SMS opt-in), shown in the bookable's timezone
    return Recipient(user=None, email=booking.guest_email, phone=None, locale=booking.locale or "en",
                     timezone=tz, name=booking.guest_name or "", wants_email=True, wants_sms=False)


def provider_of(session: Session, booking: Booking, user: User | None = None) -> Recipient | None:
    if user is None or user.id != booking.provider_id:
        user = session.get(User, booking.provider_id) if booking.provider_id else None
    if user is None:
        return None
    return Recipient(user=user, email=user.email, phone=user.phone, locale=user.locale, timezone=user.timezone,
                     name=user.full_name or user.username, wants_email=bool(user.is_active and user.notify_email),
                     wants_sms=False)


def booking_url(booking: Booking) -> str:
    # the booking page of the UI (booking_app/ui/paths.py: CONFIRMATION = "/booking")
    return f"{get_settings().public_url.rstrip('/')}/booking?id={booking.id}"


def guest_manage_url(booking: Booking) -> str:
    """The signed link a guest (no account) uses to view, move or cancel the booking."""
    token = booking_manage_token(int(booking.id), getattr(booking, "manage_link_version", 0) or 0)  # type: ignore[arg-type]
    return f"{booking_url(booking)}&token={token}"


def booking_snapshot(session: Session, booking: Booking, bookable: Bookable | None = None, *,
                     customer: Recipient | None = None, provider: Recipient | None = None) -> dict[str, Any]:
    """What every message about this booking may show, JSON-safe, times in UTC."""
    bookable = bookable or session.get(Bookable, booking.bookable_id)
    customer = customer or customer_of(session, booking, bookable)
    provider = provider or provider_of(session, booking)
    snapshot: dict[str, Any] = {
        "booking_id": booking.id,
        "reference": booking.reference,
        "service": bookable.name if bookable else "",
        "kind": bookable.kind if bookable else "",
        "location": bookable.location if bookable else "",
        "service_timezone": bookable.timezone if bookable else "UTC",
        "start": jsonable(booking.start_at),
        "end": jsonable(booking.end_at),
        "quantity": booking.quantity,
        "price_cents": booking.price_cents,
        "discount_cents": getattr(booking, "discount_cents", 0) or 0,  # discount codes (issue 26)
        "currency": booking.currency,
        "refund_cents": booking.refund_due_cents,
        "balance_due_cents": getattr(booking, "balance_due_cents", 0) or 0,  # deposits (issue 26)
        "status": booking.status,
        "sequence": booking.sequence,
        "hold_expires_at": jsonable(booking.hold_expires_at),
        "cancel_reason": booking.cancel_reason or "",
        "customer_name": customer.name,
        "customer_email": customer.email or "",
        "provider_name": provider.name if provider else "",
        "url": booking_url(booking),
    }
    if booking.user_id is None and booking.id is not None:
        snapshot["manage_url"] = guest_manage_url(booking)
    if getattr(booking, "answers", None):  # (booking questions: services/booking_questions.py)
        snapshot["answers"] = booking.answers
    return snapshot


def jsonable(value: Any) -> Any:
    """`value` with aware datetimes as UTC ISO text (dicts and lists walked): a JSON context."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a notification context")
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, dict):
        return {str(k): (v if isinstance(v, _PLAIN) else jsonable(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


_PLAIN = (str, int, float, type(None))  # (bool is an int)


def personal(base: dict[str, Any], recipient: Recipient, **more: Any) -> dict[str, Any]:
    """A booking snapshot made one recipient's message context (their name and timezone)."""
    return {**base, "name": recipient.name, "timezone": recipient.timezone, **more}
