"""User Service through the REST API: registration, profile, deletion, export, admin."""
from __future__ import annotations

import json

from sqlmodel import select

from booking_app.services import accounts

from tests.api.conftest import PASSWORD, assert_problem, make_account
from tests.threads import run_together

USER_FIELDS = {"id", "username", "email", "full_name", "phone", "role", "locale", "timezone", "notify_email",
               "notify_sms", "created_at"}


def register(client, **overrides):
    body = {"username": "casey", "email": "casey@example.com", "password": PASSWORD, **overrides}
    return client.post("/api/users/register", json=body)


def login(client, username, password=PASSWORD):
    return client.post("/api/users/login", json={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_returns_the_user_json_and_never_a_hash(client):
    r = register(client, full_name="Casey Doe", phone="+34 600 123 456", locale="es", timezone="Europe/Madrid")
    assert r.status_code == 201, r.text
    user = r.json()
    assert set(user) == USER_FIELDS
    assert user["role"] == "customer" and user["locale"] == "es" and user["timezone"] == "Europe/Madrid"
    assert user["phone"] == "+34600123456"
    assert user["created_at"].endswith("Z")
    assert "argon2" not in r.text and "password" not in r.text
    # a second account with the same name or email (any case) is a conflict
    assert_problem(register(client, username="CASEY", email="other@example.com"), 409)
    assert_problem(register(client, username="other", email="Casey@example.com"), 409)


def test_register_cannot_choose_a_role(client):
    assert_problem(register(client, role="admin"), 422)


def test_register_rejects_weak_and_bad_values(client):
    for overrides, field in [
        ({"password": "short"}, "password"),
        ({"password": "password1"}, "password"),  # among the most common
        ({"password": "x" * 129}, "password"),
        ({"locale": "xx"}, "locale"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"email": "not-an-email"}, "email"),
        ({"username": "a b"}, "username"),
        ({"phone": "12"}, "phone"),
    ]:
        body = assert_problem(register(client, **overrides), 422)
        assert field in json.dumps(body), (overrides, body)


def test_login_by_username_or_email_and_generic_failure(client):
    assert register(client).status_code == 201
    for identifier in ("casey", "CASEY", "casey@example.com"):
        r = login(client, identifier)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "bearer" and body["expires_in"] > 0 and len(body["access_token"]) >= 32
    wrong = assert_problem(login(client, "casey", "wrong-password-123"), 401)
    unknown = assert_problem(login(client, "nobody", "wrong-password-123"), 401)
    assert wrong["detail"] == unknown["detail"]


def test_profile_view_and_update(client):
    acct = make_account("customer")
    r = client.get("/api/users/profile", headers=acct.headers)
    assert r.status_code == 200 and r.json()["username"] == acct.username and set(r.json()) == USER_FIELDS
    r = client.put("/api/users/profile", headers=acct.headers,
                   json={"full_name": "New Name", "locale": "de", "timezone": "America/New_York",
                         "phone": "+14155550123", "notify_sms": True})
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "New Name" and r.json()["locale"] == "de" and r.json()["notify_sms"] is True
    # email and password changes need the current password
    assert_problem(client.put("/api/users/profile", headers=acct.headers, json={"email": "new@example.com"}), 422)
    assert_problem(client.put("/api/users/profile", headers=acct.headers,
                              json={"email": "new@example.com", "current_password": "wrong-password"}), 422)
    r = client.put("/api/users/profile", headers=acct.headers,
                   json={"email": "new@example.com", "current_password": PASSWORD})
    assert r.status_code == 200 and r.json()["email"] == "new@example.com"
    # the email of another account is taken
    other = make_account("customer")
    assert_problem(client.put("/api/users/profile", headers=acct.headers,
                              json={"email": other.email, "current_password": PASSWORD}), 409)


def test_password_change_ends_other_sessions_but_not_this_one(client):
    acct = make_account("customer")
    second = login(client, acct.username).json()["access_token"]
    r = client.put("/api/users/profile", headers=acct.headers,
                   json={"password": "brand-new-passphrase-77", "current_password": PASSWORD})
    assert r.status_code == 200, r.text
    assert client.get("/api/users/profile", headers=acct.headers).status_code == 200
    assert_problem(client.get("/api/users/profile", headers=bearer(second)), 401)
    assert_problem(login(client, acct.username), 401)
    assert login(client, acct.username, "brand-new-passphrase-77").status_code == 200


def test_account_deletion_erases_personal_data_and_keeps_records(client):
    from booking_app import db
    from booking_app.models import AuthToken, User

    acct = make_account("customer", full_name="Dana Delete", phone="+14155550100")
    assert_problem(client.request("DELETE", "/api/users/profile", headers=acct.headers,
                                  json={"current_password": "wrong-password"}), 422)
    r = client.request("DELETE", "/api/users/profile", headers=acct.headers, json={"current_password": PASSWORD})
    assert r.status_code == 204, r.text
    assert_problem(client.get("/api/users/profile", headers=acct.headers), 401)
    assert_problem(login(client, acct.username), 401)
    with db.read_session() as s:
        user = s.get(User, acct.id)
        assert user is not None and not user.is_active
        assert acct.username not in user.username and acct.email != user.email
        assert user.full_name == "" and user.phone is None
        assert all(t.revoked_at is not None for t in s.exec(select(AuthToken).where(AuthToken.user_id == acct.id)))
    # the name and address are free again
    assert register(client, username=acct.username, email=acct.email).status_code == 201


def test_last_admin_cannot_delete_itself(client):
    admin = make_account("admin")
    assert_problem(client.request("DELETE", "/api/users/profile", headers=admin.headers,
                                  json={"current_password": PASSWORD}), 409)


def test_export_contains_my_data_and_no_secrets(client):
    acct = make_account("customer", full_name="Erin Export")
    login(client, acct.username)
    r = client.get("/api/users/profile/export", headers=acct.headers)
    assert r.status_code == 200
    data = r.json()
    assert data["user"]["username"] == acct.username and data["user"]["full_name"] == "Erin Export"
    assert {"bookings", "payments", "notifications", "sessions", "activity"} <= set(data)
    assert any(e["action"] == "user.login" for e in data["activity"])
    text = r.text
    assert "password_hash" not in text and "token_hash" not in text and "$argon2" not in text
    assert_problem(client.get("/api/users/profile/export"), 401)


def test_admin_lists_searches_and_pages_users(client):
    admin = make_account("admin")
    for i in range(3):
        make_account("provider", username=f"prov-search-{i}")
    make_account("customer", username="zed")
    r = client.get("/api/admin/users", headers=admin.headers, params={"q": "prov-search", "limit": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3 and len(body["items"]) == 2
    assert "password_hash" not in r.text
    assert all(item["created_at"].endswith("Z") for item in body["items"])
    r = client.get("/api/admin/users", headers=admin.headers, params={"q": "prov-search", "limit": 2, "offset": 2})
    assert len(r.json()["items"]) == 1
    r = client.get("/api/admin/users", headers=admin.headers, params={"role": "customer"})
    assert [u["username"] for u in r.json()["items"]] == ["zed"]
    # LIKE wildcards are searched literally
    assert client.get("/api/admin/users", headers=admin.headers, params={"q": "%"}).json()["total"] == 0
    assert_problem(client.get("/api/admin/users", headers=admin.headers, params={"role": "root"}), 422)


def test_admin_changes_roles_and_the_last_admin_stays(client):
    admin = make_account("admin")
    cust = make_account("customer")
    r = client.put(f"/api/admin/users/{cust.id}/role", headers=admin.headers, json={"role": "provider"})
    assert r.status_code == 200 and r.json()["role"] == "provider"
    # the new role applies to the existing token at once
    assert client.get("/api/admin/users", headers=cust.headers).status_code == 403
    assert_problem(client.put(f"/api/admin/users/{admin.id}/role", headers=admin.headers,
                              json={"role": "customer"}), 409)
    assert_problem(client.put("/api/admin/users/999999/role", headers=admin.headers, json={"role": "customer"}), 404)
    assert_problem(client.put(f"/api/admin/users/{cust.id}/role", headers=admin.headers, json={"role": "root"}), 422)
    trail = client.get(f"/api/admin/users/{cust.id}/audit", headers=admin.headers).json()
    assert any(e["action"] == "user.role_changed" and e["data"] == {"from": "customer", "to": "provider"}
               for e in trail["items"])


def test_deactivation_revokes_every_token_and_blocks_login(client):
    admin = make_account("admin")
    cust = make_account("customer")
    other_token = login(client, cust.username).json()["access_token"]
    r = client.put(f"/api/admin/users/{cust.id}/active", headers=admin.headers, json={"active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    for token in (cust.token, other_token):
        assert_problem(client.get("/api/users/profile", headers=bearer(token)), 401)
    assert_problem(login(client, cust.username), 401)
    # reactivated: old tokens stay revoked, a new login works
    assert client.put(f"/api/admin/users/{cust.id}/active", headers=admin.headers,
                      json={"active": True}).status_code == 200
    assert_problem(client.get("/api/users/profile", headers=cust.headers), 401)
    assert login(client, cust.username).status_code == 200
    trail = client.get(f"/api/admin/users/{cust.id}/audit", headers=admin.headers).json()
    actions = [e["action"] for e in trail["items"]]
    assert {"user.deactivated", "user.activated", "user.login", "user.login_failed"} <= set(actions)


def test_database_pool_exhaustion_is_503_not_500(client, monkeypatch):
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from booking_app.services import accounts

    acct = make_account("customer")

    def exhausted(**_kwargs):
        raise PoolTimeout("QueuePool limit reached")

    monkeypatch.setattr(accounts, "get_profile", exhausted)
    r = client.get("/api/users/profile", headers=acct.headers)
    assert_problem(r, 503)
    assert r.headers["Retry-After"] == "1"


def test_concurrent_registrations_of_one_name_give_one_account(pg_db, fast_hash):
    """Two sign-ups racing for one username: the unique index decides, the loser gets a 409."""
    from booking_app.services.errors import Conflict

    created, errors = run_together(6, lambda i: accounts.register(username="racer", email=f"racer{i}@example.com",
                                                                 password=PASSWORD))
    assert len(created) == 1 and len(errors) == 5 and all(isinstance(e, Conflict) for e in errors), errors


def test_every_sign_up_problem_at_once_and_the_api_reports_the_first(client):
    """accounts.validate_registration (the sign-up form shows each problem next to its field)
    holds the rules register() applies: register reports the first of them, as before."""
    problems = accounts.validate_registration(username="x", email="not-an-email", password="short",
                                              full_name="ok", phone="12")
    assert list(problems) == ["username", "email", "password", "phone"]
    assert all(exc.field == name for name, exc in problems.items())
    assert accounts.validate_registration(username="casey", email="casey@example.com", password=PASSWORD) == {}
    body = assert_problem(register(client, username="x", email="not-an-email", password="short"), 422)
    assert body["field"] == "username"
    body = assert_problem(register(client, email="not-an-email", password="short"), 422)
    assert body["field"] == "email"
