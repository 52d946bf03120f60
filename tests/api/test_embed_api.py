"""The booking widget's allow-list over HTTP (SQLite and PostgreSQL): a provider reads and
replaces their list (normalised), bad origins are 422 problems with nothing written, an admin
edits any provider's, and the widget pages' frame-ancestors follow the list at once."""
from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem, make_account


@pytest.fixture(autouse=True)
def _fresh_cache():
    from booking_app.services import embed

    embed.clear_cache()
    yield
    embed.clear_cache()


def _room(provider_id: int) -> int:
    from booking_app.services import catalog
    from booking_app.services.actors import Actor

    return catalog.create_bookable(actor=Actor(id=provider_id, role="provider"), name="Room", kind="room",
                                   duration_minutes=60, capacity=1, price_cents=0, currency="EUR",
                                   timezone="UTC").id


def _frame_ancestors(response) -> str:
    for part in response.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        if name == "frame-ancestors":
            return value
    raise AssertionError("no frame-ancestors")


def test_provider_replaces_their_list_and_the_widget_follows(client, fast_hash):
    provider = make_account("provider")
    room = _room(provider.id)
    r = client.get("/api/embed/origins", headers=provider.headers)
    assert r.status_code == 200 and r.json() == {"provider_id": provider.id, "origins": []}
    assert _frame_ancestors(client.get(f"/embed?id={room}")) == "'none'"
    r = client.put("/api/embed/origins", headers=provider.headers,
                   json={"origins": ["https://Shop.Example.com/", "https://shop.example.com", "http://localhost:5173"]})
    assert r.status_code == 200, r.text
    assert r.json()["origins"] == ["https://shop.example.com", "http://localhost:5173"]
    assert client.get("/api/embed/origins", headers=provider.headers).json()["origins"] == r.json()["origins"]
    page = client.get(f"/embed?id={room}")
    assert _frame_ancestors(page) == "https://shop.example.com http://localhost:5173"
    assert "x-frame-options" not in page.headers
    other = client.get(f"/service?id={room}")
    assert _frame_ancestors(other) == "'none'" and other.headers["x-frame-options"] == "DENY"
    r = client.put("/api/embed/origins", headers=provider.headers, json={"origins": []})
    assert r.status_code == 200 and r.json()["origins"] == []
    assert _frame_ancestors(client.get(f"/embed?id={room}")) == "'none'"


@pytest.mark.parametrize("origins", [
    ["http://shop.example.com"], ["https://*.example.com"], ["https://shop.example.com/page"], ["shop.example.com"],
    ["https://ok.example", "javascript:alert(1)"], ["https://shop.example.com\r\nX: y"], ["https://a.example\x00"],
    ["https://x.example; script-src *"], ["https://" + "a" * 400], [f"https://s{i}.example" for i in range(21)],
    "https://shop.example.com", [7], None,
])
def test_bad_origins_are_422_and_nothing_is_written(client, fast_hash, origins):
    provider = make_account("provider")
    assert client.put("/api/embed/origins", headers=provider.headers,
                      json={"origins": ["https://kept.example"]}).status_code == 200
    assert_problem(client.put("/api/embed/origins", headers=provider.headers, json={"origins": origins}), 422)
    assert client.get("/api/embed/origins", headers=provider.headers).json()["origins"] == ["https://kept.example"]


def test_who_may_read_and_change_which_list(client, fast_hash):
    provider, other, customer, admin = (make_account("provider"), make_account("provider"),
                                        make_account("customer"), make_account("admin"))
    assert_problem(client.get("/api/embed/origins"), 401)
    assert_problem(client.get("/api/embed/origins", headers=customer.headers), 403)
    assert_problem(client.get("/api/embed/origins", headers=other.headers, params={"provider_id": provider.id}), 403)
    assert_problem(client.put("/api/embed/origins", headers=other.headers,
                              json={"origins": [], "provider_id": provider.id}), 403)
    r = client.put("/api/embed/origins", headers=admin.headers,
                   json={"origins": ["https://partner.example"], "provider_id": provider.id})
    assert r.status_code == 200 and r.json() == {"provider_id": provider.id, "origins": ["https://partner.example"]}
    r = client.get("/api/embed/origins", headers=admin.headers, params={"provider_id": provider.id})
    assert r.json()["origins"] == ["https://partner.example"]
    assert_problem(client.get("/api/embed/origins", headers=admin.headers, params={"provider_id": customer.id}), 404)
    assert_problem(client.get("/api/embed/origins", headers=admin.headers, params={"provider_id": 0}), 422)
    assert_problem(client.put("/api/embed/origins", headers=provider.headers,
                              json={"origins": [], "extra": 1}), 422)
