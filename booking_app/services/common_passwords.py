"""The 1,000 most common passwords (zxcvbn's ranked list of leaked passwords)."""
from __future__ import annotations

import functools

TOP_N = 1000


@functools.lru_cache(maxsize=1)
def _top() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"][:TOP_N])


def is_common(password: str) -> bool:
    return password.lower() in _top()
