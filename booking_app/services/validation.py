"""Field validators shared by services (and reused by API schemas)."""
from __future__ import annotations

import re
import zoneinfo

from booking_app.config import SUPPORTED_LOCALES
from booking_app.i18n import N_
from booking_app.services.errors import InvalidInput

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def username(value: str) -> str:
    value = (value or "").strip()
    if not USERNAME_RE.match(value):
        raise InvalidInput(N_("Username must be 3–64 letters, digits, dots, dashes or underscores."), field="username")
    return value


def email(value: str) -> str:
    value = (value or "").strip()
    if len(value) > 254 or not EMAIL_RE.match(value):
        raise InvalidInput(N_("Enter a valid email address."), field="email")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def phone(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = re.sub(r"[\s().-]", "", value)
    if not cleaned:
        return None
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not E164_RE.match(cleaned):
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
    if not value or len(value) > 64 or value.startswith("/") or ".." in value:
        raise InvalidInput(N_("Unknown time zone."), field=field)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(N_("Unknown time zone."), field=field) from None
    return value


def currency(value: str) -> str:
    value = (value or "").strip().upper()
    if not CURRENCY_RE.match(value):
        raise InvalidInput(N_("Currency must be a three-letter ISO code such as USD or EUR."), field="currency")
    return value


def text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(N_("This field is required."), field=field)
    if len(value) > max_length:
        raise InvalidInput(N_("This field is too long (at most {max} characters)."), field=field, max=max_length)
    return value
