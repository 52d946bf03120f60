"""Every endpoint × every role → the expected status code.

Roles: anonymous, customer, other customer, provider, other provider, admin. The world:
`customer` owns a booking of `provider`'s room; `provider` also has an inactive room and an
event. A missing authorization check anywhere makes one of these cells fail.
Runs on SQLite only: who may do what is decided in the services' Python code, the same on
both databases (the other API tests run on both).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from tests.api.conftest import PASSWORD, make_account
from tests.factories import make_bookable

ROLES = ("anonymous", "customer", "other_customer", "provider", "other_provider", "admin")


def expect(anonymous, customer, other_customer, provider, other_provider, admin) -> dict[str, int]:
    return dict(zip(ROLES, (anonymous, customer, other_customer, provider, other_provider, admin)))


def everyone(status: int) -> dict[str, int]:
    return {r: status for r in ROLES}


def signed_in(status: int) -> dict[str, int]:
    return {**everyone(status), "anonymous": 401}


def admin_only(status: int) -> dict[str, int]:
    return expect(401, 403, 403, 403, 403, status)


def manager(status: int) -> dict[str, int]:
    """Only the owning provider and admins (others get 403, guests 401)."""
    return expect(401, 403, 403, status, 403, status)


@dataclass
class Row:
    method: str
    path: str
    expected: dict[str, int]
    body: Callable[[dict[str, Any], str], Any] | None = None  # (world, role) -> JSON body
    params: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _future_day(days: int = 20) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


SERVICE_BODY = {"name": "New room", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 0,
                "currency": "EUR", "timezone": "Europe/Madrid"}
WEEKLY = {"weekly": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)], "exceptions": []}

ROWS = [
    # --- users
    Row("POST", "/api/users/register", everyone(201),
        body=lambda w, role: {"username": f"new-{role}", "email": f"new-{role}@example.com", "password": PASSWORD}),
    Row("POST", "/api/users/login", everyone(200),
        body=lambda w, role: {"username": w["customer"].username, "password": PASSWORD}),
    Row("POST", "/api/users/logout", signed_in(204)),
    Row("GET", "/api/users/profile", signed_in(200)),
    Row("PUT", "/api/users/profile", signed_in(200), body=lambda w, role: {"full_name": "Changed"}),
    # with upcoming bookings (as customer or provider) an account can't go; the last admin stays
    Row("DELETE", "/api/users/profile", expect(401, 409, 204, 409, 204, 409),
        body=lambda w, role: {"current_password": PASSWORD}),
    Row("GET", "/api/users/profile/export", signed_in(200)),
    Row("POST", "/api/users/password-reset", everyone(202), body=lambda w, role: {"email": "someone@example.com"}),
    Row("POST", "/api/users/password-reset/confirm", everyone(422),
        body=lambda w, role: {"token": "not-a-token", "password": "another-passphrase-1"}),
    # two-factor sign-in and sessions (a fresh world: nobody has 2FA on yet)
    Row("POST", "/api/users/login/mfa", everyone(401), body=lambda w, role: {"challenge": "unknown", "code": "123456"}),
    Row("GET", "/api/users/profile/2fa", signed_in(200)),
    Row("POST", "/api/users/profile/2fa", signed_in(201), body=lambda w, role: {"password": PASSWORD}),
    Row("POST", "/api/users/profile/2fa/confirm", signed_in(409), body=lambda w, role: {"code": "123456"}),
    Row("POST", "/api/users/profile/2fa/recovery-codes", signed_in(422), body=lambda w, role: {"code": "123456"}),
    Row("DELETE", "/api/users/profile/2fa", signed_in(409),
        body=lambda w, role: {"password": PASSWORD, "code": "123456"}),
    Row("GET", "/api/users/sessions", signed_in(200)),
    Row("DELETE", "/api/users/sessions", signed_in(204), params={"others": "true"}),
    Row("DELETE", "/api/users/sessions/999999", signed_in(404)),
    # --- admin
    Row("GET", "/api/admin/users", admin_only(200)),
    Row("GET", "/api/admin/users/{customer}", admin_only(200)),
    Row("PUT", "/api/admin/users/{customer}/role", admin_only(200), body=lambda w, role: {"role": "provider"}),
    Row("PUT", "/api/admin/users/{other_customer}/active", admin_only(200), body=lambda w, role: {"active": False}),
    Row("GET", "/api/admin/users/{customer}/audit", admin_only(200)),
    Row("DELETE", "/api/admin/users/{customer}/2fa", admin_only(409)),  # not on: nothing to reset
    Row("GET", "/api/admin/audit", admin_only(200), params={"action": "user.*", "from": "2026-01-01"}),
    Row("GET", "/api/admin/audit", admin_only(200), params={"format": "csv"}),
    # --- catalog
    Row("GET", "/api/services", everyone(200)),
    Row("GET", "/api/services/{room}", everyone(200)),
    Row("GET", "/api/services/{inactive}", expect(404, 404, 404, 200, 404, 200)),
    Row("POST", "/api/services", expect(401, 403, 403, 201, 201, 201), body=lambda w, role: SERVICE_BODY),
    Row("PUT", "/api/services/{room}", manager(200), body=lambda w, role: {"description": "Updated"}),
    Row("GET", "/api/services/{room}/availability", everyone(200)),
    Row("PUT", "/api/services/{room}/availability", manager(200), body=lambda w, role: WEEKLY),
    Row("POST", "/api/services/{event}/sessions", manager(201),
        body=lambda w, role: {"start": f"{_future_day(30)}T{10 + ROLES.index(role)}:00:00Z"}),
    Row("GET", "/api/services/{event}/sessions", everyone(200)),
    Row("GET", "/api/services/{room}/slots", everyone(200), params={"from": _future_day(), "to": _future_day()}),
]


def _bookings_rows() -> list[Row]:
    return [
        Row("GET", "/api/bookings", signed_in(200), params={"scope": "mine"}),
        Row("GET", "/api/bookings", expect(401, 403, 403, 200, 200, 200), params={"scope": "provider"}),
        Row("GET", "/api/bookings", admin_only(200), params={"scope": "all"}),
        Row("POST", "/api/bookings", everyone(201),
            body=lambda w, role: {"service_id": w["room"], "start": w["free_starts"][ROLES.index(role)],
                                  **({"guest": {"name": "Gus Guest", "email": "gus@example.com"}}
                                     if role == "anonymous" else {})}),
        Row("GET", "/api/bookings/{booking}", expect(401, 200, 404, 200, 404, 200)),
        Row("PUT", "/api/bookings/{booking}", expect(401, 200, 404, 200, 404, 200),
            body=lambda w, role: {"notes": f"note by {role}"}),
        Row("DELETE", "/api/bookings/{booking}", expect(401, 200, 404, 200, 404, 200)),
        # approval (issue 24): its provider and admins decide (the world's booking is confirmed: 409);
        # its customer sees it but may not (403)
        Row("POST", "/api/bookings/{booking}/approve", expect(401, 403, 404, 409, 404, 409)),
        Row("POST", "/api/bookings/{booking}/decline", expect(401, 403, 404, 409, 404, 409),
            body=lambda w, role: {"reason": f"declined by {role}"}),
        # the provider's outcome marks: its provider and admins (the world's booking has not started: 409)
        Row("POST", "/api/bookings/{booking}/complete", expect(401, 403, 404, 409, 404, 409)),
        Row("POST", "/api/bookings/{booking}/no-show", expect(401, 403, 404, 409, 404, 409)),
        # "charge again" a declined fee of the booking (no Stripe here: it stays due, 200 again)
        Row("POST", "/api/fees/{fee}/charge", expect(401, 403, 404, 200, 404, 200)),
    ]


OTHER_MODULE_ROWS = [
    # reports, notifications admin, calendar feeds, payments (their own issues; the same matrix)
    *[Row("GET", f"/api/reports/{name}", admin_only(200),
          params={"from": dt.date.today().isoformat(), "to": _future_day(30)} if not name.startswith("dashboard") else {})
      for name in ("bookings", "revenue", "users", "utilization", "rates", "dashboard", "dashboard/series")],
    Row("GET", "/api/admin/notifications", admin_only(200)),
    Row("GET", "/api/calendar/feeds", signed_in(200)),
    Row("POST", "/api/calendar/feeds", signed_in(201)),
    # only the booking's owner pays (the free booking has nothing to pay: 409 once allowed)
    Row("POST", "/api/payments/process", expect(401, 409, 404, 404, 404, 404),
        body=lambda w, role: {"booking_id": w["booking"], "method": "on_site"}),
    # deposits and fees (issue 26): the owner pays the balance (a free booking owes none: 409); who sees
    # the booking sees its money
    Row("POST", "/api/payments/{booking}/balance", expect(401, 409, 404, 404, 404, 404)),
    Row("GET", "/api/payments/{booking}/money", expect(401, 200, 404, 200, 404, 200)),
]

HOOK_URL = "https://93.184.216.34/hook"  # a public address literal: no DNS lookup
WEBHOOK_ROWS = [
    Row("POST", "/api/webhooks", expect(401, 403, 403, 201, 201, 201),
        body=lambda w, role: {"url": HOOK_URL, "events": ["booking.created"]}),
    Row("GET", "/api/webhooks", expect(401, 403, 403, 200, 200, 200)),
    Row("GET", "/api/webhooks/{webhook}", expect(401, 403, 403, 200, 404, 200)),
    Row("PUT", "/api/webhooks/{webhook}", expect(401, 403, 403, 200, 404, 200), body=lambda w, role: {"active": True}),
    Row("DELETE", "/api/webhooks/{webhook}", expect(401, 403, 403, 204, 404, 204)),
    Row("POST", "/api/webhooks/{webhook}/rotate-secret", expect(401, 403, 403, 200, 404, 200)),
    Row("GET", "/api/webhooks/{webhook}/deliveries", expect(401, 403, 403, 200, 404, 200)),
    Row("POST", "/api/webhooks/{webhook}/deliveries/{delivery}/redeliver", expect(401, 403, 403, 202, 404, 202)),
]

CALENDAR_URL = "https://93.184.216.34/busy.ics"  # a public address literal: no DNS lookup (and never fetched here)
CALENDAR_ROWS = [
    Row("POST", "/api/calendar/subscriptions", expect(401, 403, 403, 201, 201, 201),
        body=lambda w, role: {"url": CALENDAR_URL}),
    Row("POST", "/api/calendar/subscriptions", expect(401, 403, 403, 201, 403, 201),
        body=lambda w, role: {"url": CALENDAR_URL, "service_id": w["room"]}),
    Row("GET", "/api/calendar/subscriptions", expect(401, 403, 403, 200, 200, 200)),
    Row("DELETE", "/api/calendar/subscriptions/{calendar}", expect(401, 403, 403, 204, 404, 204)),
    Row("POST", "/api/calendar/subscriptions/{calendar}/sync", expect(401, 403, 403, 200, 404, 200)),
]

# recurring series (issue 24, point 3): `customer` owns a weekly series of `provider`'s room
SERIES_ROWS = [
    Row("POST", "/api/series/preview", everyone(200),
        body=lambda w, role: {"service_id": w["room"], "start": w["free_starts"][ROLES.index(role)],
                              "recurrence": {"frequency": "weekly", "count": 2}}),
    Row("GET", "/api/series/{series}", expect(401, 200, 404, 200, 404, 200)),
    Row("DELETE", "/api/series/{series}", expect(401, 200, 404, 200, 404, 200)),
]

# waitlist (issue 24, point 1): `customer` waits for their own full 17:00 slot (nothing offered yet)
WAITLIST_ROWS = [
    Row("POST", "/api/waitlist", {**everyone(201), "customer": 409},  # (the customer waits there already)
        body=lambda w, role: {"service_id": w["room"], "start": w["full_start"],
                              **({"guest": {"name": "Gus Guest", "email": "gus@example.com"}}
                                 if role == "anonymous" else {})}),
    Row("GET", "/api/waitlist", signed_in(200)),
    Row("GET", "/api/waitlist", expect(401, 200, 200, 200, 403, 200), params={"service_id": "{room}"}),
    Row("GET", "/api/waitlist/{waitlist}", expect(401, 200, 404, 200, 404, 200)),
    Row("DELETE", "/api/waitlist/{waitlist}", expect(401, 204, 404, 204, 404, 204)),
    Row("POST", "/api/waitlist/{waitlist}/accept", expect(401, 409, 404, 404, 404, 404)),
    Row("POST", "/api/waitlist/{waitlist}/decline", expect(401, 409, 404, 404, 404, 404)),
    Row("POST", "/api/waitlist/offer-now", manager(200), body=lambda w, role: {"service_id": w["room"]}),
    Row("POST", "/api/waitlist/close", manager(200), body=lambda w, role: {"service_id": w["room"]}),
]

# the booking widget's allow-list (issue 25, point 3): one's own, or (admins) any provider's
EMBED_ROWS = [
    Row("GET", "/api/embed/origins", expect(401, 403, 403, 200, 200, 200)),
    Row("PUT", "/api/embed/origins", expect(401, 403, 403, 200, 200, 200),
        body=lambda w, role: {"origins": ["https://shop.example.com"]}),
    Row("PUT", "/api/embed/origins", expect(401, 403, 403, 200, 403, 200),
        body=lambda w, role: {"origins": [], "provider_id": w["provider"].id}),
]

# discount codes (issue 26): `provider` owns the code; admins see every code
DISCOUNT_ROWS = [
    Row("POST", "/api/discount-codes", expect(401, 403, 403, 201, 201, 201),
        body=lambda w, role: {"code": f"NEW-{role}", "percent_off": 10}),
    Row("GET", "/api/discount-codes", expect(401, 403, 403, 200, 200, 200)),
    Row("GET", "/api/discount-codes/{discount}", expect(401, 403, 403, 200, 404, 200)),
    Row("PUT", "/api/discount-codes/{discount}", expect(401, 403, 403, 200, 404, 200),
        body=lambda w, role: {"max_uses": 5}),
    Row("DELETE", "/api/discount-codes/{discount}", expect(401, 403, 403, 200, 404, 200)),
    Row("GET", "/api/reports/discounts", admin_only(200),
        params={"from": dt.date.today().isoformat(), "to": _future_day(30)}),
]

ALL_ROWS = DISCOUNT_ROWS + ROWS + _bookings_rows() + OTHER_MODULE_ROWS + WEBHOOK_ROWS + CALENDAR_ROWS + SERIES_ROWS + WAITLIST_ROWS + EMBED_ROWS


def _build_world() -> dict[str, Any]:
    from booking_app.services import catalog
    from booking_app.services.actors import Actor

    world: dict[str, Any] = {role: make_account(role.replace("other_", "")) for role in ROLES if role != "anonymous"}
    world["anonymous"] = None
    prov = Actor(id=world["provider"].id, role="provider")
    provider = world["provider"].row()
    room = make_bookable(provider, name="Room Atlas",
                         weekly=[{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)])
    inactive = catalog.create_bookable(actor=prov, name="Old room", kind="room", duration_minutes=60, capacity=1,
                                       price_cents=0, currency="EUR", timezone="UTC", is_active=False)
    event = make_bookable(provider, kind="event", name="Workshop", capacity=10)
    world.update(room=room.id, inactive=inactive.id, event=event.id, customer_id=world["customer"].id)
    day = dt.date.today() + dt.timedelta(days=20)
    world["free_starts"] = [f"{day.isoformat()}T{9 + i:02d}:00:00Z" for i in range(len(ROLES))]
    from booking_app.models import utcnow
    from booking_app.services import bookings, series, webhook_delivery, webhooks

    new_webhook = lambda: webhooks.create_endpoint(actor=prov, url=HOOK_URL, events=["booking.created"]).id  # noqa: E731
    world["webhook"] = new_webhook()
    from booking_app.services import discounts

    world["discount"] = discounts.create_code(actor=prov, data={"code": "MATRIX", "percent_off": 10}).id
    world["new_webhook"] = new_webhook
    cust = Actor(id=world["customer"].id, role="customer")
    booked = bookings.book(actor=cust, service_id=room.id,
                           start=dt.datetime.combine(day, dt.time(17), tzinfo=dt.timezone.utc))
    world["booking"] = booked.id
    from booking_app import db
    from booking_app.models import BookingFee

    with db.unit_of_work() as s:  # a no-show fee whose charge was declined
        fee = BookingFee(booking_id=booked.id, kind="no_show", amount_cents=500, currency="EUR", status="failed",
                         attempts=1, last_error="card_declined: Your card was declined.")
        s.add(fee)
        s.flush()
        world["fee"] = fee.id
    world["series"] = series.book_series(actor=cust, service_id=room.id, recurrence_rule={"frequency": "weekly", "count": 2},
                                         start=dt.datetime.combine(day + dt.timedelta(days=2), dt.time(12),
                                                                   tzinfo=dt.timezone.utc)).series_id
    webhook_delivery.promote(now=utcnow())  # the booking's event: a delivery of the provider's endpoint
    world["delivery"] = webhooks.list_deliveries(actor=prov, endpoint_id=world["webhook"])[0].id
    from booking_app.services import calendar_sync

    def new_calendar() -> int:
        sub_id = calendar_sync.add(actor=prov, url=CALENDAR_URL, sync=False)["id"]
        calendar_sync.claim(now=utcnow(), ids=[sub_id])  # as if a sync were running: "sync now" fetches nothing
        return sub_id
    world["calendar"] = new_calendar()
    world["new_calendar"] = new_calendar
    from booking_app.services import waitlist  # (waitlist rows: the customer waits for a full slot)

    world["full_start"] = dt.datetime.combine(day, dt.time(17), tzinfo=dt.timezone.utc).isoformat()
    world["waitlist"] = waitlist.join(actor=cust, service_id=room.id, start=world["full_start"]).id
    world["new_waitlist"] = lambda hour: waitlist.join(actor=cust, service_id=room.id, start=bookings.book(
        actor=cust, service_id=room.id, start=dt.datetime.combine(day + dt.timedelta(days=3), dt.time(hour),
                                                                  tzinfo=dt.timezone.utc)).start).id
    world["new_booking"] = lambda hour: bookings.book(
        actor=cust, service_id=room.id, start=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hour),
                                                                  tzinfo=dt.timezone.utc)).id
    return world


def _path(row: Row, world: dict[str, Any]) -> str:
    path = row.path
    for key in ("customer", "other_customer"):
        path = path.replace("{" + key + "}", str(world[key].id))
    for key in ("room", "inactive", "event", "booking", "webhook", "delivery", "calendar", "series", "waitlist",
                "discount", "fee"):
        if "{" + key + "}" in path:
            path = path.replace("{" + key + "}", str(world[key]))
    return path


@pytest.fixture
def client(sqlite_db):
    """The rules live in Python (services), identical on both databases: SQLite keeps this fast."""
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    with TestClient(create_api(), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("row", ALL_ROWS, ids=[r.id + (f"?{r.params}" if r.params else "") for r in ALL_ROWS])
def test_permission_matrix(client, fast_hash, monkeypatch, row: Row):
    from tests.api.conftest import set_env

    set_env(monkeypatch, RATE_LIMITS_ENABLED="false")  # permissions here; limits in test_auth
    world = _build_world()
    results: dict[str, int] = {}
    for i, role in enumerate(ROLES):
        if row.method == "DELETE" and "{booking}" in row.path:
            world["booking"] = world["new_booking"](8 + i)  # each role cancels a booking of its own
        if row.method == "DELETE" and "{webhook}" in row.path:
            world["webhook"] = world["new_webhook"]()  # each role removes an endpoint of its own
        if row.method == "DELETE" and "{waitlist}" in row.path:
            world["waitlist"] = world["new_waitlist"](8 + i)  # each role removes an entry of its own
        if row.method == "DELETE" and "{calendar}" in row.path:
            world["calendar"] = world["new_calendar"]()  # each role removes a subscription of its own
        acct = world[role]
        headers = acct.headers if acct else {}
        kwargs: dict[str, Any] = {"headers": headers,  # ({room} etc. in a parameter: as in the path)
                                  "params": {k: _path(Row(row.method, v, {}), world) for k, v in row.params.items()}}
        if row.body is not None:
            kwargs["json"] = row.body(world, role)
        response = client.request(row.method, _path(row, world), **kwargs)
        results[role] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), response.text
    assert results == row.expected
