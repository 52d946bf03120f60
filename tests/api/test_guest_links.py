"""Guests over HTTP (issue 20, points 5, 6 and 8): the guest maximum of places (422), the cap
on active unpaid guest bookings (409), rate limits (429 + Retry-After), the email-confirmation
mode (202, then the link books: 201, or 409 when the slot filled meanwhile), manage links
that expire and are revoked by re-issuing (the guest's form and staff). SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

from sqlmodel import select

from booking_app import db
from booking_app.models import Notification
from booking_app.services import manage_links
from tests.api.conftest import assert_problem, make_account, set_env
from tests.factories import make_bookable, make_event, next_day_at

AT = next_day_at(10, days=3)


def guest_body(service_id: int, *, email: str = "gina@example.com", quantity: int = 1, **more) -> dict:
    return {"service_id": service_id, "start": AT.isoformat(), "quantity": quantity,
            "guest": {"name": "Gina Guest", "email": email}, **more}


def latest(template: str) -> Notification:
    with db.read_session() as s:
        return s.exec(select(Notification).where(Notification.template == template)
                      .order_by(Notification.id.desc())).first()  # type: ignore[union-attr]


def token_of(url: str) -> str:
    return url.partition("token=")[2]


def test_guest_quantity_over_the_maximum_is_422_translated(client, monkeypatch):
    set_env(monkeypatch, GUEST_MAX_QUANTITY="4")
    event, _ = make_event(sessions=[AT], capacity=40)
    r = client.post("/api/bookings", json=guest_body(event.id, quantity=5), headers={"Accept-Language": "es"})
    body = assert_problem(r, 422)
    assert "4 plazas" in body["detail"] and "invitados" in body["detail"]
    assert client.post("/api/bookings", json=guest_body(event.id, quantity=4)).status_code == 201


def test_a_guest_cannot_hold_more_than_the_cap(client, monkeypatch):
    set_env(monkeypatch, GUEST_MAX_HOLDS_PER_EMAIL="2", GUEST_MAX_HOLDS_PER_IP="3")
    event, _ = make_event(sessions=[AT], capacity=40)
    for _ in range(2):
        assert client.post("/api/bookings", json=guest_body(event.id)).status_code == 201
    body = assert_problem(client.post("/api/bookings", json=guest_body(event.id)), 409)
    assert "2" in body["detail"]
    # per client (every request here comes from the test client's one address)
    assert client.post("/api/bookings", json=guest_body(event.id, email="other@example.com")).status_code == 201
    assert_problem(client.post("/api/bookings", json=guest_body(event.id, email="third@example.com")), 409)
    # a signed-in customer is not a guest
    customer = make_account()
    r = client.post("/api/bookings", json={"service_id": event.id, "start": AT.isoformat(), "quantity": 12},
                    headers=customer.headers)
    assert r.status_code == 201, r.text


def test_guest_bookings_are_rate_limited_with_retry_after(client, monkeypatch):
    set_env(monkeypatch, GUEST_RATE_PER_EMAIL="2")
    event, _ = make_event(sessions=[AT], capacity=40)
    for _ in range(2):
        assert client.post("/api/bookings", json=guest_body(event.id)).status_code == 201
    r = client.post("/api/bookings", json=guest_body(event.id))
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) > 0
    set_env(monkeypatch, RATE_LIMITS_ENABLED="false")
    assert client.post("/api/bookings", json=guest_body(event.id)).status_code == 201


def test_confirmation_mode_holds_nothing_until_the_link_is_opened(client, monkeypatch):
    set_env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true")
    room = make_bookable()
    r = client.post("/api/bookings", json=guest_body(room.id))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "email_confirmation_required" and r.json()["email"] == "gina@example.com"
    day = AT.date().isoformat()
    slots = client.get(f"/api/services/{room.id}/slots", params={"from": day, "to": day}).json()["slots"]
    assert any(s["start"].startswith(AT.strftime("%Y-%m-%dT%H:%M")) and s["remaining"] == 1 for s in slots)
    token = token_of(latest("guest_booking_request").context["confirm_url"])
    made = client.post("/api/bookings/confirm-email", json={"token": token})
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "confirmed"
    again = client.post("/api/bookings/confirm-email", json={"token": token})
    assert again.status_code == 201 and again.json()["id"] == made.json()["id"]
    assert_problem(client.post("/api/bookings/confirm-email", json={"token": token[:-3] + "abc"}), 404)


def test_a_stale_confirmation_link_after_the_slot_filled_is_409(client, monkeypatch):
    set_env(monkeypatch, GUEST_EMAIL_CONFIRMATION="true")
    room = make_bookable()
    assert client.post("/api/bookings", json=guest_body(room.id)).status_code == 202
    token = token_of(latest("guest_booking_request").context["confirm_url"])
    customer = make_account()
    taken = client.post("/api/bookings", json={"service_id": room.id, "start": AT.isoformat()},
                        headers=customer.headers)
    assert taken.status_code == 201, taken.text
    assert_problem(client.post("/api/bookings/confirm-email", json={"token": token}), 409)


def test_an_expired_manage_link_is_refused(client, monkeypatch):
    room = make_bookable(price_cents=500)
    made = client.post("/api/bookings", json=guest_body(room.id)).json()
    token = manage_links.booking_manage_token(made["id"])
    assert client.get(f"/api/bookings/{made['id']}", params={"token": token}).status_code == 200
    end = dt.datetime.fromisoformat(made["end"].replace("Z", "+00:00"))
    monkeypatch.setattr(manage_links, "utcnow", lambda: end + dt.timedelta(days=31))  # the clock moved on
    body = assert_problem(client.get(f"/api/bookings/{made['id']}", params={"token": token},
                                     headers={"Accept-Language": "de"}), 404)
    assert "abgelaufen" in body["detail"]
    assert_problem(client.get(f"/api/payments/{made['id']}", params={"token": token}), 404)
    assert_problem(client.delete(f"/api/bookings/{made['id']}", params={"token": token}), 404)
    # the same answer as a wrong token
    assert_problem(client.get(f"/api/bookings/{made['id']}", params={"token": token[:-2] + "zz"},
                              headers={"Accept-Language": "de"}), 404)["detail"] == body["detail"]


def test_a_re_issued_link_revokes_the_old_one(client, monkeypatch):
    room = make_bookable()
    made = client.post("/api/bookings", json=guest_body(room.id)).json()
    old = manage_links.booking_manage_token(made["id"])
    r = client.post("/api/bookings/manage-link", json={"email": "nobody@example.com", "reference": made["reference"]})
    assert r.status_code == 204  # the same answer when nothing matched
    assert client.get(f"/api/bookings/{made['id']}", params={"token": old}).status_code == 200
    r = client.post("/api/bookings/manage-link", json={"email": "GINA@example.com", "reference": made["reference"]})
    assert r.status_code == 204
    assert_problem(client.get(f"/api/bookings/{made['id']}", params={"token": old}), 404)
    new = token_of(latest("guest_manage_link").context["manage_url"])
    assert client.get(f"/api/bookings/{made['id']}", params={"token": new}).status_code == 200
    # staff (its provider, an admin) re-issue too; a stranger can't see it; a guest must sign in
    admin = make_account("admin")
    assert client.post(f"/api/bookings/{made['id']}/manage-link", headers=admin.headers).status_code == 204
    assert_problem(client.get(f"/api/bookings/{made['id']}", params={"token": new}), 404)
    assert_problem(client.post(f"/api/bookings/{made['id']}/manage-link", headers=make_account().headers), 404)
    assert_problem(client.post(f"/api/bookings/{made['id']}/manage-link"), 401)


def test_manage_link_requests_are_rate_limited(client, monkeypatch):
    set_env(monkeypatch, GUEST_RATE_PER_EMAIL="1")
    r = client.post("/api/bookings/manage-link", json={"email": "gina@example.com", "reference": "ABCDEFGH"})
    assert r.status_code == 204
    r = client.post("/api/bookings/manage-link", json={"email": "gina@example.com", "reference": "ABCDEFGH"})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) > 0


def test_the_openapi_document_states_the_guest_answers(client):
    doc = client.get("/api/openapi.json").json()
    create = doc["paths"]["/api/bookings"]["post"]["responses"]
    assert {"201", "202", "409", "422", "429"} <= set(create)
    assert "application/problem+json" in create["429"]["content"]
    assert "Retry-After" in create["429"]["headers"]
    for path in ("/api/bookings/confirm-email", "/api/bookings/manage-link", "/api/bookings/{id}/manage-link"):
        assert path in doc["paths"]
