"""Live slots: the change feed that keeps open bookable pages' free times fresh.

A capacity change notes what it touched (bookable, provider, the UTC block) on its
session (`note`, and the `after_flush` listener below for every Booking row the ORM writes
in a `capacity.transaction()`); the notes are published once the transaction has committed
(`capacity.transaction()` calls `publish_noted`; any other unit of work that noted something,
such as a catalog edit, publishes from the `after_commit` listener). `publish` tells this process's watchers at once and, with REDIS_URL set, queues
the message for a daemon thread that PUBLISHes it on a Redis channel — never a Redis round
trip on the booking's path; a dead Redis pauses publishing (as authcache does) and never
fails or delays a booking. Each process has at most one subscriber thread (started with its
first watcher) that hands other processes' changes to its watchers, reconnecting after
errors (a reconnect tells every watcher to refresh: changes may have been missed).

Watchers (`open_watch`) are the open pages: an asyncio side (`Watch.wait`) fed from those
threads. A watcher refreshes only the days a change touched (`days_touched`), through
`free_slots`, a short per-process cache: one database read per change and process,
whatever the number of viewers. Design notes: docs/live-slots.md.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import queue
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from booking_app import db
from booking_app.config import get_settings
from booking_app.models import Bookable, Booking
from booking_app.services import availability, redis_channel
from booking_app.services.errors import ServiceError
from booking_app.services.slots import SlotView
from booking_app.services.validation import zone

log = logging.getLogger(__name__)

#: the Redis channel, per database number of REDIS_URL (`channel`): pub/sub ignores database
#: numbers, and deployments (or test runs) sharing a server must not hear each other
CHANNEL = "booking:live-slots"
#: the key of a capacity transaction's notes in `Session.info` (set by `begin`)
INFO_KEY = "live_slots"
#: how long a computed slot list is reused by the viewers of one process
CACHE_SECONDS = 2.0
#: after a failed PUBLISH, messages are dropped (not queued) for this long
PAUSE_SECONDS = 10.0
QUEUE_MAX = 10_000
#: Booking columns whose change changes what a slot holds (a notes edit does not)
_SLOT_COLUMNS = ("status", "bookable_id", "provider_id", "session_id", "block_start_at", "block_end_at",
                 "quantity", "hold_expires_at")


@dataclass(frozen=True)
class Change:
    """Something that may change free times: a bookable's (or, with `bookable_id` None, every
    bookable of `provider_id`'s) slots overlapping [start, end) (UTC; None: any time)."""

    bookable_id: int | None
    provider_id: int | None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def to_wire(self) -> list[Any]:
        return [self.bookable_id, self.provider_id, _epoch(self.start), _epoch(self.end)]

    @classmethod
    def from_wire(cls, item: Any) -> Change | None:
        try:
            bid, pid, a, z = item
            return cls(_int_or_none(bid), _int_or_none(pid), _from_epoch(a), _from_epoch(z))
        except (TypeError, ValueError, OverflowError, OSError):
            return None


