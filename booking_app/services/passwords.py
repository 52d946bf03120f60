"""Passwords: the strength rule for a new one, and hashing with libpass (maintained passlib):
argon2id, bcrypt accepted for old hashes.

OWASP argon2id parameters: 19 MiB memory, 2 iterations, parallelism 1. `needs_rehash`
tells when a stored hash should be upgraded at the next successful login. The strength
rule lives here, below accounts and auth, so both use it without importing each other.
"""
from __future__ import annotations

import functools

from passlib.context import CryptContext

from booking_app.i18n import N_
from booking_app.services import validation
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
