"""Hostile input never breaks the API (issue 20, point 7), on SQLite and PostgreSQL.

- The guard: walk the OpenAPI document and send, to every operation, each string query/
  path parameter and each string body field set to NUL, a lone surrogate (a JSON escape,
  sent as raw bytes), CR/LF, a 10 kB string, and each date parameter/field set to years
  9999 and 0001 — as an admin, a provider and anonymous, in a world with a room with hours,
  an event with a session, a booking and a guest booking: no 5xx, every 4xx problem+json.
- Focused: NUL in the login name, full name, guest name, notes, searches and the reset
  email → 422; year 9999 in the date searches → 422; a service name with CR/LF → 422; a
  30 MB body (with Content-Length, and chunked) → 413 before it is read; the services the
  UI calls refuse the same input; the safety net turns DataError/OverflowError into 422.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.parse
from typing import Any

import pytest

from tests.api.conftest import PASSWORD, assert_problem, make_account, set_env

NUL = "a\x00b"
SURROGATE = "a\ud800b"
CRLF = "a\r\nb"
LONG = "x" * 10_000
HOSTILE_TEXT = {"nul": NUL, "surrogate": SURROGATE, "crlf": CRLF, "long": LONG}
HOSTILE_DATES = {"y9999": ("9999-12-31", "9999-12-31T23:59:59+14:00"),
                 "y0001": ("0001-01-01", "0001-01-01T00:00:00-12:00")}
DATE_PARAMS = {"from", "to", "date"}

SOON = dt.date.today() + dt.timedelta(days=7)
SOON_AT = f"{SOON.isoformat()}T10:00:00Z"


# --- the world -----------------------------------------------------------------------------

def _world(monkeypatch) -> dict[str, Any]:
    """Accounts of every role, a provider's room with hours, an event with a session, a
    customer's booking and a guest booking (made through the services)."""
    from booking_app.services import bookings, catalog
    from booking_app.services.actors import Actor

    set_env(monkeypatch, RATE_LIMITS_ENABLED="false")
    accts = {role: make_account(role) for role in ("customer", "provider", "admin")}
    prov = Actor(id=accts["provider"].id, role="provider")
    room = catalog.create_bookable(actor=prov, name="Room", kind="room", duration_minutes=60, capacity=2,
                                   price_cents=0, currency="EUR", timezone="UTC", location="Main street")
    catalog.set_availability(actor=prov, bookable_id=room.id,
                             weekly=[{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)])
    event = catalog.create_bookable(actor=prov, name="Concert", kind="event", duration_minutes=90, capacity=50,
                                    price_cents=1000, currency="EUR", timezone="Europe/Madrid")
    session = catalog.add_event_session(actor=prov, bookable_id=event.id, start=SOON_AT)
    cust = Actor(id=accts["customer"].id, role="customer")
    booking = bookings.book(actor=cust, service_id=room.id, start=SOON_AT, notes="first")
    guest = bookings.book(actor=Actor.guest(), service_id=event.id, start=session.start,
                          guest={"name": "Gail Guest", "email": "gail@example.com"})
    return {"accounts": accts, "room": room.id, "event": event.id, "booking": booking.id, "guest_booking": guest.id,
            "customer": accts["customer"].id}


# --- building requests from the OpenAPI document --------------------------------------------

def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = doc["components"]["schemas"][name]
    return schema


def _variants(doc: dict, schema: dict) -> list[dict]:
    schema = _resolve(doc, schema)
    if "anyOf" in schema or "oneOf" in schema:
        return [_resolve(doc, s) for s in schema.get("anyOf", schema.get("oneOf", []))
                if _resolve(doc, s).get("type") != "null"]
    return [schema]


def _is_string(doc: dict, schema: dict) -> bool:
    return any(v.get("type") == "string" and "enum" not in v and "const" not in v for v in _variants(doc, schema))


def _is_date(doc: dict, schema: dict) -> str | None:
    for v in _variants(doc, schema):
        if v.get("format") in ("date", "date-time"):
            return v["format"]
    return None