def _epoch(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _from_epoch(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not an epoch")
    return dt.datetime.fromtimestamp(value, dt.UTC)


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not an id")
    return value


# ---------------------------------------------------------------------------------------
# Publishing (after commit)
# ---------------------------------------------------------------------------------------

def begin(session: Session) -> None:
    """Mark `session` as a capacity transaction: its Booking writes are noted from now on."""
    session.info[INFO_KEY] = set()


def note(session: Session, change: Change) -> None:
    """Note a change on a transaction's session; published by `publish_noted` after commit
    (nothing is published for a rollback). Outside `begin`: noted too (a catalog edit)."""
    session.info.setdefault(INFO_KEY, set()).add(change)


def note_block(session: Session, b: Any, start: dt.datetime, end: dt.datetime) -> None:
    """Note that bookable `b` (a Bookable or a row with id and provider_id) changed in [start, end)."""
    session.info.setdefault(INFO_KEY, set()).add(Change(b.id, b.provider_id, start, end))


def note_bookable(session: Session, b: Any) -> None:
    """Note that every slot of bookable `b` may have changed (hours, capacity, sessions)."""
    note(session, Change(b.id, b.provider_id))


def publish_noted(session: Session) -> None:
    """After commit: publish what the transaction noted (fire-and-forget)."""
    changes = session.info.pop(INFO_KEY, None)
    if changes:
        publish(changes)


@event.listens_for(Session, "after_commit")
def _publish_on_commit(session: Session) -> None:
    """Any unit of work that noted changes (a catalog edit) publishes them once committed."""
    if session.info.get(INFO_KEY):
        publish_noted(session)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    noted = session.info.get(INFO_KEY)
    if noted:
        noted.clear()


@event.listens_for(Session, "after_flush")
def _note_flushed_bookings(session: Session, _context: Any) -> None:
    """Every Booking the ORM inserts, deletes or changes in a slot-relevant column, in a
    capacity transaction (`begin`): its block before and after."""
    noted = session.info.get(INFO_KEY)
    if noted is None:
        return
    dirty = session.dirty
    for obj in (*session.new, *dirty, *session.deleted):
        if not isinstance(obj, Booking):
            continue
        state = inspect(obj)
        if obj in dirty:
            old: dict[str, Any] = {}
            for name in _SLOT_COLUMNS:
                hist = state.attrs[name].history
                if hist.has_changes():
                    old[name] = hist.deleted[0] if hist.deleted else None
            if not old:
                continue
            if any(k in old for k in ("block_start_at", "block_end_at", "bookable_id")):
                noted.add(Change(old.get("bookable_id", obj.bookable_id), old.get("provider_id", obj.provider_id),
                                 old.get("block_start_at", obj.block_start_at),
                                 old.get("block_end_at", obj.block_end_at)))
        noted.add(Change(obj.bookable_id, obj.provider_id, obj.block_start_at, obj.block_end_at))


_ORIGIN = uuid.uuid4().hex[:12]  # this process's messages come back through Redis: skip them
_queue: queue.Queue[list[Change]] = queue.Queue(maxsize=QUEUE_MAX)
_publisher: threading.Thread | None = None
_publisher_pid: int | None = None
_paused_until = 0.0
_redis_failed = False
_lock = threading.Lock()


def publish(changes: Iterable[Change]) -> None:
    """Tell this process's watchers now, and (REDIS_URL) every other process soon: the
    message is queued for the publisher thread, so this never waits on Redis."""
    batch = list(changes)
    if not batch:
        return
    dispatch(batch)
    if not get_settings().redis_url or time.monotonic() < _paused_until:
        return
    _ensure_publisher()
    try:
        _queue.put_nowait(batch)
    except queue.Full:  # Redis far behind: drop (viewers still see it at their next refresh)
        pass


def _ensure_publisher() -> None:
    global _publisher, _publisher_pid
    if _publisher is not None and _publisher_pid == os.getpid() and _publisher.is_alive():
        return
    with _lock:
        if _publisher is not None and _publisher_pid == os.getpid() and _publisher.is_alive():
            return
        _publisher_pid = os.getpid()
        _publisher = threading.Thread(target=_publish_loop, name="live-slots-publisher", daemon=True)
        _publisher.start()


def _publish_loop() -> None:
    """PUBLISH queued batches (several at once when they pile up), forever."""
    global _paused_until
    while True:
        batch = _queue.get()
        while len(batch) < 500:
            try:
                batch += _queue.get_nowait()
            except queue.Empty:
                break
        url = get_settings().redis_url
        if not url or time.monotonic() < _paused_until:
            continue
        try:
            message = json.dumps({"o": _ORIGIN, "c": [c.to_wire() for c in batch]}, separators=(",", ":"))
            redis_channel.publisher(url).publish(channel(url), message)
            _redis_ok()
        except Exception as exc:  # noqa: BLE001 - a dead Redis must never reach a booking
            _paused_until = time.monotonic() + PAUSE_SECONDS
            _redis_warning(exc)


def channel(url: str) -> str:
    """The channel of REDIS_URL `url`: CHANNEL and its database number."""
    parsed = urllib.parse.urlsplit(url)
    number = parsed.path.strip("/") or urllib.parse.parse_qs(parsed.query).get("db", ["0"])[0]
    return f"{CHANNEL}:{number if number.isdigit() else 0}"


def _redis_warning(exc: Exception) -> None:
    global _redis_failed
    if not _redis_failed:
        _redis_failed = True
        log.warning("live slots: Redis unavailable (%s); other processes' pages see changes at their next refresh",
                    exc)


def _redis_ok() -> None:
    global _redis_failed
    if _redis_failed:
        _redis_failed = False
        log.info("live slots: Redis reachable again")


# ---------------------------------------------------------------------------------------
# Watchers (open pages) and the subscriber thread
# ---------------------------------------------------------------------------------------

#: a change that means "refresh everything" (after a reconnect: messages may be lost)
EVERYTHING = Change(None, None)


class Watch:
    """One open page's subscription to a bookable's changes, read from asyncio
    (`wait`), fed from any thread (`deliver`)."""

    def __init__(self, *, bookable_id: int, provider_id: int, service: bool, timezone: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.bookable_id, self.provider_id, self.service, self.timezone = bookable_id, provider_id, service, timezone
        self._loop = loop
        self._event = asyncio.Event()
        self._pending: list[Change] = []
        self._lock = threading.Lock()

    def matches(self, c: Change) -> bool:
        if c is EVERYTHING or c == EVERYTHING:
            return True
        if c.bookable_id is not None and c.bookable_id == self.bookable_id:
            return True
        # a provider's services share their time; a provider-wide change (outside calendars)
        return c.provider_id == self.provider_id and (c.bookable_id is None or self.service)

    def deliver(self, changes: list[Change]) -> None:
        with self._lock:
            self._pending.extend(changes)
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # its loop is closed: the page is gone
            close_watch(self)

    async def wait(self, timeout: float) -> list[Change]:
        """The changes since the last call, waiting up to `timeout` seconds for one ([] then)."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        self._event.clear()
        with self._lock:
            changes, self._pending = self._pending, []
        return changes

    def close(self) -> None:
        close_watch(self)


_watches: set[Watch] = set()


def open_watch(*, bookable_id: int, loop: asyncio.AbstractEventLoop) -> Watch | None:
    """A watcher of `bookable_id`'s free times (None when there is no such bookable). One
    read of the bookable; starts this process's subscriber when REDIS_URL is set."""
    with db.read_session() as s:
        b = s.get(Bookable, bookable_id)
        if b is None:
            return None
        w = Watch(bookable_id=b.id, provider_id=b.provider_id, service=b.kind == "service",  # type: ignore[arg-type]
                  timezone=b.timezone, loop=loop)
    with _lock:
        _watches.add(w)
    _ensure_listener()
    return w


def close_watch(w: Watch) -> None:
    with _lock:
        _watches.discard(w)


def watcher_count() -> int:
    return len(_watches)


def dispatch(changes: list[Change]) -> None:
    """Hand `changes` to this process's watchers they concern (any thread). The cached slot
    lists of the bookables concerned are dropped first, so a notified watcher reads fresh ones."""
    if not _watches and not _cache:  # (no open page in this process: the common case)
        return
    deliveries = []
    with _lock:
        touched = {c.bookable_id for c in changes if c.bookable_id is not None}
        for w in _watches:
            mine = [c for c in changes if w.matches(c)]
            if mine:
                deliveries.append((w, mine))
                touched.add(w.bookable_id)
        if EVERYTHING in changes:
            touched |= {key[0] for key in _cache}
        for bookable_id in touched:
            _generations[bookable_id] = _generations.get(bookable_id, 0) + 1
        for key in [k for k in _cache if k[0] in touched]:
            del _cache[key]
    for w, mine in deliveries:
        w.deliver(mine)


def _ensure_listener() -> None:
    _subscriber.ensure(get_settings().redis_url)


def _on_message(data: bytes) -> None:
    changes = parse_message(data)
    if changes:
        dispatch(changes)


def _on_connect(reconnected: bool) -> None:
    if reconnected:
        dispatch([EVERYTHING])  # changes published while we were not listening: pages refresh


_subscriber = redis_channel.Subscriber("live-slots-listener", channel, on_message=_on_message,
                                       on_connect=_on_connect, on_error=_redis_warning)


def parse_message(data: bytes) -> list[Change]:
    """The changes of another process's message ([] for ours, or for anything malformed)."""
    try:
        body = json.loads(data.decode("utf-8"))
        if not isinstance(body, dict) or body.get("o") == _ORIGIN or not isinstance(body.get("c"), list):
            return []
        return [c for c in (Change.from_wire(item) for item in body["c"][:1000]) if c is not None]
    except (ValueError, UnicodeDecodeError):
        return []


# ---------------------------------------------------------------------------------------
# What a watcher refreshes, and the per-process cache of slot lists
# ---------------------------------------------------------------------------------------

def days_touched(changes: Iterable[Change], timezone: str, shown: Iterable[str]) -> list[str]:
    """The shown local dates (ISO, in the bookable's `timezone`) whose slots `changes` may
    have changed: the dates the changed block covers, and the day before its start (a slot
    late that day may reach into it through its buffers)."""
    shown_set = set(shown)
    tz = zone(timezone)
    out: set[str] = set()
    for c in changes:
        if c.start is None or c.end is None:
            return sorted(shown_set)
        day = (c.start.astimezone(tz) - dt.timedelta(days=1)).date()
        last = max(c.end, c.start).astimezone(tz).date()
        if (last - day).days > 400:
            return sorted(shown_set)
        while day <= last:
            if day.isoformat() in shown_set:
                out.add(day.isoformat())
            day += dt.timedelta(days=1)
    return sorted(out)


_cache: dict[tuple[int, str, str], tuple[float, list[SlotView] | None]] = {}
_generations: dict[int, int] = {}  # bookable id → changes seen (a read started before one is not cached)
_key_locks: dict[tuple[int, str, str], threading.Lock] = {}


def free_slots(bookable_id: int, timezone: str, days: list[str]) -> dict[str, list[SlotView]] | None:
    """The free slots of `bookable_id` (whose zone is `timezone`) on each of `days` (local
    ISO dates, consecutive or not), read once per process for all its viewers (CACHE_SECONDS, dropped at each of
    its changes); None when the bookable is gone or no longer public."""
    if not days:
        return {}
    key = (bookable_id, min(days), max(days))
    with _lock:
        lock = _key_locks.setdefault(key, threading.Lock())
        if len(_key_locks) > 10_000:
            _key_locks.clear()
    with lock:  # the viewers of one process wait for one read
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            found = hit[1]
        else:
            generation = _generations.get(bookable_id, 0)
            try:
                found = availability.slots(bookable_id=bookable_id, date_from=key[1], date_to=key[2])
            except ServiceError:
                found = None
            with _lock:
                if generation == _generations.get(bookable_id, 0):  # (not if a change came in meanwhile)
                    _cache[key] = (time.monotonic(), found)
    if found is None:
        return None
    tz = zone(timezone)
    by_day: dict[str, list[SlotView]] = {d: [] for d in days}
    for slot in found:
        d = slot.start.astimezone(tz).date().isoformat()
        if d in by_day:
            by_day[d].append(slot)
    return by_day
