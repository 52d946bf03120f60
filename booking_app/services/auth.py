"""Authentication: bearer tokens (sessions), login with an optional second factor, logout,
password reset.

Tokens are opaque random strings; only their SHA-256 is stored (`AuthToken`), with an
expiry (`TOKEN_TTL_MINUTES`). Admin and provider tokens also end after
STAFF_SESSION_IDLE_MINUTES without a request and STAFF_SESSION_ABSOLUTE_HOURS after sign-in
(`last_seen_at` is written at most once a minute). Logout revokes the token; disabling a
user, a password change or a reset revokes all of theirs.

With two-factor sign-in on (services/mfa.py) a right password answers `MfaRequired` with a
challenge; `login_mfa` trades it and a code for the token. A user whose role is in
REQUIRE_2FA_FOR but who has not enrolled gets an enrolment-only token (scope "mfa_enrol",
MFA_CHALLENGE_MINUTES long) that `authenticate` refuses everywhere but the enrolment
endpoints (`allow_enrolment`). Login is constant-time with respect to whether
the account exists (unknown users are verified against a dummy hash), answers with one
generic error, and is throttled with growing delays per account and per (client IP,
account) — never per IP alone, so one client's failures can't lock anyone else out
(_login_rules).

Password hashing is CPU-bound: these functions are synchronous and are called from
FastAPI `def` routes (the thread pool), never on the event loop.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, func, select, update

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import AuthToken, PasswordResetToken, User, utcnow
from booking_app.services import audit, authcache, clientip, mfa, outbox, ratelimit, validation
from booking_app.services.actors import Actor
from booking_app.services.errors import InvalidInput, Unauthorized
from booking_app.services.passwords import (
    check_password_strength,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200
MAX_IDENTIFIER = 254
MAX_PASSWORD_INPUT = 1024  # longer inputs are rejected before hashing (no hashing DoS)

LOGIN_FAILED = N_("Wrong username or password.")
SESSION_INVALID = N_("Your session is invalid or has expired. Please sign in again.")
RESET_INVALID = N_("This password reset link is invalid or has expired.")
RESET_WINDOW = dt.timedelta(hours=1)
MFA_REQUIRED = N_("Enter the code from your authenticator app.")
ENROLMENT_REQUIRED = N_("Set up two-factor sign-in to continue.")
STAFF_ROLES = frozenset({"admin", "provider"})
#: `last_seen_at` is written when it is older than this (not on every request)
SEEN_GRANULARITY = dt.timedelta(seconds=60)
MAX_USER_AGENT = 300


class MfaRequired(Unauthorized):
    """The password was right; a code is due (`POST /api/users/login/mfa` with `challenge`)."""

    code = "mfa_required"
    default_message = MFA_REQUIRED

    def __init__(self, challenge: str) -> None:
        super().__init__(MFA_REQUIRED)
        self.challenge = challenge
        self.problem_fields = {"challenge": challenge}


class EnrolmentRequired(Unauthorized):
    """An enrolment-only token used for anything but enrolling in two-factor sign-in."""

    code = "mfa_enrolment_required"
    default_message = ENROLMENT_REQUIRED


def required_roles() -> frozenset[str]:
    """REQUIRE_2FA_FOR as a set of roles."""
    return frozenset(r.strip() for r in get_settings().require_2fa_for.split(",") if r.strip())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True)
class LoginResult:
    access_token: str
    expires_in: int
    user_id: int
    token_type: str = "bearer"
    #: an enrolment-only token (REQUIRE_2FA_FOR): enrol before anything else
    mfa_enrolment_required: bool = False


@dataclass(frozen=True)
class Authenticated:
    actor: Actor
    token_hash: str
    enrolment_only: bool = False


# --- tokens ---------------------------------------------------------------------------

def issue_token(session: Session, *, user_id: int, role: str | None = None, ip: str | None = None,
                user_agent: str = "", scope: str | None = None) -> tuple[str, int]:
    """Create a token for `user_id` inside the caller's transaction: (token, expires_in s).
    Staff tokens live at most STAFF_SESSION_ABSOLUTE_HOURS, enrolment-only ones minutes."""
    settings = get_settings()
    if role is None:
        user = session.get(User, user_id)
        role = user.role if user is not None else ""
    ttl = dt.timedelta(minutes=settings.token_ttl_minutes)
    if role in STAFF_ROLES:
        ttl = min(ttl, dt.timedelta(hours=settings.staff_session_absolute_hours))
    if scope == mfa.ENROL_SCOPE:
        ttl = min(ttl, dt.timedelta(minutes=settings.mfa_challenge_minutes * 3))
    token = new_token()
    now = utcnow()
    session.add(AuthToken(user_id=user_id, token_hash=hash_token(token), expires_at=now + ttl, last_seen_at=now,
                          ip=ip, user_agent=(user_agent or "")[:MAX_USER_AGENT], scope=scope))
    return token, int(ttl.total_seconds())


def staff_deadline(created_at: dt.datetime, last_seen_at: dt.datetime | None) -> dt.datetime:
    """When a staff session ends: idle limit after its last request, absolute after sign-in."""
    settings = get_settings()
    return min((last_seen_at or created_at) + dt.timedelta(minutes=settings.staff_session_idle_minutes),
               created_at + dt.timedelta(hours=settings.staff_session_absolute_hours))


def authenticate(token: str, *, allow_enrolment: bool = False) -> Authenticated:
    """The actor behind a bearer token; Unauthorized when unknown, expired (staff: also idle
    too long), revoked or disabled; EnrolmentRequired for an enrolment-only token unless
    `allow_enrolment`. Served from a short-lived cache when it can (services/authcache.py)."""
    cached = authenticate_cached(token, allow_enrolment=allow_enrolment)
    if cached is not None:
        return cached
    token_hash = hash_token(token)
    # one indexed lookup (unique token_hash) of just the columns needed, prebuilt statement,
    # no ORM objects
    with db.get_engine().connect() as conn:
        row = conn.execute(_TOKEN_LOOKUP, {"h": token_hash}).first()
    if row is None:
        raise Unauthorized(SESSION_INVALID)
    user_id, role, locale, timezone, is_active, revoked_at, expires_at, created_at, last_seen_at, scope = row
    now = utcnow()
    if revoked_at is not None or expires_at <= now or not is_active:
        raise Unauthorized(SESSION_INVALID)
    valid_until = expires_at
    if role in STAFF_ROLES:
        valid_until = min(valid_until, staff_deadline(created_at, last_seen_at))
        if valid_until <= now:
            raise Unauthorized(SESSION_INVALID)
    if last_seen_at is None or now - last_seen_at >= SEEN_GRANULARITY:
        with db.unit_of_work() as s:  # (SQLite: in this process's writer turn, like every write)
            s.connection().execute(_TOKEN_SEEN, {"h": token_hash, "now": now})
    actor = Actor(id=user_id, role=role, locale=locale, timezone=timezone, token_hash=token_hash)
    who = Authenticated(actor, token_hash, enrolment_only=scope == mfa.ENROL_SCOPE)
    authcache.put(token_hash, user_id=user_id, expires_ts=valid_until.timestamp(), value=who)
    return _allowed(who, allow_enrolment)


def _allowed(who: Authenticated, allow_enrolment: bool) -> Authenticated:
    if who.enrolment_only and not allow_enrolment:
        raise EnrolmentRequired()
    return who


def authenticate_cached(token: str, *, allow_enrolment: bool = False) -> Authenticated | None:
    """`authenticate` from the cache only (no database: safe on the event loop); None when
    the token isn't cached. Unauthorized for a malformed token."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized(SESSION_INVALID)
    token_hash = hash_token(token)
    who = authcache.get(token_hash)
    return _allowed(who, allow_enrolment) if who is not None else None


