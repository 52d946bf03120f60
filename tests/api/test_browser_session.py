"""The web UI's HttpOnly session cookie: a single-use hand-off code traded for the cookie by
POST /api/browser-session, cleared by DELETE (services/browser_sessions.py)."""
from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie

import pytest

from tests.api.conftest import PASSWORD, assert_problem, make_account, set_env
from tests.threads import run_together

URL = "/api/browser-session"
SAME_ORIGIN = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}


def signed_in_code(acct) -> tuple[str, str]:
    """What the UI's sign-in event does: log in, then begin a hand-off → (code, token)."""
    from booking_app.services import auth, browser_sessions

    result = auth.login(identifier=acct.username, password=PASSWORD)
    code = browser_sessions.begin(access_token=result.access_token, user_id=result.user_id,
                                  expires_in=result.expires_in)
    return code, result.access_token


def session_cookie(response) -> dict[str, str | bool]:
    """The booking_session Set-Cookie of a response, attribute names lower-cased."""
    headers = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(headers) == 1, headers
    jar = SimpleCookie()
    jar.load(headers[0])
    morsel = jar["booking_session"]
    attrs = {k.lower(): v for k, v in morsel.items() if v}
    attrs["value"] = morsel.value
    attrs["raw"] = headers[0]
    return attrs


def test_the_code_is_traded_once_for_an_httponly_lax_cookie_holding_a_working_token(client):
    from booking_app.config import get_settings
    from booking_app.services import auth

    acct = make_account("customer")
    code, token = signed_in_code(acct)
    resp = client.post(URL, json={"code": code}, headers=SAME_ORIGIN)
    assert resp.status_code == 204, resp.text
    cookie = session_cookie(resp)
    assert cookie["value"] == token and auth.authenticate(token).actor.id == acct.id
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert "secure" not in cookie  # PUBLIC_URL is http here
    ttl = get_settings().token_ttl_minutes * 60
    assert ttl - 60 <= int(cookie["max-age"]) <= ttl  # the cookie lives as long as the token
    assert resp.headers["cache-control"] == "no-store"

    # the code works once
    again = client.post(URL, json={"code": code}, headers=SAME_ORIGIN)
    assert assert_problem(again, 422)["field"] == "code"
    assert "set-cookie" not in again.headers


def test_secure_only_when_public_url_is_https(client, monkeypatch):
    set_env(monkeypatch, PUBLIC_URL="https://booking.example.com")
    acct = make_account("customer")
    code, _ = signed_in_code(acct)
    resp = client.post(URL, json={"code": code},
                       headers={"Origin": "https://booking.example.com", "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 204, resp.text
    cookie = session_cookie(resp)
    assert cookie["secure"] is True and cookie["httponly"] is True


def test_an_expired_code_is_refused(client, monkeypatch):
    from booking_app.services import browser_sessions

    set_env(monkeypatch, BROWSER_HANDOFF_SECONDS="5")
    acct = make_account("customer")
    code, _ = signed_in_code(acct)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=6)
    monkeypatch.setattr(browser_sessions, "utcnow", lambda: later)
    assert_problem(client.post(URL, json={"code": code}, headers=SAME_ORIGIN), 422)


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://testserver", "Sec-Fetch-Site": "same-site"},   # a sibling subdomain
    {"Origin": "https://evil.example"},                               # a browser without Fetch metadata
    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    {},                                                               # no Origin at all
], ids=["cross-site", "same-site", "foreign-origin", "null-origin", "no-origin"])
def test_other_sites_cannot_trade_a_code_login_csrf(client, headers):
    acct = make_account("customer")
    code, _ = signed_in_code(acct)
    resp = client.post(URL, json={"code": code}, headers=headers)
    assert_problem(resp, 403)
    assert "set-cookie" not in resp.headers
    # a refused request does not use the code up
    assert client.post(URL, json={"code": code}, headers=SAME_ORIGIN).status_code == 204


def test_unknown_or_malformed_codes_are_422(client):
    assert assert_problem(client.post(URL, json={"code": "x" * 43}, headers=SAME_ORIGIN), 422)["field"] == "code"
    assert_problem(client.post(URL, json={"code": "x" * 500}, headers=SAME_ORIGIN), 422)
    assert_problem(client.post(URL, json={}, headers=SAME_ORIGIN), 422)


