"""Webhook routes: register (secret once), a booking made through the API is delivered signed
to a local receiver, the delivery log, redelivery, rotation, who may see what, and 422 for
private targets (no SSRF). On SQLite and PostgreSQL (the booking hot path's batched writes
carry the webhook outbox rows)."""
from __future__ import annotations

import pytest

from booking_app.services import relay, webhook_delivery
from tests.api.conftest import assert_problem, make_account, open_room, set_env
from tests.api.test_bookings_api import free_starts
from tests.test_webhooks import Receiver


@pytest.fixture
def receiver(monkeypatch):
    set_env(monkeypatch, WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def room(client, fast_hash):
    return open_room(client, name="Room Hook")


def test_webhook_lifecycle_with_a_booking_through_the_api(client, room, receiver):
    provider = room["provider"]
    r = client.post("/api/webhooks", headers=provider.headers,
                    json={"url": receiver.url, "events": ["booking.created", "booking.cancelled"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert {"id", "url", "events", "active", "secret"} <= set(hook) and hook["active"] is True
    secret = hook["secret"]
    got = client.get(f"/api/webhooks/{hook['id']}", headers=provider.headers).json()
    assert "secret" not in got and got["events"] == ["booking.created", "booking.cancelled"]
    assert [h["id"] for h in client.get("/api/webhooks", headers=provider.headers).json()["items"]] == [hook["id"]]

    cust = make_account("customer")
    start = free_starts(client, room["id"], n=1)[0]
    r = client.post("/api/bookings", headers=cust.headers, json={"service_id": room["id"], "start": start})
    assert r.status_code == 201, r.text
    booking_id = r.json()["id"]
    assert client.delete(f"/api/bookings/{booking_id}", headers=cust.headers).status_code == 200
    relay.relay_once()
    assert [e["type"] for e in receiver.events()] == ["booking.created", "booking.cancelled"]
    for req in receiver.requests:
        assert webhook_delivery.verify(req["body"], req["headers"]["Booking-Signature"], secret)
    assert receiver.events()[0]["data"]["booking"]["id"] == booking_id

    items = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=provider.headers).json()["items"]
    assert [i["event"] for i in items] == ["booking.cancelled", "booking.created"]  # newest first
    assert all({"id", "event", "status", "response_code", "attempts", "created_at"} <= set(i) for i in items)
    assert all(i["status"] == "delivered" and i["response_code"] == 200 and i["attempts"] == 1 for i in items)

    r = client.post(f"/api/webhooks/{hook['id']}/deliveries/{items[1]['id']}/redeliver", headers=provider.headers)
    assert r.status_code == 202 and r.json()["status"] == "pending"
    r = client.post(f"/api/webhooks/{hook['id']}/rotate-secret", headers=provider.headers)
    assert r.status_code == 200 and r.json()["secret"] != secret and r.json()["previous_secret_until"]
    relay.relay_once()
    last = receiver.requests[-1]
    assert receiver.events()[-1]["type"] == "booking.created"
    assert webhook_delivery.verify(last["body"], last["headers"]["Booking-Signature"], secret)
    assert webhook_delivery.verify(last["body"], last["headers"]["Booking-Signature"], r.json()["secret"])

    r = client.put(f"/api/webhooks/{hook['id']}", headers=provider.headers, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.delete(f"/api/webhooks/{hook['id']}", headers=provider.headers).status_code == 204
    assert_problem(client.get(f"/api/webhooks/{hook['id']}", headers=provider.headers), 404)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.0.0.8/hook", "http://169.254.169.254/latest", "http://[::1]/hook",
    "http://localhost:8080/hook", "http://[::ffff:192.168.0.1]/",
])
def test_private_targets_are_422(client, fast_hash, url, monkeypatch):
    set_env(monkeypatch, WEBHOOK_ALLOW_PRIVATE_TARGETS="false")
    provider = make_account("provider")
    body = assert_problem(client.post("/api/webhooks", headers=provider.headers,
                                      json={"url": url, "events": ["booking.created"]}), 422)
    assert "private" in body["detail"]


def test_who_may_see_which_endpoint(client, fast_hash, receiver):
    owner, other, admin, cust = (make_account(r) for r in ("provider", "provider", "admin", "customer"))
    hook = client.post("/api/webhooks", headers=owner.headers,
                       json={"url": receiver.url, "events": ["booking.created"]}).json()
    assert_problem(client.get(f"/api/webhooks/{hook['id']}", headers=other.headers), 404)
    assert_problem(client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=other.headers), 404)
    assert_problem(client.post("/api/webhooks", headers=cust.headers,
                               json={"url": receiver.url, "events": ["booking.created"]}), 403)
    assert client.get(f"/api/webhooks/{hook['id']}", headers=admin.headers).status_code == 200
    assert client.get("/api/webhooks", headers=other.headers).json()["items"] == []
    mine = client.post("/api/webhooks", headers=admin.headers,
                       json={"url": receiver.url, "events": ["payment.refunded"]}).json()
    assert mine["all_bookables"] is True and hook["all_bookables"] is False
    assert_problem(client.post("/api/webhooks", headers=owner.headers,
                               json={"url": receiver.url, "events": ["booking.unknown"]}), 422)
