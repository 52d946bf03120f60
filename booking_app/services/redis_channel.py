"""One Redis channel subscriber per process: the daemon thread that live_slots and authcache
use to hear other processes' messages.

`Subscriber.ensure(url)` starts the thread once per process and Redis URL (again after a
fork, and a new URL replaces the old thread). The thread subscribes, hands every message's
bytes to `on_message`, and after any error reports it to `on_error`, waits 2 s and
reconnects; `on_connect(reconnected)` runs on each subscription, so the owner can make up
for messages it may have missed while it was not listening. Publishing stays with each owner,
through the shared per-URL client `publisher(url)`.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

RETRY_SECONDS = 2.0

_publishers: dict[str, Any] = {}


def publisher(url: str) -> Any:
    """This process's client for publishing on REDIS_URL `url` (made once per URL). Its 1 s
    timeouts keep a dead Redis from holding up the owner's publish for long."""
    client = _publishers.get(url)
    if client is None:
        import redis  # (only with REDIS_URL)

        client = _publishers[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return client


class Subscriber:
    def __init__(self, name: str, channel: Callable[[str], str], *, on_message: Callable[[bytes], None],
                 on_connect: Callable[[bool], None], on_error: Callable[[Exception], None]) -> None:
        self.name, self.channel = name, channel
        self.on_message, self.on_connect, self.on_error = on_message, on_connect, on_error
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._url: str | None = None

    def ensure(self, url: str | None) -> None:
        """Listen on `url`'s channel in this process (no-op without a URL or when already listening)."""
        if not url or self.listening(url):
            return
        with self._lock:
            if self.listening(url):
                return
            self._pid, self._url = os.getpid(), url
            self._thread = threading.Thread(target=self._listen, args=(url,), name=self.name, daemon=True)
            self._thread.start()

    def listening(self, url: str) -> bool:
        return (self._thread is not None and self._pid == os.getpid() and self._url == url
                and self._thread.is_alive())

    def _listen(self, url: str) -> None:
        import redis  # (only with REDIS_URL)

        first = True
        while self._url == url:  # a listener for another URL replaces this one
            try:
                client = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel(url))
                self.on_connect(not first)
                first = False
                while self._url == url:
                    message = pubsub.get_message(timeout=1.0)
                    data = message.get("data") if message else None
                    if isinstance(data, bytes):
                        self.on_message(data)
                pubsub.close()
            except Exception as exc:  # noqa: BLE001 - reconnect; the owner's on_error says what it lost
                self.on_error(exc)
                first = False
                time.sleep(RETRY_SECONDS)
