"""Notification Service: message templates, the outbox relay, the reminders sweep,
calendar feeds, and the admin's outbox view.

Messages are rendered when they are sent, in the recipient's locale (`Notification.locale`),
with dates in the recipient's timezone and money formatted by Babel. Every user-visible
string below is a msgid marked with `N_` and translated with `translate()`.

Delivery (`relay_once`): claim due rows in a short transaction (PostgreSQL: `FOR UPDATE SKIP
LOCKED`; SQLite: one writer at a time + a conditional UPDATE), mark them `sending` with a
lease (`claimed_until`), commit, send, then mark each `sent`, or back to `pending` with
exponential backoff, or `failed` after OUTBOX_MAX_ATTEMPTS. A crash mid-send leaves the row
`sending`; once its lease runs out another relay claims it again (at-least-once), and the
unique dedupe key keeps every message to one row. The database going away mid-batch (a
restart, a failover) pauses the batch until it is back, within the lease: a message sent just
before is recorded then, not sent again, and the rest of the batch goes on at once.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import html
import logging
import random
import secrets
import time
import zoneinfo
from decimal import Decimal
from typing import Any

from babel.dates import format_date, format_time, format_timedelta, get_timezone_name
from babel.numbers import format_currency, get_currency_precision
from sqlalchemy import and_, exists, func, or_, update
from sqlmodel import Session, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_, Np_, babel_locale, text_direction, translate
from booking_app.integrations import ics
from booking_app.integrations.email import (
    Attachment,
    DeliveryError,
    EmailMessage,
    EmailSender,
    email_sender_from_settings,
)
from booking_app.integrations.sms import SmsMessage, SmsSender, is_e164, sms_sender_from_settings
from booking_app.models import (
    Bookable,
    Booking,
    BookingStatus,
    CalendarFeedToken,
    Notification,
    NotificationStatus,
    User,
    utcnow,
)
from booking_app.models.notification import FeedScope
from booking_app.services import audit, outbox, validation
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, Forbidden, InvalidInput, NotFound

log = logging.getLogger(__name__)

# --- templates -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Line:
    msgid: str
    #: shown only when this parameter is non-empty
    needs: str | None = None


@dataclasses.dataclass(frozen=True)
class Template:
    subject: str
    lines: tuple[Line, ...]
    sms: str | None = None
    action: str | None = None  # label of the link back to the booking (or `action_url`)
    action_url: str = "url"  # context key of the link; a guest's `manage_url` wins over `url`
    ics_method: str | None = None
    greet: bool = True


_WHEN = Line(N_("When: {when}"))
_WHERE = Line(N_("Where: {location}"), needs="location")
_SEATS = Line(N_("Places: {quantity}"), needs="places")
_PRICE = Line(N_("Price: {price}"), needs="price")
_REF = Line(N_("Booking reference: {reference}"))

TEMPLATES: dict[str, Template] = {
    "booking_confirmed": Template(
        subject=N_("Booking confirmed: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} is confirmed.")), _WHEN, _WHERE, _SEATS, _PRICE, _REF,
               Line(N_("The attached calendar file adds it to your calendar."))),
        sms=N_("Booking {reference} confirmed: {service}, {short_when}."),
        action=N_("View your booking"), ics_method=ics.METHOD_REQUEST,
    ),
    "booking_pending": Template(
        subject=N_("Complete your payment: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} is reserved but not paid yet.")),
               Line(N_("Please complete the payment by {hold_until}, or the place is released."), needs="hold_until"),
               _WHEN, _WHERE, _SEATS, _PRICE, _REF),
        action=N_("Complete the payment"),
    ),
    "booking_rescheduled": Template(
        subject=N_("Booking moved: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} has been moved.")), Line(N_("New time: {when}")),
               Line(N_("Previous time: {old_when}"), needs="old_when"), _WHERE, _SEATS, _REF),
        sms=N_("Booking {reference} moved: {service}, now {short_when}."),
        action=N_("View your booking"), ics_method=ics.METHOD_REQUEST,
    ),
    "booking_cancelled": Template(
        subject=N_("Booking cancelled: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} on {when} has been cancelled.")),
               Line(N_("Reason: {reason}"), needs="reason"),
               Line(N_("A refund of {refund} is on its way to you."), needs="refund"), _REF),
        sms=N_("Booking {reference} for {service} on {short_when} is cancelled."),
        action=N_("View your booking"), ics_method=ics.METHOD_CANCEL,
    ),
    "reminder": Template(
        subject=N_("Reminder: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} starts in {starts_in}.")), _WHEN, _WHERE, _SEATS, _REF),
        sms=N_("Reminder: {service} at {short_when} (booking {reference})."),
        action=N_("View your booking"),
    ),
    "payment_received": Template(
        subject=N_("Payment received for booking {reference}"),
        lines=(Line(N_("We received your payment of {amount} for {service} on {when}.")), _REF),
        action=N_("View your booking"),
    ),
    "payment_failed": Template(
        subject=N_("Payment failed for booking {reference}"),
        lines=(Line(N_("Your payment of {amount} for {service} on {when} did not go through.")),
               Line(N_("Please try again by {hold_until}, or the place is released."), needs="hold_until"), _REF),
        action=N_("Try again"),
    ),
    "payment_refunded": Template(
        subject=N_("Refund for booking {reference}"),
        lines=(Line(N_("We refunded {amount} for {service} on {when}.")),
               Line(N_("It can take a few days to appear on your statement.")), _REF),
        action=N_("View your booking"),
    ),
    # a payment that arrived after the hold expired and the place was resold (services/payments.py)
    "payment_refunded_unavailable": Template(
        subject=N_("Your payment for {service} was refunded"),
        lines=(Line(N_("Your payment of {amount} arrived after the reservation of {service} on {when} had "
                       "expired, and the place had been taken in the meantime.")),
               Line(N_("We refunded the full amount. It can take a few days to appear on your statement.")), _REF),
        action=N_("View your booking"),
    ),
    "password_reset": Template(
        subject=N_("Reset your password"),
        lines=(Line(N_("Someone asked to reset the password of your account {username}.")),
               Line(Np_("Use the link below within {minutes} minute to choose a new password.",
                        "Use the link below within {minutes} minutes to choose a new password.", "minutes")),
               Line(N_("If it was not you, ignore this email: your password stays the same."))),
        action=N_("Choose a new password"), action_url="reset_url",
    ),
    # guests (issue 20): the email-address confirmation of a booking request, a re-issued manage link
    "guest_booking_request": Template(
        subject=N_("Confirm your booking: {service} on {date}"),
        lines=(Line(N_("Someone asked to book {service} with this email address.")), _WHEN, _WHERE, _SEATS,
               Line(Np_("Open the link below within {minutes} minute to book. Nothing is reserved until then.",
                        "Open the link below within {minutes} minutes to book. Nothing is reserved until then.",
                        "minutes")),
               Line(N_("If it was not you, ignore this email: nothing will be booked."))),
        action=N_("Confirm and book"), action_url="confirm_url",
    ),
    "guest_manage_link": Template(
        subject=N_("Your new link for booking {reference}"),
        lines=(Line(N_("Here is a new link to view, change or cancel your booking for {service}.")), _WHEN, _REF,
               Line(N_("Earlier links to this booking no longer work."))),
        action=N_("View your booking"), action_url="manage_url",
    ),
    "provider_new_booking": Template(
        subject=N_("New booking: {service} on {date}"),
        lines=(Line(N_("{customer} booked {service}.")), _WHEN, _SEATS, _PRICE, _REF),
        action=N_("Open the booking"), ics_method=ics.METHOD_REQUEST,
    ),
    "provider_booking_rescheduled": Template(
        subject=N_("Booking moved: {service} on {date}"),
        lines=(Line(N_("The booking of {customer} for {service} has been moved.")), Line(N_("New time: {when}")),
               Line(N_("Previous time: {old_when}"), needs="old_when"), _SEATS, _REF),
        action=N_("Open the booking"), ics_method=ics.METHOD_REQUEST,
    ),
    "provider_booking_cancelled": Template(
        subject=N_("Booking cancelled: {service} on {date}"),
        lines=(Line(N_("The booking of {customer} for {service} on {when} has been cancelled.")),
               Line(N_("Reason: {reason}"), needs="reason"), _SEATS, _REF),
        action=N_("Open the booking"), ics_method=ics.METHOD_CANCEL,
    ),
}

GREETING = N_("Hello {name},")
GREETING_ANONYMOUS = N_("Hello,")
FOOTER = N_("This message was sent by {app}.")
WHEN_SAME_DAY = N_("{date}, {start}–{end} ({timezone})")
WHEN_SPANNING = N_("{start_date}, {start} – {end_date}, {end} ({timezone})")


@dataclasses.dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    ics: bytes | None
    ics_method: str | None


# --- formatting (Babel) ----------------------------------------------------------------------------

def _tz(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or get_settings().default_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _parse_dt(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def format_money(cents: int, currency: str, locale: str) -> str:
    """Integer minor units → '€12.50' / '12,50 €' (the currency's own number of decimals)."""
    digits = get_currency_precision(currency)
    amount = Decimal(int(cents)).scaleb(-digits)
    return format_currency(amount, currency, locale=babel_locale(locale))


def format_when(start: dt.datetime, end: dt.datetime | None, tz_name: str, locale: str) -> str:
    """'Sunday, March 29, 2026, 10:00 AM–11:00 AM (Central European Summer Time)' in `locale`."""
    loc = babel_locale(locale)
    tz = _tz(tz_name)
    s = start.astimezone(tz)
    e = (end or start).astimezone(tz)
    tzname = get_timezone_name(s, width="long", locale=loc)
    if s.date() == e.date():
        return translate(WHEN_SAME_DAY, locale, date=format_date(s, "full", locale=loc),
                         start=format_time(s, "short", locale=loc), end=format_time(e, "short", locale=loc),
                         timezone=tzname)
    return translate(WHEN_SPANNING, locale, start_date=format_date(s, "full", locale=loc),
                     start=format_time(s, "short", locale=loc), end_date=format_date(e, "full", locale=loc),
                     end=format_time(e, "short", locale=loc), timezone=tzname)


#: machine reasons of a cancellation (bookings.cancel_reason) → what the recipient reads
REASONS = {
    "hold_expired": N_("The reservation expired before the payment was completed."),
    "cancelled_by_customer": N_("Cancelled by the customer."),
    "cancelled_by_provider": N_("Cancelled by the provider."),
}


def _reason(value: Any, locale: str) -> str:
    if not value:
        return ""
    value = str(value)
    return translate(REASONS[value], locale) if value in REASONS else value


def _params(context: dict[str, Any], locale: str, now: dt.datetime) -> dict[str, Any]:
    loc = babel_locale(locale)
    tz_name = context.get("timezone") or context.get("service_timezone") or "UTC"
    tz = _tz(tz_name)
    start = _parse_dt(context.get("start"))
    end = _parse_dt(context.get("end"))
    params: dict[str, Any] = {k: v for k, v in context.items() if isinstance(v, (str, int))}
    params.update(
        app=get_settings().app_name,
        name=context.get("name") or "",
        service=context.get("service") or "",
        reference=context.get("reference") or "",
        location=context.get("location") or "",
        customer=context.get("customer_name") or context.get("customer_email") or "",
        username=context.get("username") or "",
        minutes=context.get("expires_minutes") or "",
        reason=_reason(context.get("reason") or context.get("cancel_reason"), locale),
    )
    quantity = int(context.get("quantity") or 1)
    params["quantity"] = quantity
    params["places"] = quantity if quantity > 1 else ""
    if start is not None:
        local = start.astimezone(tz)
        params["when"] = format_when(start, end, tz_name, locale)
        params["date"] = format_date(local, "medium", locale=loc)
        params["short_when"] = f"{format_date(local, 'short', locale=loc)} {format_time(local, 'short', locale=loc)}"
        remaining = max(start - now, dt.timedelta(minutes=1))
        params["starts_in"] = format_timedelta(remaining, locale=loc)
    old_start = _parse_dt(context.get("old_start") or context.get("previous_start"))
    params["old_when"] = format_when(old_start, _parse_dt(context.get("old_end")), tz_name, locale) if old_start else ""
    currency = context.get("currency") or "USD"
    price = int(context.get("price_cents") or 0)
    params["price"] = format_money(price, currency, locale) if price > 0 else ""
    refund = int(context.get("refund_due_cents") or context.get("refund_cents") or 0)
    params["refund"] = format_money(refund, currency, locale) if refund > 0 else ""
    if context.get("amount_cents") is not None:
        params["amount"] = format_money(int(context["amount_cents"]), context.get("amount_currency") or currency, locale)
    hold = _parse_dt(context.get("hold_expires_at"))
    if hold is not None:
        h = hold.astimezone(tz)
        params["hold_until"] = (f"{format_date(h, 'medium', locale=loc)} {format_time(h, 'short', locale=loc)} "
                                f"({get_timezone_name(h, width='long', locale=loc)})")
    else:
        params["hold_until"] = ""
    return params


def _event_for(context: dict[str, Any], params: dict[str, Any], locale: str) -> ics.IcsEvent | None:
    start, end = _parse_dt(context.get("start")), _parse_dt(context.get("end"))
    reference = context.get("reference")
    if start is None or end is None or not reference:
        return None
    settings = get_settings()
    attendees = ()
    if context.get("customer_email"):
        attendees = (ics.Person(email=context["customer_email"], name=context.get("customer_name") or ""),)
    return ics.IcsEvent(
        uid=ics.booking_uid(reference, settings.public_url),
        start=start, end=end,
        summary=context.get("service") or reference,
        sequence=int(context.get("sequence") or 0),
        status=ics.STATUS_TENTATIVE if context.get("status") == BookingStatus.pending.value else ics.STATUS_CONFIRMED,
        description=translate(_REF.msgid, locale, **params),
        location=context.get("location") or "",
        url=context.get("url"),
        organizer=ics.person_from_address(settings.email_from),
        attendees=attendees,
    )


def render_email(template: str, locale: str, context: dict[str, Any], *, now: dt.datetime | None = None) -> RenderedEmail:
    spec = TEMPLATES.get(template)
    if spec is None:
        raise ValueError(f"unknown notification template {template!r}")
    now = now or utcnow()
    params = _params(context, locale, now)
    subject = translate(spec.subject, locale, **params)
    lines = []
    if spec.greet:
        lines.append(translate(GREETING, locale, **params) if params["name"] else translate(GREETING_ANONYMOUS, locale))
    for line in spec.lines:
        if line.needs and not params.get(line.needs):
            continue
        lines.append(translate(line.msgid, locale, **params))
    url = (context.get("manage_url") if spec.action_url == "url" else None) or context.get(spec.action_url) or ""
    action = translate(spec.action, locale) if spec.action and url else ""
    footer = translate(FOOTER, locale, **params)

    text_parts = list(lines)
    if action:
        text_parts.append(f"{action}: {url}")
    text_parts.append("-- \n" + footer)
    text = "\n\n".join(text_parts) + "\n"

    direction = text_direction(locale)
    align = "right" if direction == "rtl" else "left"
    body = "\n".join(f'<p style="margin:0 0 12px">{html.escape(line)}</p>' for line in lines)
    button = ""
    if action:
        button = (f'<p style="margin:20px 0"><a href="{html.escape(url, quote=True)}" '
                  'style="background:#2563eb;color:#ffffff;padding:10px 18px;border-radius:6px;'
                  f'text-decoration:none;display:inline-block">{html.escape(action)}</a></p>')
    page = (
        f'<!DOCTYPE html>\n<html lang="{html.escape(locale)}" dir="{direction}">\n'
        f'<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{html.escape(subject)}</title></head>\n"
        f'<body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;'
        f'line-height:1.5;text-align:{align};margin:0;padding:24px">\n'
        f'<div style="max-width:560px;margin:0 auto">\n{body}\n{button}\n'
        f'<hr style="border:none;border-top:1px solid #e5e7eb;margin:24px 0">'
        f'<p style="color:#6b7280;font-size:12px">{html.escape(footer)}</p>\n</div>\n</body>\n</html>\n'
    )
    ics_bytes = None
    if spec.ics_method:
        event = _event_for(context, params, locale)
        if event is not None:
            ics_bytes = ics.invitation(event, method=spec.ics_method, stamp=now)
    return RenderedEmail(subject=subject, text=text, html=page, ics=ics_bytes, ics_method=spec.ics_method if ics_bytes else None)


def render_sms(template: str, locale: str, context: dict[str, Any], *, now: dt.datetime | None = None) -> str:
    spec = TEMPLATES.get(template)
    if spec is None or spec.sms is None:
        raise ValueError(f"template {template!r} has no SMS text")
    return translate(spec.sms, locale, **_params(context, locale, now or utcnow()))


# --- the relay -----------------------------------------------------------------------------------

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
LEASE_SECONDS = 300.0
BATCH_SIZE = 20
#: how long the relay waits for the database to come back (a restart, a failover) before it
#: gives up on a batch; a message already handed to the transport keeps its lease meanwhile,
#: so waiting to record it, rather than sending it again later, is what keeps it to one send
DB_WAIT_SECONDS = 60.0


def backoff_delay(attempts: int, *, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> dt.timedelta:
    """base·2^(attempts-1), capped, with ±10% jitter so that retries of a burst spread out."""
    raw = min(cap, base * (2 ** max(0, attempts - 1)))
    return dt.timedelta(seconds=raw * random.uniform(0.9, 1.1))


@dataclasses.dataclass(frozen=True)
class ClaimedRow:
    id: int
    channel: str
    to: str
    template: str
    locale: str
    context: dict[str, Any]
    booking_id: int | None
    user_id: int | None
    attempts: int
    claimed_until: dt.datetime


@dataclasses.dataclass
class RelayStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0

    def add(self, other: "RelayStats") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _when_db_back(what: str, fn, *, deadline: float):
    """`fn()`, retried with a short backoff (0.1 s doubling to 2 s) while the database is
    unavailable, until the monotonic `deadline`; then the last error is raised."""
    delay, warned = 0.1, False
    while True:
        try:
            return fn()
        except db.UNAVAILABLE_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            if not warned:
                warned = True
                log.warning("outbox relay: %s waits for the database: %s: %s", what, type(exc).__name__,
                            (str(exc).strip().splitlines() or [""])[0][:200])
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _release_claim(lease: dt.datetime) -> int:
    """Hand back the rows of a claim whose commit went through although its answer was lost
    (the lease timestamp identifies them): nothing of them was sent."""
    with db.unit_of_work() as s:
        result = s.exec(  # type: ignore[call-overload]
            update(Notification)
            .where(Notification.status == NotificationStatus.sending.value, Notification.claimed_until == lease)
            .values(status=NotificationStatus.pending.value, claimed_until=None, attempts=Notification.attempts - 1)
        )
        return int(result.rowcount or 0)


def _due_condition(now: dt.datetime):
    return or_(
        and_(Notification.status == NotificationStatus.pending.value, Notification.next_attempt_at <= now),
        and_(Notification.status == NotificationStatus.sending.value, Notification.claimed_until < now),
    )


def claim_due(*, now: dt.datetime, limit: int = BATCH_SIZE, lease_seconds: float = LEASE_SECONDS) -> list[ClaimedRow]:
    """Claim up to `limit` due rows for this process (one short transaction). If the database
    goes away while the claim commits, the claim may have gone through unanswered: its rows
    are handed back once the database is back, instead of waiting out their lease."""
    lease = now + dt.timedelta(seconds=lease_seconds)
    committing = False
    try:
        with db.unit_of_work() as s:
            pick = (select(Notification.id).where(_due_condition(now))
                    .order_by(Notification.next_attempt_at, Notification.id).limit(limit))
            if db.is_postgres(s):
                # rows another relay has locked are skipped, not waited for
                pick = pick.with_for_update(skip_locked=True)
            ids = list(s.exec(pick).all())
            if not ids:
                return []
            # conditional: only rows that are still due are taken (SQLite's writer lock
            # serialises claims; on PostgreSQL the rows are locked by the SELECT above)
            result = s.exec(  # type: ignore[call-overload]
                update(Notification)
                .where(Notification.id.in_(ids), _due_condition(now))  # type: ignore[union-attr]
                .values(status=NotificationStatus.sending.value, claimed_until=lease, attempts=Notification.attempts + 1)
                .returning(Notification.id, Notification.channel, Notification.to, Notification.template,
                           Notification.locale, Notification.context, Notification.booking_id, Notification.user_id,
                           Notification.attempts)
            )
            rows = [ClaimedRow(id=r[0], channel=r[1], to=r[2], template=r[3], locale=r[4], context=dict(r[5] or {}),
                               booking_id=r[6], user_id=r[7], attempts=r[8], claimed_until=lease) for r in result.all()]
            committing = True  # (the unit of work commits as the block ends)
    except db.UNAVAILABLE_ERRORS:
        if committing:
            _when_db_back("handing back an unanswered claim", lambda: _release_claim(lease),
                          deadline=time.monotonic() + DB_WAIT_SECONDS)
        raise
    rows.sort(key=lambda r: r.id)
    return rows


def _finish(row: ClaimedRow, **values: Any) -> bool:
    """Record the outcome, unless our lease was lost (another relay owns the row now, or an
    earlier attempt whose answer was lost recorded it already)."""
    with db.unit_of_work() as s:
        result = s.exec(  # type: ignore[call-overload]
            update(Notification)
            .where(Notification.id == row.id, Notification.status == NotificationStatus.sending.value,
                   Notification.claimed_until == row.claimed_until)
            .values(claimed_until=None, **values)
        )
        return bool(result.rowcount)


def _reminder_still_wanted(rows: list[ClaimedRow], now: dt.datetime) -> dict[int, str | None]:
    """Reminder row id → None if it should go out, else why it is skipped."""
    reminders = [r for r in rows if r.template == outbox.REMINDER]
    if not reminders:
        return {}
    booking_ids = {r.booking_id for r in reminders if r.booking_id is not None}
    with db.read_session() as s:
        bookings = {b.id: b for b in s.exec(select(Booking).where(Booking.id.in_(booking_ids))).all()} if booking_ids else {}  # type: ignore[union-attr]
    out: dict[int, str | None] = {}
    for r in reminders:
        b = bookings.get(r.booking_id)
        start = _parse_dt(r.context.get("start"))
        if b is None:
            out[r.id] = "skipped: booking not found"
        elif b.status != BookingStatus.confirmed.value:
            out[r.id] = f"skipped: booking is {b.status}"
        elif start is None or b.start_at != start or b.sequence != int(r.context.get("sequence") or 0):
            out[r.id] = "skipped: booking was changed"
        elif b.start_at <= now:
            out[r.id] = "skipped: booking already started"
        else:
            out[r.id] = None
    return out


#: messages that go out whatever the recipient's notification settings are
TRANSACTIONAL_TEMPLATES = frozenset({"password_reset", "guest_booking_request", "guest_manage_link"})


def _follow_recipients(rows: list[ClaimedRow], skips: dict[int, str | None]) -> list[ClaimedRow]:
    """Deliver by the recipient's settings as they are now, not as they were when queued:
    current locale, timezone, address and phone; nothing for a channel they turned off."""
    user_ids = {r.user_id for r in rows if r.user_id is not None and r.template not in TRANSACTIONAL_TEMPLATES}
    if not user_ids:
        return rows
    with db.read_session() as s:
        users = {u.id: u for u in s.exec(select(User).where(User.id.in_(user_ids))).all()}  # type: ignore[union-attr]
    out = []
    for r in rows:
        user = users.get(r.user_id) if r.template not in TRANSACTIONAL_TEMPLATES else None
        if user is None or skips.get(r.id):
            out.append(r)
            continue
        if not user.is_active:
            skips[r.id] = "skipped: account disabled"
        elif r.channel == "email" and not user.notify_email:
            skips[r.id] = "skipped: email notifications turned off"
        elif r.channel == "sms" and not (user.notify_sms and is_e164(user.phone)):
            skips[r.id] = "skipped: text messages turned off"
        to = (user.phone if r.channel == "sms" else user.email) or r.to
        context = {**r.context, "timezone": user.timezone or r.context.get("timezone")}
        out.append(dataclasses.replace(r, to=to if r.to else r.to, locale=user.locale or r.locale, context=context))
    return out


def _deliver(row: ClaimedRow, *, now: dt.datetime, email_sender: EmailSender, sms_sender: SmsSender) -> tuple[str, str | None]:
    """Send one row. Returns (transport name, provider message id); raises DeliveryError."""
    if row.channel == "email":
        rendered = render_email(row.template, row.locale, row.context, now=now)
        attachments = ()
        if rendered.ics is not None:
            method = rendered.ics_method or ics.METHOD_REQUEST
            attachments = (Attachment(filename="cancel.ics" if method == ics.METHOD_CANCEL else "invite.ics",
                                      content=rendered.ics, content_type="text/calendar",
                                      params={"method": method}),)
        message = EmailMessage(to=row.to, subject=rendered.subject, text=rendered.text, html=rendered.html,
                               sender=get_settings().email_from, attachments=attachments,
                               headers={"X-Booking-Notification": str(row.id), "Auto-Submitted": "auto-generated",
                                        "Content-Language": row.locale})
        return email_sender.name, email_sender.send(message)
    if row.channel == "sms":
        if not is_e164(row.to):
            raise DeliveryError(f"not an E.164 phone number: {row.to!r}", transient=False)
        return sms_sender.name, sms_sender.send(SmsMessage(to=row.to, body=render_sms(row.template, row.locale, row.context, now=now)))
    raise DeliveryError(f"unknown channel {row.channel!r}", transient=False)


def _scrubbed(context: dict[str, Any]) -> dict[str, Any] | None:
    if not any(k in context for k in outbox.SECRET_CONTEXT_KEYS):
        return None
    return {k: v for k, v in context.items() if k not in outbox.SECRET_CONTEXT_KEYS}


def relay_batch(*, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, lease_seconds: float = LEASE_SECONDS,
                email_sender: EmailSender | None = None, sms_sender: SmsSender | None = None) -> RelayStats:
    """Claim one batch of due rows and deliver it. The database going away mid-batch pauses
    the batch (up to DB_WAIT_SECONDS, within the lease) rather than failing it: the rows stay
    ours, so none waits out its lease and none is sent twice once the database is back."""
    now = now or utcnow()
    settings = get_settings()
    stats = RelayStats()
    started = time.monotonic()
    rows = claim_due(now=now, limit=batch_size, lease_seconds=lease_seconds)
    stats.claimed = len(rows)
    if not rows:
        return stats
    email_sender = email_sender or email_sender_from_settings(settings)
    sms_sender = sms_sender or sms_sender_from_settings(settings)
    skips = _when_db_back("checking the batch", lambda: _reminder_still_wanted(rows, now),
                          deadline=_wait_deadline(started, lease_seconds))
    rows = _when_db_back("checking the batch", lambda: _follow_recipients(rows, skips),
                         deadline=_wait_deadline(started, lease_seconds))
    with contextlib.ExitStack() as stack:
        for sender in (email_sender, sms_sender):
            if hasattr(sender, "batch"):  # e.g. SMTP: one connection for the whole batch
                stack.enter_context(sender.batch())  # type: ignore[union-attr]
        _deliver_rows(rows, stats, now=now, started=started, lease_seconds=lease_seconds,
                      email_sender=email_sender, sms_sender=sms_sender, skips=skips,
                      max_attempts=settings.outbox_max_attempts)
    return stats


def _wait_deadline(started: float, lease_seconds: float) -> float:
    """Until when a database wait may last: DB_WAIT_SECONDS, and well within the lease."""
    return min(time.monotonic() + DB_WAIT_SECONDS, started + lease_seconds * 0.9)


def _deliver_rows(rows: list[ClaimedRow], stats: RelayStats, *, now: dt.datetime, started: float,
                  lease_seconds: float, email_sender: EmailSender, sms_sender: SmsSender,
                  skips: dict[int, str | None], max_attempts: int) -> None:
    """Send the claimed rows one by one, recording each outcome as it comes. Recording waits
    for the database (`_when_db_back`) so that a message sent just before it went away is
    recorded once it is back, and the rest of the batch goes on from there."""
    def record(row: ClaimedRow, **values: Any) -> bool:
        return _when_db_back(f"recording notification {row.id}", lambda: _finish(row, **values),
                             deadline=_wait_deadline(started, lease_seconds))

    for index, row in enumerate(rows):
        if time.monotonic() - started > lease_seconds * 0.8:
            # running out of lease: hand the rest back instead of risking a double send
            for rest in rows[index:]:
                if record(rest, status=NotificationStatus.pending.value, attempts=rest.attempts - 1):
                    stats.released += 1
            break
        skip = skips.get(row.id)
        if skip is None and not row.to:
            skip = "skipped: no recipient"
        if skip:
            record(row, status=NotificationStatus.cancelled.value, last_error=skip)
            stats.skipped += 1
            continue
        try:
            transport, ref = _deliver(row, now=now, email_sender=email_sender, sms_sender=sms_sender)
        except Exception as exc:  # DeliveryError, or a rendering bug: never lose the row
            error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            local_reject = isinstance(exc, DeliveryError) and not exc.transient and exc.status is None
            if row.attempts >= max_attempts or local_reject:
                record(row, status=NotificationStatus.failed.value, last_error=error[:2000])
                stats.failed += 1
                log.warning("notification %s failed for good after %s attempts: %s", row.id, row.attempts, error)
            else:
                record(row, status=NotificationStatus.pending.value, last_error=error[:2000],
                       next_attempt_at=now + backoff_delay(row.attempts))
                stats.retried += 1
                log.info("notification %s attempt %s failed, will retry: %s", row.id, row.attempts, error)
            continue
        values: dict[str, Any] = dict(status=NotificationStatus.sent.value, sent_at=utcnow(), last_error=None,
                                      transport=transport, provider_ref=(ref or None) and str(ref)[:255])
        scrubbed = _scrubbed(row.context)
        if scrubbed is not None:
            values["context"] = scrubbed
        record(row, **values)
        stats.sent += 1


def relay_once(*, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int = 50,
               lease_seconds: float = LEASE_SECONDS, email_sender: EmailSender | None = None,
               sms_sender: SmsSender | None = None) -> RelayStats:
    """Deliver everything that is due now (in batches), the job's one tick."""
    total = RelayStats()
    for _ in range(max_batches):
        stats = relay_batch(now=now, batch_size=batch_size, lease_seconds=lease_seconds,
                            email_sender=email_sender, sms_sender=sms_sender)
        total.add(stats)
        if stats.claimed < batch_size:
            break
    return total


# --- reminders sweep ---------------------------------------------------------------------------------

SWEEP_LOOKAHEAD = dt.timedelta(minutes=15)


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    if db.is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(Notification.__table__).values(  # type: ignore[attr-defined]
        [{**r, "status": NotificationStatus.pending.value, "attempts": 0, "created_at": utcnow()} for r in rows]
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Notification.__table__.c.id)  # type: ignore[attr-defined]
    return len(session.exec(stmt).all())  # type: ignore[call-overload]


def sweep_reminders(*, now: dt.datetime | None = None, lookahead: dt.timedelta = SWEEP_LOOKAHEAD) -> int:
    """Keep the queued reminders in line with the bookings (repeat-safe, any number of processes).

    - pending reminders of bookings that are no longer confirmed are cancelled;
    - reminders due within `lookahead` that are missing (a booking confirmed by a path
      that queued none, or offsets changed) are queued; duplicates are ignored by the
      unique dedupe key, so a reminder is queued once whoever runs the sweep.
    Returns the number of rows changed.
    """
    now = now or utcnow()
    changed = 0
    with db.unit_of_work() as s:
        stale = exists().where(Booking.id == Notification.booking_id, Booking.status != BookingStatus.confirmed.value)
        result = s.exec(  # type: ignore[call-overload]
            update(Notification)
            .where(Notification.template == outbox.REMINDER, Notification.status == NotificationStatus.pending.value,
                   stale)
            .values(status=NotificationStatus.cancelled.value, last_error="skipped: booking no longer confirmed")
        )
        changed += result.rowcount or 0

        offsets = set(get_settings().reminder_offsets)
        for value in s.exec(select(Bookable.reminder_offsets).where(Bookable.reminder_offsets != "").distinct()).all():
            offsets.update(outbox.parse_offsets(value))
        windows = [
            and_(Booking.start_at > now + dt.timedelta(minutes=o), Booking.start_at <= now + dt.timedelta(minutes=o) + lookahead)
            for o in sorted(offsets)
        ]
        if not windows:
            return changed
        candidates = s.exec(
            select(Booking).where(Booking.status == BookingStatus.confirmed.value, or_(*windows)).order_by(Booking.id)
        ).all()
        horizon = now + lookahead
        rows: list[dict[str, Any]] = []
        for booking in candidates:
            bookable = s.get(Bookable, booking.bookable_id)
            rows.extend(r for r in outbox.expected_reminders(s, booking, bookable, now=now) if r["next_attempt_at"] <= horizon)
        changed += _insert_ignoring_duplicates(s, rows)
    return changed


# --- calendar feeds ---------------------------------------------------------------------------------

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
            description=translate(_REF.msgid, locale, reference=booking.reference),
            location=bookable.location, url=outbox.booking_url(booking),
        ))
    name = f"{settings.app_name} · {translate(FEED_NAMES[row.scope], locale)}"
    return ics.feed(events, name=name, stamp=now)


