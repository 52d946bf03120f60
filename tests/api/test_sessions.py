"""Sessions over the API: staff idle and absolute limits with a frozen clock, the list of
one's sessions and signing them out, and re-authentication of sensitive actions."""
from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlmodel import select

from tests.api.conftest import PASSWORD, assert_problem, make_account, set_env
from tests.test_payments_api import setup_booking, sqlite_client, stripe_on  # noqa: F401  (fixtures)


@pytest.fixture
def later(monkeypatch):
    """Move the sessions' clock (auth, sessions) forward: `later(minutes=31)`."""
    from booking_app.services import auth, authcache, sessions

    set_env(monkeypatch, AUTH_CACHE_SECONDS="0")
    real = auth.utcnow

    def move(**delta) -> None:
        shift = dt.timedelta(**delta)
        for module in (auth, sessions):
            monkeypatch.setattr(module, "utcnow", lambda: real() + shift)
        authcache.clear()

    return move


def login(client, username, password=PASSWORD, agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1"):
    r = client.post("/api/users/login", json={"username": username, "password": password},
                    headers={"User-Agent": agent})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def audit_actions(user_id: int) -> list[str]:
    from booking_app import db
    from booking_app.models import AuditEvent

    with db.read_session() as s:
        return list(s.exec(select(AuditEvent.action).where(AuditEvent.entity_id == str(user_id))).all())


# --- staff limits --------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["admin", "provider"])
def test_staff_sessions_end_after_idle_time(client, later, role):
    staff = make_account(role)
    customer = make_account("customer")
    later(minutes=29)
    assert client.get("/api/users/profile", headers=staff.headers).status_code == 200  # seen: idle clock restarts
    later(minutes=29 + 29)
    assert client.get("/api/users/profile", headers=staff.headers).status_code == 200
    later(minutes=29 + 29 + 31)
    assert_problem(client.get("/api/users/profile", headers=staff.headers), 401)
    # customers keep their token's own lifetime
    assert client.get("/api/users/profile", headers=customer.headers).status_code == 200


def test_staff_sessions_end_after_the_absolute_lifetime(client, later, monkeypatch):
    set_env(monkeypatch, STAFF_SESSION_ABSOLUTE_HOURS="2", AUTH_CACHE_SECONDS="0")
    admin = make_account("admin")
    customer = make_account("customer")
    for minutes in range(20, 120, 20):  # busy all the time: never idle
        later(minutes=minutes)
        assert client.get("/api/users/profile", headers=admin.headers).status_code == 200
    later(minutes=121)
    assert_problem(client.get("/api/users/profile", headers=admin.headers), 401)
    assert client.get("/api/users/profile", headers=customer.headers).status_code == 200


def test_staff_token_lifetime_is_announced(client, monkeypatch):
    set_env(monkeypatch, STAFF_SESSION_ABSOLUTE_HOURS="3")
    admin = make_account("admin")
    r = client.post("/api/users/login", json={"username": admin.username, "password": PASSWORD})
    assert r.json()["expires_in"] == 3 * 3600
    customer = make_account("customer")
    r = client.post("/api/users/login", json={"username": customer.username, "password": PASSWORD})
    assert r.json()["expires_in"] == 24 * 3600


def test_idle_limit_follows_the_setting(client, later, monkeypatch):
    set_env(monkeypatch, STAFF_SESSION_IDLE_MINUTES="5", AUTH_CACHE_SECONDS="0")
    provider = make_account("provider")
    later(minutes=6)
    assert_problem(client.get("/api/users/profile", headers=provider.headers), 401)


# --- the sessions list -------------------------------------------------------------------------

def test_list_and_sign_out_sessions(client):
    acct = make_account("customer")
    phone = login(client, acct.username)
    desk = login(client, acct.username, agent="Mozilla/5.0 (Windows NT 10.0; Win64) Firefox/131.0")
    items = client.get("/api/users/sessions", headers=phone).json()["items"]
    assert len(items) == 3  # make_account's own token too
    assert items[0]["current"] is True and items[0]["device"] == "Safari on iPhone"
    assert {i["device"] for i in items} >= {"Safari on iPhone", "Firefox on Windows"}
    assert all(i["last_seen_at"] and i["created_at"] for i in items)
    desk_id = next(i["id"] for i in items if i["device"] == "Firefox on Windows")
    assert client.delete(f"/api/users/sessions/{desk_id}", headers=phone).status_code == 204
    assert_problem(client.get("/api/users/profile", headers=desk), 401)
    assert_problem(client.delete(f"/api/users/sessions/{desk_id}", headers=phone), 404)
    # another user's session is not found
    other = make_account("customer")
    mine = client.get("/api/users/sessions", headers=phone).json()["items"]
    assert_problem(client.delete(f"/api/users/sessions/{mine[-1]['id']}", headers=other.headers), 404)
    # sign out the others: this one stays
    assert client.delete("/api/users/sessions?others=true", headers=phone).status_code == 204
    assert_problem(client.get("/api/users/profile", headers=acct.headers), 401)
    assert [i["current"] for i in client.get("/api/users/sessions", headers=phone).json()["items"]] == [True]
    assert {"user.session_revoked", "user.sessions_revoked"} <= set(audit_actions(acct.id))


def test_sign_out_others_by_id_query(client):
    acct = make_account("customer")
    phone = login(client, acct.username)
    items = client.get("/api/users/sessions", headers=phone).json()["items"]
    assert client.delete(f"/api/users/sessions/{items[0]['id']}?others=true", headers=phone).status_code == 204
    assert client.get("/api/users/profile", headers=phone).status_code == 200
    assert_problem(client.get("/api/users/profile", headers=acct.headers), 401)


def test_sign_out_others_needs_the_flag(client):
    acct = make_account("customer")
    assert_problem(client.delete("/api/users/sessions?others=false", headers=acct.headers), 422)


# --- re-authentication ---------------------------------------------------------------------------

def test_role_change_needs_a_recent_sign_in(client, later):
    admin = make_account("admin")
    user = make_account("customer")
    assert client.put(f"/api/admin/users/{user.id}/role", json={"role": "provider"}, headers=admin.headers).status_code == 200
    later(minutes=6)
    body = assert_problem(client.put(f"/api/admin/users/{user.id}/role", json={"role": "customer"},
                                     headers=admin.headers), 401)
    assert body["code"] == "reauth_required"
    # a wrong proof: refused, audited
    body = assert_problem(client.put(f"/api/admin/users/{user.id}/role", json={"role": "customer"},
                                     headers={**admin.headers, "X-Reauth": "not my password"}), 401)
    assert body["code"] == "reauth_required"
    assert "user.reauth_failed" in audit_actions(admin.id)
    # the password: through, and good for the next minutes
    r = client.put(f"/api/admin/users/{user.id}/role", json={"role": "customer"},
                   headers={**admin.headers, "X-Reauth": PASSWORD})
    assert r.status_code == 200 and r.json()["role"] == "customer"
    assert client.put(f"/api/admin/users/{user.id}/role", json={"role": "provider"}, headers=admin.headers).status_code == 200


def test_deactivation_and_2fa_reset_need_re_auth(client, later):
    admin = make_account("admin")
    user = make_account("customer")
    later(minutes=6)
    assert client.get("/api/users/profile", headers=admin.headers).status_code == 200  # not idle
    body = assert_problem(client.put(f"/api/admin/users/{user.id}/active", json={"active": False},
                                     headers=admin.headers), 401)
    assert body["code"] == "reauth_required"
    assert_problem(client.delete(f"/api/admin/users/{user.id}/2fa", headers=admin.headers), 401)
    # reactivating is not sensitive
    assert client.put(f"/api/admin/users/{user.id}/active", json={"active": True}, headers=admin.headers).status_code == 200
    r = client.put(f"/api/admin/users/{user.id}/active", json={"active": False},
                   headers={**admin.headers, "X-Reauth": PASSWORD})
    assert r.status_code == 200 and r.json()["is_active"] is False


def test_re_auth_with_a_code(client, later, monkeypatch):
    admin = make_account("admin")
    r = client.post("/api/users/profile/2fa", json={"password": PASSWORD}, headers=admin.headers)
    secret = r.json()["secret"]
    totp = pyotp.TOTP(secret)
    assert client.post("/api/users/profile/2fa/confirm", json={"code": totp.now()}, headers=admin.headers).status_code == 200
    user = make_account("customer")
    later(minutes=6)
    assert client.get("/api/users/profile", headers=admin.headers).status_code == 200
    assert_problem(client.put(f"/api/admin/users/{user.id}/role", json={"role": "provider"},
                              headers=admin.headers), 401)
    # the code just used for the confirmation can't be used again; the next one can
    from booking_app.services import mfa

    nxt = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    monkeypatch.setattr(mfa, "utcnow", lambda: nxt)
    r = client.put(f"/api/admin/users/{user.id}/role", json={"role": "provider"},
                   headers={**admin.headers, "X-Reauth": totp.at(nxt)})
    assert r.status_code == 200, r.text


# --- re-authentication of money: large refunds, price changes -----------------------------------

def test_large_refunds_need_re_auth(sqlite_client, stripe_on, later, monkeypatch):
    set_env(monkeypatch, REAUTH_REFUND_ABOVE_CENTS="1000", AUTH_CACHE_SECONDS="0")
    client = sqlite_client
    provider, customer, booking = setup_booking(client, method="on_site")
    r = client.post("/api/payments/process", json={"booking_id": booking["id"], "method": "on_site"},
                    headers=customer.headers)
    assert r.status_code == 201, r.text
    assert client.post(f"/api/payments/{booking['id']}/mark-paid", headers=provider.headers).status_code == 200
    later(minutes=6)
    assert client.get("/api/users/profile", headers=provider.headers).status_code == 200  # not idle
    # up to the threshold: no question asked
    r = client.post(f"/api/payments/{booking['id']}/refund", json={"amount_cents": 1000}, headers=provider.headers)
    assert r.status_code == 200, r.text
    # above it: the password first
    body = assert_problem(client.post(f"/api/payments/{booking['id']}/refund", headers=provider.headers), 401)
    assert body["code"] == "reauth_required"
    r = client.post(f"/api/payments/{booking['id']}/refund", headers={**provider.headers, "X-Reauth": PASSWORD})
    assert r.status_code == 200 and r.json()["status"] == "refunded", r.text


def test_price_changes_need_re_auth(client, later):
    provider = make_account("provider")
    r = client.post("/api/services", json={"name": "Room", "kind": "room", "duration_minutes": 60, "capacity": 1,
                                           "price_cents": 1500, "currency": "EUR", "timezone": "UTC"},
                    headers=provider.headers)
    assert r.status_code == 201, r.text
    service = r.json()["id"]
    later(minutes=6)
    assert client.get("/api/users/profile", headers=provider.headers).status_code == 200
    # other fields, or the same price again: no question asked
    assert client.put(f"/api/services/{service}", json={"description": "Quiet"}, headers=provider.headers).status_code == 200
    assert client.put(f"/api/services/{service}", json={"price_cents": 1500}, headers=provider.headers).status_code == 200
    body = assert_problem(client.put(f"/api/services/{service}", json={"price_cents": 2500},
                                     headers=provider.headers), 401)
    assert body["code"] == "reauth_required"
    r = client.put(f"/api/services/{service}", json={"price_cents": 2500},
                   headers={**provider.headers, "X-Reauth": PASSWORD})
    assert r.status_code == 200 and r.json()["price_cents"] == 2500
    # a stranger is still refused as before, proven or not
    other = make_account("provider")
    assert_problem(client.put(f"/api/services/{service}", json={"price_cents": 100}, headers=other.headers), 403)
