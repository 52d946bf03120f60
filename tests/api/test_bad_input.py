"""Bad input for every body field and query parameter → 422 problem+json, never a 500.

For each endpoint: a valid base body, then each field replaced by wrong types, huge
strings, out-of-range/negative numbers and invalid values (time zones, locales…), each
required field removed, an unknown field added; plus malformed JSON, non-object bodies
and bad query parameters.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.conftest import PASSWORD, make_account
from tests.factories import make_bookable

HUGE = "x" * 100_000
STR_BAD = [123, {}, [], True, HUGE, "nul\x00byte", "esc\x1b[31m"]  # control characters: never
INT_BAD = ["12", 1.5, True, {}, [], -1, 10**12]
BOOL_BAD = ["yes", 1, {}, "true"]
LIST_BAD = [123, {}, "text", True, None]
# reminder offsets (minutes before the start): null / [] mean "the defaults", so not here
REMINDERS_BAD = [123, {}, "text", "1440,60", True, [0], [-1], [10**12], [86_401], ["60"], [1.5], [True], [None],
                 [[60]], [1, 2, 3, 4, 5, 6], [60] * 1000]
DT_BAD = ["tomorrow", "2026-12-01T10:00:00", {}, "2026-13-01T10:00:00Z", HUGE,
          "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00", "2026-12-01T10:00:00Z\x00"]

FUTURE = (dt.date.today() + dt.timedelta(days=10)).isoformat() + "T10:00:00Z"


@dataclass
class Case:
    name: str
    method: str
    path: str
    who: str | None  # account role or None
    body: dict[str, Any]
    bad: dict[str, list[Any]]
    required: tuple[str, ...] = ()
    extra_ok: bool = False  # True when unknown fields are not rejected (none today)
    cases: list = field(default_factory=list)


CASES = [
    Case("register", "POST", "/api/users/register", None,
         {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD, "full_name": "N",
          "phone": "+14155550123", "locale": "en", "timezone": "UTC"},
         {"username": STR_BAD + ["a b", "", "ab"], "email": STR_BAD + ["not-an-email", ""],
          "password": STR_BAD + ["short", "password1", "p" * 129],
          "full_name": STR_BAD, "phone": STR_BAD + ["12", "phone"], "locale": STR_BAD + ["xx", "EN", "en-US", ""],
          "timezone": STR_BAD + ["Mars/Olympus", "../../etc/passwd", "", "/etc/localtime"]},
         required=("username", "email", "password")),
    Case("login", "POST", "/api/users/login", None, {"username": "someone", "password": PASSWORD},
         {"username": STR_BAD + [""], "password": STR_BAD + [""]}, required=("username", "password")),
    Case("profile", "PUT", "/api/users/profile", "customer",
         {"full_name": "N", "locale": "es", "timezone": "Europe/Madrid"},
         {"full_name": STR_BAD, "email": STR_BAD + ["nope"], "phone": STR_BAD + ["12"],
          "locale": STR_BAD + ["xx", None], "timezone": STR_BAD + ["Nowhere/City", None],
          "notify_email": BOOL_BAD, "notify_sms": BOOL_BAD, "password": STR_BAD,
          "current_password": STR_BAD}),
    Case("delete-profile", "DELETE", "/api/users/profile", "customer", {"current_password": "wrong-password"},
         {"current_password": STR_BAD + [""]}, required=("current_password",)),
    Case("reset", "POST", "/api/users/password-reset", None, {"email": "someone@example.com"},
         {"email": STR_BAD + ["nope"]}, required=("email",)),
    Case("reset-confirm", "POST", "/api/users/password-reset/confirm", None,
         {"token": "abc", "password": PASSWORD}, {"token": STR_BAD + [""], "password": STR_BAD + ["short"]},
         required=("token", "password")),
    Case("role", "PUT", "/api/admin/users/{customer}/role", "admin", {"role": "provider"},
         {"role": STR_BAD + ["root", "Admin"]}, required=("role",)),
    Case("active", "PUT", "/api/admin/users/{customer}/active", "admin", {"active": True},
         {"active": BOOL_BAD + [None]}, required=("active",)),
    Case("service-create", "POST", "/api/services", "provider",
         {"name": "Room", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 100,
          "currency": "EUR", "timezone": "UTC", "description": "d", "location": "l", "buffer_minutes": 5,
          "min_notice_minutes": 0, "max_advance_days": 30, "cancel_cutoff_hours": 1, "refund_percent": 50,
          "reminder_offsets": [1440, 60]},
         {"name": STR_BAD + [""], "kind": STR_BAD + ["car"], "duration_minutes": INT_BAD + [0, 100_000],
          "capacity": INT_BAD + [0], "price_cents": INT_BAD, "currency": STR_BAD + ["EURO", "12", "eu"],
          "timezone": STR_BAD + ["Mars/Olympus", ""], "description": STR_BAD, "location": STR_BAD,
          "buffer_minutes": INT_BAD, "min_notice_minutes": INT_BAD, "max_advance_days": INT_BAD + [0],
          "cancel_cutoff_hours": INT_BAD, "refund_percent": INT_BAD + [101], "reminder_offsets": REMINDERS_BAD},
         required=("name", "kind", "duration_minutes", "capacity", "price_cents", "currency", "timezone")),
    Case("service-update", "PUT", "/api/services/{room}", "provider", {"name": "Renamed"},
         {"name": STR_BAD + ["", None], "capacity": INT_BAD + [0, None], "price_cents": INT_BAD + [None],
          "timezone": STR_BAD + ["Nowhere/City", None], "currency": STR_BAD + ["EURO"], "is_active": BOOL_BAD,
          "refund_percent": INT_BAD + [101], "duration_minutes": INT_BAD + [0, None],
          "reminder_offsets": REMINDERS_BAD}),
    Case("availability", "PUT", "/api/services/{room}/availability", "provider",
         {"weekly": [{"weekday": 0, "start": "09:00", "end": "17:00"}], "exceptions": [{"date": "2030-12-24", "closed": True}]},
         {"weekly": LIST_BAD + [[{"weekday": 7, "start": "09:00", "end": "17:00"}],
                               [{"weekday": -1, "start": "09:00", "end": "17:00"}],
                               [{"weekday": "0", "start": "09:00", "end": "17:00"}],
                               [{"weekday": 0, "start": "25:00", "end": "26:00"}],
                               [{"weekday": 0, "start": "9am", "end": "5pm"}],
                               [{"weekday": 0, "start": "17:00", "end": "09:00"}],
                               [{"weekday": 0, "start": "09:00", "end": "12:00"}, {"weekday": 0, "start": "11:00", "end": "13:00"}],
                               [{"weekday": 0, "start": "09:00"}],
                               [{"weekday": 0, "start": "09:00", "end": "17:00", "extra": 1}],
                               [{"weekday": 0, "start": "09:00", "end": "17:00"}] * 200],
          "exceptions": LIST_BAD + [[{"date": "2030-02-30", "closed": True}], [{"date": "soon", "closed": True}],
                                   [{"date": "2030-12-24"}], [{"date": "2030-12-24", "closed": True, "start": "09:00", "end": "10:00"}],
                                   [{"date": "2030-12-24", "closed": "yes"}]]}),
    Case("session", "POST", "/api/services/{event}/sessions", "provider", {"start": FUTURE, "capacity": 5},
         {"start": DT_BAD + ["2001-01-01T10:00:00Z"], "capacity": INT_BAD + [0]}, required=("start",)),
    Case("book", "POST", "/api/bookings", "customer", {"service_id": 1, "start": FUTURE, "quantity": 1, "notes": "n"},
         {"service_id": INT_BAD + [0, 2**40], "start": DT_BAD, "quantity": INT_BAD + [0, 10**6],
          "notes": STR_BAD, "guest": STR_BAD + [{"name": "x"}, {"name": "x", "email": "nope"},
                                                {"name": HUGE, "email": "a@example.com"},
                                                {"name": "x", "email": "a@example.com", "phone": "12"}],
          "payment_method": STR_BAD + ["bitcoin"]},
         required=("service_id", "start")),
    Case("reschedule", "PUT", "/api/bookings/{booking}", "customer", {"notes": "n"},
         {"start": DT_BAD, "quantity": INT_BAD + [0], "notes": STR_BAD}),
]


def _setup(client) -> dict[str, Any]:
    from booking_app.services import bookings
    from booking_app.services.actors import Actor

    accts = {role: make_account(role) for role in ("customer", "provider", "admin")}
    provider = accts["provider"].row()
    room = make_bookable(provider, name="Room",
                         weekly=[{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)])
    event = make_bookable(provider, kind="event", name="Event", capacity=10)
    cust = Actor(id=accts["customer"].id, role="customer")
    booking = bookings.book(actor=cust, service_id=room.id, start=FUTURE)
    return {"accounts": accts, "room": room.id, "event": event.id, "booking": booking.id,
            "customer": accts["customer"].id}


def _path(case: Case, world) -> str:
    path = case.path
    for key in ("room", "event", "booking", "customer"):
        path = path.replace("{" + key + "}", str(world[key]))
    return path


def _check_422(response, what: str) -> None:
    assert response.status_code == 422, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    body = response.json()
    assert body["status"] == 422 and body["title"] and body["detail"], what


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_body_fields(client, fast_hash, monkeypatch, case: Case):
    from tests.api.conftest import set_env

    set_env(monkeypatch, RATE_LIMITS_ENABLED="false")
    world = _setup(client)
    headers = world["accounts"][case.who].headers if case.who else {}
    path = _path(case, world)
    base = dict(case.body)
    if "service_id" in base:
        base["service_id"] = world["room"]
    for name, values in case.bad.items():
        for value in values:
            body = {**base, name: value}
            r = client.request(case.method, path, headers=headers, json=body)
            shown = repr(value)[:60]
            _check_422(r, f"{case.name}.{name}={shown}")
            # the problem names the field
            assert name in r.text, f"{case.name}.{name}={shown}: {r.text[:300]}"
    for name in case.required:
        body = {k: v for k, v in base.items() if k != name}
        _check_422(client.request(case.method, path, headers=headers, json=body), f"{case.name} without {name}")
    _check_422(client.request(case.method, path, headers=headers, json={**base, "unexpected_field": 1}),
               f"{case.name} with an unknown field")
    # malformed and non-object bodies
    for raw in (b"{bad json", b"", b"[]", b"null", b'"text"', b"123", json.dumps([base]).encode(), b"\xff\xfe"):
        r = client.request(case.method, path, headers={**headers, "content-type": "application/json"}, content=raw)
        if raw == b"" and not case.required:
            # an empty body for an all-optional body is "nothing to change" or missing: never a 500
            assert r.status_code < 500, r.text
            continue
        _check_422(r, f"{case.name} raw {raw[:20]!r}")


BAD_QUERIES = [
    ("GET", "/api/services", None, {"limit": "-1"}),
    ("GET", "/api/services", None, {"limit": "abc"}),
    ("GET", "/api/services", None, {"offset": "-5"}),
    ("GET", "/api/services", None, {"kind": "car"}),
    ("GET", "/api/services", None, {"date": "2026-02-30"}),
    ("GET", "/api/services", None, {"q": HUGE[:1000]}),
    ("GET", "/api/services", None, {"q": "a\x00b"}),
    ("GET", "/api/services", None, {"date": "9999-12-31"}),
    ("GET", "/api/services/{room}/slots", None, {"from": "2026-13-01", "to": "2026-12-01"}),
    ("GET", "/api/services/{room}/slots", None, {"from": "2026-12-10", "to": "2026-12-01"}),
    ("GET", "/api/services/{room}/slots", None, {"from": "2026-01-01", "to": "2029-01-01"}),
    ("GET", "/api/services/{room}/slots", None, {"from": "2026-12-01"}),
    ("GET", "/api/services/abc", None, {}),
    ("GET", "/api/services/-1", None, {}),
    ("GET", "/api/services/99999999999999999999", None, {}),
    ("GET", "/api/bookings", "customer", {"scope": "everything"}),
    ("GET", "/api/bookings", "customer", {"status": "lost"}),
    ("GET", "/api/bookings", "customer", {"from": "yesterday"}),
    ("GET", "/api/bookings", "customer", {"to": "9999-12-31"}),
    ("GET", "/api/bookings", "customer", {"limit": "100000"}),
    ("GET", "/api/bookings/abc", "customer", {}),
    ("GET", "/api/admin/users", "admin", {"role": "root"}),
    ("GET", "/api/admin/users", "admin", {"limit": "0"}),
    ("GET", "/api/admin/users", "admin", {"active": "maybe"}),
    ("GET", "/api/admin/users/0", "admin", {}),
    ("GET", "/api/admin/users/{customer}/audit", "admin", {"offset": "-1"}),
]


def test_bad_query_and_path_parameters(client, fast_hash):
    world = _setup(client)
    for method, path, who, params in BAD_QUERIES:
        headers = world["accounts"][who].headers if who else {}
        r = client.request(method, path.replace("{room}", str(world["room"])).replace("{customer}", str(world["customer"])),
                           headers=headers, params=params)
        _check_422(r, f"{method} {path} {str(params)[:80]}")


def test_invalid_accept_language_falls_back(client):
    r = client.post("/api/users/login", json={"username": "x"}, headers={"Accept-Language": "xx-YY;q=abc, ,;"})
    _check_422(r, "login with a broken Accept-Language")
