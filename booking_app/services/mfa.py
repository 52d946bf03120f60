"""Two-factor sign-in primitives: TOTP secrets sealed at rest, codes, recovery codes, challenges.

- A TOTP secret (RFC 6238: 30 s steps, 6 digits, SHA-1 as every authenticator app expects)
  is stored sealed with AES-GCM under a key derived (HKDF-SHA256) from SECRET_KEY. After a
  rotation, SECRET_KEY_PREVIOUS still opens old seals; the secret is sealed again with the
  new key the next time it is used, so nobody is locked out.
- A code is accepted for the current step and one step either side (clock skew), and only
  for a step later than the last one accepted (`UserMfa.last_step`): a code can't be used
  twice. Wrong codes are throttled per account like wrong passwords (growing delays).
- Ten recovery codes, each single-use, stored as hashes; shown once when enrolment is
  confirmed.
- A sign-in challenge: the password was right and a code is due; only its SHA-256 is stored.

Enrolment flows that need the password (begin, confirm, disable) live here too; they work
inside one transaction each (`db.unit_of_work`).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, update
from sqlmodel import Session, func, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import AuthToken, MfaChallenge, MfaRecoveryCode, User, UserMfa, utcnow
from booking_app.services import audit, authcache, ratelimit, validation
from booking_app.services.actors import Actor
from booking_app.services.errors import Conflict, InvalidInput, Unauthorized
from booking_app.services.passwords import check_current_password

STEP_SECONDS = 30
DIGITS = 6
SKEW_STEPS = 1
RECOVERY_CODES = 10
CHALLENGE_BYTES = 32
MAX_CODE_INPUT = 64
#: the scope of a token that may only enrol (REQUIRE_2FA_FOR, services/auth.py)
ENROL_SCOPE = "mfa_enrol"
_SEAL_INFO = b"booking-app totp secret v1"
log = logging.getLogger(__name__)
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes

WRONG_CODE = N_("That code is not correct. Please try again.")
CHALLENGE_INVALID = N_("This sign-in has expired. Please sign in again.")
NOT_ENABLED = N_("Two-factor sign-in is not turned on.")
ALREADY_ENABLED = N_("Two-factor sign-in is already turned on.")
NO_ENROLMENT = N_("Start setting up two-factor sign-in first.")


# --- sealing secrets ---------------------------------------------------------------------

def _key(secret_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(secret_key.encode("utf-8"))


def seal(secret: str) -> str:
    """`secret` encrypted and authenticated with the current SECRET_KEY's derived key."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_key(get_settings().secret_key)).encrypt(nonce, secret.encode("ascii"), _SEAL_INFO)
    return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(sealed: str) -> tuple[str, bool]:
    """(secret, sealed with the previous key: seal it again). ValueError when neither
    SECRET_KEY nor SECRET_KEY_PREVIOUS opens it."""
    settings = get_settings()
    if not sealed.startswith("v1."):
        raise ValueError("unknown seal")
    raw = base64.urlsafe_b64decode(sealed[3:].encode("ascii"))
    nonce, body = raw[:12], raw[12:]
    for key, old in ((settings.secret_key, False), (settings.secret_key_previous, True)):
        if not key:
            continue
        try:
            return AESGCM(_key(key)).decrypt(nonce, body, _SEAL_INFO).decode("ascii"), old
        except InvalidTag:
            continue
    raise ValueError("no key opens this seal (SECRET_KEY changed without SECRET_KEY_PREVIOUS?)")


def _open(sealed: str, user_id: int) -> tuple[str, bool]:
    """`unseal`, or a logged error and an empty secret (no code matches; recovery codes and an
    admin's reset still work) when the keys can't open it."""
    try:
        return unseal(sealed)
    except ValueError:
        log.error("two-factor secret of user %s can't be opened: SECRET_KEY changed without "
                  "SECRET_KEY_PREVIOUS (README: rotating SECRET_KEY)", user_id)
        return "", False


# --- codes ---------------------------------------------------------------------------------

