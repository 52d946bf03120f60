"""Password hashing: libpass (maintained passlib) with argon2id, bcrypt accepted for old hashes.

OWASP argon2id parameters: 19 MiB memory, 2 iterations, parallelism 1. `needs_rehash`
tells when a stored hash should be upgraded at the next successful login.
"""
from __future__ import annotations

import functools

from passlib.context import CryptContext


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