# --- admin: the outbox view -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NotificationView:
    id: int
    channel: str
    to: str
    template: str
    locale: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    transport: str | None
    provider_ref: str | None
    sent_at: dt.datetime | None
    created_at: dt.datetime
    booking_id: int | None
    user_id: int | None
    subject: str | None = None  # preview, detail view only
    body: str | None = None  # preview, detail view only


@dataclasses.dataclass(frozen=True)
class NotificationPage:
    items: list[NotificationView]
    total: int


STATUSES = tuple(s.value for s in NotificationStatus)


def _view(n: Notification, *, preview: bool = False) -> NotificationView:
    subject = body = None
    if preview:
        context = {k: ("…" if k in outbox.SECRET_CONTEXT_KEYS else v) for k, v in (n.context or {}).items()}
        try:
            if n.channel == "sms":
                body = render_sms(n.template, n.locale, context)
            else:
                rendered = render_email(n.template, n.locale, context)
                subject, body = rendered.subject, rendered.text
        except Exception as exc:  # an old or broken row must still be viewable
            body = f"({type(exc).__name__}: {exc})"
    return NotificationView(
        id=n.id, channel=n.channel, to=n.to, template=n.template, locale=n.locale, status=n.status,  # type: ignore[arg-type]
        attempts=n.attempts, next_attempt_at=n.next_attempt_at, last_error=n.last_error, transport=n.transport,
        provider_ref=n.provider_ref, sent_at=n.sent_at, created_at=n.created_at, booking_id=n.booking_id,
        user_id=n.user_id, subject=subject, body=body,
    )


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden()