_TOKEN_LOOKUP = (
    sa_select(User.id, User.role, User.locale, User.timezone, User.is_active, AuthToken.revoked_at,  # type: ignore[arg-type]
              AuthToken.expires_at, AuthToken.created_at, AuthToken.last_seen_at, AuthToken.scope)
    .join(User, User.id == AuthToken.user_id)  # type: ignore[arg-type]
    .where(AuthToken.token_hash == bindparam("h"))
)
_TOKEN_SEEN = (
    update(AuthToken).where(AuthToken.token_hash == bindparam("h"))
    .values(last_seen_at=bindparam("now"))
)


def revoke_all(session: Session, *, user_id: int, keep_token_hash: str | None = None,
               actor_id: int | None = None, reason: str = "") -> None:
    """Revoke every live token of a user (inside the caller's transaction); audited when
    any was live (`actor_id`: who did it, default the user; `reason`: why)."""
    stmt = update(AuthToken).where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))  # type: ignore[union-attr]
    if keep_token_hash:
        stmt = stmt.where(AuthToken.token_hash != keep_token_hash)
    revoked = session.exec(stmt.values(revoked_at=utcnow())).rowcount  # type: ignore[call-overload]
    authcache.forget_after_commit(session, "user", user_id)
    if revoked:
        audit.record(session, actor_id=actor_id or user_id, action="user.sessions_revoked", entity="user",
                     entity_id=user_id, data={"count": revoked, "reason": reason, "kept_current": bool(keep_token_hash)})