def test_a_token_revoked_before_the_trade_gives_no_cookie(client):
    from booking_app.services import auth

    acct = make_account("customer")
    code, token = signed_in_code(acct)
    auth.logout(token_hash=auth.hash_token(token))
    resp = client.post(URL, json={"code": code}, headers=SAME_ORIGIN)
    assert_problem(resp, 422)
    assert "set-cookie" not in resp.headers


def test_delete_revokes_the_token_and_clears_the_cookie(client):
    from booking_app.services import auth
    from booking_app.services.errors import Unauthorized

    acct = make_account("customer")
    code, token = signed_in_code(acct)
    assert client.post(URL, json={"code": code}, headers=SAME_ORIGIN).status_code == 204

    refused = client.delete(URL, headers={"Origin": "https://evil.example", "Cookie": f"booking_session={token}"})
    assert_problem(refused, 403)
    assert auth.authenticate(token).actor.id == acct.id  # a foreign page cannot sign anyone out

    resp = client.delete(URL, headers={**SAME_ORIGIN, "Cookie": f"booking_session={token}"})
    assert resp.status_code == 204
    cookie = session_cookie(resp)
    assert cookie["value"] == "" and int(cookie["max-age"]) == 0
    assert cookie["httponly"] is True and cookie["path"] == "/"
    with pytest.raises(Unauthorized):
        auth.authenticate(token)
    # without a cookie it still answers 204 (and clears nothing but the cookie)
    assert client.delete(URL, headers=SAME_ORIGIN).status_code == 204


def test_the_rest_api_does_not_take_the_cookie(client):
    acct = make_account("customer")
    resp = client.get("/api/users/profile", headers={"Cookie": f"booking_session={acct.token}"})
    assert_problem(resp, 401)
    assert client.get("/api/users/profile", headers=acct.headers).status_code == 200


def test_the_handoff_operations_are_not_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert URL not in paths


def test_concurrent_trades_of_one_code_give_exactly_one_cookie(db_url):
    """Eight browsers race to redeem one code: exactly one gets the session."""
    from booking_app.services import browser_sessions
    from booking_app.services.errors import InvalidInput

    acct = make_account("customer")
    code, token = signed_in_code(acct)
    won, errors = run_together(8, lambda i: browser_sessions.exchange(code=code).token)
    refused = [e for e in errors if isinstance(e, InvalidInput)]
    assert [e for e in errors if not isinstance(e, InvalidInput)] == []
    assert won == [token] and len(refused) == 7


def test_old_codes_are_swept_when_new_ones_are_made(db_url, monkeypatch):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import BrowserSessionHandoff
    from booking_app.services import browser_sessions

    acct = make_account("customer")
    first, _ = signed_in_code(acct)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    monkeypatch.setattr(browser_sessions, "utcnow", lambda: later)
    signed_in_code(acct)
    with db.read_session() as s:
        rows = s.exec(select(BrowserSessionHandoff)).all()
    assert len(rows) == 1 and rows[0].code_hash != browser_sessions._code_hash(first)
    assert all(first not in r.sealed_token for r in rows)


def test_the_table_holds_neither_code_nor_token(db_url):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import BrowserSessionHandoff

    acct = make_account("customer")
    code, token = signed_in_code(acct)
    with db.read_session() as s:
        row = s.exec(select(BrowserSessionHandoff)).one()
    stored = f"{row.code_hash} {row.sealed_token}"
    assert code not in stored and token not in stored and token.encode().hex() not in stored


@pytest.mark.parametrize(("header", "expected"), [
    ("booking_session=abc", "abc"),
    ("booking_locale=de; booking_session=abc; other=1", "abc"),
    ('booking_session="abc"', "abc"),
    ("booking_sessionx=abc; xbooking_session=def", ""),
    ("booking_session=", ""),
    ("", ""),
    (None, ""),
    ("booking_session=" + "a" * 500, ""),
])
def test_token_from_cookie_header(header, expected):
    from booking_app.services.browser_sessions import token_from_cookie_header

    assert token_from_cookie_header(header) == expected
