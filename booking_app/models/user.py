"""User Service tables: users, API tokens (sessions), two-factor sign-in, password-reset tokens,
rate-limit events."""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class Role(str, enum.Enum):
    admin = "admin"
    provider = "provider"
    customer = "customer"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    full_name: str = Field(default="", max_length=200)
    phone: str | None = Field(default=None, max_length=20)
    role: str = Field(default=Role.customer.value, max_length=16, index=True)
    locale: str = Field(default="en", max_length=8)
    timezone: str = Field(default="UTC", max_length=64)
    notify_email: bool = True
    notify_sms: bool = False
    is_active: bool = Field(default=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_login_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class AuthToken(SQLModel, table=True):
    """An opaque bearer token, one signed-in session; only its SHA-256 is stored.

    `last_seen_at` (updated at most once a minute) drives the staff idle timeout and the
    sessions list, with the device (`user_agent`) and `ip` it signed in from; `reauth_at` is
    the last time its user proved the password or a code again (sensitive actions);
    `scope` "mfa_enrol" marks a token that may only enrol in two-factor sign-in."""

    __tablename__ = "auth_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_seen_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    reauth_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    user_agent: str = Field(default="", max_length=300)
    ip: str | None = Field(default=None, max_length=45)
    scope: str | None = Field(default=None, max_length=16)


class UserMfa(SQLModel, table=True):
    """A user's TOTP secret (services/mfa.py): sealed with a key derived from SECRET_KEY, active
    once `enabled_at` is set (confirmed by a first code). `last_step` is the 30-second time
    step of the last code accepted: a code is never accepted twice."""

    __tablename__ = "user_mfa"

    user_id: int = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    secret_sealed: str = Field(max_length=400)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    enabled_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_step: int = Field(default=0)


class MfaRecoveryCode(SQLModel, table=True):
    """A single-use recovery code; only a hash of it is stored."""

    __tablename__ = "mfa_recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    code_hash: str = Field(max_length=64)
    used_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class MfaChallenge(SQLModel, table=True):
    """A sign-in waiting for its second factor: the password was right; a code and this
    challenge (only its SHA-256 stored, valid minutes) issue the token."""

    __tablename__ = "mfa_challenges"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    challenge_hash: str = Field(max_length=64, unique=True, index=True)
    user_agent: str = Field(default="", max_length=300)
    ip: str | None = Field(default=None, max_length=45)
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class PasswordResetToken(SQLModel, table=True):
    __tablename__ = "password_reset_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class RateLimitEvent(SQLModel, table=True):
    """One counted event (a failed login, a reset request) for a key such as `login:ip:1.2.3.4`.

    Kept in the database so that every app process sees the same counts.
    """

    __tablename__ = "rate_limit_events"
    __table_args__ = (Index("ix_rate_limit_events_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class BrowserSessionHandoff(SQLModel, table=True):
    """A sign-in waiting for its browser (services/browser_sessions.py): a single-use code,
    valid for seconds, that the browser trades for the HttpOnly session cookie.

    Only the code's SHA-256 is stored, and the session token sealed with a key derived from
    the code: the row alone reveals neither. A row lives until it is used or expires."""

    __tablename__ = "browser_session_handoffs"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    code_hash: str = Field(max_length=64, unique=True, index=True)
    sealed_token: str = Field(max_length=400)
    token_expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
