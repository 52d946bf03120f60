"""The outbox: notifications written inside the business transaction.

Services call `booking_event(session, booking=..., event=...)` (or `payment_event`, or
`enqueue` directly); the relay job (services/notifications.py, run by booking_app/jobs)
delivers the rows after commit. A rolled-back transaction leaves no row; the unique
`dedupe_key` makes every message at-most-once per key.

Rows carry a JSON snapshot of what the message needs (service name, times in UTC, money
in cents, the recipient's timezone), so the message describes the booking as it was when
the event happened; it is rendered in the recipient's locale when it is sent.

Reminders are outbox rows too: when a booking is confirmed or rescheduled one row per
(channel, offset) is queued with `next_attempt_at = start - offset`, keyed by
(booking, offset, sequence, start); a reschedule or cancellation cancels the old pending
ones in the same transaction. The relay also re-checks a reminder before sending it.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.integrations.sms import is_e164
from booking_app.models import Bookable, Booking, BookingStatus, Notification, NotificationStatus, User, utcnow
from booking_app.services.errors import InvalidInput

BOOKING_EVENTS = (
    "booking_confirmed",
    "booking_pending",
    "booking_rescheduled",
    "booking_cancelled",
    "booking_completed",
    "booking_no_show",
)
PAYMENT_EVENTS = ("payment_received", "payment_failed", "payment_refunded")
REMINDER = "reminder"

#: what each booking event tells whom: (customer email template, customer SMS?, provider template)
_EVENT_MESSAGES: dict[str, tuple[str | None, bool, str | None]] = {
    "booking_confirmed": ("booking_confirmed", True, "provider_new_booking"),
    "booking_pending": ("booking_pending", False, None),
    "booking_rescheduled": ("booking_rescheduled", True, "provider_booking_rescheduled"),
    "booking_cancelled": ("booking_cancelled", True, "provider_booking_cancelled"),
    "booking_completed": (None, False, None),
    "booking_no_show": (None, False, None),
}

#: reminder offsets are minutes before the start, at most this far ahead (60 days)
MAX_REMINDER_OFFSET_MINUTES = 60 * 24 * 60
#: reminders per booking a bookable may set
MAX_REMINDERS = 5

#: context keys that must not outlive delivery (scrubbed once the message is sent)
SECRET_CONTEXT_KEYS = ("token", "reset_url", "manage_url", "confirm_url")


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
    values = dict(channel=channel, to=to, template=template, locale=locale, context=_jsonable(context),
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
                 context=r["context"] if json_safe else _jsonable(r["context"]), dedupe_key=r["dedupe_key"],
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
    # the booking page of the UI (booking_app/ui/routes.py: CONFIRMATION = "/booking")
    return f"{get_settings().public_url.rstrip('/')}/booking?id={booking.id}"


def guest_manage_url(booking: Booking) -> str:
    """The signed link a guest (no account) uses to view, move or cancel the booking."""
    from booking_app.services.bookings import booking_manage_token  # bookings imports this module

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
        "start": _jsonable(booking.start_at),
        "end": _jsonable(booking.end_at),
        "quantity": booking.quantity,
        "price_cents": booking.price_cents,
        "currency": booking.currency,
        "refund_cents": booking.refund_due_cents,
        "status": booking.status,
        "sequence": booking.sequence,
        "hold_expires_at": _jsonable(booking.hold_expires_at),
        "cancel_reason": booking.cancel_reason or "",
        "customer_name": customer.name,
        "customer_email": customer.email or "",
        "provider_name": provider.name if provider else "",
        "url": booking_url(booking),
    }
    if booking.user_id is None and booking.id is not None:
        snapshot["manage_url"] = guest_manage_url(booking)
    return snapshot


def _jsonable(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a notification context")
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, dict):
        return {str(k): (v if isinstance(v, _PLAIN) else _jsonable(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


_PLAIN = (str, int, float, type(None))  # (bool is an int)


def _personal(base: dict[str, Any], recipient: Recipient, **more: Any) -> dict[str, Any]:
    return {**base, "name": recipient.name, "timezone": recipient.timezone, **more}


# --- reminders ---------------------------------------------------------------------------------

def parse_offsets(value: str | None) -> list[int]:
    """'1440, 60' → [1440, 60] (valid minutes only, largest first)."""
    out = set()
    for part in (value or "").split(","):
        part = part.strip()
        if part.isascii() and part.isdigit() and 1 <= int(part) <= MAX_REMINDER_OFFSET_MINUTES:
            out.add(int(part))
    return sorted(out, reverse=True)


def normalize_reminder_offsets(value: Any) -> str:
    """Validate a bookable's reminder offsets for the catalog ('1440,60' or [1440, 60];
    None / '' / [] = the defaults). Returns the stored form (distinct, largest first; ''
    = the defaults); InvalidInput for anything else, whatever its type or size."""
    from booking_app.i18n import N_
    from booking_app.services.errors import InvalidInput

    too_many = InvalidInput(N_("At most {max} reminders per booking."), field="reminder_offsets",
                            max=MAX_REMINDERS)
    bad = InvalidInput(N_("Reminder times must be whole minutes between {min} and {max}."),
                       field="reminder_offsets", min=1, max=MAX_REMINDER_OFFSET_MINUTES)
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, str):
        if len(value) > 200:
            raise bad
        parts: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise bad
    if len(parts) > 10 * MAX_REMINDERS:  # no work on huge inputs (repeats count once below)
        raise too_many
    minutes = []
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, (int, str)):
            raise bad
        text = str(part).strip()
        if len(text) > 20 or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_REMINDER_OFFSET_MINUTES:
            raise bad  # (isascii: "²" passes isdigit() but not int())
        minutes.append(int(text))
    if len(set(minutes)) > MAX_REMINDERS:
        raise too_many
    return ",".join(str(m) for m in sorted(set(minutes), reverse=True))


_HOURS_RE = re.compile(r"^(\d{1,5}(\.\d{0,3})?|\.\d{1,3})$")


def reminder_offsets_from_hours(text: str | None) -> list[int]:
    """Reminder times typed as hours before the start → minutes: "24, 2" → [1440, 120]
    ("0.5" = 30; commas, semicolons or spaces between; "" = [] = the defaults). InvalidInput
    on `reminder_offsets` for anything else; normalize_reminder_offsets checks the rest."""
    parts = [p for p in re.split(r"[,;\u060c\s]+", (text or "").strip()) if p]
    bad = InvalidInput(N_("Enter hours before the start, separated by commas (e.g. 24, 2), each at most {max}."),
                       field="reminder_offsets", max=MAX_REMINDER_OFFSET_MINUTES // 60)
    if len(parts) > 50:
        raise bad
    minutes = []
    for part in parts:
        if not _HOURS_RE.match(part):
            raise bad
        value = int((Decimal(part) * 60).to_integral_value())
        if not 1 <= value <= MAX_REMINDER_OFFSET_MINUTES:
            raise bad
        minutes.append(value)
    return minutes


def reminder_hours_text(minutes: list[int]) -> str:
    """[1440, 120] → "24, 2" (15 minutes → "0.25"; reminder_offsets_from_hours reads it back)."""
    out = []
    for m in minutes:
        hours = (Decimal(int(m)) / 60).quantize(Decimal("0.01"))
        out.append(str(hours.to_integral_value()) if hours == hours.to_integral_value() else str(hours.normalize()))
    return ", ".join(out)


def reminder_offsets(bookable: Bookable | None) -> list[int]:
    """The bookable's own offsets if it has any, else REMINDER defaults from settings."""
    own = parse_offsets(bookable.reminder_offsets) if bookable and bookable.reminder_offsets else []
    if own:
        return own
    return [m for m in get_settings().reminder_offsets if 1 <= m <= MAX_REMINDER_OFFSET_MINUTES]


