"""Helpers for the API tests: users of every role with ready tokens."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

PASSWORD = "a-Long-enough-passphrase-42"
_counter = itertools.count(1)


@dataclass
class Account:
    id: int
    username: str
    email: str
    role: str
    token: str
    password: str = PASSWORD

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def row(self):
        """Its User row (what tests/factories.py takes, e.g. as a bookable's provider)."""
        from booking_app import db
        from booking_app.models import User

        with db.read_session() as s:
            return s.get(User, self.id)


def make_account(role: str = "customer", *, username: str | None = None, password: str = PASSWORD,
                 **fields) -> Account:
    """A user created through the service, with a token issued directly (no login round trip)."""
    from booking_app import db
    from booking_app.services import accounts, auth

    n = next(_counter)
    username = username or f"{role}{n}"
    user = accounts.create_user(username=username, email=f"{username}@example.com", password=password,
                                role=role, **fields)
    with db.unit_of_work() as s:
        token, _ = auth.issue_token(s, user_id=user.id)
    return Account(id=user.id, username=username, email=user.email, role=role, token=token, password=password)


def set_env(monkeypatch, **values: str) -> None:
    from booking_app.config import reset_settings_cache

    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and "detail" in body and "type" in body
    return body


def open_room(client, **fields) -> dict:
    """A new provider's one-seat, free, hour-long room made through the API (`fields` override
    the service's JSON), open 08:00–20:00 every day: {"id", "provider", "json"}."""
    provider = make_account("provider")
    r = client.post("/api/services", headers=provider.headers, json={
        "name": "Room Atlas", "kind": "room", "duration_minutes": 60, "capacity": 1, "price_cents": 0,
        "currency": "EUR", "timezone": "UTC", **fields})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    weekly = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
    r2 = client.put(f"/api/services/{sid}/availability", headers=provider.headers, json={"weekly": weekly})
    assert r2.status_code == 200, r2.text
    return {"id": sid, "provider": provider, "json": r.json()}


@pytest.fixture
def fast_hash(monkeypatch):
    """Create users without paying argon2 each time (the hash of each password is computed once)."""
    import functools

    from booking_app.services import accounts, passwords

    cached = functools.lru_cache(maxsize=32)(passwords.hash_password)
    monkeypatch.setattr(accounts, "hash_password", cached)
    return cached
