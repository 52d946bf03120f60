"""Property-based API test: Schemathesis generates requests from /api/openapi.json.

Every operation gets a bounded number of generated cases (its examples, the coverage phase's
boundary and negative values, unspecified methods, and MAX_EXAMPLES fuzzed ones), sent through
the ASGI app once per role — anonymous, customer, provider and admin (each case with a fresh
token, so a generated logout or deactivation doesn't blind the rest; the coverage phase as the
anonymous caller and the provider, examples and fuzzing as the customer and the admin) — with a provider's room,
an event and a booking in the database. Every check that judges the document applies (see
DOCUMENT_CHECKS): no 5xx; status codes, content types, headers and bodies as documented;
invalid input refused; no undocumented way around the declared authentication; 405 with the
right `Allow`. The command-line twin, as an external client over HTTP: tools/openapi_conformance.py.
"""
from __future__ import annotations

import datetime as dt
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from booking_app.api import create_api

APP = create_api()
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
#: signed-in cases carry a real token, so the generator must not vary (or drop) Authorization:
#: the real header would replace its variation and the "invalid" case would not be one
signed_in_schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
signed_in_schema.config.generation.update(with_security_parameters=False)
#: the other signed-in roles: examples and fuzzed cases, without the coverage phase's hundreds of
#: boundary values per operation — those are validated before any role matters, and the
#: provider (the owner of the fixtures' resources) and the anonymous test already send them all
other_roles_schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
other_roles_schema.config.generation.update(with_security_parameters=False)
other_roles_schema.config.phases.update(phases=["examples", "fuzzing"])

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))
ROLES = ("anonymous", "customer", "provider", "admin")
#: the checks of `st run --checks all` that judge the document, as they apply to single calls.
#: Left out: positive_data_acceptance (it wants every schema-valid request accepted, but the
#: services refuse meaning the document can't express — an unknown time zone, a range that ends
#: before it starts, a weak password — with a documented 422); the stateful use_after_free,
#: ensure_resource_availability and object_level_authorization need chains of calls
#: (test_api_links_hold_statefully runs the declared chains).
DOCUMENT_CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
    response_schema_conformance, negative_data_rejection, missing_required_header, unsupported_method,
    allow_header_conformance, ignored_auth,
]
#: along the declared links, also: a resource a POST just created is found by the linked calls.
#: (use_after_free is left out: DELETE /api/bookings/{id} cancels, and a cancelled booking stays
#: readable — the documented contract, not a leak.)
STATEFUL_CHECKS = [*DOCUMENT_CHECKS, ensure_resource_availability]


@pytest.fixture
def world(sqlite_db, fast_hash, monkeypatch):
    from booking_app import db
    from booking_app.models import User
    from booking_app.services import auth, authcache, bookings, catalog
    from booking_app.services.actors import Actor
    from tests.api.conftest import make_account, set_env

    set_env(monkeypatch, RATE_LIMITS_ENABLED="false")
    accounts = {role: make_account(role, username=f"{role}-st") for role in ("admin", "provider", "customer")}
    provider, customer = accounts["provider"], accounts["customer"]
    prov = Actor(id=provider.id, role="provider")
    room = catalog.create_bookable(actor=prov, name="Room", kind="room", duration_minutes=60, capacity=3,
                                   price_cents=0, currency="EUR", timezone="UTC")
    catalog.set_availability(actor=prov, bookable_id=room.id,
                             weekly=[{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)])
    catalog.create_bookable(actor=prov, name="Event", kind="event", duration_minutes=60, capacity=10,
                            price_cents=0, currency="EUR", timezone="UTC")
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=5), dt.time(10), tzinfo=dt.timezone.utc)
    bookings.book(actor=Actor(id=customer.id, role="customer"), service_id=room.id, start=start)

    def fresh_token(role: str = "admin") -> str:
        """A new token of the role's user, who is put back as created first (an earlier generated
        case may have deactivated it, or an admin may have demoted itself after promoting another)."""
        with db.unit_of_work() as s:
            user = s.get(User, accounts[role].id)
            if (user.is_active, user.role) != (True, role):
                user.is_active, user.role = True, role
                s.add(user)
                authcache.forget_after_commit(s, "user", user.id)
            token, _ = auth.issue_token(s, user_id=user.id)
        return token

    fresh_token.room_id = room.id
    return fresh_token


SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("role", ["provider"])
@signed_in_schema.parametrize()
@SETTINGS
def test_api_conforms_to_its_schema(case, world, role):
    case.call_and_validate(headers={"Authorization": f"Bearer {world(role)}"}, checks=DOCUMENT_CHECKS)


@pytest.mark.parametrize("role", ["customer", "admin"])
@other_roles_schema.parametrize()
@SETTINGS
def test_api_conforms_to_its_schema_in_other_roles(case, world, role):
    case.call_and_validate(headers={"Authorization": f"Bearer {world(role)}"}, checks=DOCUMENT_CHECKS)


# (the one-value parametrize gives each operation's test its own id, "…[GET /api/health][anonymous]":
# schemathesis alone gives them all the function's name, and pytest-xdist runs one test per id)
@pytest.mark.parametrize("role", ["anonymous"])
@schema.parametrize()
@SETTINGS
def test_api_conforms_to_its_schema_anonymously(case, world, role):
    """No token of ours: the generated Authorization headers (missing, malformed, unknown) are the test."""
    case.call_and_validate(checks=DOCUMENT_CHECKS)


STATEFUL_EXAMPLES = int(os.environ.get("SCHEMATHESIS_STATEFUL_EXAMPLES", "8"))
#: the chains the API's OpenAPI links declare (CREATED_LINKS in booking_app/api/catalog.py and bookings.py)
LINKED_CHAINS = {
    "catalog": ["create_service", "get_service", "update_service", "get_availability", "set_availability",
                "add_session", "list_sessions", "list_slots"],
    "bookings": ["create_booking", "get_booking", "update_booking", "cancel_booking", "get_payment"],
}


@pytest.mark.parametrize("chain", sorted(LINKED_CHAINS))
def test_api_links_hold_statefully(world, chain):
    """Stateful: a created resource (201) is followed along its declared OpenAPI links with its real id
    (bookable → read/change/availability/sessions/slots; booking → read/reschedule/cancel/payment), as an
    admin. Only the declared links are followed (no inferred ones), so each chain starts at its POST."""
    linked_schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)
    linked_schema.config.phases.stateful.inference.algorithms = []
    linked_schema = linked_schema.include(operation_id=LINKED_CHAINS[chain])
    seen: list[tuple[str, int]] = []
    slot = iter(range(10_000))

    class LinkedCalls(linked_schema.as_state_machine()):
        def before_call(self, case):
            # a real admin token replaces the generated (random) one
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {world()}"}
            if case.operation.label == "POST /api/services" and next(slot) % 2 == 0:
                # every other root bookable is a valid one (generated currencies/time zones rarely are)
                case.body = {"name": "Linked", "kind": ("room", "service", "event")[next(slot) % 3],
                             "duration_minutes": 60, "capacity": 3, "price_cents": 0, "currency": "EUR",
                             "timezone": "UTC"}
            if case.operation.label == "POST /api/bookings" and isinstance(case.body, dict) and next(slot) % 2 == 0:
                # every other root booking aims at a free hour of the room, so the chain gets real ids
                n = next(slot)
                day = dt.date.today() + dt.timedelta(days=1 + n // 12 % 28)
                case.body = {**case.body, "service_id": world.room_id, "start": dt.datetime.combine(
                    day, dt.time(8 + n % 12), tzinfo=dt.timezone.utc).isoformat()}

        def after_call(self, response, case):
            super().after_call(response, case)  # recorded: the stateful checks look up earlier steps
            seen.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # (the token is ours, not generated: ignored_auth probes the call without it)
            case.validate_response(response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs,
                                   headers={"Authorization": case.headers["Authorization"]},
                                   recorder=getattr(self, "recorder", None))

    LinkedCalls.run(settings=settings(max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None,
                                      suppress_health_check=list(HealthCheck)))
    root = {"catalog": "POST /api/services", "bookings": "POST /api/bookings"}[chain]
    followed = {label for label, status in seen if label != root and 200 <= status < 300}
    assert followed, f"no declared link was followed to a success: {sorted(set(seen))}"
