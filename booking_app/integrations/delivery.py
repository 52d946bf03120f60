"""What every message transport (email, SMS) shares: the error it raises when the provider
did not take a message, the default timeout, and the in-memory record of console transports."""
from __future__ import annotations

import collections
import threading

DEFAULT_TIMEOUT_SECONDS = 15.0


class DeliveryError(Exception):
    """The provider did not accept the message. `transient` errors are worth retrying soon."""

    def __init__(self, message: str, *, transient: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class ConsoleRecorder:
    """Console transports keep their last messages in memory (per subclass), for tests
    and for a look at what would have been sent."""

    name = "console"
    _recent: collections.deque
    _lock: threading.Lock

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._recent = collections.deque(maxlen=100)
        cls._lock = threading.Lock()

    def _record(self, message) -> None:
        with self._lock:
            self._recent.append(message)

    @classmethod
    def recent(cls) -> list:
        with cls._lock:
            return list(cls._recent)

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls._recent.clear()
