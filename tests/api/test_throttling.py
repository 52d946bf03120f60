"""Throttling that can't be turned into a lockout (issue 20, points 4 and 5).

Sign-in failures count per account (whichever identifier was typed) and per (client,
account), never per IP alone; waits grow (base·2^k, capped) instead of a fixed wall; the
client address comes from X-Forwarded-For only when a trusted proxy sent it. Sign-ups,
reset links and current-password checks are limited too; every limit is 429 + Retry-After.
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, assert_problem, make_account, set_env

WRONG = "wrong-password-1"
ATTACKER = "198.51.100.9"
PROXY = "10.0.0.2"


def login(client, username, password=PASSWORD, headers=None):
    return client.post("/api/users/login", json={"username": username, "password": password}, headers=headers)


def from_ip(client, ip: str) -> TestClient:
    """A client whose connection comes from `ip` (the peer address)."""
    return TestClient(client.app, raise_server_exceptions=False, client=(ip, 40000))


def via_proxy(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


@pytest.fixture
def clock(monkeypatch):
    """The limits' clock, frozen; `clock.advance(seconds)` moves it."""
    from booking_app.services import ratelimit

    class Clock:
        now = dt.datetime.now(dt.timezone.utc)

        def advance(self, seconds: float) -> None:
            self.now += dt.timedelta(seconds=seconds)

    c = Clock()
    monkeypatch.setattr(ratelimit, "utcnow", lambda: c.now)
    return c


def retry_after(response) -> int:
    assert_problem(response, 429)
    return int(response.headers["Retry-After"])


# --- no lockout ------------------------------------------------------------------------------

def test_ten_bad_logins_from_one_ip_leave_another_users_login_working(client, clock):
    victim, other = make_account("customer"), make_account("customer")
    attacker = from_ip(client, ATTACKER)
    for i in range(10):
        assert login(attacker, victim.username, WRONG).status_code in (401, 429)
        assert login(attacker, f"nobody{i}", WRONG).status_code == 401
    # the same address (a NAT, an office) and any other address: another user gets in
    assert login(attacker, other.username).status_code == 200
    assert login(from_ip(client, "203.0.113.5"), other.username).status_code == 200
    # the attacker's own client waits on the victim's account
    assert retry_after(login(attacker, victim.username)) >= 1


def test_behind_a_trusted_proxy_clients_are_told_apart(client, monkeypatch, clock):
    set_env(monkeypatch, TRUSTED_PROXIES="10.0.0.0/8")
    victim, other = make_account("customer"), make_account("customer")
    proxy = from_ip(client, PROXY)
    # the victim signed in earlier from home: a known client of the account
    assert login(proxy, victim.username, headers=via_proxy("203.0.113.5")).status_code == 200
    for _ in range(10):
        assert login(proxy, victim.username, WRONG, headers=via_proxy(ATTACKER)).status_code in (401, 429)
    # every request reaches us from the proxy's one address, yet another user gets in — also
    # from the attacker's own address — and the victim from home isn't locked out either
    assert login(proxy, other.username, headers=via_proxy("203.0.113.77")).status_code == 200
    assert login(proxy, other.username, headers=via_proxy(ATTACKER)).status_code == 200
    assert login(proxy, victim.username, headers=via_proxy("203.0.113.5")).status_code == 200
    # the attacker's client (by its forwarded address) still waits
    assert retry_after(login(proxy, victim.username, headers=via_proxy(ATTACKER))) >= 1
    # and the failures were recorded with the forwarded address, not the proxy's
    _assert_failures_logged_from(victim.id, ATTACKER)


def test_a_forged_forwarded_header_from_an_untrusted_peer_is_ignored(client, monkeypatch, clock):
    set_env(monkeypatch, TRUSTED_PROXIES="10.0.0.0/8", LOGIN_MAX_FAILURES="3", LOGIN_ACCOUNT_MAX_FAILURES="100")
    victim, other = make_account("customer"), make_account("customer")
    attacker = from_ip(client, ATTACKER)
    # a fresh forged address every time doesn't buy fresh budgets: the peer is the client
    for i in range(3):
        assert_problem(login(attacker, victim.username, WRONG, headers=via_proxy(f"192.0.2.{i}")), 401)
    assert retry_after(login(attacker, victim.username, headers=via_proxy("192.0.2.99"))) >= 1
    _assert_failures_logged_from(victim.id, ATTACKER)
    # nor can it pose as someone else's address to make them wait
    assert login(from_ip(client, "192.0.2.99"), victim.username).status_code == 200
    assert login(attacker, other.username, headers=via_proxy("192.0.2.1")).status_code == 200


