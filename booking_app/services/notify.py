"""What each booking and payment event tells whom, queued in the caller's transaction.

Services call `booking_event(session, booking=..., event=...)` or `payment_event(...)`;
the rows go to the outbox (services/outbox.py) and are sent after commit by
services/relay.py. Reminders follow the booking (services/reminders.py). Webhook
endpoints subscribed to the event get an outbox row each too (services/webhooks.py:
`WEBHOOK_EVENTS` maps our events to theirs).
"""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from booking_app.models import Bookable, Booking, User, utcnow
from booking_app.services import approval_links, outbox, reminders, webhooks

BOOKING_EVENTS = (
    "booking_confirmed",
    "booking_pending",
    "booking_rescheduled",
    "booking_cancelled",
    "booking_completed",
    "booking_no_show",
    # approval (issue 24, services/approvals.py)
    "booking_awaiting_approval",
    "booking_approved",
    "booking_approved_pay",
    "booking_declined",
    "booking_approval_expired",
)
PAYMENT_EVENTS = ("payment_received", "payment_failed", "payment_refunded")

#: the webhook event (services/webhooks.EVENTS) each of our events fires, if any; a new
#: booking also fires "booking.created" first (`booking_event_values`)
WEBHOOK_EVENTS: dict[str, str] = {
    "booking_confirmed": "booking.confirmed",
    "booking_rescheduled": "booking.rescheduled",
    "booking_cancelled": "booking.cancelled",
    "booking_completed": "booking.completed",
    "booking_no_show": "booking.no_show",
    "booking_awaiting_approval": "booking.awaiting_approval",
    "booking_approved": "booking.approved",
    "booking_approved_pay": "booking.approved",
    "booking_declined": "booking.declined",
    "booking_approval_expired": "booking.cancelled",
    "payment_received": "payment.succeeded",
    "payment_refunded": "payment.refunded",
    "fee_charged": "fee.charged",
    "fee_failed": "fee.failed",
}
#: a fee's outcomes (services/fees.py) that fire a webhook event (`fee_event`)
FEE_EVENTS = ("fee_charged", "fee_failed")

#: what each booking event tells whom: (customer email template, customer SMS?, provider template)
_EVENT_MESSAGES: dict[str, tuple[str | None, bool, str | None]] = {
    "booking_confirmed": ("booking_confirmed", True, "provider_new_booking"),
    "booking_pending": ("booking_pending", False, None),
    "booking_rescheduled": ("booking_rescheduled", True, "provider_booking_rescheduled"),
    "booking_cancelled": ("booking_cancelled", True, "provider_booking_cancelled"),
    "booking_completed": (None, False, None),
    "booking_no_show": (None, False, None),
    "booking_awaiting_approval": ("booking_awaiting_approval", False, "provider_approval_request"),
    "booking_approved": ("booking_approved", True, None),
    "booking_approved_pay": ("booking_approved_pay", True, None),
    "booking_declined": ("booking_declined", True, None),
    "booking_approval_expired": ("booking_approval_expired", True, None),
}
#: events after which the booking is confirmed, so its reminders are scheduled
_SCHEDULES_REMINDERS = ("booking_confirmed", "booking_rescheduled", "booking_approved")


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
        reminders.cancel_pending_reminders(session, booking.id, reason=f"superseded: {event}")
    outbox.insert_values(session, _event_values(session, booking=booking, event=event, extra=extra, bookable=bookable,
                                                customer=customer, provider=provider, created=False))


def booking_event_values(session: Session, *, booking: Booking, event: str, extra: dict[str, Any] | None = None,
                         bookable: Bookable | None = None, customer: User | None = None,
                         provider: User | None = None,
                         heard_by: webhooks.Listeners | None = None) -> list[dict[str, Any]]:
    """The outbox rows (`notification_values`) of a booking event, without writing them or
    touching older rows: `booking_event` minus its writes, for a new booking whose caller
    batches its inserts (then nothing is pending for it yet). A new booking also fires the
    webhook event "booking.created". `heard_by`: webhooks.listeners of the booking's
    provider when the caller read them already (saves a query)."""
    return _event_values(session, booking=booking, event=event, extra=extra, bookable=bookable, customer=customer,
                         provider=provider, created=True, heard_by=heard_by)


