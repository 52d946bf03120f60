"""The web UI's sign-in lives in an HttpOnly cookie that page scripts cannot read.

The UI talks to the server over a websocket, which cannot set cookies; so a sign-in is handed
to the browser in two steps:
1. the sign-in event (ui/state/auth.py) logs in as the API does and calls `begin`: a
   single-use code, valid BROWSER_HANDOFF_SECONDS, stored here (a database row, so any app
   process can redeem it);
2. the page POSTs the code to /api/browser-session (api/browser_session.py); `exchange`
   consumes it — once, atomically — and that HTTP response sets the cookie; the page then
   loads afresh, so its new websocket carries the cookie, and the UI reads the token from
   the connection's Cookie header on every event (`token_from_cookie_header`).

Only the code's SHA-256 is stored, and the token sealed with a key derived from the code:
a copy of the table alone yields no session. The cookie's lifetime is the token's; it is
`Secure` when PUBLIC_URL is https, SameSite=Lax (a link in a booking email opens the site
signed in; Lax still keeps the cookie off cross-site POSTs and subresources). The REST API
never reads this cookie: it takes bearer tokens only.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import BrowserSessionHandoff, utcnow
from booking_app.services import auth
from booking_app.services.errors import InvalidInput, Unauthorized

SESSION_COOKIE = "booking_session"
SAME_SITE = "lax"
CODE_BYTES = 32
MAX_CODE_LENGTH = 100

HANDOFF_INVALID = N_("This sign-in has expired or was already used. Please sign in again.")


@dataclass(frozen=True)
class BrowserSession:
    """A session token for the cookie and how long it stays valid (seconds)."""

    token: str
    max_age: int
    user_id: int


def cookie_secure() -> bool:
    """`Secure` cookies when the site is served over https (PUBLIC_URL)."""
    return str(get_settings().public_url).lower().startswith("https://")


def token_from_cookie_header(header: str | None) -> str:
    """The session token in a request's Cookie header ("" when there is none)."""
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == SESSION_COOKIE and value:
            value = value.strip().strip('"')
            if value and len(value) <= auth.MAX_TOKEN_LENGTH:
                return value
    return ""


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _keystream(code: str, n: int) -> bytes:
    return hashlib.shake_256(b"browser-session-handoff:" + code.encode("utf-8")).digest(n)


def _seal(token: str, code: str) -> str:
    raw = token.encode("utf-8")
    return bytes(a ^ b for a, b in zip(raw, _keystream(code, len(raw)))).hex()


def _unseal(sealed: str, code: str) -> str:
    raw = bytes.fromhex(sealed)
    return bytes(a ^ b for a, b in zip(raw, _keystream(code, len(raw)))).decode("utf-8")


def begin(*, access_token: str, user_id: int, expires_in: int) -> str:
    """A single-use code that the browser trades for a cookie holding `access_token` (a token
    just issued by `auth.login`, valid `expires_in` seconds). Also drops expired codes."""
    if not access_token or len(access_token) > auth.MAX_TOKEN_LENGTH:
        raise Unauthorized(auth.SESSION_INVALID)
    code = secrets.token_urlsafe(CODE_BYTES)
    now = utcnow()
    with db.unit_of_work() as s:
        s.exec(delete(BrowserSessionHandoff).where(BrowserSessionHandoff.expires_at <= now))  # type: ignore[call-overload, arg-type]
        s.add(BrowserSessionHandoff(
            user_id=user_id, code_hash=_code_hash(code), sealed_token=_seal(access_token, code),
            token_expires_at=now + dt.timedelta(seconds=expires_in),
            expires_at=now + dt.timedelta(seconds=get_settings().browser_handoff_seconds),
        ))
    return code


def exchange(*, code: str) -> BrowserSession:
    """Redeem a code from `begin`: works once (of two concurrent uses exactly one wins), only
    before it expires, and only while its token is still valid; InvalidInput otherwise."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
        raise InvalidInput(HANDOFF_INVALID, field="code")
    code_hash = _code_hash(code)
    now = utcnow()
    with db.unit_of_work() as s:
        row = s.exec(select(BrowserSessionHandoff).where(BrowserSessionHandoff.code_hash == code_hash)).first()
        if row is None or row.expires_at <= now:
            raise InvalidInput(HANDOFF_INVALID, field="code")
        # conditional delete: the row is consumed by exactly one of concurrent redemptions
        claimed = s.exec(delete(BrowserSessionHandoff).where(BrowserSessionHandoff.id == row.id))  # type: ignore[call-overload, arg-type]
        if claimed.rowcount != 1:
            raise InvalidInput(HANDOFF_INVALID, field="code")
    token = _unseal(row.sealed_token, code)
    try:
        auth.authenticate(token, allow_enrolment=True)  # revoked meanwhile (signed out elsewhere): no cookie
    except Unauthorized as exc:
        raise InvalidInput(HANDOFF_INVALID, field="code") from exc
    max_age = int((row.token_expires_at - now).total_seconds())
    if max_age <= 0:
        raise InvalidInput(HANDOFF_INVALID, field="code")
    return BrowserSession(token=token, max_age=max_age, user_id=row.user_id)


def end(*, token: str, actor_id: int | None = None) -> None:
    """Revoke a browser's session token (sign-out); nothing to do for an empty one."""
    if token and len(token) <= auth.MAX_TOKEN_LENGTH:
        auth.logout(token_hash=auth.hash_token(token), actor_id=actor_id)