def test_a_proxy_writing_forwarded(client, monkeypatch):
    """TRUSTED_PROXY_HEADER=forwarded: RFC 7239 is read, and then only it."""
    set_env(monkeypatch, TRUSTED_PROXIES="10.0.0.0/8", TRUSTED_PROXY_HEADER="forwarded")
    victim = make_account("customer")
    proxy = from_ip(client, PROXY)
    headers = {"Forwarded": f'for=6.6.6.6, for="{ATTACKER}:5555";proto=https', "X-Forwarded-For": "192.0.2.200"}
    assert_problem(login(proxy, victim.username, WRONG, headers=headers), 401)
    _assert_failures_logged_from(victim.id, ATTACKER)


def _assert_failures_logged_from(user_id: int, ip: str) -> None:
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import AuditEvent

    with db.read_session() as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == "user.login_failed",
                                               AuditEvent.entity_id == str(user_id))).all()
    assert rows and {r.data["ip"] for r in rows} == {ip}


def test_username_and_email_share_one_budget(client, monkeypatch, clock):
    set_env(monkeypatch, LOGIN_MAX_FAILURES="3", LOGIN_ACCOUNT_MAX_FAILURES="5")
    acct = make_account("customer")
    a, b = from_ip(client, "192.0.2.1"), from_ip(client, "192.0.2.2")
    # per client: typing the email instead of the username is no fresh start
    assert_problem(login(a, acct.username, WRONG), 401)
    assert_problem(login(a, acct.username, WRONG), 401)
    assert_problem(login(a, acct.email, WRONG), 401)
    assert retry_after(login(a, acct.username)) >= 1
    assert retry_after(login(a, acct.email.upper())) >= 1
    # per account: five failures, whichever name was typed, and a new client waits too
    assert_problem(login(b, acct.email.upper(), WRONG), 401)
    assert_problem(login(b, acct.email, WRONG), 401)
    c = from_ip(client, "192.0.2.3")
    assert retry_after(login(c, acct.username)) >= 1
    assert retry_after(login(c, acct.email)) >= 1


def test_unknown_names_cost_the_same(client, monkeypatch, clock):
    set_env(monkeypatch, LOGIN_MAX_FAILURES="2")
    attacker = from_ip(client, ATTACKER)
    for _ in range(2):
        assert_problem(login(attacker, "Nobody-Here", WRONG), 401)
    assert retry_after(login(attacker, "  nobody-here ", WRONG)) == 2
    # and the typed text isn't stored
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import RateLimitEvent

    with db.read_session() as s:
        assert not [e for e in s.exec(select(RateLimitEvent)).all() if "nobody" in e.key]


# --- growing delays -----------------------------------------------------------------------------

def test_waits_grow_and_a_right_password_after_the_wait_clears_them(client, monkeypatch, clock):
    set_env(monkeypatch, LOGIN_MAX_FAILURES="2", LOGIN_DELAY_BASE_SECONDS="2", LOGIN_DELAY_MAX_SECONDS="30",
            LOGIN_ACCOUNT_MAX_FAILURES="1000")
    acct = make_account("customer")
    c = from_ip(client, "192.0.2.10")
    for _ in range(2):
        assert_problem(login(c, acct.username, WRONG), 401)
    waits = []
    for _ in range(6):
        wait = retry_after(login(c, acct.username))  # refused even with the right password
        waits.append(wait)
        clock.advance(wait - 1)
        assert retry_after(login(c, acct.username, WRONG)) == 1  # a refused try costs nothing more
        clock.advance(1)
        assert_problem(login(c, acct.username, WRONG), 401)
    assert waits == [2, 4, 8, 16, 30, 30]
    clock.advance(retry_after(login(c, acct.username)))
    assert login(c, acct.username).status_code == 200
    # forgiven: the free failures are free again
    for _ in range(2):
        assert_problem(login(c, acct.username, WRONG), 401)
    assert retry_after(login(c, acct.username)) == 2