def logout(*, token_hash: str, actor_id: int | None = None) -> None:
    with db.unit_of_work() as s:
        s.exec(update(AuthToken).where(AuthToken.token_hash == token_hash, AuthToken.revoked_at.is_(None))  # type: ignore[call-overload, union-attr]
               .values(revoked_at=utcnow()))
        authcache.forget_after_commit(s, "token", token_hash)
        if actor_id is not None:
            audit.record(s, actor_id=actor_id, action="user.logout", entity="user", entity_id=actor_id)


# --- login ----------------------------------------------------------------------------

def _account_key(user: User | None, identifier: str) -> str:
    """The failure budget of an account, whichever identifier (username or email) was typed;
    an unknown identifier has one of its own, keyed by a hash of its normalised text (probing
    names that don't exist costs the same, and a password typed as a name isn't stored)."""
    if user is not None:
        return f"login:user:{user.id}"
    return "login:name:" + hashlib.sha256(identifier.strip().lower().encode("utf-8")).hexdigest()[:32]


def _login_rules(s: Session, account: str, ip: str | None) -> tuple[dict[str, ratelimit.Backoff], bool]:
    """The growing delays of one sign-in attempt, and whether the client is known (signed in
    to this account before: exempt from the account-wide delay, never locked out by others).

    - per (client, account): LOGIN_MAX_FAILURES free, then base·2^k up to LOGIN_DELAY_MAX_SECONDS
      — only that client waits;
    - per account: LOGIN_ACCOUNT_MAX_FAILURES free (from all clients together), then up to
      LOGIN_ACCOUNT_DELAY_MAX_SECONDS — short, so a distributed attack slows guessing to one
      try per cap but the owner gets in after at most that wait (at once from a known client).
    There is deliberately no per-IP budget: behind a NAT or a proxy one address is many users.
    """
    settings = get_settings()
    window = dt.timedelta(minutes=settings.login_failure_window_minutes)
    base = settings.login_delay_base_seconds
    rules: dict[str, ratelimit.Backoff] = {}
    known = False
    client = clientip.bucket(ip)
    if client:
        rules[f"{account}:client:{client}"] = ratelimit.Backoff(
            free=settings.login_max_failures, base=base, cap=settings.login_delay_max_seconds, window=window)
        known = ratelimit.remembered(s, f"{account}:client:{client}",
                                     within=dt.timedelta(days=settings.login_known_client_days))
    if not known:
        rules[account] = ratelimit.Backoff(free=settings.login_account_max_failures, base=base,
                                           cap=settings.login_account_delay_max_seconds, window=window)
    return rules, known


def _find_user(session: Session, identifier: str) -> User | None:
    ident = identifier.strip().lower()
    return session.exec(
        select(User).where((func.lower(User.username) == ident) | (func.lower(User.email) == ident))
    ).first()


