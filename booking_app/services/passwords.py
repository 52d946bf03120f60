"""Passwords: the strength rule for a new one, and hashing with libpass (maintained passlib):
argon2id, bcrypt accepted for old hashes.

OWASP argon2id parameters: 19 MiB memory, 2 iterations, parallelism 1. `needs_rehash`
tells when a stored hash should be upgraded at the next successful login. The strength
rule lives here, below accounts and auth, so both use it without importing each other.
"""
from __future__ import annotations

import datetime as dt
import functools

from passlib.context import CryptContext

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.services import audit, ratelimit, validation
from booking_app.services.common_passwords import is_common
from booking_app.services.errors import InvalidInput

MIN_PASSWORD = 8
MAX_PASSWORD = 128


def check_password_strength(password: str) -> None:
    """InvalidInput (field "password") unless `password` is 8-128 characters, free of control
    characters and not a commonly used one."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(N_("Password must be at least {min} characters."), field="password", min=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(N_("Password must be at most {max} characters."), field="password", max=MAX_PASSWORD)
    validation.secret(password, field="password")
    if is_common(password):
        raise InvalidInput(N_("This password is too common. Choose another one."), field="password")


@functools.lru_cache(maxsize=1)
def _context() -> CryptContext:
    return CryptContext(
        schemes=["argon2", "bcrypt"],
        deprecated="auto",
        argon2__type="ID",
        argon2__memory_cost=19456,
        argon2__time_cost=2,
        argon2__parallelism=1,
    )


def hash_password(password: str) -> str:
    return _context().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _context().verify(password, password_hash)
    except (ValueError, TypeError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _context().needs_update(password_hash)


@functools.lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against for unknown users, so that login takes the same time."""
    return hash_password("not-a-real-password-for-timing")


WRONG_CURRENT_PASSWORD = N_("Your current password is not correct.")


def check_current_password(*, user_id: int, password_hash: str, given: object,
                           field: str = "current_password") -> None:
    """The signed-in user's password, asked again (a new email or password, account deletion,
    two-factor changes, re-authentication): InvalidInput on `field` when wrong (audited as a
    failed re-auth). Wrong answers are throttled per account (growing delays): a stolen
    session can't be used to guess the password at full speed; the attempt counts until it
    proves right."""
    if not given or not isinstance(given, str) or len(given) > 1024 \
            or validation.text_problem(given, multiline=True):
        raise InvalidInput(WRONG_CURRENT_PASSWORD, field=field)
    key = f"password:user:{user_id}"
    if ratelimit.enabled():
        settings = get_settings()
        with db.unit_of_work() as s:
            ratelimit.attempt(s, {key: ratelimit.Backoff(
                free=settings.current_password_max_failures, base=settings.login_delay_base_seconds,
                cap=settings.current_password_delay_max_seconds,
                window=dt.timedelta(minutes=settings.login_failure_window_minutes))})
    if not verify_password(given, password_hash):
        audit.record_now(actor_id=user_id, action="user.reauth_failed", entity="user", entity_id=user_id)
        raise InvalidInput(WRONG_CURRENT_PASSWORD, field=field)
    if ratelimit.enabled():
        with db.unit_of_work() as s:
            ratelimit.clear(s, key)
