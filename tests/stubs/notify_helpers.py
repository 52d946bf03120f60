"""Helpers of the notification tests: a local SMTP server (aiosmtpd) that records what
arrives and can be told to refuse, a small booking "world", and outbox queries."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import functools
import itertools
import threading
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from sqlalchemy import update
from sqlmodel import select

UTC = dt.timezone.utc
_seq = itertools.count(1)


# --- SMTP --------------------------------------------------------------------------------------

class SmtpSink:
    """aiosmtpd on a free loopback port. `messages` holds the parsed messages that arrived.

    `refuse_next(code, times)` makes the next DATA commands answer e.g. 451 (temporary)
    or 554 (permanent). `credentials=(user, password)` requires AUTH LOGIN/PLAIN.
    """

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.peers: list[Any] = []  # the client address of each message: one per connection
        self._refusals: list[int] = []
        self._lock = threading.Lock()
        self.credentials = credentials
        self.controller = None

    def refuse_next(self, code: int = 451, *, times: int = 1) -> None:
        with self._lock:
            self._refusals.extend([code] * times)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        with self._lock:
            if self._refusals:
                code = self._refusals.pop(0)
                return f"{code} {'Try again later' if code < 500 else 'Rejected'}"
            msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
            self.messages.append(msg)
            self.peers.append(session.peer)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and self.credentials is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials)
        if not ok:
            return AuthResult(success=False, handled=False)
        with self._lock:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=True, handled=False, auth_data=auth_data.login)

    def start(self) -> "SmtpSink":
        from aiosmtpd.controller import Controller

        from tests.conftest import free_port

        kwargs: dict[str, Any] = {}
        if self.credentials:
            kwargs = dict(authenticator=self._authenticator, auth_require_tls=False, auth_required=True)
        with warnings.catch_warnings():  # AUTH without TLS is fine on loopback
            warnings.simplefilter("ignore")
            self.controller = Controller(self, hostname="127.0.0.1", port=free_port(), **kwargs)
            self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.controller.port  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        if self.credentials:
            return f"smtp://{self.credentials[0]}:{self.credentials[1]}@127.0.0.1:{self.port}?timeout=5"
        return f"smtp://127.0.0.1:{self.port}?timeout=5"


# --- a booking world ----------------------------------------------------------------------------

def fast_password_hashing(monkeypatch) -> None:
    """argon2 once per password instead of once per user."""
    from booking_app.services import accounts, passwords

    monkeypatch.setattr(accounts, "hash_password", functools.lru_cache(maxsize=8)(passwords.hash_password))


@dataclass
class World:
    provider: Any
    customer: Any
    bookable: Any
    extra: dict = field(default_factory=dict)


def make_world(*, customer: dict | None = None, provider: dict | None = None, bookable: dict | None = None,
               reminder_offsets: str | None = None) -> World:
    """A provider, a customer and a bookable open around the clock (60-minute slots)."""
    from tests.factories import ALL_WEEK, make_bookable, make_user

    n = next(_seq)
    prov = make_user("provider", username=f"prov{n}x", email=f"prov{n}x@example.com", full_name="Pat Provider",
                     **(provider or {}))
    cust_kw = dict(full_name="Carla Customer", locale="en", timezone="UTC")
    cust_kw.update(customer or {})
    cust = make_user("customer", username=f"cust{n}x", email=f"cust{n}x@example.com", **cust_kw)
    bk_kw = dict(name="Meeting room", location="Floor 2", price_cents=0, currency="EUR", timezone="UTC")
    bk_kw.update(bookable or {})
    b = make_bookable(prov, weekly=ALL_WEEK, **bk_kw)
    if reminder_offsets is not None:
        from booking_app import db
        from booking_app.models import Bookable

        with db.unit_of_work() as s:
            s.exec(update(Bookable).where(Bookable.id == b.id).values(reminder_offsets=reminder_offsets))
    return World(provider=prov, customer=cust, bookable=b)


def set_user(user_id: int, **values: Any) -> None:
    from booking_app import db
    from booking_app.models import User

    with db.unit_of_work() as s:
        s.exec(update(User).where(User.id == user_id).values(**values))


def book(world: World, start: dt.datetime, **kw: Any):
    from booking_app.services import bookings
    from tests.factories import actor_for

    return bookings.book(actor=actor_for(world.customer), service_id=world.bookable.id, start=start, **kw)


def outbox_rows(**filters: Any) -> list:
    from booking_app import db
    from booking_app.models import Notification

    with db.read_session() as s:
        q = select(Notification)
        for key, value in filters.items():
            q = q.where(getattr(Notification, key) == value)
        return list(s.exec(q.order_by(Notification.id)).all())