def login(*, identifier: str, password: str, ip: str | None = None, user_agent: str = "") -> LoginResult:
    """A token for the right password of an active account; Unauthorized (one message) for
    anything else; RateLimited while this client or account must wait (_login_rules).
    MfaRequired (with a challenge, no token) when the account has two-factor sign-in on; an
    enrolment-only token when its role must have it (REQUIRE_2FA_FOR) and it hasn't yet."""
    # control characters (NUL…) can't be in any account's name or password: refused as input
    identifier = validation.clean_text(identifier or "", field="username").strip()
    if not isinstance(password, str):
        password = ""
    validation.secret(password, field="password")
    if not identifier or len(identifier) > MAX_IDENTIFIER or not password or len(password) > MAX_PASSWORD_INPUT:
        # still spend the time of one verification: no early answer to measure
        verify_password("x", dummy_hash())
        raise Unauthorized(LOGIN_FAILED)
    # the attempt counts as a failure before the password is checked (concurrent guesses see
    # each other) and is taken back when it was right; the same queries run for unknown names
    with db.unit_of_work() if ratelimit.enabled() else db.read_session() as s:
        user = _find_user(s, identifier)
        account = _account_key(user, identifier)
        rules, known = _login_rules(s, account, ip) if ratelimit.enabled() else ({}, False)
        ratelimit.attempt(s, rules)
        if known:
            ratelimit.hit(s, [account])  # counted, though a known client doesn't wait for it
    ok = verify_password(password, user.password_hash if user is not None else dummy_hash())
    if not ok or user is None or not user.is_active:
        with db.unit_of_work() as s:
            audit.record(s, actor_id=user.id if user else None, action="user.login_failed", entity="user",
                         entity_id=user.id if user else "-", data={"ip": ip, "known_user": user is not None})
        raise Unauthorized(LOGIN_FAILED)
    assert user.id is not None
    new_hash = hash_password(password) if needs_rehash(user.password_hash) else None
    challenge = None
    with db.unit_of_work() as s:
        second_factor = mfa.enabled(s, user.id)
        enrol = not second_factor and user.role in required_roles()
        if second_factor:
            challenge = mfa.new_challenge(s, user_id=user.id, ip=ip, user_agent=user_agent)
        else:
            token, expires_in = issue_token(s, user_id=user.id, role=user.role, ip=ip, user_agent=user_agent,
                                            scope=mfa.ENROL_SCOPE if enrol else None)
        values: dict = {} if second_factor else {"last_login_at": utcnow()}
        if new_hash:
            values["password_hash"] = new_hash
        if values:
            s.exec(update(User).where(User.id == user.id).values(**values))  # type: ignore[call-overload]
        if rules:  # right password: this client's and the account's failures are forgiven
            ratelimit.clear(s, account, *rules)
            if client := clientip.bucket(ip):
                ratelimit.remember(s, f"{account}:client:{client}")
        audit.record(s, actor_id=user.id, action="user.login_password_ok" if second_factor else "user.login",
                     entity="user", entity_id=user.id,
                     data={"ip": ip, "rehashed": bool(new_hash), **({"enrolment_only": True} if enrol else {})})
    if challenge is not None:
        raise MfaRequired(challenge)
    return LoginResult(access_token=token, expires_in=expires_in, user_id=user.id, mfa_enrolment_required=enrol)


def login_mfa(*, challenge: str, code: str, ip: str | None = None, user_agent: str = "") -> LoginResult:
    """The second step of a sign-in: a right TOTP or recovery code with the challenge of
    `login` issues the token (the challenge works once). Unauthorized for an unknown or
    expired challenge or a wrong code; RateLimited while wrong codes must wait."""
    pending = mfa.challenge_user(challenge)
    try:
        kind = mfa.verify(user_id=pending.user_id, code=code, purpose="login")
    except InvalidInput as exc:
        raise Unauthorized(exc.message, field="code") from None
    with db.unit_of_work() as s:
        user = s.get(User, pending.user_id)
        if user is None or not user.is_active or not mfa.consume_challenge(s, pending.id):  # type: ignore[arg-type]
            raise Unauthorized(mfa.CHALLENGE_INVALID)
        token, expires_in = issue_token(s, user_id=user.id, role=user.role, ip=ip or pending.ip,  # type: ignore[arg-type]
                                        user_agent=user_agent or pending.user_agent)
        s.exec(update(User).where(User.id == user.id).values(last_login_at=utcnow()))  # type: ignore[call-overload]
        audit.record(s, actor_id=user.id, action="user.login", entity="user", entity_id=user.id,
                     data={"ip": ip, "second_factor": kind})
    return LoginResult(access_token=token, expires_in=expires_in, user_id=user.id)  # type: ignore[arg-type]


# --- password reset ---------------------------------------------------------------------