def reminder_key(channel: str, booking: Booking, offset: int) -> str:
    start = int(booking.start_at.timestamp())
    return f"{channel}:{REMINDER}:{booking.id}:{offset}:{booking.sequence}:{start}"


def expected_reminders(session: Session, booking: Booking, bookable: Bookable | None, *,
                       now: dt.datetime, customer: Recipient | None = None,
                       base: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The reminder rows a confirmed booking should have that are still in the future.
    `customer`, `base` (its snapshot): when the caller has them already."""
    if booking.status != BookingStatus.confirmed.value or booking.start_at <= now:
        return []
    customer = customer or customer_of(session, booking, bookable)
    channels = [("email", customer.email)] if customer.wants_email else []
    if customer.wants_sms:
        channels.append(("sms", customer.phone))
    if not channels:
        return []
    base = base if base is not None else booking_snapshot(session, booking, bookable, customer=customer)
    rows = []
    for offset in reminder_offsets(bookable):
        due = booking.start_at - dt.timedelta(minutes=offset)
        if due <= now:  # its time has passed: a late "24 hours before" would be wrong
            continue
        for channel, to in channels:
            rows.append({
                "channel": channel, "to": to, "template": REMINDER, "locale": customer.locale,
                "context": _personal(base, customer, offset_minutes=offset),  # (JSON-safe parts)
                "dedupe_key": reminder_key(channel, booking, offset), "booking_id": booking.id,
                "user_id": customer.user_id, "next_attempt_at": due,
            })
    return rows


def cancel_pending_reminders(session: Session, booking_id: int, *, reason: str) -> int:
    result = session.exec(  # type: ignore[call-overload]
        update(Notification)
        .where(Notification.booking_id == booking_id, Notification.template == REMINDER,
               Notification.status == NotificationStatus.pending.value)
        .values(status=NotificationStatus.cancelled.value, last_error=reason[:2000])
    )
    return result.rowcount or 0


def schedule_reminders(session: Session, booking: Booking, bookable: Bookable | None = None,
                       *, now: dt.datetime | None = None) -> int:
    """Queue the reminders of a confirmed booking (after cancelling outdated ones)."""
    bookable = bookable or session.get(Bookable, booking.bookable_id)
    return enqueue_many(session, expected_reminders(session, booking, bookable, now=now or utcnow()))


# --- events ----------------------------------------------------------------------------------

def booking_event(session: Session, *, booking: Booking, event: str, extra: dict[str, Any] | None = None,
                  bookable: Bookable | None = None, customer: User | None = None, provider: User | None = None) -> None:
    """Queue the messages of a booking state change, in the caller's transaction.

    Customer: email (if they want email) and a short SMS (if opted in with a phone).
    Provider: a "new booking / moved / cancelled" notice. Reminders follow the booking:
    scheduled on confirmation, re-scheduled on reschedule, dropped on cancellation.
    `extra` may carry `previous_start` (reschedule, ISO), `reason`, `refund_due_cents`,
    `actor_id` (the provider then gets no notice of their own change). Guests get their
    signed manage link (scrubbed from the row once sent). `bookable`, `customer` (the
    booking's user) and `provider` (user): when the caller has them at hand.
    """
    if booking.id is None:
        session.flush()
    if event in ("booking_rescheduled", "booking_cancelled", "booking_completed", "booking_no_show"):
        assert booking.id is not None
        cancel_pending_reminders(session, booking.id, reason=f"superseded: {event}")
    insert_values(session, booking_event_values(session, booking=booking, event=event, extra=extra,
                                                bookable=bookable, customer=customer, provider=provider))


def booking_event_values(session: Session, *, booking: Booking, event: str, extra: dict[str, Any] | None = None,
                         bookable: Bookable | None = None, customer: User | None = None,
                         provider: User | None = None) -> list[dict[str, Any]]:
    """The outbox rows (`notification_values`) of a booking event, without writing them or
    touching older rows: `booking_event` minus its writes, for a new booking whose caller
    batches its inserts (then nothing is pending for it yet)."""
    if event not in BOOKING_EVENTS:
        raise ValueError(f"unknown booking event {event}")
    assert booking.id is not None
    extra = dict(extra or {})
    if bookable is None or bookable.id != booking.bookable_id:
        bookable = session.get(Bookable, booking.bookable_id)
    customer_r = customer_of(session, booking, bookable, customer)
    customer_template, with_sms, provider_template = _EVENT_MESSAGES[event]
    base: dict[str, Any] | None = None
    provider_r: Recipient | None = None
    if customer_template is not None or event in ("booking_confirmed", "booking_rescheduled"):
        provider_r = provider_of(session, booking, provider)
        base = booking_snapshot(session, booking, bookable, customer=customer_r, provider=provider_r)
    rows: list[dict[str, Any]] = []
    if event in ("booking_confirmed", "booking_rescheduled"):
        rows.extend(expected_reminders(session, booking, bookable, now=utcnow(), customer=customer_r, base=base))
    if customer_template is None or base is None:
        return notification_values(rows, json_safe=True)
    actor_id = extra.pop("actor_id", None)
    base.update(_jsonable(extra))
    key = f"{event}:{booking.id}:{booking.version}"
    if customer_r.wants_email:
        rows.append(dict(channel="email", to=customer_r.email or "", template=customer_template,
                         locale=customer_r.locale, context=_personal(base, customer_r), dedupe_key=f"email:{key}",
                         booking_id=booking.id, user_id=customer_r.user_id))
    if with_sms and customer_r.wants_sms:
        rows.append(dict(channel="sms", to=customer_r.phone or "", template=customer_template,
                         locale=customer_r.locale, context=_personal(base, customer_r), dedupe_key=f"sms:{key}",
                         booking_id=booking.id, user_id=customer_r.user_id))
    provider_base = {k: v for k, v in base.items() if k != "manage_url"}
    if (provider_template and provider_r is not None and provider_r.wants_email
            and (actor_id is None or actor_id != provider_r.user_id)):
        rows.append(dict(channel="email", to=provider_r.email or "", template=provider_template,
                         locale=provider_r.locale, context=_personal(provider_base, provider_r),
                         dedupe_key=f"email:provider:{key}", booking_id=booking.id, user_id=provider_r.user_id))
    return notification_values(rows, json_safe=True)  # (a snapshot, `extra` and names: JSON-safe)


def payment_event(session: Session, *, booking: Booking, event: str, amount_cents: int, currency: str,
                  ref: str | int) -> None:
    """Queue the customer's email about a payment (received, failed, refunded).

    `ref` identifies the payment or refund, so each one is told once.
    """
    if event not in PAYMENT_EVENTS:
        raise ValueError(f"unknown payment event {event}")
    if booking.id is None:
        session.flush()
    bookable = session.get(Bookable, booking.bookable_id)
    customer = customer_of(session, booking, bookable)
    if not customer.wants_email:
        return
    context = _personal(booking_snapshot(session, booking, bookable), customer,
                        amount_cents=int(amount_cents), amount_currency=currency)
    enqueue(session, channel="email", to=customer.email or "", template=event, locale=customer.locale,
            context=context, dedupe_key=f"email:{event}:{booking.id}:{ref}", booking_id=booking.id,
            user_id=customer.user_id)