def list_notifications(*, actor: Actor, status: str | None = None, channel: str | None = None,
                       template: str | None = None, booking_id: int | None = None, q: str | None = None,
                       limit: int = 50, offset: int = 0) -> NotificationPage:
    """The outbox, newest first (admins)."""
    _require_admin(actor)
    if status is not None and status not in STATUSES:
        raise InvalidInput(N_("Unknown status."), field="status")
    if channel is not None and channel not in ("email", "sms"):
        raise InvalidInput(N_("Unknown channel."), field="channel")
    if not 1 <= limit <= 500:
        raise InvalidInput(N_("Limit must be between {min} and {max}."), field="limit", min=1, max=500)
    if offset < 0:
        raise InvalidInput(N_("Offset must not be negative."), field="offset")
    for name, value in (("template", template), ("q", q)):
        if value is not None and (not isinstance(value, str) or len(value) > 254 or validation.text_problem(value)):
            raise InvalidInput(N_("The input is not valid."), field=name)
    conditions = []
    if status:
        conditions.append(Notification.status == status)
    if channel:
        conditions.append(Notification.channel == channel)
    if template:
        conditions.append(Notification.template == template)
    if booking_id is not None:
        conditions.append(Notification.booking_id == booking_id)
    if q:
        conditions.append(func.lower(Notification.to).contains(q.strip().lower(), autoescape=True))
    audit.record_now(actor_id=actor.id, action="notification.listed", entity="notification", entity_id="-",
                     data={k: v for k, v in (("status", status), ("channel", channel), ("template", template),
                                             ("booking_id", booking_id), ("q", q), ("offset", offset)) if v})
    with db.read_session() as s:
        total = s.exec(select(func.count()).select_from(Notification).where(*conditions)).one()
        rows = s.exec(select(Notification).where(*conditions).order_by(Notification.id.desc())  # type: ignore[union-attr]
                      .offset(offset).limit(limit)).all()
        return NotificationPage(items=[_view(n) for n in rows], total=int(total))