def _now_step() -> int:
    return int(utcnow().timestamp()) // STEP_SECONDS


def _clean_code(code: object) -> str:
    if not isinstance(code, str) or len(code) > MAX_CODE_INPUT or validation.text_problem(code):
        return ""
    return "".join(code.split()).replace("-", "").lower()


def _matching_step(secret: str, code: str, after_step: int) -> int | None:
    """The time step (now ±1) whose TOTP is `code` and is later than `after_step`, else None."""
    if not secret or len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = _now_step()
    found = None
    for step in range(now - SKEW_STEPS, now + SKEW_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code) and step > after_step:
            found = step
    return found


def _recovery_hash(user_id: int, code: str) -> str:
    return hashlib.sha256(f"mfa-recovery:{user_id}:{code}".encode("utf-8")).hexdigest()


def new_recovery_codes() -> list[str]:
    """Ten codes like `k7pq-x3mz-w9rt` (60 bits each)."""
    out = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        out.append("-".join(raw[i:i + 4] for i in range(0, 12, 4)))
    return out


def _throttle_rule() -> ratelimit.Backoff:
    settings = get_settings()
    return ratelimit.Backoff(free=settings.login_max_failures, base=settings.login_delay_base_seconds,
                             cap=settings.login_delay_max_seconds,
                             window=dt.timedelta(minutes=settings.login_failure_window_minutes))


def _throttle_key(user_id: int) -> str:
    return f"mfa:user:{user_id}"


def enabled(session: Session, user_id: int) -> bool:
    row = session.get(UserMfa, user_id)
    return row is not None and row.enabled_at is not None


def verify(*, user_id: int, code: str, allow_recovery: bool = True, purpose: str = "login") -> str:
    """Check a TOTP code (or, with `allow_recovery`, an unused recovery code) of a user with
    two-factor sign-in on: "totp" or "recovery" when right; InvalidInput (field "code")
    when wrong; RateLimited while wrong codes must wait. Each code works once."""
    cleaned = _clean_code(code)
    key = _throttle_key(user_id)
    if ratelimit.enabled():
        with db.unit_of_work() as s:
            ratelimit.attempt(s, {key: _throttle_rule()})
    kind = None
    with db.unit_of_work() as s:
        row = s.exec(select(UserMfa).where(UserMfa.user_id == user_id).with_for_update()).first()
        if row is None or row.enabled_at is None:
            raise InvalidInput(NOT_ENABLED, field="code")
        secret, old_key = _open(row.secret_sealed, user_id)
        step = _matching_step(secret, cleaned, row.last_step) if cleaned else None
        if step is not None:
            # conditional: of two concurrent uses of one code only one moves the step on
            moved = s.exec(update(UserMfa).where(UserMfa.user_id == user_id, UserMfa.last_step < step)  # type: ignore[call-overload]
                           .values(last_step=step, **({"secret_sealed": seal(secret)} if old_key else {})))
            kind = "totp" if moved.rowcount == 1 else None
        elif allow_recovery and cleaned and len(cleaned) == 12:
            used = s.exec(update(MfaRecoveryCode).where(  # type: ignore[call-overload]
                MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.code_hash == _recovery_hash(user_id, cleaned),
                MfaRecoveryCode.used_at.is_(None)).values(used_at=utcnow()))  # type: ignore[union-attr]
            if used.rowcount == 1:
                kind = "recovery"
                left = s.exec(select(func.count()).select_from(MfaRecoveryCode).where(
                    MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))).one()  # type: ignore[union-attr]
                audit.record(s, actor_id=user_id, action="user.mfa_recovery_code_used", entity="user",
                             entity_id=user_id, data={"left": left, "purpose": purpose})
        if kind and ratelimit.enabled():
            ratelimit.clear(s, key)
    if kind is None:
        audit.record_now(actor_id=user_id, action="user.mfa_failed", entity="user", entity_id=user_id,
                         data={"purpose": purpose})
        raise InvalidInput(WRONG_CODE, field="code")
    return kind


