"""What the customer booking states share: labels, a booking and a bookable as plain
values for the UI state, their cards and sentences (the cancellation cut-off from the
service's quote, the refund preview), and the booking page's address. No state here."""
from __future__ import annotations

import dataclasses
import datetime as dt
from urllib.parse import urlencode

from booking_app.config import get_settings
from booking_app.i18n import N_, Np_, translate
from booking_app.integrations import ics
from booking_app.services import booking_queries, booking_questions, catalog, payments, refunds
from booking_app.ui import paths
from booking_app.ui.state import fmt

MAX_QUANTITY_UI = 10
STATUS_LABELS = {
    "pending": N_("Awaiting payment"),
    "confirmed": N_("Confirmed"),
    "cancelled": N_("Cancelled"),
    "completed": N_("Completed"),
    "no_show": N_("No-show"),
    "awaiting_approval": N_("Awaiting approval"),
}
PAYMENT_LABELS = {
    "none": "",
    "pending": N_("Payment pending"),
    "requires_action": N_("Payment pending"),
    "succeeded": N_("Paid"),
    "failed": N_("Payment failed"),
    "refunded": N_("Refunded"),
    "partially_refunded": N_("Partly refunded"),
}
DEFAULT_CONFIRMATION_TITLE = N_("Booking details")
CONFIRMATION_TITLES = {"confirmed": N_("Your booking is confirmed"), "pending": N_("Your booking is reserved"),
                       "awaiting_approval": N_("Your booking request was sent")}
#: a request's note (issue 24): the provider answers by then; payment follows the approval
APPROVAL_NOTE = N_("The provider answers by {when} ({timezone}). You pay only once it is approved.")
METHOD_LABELS = {"on_site": N_("Pay on site"), "card": N_("Card"), "paypal": N_("PayPal")}


def parse_iso(value: object) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value or "").replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def bookable_dict(v: catalog.BookableView) -> dict:
    return {"id": v.id, "name": v.name, "kind": v.kind, "description": v.description, "location": v.location,
            "duration_minutes": v.duration_minutes, "capacity": v.capacity, "price_cents": v.price_cents,
            "currency": v.currency, "timezone": v.timezone, "cancel_cutoff_hours": v.cancel_cutoff_hours,
            "refund_percent": v.refund_percent, "provider_name": v.provider_name,
            "provider_id": v.provider_id,
            # deposits and fees (issue 26)
            "deposit_percent": v.deposit_percent, "deposit_cents": v.deposit_cents,
            "no_show_fee_cents": v.no_show_fee_cents, "late_cancel_fee_cents": v.late_cancel_fee_cents}


def quote_fields(quote: refunds.CancellationQuote | None) -> dict:
    """The cancellation quote's answers kept with a booking in the UI state (what the
    customer may still do and until when: the service's rule, never re-derived here)."""
    if quote is None:
        return {"may_cancel": False, "cutoff_at": "", "cutoff_passed": False, "by_manager": False}
    return {"may_cancel": quote.may_cancel, "cutoff_at": quote.cutoff_at.isoformat(),
            "cutoff_passed": quote.cutoff_passed, "by_manager": quote.by_manager}


def cutoff_note(b: dict, locale: str, tz: str) -> str:
    """Until when the customer may cancel or change an active booking (or since when they
    may not), in the viewer's zone, named. Empty for staff and for bookings that are over."""
    cutoff = parse_iso(b.get("cutoff_at"))
    if cutoff is None or b.get("by_manager") or b.get("status") not in ("pending", "confirmed"):
        return ""
    when = fmt.when_short(cutoff, tz, locale)
    if b.get("cutoff_passed"):
        return translate("You could cancel or change this booking until {when} ({timezone}).", locale,
                         when=when, timezone=tz)
    return translate("You can cancel or change this booking until {when} ({timezone}).", locale,
                     when=when, timezone=tz)


def approval_note(b: dict, locale: str, tz: str) -> str:
    """A request awaiting approval: until when the provider answers (empty otherwise)."""
    until = parse_iso(b.get("approval_expires_at"))
    if b.get("status") != "awaiting_approval" or until is None:
        return ""
    return translate(APPROVAL_NOTE, locale, when=fmt.when_short(until, tz, locale), timezone=tz)


def bookable_summary(svc: dict, locale: str) -> dict[str, str]:
    if not svc:
        return {}
    return {
        "name": svc["name"],
        "kind": fmt.kind_label(svc["kind"], locale),
        "description": svc["description"],
        "location": svc["location"],
        "provider": svc["provider_name"],
        "duration": fmt.duration(svc["duration_minutes"], locale),
        "price": fmt.money(svc["price_cents"], svc["currency"], locale),
        "policy": fmt.refund_policy(svc["cancel_cutoff_hours"], svc["refund_percent"], locale),
        "per_person": translate("per person", locale) if svc["kind"] == "event" and svc["price_cents"] else "",
    }


def online_methods() -> list[str]:
    """The online payment methods a customer may choose now (the payment service's list)."""
    return [m.method for m in payments.available_methods() if m.online]