def _event_values(session: Session, *, booking: Booking, event: str, extra: dict[str, Any] | None,
                  bookable: Bookable | None, customer: User | None, provider: User | None,
                  created: bool, heard_by: webhooks.Listeners | None = None) -> list[dict[str, Any]]:
    if event not in BOOKING_EVENTS:
        raise ValueError(f"unknown booking event {event}")
    assert booking.id is not None
    extra = dict(extra or {})
    if bookable is None or bookable.id != booking.bookable_id:
        bookable = session.get(Bookable, booking.bookable_id)
    customer_r = outbox.customer_of(session, booking, bookable, customer)
    customer_template, with_sms, provider_template = _EVENT_MESSAGES[event]
    base: dict[str, Any] | None = None
    provider_r: outbox.Recipient | None = None
    if customer_template is not None or event in _SCHEDULES_REMINDERS:
        provider_r = outbox.provider_of(session, booking, provider)
        base = outbox.booking_snapshot(session, booking, bookable, customer=customer_r, provider=provider_r)
    rows: list[dict[str, Any]] = []
    if event in _SCHEDULES_REMINDERS:
        rows.extend(reminders.expected_reminders(session, booking, bookable, now=utcnow(), customer=customer_r,
                                                 base=base))
    types = (["booking.created"] if created else []) + ([WEBHOOK_EVENTS[event]] if event in WEBHOOK_EVENTS else [])
    if event == "booking_approved":  # (approved with nothing to pay online: confirmed too)
        types.append("booking.confirmed")
    if not types:
        heard_by = []
    elif heard_by is None:
        heard_by = webhooks.listeners(session, provider_id=booking.provider_id)  # (one query)
    if heard_by:
        data = {"booking": webhooks.booking_data(booking, bookable, customer_name=customer_r.name,
                                                 customer_email=customer_r.email)}
        if extra.get("previous_start") is not None:
            data["previous_start"] = outbox.jsonable(extra["previous_start"])
        for kind in types:
            rows.extend(webhooks.event_rows(session, event=kind, provider_id=booking.provider_id,
                                            booking_id=booking.id, data=data, heard_by=heard_by,
                                            dedupe=f"{kind}:{booking.id}:{booking.version}"))
    if customer_template is None or base is None:
        return outbox.notification_values(rows, json_safe=True)
    if event == "booking_approved_pay":  # approved, to pay: the link goes on to Checkout (docs/approval.md)
        method = getattr(booking, "approval_method", None)
        base["pay_url"] = (base.get("manage_url") or base["url"]) + (f"&pay={method}" if method else "")
    actor_id = extra.pop("actor_id", None)
    base.update(outbox.jsonable(extra))
    key = f"{event}:{booking.id}:{booking.version}"
    if customer_r.wants_email:
        rows.append(dict(channel="email", to=customer_r.email or "", template=customer_template,
                         locale=customer_r.locale, context=outbox.personal(base, customer_r), dedupe_key=f"email:{key}",
                         booking_id=booking.id, user_id=customer_r.user_id))
    if with_sms and customer_r.wants_sms:
        rows.append(dict(channel="sms", to=customer_r.phone or "", template=customer_template,
                         locale=customer_r.locale, context=outbox.personal(base, customer_r), dedupe_key=f"sms:{key}",
                         booking_id=booking.id, user_id=customer_r.user_id))
    provider_base = dict(base)  # (a copy without the guest's manage link; no per-key loop)
    provider_base.pop("manage_url", None)
    if event == "booking_awaiting_approval":  # the provider's signed approve/decline link
        provider_base["approval_url"] = approval_links.approval_url(booking)
    if (provider_template and provider_r is not None and provider_r.wants_email
            and (actor_id is None or actor_id != provider_r.user_id)):
        rows.append(dict(channel="email", to=provider_r.email or "", template=provider_template,
                         locale=provider_r.locale, context=outbox.personal(provider_base, provider_r),
                         dedupe_key=f"email:provider:{key}", booking_id=booking.id, user_id=provider_r.user_id))
    return outbox.notification_values(rows, json_safe=True)  # (a snapshot, `extra` and names: JSON-safe)


