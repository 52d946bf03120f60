"""Test factories with sensible defaults (reusable by every test module).

They go through the real services (accounts, catalog) so that what they create is valid.
Call them after a database fixture (`db_url`, `sqlite_db`, `pg_db`) has pointed the app.
"""
from __future__ import annotations

import datetime as dt
import functools
import itertools
import zoneinfo
from typing import Any

from booking_app import db
from booking_app.models import Booking
from booking_app.services import accounts, catalog
from booking_app.services.actors import Actor

_seq = itertools.count(1)
UTC = dt.timezone.utc


DEFAULT_PASSWORD = "correct horse battery staple 42"


@functools.lru_cache(maxsize=1)
def _default_hash() -> str:
    from booking_app.services.passwords import hash_password

    return hash_password(DEFAULT_PASSWORD)


def make_user(role: str = "customer", **kw: Any):
    """A User row (role admin|provider|customer) with unique username/email; it can log in
    with DEFAULT_PASSWORD (or `password=`). The default password is hashed once per test
    session (argon2 is slow on purpose); other fields go through the accounts service."""
    n = next(_seq)
    username = kw.pop("username", f"{role}{n}")
    email = kw.pop("email", f"{role}{n}@example.com")
    password = kw.pop("password", None)
    if password is not None or set(kw) - {"full_name", "locale", "timezone", "phone"}:
        return accounts.create_user(username=username, email=email, password=password or DEFAULT_PASSWORD,
                                    role=role, **kw)
    from booking_app import db
    from booking_app.models import User

    with db.unit_of_work() as s:
        user = User(username=username, email=email, password_hash=_default_hash(), role=role,
                    full_name=kw.get("full_name", ""), phone=kw.get("phone"), locale=kw.get("locale", "en"),
                    timezone=kw.get("timezone", "UTC"))
        s.add(user)
        s.flush()
        s.refresh(user)
        return user


def actor_for(user) -> Actor:
    return Actor(id=user.id, role=user.role, locale=user.locale, timezone=user.timezone)


def make_provider(**kw: Any):
    return make_user("provider", **kw)


def make_customer(**kw: Any):
    return make_user("customer", **kw)


def make_admin(**kw: Any):
    return make_user("admin", **kw)


ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
OFFICE_HOURS = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)]


def make_bookable(provider=None, *, kind: str = "room", weekly: list | None = None, exceptions: list | None = None,
                  **kw: Any) -> catalog.BookableView:
    """A bookable (default: a 60-minute capacity-1 free room in UTC open 09-17 every day)."""
    provider = provider or make_provider()
    n = next(_seq)
    params: dict[str, Any] = dict(name=f"{kind.title()} {n}", kind=kind, duration_minutes=60, capacity=1,
                                  price_cents=0, currency="EUR", timezone="UTC")
    params.update(kw)
    b = catalog.create_bookable(actor=actor_for(provider), **params)
    if kind != "event":
        catalog.set_availability(actor=actor_for(provider), bookable_id=b.id,
                                 weekly=OFFICE_HOURS if weekly is None else weekly, exceptions=exceptions or [])
    elif exceptions:
        catalog.set_availability(actor=actor_for(provider), bookable_id=b.id, weekly=[], exceptions=exceptions)
    return b


def make_event(provider=None, *, sessions: list[dt.datetime] = (), capacity: int = 5, **kw: Any):
    """An event with sessions at the given aware datetimes → (bookable view, [session views])."""
    provider = provider or make_provider()
    b = make_bookable(provider, kind="event", capacity=capacity, **kw)
    made = [catalog.add_event_session(actor=actor_for(provider), bookable_id=b.id, start=s) for s in sessions]
    return b, made


def next_day_at(hour: int, tz: str = "UTC", days: int = 1) -> dt.datetime:
    """Aware UTC datetime `days` days from today at `hour`:00 local time in `tz`."""
    zone = zoneinfo.ZoneInfo(tz)
    day = dt.datetime.now(zone).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone).astimezone(UTC)


def booking_row(booking_id: int) -> Booking:
    """The Booking row as stored now (read back after a service call)."""
    with db.read_session() as s:
        bk = s.get(Booking, booking_id)
        assert bk is not None
        return bk
