"""Locale-aware formatting for the UI: money, durations, dates and times (Babel)."""
from __future__ import annotations

import datetime as dt

from babel.dates import format_date, format_datetime, format_skeleton, format_time
from babel.numbers import format_currency

from booking_app.i18n import N_, Np_, babel_locale, translate
from booking_app.services.money import to_decimal
from booking_app.services.validation import zone

DEFAULT_CURRENCY = "EUR"  # a new bookable's, and a money figure's when nothing was paid yet
KIND_LABELS = {"room": N_("Room"), "service": N_("Service"), "event": N_("Event")}


def money(cents: int, currency: str, locale: str) -> str:
    if not cents:
        return translate("Free", locale)
    return format_currency(to_decimal(cents, currency), currency, locale=babel_locale(locale))


def booking_price(cents: int, currency: str, locale: str, discount_cents: int = 0) -> str:
    """What a booking costs, with its discount code's discount when it has one (issue 26)."""
    price = money(cents, currency, locale)
    if not discount_cents:
        return price
    return translate("{price} (discount: {discount})", locale, price=price,
                     discount=money(discount_cents, currency, locale))


def duration(minutes: int, locale: str) -> str:
    minutes = int(minutes)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return translate("{hours} h {minutes} min", locale, hours=hours, minutes=rest)
    if hours:
        return translate("{hours} h", locale, hours=hours)
    return translate("{minutes} min", locale, minutes=rest)


def kind_label(kind: str, locale: str) -> str:
    return translate(KIND_LABELS.get(kind, kind), locale)


def local(value: dt.datetime, tz_name: str | None) -> dt.datetime:
    return value.astimezone(zone(tz_name))


def zone_abbr(tz_name: str, at: dt.datetime | None = None) -> str:
    """"CET" / "CEST" / "EST" (or "+03" where the zone has no letters) at `at` (now)."""
    return local(at or dt.datetime.now(dt.timezone.utc), tz_name).tzname() or ""


def time_(value: dt.datetime, tz_name: str | None, locale: str) -> str:
    return format_time(local(value, tz_name), format="short", locale=babel_locale(locale))


def date_(value: dt.date | dt.datetime, locale: str, fmt: str = "full", tz_name: str | None = None) -> str:
    if isinstance(value, dt.datetime):
        value = local(value, tz_name).date()
    return format_date(value, format=fmt, locale=babel_locale(locale))


def datetime_(value: dt.datetime, tz_name: str | None, locale: str, fmt: str = "medium") -> str:
    return format_datetime(local(value, tz_name), format=fmt, locale=babel_locale(locale))


def seats_left(count: int, locale: str) -> str:
    """A slot's free places ("3 left"; Spanish "queda 1" / "quedan 3", Arabic's six forms)."""
    return translate(Np_("{count} left", "{count} left", "count"), locale, count=count)


def more_count(count: int, locale: str) -> str:
    """What a calendar day cell does not list ("+2 more"; French "+1 autre" / "+2 autres")."""
    return translate(Np_("+{count} more", "+{count} more", "count"), locale, count=count)


def refund_policy(cancel_cutoff_hours: int, refund_percent: int, locale: str) -> str:
    """The cancellation policy in plain words."""
    if refund_percent >= 100 and cancel_cutoff_hours <= 0:
        return translate("Free cancellation until the start.", locale)
    if refund_percent <= 0:
        if cancel_cutoff_hours > 0:
            return translate(Np_("You can cancel up to {hours} hour before the start; no refund is given.",
                                 "You can cancel up to {hours} hours before the start; no refund is given.", "hours"),
                             locale, hours=cancel_cutoff_hours)
        return translate("You can cancel until the start; no refund is given.", locale)
    if cancel_cutoff_hours > 0:
        return translate(Np_("Cancel up to {hours} hour before the start for a refund of {percent}%.",
                             "Cancel up to {hours} hours before the start for a refund of {percent}%.", "hours"),
                         locale, hours=cancel_cutoff_hours, percent=refund_percent)
    return translate("Cancel until the start for a refund of {percent}%.", locale, percent=refund_percent)


def when_short(value: dt.datetime, tz_name: str | None, locale: str) -> str:
    """'Fri, Nov 27, 10:00 AM' style: weekday, day and month, and the short time, by locale."""
    moment = local(value, tz_name)
    loc = babel_locale(locale)
    return translate("{date}, {time}", locale, date=format_skeleton("MMMEd", moment, locale=loc),
                     time=format_time(moment, format="short", locale=loc))


#: badge colour of a booking status, wherever bookings are listed
STATUS_COLORS = {"pending": "amber", "confirmed": "grass", "cancelled": "gray", "completed": "blue", "no_show": "red",
                 "awaiting_approval": "orange"}


def int_param(value: object) -> int | None:
    """An id from a URL parameter or an event argument: a positive 32-bit integer, else None."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if 0 < n < 2**31 else None