def payment_event(session: Session, *, booking: Booking, event: str, amount_cents: int, currency: str,
                  ref: str | int) -> None:
    """Queue the customer's email about a payment (received, failed, refunded), and the
    webhook event ("payment.succeeded" / "payment.refunded").

    `ref` identifies the payment or refund, so each one is told once.
    """
    if event not in PAYMENT_EVENTS:
        raise ValueError(f"unknown payment event {event}")
    if booking.id is None:
        session.flush()
    bookable = session.get(Bookable, booking.bookable_id)
    customer = outbox.customer_of(session, booking, bookable)
    kind = WEBHOOK_EVENTS.get(event)
    if kind is not None:
        data = {"booking": webhooks.booking_data(booking, bookable, customer_name=customer.name,
                                                 customer_email=customer.email),
                "payment": {"amount_cents": int(amount_cents), "currency": currency, "ref": str(ref)}}
        outbox.enqueue_many(session, webhooks.event_rows(session, event=kind, provider_id=booking.provider_id,
                                                         booking_id=booking.id, data=data,
                                                         dedupe=f"{kind}:{booking.id}:{ref}"))
    if not customer.wants_email:
        return
    context = outbox.personal(outbox.booking_snapshot(session, booking, bookable), customer,
                              amount_cents=int(amount_cents), amount_currency=currency)
    outbox.enqueue(session, channel="email", to=customer.email or "", template=event, locale=customer.locale,
                   context=context, dedupe_key=f"email:{event}:{booking.id}:{ref}", booking_id=booking.id,
                   user_id=customer.user_id)


def fee_event(session: Session, *, booking: Booking, event: str, fee: dict[str, Any]) -> None:
    """Queue the webhook event of a fee's outcome ("fee.charged" / "fee.failed"), in the
    caller's transaction: `data` is the booking and the fee (`fee`: id, kind, amount_cents,
    currency, status, attempts). Each attempt is told once (the fee's id and attempt)."""
    if event not in FEE_EVENTS:
        raise ValueError(f"unknown fee event {event}")
    kind = WEBHOOK_EVENTS[event]
    heard_by = webhooks.listeners(session, provider_id=booking.provider_id)
    if not webhooks.subscribers(session, provider_id=booking.provider_id, event=kind, heard_by=heard_by):
        return
    bookable = session.get(Bookable, booking.bookable_id)
    customer = outbox.customer_of(session, booking, bookable)
    data = {"booking": webhooks.booking_data(booking, bookable, customer_name=customer.name,
                                             customer_email=customer.email),
            "fee": outbox.jsonable(fee)}
    outbox.enqueue_many(session, webhooks.event_rows(
        session, event=kind, provider_id=booking.provider_id, booking_id=booking.id, data=data, heard_by=heard_by,
        dedupe=f"{kind}:{fee['id']}:{fee.get('attempts', 0)}"))


def bookings_completed(session: Session, booking_ids: list[int]) -> None:
    """The completion sweep's bookings (completed by one UPDATE, services/bookings.py):
    their reminders dropped and, when any endpoint listens, their "booking.completed"
    webhook events queued (no messages: `booking_completed` tells nobody by email)."""
    for booking_id in booking_ids:
        reminders.cancel_pending_reminders(session, booking_id, reason="superseded: booking_completed")
    if not booking_ids or not webhooks.anyone_listens(session, "booking.completed"):
        return
    for booking in session.exec(select(Booking).where(Booking.id.in_(booking_ids)).order_by(Booking.id)).all():  # type: ignore[union-attr]
        outbox.insert_values(session, _event_values(session, booking=booking, event="booking_completed", extra=None,
                                                    bookable=None, customer=None, provider=None, created=False))