# --- sign-in challenges --------------------------------------------------------------------

def _challenge_hash(challenge: str) -> str:
    return hashlib.sha256(challenge.encode("utf-8")).hexdigest()


def new_challenge(session: Session, *, user_id: int, ip: str | None, user_agent: str) -> str:
    """A challenge for a sign-in whose password was right (inside the caller's transaction);
    drops expired ones."""
    challenge = secrets.token_urlsafe(CHALLENGE_BYTES)
    now = utcnow()
    session.exec(delete(MfaChallenge).where(MfaChallenge.expires_at <= now))  # type: ignore[call-overload, arg-type]
    session.add(MfaChallenge(user_id=user_id, challenge_hash=_challenge_hash(challenge), ip=ip,
                             user_agent=user_agent[:300],
                             expires_at=now + dt.timedelta(minutes=get_settings().mfa_challenge_minutes)))
    return challenge


def purge_challenges(session: Session, *, before: dt.datetime) -> int:
    """Delete challenges that expired before `before` (housekeeping); how many went."""
    return session.exec(delete(MfaChallenge).where(MfaChallenge.expires_at < before)).rowcount or 0  # type: ignore[call-overload, arg-type]


def challenge_user(challenge: str) -> MfaChallenge:
    """The pending sign-in of a challenge; Unauthorized when unknown or expired."""
    if not isinstance(challenge, str) or not challenge or len(challenge) > 100:
        raise Unauthorized(CHALLENGE_INVALID)
    with db.read_session() as s:
        row = s.exec(select(MfaChallenge).where(MfaChallenge.challenge_hash == _challenge_hash(challenge))).first()
    if row is None or row.expires_at <= utcnow():
        raise Unauthorized(CHALLENGE_INVALID)
    return row


def consume_challenge(session: Session, challenge_id: int) -> bool:
    """Use a challenge up (inside the caller's transaction): True for exactly one caller."""
    return session.exec(delete(MfaChallenge).where(MfaChallenge.id == challenge_id)).rowcount == 1  # type: ignore[call-overload, arg-type]


# --- enrolment ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


def _signed_in(actor: Actor) -> int:
    if actor.is_guest or actor.id is None:
        raise Unauthorized()
    return actor.id


def _user(user_id: int) -> User:
    with db.read_session() as s:
        user = s.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized()
    return user


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (drawn here: no outside service sees it)."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, title="QR code", dark="#000", light="#fff")


def status(*, actor: Actor) -> dict:
    """Whether two-factor sign-in is on, and how many recovery codes are left."""
    user_id = _signed_in(actor)
    with db.read_session() as s:
        row = s.get(UserMfa, user_id)
        left = s.exec(select(func.count()).select_from(MfaRecoveryCode).where(
            MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))).one()  # type: ignore[union-attr]
    on = row is not None and row.enabled_at is not None
    return {"enabled": on, "enabled_at": row.enabled_at if on and row else None,
            "recovery_codes_left": left if on else 0}


def begin_enrolment(*, actor: Actor, password: str | None, enrolment_token: bool = False) -> Enrolment:
    """A new secret (not active until `confirm_enrolment`), replacing any unconfirmed one.
    Needs the password, except on the enrolment-only token a sign-in just gave (the password
    was proven seconds ago)."""
    user_id = _signed_in(actor)
    user = _user(user_id)
    if not enrolment_token:
        check_current_password(user_id=user_id, password_hash=user.password_hash, given=password,
                               field="password")
    secret = pyotp.random_base32()
    with db.unit_of_work() as s:
        row = s.exec(select(UserMfa).where(UserMfa.user_id == user_id).with_for_update()).first()
        if row is not None and row.enabled_at is not None:
            raise Conflict(ALREADY_ENABLED)
        if row is None:
            s.add(UserMfa(user_id=user_id, secret_sealed=seal(secret)))
        else:
            row.secret_sealed, row.created_at, row.last_step = seal(secret), utcnow(), 0
            s.add(row)
        audit.record(s, actor_id=user_id, action="user.mfa_enrolment_started", entity="user", entity_id=user_id)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email or user.username, issuer_name=get_settings().app_name)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))


