"""The admins' view of the outbox: list, inspect (with a rendered preview) and retry messages
(email and SMS). Queued webhook events share the outbox table (channel "webhook") but are
not messages: they are left out here (not found by id either, so they can't be retried
into a second delivery); their deliveries are on the webhooks page (services/webhooks.py)."""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func
from sqlmodel import select

from booking_app import db
from booking_app.i18n import N_
from booking_app.models import Notification, NotificationStatus, utcnow
from booking_app.services import audit, outbox, validation, webhooks
from booking_app.services.actors import Actor, require_admin
from booking_app.services.errors import Conflict, InvalidInput, NotFound
from booking_app.services.messages import render_email, render_sms

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


def _message(n: Notification | None) -> Notification:
    """`n` if it is a message (email/SMS); NotFound for none or a queued webhook event."""
    if n is None or n.channel == webhooks.CHANNEL:
        raise NotFound(N_("Notification not found."))
    return n


def list_notifications(*, actor: Actor, status: str | None = None, channel: str | None = None,
                       template: str | None = None, booking_id: int | None = None, q: str | None = None,
                       limit: int = 50, offset: int = 0) -> NotificationPage:
    """The outbox, newest first (admins)."""
    require_admin(actor)
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
    conditions = [Notification.channel != webhooks.CHANNEL]
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
    require_admin(actor)
    with db.read_session() as s:
        n = _message(s.get(Notification, notification_id))
        view = _view(n, preview=True)
    audit.record_now(actor_id=actor.id, action="notification.viewed", entity="notification", entity_id=notification_id)
    return view


def retry_notification(*, actor: Actor, notification_id: int) -> NotificationView:
    """Queue a failed (or cancelled) message again, with a fresh set of attempts."""
    require_admin(actor)
    with db.unit_of_work() as s:
        n = _message(s.get(Notification, notification_id))
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
