"""Field validators shared by services (and reused by API schemas).

One input hygiene rule for every text the app takes, from the API and the UI alike:
- no text may hold NUL or another control character (C0 except TAB, LF and CR in
  multi-line text; DEL; C1), a lone surrogate (not encodable as UTF-8, so neither
  PostgreSQL, SQLite nor an email can take it) or a non-character (U+FDD0–U+FDEF,
  U+FFFE, U+FFFF);
- single-line text (names, usernames, emails, locations, searches, codes…) also refuses
  TAB, CR, LF and the Unicode line/paragraph separators: they would break email headers,
  CSV rows and log lines.
The same rule is published as a JSON Schema `pattern` (SINGLE_LINE_PATTERN,
MULTI_LINE_PATTERN) by the API's request models, so the OpenAPI document tells the truth.

Dates are bounded too (MIN_DATE … today + MAX_YEARS_AHEAD years): nothing before the
system existed, nothing far enough ahead to overflow date arithmetic.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

from booking_app.config import SUPPORTED_LOCALES
from booking_app.i18n import N_
from booking_app.services.errors import InvalidInput

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

# --- characters ---------------------------------------------------------------------------
# (regex sources in ASCII escapes: the same text is a Python and an ECMA-262 pattern)
# Lone surrogates are refused too but left out of the published patterns: pattern engines
# that work on Unicode scalar values (Rust's, which API fuzzers use) can't compile a surrogate
# range and would drop the whole pattern, and UTF-8 JSON carries them only as \u escapes.
_PUBLISHED_NEVER = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff"
_NEVER = _PUBLISHED_NEVER + r"\ud800-\udfff"
_LINE_BREAKS = r"\x09\x0a\x0d\u2028\u2029"
#: JSON Schema pattern of a single-line text field (no control characters, no line breaks)
SINGLE_LINE_PATTERN = rf"^[^{_PUBLISHED_NEVER}{_LINE_BREAKS}]*$"
#: JSON Schema pattern of a multi-line text field (TAB, LF and CR allowed)
MULTI_LINE_PATTERN = rf"^[^{_PUBLISHED_NEVER}]*$"
_BAD_MULTI = re.compile(f"[{_NEVER}]")
_BAD_SINGLE = re.compile(f"[{_NEVER}{_LINE_BREAKS}]")
_LINE_BREAK = re.compile(f"[{_LINE_BREAKS}]")

BAD_CHARACTERS = N_("This field contains characters that are not allowed.")
LINE_BREAKS = N_("This field must fit on one line (no tabs or line breaks).")
NOT_TEXT = N_("Enter text.")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """The msgid saying why `value` breaks the character rule, or None when it is clean."""
    if multiline:
        return BAD_CHARACTERS if _BAD_MULTI.search(value) else None
    if not _BAD_SINGLE.search(value):
        return None
    return BAD_CHARACTERS if _BAD_MULTI.search(value) else LINE_BREAKS


def clean_text(value: object, *, field: str, multiline: bool = False) -> str:
    """`value` itself when it is a str that keeps the character rule; else InvalidInput."""
    if not isinstance(value, str):
        raise InvalidInput(NOT_TEXT, field=field)
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise InvalidInput(problem, field=field)
    return value


def secret(value: object, *, field: str = "password") -> str:
    """A password or token as typed: any text except control characters and lone surrogates
    (it is hashed, never stored, but must encode as UTF-8)."""
    return clean_text(value, field=field, multiline=True)


def username(value: str) -> str:
    value = clean_text(value or "", field="username").strip()
    if not USERNAME_RE.fullmatch(value):
        raise InvalidInput(N_("Username must be 3–64 letters, digits, dots, dashes or underscores."), field="username")
    return value


def email(value: str) -> str:
    value = clean_text(value or "", field="email").strip()
    if len(value) > 254 or not EMAIL_RE.fullmatch(value):
        raise InvalidInput(N_("Enter a valid email address."), field="email")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def phone(value: str | None) -> str | None:
    if value is None:
        return None
    value = clean_text(value, field="phone")
    cleaned = re.sub(r"[\s().-]", "", value)
    if not cleaned:
        return None
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not E164_RE.fullmatch(cleaned):
        raise InvalidInput(N_("Enter the phone number in international format, e.g. +14155550123."), field="phone")
    return cleaned


def locale(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in SUPPORTED_LOCALES:
        raise InvalidInput(N_("This language is not supported."), field="locale")
    return value


def timezone(value: str | None, field: str = "timezone") -> str | None:
    if value is None:
        return None
    value = clean_text(value, field=field)
    if not value or len(value) > 64 or value.startswith("/") or ".." in value:
        raise InvalidInput(N_("Unknown time zone."), field=field)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(N_("Unknown time zone."), field=field) from None
    return value


def currency(value: str) -> str:
    value = clean_text(value or "", field="currency").strip().upper()
    if not CURRENCY_RE.fullmatch(value):
        raise InvalidInput(N_("Currency must be a three-letter ISO code such as USD or EUR."), field="currency")
    return value


def text(value: str | None, *, field: str, max_length: int, required: bool = False, multiline: bool = False) -> str:
    """Free text (a name, a note, a search…): the character rule (single-line unless
    `multiline`), then trimmed, required or not, at most `max_length` characters."""
    value = clean_text(value if value is not None else "", field=field, multiline=multiline).strip()
    if required and not value:
        raise InvalidInput(N_("This field is required."), field=field)
    if len(value) > max_length:
        raise InvalidInput(N_("This field is too long (at most {max} characters)."), field=field, max=max_length)
    return value


#: the shape of the machine reasons the system writes into `cancel_reason` ("hold_expired",
#: "approval_expired", …): webhook receivers and the payment rules tell them from typed text by it
_MACHINE_REASON = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")
MACHINE_REASON = N_("Write the reason in words: codes like “hold_expired” are kept for the system.")


def reason(value: str | None, *, system: bool = False) -> str | None:
    """A cancellation or decline reason (text(), at most 500 characters), or None. Typed by a
    person, it is never shaped like a machine reason, which they could otherwise pass off as
    the system's (a fake "hold_expired" would even let a late payment revive the booking);
    `system` (a job or webhook handler: Actor.is_system) writes its own codes."""
    value = text(value, field="reason", max_length=500, multiline=True) or None
    if value is not None and not system and _MACHINE_REASON.fullmatch(value.casefold()):
        raise InvalidInput(MACHINE_REASON, field="reason")
    return value


# --- dates ------------------------------------------------------------------------------------

#: the earliest date any input may name (reports, searches, bookings, sessions)
MIN_DATE = dt.date(2000, 1, 1)
#: how far ahead any input date may lie, in years from today (bookings are bounded tighter
#: by each bookable's max_advance_days)
MAX_YEARS_AHEAD = 10


def max_date(today: dt.date | None = None) -> dt.date:
    """The last date an input may name: today + MAX_YEARS_AHEAD years (Feb 29 → Feb 28)."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    try:
        return today.replace(year=today.year + MAX_YEARS_AHEAD)
    except ValueError:
        return today.replace(year=today.year + MAX_YEARS_AHEAD, day=28)