def confirm_enrolment(*, actor: Actor, code: str, token_hash: str | None = None) -> list[str]:
    """Turn two-factor sign-in on with a first right code: ten new recovery codes (shown once).
    The enrolment-only token of this request (`token_hash`) becomes a full session."""
    user_id = _signed_in(actor)
    cleaned = _clean_code(code)
    key = _throttle_key(user_id)
    if ratelimit.enabled():
        with db.unit_of_work() as s:
            ratelimit.attempt(s, {key: _throttle_rule()})
    codes = new_recovery_codes()
    with db.unit_of_work() as s:
        row = s.exec(select(UserMfa).where(UserMfa.user_id == user_id).with_for_update()).first()
        if row is None:
            raise Conflict(NO_ENROLMENT)
        if row.enabled_at is not None:
            raise Conflict(ALREADY_ENABLED)
        secret, _old = _open(row.secret_sealed, user_id)
        step = _matching_step(secret, cleaned, row.last_step)
        if step is None:
            raise InvalidInput(WRONG_CODE, field="code")
        row.enabled_at, row.last_step, row.secret_sealed = utcnow(), step, seal(secret)
        s.add(row)
        s.exec(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))  # type: ignore[call-overload, arg-type]
        for c in codes:
            s.add(MfaRecoveryCode(user_id=user_id, code_hash=_recovery_hash(user_id, _clean_code(c))))
        if token_hash:
            s.exec(update(AuthToken).where(AuthToken.token_hash == token_hash, AuthToken.user_id == user_id)  # type: ignore[call-overload]
                   .values(scope=None))
            authcache.forget_after_commit(s, "token", token_hash)
        if ratelimit.enabled():
            ratelimit.clear(s, key)
        audit.record(s, actor_id=user_id, action="user.mfa_enabled", entity="user", entity_id=user_id)
    return codes


def new_recovery_codes_for(*, actor: Actor, code: str) -> list[str]:
    """Replace the recovery codes (the old ones stop working) after a right TOTP code."""
    user_id = _signed_in(actor)
    verify(user_id=user_id, code=code, allow_recovery=False, purpose="recovery_codes")
    codes = new_recovery_codes()
    with db.unit_of_work() as s:
        s.exec(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))  # type: ignore[call-overload, arg-type]
        for c in codes:
            s.add(MfaRecoveryCode(user_id=user_id, code_hash=_recovery_hash(user_id, _clean_code(c))))
        audit.record(s, actor_id=user_id, action="user.mfa_recovery_codes_renewed", entity="user", entity_id=user_id)
    return codes


def remove(session: Session, *, user_id: int) -> bool:
    """Delete a user's secret and recovery codes (inside the caller's transaction): True when
    two-factor sign-in was on."""
    row = session.get(UserMfa, user_id)
    was_on = row is not None and row.enabled_at is not None
    session.exec(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))  # type: ignore[call-overload, arg-type]
    session.exec(delete(UserMfa).where(UserMfa.user_id == user_id))  # type: ignore[call-overload, arg-type]
    session.exec(delete(MfaChallenge).where(MfaChallenge.user_id == user_id))  # type: ignore[call-overload, arg-type]
    return was_on


def disable(*, actor: Actor, password: str | None, code: str) -> None:
    """Turn two-factor sign-in off: needs the password and a code (TOTP or recovery)."""
    user_id = _signed_in(actor)
    user = _user(user_id)
    with db.read_session() as s:
        if not enabled(s, user_id):
            raise Conflict(NOT_ENABLED)
    check_current_password(user_id=user_id, password_hash=user.password_hash, given=password, field="password")
    verify(user_id=user_id, code=code, purpose="disable")
    with db.unit_of_work() as s:
        remove(s, user_id=user_id)
        audit.record(s, actor_id=user_id, action="user.mfa_disabled", entity="user", entity_id=user_id)
