"""Message templates and their rendering: what each email and SMS says.

Rendered when sent (services/relay.py), in the recipient's locale, with dates in their
timezone and money formatted by Babel. Every user-visible string is a msgid (`N_`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
from decimal import Decimal
from typing import Any

from babel.dates import format_date, format_time, format_timedelta, get_timezone_name
from babel.numbers import format_currency, get_currency_precision

from booking_app.config import get_settings
from booking_app.i18n import N_, Np_, babel_locale, text_direction, translate
from booking_app.integrations import ics
from booking_app.models import BookingStatus, utcnow
from booking_app.services import booking_questions
from booking_app.services.validation import zone

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
#: a discount code's discount (issue 26), after the price it lowered
_DISCOUNT = Line(N_("Discount code: −{discount}"), needs="discount")
_REF = Line(N_("Booking reference: {reference}"))
#: the answers to the booking questions (services/booking_questions.py), one per line
_ANSWERS = Line(N_("Answers: {answers}"), needs="answers")
#: the booking-reference line (also the description of a calendar feed's events)
REFERENCE_LINE = _REF
#: what is left to pay after a deposit (issue 26: reminders and payment receipts)
_BALANCE = Line(N_("Balance to pay: {balance}. You can pay it online from your booking page."), needs="balance")

TEMPLATES: dict[str, Template] = {
    "booking_confirmed": Template(
        subject=N_("Booking confirmed: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} is confirmed.")), _WHEN, _WHERE, _SEATS, _PRICE, _DISCOUNT,
               _ANSWERS, _REF,
               Line(N_("The attached calendar file adds it to your calendar."))),
        sms=N_("Booking {reference} confirmed: {service}, {short_when}."),
        action=N_("View your booking"), ics_method=ics.METHOD_REQUEST,
    ),
    "booking_pending": Template(
        subject=N_("Complete your payment: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} is reserved but not paid yet.")),
               Line(N_("Please complete the payment by {hold_until}, or the place is released."), needs="hold_until"),
               _WHEN, _WHERE, _SEATS, _PRICE, _DISCOUNT, _ANSWERS, _REF),
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
    # approval (issue 24, services/approvals.py): request received, approved (confirmed / to
    # pay), declined, lapsed; the provider's request with its signed approve/decline link
    "booking_awaiting_approval": Template(
        subject=N_("Booking request received: {service} on {date}"),
        lines=(Line(N_("Your booking request for {service} is waiting for the provider's approval.")),
               Line(N_("Your places are held until {hold_until}; you will hear from us by then."), needs="hold_until"),
               Line(N_("Nothing is charged before the booking is approved."), needs="price"),
               _WHEN, _WHERE, _SEATS, _PRICE, _REF),
        action=N_("View your booking"),
    ),
    "booking_approved": Template(
        subject=N_("Booking approved: {service} on {date}"),
        lines=(Line(N_("Your booking request for {service} has been approved: your booking is confirmed.")),
               _WHEN, _WHERE, _SEATS, _PRICE, _REF,
               Line(N_("The attached calendar file adds it to your calendar."))),
        sms=N_("Booking {reference} approved: {service}, {short_when}."),
        action=N_("View your booking"), ics_method=ics.METHOD_REQUEST,
    ),
    "booking_approved_pay": Template(
        subject=N_("Booking approved, please pay: {service} on {date}"),
        lines=(Line(N_("Your booking request for {service} has been approved.")),
               Line(N_("Please complete the payment by {hold_until}, or the place is released."), needs="hold_until"),
               _WHEN, _WHERE, _SEATS, _PRICE, _REF),
        sms=N_("Booking {reference} approved: please pay by {hold_until}."),
        action=N_("Complete the payment"), action_url="pay_url",
    ),
    "booking_declined": Template(
        subject=N_("Booking request declined: {service} on {date}"),
        lines=(Line(N_("Your booking request for {service} on {when} was declined.")),
               Line(N_("Reason: {reason}"), needs="reason"), Line(N_("Nothing was charged.")), _REF),
        sms=N_("Your booking request {reference} for {service} on {short_when} was declined."),
        action=N_("View your booking"),
    ),
    "booking_approval_expired": Template(
        subject=N_("Booking request expired: {service} on {date}"),
        lines=(Line(N_("Your booking request for {service} on {when} was not answered in time, so its places "
                       "were released.")), Line(N_("Nothing was charged.")), _REF),
        sms=N_("Your booking request {reference} for {service} on {short_when} expired without an answer."),
        action=N_("View your booking"),
    ),
    "provider_approval_request": Template(
        subject=N_("Approval needed: {service} on {date}"),
        lines=(Line(N_("{customer} asked to book {service}.")),
               Line(N_("Please approve or decline the request by {hold_until}; after that it lapses and its "
                       "places are released."), needs="hold_until"),
               _WHEN, _SEATS, _PRICE, _REF),
        action=N_("Approve or decline"), action_url="approval_url",
    ),
    # waitlist (issue 24): freed places held for the next person (services/waitlist.py)
    "waitlist_offered": Template(
        subject=N_("A place is free for you: {service} on {date}"),
        lines=(Line(N_("A place you were waiting for at {service} is free, and we are holding it for you.")),
               Line(N_("Accept it by {hold_until}, or it passes to the next person on the waitlist."),
                    needs="hold_until"), _WHEN, _WHERE, _SEATS, _PRICE),
        sms=N_("A place is free for you: {service}, {short_when}. Accept it by {hold_until}: {accept_url}"),
        action=N_("Accept the place"), action_url="accept_url",
    ),
    "reminder": Template(
        subject=N_("Reminder: {service} on {date}"),
        lines=(Line(N_("Your booking for {service} starts in {starts_in}.")), _WHEN, _WHERE, _SEATS, _REF, _BALANCE),
        sms=N_("Reminder: {service} at {short_when} (booking {reference})."),
        action=N_("View your booking"),
    ),
    "payment_received": Template(
        subject=N_("Payment received for booking {reference}"),
        lines=(Line(N_("We received your payment of {amount} for {service} on {when}.")), _REF, _BALANCE),
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
    # deposits and fees (issue 26, services/fees.py): a no-show or late-cancel fee
    "fee_charged": Template(
        subject=N_("Fee charged for booking {reference}"),
        lines=(Line(N_("A fee of {amount} for {service} on {when} was charged to your saved card.")), _REF),
        action=N_("View your booking"),
    ),
    "fee_due": Template(
        subject=N_("Fee due for booking {reference}"),
        lines=(Line(N_("A fee of {amount} is due for {service} on {when}.")), _REF),
        action=N_("View your booking"),
    ),
    "fee_action_required": Template(
        subject=N_("Confirm the payment of a fee for booking {reference}"),
        lines=(Line(N_("A fee of {amount} is due for {service} on {when}.")),
               Line(N_("Your bank asks you to confirm this payment. Please use the link below.")), _REF),
        action=N_("Pay the fee"), action_url="fee_url",
    ),
    "password_reset": Template(
        subject=N_("Reset your password"),
        lines=(Line(N_("Someone asked to reset the password of your account {username}.")),
               Line(Np_("Use the link below within {minutes} minute to choose a new password.",
                        "Use the link below within {minutes} minutes to choose a new password.", "minutes")),
               Line(N_("If it was not you, ignore this email: your password stays the same."))),
        action=N_("Choose a new password"), action_url="reset_url",
    ),
    # an administrator turned the account's two-factor sign-in off (services/accounts.py reset_2fa)
    "mfa_reset": Template(
        subject=N_("Two-factor sign-in was turned off"),
        lines=(Line(N_("An administrator turned off two-factor sign-in for your account {username}.")),
               Line(N_("Sign in with your password and set it up again from your account page.")),
               Line(N_("If you did not ask for this, contact us at once."))),
        action=N_("Open your account"), action_url="account_url",
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
        lines=(Line(N_("{customer} booked {service}.")), _WHEN, _SEATS, _PRICE, _ANSWERS, _REF),
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
    # recurring series (services/series.py): one message listing the dates
    "series_confirmed": Template(
        subject=N_("Series booked: {service} from {date}"),
        lines=(Line(N_("Your series of bookings for {service} is confirmed.")), Line(N_("Dates: {dates}")),
               Line(N_("Not booked (not available): {skipped_dates}"), needs="skipped_dates"), _WHERE, _SEATS),
        action=N_("View your booking"),
    ),
    # a date cancelled before the series was paid: a new Checkout for the dates kept
    # (services/series_payments.py, docs/series.md)
    "series_payment_renewed": Template(
        subject=N_("Pay the rest of your series: {service} from {date}"),
        lines=(Line(N_("A date of your series for {service} was cancelled before it was paid, so the payment now "
                       "covers only the dates you kept.")),
               Line(N_("Amount to pay: {amount}"), needs="amount"),
               Line(N_("Please complete the payment by {hold_until}, or the places are released."),
                    needs="hold_until"), _WHERE, _SEATS),
        action=N_("Complete the payment"), action_url="pay_url",
    ),
    "provider_new_series": Template(
        subject=N_("New series: {service} from {date}"),
        lines=(Line(N_("{customer} booked a series of {service}.")), Line(N_("Dates: {dates}")), _SEATS),
        action=N_("Open the booking"),
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

def parse_dt(value: Any) -> dt.datetime | None:
    """A context value (ISO text or datetime) → an aware datetime (UTC if naive); None if empty."""
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
    tz = zone(tz_name, get_settings().default_timezone)
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
    "approval_declined": N_("The provider declined the request."),
    "approval_expired": N_("The provider did not answer the request in time."),
}


def _reason(value: Any, locale: str) -> str:
    if not value:
        return ""
    value = str(value)
    return translate(REASONS[value], locale) if value in REASONS else value


def _params(context: dict[str, Any], locale: str, now: dt.datetime) -> dict[str, Any]:
    loc = babel_locale(locale)
    tz_name = context.get("timezone") or context.get("service_timezone") or "UTC"
    tz = zone(tz_name, get_settings().default_timezone)
    start = parse_dt(context.get("start"))
    end = parse_dt(context.get("end"))
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
        answers=booking_questions.answers_text(context.get("answers"), locale, separator="\n", lead="\n"),
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
    old_start = parse_dt(context.get("old_start") or context.get("previous_start"))
    params["old_when"] = format_when(old_start, parse_dt(context.get("old_end")), tz_name, locale) if old_start else ""
    currency = context.get("currency") or "USD"
    price = int(context.get("price_cents") or 0)
    params["price"] = format_money(price, currency, locale) if price > 0 else ""
    discount = int(context.get("discount_cents") or 0)  # discount codes (issue 26)
    params["discount"] = format_money(discount, currency, locale) if discount > 0 else ""
    refund = int(context.get("refund_due_cents") or context.get("refund_cents") or 0)
    params["refund"] = format_money(refund, currency, locale) if refund > 0 else ""
    balance = int(context.get("balance_due_cents") or 0)  # deposits (issue 26)
    params["balance"] = format_money(balance, currency, locale) if balance > 0 else ""
    if context.get("amount_cents") is not None:
        params["amount"] = format_money(int(context["amount_cents"]), context.get("amount_currency") or currency, locale)
    hold = parse_dt(context.get("hold_expires_at"))
    if hold is not None:
        h = hold.astimezone(tz)
        params["hold_until"] = (f"{format_date(h, 'medium', locale=loc)} {format_time(h, 'short', locale=loc)} "
                                f"({get_timezone_name(h, width='long', locale=loc)})")
    else:
        params["hold_until"] = ""
    return params


def _event_for(context: dict[str, Any], params: dict[str, Any], locale: str) -> ics.IcsEvent | None:
    start, end = parse_dt(context.get("start")), parse_dt(context.get("end"))
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
        description=booking_questions.with_answers(translate(_REF.msgid, locale, **params), context.get("answers"),
                                                   locale),
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
    body = "\n".join(f'<p style="margin:0 0 12px">{html.escape(line).replace(chr(10), "<br>")}</p>' for line in lines)
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
