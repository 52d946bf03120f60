"""Request and response models of the REST API (users, catalog, bookings) and the
problem+json documentation shared by every router.

Request models forbid unknown fields and bound every string, so that wrong types,
missing fields and huge inputs are a 422 before a service is called; the services
validate the meaning (time zones, e-mail syntax, policies) and raise InvalidInput.
Datetimes in responses are aware UTC and serialise as ISO 8601 with `Z`.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from booking_app.config import SUPPORTED_LOCALES

LocaleCode = Literal[SUPPORTED_LOCALES]  # type: ignore[valid-type]
RoleName = Literal["admin", "provider", "customer"]
#: ids are 32-bit on PostgreSQL; larger path values are a 422, not a database error
MAX_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


# --- problem+json ----------------------------------------------------------------------

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
    "additionalProperties": True,
}

_PROBLEM_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not signed in, or the token is invalid, expired or revoked",
    403: "Not allowed",
    404: "Not found",
    409: "Not available / conflict",
    422: "Invalid input",
    429: "Rate limited (see Retry-After)",
    503: "Busy, nothing was changed (see Retry-After)",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json answers for `codes`."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "description": _PROBLEM_DESCRIPTIONS.get(code, "Error"),
            "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
        }
        if code in (429, 503):
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        out[code] = entry
    return out


#: what (almost) every route may answer
COMMON_PROBLEMS = problem_responses(401, 403, 404, 422, 503)


def utc_iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


class ApiModel(BaseModel):
    """Base of the response models: UTC datetimes with Z."""

    model_config = ConfigDict(from_attributes=True)

    @field_serializer("*", when_used="json")
    def _utc(self, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return utc_iso(value)
        return value


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# --- users -----------------------------------------------------------------------------

class UserOut(ApiModel):
    id: int
    username: str
    email: str
    full_name: str
    phone: str | None
    role: RoleName
    locale: str
    timezone: str
    notify_email: bool
    notify_sms: bool
    created_at: dt.datetime


class AdminUserOut(UserOut):
    is_active: bool
    last_login_at: dt.datetime | None


class UserPageOut(ApiModel):
    items: list[AdminUserOut]
    total: int


class RegisterIn(RequestModel):
    username: str = Field(min_length=1, max_length=64, examples=["casey"])
    email: str = Field(min_length=3, max_length=254, examples=["casey@example.com"])
    password: str = Field(min_length=1, max_length=128)
    full_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, examples=["+14155550123"])
    locale: LocaleCode | None = None
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Madrid"])


class LoginIn(RequestModel):
    username: str = Field(min_length=1, max_length=254, description="username or email")
    password: str = Field(min_length=1, max_length=128)


class TokenOut(ApiModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ProfileUpdateIn(RequestModel):
    full_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    locale: LocaleCode | None = None
    timezone: str | None = Field(default=None, max_length=64)
    notify_email: bool | None = Field(default=None, strict=True)
    notify_sms: bool | None = Field(default=None, strict=True)
    password: str | None = Field(default=None, min_length=1, max_length=128)
    current_password: str | None = Field(default=None, min_length=1, max_length=128)


class AccountDeleteIn(RequestModel):
    current_password: str = Field(min_length=1, max_length=128)


class PasswordResetRequestIn(RequestModel):
    email: str = Field(min_length=3, max_length=254)


class PasswordResetConfirmIn(RequestModel):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=128)


class AcceptedOut(ApiModel):
    detail: str


class RoleIn(RequestModel):
    role: RoleName


class ActiveIn(RequestModel):
    active: bool = Field(strict=True)


class AuditEventOut(ApiModel):
    id: int
    actor_id: int | None
    action: str
    entity: str
    entity_id: str
    data: dict[str, Any]
    at: dt.datetime


class AuditPageOut(ApiModel):
    items: list[AuditEventOut]
    total: int
