"""Request and response models of the REST API (users, catalog, bookings) and the
problem+json documentation shared by every router.

Request models forbid unknown fields and bound every string, so that wrong types,
missing fields and huge inputs are a 422 before a service is called; the services
validate the meaning (time zones, e-mail syntax, policies) and raise InvalidInput.
Datetimes in responses are aware UTC and serialise as ISO 8601 with `Z`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler, PlainSerializer, WithJsonSchema
from pydantic_core import CoreSchema

from booking_app.config import SUPPORTED_LOCALES
from booking_app.services import validation

LocaleCode = Literal[SUPPORTED_LOCALES]  # type: ignore[valid-type]
RoleName = Literal["admin", "provider", "customer"]
#: ids are 32-bit on PostgreSQL; larger path values are a 422, not a database error
MAX_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


# --- text: one character rule (services/validation.py), refused here with a 422 ------------

@dataclasses.dataclass(frozen=True)
class _Pattern:
    """Documents a str's JSON Schema `pattern` (checked by the validator beside it, in Python:
    pydantic's own regex engine can't express lone surrogates)."""

    pattern: str

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


def _single_line(value: str) -> str:
    problem = validation.text_problem(value)
    if problem is not None:
        raise ValueError(problem)  # a msgid: translated by the 422 handler
    return value


def _multi_line(value: str) -> str:
    problem = validation.text_problem(value, multiline=True)
    if problem is not None:
        raise ValueError(problem)
    return value


#: a name, an email, a search…: no control characters, no tabs or line breaks
SingleLineStr = Annotated[str, AfterValidator(_single_line), _Pattern(validation.SINGLE_LINE_PATTERN)]
#: notes, descriptions: no control characters except TAB, LF and CR
MultiLineStr = Annotated[str, AfterValidator(_multi_line), _Pattern(validation.MULTI_LINE_PATTERN)]
#: a password or token as typed: the multi-line rule (it must encode as UTF-8)
SecretText = MultiLineStr


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
        "request_id": {"type": "string", "description": "the request's id, as in the X-Request-ID "
                       "response header and the server's log lines"},
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
    405: "Method not allowed (see Allow)",
    409: "Not available / conflict",
    413: "Request body too large",
    422: "Invalid input (also a body that is not JSON)",
    429: "Rate limited (see Retry-After)",
    502: "The payment provider failed",
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


_UTC_ISO = PlainSerializer(utc_iso, return_type=str, when_used="json")
#: a time in a response: ISO 8601 in UTC with `Z` (a naive value is taken as UTC)
UtcDateTime = Annotated[dt.datetime, _UTC_ISO, WithJsonSchema({"type": "string", "format": "date-time"})]


def _bare_datetime(tp: Any, metadata: list[Any]) -> bool:
    """Whether annotation `tp` (with field `metadata`) holds a datetime not declared UtcDateTime."""
    if tp is dt.datetime:
        return not any(m is _UTC_ISO for m in metadata)
    if typing.get_origin(tp) is Annotated:
        inner, *more = typing.get_args(tp)
        return _bare_datetime(inner, more)
    return any(_bare_datetime(arg, []) for arg in typing.get_args(tp))


class ApiModel(BaseModel):
    """Base of the response models: times are declared `UtcDateTime` (checked when a model
    is defined), so that they serialise as UTC with Z and are documented as date-time."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, field in cls.model_fields.items():
            if _bare_datetime(field.annotation, field.metadata):
                raise TypeError(f"{cls.__name__}.{name}: declare response times as UtcDateTime")


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
    created_at: UtcDateTime


class AdminUserOut(UserOut):
    is_active: bool
    last_login_at: UtcDateTime | None


class UserPageOut(ApiModel):
    items: list[AdminUserOut]
    total: int


class RegisterIn(RequestModel):
    username: SingleLineStr = Field(min_length=1, max_length=64, examples=["casey"])
    email: SingleLineStr = Field(min_length=3, max_length=254, examples=["casey@example.com"])
    password: SecretText = Field(min_length=1, max_length=128)
    full_name: SingleLineStr | None = Field(default=None, max_length=200)
    phone: SingleLineStr | None = Field(default=None, max_length=32, examples=["+14155550123"])
    locale: LocaleCode | None = None
    timezone: SingleLineStr | None = Field(default=None, max_length=64, examples=["Europe/Madrid"])


class LoginIn(RequestModel):
    username: SingleLineStr = Field(min_length=1, max_length=254, description="username or email")
    password: SecretText = Field(min_length=1, max_length=128)


class TokenOut(ApiModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ProfileUpdateIn(RequestModel):
    full_name: SingleLineStr | None = Field(default=None, max_length=200)
    email: SingleLineStr | None = Field(default=None, min_length=3, max_length=254)
    phone: SingleLineStr | None = Field(default=None, max_length=32)
    locale: LocaleCode | None = None
    timezone: SingleLineStr | None = Field(default=None, max_length=64)
    notify_email: bool | None = Field(default=None, strict=True)
    notify_sms: bool | None = Field(default=None, strict=True)
    password: SecretText | None = Field(default=None, min_length=1, max_length=128)
    current_password: SecretText | None = Field(default=None, min_length=1, max_length=128)


class AccountDeleteIn(RequestModel):
    current_password: SecretText = Field(min_length=1, max_length=128)


class PasswordResetRequestIn(RequestModel):
    email: SingleLineStr = Field(min_length=3, max_length=254)


class PasswordResetConfirmIn(RequestModel):
    token: SingleLineStr = Field(min_length=1, max_length=200)
    password: SecretText = Field(min_length=1, max_length=128)


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
    at: UtcDateTime


class AuditPageOut(ApiModel):
    items: list[AuditEventOut]
    total: int