def test_a_many_address_attack_slows_guessing_but_never_locks_the_owner_out_for_long(client, monkeypatch, clock):
    set_env(monkeypatch, LOGIN_MAX_FAILURES="5", LOGIN_ACCOUNT_MAX_FAILURES="10",
            LOGIN_ACCOUNT_DELAY_MAX_SECONDS="60", LOGIN_DELAY_MAX_SECONDS="900")
    victim = make_account("customer")
    home = from_ip(client, "203.0.113.5")
    assert login(home, victim.username).status_code == 200
    start = clock.now
    for i in range(40):  # a botnet: a new address each time, right when the wait is over
        bot = from_ip(client, f"192.0.2.{i + 1}")
        r = login(bot, victim.username, WRONG)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) <= 60
            clock.advance(int(r.headers["Retry-After"]))
            r = login(bot, victim.username, WRONG)
        assert_problem(r, 401)
    # guessing slowed to one try per minute once the account's free failures were spent
    # (10 free, then 2, 4, …, 32, 60, 60, … seconds)
    assert clock.now - start >= dt.timedelta(seconds=2 + 4 + 8 + 16 + 32 + 60 * 24)
    # a new address of the owner waits at most the account's cap …
    traveller = from_ip(client, "198.51.100.200")
    assert 1 <= retry_after(login(traveller, victim.username)) <= 60
    # … and the owner at home, a client known to the account, isn't kept waiting at all
    assert login(home, victim.username).status_code == 200
    assert login(traveller, victim.username).status_code == 200  # (home's success forgave)


# --- the other limits -----------------------------------------------------------------------------

def _register(client, name: str, email: str | None = None):
    return client.post("/api/users/register", json={"username": name, "email": email or f"{name}@example.com",
                                                    "password": PASSWORD})


def test_sign_ups_are_limited_per_ip_and_per_email(client, monkeypatch, clock):
    set_env(monkeypatch, REGISTER_MAX_PER_IP="2", REGISTER_MAX_PER_EMAIL="2")
    office = from_ip(client, "192.0.2.20")
    assert _register(office, "first1").status_code == 201
    assert _register(office, "second2").status_code == 201
    assert 1 <= retry_after(_register(office, "third3")) <= 3600
    assert _register(from_ip(client, "192.0.2.21"), "third3").status_code == 201
    # one address from many clients: the second try is a 409, the third is refused unseen
    assert _register(from_ip(client, "192.0.2.30"), "x30", "shared@example.com").status_code == 201
    assert_problem(_register(from_ip(client, "192.0.2.31"), "x31", "shared@example.com"), 409)
    assert retry_after(_register(from_ip(client, "192.0.2.32"), "x32", "SHARED@example.com")) >= 1


def test_reset_links_are_limited_per_ip_and_per_email(client, monkeypatch, clock):
    set_env(monkeypatch, PASSWORD_RESET_MAX_REQUESTS="2", PASSWORD_RESET_MAX_PER_IP="3")
    acct = make_account("customer")
    for i in range(2):
        r = from_ip(client, f"192.0.2.{40 + i}").post("/api/users/password-reset", json={"email": acct.email})
        assert r.status_code == 202
    r = from_ip(client, "192.0.2.49").post("/api/users/password-reset", json={"email": acct.email})
    assert 1 <= retry_after(r) <= 3600
    one = from_ip(client, "192.0.2.50")
    for i in range(3):
        assert one.post("/api/users/password-reset", json={"email": f"who{i}@example.com"}).status_code == 202
    assert retry_after(one.post("/api/users/password-reset", json={"email": "who9@example.com"})) >= 1


def test_current_password_checks_are_throttled_per_account(client, monkeypatch, clock):
    set_env(monkeypatch, CURRENT_PASSWORD_MAX_FAILURES="2", LOGIN_DELAY_BASE_SECONDS="2")
    acct = make_account("customer")
    change = {"password": "a-brand-new-passphrase-7"}
    for _ in range(2):
        body = assert_problem(client.put("/api/users/profile", headers=acct.headers,
                                         json={**change, "current_password": WRONG}), 422)
        assert body["field"] == "current_password"
    # refused before checking, even when right; deleting the account shares the budget
    r = client.put("/api/users/profile", headers=acct.headers, json={**change, "current_password": PASSWORD})
    assert retry_after(r) == 2
    r = client.request("DELETE", "/api/users/profile", headers=acct.headers, json={"current_password": PASSWORD})
    assert retry_after(r) == 2
    clock.advance(2)
    assert_problem(client.put("/api/users/profile", headers=acct.headers,
                              json={**change, "current_password": WRONG}), 422)
    assert retry_after(client.put("/api/users/profile", headers=acct.headers,
                                  json={"email": "new@example.com", "current_password": PASSWORD})) == 4
    clock.advance(4)
    r = client.put("/api/users/profile", headers=acct.headers, json={"email": "new@example.com",
                                                                     "current_password": PASSWORD})
    assert r.status_code == 200 and r.json()["email"] == "new@example.com"