def booking_url(booking_id: int, token: str = "") -> str:
    query = {"id": booking_id}
    if token:
        query["token"] = token
    return f"{paths.CONFIRMATION}?{urlencode(query)}"


def booking_raw(v: booking_queries.BookingView) -> dict:
    """A booking as plain JSON-able values for the UI state."""
    return {"id": v.id, "reference": v.reference, "service_id": v.service_id, "service_name": v.service_name,
            "service_kind": v.service_kind, "start": v.start.isoformat(), "end": v.end.isoformat(),
            "status": v.status, "payment_status": v.payment_status, "price_cents": v.price_cents,
            "currency": v.currency, "quantity": v.quantity, "is_guest": v.user_id is None,
            "discount_cents": v.discount_cents, "answers": v.answers or [],
            "approval_expires_at": v.approval_expires_at.isoformat() if v.approval_expires_at else ""}


def booking_card(b: dict, locale: str, tz: str, token: str = "") -> dict[str, str]:
    start = dt.datetime.fromisoformat(b["start"])
    end = dt.datetime.fromisoformat(b["end"])
    status = b["status"]
    payment = PAYMENT_LABELS.get(b["payment_status"], "")
    if status == "confirmed" and b["payment_status"] in ("pending", "requires_action"):
        payment = METHOD_LABELS["on_site"]  # a confirmed booking with an open payment is paid at the venue
    reschedule_query = {"id": b["service_id"], "reschedule": b["id"], **({"token": token} if token else {})}
    return {
        "id": str(b["id"]),
        "reference": b["reference"],
        "service": b["service_name"],
        "service_id": str(b["service_id"]),
        "kind": fmt.kind_label(b["service_kind"], locale),
        "when": translate("{date}, {start}–{end}", locale, date=fmt.date_(start, locale, "full", tz),
                          start=fmt.time_(start, tz, locale), end=fmt.time_(end, tz, locale)),
        "short_when": fmt.when_short(start, tz, locale),
        "status": status,
        "status_label": translate(STATUS_LABELS.get(status, status), locale),
        "status_color": fmt.STATUS_COLORS.get(status, "gray"),
        "payment": translate(payment, locale) if payment else "",
        "price": fmt.booking_price(int(b["price_cents"]), b["currency"], locale, int(b.get("discount_cents") or 0)),
        "quantity": str(b["quantity"]),
        "seats": translate(Np_("{count} place", "{count} places", "count"), locale, count=int(b["quantity"]))
        if int(b["quantity"]) > 1 else "",
        "href": booking_url(int(b["id"]), token),
        # cancel / change time: only what the cancellation quote allows (the cut-off is the service's)
        "active": "1" if b.get("may_cancel") and start > dt.datetime.now(dt.timezone.utc) else "",
        # add to calendar: only while the booking is still going to happen
        "calendar": "1" if status in ("pending", "confirmed") else "",
        "cutoff_note": cutoff_note(b, locale, tz),
        "approval_note": approval_note(b, locale, tz),
        "reschedule_href": f"{paths.BOOKABLE}?{urlencode(reschedule_query)}",
        # booking questions (issue 24): "label: value" lines, as asked
        "answers": booking_questions.answers_text(b.get("answers"), locale),
    }


def ics_for(v: booking_queries.BookingView, locale: str) -> bytes:
    settings = get_settings()
    event = ics.IcsEvent(
        uid=ics.booking_uid(v.reference, settings.public_url),
        start=v.start, end=v.end, summary=v.service_name, sequence=v.sequence,
        status=ics.STATUS_CANCELLED if v.status == "cancelled" else ics.STATUS_CONFIRMED,
        description=booking_questions.with_answers(
            translate("Booking reference: {reference}", locale, reference=v.reference), v.answers, locale),
    )
    return ics.invitation(event, method=ics.METHOD_PUBLISH)


def refund_preview_text(quote: refunds.CancellationQuote, start: dt.datetime, locale: str) -> str:
    """The sentence shown before a cancel: exactly the quote's refund, or why there is none."""
    if quote.cutoff_passed and quote.may_cancel and quote.late_fee_cents:  # (issue 26: a late cancellation)
        return translate("Cancelling now costs the late cancellation fee of {amount}.", locale,
                         amount=fmt.money(quote.late_fee_cents, quote.currency, locale)) + " " + refund_preview_text(
            dataclasses.replace(quote, cutoff_passed=False, late_fee_cents=0), start, locale)
    if quote.cutoff_passed:
        if dt.datetime.now(dt.timezone.utc) >= start:
            return translate("This booking has already started.", locale)
        return translate(Np_("Bookings can no longer be cancelled less than {hours} hour before the start.",
                             "Bookings can no longer be cancelled less than {hours} hours before the start.",
                             "hours"), locale, hours=quote.cutoff_hours)
    if quote.paid_cents <= 0:
        return translate("Nothing has been paid, so there is nothing to refund.", locale)
    if quote.amount_cents <= 0:
        return translate("The policy of this booking gives no refund.", locale)
    return translate("You get {amount} back.", locale, amount=fmt.money(quote.amount_cents, quote.currency, locale))
