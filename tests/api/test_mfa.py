"""Two-factor sign-in over the API: enrolment, the challenge flow, single-use and throttled
codes, recovery codes, REQUIRE_2FA_FOR, the admin's reset, secrets sealed at rest and a
SECRET_KEY rotation."""
from __future__ import annotations

import datetime as dt

import pyotp
import pytest

from tests.api.conftest import PASSWORD, assert_problem, make_account, set_env

T0 = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def clock(monkeypatch):
    """The two-factor code clock, moved on by hand (`clock.step()`: the next 30 s step)."""
    from booking_app.services import mfa

    class Clock:
        now = T0

        def step(self, n: int = 1) -> None:
            self.now += dt.timedelta(seconds=30 * n)

        def code(self, secret: str, offset_steps: int = 0) -> str:
            return pyotp.TOTP(secret).at(self.now + dt.timedelta(seconds=30 * offset_steps))

    c = Clock()
    monkeypatch.setattr(mfa, "utcnow", lambda: c.now)
    return c


def login(client, username, password=PASSWORD, **headers):
    return client.post("/api/users/login", json={"username": username, "password": password}, headers=headers)


def enrol(client, acct, clock) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on for `acct`: (secret, recovery codes)."""
    r = client.post("/api/users/profile/2fa", json={"password": acct.password}, headers=acct.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["secret"]
    assert body["otpauth_uri"].startswith("otpauth://totp/") and f"secret={secret}" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg") and "</svg>" in body["qr_svg"]
    r = client.post("/api/users/profile/2fa/confirm", json={"code": clock.code(secret)}, headers=acct.headers)
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    clock.step()
    return secret, codes


def challenge_of(client, acct) -> str:
    body = assert_problem(login(client, acct.username), 401)
    assert body["code"] == "mfa_required" and "access_token" not in body
    return body["challenge"]


def test_enrol_then_sign_in_needs_a_code(client, clock):
    acct = make_account("customer")
    assert client.get("/api/users/profile/2fa", headers=acct.headers).json()["enabled"] is False
    secret, _codes = enrol(client, acct, clock)
    status = client.get("/api/users/profile/2fa", headers=acct.headers).json()
    assert status["enabled"] is True and status["recovery_codes_left"] == 10
    challenge = challenge_of(client, acct)
    r = client.post("/api/users/login/mfa", json={"challenge": challenge, "code": clock.code(secret)},
                    headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/130.0"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert client.get("/api/users/profile", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # the challenge works once
    clock.step()
    r = client.post("/api/users/login/mfa", json={"challenge": challenge, "code": clock.code(secret)})
    assert_problem(r, 401)


def test_a_wrong_password_never_reaches_the_code_step(client, clock):
    acct = make_account("customer")
    enrol(client, acct, clock)
    body = assert_problem(login(client, acct.username, "not-the-password-at-all"), 401)
    assert body.get("code") != "mfa_required" and "challenge" not in body


def test_a_code_works_once_and_skew_is_one_step(client, clock):
    acct = make_account("customer")
    secret, _ = enrol(client, acct, clock)
    code = clock.code(secret)
    assert client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct), "code": code}).status_code == 200
    # the same code again (same step): refused
    r = client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct), "code": code})
    assert assert_problem(r, 401)["field"] == "code"
    # one step behind or ahead is accepted; two steps are not
    clock.step(3)
    assert client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct),
                                                     "code": clock.code(secret, -1)}).status_code == 200
    clock.step(3)
    assert client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct),
                                                     "code": clock.code(secret, +1)}).status_code == 200
    clock.step(3)
    assert_problem(client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct),
                                                             "code": clock.code(secret, -2)}), 401)


def test_recovery_codes_work_once(client, clock):
    acct = make_account("customer")
    _secret, codes = enrol(client, acct, clock)
    r = client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct), "code": codes[0].upper()})
    assert r.status_code == 200, r.text
    assert_problem(client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct),
                                                             "code": codes[0]}), 401)
    assert client.get("/api/users/profile/2fa", headers=acct.headers).json()["recovery_codes_left"] == 9


def test_wrong_codes_are_throttled_like_passwords(client, clock, monkeypatch):
    set_env(monkeypatch, LOGIN_MAX_FAILURES="3")
    acct = make_account("customer")
    secret, _ = enrol(client, acct, clock)
    challenge = challenge_of(client, acct)
    for _ in range(3):
        assert_problem(client.post("/api/users/login/mfa", json={"challenge": challenge, "code": "000000"}), 401)
    r = client.post("/api/users/login/mfa", json={"challenge": challenge, "code": clock.code(secret)})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1


def test_unknown_challenge_is_401(client):
    assert_problem(client.post("/api/users/login/mfa", json={"challenge": "nope", "code": "123456"}), 401)


def test_disable_needs_password_and_code(client, clock):
    acct = make_account("customer")
    secret, _ = enrol(client, acct, clock)
    r = client.request("DELETE", "/api/users/profile/2fa", json={"password": "wrong-password-here", "code": clock.code(secret)},
                       headers=acct.headers)
    assert_problem(r, 422)
    r = client.request("DELETE", "/api/users/profile/2fa", json={"password": acct.password, "code": "000000"},
                       headers=acct.headers)
    assert_problem(r, 422)
    clock.step()
    r = client.request("DELETE", "/api/users/profile/2fa", json={"password": acct.password, "code": clock.code(secret)},
                       headers=acct.headers)
    assert r.status_code == 204, r.text
    assert login(client, acct.username).status_code == 200


def test_enrolment_is_audited_and_the_secret_is_sealed(client, clock):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import AuditEvent, UserMfa

    acct = make_account("customer")
    secret, _ = enrol(client, acct, clock)
    with db.read_session() as s:
        row = s.get(UserMfa, acct.id)
        actions = set(s.exec(select(AuditEvent.action).where(AuditEvent.entity_id == str(acct.id))).all())
    assert secret not in row.secret_sealed and row.secret_sealed.startswith("v1.")
    assert {"user.mfa_enrolment_started", "user.mfa_enabled"} <= actions


def test_rotating_secret_key_keeps_codes_working(client, clock, monkeypatch):
    from booking_app import db
    from booking_app.models import UserMfa

    set_env(monkeypatch, SECRET_KEY="old-key-" + "x" * 40)
    acct = make_account("customer")
    secret, _ = enrol(client, acct, clock)
    with db.read_session() as s:
        before = s.get(UserMfa, acct.id).secret_sealed
    set_env(monkeypatch, SECRET_KEY="new-key-" + "y" * 40, SECRET_KEY_PREVIOUS="old-key-" + "x" * 40)
    assert client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct),
                                                     "code": clock.code(secret)}).status_code == 200
    with db.read_session() as s:
        after = s.get(UserMfa, acct.id).secret_sealed
    assert after != before  # sealed again with the new key
    monkeypatch.delenv("SECRET_KEY_PREVIOUS")
    set_env(monkeypatch)
    clock.step()
    assert client.post("/api/users/login/mfa", json={"challenge": challenge_of(client, acct),
                                                     "code": clock.code(secret)}).status_code == 200


# --- REQUIRE_2FA_FOR ---------------------------------------------------------------------------

def test_required_roles_get_an_enrolment_only_token(client, clock, monkeypatch):
    set_env(monkeypatch, REQUIRE_2FA_FOR="admin,provider")
    customer = make_account("customer")
    assert login(client, customer.username).json()["mfa_enrolment_required"] is False
    provider = make_account("provider")
    r = login(client, provider.username)
    assert r.status_code == 200 and r.json()["mfa_enrolment_required"] is True
    token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    # nothing else works with it
    body = assert_problem(client.get("/api/users/profile", headers=token), 401)
    assert body["code"] == "mfa_enrolment_required"
    assert_problem(client.get("/api/services?mine=true", headers=token), 401)
    # enrolment does (no password needed: it was proven at sign-in)
    r = client.post("/api/users/profile/2fa", json={}, headers=token)
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    r = client.post("/api/users/profile/2fa/confirm", json={"code": clock.code(secret)}, headers=token)
    assert r.status_code == 200
    # …after which the same token is a full session
    assert client.get("/api/users/profile", headers=token).status_code == 200
    clock.step()
    assert challenge_of(client, provider)


# --- the admin's reset -------------------------------------------------------------------------

def test_admin_resets_a_users_2fa_audited_and_emailed(client, clock):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import AuditEvent, Notification

    admin = make_account("admin")
    user = make_account("customer")
    enrol(client, user, clock)
    r = client.delete(f"/api/admin/users/{user.id}/2fa", headers=admin.headers)
    assert r.status_code == 204, r.text
    assert login(client, user.username).status_code == 200
    assert_problem(client.get("/api/users/profile", headers=user.headers), 401)  # sessions ended
    with db.read_session() as s:
        mails = s.exec(select(Notification).where(Notification.user_id == user.id,
                                                  Notification.template == "mfa_reset")).all()
        audited = s.exec(select(AuditEvent).where(AuditEvent.action == "user.mfa_reset")).all()
    assert len(mails) == 1 and mails[0].to == user.email
    assert [(a.actor_id, a.entity_id) for a in audited] == [(admin.id, str(user.id))]
    assert_problem(client.delete(f"/api/admin/users/{user.id}/2fa", headers=admin.headers), 409)
    assert_problem(client.delete(f"/api/admin/users/{user.id}/2fa", headers=make_account("customer").headers), 403)