def _sample(doc: dict, schema: dict, world: dict, name: str = "") -> Any:
    """A plausible valid value for `schema` (good enough to get past the edge)."""
    schema = _variants(doc, schema)[0] if _variants(doc, schema) else {}
    if "examples" in schema and schema["examples"]:
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _sample(doc, v, world, k) for k, v in props.items() if k in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        if name in ("service_id", "booking_id"):
            return world["room"] if name == "service_id" else world["booking"]
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "boolean":
        return False
    if kind == "number":
        return 1
    fmt = schema.get("format")
    if fmt == "date-time":
        return SOON_AT
    if fmt == "date":
        return SOON.isoformat()
    return "x" * max(int(schema.get("minLength", 1)), 1)


#: valid bodies where a generated one would stop at the service (so the service is reached)
BASE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/users/register"): {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD,
                                      "full_name": "New Bie", "phone": "+14155550123", "timezone": "UTC"},
    ("POST", "/api/users/login"): {"username": "nobody", "password": PASSWORD},
    ("PUT", "/api/users/profile"): {"full_name": "Renamed", "timezone": "Europe/Madrid"},
    ("POST", "/api/services"): {"name": "Desk", "kind": "room", "duration_minutes": 30, "capacity": 1,
                                "price_cents": 0, "currency": "EUR", "timezone": "UTC", "description": "d",
                                "location": "l"},
    ("PUT", "/api/services/{id}"): {"name": "Renamed room", "description": "d", "location": "l"},
    ("PUT", "/api/services/{id}/availability"): {"weekly": [{"weekday": 0, "start": "09:00", "end": "17:00"}],
                                                 "exceptions": [{"date": SOON.isoformat(), "start": "10:00",
                                                                 "end": "12:00"}]},
    ("POST", "/api/services/{id}/sessions"): {"start": SOON_AT},
    ("POST", "/api/bookings"): {"service_id": 0, "start": SOON_AT, "notes": "n",
                                "guest": {"name": "G", "email": "g@example.com", "phone": "+14155550123"}},
    ("PUT", "/api/bookings/{id}"): {"notes": "n", "start": SOON_AT},
    ("POST", "/api/payments/{booking_id}/refund"): {"note": "n"},
}


def _path_value(path: str, name: str, world: dict) -> str:
    if path.startswith("/api/services/"):
        return str(world["event"] if "sessions" in path else world["room"])
    if path.startswith("/api/bookings/"):
        return str(world["booking"])
    if path.startswith("/api/payments/"):
        return str(world["guest_booking"])  # a paid event: payments, refunds
    if path.startswith("/api/admin/users/"):
        return str(world["customer"])
    return "1"


def _quote(value: str) -> str:
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


def _string_fields(doc: dict, schema: dict, prefix: tuple = ()) -> list[tuple[tuple, dict]]:
    """(path in the body, schema) of every string field, nested objects and the first item of
    arrays of objects included."""
    out: list[tuple[tuple, dict]] = []
    for variant in _variants(doc, schema):
        if variant.get("type") == "object":
            for key, sub in variant.get("properties", {}).items():
                out.extend(_string_fields(doc, sub, (*prefix, key)))
        elif variant.get("type") == "array" and prefix:
            out.extend(_string_fields(doc, variant.get("items", {}), (*prefix, 0)))
        elif prefix and (_is_string(doc, variant) or _is_date(doc, variant)):
            out.append((prefix, variant))
    return out


def _set(body: Any, where: tuple, value: Any, doc: dict, schema: dict, world: dict) -> Any:
    """A copy of `body` with the field at `where` set to `value` (filling missing parents)."""
    body = json.loads(json.dumps(body))
    node, node_schema = body, _variants(doc, schema)[0]
    for i, key in enumerate(where):
        last = i == len(where) - 1
        if isinstance(key, int):
            item_schema = node_schema.get("items", {})
            if not node:
                node.append(_sample(doc, item_schema, world))
            if last:
                node[0] = value
            else:
                node, node_schema = node[0], _variants(doc, item_schema)[0]
            continue
        sub_schema = node_schema.get("properties", {}).get(key, {})
        if last:
            node[key] = value
        else:
            if not isinstance(node.get(key), (dict, list)):
                node[key] = _sample(doc, sub_schema, world, key) if _variants(doc, sub_schema)[0].get("type") == "object" else []
            node, node_schema = node[key], _variants(doc, sub_schema)[0]
    return body


