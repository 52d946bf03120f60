"""The token-lookup cache (services/authcache.py): what it may serve, and when it must not.

A cached lookup saves the database read of every authenticated request, so it has to drop
an entry as soon as the answer could differ: a revoked token, a role or status change, a
profile change (locale/timezone ride on the actor), the token's own expiry; and never live
past AUTH_CACHE_SECONDS. Across processes the drop travels over Redis (the two-process
version of this is in tests/test_scaleout.py).
"""
from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlmodel import func, select, update

from booking_app import db
from booking_app.models import AuthToken, Booking, User
from booking_app.services import accounts, auth, authcache, redis_channel
from booking_app.services.errors import Unauthorized
from tests.api.conftest import set_env
from tests.factories import actor_for, make_admin, make_customer, make_event, next_day_at


def issue(user) -> str:
    with db.unit_of_work() as s:
        token, _ = auth.issue_token(s, user_id=user.id)
    return token


def db_reads(monkeypatch) -> list[int]:
    """Counts the token lookups that reach the database."""
    calls: list[int] = []
    real = db.get_engine

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(auth.db, "get_engine", counting)
    return calls


@pytest.fixture(autouse=True)
def _fresh_cache():
    authcache.clear()
    yield
    authcache.clear()


def test_a_second_lookup_is_served_from_memory(db_url, monkeypatch):
    token = issue(make_customer())
    reads = db_reads(monkeypatch)
    first = auth.authenticate(token)
    assert auth.authenticate_cached(token) == first
    assert auth.authenticate(token) == first
    assert len(reads) == 1


def test_off_when_the_setting_is_zero(db_url, monkeypatch):
    set_env(monkeypatch, AUTH_CACHE_SECONDS="0")
    token = issue(make_customer())
    reads = db_reads(monkeypatch)
    auth.authenticate(token)
    assert auth.authenticate_cached(token) is None
    auth.authenticate(token)
    assert len(reads) == 2


def test_entries_lapse_after_the_setting(db_url, monkeypatch):
    set_env(monkeypatch, AUTH_CACHE_SECONDS="0.2")
    token = issue(make_customer())
    auth.authenticate(token)
    assert auth.authenticate_cached(token) is not None
    time.sleep(0.25)
    assert auth.authenticate_cached(token) is None


def test_never_past_the_tokens_own_expiry(db_url, monkeypatch):
    user = make_customer()
    token = issue(user)
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.3)
    with db.unit_of_work() as s:
        s.exec(update(AuthToken).where(AuthToken.user_id == user.id).values(expires_at=soon))
    auth.authenticate(token)
    assert auth.authenticate_cached(token) is not None
    time.sleep(0.35)
    assert auth.authenticate_cached(token) is None
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


def test_logout_role_change_deactivation_and_profile_change_drop_the_entry(db_url):
    admin = make_admin()
    user = make_customer()
    token, other = issue(user), issue(user)
    assert auth.authenticate(token).actor.role == "customer"
    accounts.set_role(actor=actor_for(admin), user_id=user.id, role="provider")
    assert auth.authenticate(token).actor.role == "provider"
    accounts.update_profile(actor=auth.authenticate(token).actor, locale="fr")
    assert auth.authenticate(token).actor.locale == "fr"
    auth.logout(token_hash=auth.hash_token(token))
    with pytest.raises(Unauthorized):
        auth.authenticate(token)
    assert auth.authenticate(other).actor.id == user.id
    accounts.set_active(actor=actor_for(admin), user_id=user.id, active=False)
    with pytest.raises(Unauthorized):
        auth.authenticate(other)


def test_a_lookup_racing_a_change_is_dropped_when_the_change_commits(db_url):
    """The drop happens after the commit too: a lookup that ran between the change and its
    commit (and cached the old role) is dropped again when the change commits."""
    user = make_customer()
    token = issue(user)
    auth.authenticate(token)
    with db.unit_of_work() as s:
        row = s.get(User, user.id)
        row.role = "provider"
        s.add(row)
        authcache.forget_after_commit(s, "user", user.id)
        auth.authenticate(token)  # a concurrent request, before the commit: the old role, cached
    assert auth.authenticate(token).actor.role == "provider"


def test_forgets_published_by_another_process_arrive_over_redis(db_url, monkeypatch):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"Redis is not available: {exc}")
    set_env(monkeypatch, REDIS_URL=url, AUTH_CACHE_SECONDS="300")
    user = make_customer()
    token = issue(user)
    auth.authenticate(token)  # starts the listener
    deadline = time.monotonic() + 3
    publisher = redis.Redis.from_url(url, socket_timeout=2)
    # what another process's authcache.forget("user", id) sends
    while publisher.pubsub_numsub(authcache.CHANNEL)[0][1] == 0:
        assert time.monotonic() < deadline, "the listener never subscribed"
        time.sleep(0.02)
    auth.authenticate(token)  # (the listener starts by dropping what it may have missed)
    assert auth.authenticate_cached(token) is not None
    publisher.publish(authcache.CHANNEL, f"user:{user.id}")
    while auth.authenticate_cached(token) is not None:
        assert time.monotonic() < deadline, "the published forget was not applied"
        time.sleep(0.02)
    # a token forget too
    auth.authenticate(token)
    publisher.publish(authcache.CHANNEL, f"token:{auth.hash_token(token)}")
    while auth.authenticate_cached(token) is not None:
        assert time.monotonic() < deadline + 3, "the published forget was not applied"
        time.sleep(0.02)


def test_an_unreachable_redis_never_breaks_a_change_and_is_not_waited_on_each_time(db_url, monkeypatch):
    set_env(monkeypatch, REDIS_URL="redis://127.0.0.1:1/0", AUTH_CACHE_SECONDS="5")  # nothing listens there
    monkeypatch.setattr(authcache, "_publish_paused_until", 0.0)
    user = make_customer()
    token = issue(user)
    auth.authenticate(token)
    auth.logout(token_hash=auth.hash_token(token))  # publishing fails: logged, local drop still done
    with pytest.raises(Unauthorized):
        auth.authenticate(token)
    # for the next 10 s forgets don't try Redis again (a dead server could cost a timeout each)
    assert authcache._publish_paused_until > time.monotonic() + 5
    tried = []
    monkeypatch.setattr(redis_channel, "publisher", lambda url: tried.append(url))
    authcache.forget("user", user.id)
    assert tried == []


def test_a_user_deactivated_elsewhere_cannot_book_while_their_lookup_is_still_cached(db_url, client, monkeypatch):
    """Without Redis another process learns of a deactivation only when its cached lookup
    lapses (AUTH_CACHE_SECONDS); a booking doesn't rely on it: it re-reads the customer's
    account in its own transaction and answers 401."""
    set_env(monkeypatch, AUTH_CACHE_SECONDS="300")
    event, _ = make_event(sessions=[next_day_at(14)], capacity=10)
    user = make_customer()
    token = issue(user)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/users/profile", headers=headers).status_code == 200  # cached now
    with db.unit_of_work() as s:  # what another process's deactivation looks like from here
        s.exec(update(User).where(User.id == user.id).values(is_active=False))
    assert auth.authenticate_cached(token) is not None  # still served from memory
    r = client.post("/api/bookings", headers=headers,
                    json={"service_id": event.id, "start": next_day_at(14).isoformat(), "payment_method": "on_site"})
    assert r.status_code == 401, r.text
    with db.read_session() as s:
        assert s.exec(select(func.count()).select_from(Booking)).one() == 0