def test_switched_off_nothing_is_limited_or_counted(client, monkeypatch):
    from sqlmodel import func, select

    from booking_app import db
    from booking_app.models import RateLimitEvent

    set_env(monkeypatch, RATE_LIMITS_ENABLED="false", LOGIN_MAX_FAILURES="1", LOGIN_ACCOUNT_MAX_FAILURES="1",
            REGISTER_MAX_PER_IP="1", PASSWORD_RESET_MAX_PER_IP="1", CURRENT_PASSWORD_MAX_FAILURES="1")
    acct = make_account("customer")
    for _ in range(3):
        assert_problem(login(client, acct.username, WRONG), 401)
        assert_problem(client.put("/api/users/profile", headers=acct.headers,
                                  json={"password": "a-brand-new-passphrase-7", "current_password": WRONG}), 422)
        assert client.post("/api/users/password-reset", json={"email": acct.email}).status_code == 202
    for i in range(3):
        assert _register(client, f"free{i}").status_code == 201
    assert login(client, acct.username).status_code == 200
    with db.read_session() as s:
        assert s.exec(select(func.count()).select_from(RateLimitEvent)).one() == 0


def test_concurrent_guesses_see_each_other(client, monkeypatch, clock):
    """The attempt counts before the (slow) password check: eight guesses at once from one
    client get exactly the free failures, the rest wait."""
    set_env(monkeypatch, LOGIN_MAX_FAILURES="2", LOGIN_ACCOUNT_MAX_FAILURES="100")
    acct = make_account("customer")
    attacker = from_ip(client, ATTACKER)
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def guess() -> None:
        barrier.wait()
        codes.append(login(attacker, acct.username, WRONG).status_code)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [401, 401] + [429] * 6


def test_a_password_reset_forgives_every_clients_failures(client, monkeypatch, clock):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import Notification

    set_env(monkeypatch, LOGIN_MAX_FAILURES="2", LOGIN_ACCOUNT_MAX_FAILURES="3")
    acct = make_account("customer")
    a, b = from_ip(client, "192.0.2.60"), from_ip(client, "192.0.2.61")
    for c in (a, a, b):
        assert_problem(login(c, acct.username, WRONG), 401)
    assert retry_after(login(a, acct.username)) >= 1
    assert client.post("/api/users/password-reset", json={"email": acct.email}).status_code == 202
    with db.read_session() as s:
        mail = s.exec(select(Notification).where(Notification.template == "password_reset",
                                                 Notification.to == acct.email)).one()
    fresh = "a-brand-new-passphrase-7"
    r = client.post("/api/users/password-reset/confirm", json={"token": mail.context["token"], "password": fresh})
    assert r.status_code == 204
    assert login(a, acct.username, fresh).status_code == 200
    assert login(from_ip(client, "192.0.2.62"), acct.username, fresh).status_code == 200


def test_known_clients_are_kept_for_days_failures_for_a_day(sqlite_db):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import RateLimitEvent
    from booking_app.services import ratelimit

    now = dt.datetime.now(dt.timezone.utc)
    with db.unit_of_work() as s:
        ratelimit.hit(s, ["login:user:1"], now=now - dt.timedelta(days=2))
        ratelimit.hit(s, ["login:user:1"], now=now)
        ratelimit.remember(s, "login:user:1:client:192.0.2.1", now=now - dt.timedelta(days=20))
        ratelimit.remember(s, "login:user:1:client:192.0.2.2", now=now - dt.timedelta(days=40))
        ratelimit.remember(s, "login:user:1:client:192.0.2.3", now=now - dt.timedelta(days=50))
        ratelimit.remember(s, "login:user:1:client:192.0.2.3", now=now)  # remembered again: one row
    with db.unit_of_work() as s:
        assert ratelimit.prune(s, known_for=dt.timedelta(days=30)) == 2
    with db.read_session() as s:
        keys = sorted(e.key for e in s.exec(select(RateLimitEvent)))
        assert ratelimit.remembered(s, "login:user:1:client:192.0.2.1", within=dt.timedelta(days=30))
        assert not ratelimit.remembered(s, "login:user:1:client:192.0.2.1", within=dt.timedelta(days=10))
    assert keys == ["known:login:user:1:client:192.0.2.1", "known:login:user:1:client:192.0.2.3", "login:user:1"]