def get_notification(*, actor: Actor, notification_id: int) -> NotificationView:
    """One outbox row with a rendered preview of its message (secrets masked)."""
    _require_admin(actor)
    with db.read_session() as s:
        n = s.get(Notification, notification_id)
        if n is None:
            raise NotFound(N_("Notification not found."))
        view = _view(n, preview=True)
    audit.record_now(actor_id=actor.id, action="notification.viewed", entity="notification", entity_id=notification_id)
    return view


def retry_notification(*, actor: Actor, notification_id: int) -> NotificationView:
    """Queue a failed (or cancelled) message again, with a fresh set of attempts."""
    _require_admin(actor)
    with db.unit_of_work() as s:
        n = s.get(Notification, notification_id)
        if n is None:
            raise NotFound(N_("Notification not found."))
        if n.status not in (NotificationStatus.failed.value, NotificationStatus.cancelled.value):
            raise Conflict(N_("Only failed or cancelled messages can be retried."), field="status")
        if not n.to:
            raise Conflict(N_("This message has no recipient any more."), field="to")
        n.status = NotificationStatus.pending.value
        n.attempts = 0
        n.next_attempt_at = utcnow()
        n.claimed_until = None
        s.add(n)
        audit.record(s, actor_id=actor.id, action="notification.retried", entity="notification", entity_id=n.id,
                     data={"previous_error": (n.last_error or "")[:200]})
        s.flush()
        return _view(n)
