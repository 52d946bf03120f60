"""A bookable's own reminder times over the REST API: create / update / read back,
clearing back to the defaults, the bounds in the OpenAPI document, and 422s for bad input."""
from __future__ import annotations

import pytest

from booking_app.services.reminders import MAX_REMINDER_OFFSET_MINUTES
from tests.api.conftest import assert_problem, make_account

ROOM = {"name": "Room", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 0,
        "currency": "EUR", "timezone": "UTC"}


@pytest.fixture
def provider(client, fast_hash):
    return make_account("provider")


def test_create_update_and_read_back(client, provider):
    r = client.post("/api/services", headers=provider.headers, json={**ROOM, "reminder_offsets": [60, 2880, 60]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["reminder_offsets"] == [2880, 60]  # distinct, largest first
    sid = created["id"]
    assert client.get(f"/api/services/{sid}").json()["reminder_offsets"] == [2880, 60]

    r = client.put(f"/api/services/{sid}", headers=provider.headers, json={"reminder_offsets": [15]})
    assert r.status_code == 200, r.text
    assert r.json()["reminder_offsets"] == [15]
    # a change of another field keeps them
    r = client.put(f"/api/services/{sid}", headers=provider.headers, json={"name": "Renamed"})
    assert r.json()["reminder_offsets"] == [15]
    assert client.get(f"/api/services/{sid}").json()["reminder_offsets"] == [15]
    # [] and null both mean "the defaults" again
    r = client.put(f"/api/services/{sid}", headers=provider.headers, json={"reminder_offsets": []})
    assert r.status_code == 200 and r.json()["reminder_offsets"] == []
    client.put(f"/api/services/{sid}", headers=provider.headers, json={"reminder_offsets": [30]})
    r = client.put(f"/api/services/{sid}", headers=provider.headers, json={"reminder_offsets": None})
    assert r.status_code == 200 and r.json()["reminder_offsets"] == []
    listed = client.get("/api/services", params={"q": "Renamed"}).json()["items"]
    assert [i["reminder_offsets"] for i in listed] == [[]]


def test_without_reminder_offsets_the_defaults_apply(client, provider):
    r = client.post("/api/services", headers=provider.headers, json=ROOM)
    assert r.status_code == 201 and r.json()["reminder_offsets"] == []


@pytest.mark.parametrize("bad", [
    [0], [-60], [MAX_REMINDER_OFFSET_MINUTES + 1], [1, 2, 3, 4, 5, 6], ["60"], [1.5], [True], [None],
    "1440,60", 60, {"minutes": 60}, [[60]],
])
def test_bad_reminder_offsets_are_422(client, provider, bad):
    sid = client.post("/api/services", headers=provider.headers, json={**ROOM, "reminder_offsets": [120]}).json()["id"]
    for method, path, body in (("POST", "/api/services", {**ROOM, "reminder_offsets": bad}),
                               ("PUT", f"/api/services/{sid}", {"reminder_offsets": bad})):
        r = client.request(method, path, headers=provider.headers, json=body)
        problem = assert_problem(r, 422)
        assert "reminder_offsets" in r.text, problem
    assert client.get(f"/api/services/{sid}").json()["reminder_offsets"] == [120]  # unchanged


def test_openapi_documents_the_bounds(client):
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    for name in ("BookableCreateIn", "BookableUpdateIn"):
        prop = schemas[name]["properties"]["reminder_offsets"]
        (array,) = [s for s in prop["anyOf"] if s.get("type") == "array"]
        assert array["maxItems"] == 5
        assert (array["items"]["minimum"], array["items"]["maximum"]) == (1, MAX_REMINDER_OFFSET_MINUTES)
