"""Tokens, login throttling, password reset and rehash-on-login."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select, update

from tests.api.conftest import PASSWORD, assert_problem, make_account, set_env
from tests.threads import run_together


def login(client, username, password=PASSWORD):
    return client.post("/api/users/login", json={"username": username, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# --- tokens --------------------------------------------------------------------------------

def test_tokens_are_stored_hashed_only(client):
    from booking_app import db
    from booking_app.models import AuthToken

    acct = make_account("customer")
    token = login(client, acct.username).json()["access_token"]
    with db.read_session() as s:
        stored = [t.token_hash for t in s.exec(select(AuthToken))]
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_expired_token_is_401(client):
    from booking_app import db
    from booking_app.services import authcache
    from booking_app.models import AuthToken

    acct = make_account("customer")
    assert client.get("/api/users/profile", headers=acct.headers).status_code == 200
    with db.unit_of_work() as s:
        s.exec(update(AuthToken).where(AuthToken.user_id == acct.id)
               .values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    # an edit behind the services' back is seen once the cached lookup (AUTH_CACHE_SECONDS) lapses
    authcache.clear()
    assert_problem(client.get("/api/users/profile", headers=acct.headers), 401)


def test_expiry_follows_the_setting(client, monkeypatch):
    set_env(monkeypatch, TOKEN_TTL_MINUTES="5")
    acct = make_account("customer")
    assert login(client, acct.username).json()["expires_in"] == 300


def test_logout_revokes_only_that_token(client):
    acct = make_account("customer")
    other = login(client, acct.username).json()["access_token"]
    assert client.post("/api/users/logout", headers=acct.headers).status_code == 204
    assert_problem(client.get("/api/users/profile", headers=acct.headers), 401)
    assert_problem(client.post("/api/users/logout", headers=acct.headers), 401)
    assert client.get("/api/users/profile", headers=bearer(other)).status_code == 200


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer " + "x" * 5000, "Basic dXNlcjpwYXNz", "Bearer", "Bearer  "])
def test_bad_authorization_headers_are_401(client, header):
    assert_problem(client.get("/api/users/profile", headers={"Authorization": header}), 401)
    # even on a public route a bad token is not silently a guest
    assert_problem(client.get("/api/services", headers={"Authorization": header}), 401)
    # but signing in, signing up and asking for a reset never look at a stale token
    assert client.post("/api/users/password-reset", json={"email": "a@example.com"},
                       headers={"Authorization": header}).status_code == 202


# --- throttling ----------------------------------------------------------------------------

def test_login_throttled_per_account(client, monkeypatch):
    from fastapi.testclient import TestClient

    set_env(monkeypatch, LOGIN_MAX_FAILURES="3", LOGIN_ACCOUNT_MAX_FAILURES="3", LOGIN_DELAY_BASE_SECONDS="60",
            LOGIN_FAILURE_WINDOW_MINUTES="15")
    acct = make_account("customer")
    for _ in range(3):
        assert_problem(login(client, acct.username, "wrong-password-1"), 401)
    # the fourth attempt is refused before checking, even with the right password,
    # and from another IP address (the account is the key), also by email
    r = login(client, acct.username)
    assert_problem(r, 429)
    assert 1 <= int(r.headers["Retry-After"]) <= 15 * 60
    other_ip = TestClient(client.app, raise_server_exceptions=False, client=("203.0.113.7", 4000))
    assert_problem(login(other_ip, acct.username), 429)
    # another account is not affected
    other = make_account("customer")
    assert login(other_ip, other.username).status_code == 200


def test_failures_from_an_ip_dont_block_its_other_accounts(client, monkeypatch):
    from fastapi.testclient import TestClient

    set_env(monkeypatch, LOGIN_MAX_FAILURES="3")
    attacker = TestClient(client.app, raise_server_exceptions=False, client=("198.51.100.9", 4000))
    for i in range(3):
        assert_problem(login(attacker, f"nobody{i}", "wrong-password-1"), 401)
    acct = make_account("customer")
    # one address may be many people (a NAT, a proxy): failures are per account, not per IP
    assert login(attacker, acct.username).status_code == 200
    assert login(client, acct.username).status_code == 200


def test_success_resets_the_account_counter(client, monkeypatch):
    set_env(monkeypatch, LOGIN_MAX_FAILURES="3")
    from fastapi.testclient import TestClient

    acct = make_account("customer")
    ips = iter(range(10, 250))
    for _round in range(3):
        c = TestClient(client.app, raise_server_exceptions=False, client=(f"192.0.2.{next(ips)}", 1))
        for _ in range(2):
            assert_problem(login(c, acct.username, "wrong-password-1"), 401)
        assert login(c, acct.username).status_code == 200


def test_rate_limits_can_be_switched_off(client, monkeypatch):
    set_env(monkeypatch, LOGIN_MAX_FAILURES="2", RATE_LIMITS_ENABLED="false")
    acct = make_account("customer")
    for _ in range(4):
        assert_problem(login(client, acct.username, "wrong-password-1"), 401)
    assert login(client, acct.username).status_code == 200


def test_login_failures_and_successes_are_audited(client):
    from booking_app import db
    from booking_app.models import AuditEvent

    acct = make_account("customer")
    login(client, acct.username, "wrong-password-1")
    login(client, "ghost", "wrong-password-1")
    login(client, acct.username)
    with db.read_session() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action.in_(["user.login", "user.login_failed"]))).all()
    failed = [e for e in events if e.action == "user.login_failed"]
    assert len(failed) == 2 and {e.data["known_user"] for e in failed} == {True, False}
    assert [e.entity_id for e in events if e.action == "user.login"] == [str(acct.id)]


# --- password reset --------------------------------------------------------------------------

def _reset_mails(email):
    from booking_app import db
    from booking_app.models import Notification

    with db.read_session() as s:
        return s.exec(select(Notification).where(Notification.template == "password_reset",
                                                 Notification.to == email)).all()


def test_password_reset_is_single_use_and_ends_sessions(client):
    acct = make_account("customer")
    r = client.post("/api/users/password-reset", json={"email": acct.email.upper().replace("EXAMPLE.COM", "example.com")})
    assert r.status_code == 202
    unknown = client.post("/api/users/password-reset", json={"email": "nobody@example.com"})
    assert unknown.status_code == 202 and unknown.json() == r.json()  # nothing revealed
    assert _reset_mails("nobody@example.com") == []
    mails = _reset_mails(acct.email)
    assert len(mails) == 1 and mails[0].channel == "email"
    token = mails[0].context["token"]
    assert token in mails[0].context["reset_url"]
    r = client.post("/api/users/password-reset/confirm", json={"token": token, "password": "fresh-passphrase-99"})
    assert r.status_code == 204, r.text
    # single use
    assert_problem(client.post("/api/users/password-reset/confirm",
                               json={"token": token, "password": "another-passphrase-11"}), 422)
    assert_problem(client.get("/api/users/profile", headers=acct.headers), 401)
    assert_problem(login(client, acct.username), 401)
    assert login(client, acct.username, "fresh-passphrase-99").status_code == 200


def test_password_reset_token_expires_and_is_validated(client):
    from booking_app import db
    from booking_app.models import PasswordResetToken

    acct = make_account("customer")
    client.post("/api/users/password-reset", json={"email": acct.email})
    token = _reset_mails(acct.email)[0].context["token"]
    assert_problem(client.post("/api/users/password-reset/confirm", json={"token": token, "password": "short"}), 422)
    assert_problem(client.post("/api/users/password-reset/confirm", json={"token": "forged", "password": "fresh-passphrase-99"}), 422)
    with db.unit_of_work() as s:
        s.exec(update(PasswordResetToken).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    assert_problem(client.post("/api/users/password-reset/confirm", json={"token": token, "password": "fresh-passphrase-99"}), 422)
    assert login(client, acct.username).status_code == 200


def test_password_reset_requests_are_rate_limited(client, monkeypatch):
    set_env(monkeypatch, PASSWORD_RESET_MAX_REQUESTS="2")
    acct = make_account("customer")
    for _ in range(2):
        assert client.post("/api/users/password-reset", json={"email": acct.email}).status_code == 202
    r = client.post("/api/users/password-reset", json={"email": acct.email})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert len(_reset_mails(acct.email)) == 2


# --- rehash ------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", ["bcrypt", "weak-argon2"])
def test_login_upgrades_old_hashes(client, legacy):
    from passlib.context import CryptContext

    from booking_app import db
    from booking_app.models import User

    acct = make_account("customer")
    if legacy == "bcrypt":
        old_hash = CryptContext(schemes=["bcrypt"], bcrypt__rounds=4).hash(PASSWORD)
    else:
        old_hash = CryptContext(schemes=["argon2"], argon2__memory_cost=1024, argon2__time_cost=1).hash(PASSWORD)
    with db.unit_of_work() as s:
        s.exec(update(User).where(User.id == acct.id).values(password_hash=old_hash))
    assert login(client, acct.username).status_code == 200
    with db.read_session() as s:
        new_hash = s.get(User, acct.id).password_hash
    assert new_hash != old_hash and new_hash.startswith("$argon2id$") and "m=19456,t=2" in new_hash
    assert login(client, acct.username).status_code == 200
    with db.read_session() as s:
        assert s.get(User, acct.id).password_hash == new_hash  # not rehashed again


def test_concurrent_uses_of_one_reset_token_succeed_once(pg_db, fast_hash):
    from booking_app.services import auth
    from booking_app.services.errors import InvalidInput

    acct = make_account("customer")
    auth.request_password_reset(email=acct.email)
    token = _reset_mails(acct.email)[0].context["token"]
    done, errors = run_together(4, lambda i: auth.confirm_password_reset(
        token=token, new_password=f"new-passphrase-{i}-xyz"))
    assert len(done) == 1 and len(errors) == 3 and all(isinstance(e, InvalidInput) for e in errors), errors


def test_housekeeping_purges_dead_tokens_and_old_counters(sqlite_db):
    """Expired/revoked tokens and old rate-limit events are deleted after a week; live ones stay."""
    import datetime as dt

    from sqlmodel import select

    from booking_app import db
    from booking_app.models import AuthToken, RateLimitEvent, utcnow
    from booking_app.services import accounts, auth

    user = accounts.create_user(username="keeper", email="keeper@example.com", password="a-long-enough-pass")
    now = utcnow()
    with db.unit_of_work() as s:
        s.add(AuthToken(user_id=user.id, token_hash="a" * 64, expires_at=now - dt.timedelta(days=8)))
        s.add(AuthToken(user_id=user.id, token_hash="b" * 64, expires_at=now + dt.timedelta(days=1),
                        revoked_at=now - dt.timedelta(days=9)))
        s.add(AuthToken(user_id=user.id, token_hash="c" * 64, expires_at=now + dt.timedelta(days=1)))
        s.add(RateLimitEvent(key="login:ip:1.2.3.4", at=now - dt.timedelta(days=2)))
        s.add(RateLimitEvent(key="login:ip:1.2.3.4", at=now))
    assert auth.purge_expired() == 3
    with db.read_session() as s:
        assert [t.token_hash for t in s.exec(select(AuthToken)).all()] == ["c" * 64]
        assert len(s.exec(select(RateLimitEvent)).all()) == 1
    assert auth.purge_expired() == 0
