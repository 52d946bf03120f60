"""The outbox relay: claim due rows, send them, record each outcome.

Claim due rows in a short transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
writer + a conditional UPDATE) with a lease, send after commit, then mark each `sent`, back
to `pending` with backoff, or `failed` after OUTBOX_MAX_ATTEMPTS (at-least-once; the dedupe
key keeps one row per message). Run by booking_app/jobs (sweeps.relay_outbox). Webhook
events (channel "webhook") are not claimed here: `relay_once` hands them to
services/webhook_delivery.py, which keeps each endpoint's deliveries in order.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import random
import time
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import language_tag
from booking_app.integrations import ics
from booking_app.integrations.delivery import DeliveryError
from booking_app.integrations.email import email_sender_from_settings
from booking_app.integrations.email_message import Attachment, EmailMessage, EmailSender
from booking_app.integrations.sms import SmsMessage, SmsSender, is_e164, sms_sender_from_settings
from booking_app.models import Notification, NotificationStatus, User, utcnow
from booking_app.services import claims, outbox, reminders, webhook_delivery, webhooks
from booking_app.services.messages import render_email, render_sms

log = logging.getLogger(__name__)

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
    webhooks_delivered: int = 0

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
    return and_(or_(
        and_(Notification.status == NotificationStatus.pending.value, Notification.next_attempt_at <= now),
        and_(Notification.status == NotificationStatus.sending.value, Notification.claimed_until < now),
    ), Notification.channel != webhooks.CHANNEL)


def claim_due(*, now: dt.datetime, limit: int = BATCH_SIZE, lease_seconds: float = LEASE_SECONDS) -> list[ClaimedRow]:
    """Claim up to `limit` due rows for this process (one short transaction). If the database
    goes away while the claim commits, the claim may have gone through unanswered: its rows
    are handed back once the database is back, instead of waiting out their lease."""
    lease = now + dt.timedelta(seconds=lease_seconds)
    committing = False
    try:
        with db.unit_of_work() as s:
            taken = claims.claim_rows(
                s, Notification, _due_condition(now), order_by=(Notification.next_attempt_at, Notification.id),
                limit=limit,
                values={"status": NotificationStatus.sending.value, "claimed_until": lease,
                        "attempts": Notification.attempts + 1},
                returning=(Notification.id, Notification.channel, Notification.to, Notification.template,
                           Notification.locale, Notification.context, Notification.booking_id, Notification.user_id,
                           Notification.attempts))
            if not taken:
                return []
            rows = [ClaimedRow(id=r[0], channel=r[1], to=r[2], template=r[3], locale=r[4], context=dict(r[5] or {}),
                               booking_id=r[6], user_id=r[7], attempts=r[8], claimed_until=lease) for r in taken]
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


#: messages that go out whatever the recipient's notification settings are
TRANSACTIONAL_TEMPLATES = frozenset({"password_reset", "mfa_reset", "guest_booking_request", "guest_manage_link"})


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
                                        "Content-Language": language_tag(row.locale)})
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
    skips = _when_db_back("checking the batch", lambda: reminders.reminder_skips(rows, now),
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
    """Deliver everything that is due now (in batches), the job's one tick: messages, then
    webhook deliveries (services/webhook_delivery.relay_webhooks)."""
    total = RelayStats()
    for _ in range(max_batches):
        stats = relay_batch(now=now, batch_size=batch_size, lease_seconds=lease_seconds,
                            email_sender=email_sender, sms_sender=sms_sender)
        total.add(stats)
        if stats.claimed < batch_size:
            break
    total.webhooks_delivered = webhook_delivery.relay_webhooks(now=now).delivered
    return total