def request_password_reset(*, email: str, ip: str | None = None) -> None:
    """Email a single-use reset link if an active account has this address.

    The answer is the same whether or not the address exists; requests are rate limited
    per address and per IP.
    """
    settings = get_settings()
    email = validation.email(email)
    by_email, by_ip = f"reset:email:{email.lower()}", f"reset:ip:{clientip.bucket(ip)}" if ip else None
    with db.unit_of_work() as s:
        ratelimit.check(s, [by_email], limit=settings.password_reset_max_requests, window=RESET_WINDOW)
        if by_ip:
            ratelimit.check(s, [by_ip], limit=settings.password_reset_max_per_ip, window=RESET_WINDOW)
        ratelimit.hit(s, [by_email] + ([by_ip] if by_ip else []))
        user = s.exec(select(User).where(func.lower(User.email) == email.lower(), User.is_active.is_(True))).first()  # type: ignore[attr-defined]
        if user is None:
            return
        assert user.id is not None
        token = new_token()
        token_hash = hash_token(token)
        ttl = settings.password_reset_ttl_minutes
        s.add(PasswordResetToken(user_id=user.id, token_hash=token_hash, expires_at=utcnow() + dt.timedelta(minutes=ttl)))
        outbox.enqueue(
            s,
            channel="email",
            to=user.email,
            template="password_reset",
            locale=user.locale,
            context={
                "username": user.username,
                "name": user.full_name or user.username,
                "token": token,
                "reset_url": f"{settings.public_url.rstrip('/')}/reset-password?token={token}",
                "expires_minutes": ttl,
            },
            dedupe_key=f"password_reset:{token_hash}",
            user_id=user.id,
        )
        audit.record(s, actor_id=user.id, action="user.password_reset_requested", entity="user", entity_id=user.id,
                     data={"ip": ip})


def confirm_password_reset(*, token: str, new_password: str) -> None:
    """Set a new password with a reset token; the token works once, all sessions end."""
    if not token or not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or validation.text_problem(token):
        raise InvalidInput(RESET_INVALID, field="token")
    check_password_strength(new_password)
    token_hash = hash_token(token)
    new_hash = hash_password(new_password)
    now = utcnow()
    with db.unit_of_work() as s:
        row = s.exec(select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash)).first()
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise InvalidInput(RESET_INVALID, field="token")
        # conditional update: of two concurrent uses only one matches
        claimed = s.exec(update(PasswordResetToken)  # type: ignore[call-overload]
                         .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))  # type: ignore[union-attr]
                         .values(used_at=now))
        if claimed.rowcount != 1:
            raise InvalidInput(RESET_INVALID, field="token")
        user = s.get(User, row.user_id)
        if user is None or not user.is_active:
            raise InvalidInput(RESET_INVALID, field="token")
        user.password_hash = new_hash
        s.add(user)
        # every other outstanding reset link of this user stops working too
        s.exec(update(PasswordResetToken)  # type: ignore[call-overload]
               .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))  # type: ignore[union-attr]
               .values(used_at=now))
        revoke_all(s, user_id=row.user_id, reason="password_reset")
        # a new password: no client waits any longer for the old one's failures
        ratelimit.clear(s, _account_key(user, ""))
        ratelimit.clear_prefix(s, _account_key(user, "") + ":client:")
        audit.record(s, actor_id=user.id, action="user.password_reset", entity="user", entity_id=user.id)


#: how long dead credentials and counters are kept before the housekeeping job deletes them
TOKEN_RETENTION = dt.timedelta(days=7)


def purge_expired(*, now: dt.datetime | None = None) -> int:
    """Delete tokens that expired or were revoked more than a week ago, used or expired
    password-reset tokens of the same age, expired sign-in challenges, and rate-limit events
    older than any window. Repeat-safe; returns how many rows went."""
    cutoff = (now or utcnow()) - TOKEN_RETENTION
    with db.unit_of_work() as s:
        n = s.exec(delete(AuthToken).where(or_(AuthToken.expires_at < cutoff,  # type: ignore[call-overload]
                                               AuthToken.revoked_at < cutoff))).rowcount or 0
        n += s.exec(delete(PasswordResetToken).where(or_(PasswordResetToken.expires_at < cutoff,  # type: ignore[call-overload]
                                                         PasswordResetToken.used_at < cutoff))).rowcount or 0
        n += mfa.purge_challenges(s, before=now or utcnow())
        # a sign-in client is remembered LOGIN_KNOWN_CLIENT_DAYS (exempt from account-wide waits)
        n += ratelimit.prune(s, known_for=dt.timedelta(days=get_settings().login_known_client_days))
    return n
