"""One's signed-in sessions (list, sign out one or all others) and re-authentication.

A session is a live `AuthToken`: the device it signed in from (a short name made from its
User-Agent), its IP and when it was last seen. Revocations are audited.

Sensitive actions (a role change, a deactivation, a 2FA reset, a large refund, a price
change) call `require_recent_auth(actor)`: the actor's session must have signed in or proven
the password or a code (`reauthenticate`) within REAUTH_MINUTES, else `ReauthRequired` (401,
code "reauth_required"). The proof comes first, on its own: the API checks an `X-Reauth`
header before the route runs (api/deps.py), the UI's prompt calls `reauthenticate`; so the
check itself is one read and may sit inside the action's transaction. An actor without a
session (a job, the CLI, a direct service call) needs none. Wrong proofs are throttled and
audited.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import update
from sqlmodel import select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import AuthToken, User, utcnow
from booking_app.services import audit, auth, authcache, mfa
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput, NotFound, Unauthorized
from booking_app.services.passwords import check_current_password

REAUTH_REQUIRED = N_("Please confirm it is you: enter your password or a code from your authenticator app.")
SESSION_NOT_FOUND = N_("Session not found.")

class ReauthRequired(Unauthorized):
    """A sensitive action without a recent sign-in or a proof of the password or a code."""

    code = "reauth_required"
    default_message = REAUTH_REQUIRED


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    id: int
    device: str
    ip: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    expires_at: dt.datetime
    current: bool


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_name(user_agent: str | None) -> str:
    """"Firefox on Windows", "Safari on iPhone", … from a User-Agent; the first words of an
    unknown one (an API client), "" for none."""
    ua = (user_agent or "").strip()
    if not ua:
        return ""
    browser = next((name for mark, name in _BROWSERS if mark in ua), "")
    system = next((name for mark, name in _SYSTEMS if mark in ua), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or ua.split(" ")[0][:60]


def _signed_in(actor: Actor) -> int:
    if actor.is_guest or actor.id is None:
        raise Unauthorized()
    return actor.id


def _live(now: dt.datetime, token: AuthToken, role: str) -> bool:
    if token.revoked_at is not None or token.expires_at <= now:
        return False
    return role not in auth.STAFF_ROLES or auth.staff_deadline(token.created_at, token.last_seen_at) > now


def list_sessions(*, actor: Actor) -> list[SessionInfo]:
    """The actor's live sessions, most recently seen first; `current` marks this one."""
    user_id = _signed_in(actor)
    now = utcnow()
    with db.read_session() as s:
        user = s.get(User, user_id)
        rows = s.exec(select(AuthToken).where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None),  # type: ignore[union-attr]
                                              AuthToken.expires_at > now)).all()
    role = user.role if user is not None else ""
    out = [SessionInfo(id=t.id, device=device_name(t.user_agent), ip=t.ip, created_at=t.created_at,  # type: ignore[arg-type]
                       last_seen_at=t.last_seen_at, expires_at=t.expires_at,
                       current=t.token_hash == actor.token_hash)
           for t in rows if _live(now, t, role)]
    out.sort(key=lambda x: (x.current, x.last_seen_at or x.created_at), reverse=True)
    return out


def revoke_session(*, actor: Actor, session_id: int) -> None:
    """Sign one of one's own sessions out (NotFound for anyone else's or an ended one)."""
    user_id = _signed_in(actor)
    with db.unit_of_work() as s:
        token = s.exec(select(AuthToken).where(AuthToken.id == session_id, AuthToken.user_id == user_id,
                                               AuthToken.revoked_at.is_(None))).first()  # type: ignore[union-attr]
        if token is None:
            raise NotFound(SESSION_NOT_FOUND)
        token.revoked_at = utcnow()
        s.add(token)
        authcache.forget_after_commit(s, "token", token.token_hash)
        audit.record(s, actor_id=user_id, action="user.session_revoked", entity="user", entity_id=user_id,
                     data={"session_id": session_id, "current": token.token_hash == actor.token_hash})


def revoke_others(*, actor: Actor) -> None:
    """Sign out every session of the actor but this one."""
    user_id = _signed_in(actor)
    with db.unit_of_work() as s:
        auth.revoke_all(s, user_id=user_id, keep_token_hash=actor.token_hash, reason="signed_out_others")


# --- re-authentication ----------------------------------------------------------------------

def _recent(token_hash: str) -> bool | None:
    """Whether the session proved itself within REAUTH_MINUTES (None: no such session)."""
    with db.read_session() as s:
        token = s.exec(select(AuthToken).where(AuthToken.token_hash == token_hash)).first()
    if token is None:
        return None
    last = max(token.created_at, token.reauth_at or token.created_at)
    return utcnow() - last < dt.timedelta(minutes=get_settings().reauth_minutes)


def reauthenticate(*, actor: Actor, proof: str | None) -> None:
    """Prove it is still the actor: their password, or a TOTP code when two-factor sign-in is
    on. Marks the session re-authenticated; ReauthRequired when wrong (throttled, audited)."""
    user_id = _signed_in(actor)
    with db.read_session() as s:
        user = s.get(User, user_id)
        second_factor = mfa.enabled(s, user_id)
    if user is None or not user.is_active:
        raise Unauthorized()
    given = (proof or "").strip()
    try:
        if second_factor and given.replace(" ", "").isdigit() and len(given.replace(" ", "")) == mfa.DIGITS:
            mfa.verify(user_id=user_id, code=given, allow_recovery=False, purpose="reauth")
        else:
            check_current_password(user_id=user_id, password_hash=user.password_hash, given=proof, field="reauth")
    except InvalidInput as exc:
        if second_factor and exc.message == mfa.WRONG_CODE:
            audit.record_now(actor_id=user_id, action="user.reauth_failed", entity="user", entity_id=user_id)
        raise ReauthRequired(exc.message, field="reauth") from None
    if actor.token_hash:
        with db.unit_of_work() as s:
            s.exec(update(AuthToken).where(AuthToken.token_hash == actor.token_hash)  # type: ignore[call-overload]
                   .values(reauth_at=utcnow()))


def require_recent_auth(actor: Actor) -> None:
    """Let a sensitive action through only for a recently proven session (see the module's
    docstring); ReauthRequired otherwise. One read; safe inside a transaction."""
    if actor.token_hash is None:
        return  # a job, the CLI, a direct service call: no session to prove
    if not _recent(actor.token_hash):
        raise ReauthRequired()