def _out_of_range(field: str) -> InvalidInput:
    return InvalidInput(N_("Enter a date between {min} and {max}."), field=field,
                        min=MIN_DATE.isoformat(), max=max_date().isoformat())


def bounded_date(value: dt.date, *, field: str) -> dt.date:
    """`value` when it lies within MIN_DATE … max_date(); else InvalidInput."""
    if not MIN_DATE <= value <= max_date():
        raise _out_of_range(field)
    return value


def date(value: object, *, field: str) -> dt.date:
    """A date or 'YYYY-MM-DD' → a date within the bounds (a datetime is refused)."""
    day: dt.date | None = None
    if isinstance(value, dt.datetime):
        day = None
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str) and len(value) <= 40 and text_problem(value) is None:
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            day = None
    if day is None:
        raise InvalidInput(N_("Enter a date as YYYY-MM-DD."), field=field)
    return bounded_date(day, field=field)


def aware_datetime(value: object, *, field: str) -> dt.datetime:
    """An aware datetime (or ISO 8601 text with an offset) within the date bounds → aware UTC."""
    bad_format = InvalidInput(N_("Enter a date and time in ISO 8601 format with a time zone offset."), field=field)
    if isinstance(value, str):
        text_value = value.strip()
        if len(text_value) > 64 or text_problem(text_value) is not None:
            raise bad_format
        if text_value.endswith(("Z", "z")):
            text_value = text_value[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(text_value)
        except ValueError:
            raise bad_format from None
    if not isinstance(value, dt.datetime):
        raise bad_format
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(N_("The date and time must include a time zone offset."), field=field)
    # the naive date is checked first: converting year 1 or 9999 to UTC could overflow
    if not MIN_DATE <= value.date() <= max_date():
        raise _out_of_range(field)
    return value.astimezone(dt.timezone.utc)


#: the same parsers under the names the services call them by
parse_date = date
parse_aware_datetime = aware_datetime


# --- numbers and times of day -----------------------------------------------------------------

def parse_int(value: Any, *, field: str, lo: int, hi: int) -> int:
    """A whole number (int, or text/float holding one; never a bool) within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, bool) or value is None or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(N_("Enter a whole number."), field=field) from None
    if value < lo or value > hi:
        raise InvalidInput(N_("Must be between {min} and {max}."), field=field, min=lo, max=hi)
    return value


_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
#: how an end time of "24:00" (the end of the day) is stored
END_OF_DAY = dt.time(23, 59, 59)


def parse_hhmm(value: Any, *, field: str) -> dt.time:
    """'HH:MM' (24 h) → time. A dt.time is accepted as is (seconds must be 0)."""
    if isinstance(value, dt.time):
        if value.second or value.microsecond or value.tzinfo:
            raise InvalidInput(N_("Times must be written as HH:MM."), field=field)
        return value
    if not isinstance(value, str) or not _TIME_RE.match(value.strip()):
        raise InvalidInput(N_("Times must be written as HH:MM."), field=field)
    h, m = value.strip().split(":")
    return dt.time(int(h), int(m))


def parse_end_time(value: Any, *, field: str) -> dt.time:
    """Like parse_hhmm but also accepts "24:00" (end of day), stored as END_OF_DAY."""
    if isinstance(value, str) and value.strip() == "24:00":
        return END_OF_DAY
    return parse_hhmm(value, field=field)


def fmt_hhmm(value: dt.time) -> str:
    """A stored time of day → 'HH:MM' (END_OF_DAY → '24:00')."""
    if value == END_OF_DAY:
        return "24:00"
    return value.strftime("%H:%M")


# --- time zones -------------------------------------------------------------------------------

def zone(name: str | None, default: str = "UTC") -> zoneinfo.ZoneInfo:
    """The IANA zone `name` (or `default` when it is empty) as a tzinfo; UTC when that is not
    a known zone. The one helper for turning a stored zone name into a zone (zoneinfo caches)."""
    try:
        return zoneinfo.ZoneInfo(name or default)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return zoneinfo.ZoneInfo("UTC")