def _requests(doc: dict, world: dict):
    """(label, method, url, raw body or None) for every hostile value of every operation."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            method = method.upper()
            params = op.get("parameters", [])
            path_values = {p["name"]: _path_value(path, p["name"], world) for p in params if p["in"] == "path"}
            base_query: dict[str, str] = {}
            for p in params:
                if p["in"] == "query" and p.get("required"):
                    base_query[p["name"]] = SOON.isoformat() if p["name"] in DATE_PARAMS else "x"
            body_schema = (op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
            base_body = None
            if body_schema is not None:
                base_body = BASE_BODIES.get((method, path)) or _sample(doc, body_schema, world)
                if isinstance(base_body, dict) and base_body.get("service_id") == 0:
                    base_body = {**base_body, "service_id": world["room"]}

            def url(path_vals: dict[str, str], query: dict[str, str]) -> str:
                out = path
                for k, v in path_vals.items():
                    out = out.replace("{" + k + "}", _quote(v))
                if query:
                    out += "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query.items())
                return out

            def raw(body: Any) -> bytes | None:
                return None if body is None else json.dumps(body).encode("ascii")  # \ud800 as an escape

            hostile: list[tuple[str, str, bytes | None]] = []
            for p in params:
                schema = p.get("schema", {})
                where = p["in"]
                if where not in ("query", "path"):
                    continue
                date_like = p["name"] in DATE_PARAMS or _is_date(doc, schema)
                if not (_is_string(doc, schema) or date_like):
                    continue
                values = dict(HOSTILE_TEXT)
                if date_like:
                    values.update({k: v[0] for k, v in HOSTILE_DATES.items()})
                for label, value in values.items():
                    if where == "path":
                        hostile.append((f"{p['name']}={label}", url({**path_values, p["name"]: value}, base_query),
                                        raw(base_body)))
                    else:
                        hostile.append((f"?{p['name']}={label}", url(path_values, {**base_query, p["name"]: value}),
                                        raw(base_body)))
            if body_schema is not None:
                for where, schema in _string_fields(doc, body_schema):
                    fmt = _is_date(doc, schema)
                    values = ({k: v[0 if fmt == "date" else 1] for k, v in HOSTILE_DATES.items()} if fmt
                              else dict(HOSTILE_TEXT))
                    for label, value in values.items():
                        body = _set(base_body, where, value, doc, body_schema, world)
                        hostile.append((f"{'.'.join(map(str, where))}={label}", url(path_values, base_query), raw(body)))
            for label, target, body in hostile:
                yield f"{method} {path} {label}", method, target, body


def _deletes_last(request: tuple) -> bool:
    return request[1] == "DELETE"


def _check(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), \
            f"{what}: {response.status_code} {response.headers['content-type']}"


def test_no_operation_fails_on_hostile_input(client, fast_hash, monkeypatch):
    from booking_app.api import create_api

    world = _world(monkeypatch)
    doc = create_api().openapi()
    requests = sorted(_requests(doc, world), key=_deletes_last)  # (cancelling the booking last)
    assert len(requests) > 300  # every operation was walked (a smaller count means the walk broke)
    seen_ops = {label.rsplit(" ", 1)[0] for label, *_ in requests}
    for needle in ("GET /api/services", "POST /api/users/login", "POST /api/bookings", "GET /api/admin/users",
                   "GET /api/services/{id}/slots", "PUT /api/services/{id}/availability", "GET /api/reports/bookings"):
        assert needle in seen_ops, needle
    who = {"anonymous": {}, "provider": world["accounts"]["provider"].headers,
           "admin": world["accounts"]["admin"].headers}
    for role, headers in who.items():
        for label, method, target, body in requests:
            extra = {"content-type": "application/json"} if body is not None else {}
            r = client.request(method, target, headers={**headers, **extra}, content=body)
            _check(r, f"{role}: {label}")


def _unruled_strings(doc: dict, schema: dict, where: str):
    """Free-text strings (no enum, const or format) under `schema` that declare no pattern."""
    for variant in _variants(doc, schema):
        if variant.get("type") == "object":
            for key, sub in variant.get("properties", {}).items():
                yield from _unruled_strings(doc, sub, f"{where}.{key}")
        elif variant.get("type") == "array":
            yield from _unruled_strings(doc, variant.get("items", {}), f"{where}[]")
        elif _is_string(doc, variant) and "format" not in variant and "pattern" not in variant:
            yield where


def test_every_text_input_declares_the_character_rule():
    """Each free-text body field and query/path parameter of every operation carries the
    character rule (SingleLineStr / MultiLineStr: a pattern in the document, a 422 at the edge).
    Signed tokens are exempt: they are only ever hashed or checked, never stored or sent on."""
    from booking_app.api import create_api

    doc = create_api().openapi()
    missing = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", []):
                if p["in"] in ("query", "path") and p["name"] != "token":
                    missing += [f"{method.upper()} {path} {w}" for w in _unruled_strings(doc, p.get("schema", {}),
                                                                                         f"{p['in']}:{p['name']}")]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                missing += [f"{method.upper()} {path} {w}" for w in _unruled_strings(doc, body, "body")]
    assert not missing, missing


# --- focused: text ----------------------------------------------------------------------------

def test_nul_in_text_fields_is_a_422(client, fast_hash, monkeypatch):
    world = _world(monkeypatch)
    cust = world["accounts"]["customer"]
    admin = world["accounts"]["admin"]
    bad = [
        ("POST", "/api/users/login", {}, {"username": "cust\x00omer", "password": PASSWORD}, None, "username"),
        ("POST", "/api/users/login", {}, {"username": cust.username, "password": PASSWORD + "\x00"}, None, "password"),
        ("POST", "/api/users/register", {}, {"username": "nully", "email": "nully@example.com", "password": PASSWORD,
                                             "full_name": "Nu\x00ll"}, None, "full_name"),
        ("PUT", "/api/users/profile", cust.headers, {"full_name": "Nu\x00ll"}, None, "full_name"),
        ("POST", "/api/bookings", {}, {"service_id": world["room"], "start": SOON_AT,
                                       "guest": {"name": "Gu\x00est", "email": "g@example.com"}}, None, "guest.name"),
        ("POST", "/api/bookings", cust.headers, {"service_id": world["room"], "start": SOON_AT,
                                                 "notes": "line\x00"}, None, "notes"),
        ("PUT", f"/api/bookings/{world['booking']}", cust.headers, {"notes": "x\x00"}, None, "notes"),
        ("POST", "/api/users/password-reset", {}, {"email": "a\x00@example.com"}, None, "email"),
        ("GET", "/api/services", {}, None, {"q": "ro\x00om"}, "q"),
        ("GET", "/api/services", {}, None, {"location": "Main\x00"}, "location"),
        ("GET", "/api/admin/users", admin.headers, None, {"q": "cu\x00st"}, "q"),
        ("GET", "/api/bookings", cust.headers, None, {"from": "2026-01-01\x00"}, "from"),
    ]
    for method, path, headers, body, params, field in bad:
        r = client.request(method, path, headers=headers, json=body, params=params)
        problem = assert_problem(r, 422)
        assert field.split(".")[-1] in json.dumps(problem), (path, problem)
    # a lone surrogate (a JSON escape; not encodable as UTF-8) is refused too
    raw = b'{"username": "a\\ud800b", "password": "' + PASSWORD.encode() + b'"}'
    assert_problem(client.post("/api/users/login", content=raw, headers={"content-type": "application/json"}), 422)
    # the message is translated
    r = client.post("/api/users/login", headers={"Accept-Language": "fr"}, json={"username": "a\x00", "password": "p"})
    assert "caractères non autorisés" in assert_problem(r, 422)["detail"]


def test_line_breaks_only_where_text_may_span_lines(client, fast_hash, monkeypatch):
    world = _world(monkeypatch)
    prov = world["accounts"]["provider"]
    body = {"name": "Room\r\nBcc: victim@example.com", "kind": "room", "duration_minutes": 30, "capacity": 1,
            "price_cents": 0, "currency": "EUR", "timezone": "UTC"}
    problem = assert_problem(client.post("/api/services", headers=prov.headers, json=body), 422)
    assert problem["errors"][0]["field"] == "name"
    assert_problem(client.put(f"/api/services/{world['room']}", headers=prov.headers, json={"name": "A\nB"}), 422)
    assert_problem(client.put(f"/api/services/{world['room']}", headers=prov.headers, json={"location": "A\tB"}), 422)
    assert_problem(client.get("/api/services", params={"q": "room\n"}), 422)
    # descriptions and notes may span lines
    r = client.put(f"/api/services/{world['room']}", headers=prov.headers,
                   json={"description": "Line one\r\nLine two\n\tindented"})
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "Line one\r\nLine two\n\tindented"
    cust = world["accounts"]["customer"]
    r = client.put(f"/api/bookings/{world['booking']}", headers=cust.headers, json={"notes": "two\nlines"})
    assert r.status_code == 200 and r.json()["notes"] == "two\nlines", r.text
    # the rule is in the OpenAPI document
    doc = client.get("/api/openapi.json").json()
    name = doc["components"]["schemas"]["BookableCreateIn"]["properties"]["name"]
    assert "\\x0a" in name["pattern"] and name["maxLength"] == 200
    description = doc["components"]["schemas"]["BookableCreateIn"]["properties"]["description"]["anyOf"][0]
    assert "\\x00" in description["pattern"] and "\\x0a" not in description["pattern"]


# --- focused: dates -------------------------------------------------------------------------------

def test_far_dates_are_a_422(client, fast_hash, monkeypatch):
    world = _world(monkeypatch)
    cust = world["accounts"]["customer"]
    room = world["room"]
    for year_date in ("9999-12-31", "0001-01-01", "1999-12-31"):
        assert_problem(client.get("/api/services", params={"date": year_date}), 422)
        assert_problem(client.get(f"/api/services/{room}/slots", params={"from": year_date, "to": year_date}), 422)
        assert_problem(client.get("/api/bookings", headers=cust.headers, params={"to": year_date}), 422)
        assert_problem(client.get("/api/bookings", headers=cust.headers, params={"from": year_date}), 422)
        assert_problem(client.get(f"/api/services/{world['event']}/sessions", params={"to": year_date}), 422)
    assert_problem(client.get("/api/bookings", headers=cust.headers, params={"to": "9999-12-31T23:59:59+14:00"}), 422)
    assert_problem(client.post("/api/bookings", headers=cust.headers,
                               json={"service_id": room, "start": "9999-12-31T23:00:00-12:00"}), 422)
    # the bounds themselves still work: nothing to show far ahead, but no error
    from booking_app.services import validation

    last = validation.max_date().isoformat()
    r = client.get(f"/api/services/{room}/slots", params={"from": last, "to": last})
    assert r.status_code == 200 and r.json() == {"slots": []}, r.text
    assert client.get("/api/services", params={"date": last}).status_code == 200


# --- focused: the services the UI calls refuse the same input ---------------------------------------

def test_ui_facing_services_refuse_the_same_input(db_url, fast_hash, monkeypatch):
    from booking_app.services import accounts, auth, availability, booking_queries, bookings, catalog, outbox_admin, reports
    from booking_app.services.actors import Actor
    from booking_app.services.errors import InvalidInput

    world = _world(monkeypatch)
    cust = Actor(id=world["customer"], role="customer")
    prov = Actor(id=world["accounts"]["provider"].id, role="provider")
    admin = Actor(id=world["accounts"]["admin"].id, role="admin")
    calls = {
        "register.full_name": lambda: accounts.register(username="uiuser", email="ui@example.com", password=PASSWORD,
                                                        full_name="Nu\x00ll"),
        "register.email": lambda: accounts.register(username="uiuser", email="ui\x00@example.com", password=PASSWORD),
        "register.password": lambda: accounts.register(username="uiuser", email="ui@example.com",
                                                       password=PASSWORD + "\ud800"),
        "profile.full_name": lambda: accounts.update_profile(actor=cust, full_name="Line\nBreak"),
        "login.identifier": lambda: auth.login(identifier="cust\x00", password=PASSWORD),
        "login.password": lambda: auth.login(identifier="customer", password="\ud800" + PASSWORD),
        "reset.email": lambda: auth.request_password_reset(email="a\x00@example.com"),
        "reset.token": lambda: auth.confirm_password_reset(token="tok\x00en", new_password=PASSWORD),
        "users.q": lambda: accounts.list_users(actor=admin, q="x\x00"),
        "outbox.q": lambda: outbox_admin.list_notifications(actor=admin, q="x\ud800"),
        "bookable.name": lambda: catalog.create_bookable(actor=prov, name="A\r\nB", kind="room", duration_minutes=30,
                                                         capacity=1, price_cents=0, currency="EUR", timezone="UTC"),
        "bookable.location": lambda: catalog.update_bookable(actor=prov, bookable_id=world["room"], location="x\x00"),
        "bookable.description": lambda: catalog.update_bookable(actor=prov, bookable_id=world["room"],
                                                                description="\ud800"),
        "bookable.currency": lambda: catalog.update_bookable(actor=prov, bookable_id=world["room"], currency="EU\x00"),
        "search.q": lambda: catalog.search_bookables(q="\x00"),
        "search.date": lambda: catalog.search_bookables(date="9999-12-31"),
        "slots.to": lambda: availability.slots(bookable_id=world["room"], date_from="9999-12-30", date_to="9999-12-31"),
        "sessions.from": lambda: catalog.list_event_sessions(bookable_id=world["event"], date_from="0001-01-01"),
        "session.start": lambda: catalog.add_event_session(actor=prov, bookable_id=world["event"],
                                                           start="9999-12-31T10:00:00+14:00"),
        "exception.date": lambda: catalog.set_availability(actor=prov, bookable_id=world["room"],
                                                           exceptions=[{"date": "9999-12-31", "closed": True}]),
        "book.notes": lambda: bookings.book(actor=cust, service_id=world["room"], start=SOON_AT, notes="\x00"),
        "book.guest.name": lambda: bookings.book(actor=Actor.guest(), service_id=world["room"], start=SOON_AT,
                                                 guest={"name": "G\r\nBcc: x", "email": "g@example.com"}),
        "book.start": lambda: bookings.book(actor=cust, service_id=world["room"], start="9999-12-31T10:00:00Z"),
        "reschedule.notes": lambda: bookings.reschedule(actor=cust, booking_id=world["booking"], notes="\x01"),
        "list.to": lambda: booking_queries.list_bookings(actor=cust, date_to="9999-12-31"),
        "report.from": lambda: reports.bookings(actor=admin, date_from="1999-12-31", date_to="2000-01-05"),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInput) as exc:
            call()
        assert exc.value.field, name


def test_the_character_rule():
    from booking_app.services import validation

    ok_single = ["Zoë O'Brien", "東京 会議室", "emoji 😀", "a b", "€uro"]
    ok_multi = ["two\nlines", "tab\there", "crlf\r\n"]
    never = ["\x00", "\x01", "\x1b[31m", "\x7f", "\x85", "\ud800", "\udfff", "\ufffe", "\uffff", "\ufdd0"]
    line_breaks = ["\n", "\r", "\t", "\u2028", "\u2029"]
    for value in ok_single:
        assert validation.text_problem(value) is None, value
    for value in ok_multi:
        assert validation.text_problem(value, multiline=True) is None, value
        assert validation.text_problem(value) is not None, value
    for value in never:
        assert validation.text_problem(f"a{value}b") == validation.BAD_CHARACTERS, repr(value)
        assert validation.text_problem(f"a{value}b", multiline=True) == validation.BAD_CHARACTERS, repr(value)
    for value in line_breaks:
        assert validation.text_problem(f"a{value}b") == validation.LINE_BREAKS, repr(value)
    # the published patterns say the same as the check, but for lone surrogates (left to the
    # server: scalar-value regex engines can't compile them), and compile without them
    import re

    single, multi = re.compile(validation.SINGLE_LINE_PATTERN), re.compile(validation.MULTI_LINE_PATTERN)
    assert not re.search(r"\\ud[89a-f]", validation.SINGLE_LINE_PATTERN + validation.MULTI_LINE_PATTERN)
    for value in ok_single + ok_multi + never + line_breaks:
        text = f"a{value}b"
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            assert single.search(text) and multi.search(text) and validation.text_problem(text), repr(value)
            continue
        assert bool(single.search(text)) == (validation.text_problem(text) is None), repr(value)
        assert bool(multi.search(text)) == (validation.text_problem(text, multiline=True) is None), repr(value)


# --- the safety net ---------------------------------------------------------------------------------

def test_database_and_overflow_errors_from_input_are_a_422(caplog):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import DataError

    from booking_app.api import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/data")
    def data() -> None:
        raise DataError("INSERT …", {}, Exception("PostgreSQL text fields cannot contain NUL (0x00) bytes"))

    @app.get("/overflow")
    def overflow() -> None:
        dt.date(9999, 12, 31) + dt.timedelta(days=1)

    @app.get("/encode")
    def encode() -> None:
        "\ud800".encode("utf-8")

    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level("WARNING"):
        for path in ("/data", "/overflow", "/encode"):
            body = assert_problem(c.get(path), 422)
            assert body["type"] == "/problems/invalid_input"
    assert sum("input the edges let through" in r.getMessage() for r in caplog.records) == 3


# --- the request body cap ------------------------------------------------------------------------------

def test_a_huge_body_is_refused_before_it_is_read(client):
    big = b"[" + b"1," * (15 * 1024 * 1024) + b"1]"  # 30 MB of valid JSON
    started = time.perf_counter()
    r = client.post("/api/users/login", content=big, headers={"content-type": "application/json"})
    body = assert_problem(r, 413)
    assert body["type"] == "/problems/too_large" and "1048576" in body["detail"]
    assert time.perf_counter() - started < 5

    def chunks():
        for _ in range(30):
            yield b" " * (1024 * 1024)

    r = client.post("/api/bookings", content=chunks(), headers={"content-type": "application/json"})
    assert_problem(r, 413)
    # bodies under the cap are untouched (here: a 900 kB body reaches validation: 422)
    assert_problem(client.post("/api/users/login", json={"username": "x" * 900_000, "password": "p"}), 422)


def test_the_body_cap_is_a_setting(client, monkeypatch):
    set_env(monkeypatch, MAX_REQUEST_BODY_BYTES="65536")
    body = {"username": "x" * 70_000, "password": "p"}
    assert_problem(client.post("/api/users/login", json=body), 413)
    set_env(monkeypatch, MAX_REQUEST_BODY_BYTES="131072")
    assert_problem(client.post("/api/users/login", json=body), 422)


def test_the_body_cap_never_lets_the_app_read_more():
    """At the ASGI level: by Content-Length the app is never called; a chunked body is cut at
    the chunk that crosses the cap, and the app never gets that chunk."""
    from booking_app.api.bodylimit import BodyLimitMiddleware

    got: list[bytes] = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            got.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run(headers: list, chunks: list[bytes]) -> list[dict]:
        sent: list[dict] = []
        queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

        async def receive():
            return queue.pop(0)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/bookings", "headers": headers, "query_string": b"",
                 "root_path": "", "scheme": "http", "server": ("test", 80), "client": ("1.2.3.4", 5)}
        await BodyLimitMiddleware(app, max_bytes=1000)(scope, receive, send)
        return sent

    sent = asyncio.run(run([(b"content-length", b"5000")], [b"x" * 5000]))
    assert sent[0]["status"] == 413 and got == []
    sent = asyncio.run(run([], [b"x" * 600, b"x" * 600, b"x" * 600]))
    assert sent[0]["status"] == 413 and got == [b"x" * 600]
    assert json.loads(sent[1]["body"])["status"] == 413
    sent = asyncio.run(run([(b"content-length", b"900")], [b"x" * 900]))
    assert sent[0]["status"] == 200


def test_the_stripe_webhook_fits_under_the_cap(client):
    """Stripe events are a few kB: the default body cap lets everything the webhook's own cap
    (512 kB) lets in, and the smallest cap an operator may set (64 kB) still lets a large
    event through to the signature check."""
    import annotated_types

    from booking_app.api import payments
    from booking_app.config import Settings

    lowest = next(m.ge for m in Settings.model_fields["max_request_body_bytes"].metadata
                  if isinstance(m, annotated_types.Ge))
    assert payments.MAX_WEBHOOK_BYTES <= Settings().max_request_body_bytes and lowest >= 64 * 1024
    event = json.dumps({"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"pad": "x" * 60_000}}})
    r = client.post("/api/payments/webhook/stripe", content=event, headers={"stripe-signature": "t=1,v1=00"})
    assert r.status_code != 413 and r.status_code < 500, r.text
