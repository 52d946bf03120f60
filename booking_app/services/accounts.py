"""User Service: accounts, profiles, roles, account deletion and data export (GDPR).

Authentication (tokens, login, password reset) lives in services/auth.py. Every function
that acts for someone takes `actor` and checks the rules itself, so the UI and the API
enforce the same ones.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import (
    ACTIVE_STATUSES,
    AuditEvent,
    AuthToken,
    Bookable,
    Booking,
    CalendarFeedToken,
    Notification,
    NotificationStatus,
    PasswordResetToken,
    Payment,
    Role,
    User,
    utcnow,
)
from booking_app.services import (audit, auth, authcache, clientip, mfa, outbox, passwords, ratelimit, sessions,
                                  validation, webhooks)
from booking_app.services.actors import Actor, require_admin
from booking_app.services.errors import Conflict, InvalidInput, NotFound, Unauthorized
from booking_app.services.feeds import revoke_disallowed_feeds
from booking_app.services.passwords import check_password_strength, hash_password

def create_user(
    *,
    username: str,
    email: str,
    password: str,
    role: str = Role.customer.value,
    full_name: str = "",
    phone: str | None = None,
    locale: str | None = None,
    timezone: str | None = None,
    actor_id: int | None = None,
    sign_up_ip: str | None = None,
    sign_up: bool = False,
) -> User:
    """A new account. `sign_up`: a visitor's own, limited per hour per client IP
    (`sign_up_ip`) and per email address once the input is valid (_limit_sign_ups)."""
    problems = validate_registration(username=username, email=email, password=password, full_name=full_name,
                                     phone=phone, locale=locale, timezone=timezone, role=role)
    if problems:
        raise next(iter(problems.values()))
    username = validation.username(username)
    email = validation.email(email)
    full_name = validation.text(full_name, field="full_name", max_length=200)
    phone = validation.phone(phone)
    locale = validation.locale(locale) or get_settings().default_locale
    timezone = validation.timezone(timezone) or get_settings().default_timezone
    if sign_up:
        _limit_sign_ups(email, sign_up_ip)
    password_hash = hash_password(password)
    try:
        return _insert_user(username=username, email=email, password_hash=password_hash, role=role,
                            full_name=full_name, phone=phone, locale=locale, timezone=timezone, actor_id=actor_id)
    except IntegrityError:
        # two concurrent sign-ups with the same name: the unique index decides
        raise Conflict(N_("That username or email is already registered."), field="username") from None


def validate_registration(*, username: str, email: str, password: str, full_name: str | None = None,
                          phone: str | None = None, locale: str | None = None, timezone: str | None = None,
                          role: str = Role.customer.value) -> dict[str, InvalidInput]:
    """Every problem of a new account's input at once, field -> error (empty: all valid), in
    the order create_user checks them: the sign-up form shows each next to its field, and
    create_user raises the first, so the rules live here only. Taken names need the database
    and are create_user's to report."""
    checks = (
        ("username", lambda: validation.username(username)),
        ("email", lambda: validation.email(email)),
        ("role", lambda: _check_role(role)),
        ("password", lambda: check_password_strength(password)),
        ("full_name", lambda: validation.text(full_name or "", field="full_name", max_length=200)),
        ("phone", lambda: validation.phone(phone)),
        ("locale", lambda: validation.locale(locale)),
        ("timezone", lambda: validation.timezone(timezone)),
    )
    problems: dict[str, InvalidInput] = {}
    for name, check in checks:
        try:
            check()
        except InvalidInput as exc:
            problems.setdefault(exc.field or name, exc)
    return problems


def _check_role(role: str) -> None:
    if role not in {r.value for r in Role}:
        raise InvalidInput(N_("Unknown role."), field="role")


def _insert_user(*, username: str, email: str, password_hash: str, role: str, full_name: str, phone: str | None,
                 locale: str, timezone: str, actor_id: int | None) -> User:
    with db.unit_of_work() as s:
        taken = s.exec(
            select(func.count()).select_from(User).where(
                (func.lower(User.username) == username.lower()) | (func.lower(User.email) == email.lower())
            )
        ).one()
        if taken:
            raise Conflict(N_("That username or email is already registered."), field="username")
        user = User(
            username=username,
            email=email,
            password_hash=password_hash,
            role=role,
            full_name=full_name,
            phone=phone,
            locale=locale,
            timezone=timezone,
        )
        s.add(user)
        s.flush()
        audit.record(s, actor_id=actor_id or user.id, action="user.created", entity="user", entity_id=user.id, data={"role": role})
    return user


# ---------------------------------------------------------------------------------------
# Profile, account deletion, data export, administration
# ---------------------------------------------------------------------------------------

class _Unset:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
REGISTER_WINDOW = dt.timedelta(hours=1)
MAX_PAGE = 200
ROLES = tuple(r.value for r in Role)


@dataclasses.dataclass(frozen=True)
class UserPage:
    items: list[User]
    total: int


def register(*, username: str, email: str, password: str, full_name: str | None = None, phone: str | None = None,
             locale: str | None = None, timezone: str | None = None, ip: str | None = None) -> User:
    """Self-service sign-up: always a customer, limited per client IP and email address."""
    return create_user(username=username, email=email, password=password, role=Role.customer.value,
                       full_name=full_name or "", phone=phone, locale=locale, timezone=timezone,
                       sign_up=True, sign_up_ip=ip)


def _limit_sign_ups(email: str, ip: str | None) -> None:
    """Count a valid sign-up attempt: at most REGISTER_MAX_PER_IP an hour per client IP and
    REGISTER_MAX_PER_EMAIL per address (successful or not), so sign-ups can't be scripted at
    volume nor used to probe at speed which addresses have accounts. RateLimited beyond."""
    if not ratelimit.enabled():
        return
    settings = get_settings()
    keys = {f"register:email:{email.lower()}": settings.register_max_per_email}
    if client := clientip.bucket(ip):
        keys[f"register:ip:{client}"] = settings.register_max_per_ip
    with db.unit_of_work() as s:
        for key, limit in keys.items():
            ratelimit.check(s, [key], limit=limit, window=REGISTER_WINDOW)
        ratelimit.hit(s, keys)


def _signed_in(actor: Actor) -> int:
    if actor.is_guest or actor.id is None:
        raise Unauthorized()
    return actor.id


def _load_user(s: Session, user_id: int, *, for_update: bool = False) -> User:
    stmt = select(User).where(User.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    user = s.exec(stmt).first()
    if user is None:
        raise NotFound(N_("User not found."))
    return user


WRONG_CURRENT_PASSWORD = passwords.WRONG_CURRENT_PASSWORD


def _check_current_password(user: User, current_password: str | None) -> None:
    passwords.check_current_password(user_id=user.id, password_hash=user.password_hash,  # type: ignore[arg-type]
                                     given=current_password)


def get_profile(*, actor: Actor) -> User:
    user_id = _signed_in(actor)
    with db.read_session() as s:
        user = _load_user(s, user_id)
    if not user.is_active:
        raise Unauthorized()
    return user


def update_profile(
    *,
    actor: Actor,
    full_name: Any = UNSET,
    email: Any = UNSET,
    phone: Any = UNSET,
    locale: Any = UNSET,
    timezone: Any = UNSET,
    notify_email: Any = UNSET,
    notify_sms: Any = UNSET,
    password: Any = UNSET,
    current_password: str | None = None,
    keep_token_hash: str | None = None,
) -> User:
    """Change one's own profile. A new email or password needs the current password;
    a new password ends every other session."""
    user_id = _signed_in(actor)
    changes: dict[str, Any] = {}
    if full_name is not UNSET:
        changes["full_name"] = validation.text(full_name, field="full_name", max_length=200)
    if email is not UNSET:
        changes["email"] = validation.email(email)
    if phone is not UNSET:
        changes["phone"] = validation.phone(phone)
    if locale is not UNSET:
        if locale is None:
            raise InvalidInput(N_("This language is not supported."), field="locale")
        changes["locale"] = validation.locale(locale)
    if timezone is not UNSET:
        if timezone is None:
            raise InvalidInput(N_("Unknown time zone."), field="timezone")
        changes["timezone"] = validation.timezone(timezone)
    for name, value in (("notify_email", notify_email), ("notify_sms", notify_sms)):
        if value is not UNSET:
            if not isinstance(value, bool):
                raise InvalidInput(N_("The input is not valid."), field=name)
            changes[name] = value
    new_hash = None
    if password is not UNSET:
        check_password_strength(password)
    with db.read_session() as s:
        current = _load_user(s, user_id)
    email_changed = "email" in changes and changes["email"].lower() != current.email.lower()
    if email_changed or password is not UNSET:
        _check_current_password(current, current_password)
    if password is not UNSET:
        new_hash = hash_password(password)
    if changes.get("notify_sms") and not (changes.get("phone", current.phone)):
        raise InvalidInput(N_("Add a phone number to receive text messages."), field="notify_sms")
    try:
        with db.unit_of_work() as s:
            user = _load_user(s, user_id, for_update=True)
            if not user.is_active:
                raise Unauthorized()
            if email_changed:
                taken = s.exec(select(func.count()).select_from(User).where(
                    func.lower(User.email) == changes["email"].lower(), User.id != user_id)).one()
                if taken:
                    raise Conflict(N_("That username or email is already registered."), field="email")
            for name, value in changes.items():
                setattr(user, name, value)
            if new_hash:
                user.password_hash = new_hash
                auth.revoke_all(s, user_id=user_id, keep_token_hash=keep_token_hash, reason="password_changed")
            s.add(user)
            authcache.forget_after_commit(s, "user", user_id)  # locale/timezone ride on the token
            fields = sorted(changes) + (["password"] if new_hash else [])
            audit.record(s, actor_id=user_id, action="user.profile_updated", entity="user", entity_id=user_id,
                         data={"fields": fields})
    except IntegrityError:
        raise Conflict(N_("That username or email is already registered."), field="email") from None
    return user


def _active_admins(s: Session, *, excluding: int) -> int:
    return s.exec(select(func.count()).select_from(User).where(
        User.role == Role.admin.value, User.is_active.is_(True), User.id != excluding)).one()  # type: ignore[attr-defined]


def delete_account(*, actor: Actor, current_password: str | None) -> None:
    """Delete one's own account (GDPR): personal data is erased, the user row is kept as an
    anonymous tombstone so that providers' past booking records stay consistent."""
    user_id = _signed_in(actor)
    with db.read_session() as s:
        current = _load_user(s, user_id)
    _check_current_password(current, current_password)
    now = utcnow()
    with db.unit_of_work() as s:
        user = _load_user(s, user_id, for_update=True)
        if user.role == Role.admin.value and _active_admins(s, excluding=user_id) == 0:
            raise Conflict(N_("You are the last administrator; make someone else an administrator first."))
        upcoming = s.exec(select(func.count()).select_from(Booking).where(
            or_(Booking.user_id == user_id, Booking.provider_id == user_id),
            Booking.status.in_(ACTIVE_STATUSES),  # type: ignore[attr-defined]
            Booking.end_at > now,
        )).one()
        if upcoming:
            raise Conflict(N_("Cancel your upcoming bookings before deleting your account."))
        tag = secrets.token_hex(6)
        user.username = f"deleted-{user_id}-{tag}"
        user.email = f"deleted-{user_id}-{tag}@deleted.invalid"
        user.full_name = ""
        user.phone = None
        user.password_hash = "!"  # matches no password
        user.notify_email = False
        user.notify_sms = False
        user.is_active = False
        s.add(user)
        # the provider's records keep the booking, without the customer's own words
        s.exec(update(Booking).where(Booking.user_id == user_id).values(notes="", guest_name=None, guest_email=None,
                                                                       guest_phone=None))
        s.exec(update(Bookable).where(Bookable.provider_id == user_id).values(is_active=False, updated_at=now))
        s.exec(update(Notification).where(Notification.user_id == user_id,
                                          Notification.status == NotificationStatus.pending.value)
               .values(status=NotificationStatus.cancelled.value))
        s.exec(update(Notification).where(Notification.user_id == user_id).values(to="", context={}))
        for table in (PasswordResetToken, CalendarFeedToken):
            s.exec(table.__table__.delete().where(table.user_id == user_id))  # type: ignore[attr-defined]
        mfa.remove(s, user_id=user_id)
        webhooks.forget_user(s, user_id)
        auth.revoke_all(s, user_id=user_id, reason="account_deleted")
        audit.record(s, actor_id=user_id, action="user.deleted", entity="user", entity_id=user_id)


def _row(obj: Any, *, exclude: set[str] | None = None) -> dict[str, Any]:
    return obj.model_dump(mode="json", exclude=exclude or set())


def export_user_data(*, actor: Actor) -> dict[str, Any]:
    """Everything stored about the signed-in user, as JSON-ready data (GDPR access)."""
    user_id = _signed_in(actor)
    with db.read_session() as s:
        user = _load_user(s, user_id)
        bookings = s.exec(select(Booking).where(Booking.user_id == user_id).order_by(Booking.id)).all()
        booking_ids = [b.id for b in bookings]
        payments = s.exec(select(Payment).where(Payment.booking_id.in_(booking_ids)).order_by(Payment.id)).all() \
            if booking_ids else []  # type: ignore[attr-defined]
        notifications = s.exec(select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)).all()
        bookables = s.exec(select(Bookable).where(Bookable.provider_id == user_id).order_by(Bookable.id)).all()
        tokens = s.exec(select(AuthToken).where(AuthToken.user_id == user_id).order_by(AuthToken.id)).all()
        events = s.exec(select(AuditEvent).where(AuditEvent.actor_id == user_id).order_by(AuditEvent.id)).all()
    two_factor = mfa.status(actor=actor)
    audit.record_now(actor_id=user_id, action="user.data_exported", entity="user", entity_id=user_id)
    return {
        "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
        "user": _row(user, exclude={"password_hash"}),
        "bookings": [_row(b) for b in bookings],
        "payments": [_row(p, exclude={"checkout_url"}) for p in payments],
        "notifications": [_row(n, exclude={"context"}) for n in notifications],
        "services": [_row(b) for b in bookables],
        "sessions": [_row(t, exclude={"token_hash"}) for t in tokens],
        "two_factor": {"enabled": two_factor["enabled"], "recovery_codes_left": two_factor["recovery_codes_left"],
                       "enabled_at": two_factor["enabled_at"].isoformat() if two_factor["enabled_at"] else None},
        "activity": [_row(e) for e in events],
    }


def list_users(*, actor: Actor, q: str | None = None, role: str | None = None, active: bool | None = None,
               limit: int = 50, offset: int = 0) -> UserPage:
    require_admin(actor, signed_in=True)
    if role is not None and role not in ROLES:
        raise InvalidInput(N_("Unknown role."), field="role")
    q = validation.text(q, field="q", max_length=200)
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    conditions = []
    if q:
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(func.lower(User.username).like(like, escape="\\"),
                              func.lower(User.email).like(like, escape="\\"),
                              func.lower(User.full_name).like(like, escape="\\")))
    if role:
        conditions.append(User.role == role)
    if active is not None:
        conditions.append(User.is_active.is_(active))  # type: ignore[attr-defined]
    with db.read_session() as s:
        total = s.exec(select(func.count()).select_from(User).where(*conditions)).one()
        items = s.exec(select(User).where(*conditions).order_by(User.id).offset(offset).limit(limit)).all()
    return UserPage(items=list(items), total=total)


def get_user(*, actor: Actor, user_id: int) -> User:
    require_admin(actor, signed_in=True)
    with db.read_session() as s:
        return _load_user(s, user_id)


def set_role(*, actor: Actor, user_id: int, role: str) -> User:
    """Change a user's role (a sensitive action: the admin re-authenticates)."""
    require_admin(actor, signed_in=True)
    if role not in ROLES:
        raise InvalidInput(N_("Unknown role."), field="role")
    sessions.require_recent_auth(actor)
    with db.unit_of_work() as s:
        user = _load_user(s, user_id, for_update=True)
        if user.role == role:
            return user
        if user.role == Role.admin.value and _active_admins(s, excluding=user_id) == 0:
            raise Conflict(N_("This is the last administrator; make someone else an administrator first."))
        old = user.role
        user.role = role
        s.add(user)
        authcache.forget_after_commit(s, "user", user_id)
        # a schedule feed (customer names) ends with the role that allowed it
        revoke_disallowed_feeds(s, user_id=user_id, role=role, active=user.is_active, actor_id=actor.id,
                                reason="role_changed")
        audit.record(s, actor_id=actor.id, action="user.role_changed", entity="user", entity_id=user_id,
                     data={"from": old, "to": role})
    return user


def set_active(*, actor: Actor, user_id: int, active: bool) -> User:
    """Deactivate (every token revoked at once) or reactivate a user."""
    require_admin(actor, signed_in=True)
    if not isinstance(active, bool):
        raise InvalidInput(N_("The input is not valid."), field="active")
    if not active:
        sessions.require_recent_auth(actor)
    with db.unit_of_work() as s:
        user = _load_user(s, user_id, for_update=True)
        if user.is_active == active:
            return user
        if not active and user.role == Role.admin.value and _active_admins(s, excluding=user_id) == 0:
            raise Conflict(N_("This is the last administrator; make someone else an administrator first."))
        if active and user.email.endswith("@deleted.invalid"):
            raise Conflict(N_("A deleted account cannot be reactivated."))
        user.is_active = active
        s.add(user)
        authcache.forget_after_commit(s, "user", user_id)
        if not active:
            auth.revoke_all(s, user_id=user_id, actor_id=actor.id, reason="deactivated")
            revoke_disallowed_feeds(s, user_id=user_id, role=user.role, active=False, actor_id=actor.id,
                                    reason="deactivated")
        audit.record(s, actor_id=actor.id, action="user.activated" if active else "user.deactivated",
                     entity="user", entity_id=user_id)
    return user


def two_factor_on(*, actor: Actor, user_id: int) -> bool:
    """Whether a user has two-factor sign-in on (admins: the user page's reset button)."""
    require_admin(actor, signed_in=True)
    with db.read_session() as s:
        return mfa.enabled(s, user_id)


def reset_2fa(*, actor: Actor, user_id: int) -> None:
    """An admin turns off another user's two-factor sign-in (a lost phone and recovery codes):
    the admin re-authenticates, the user's sessions end, the user is told by email; audited.
    NotFound for an unknown user, Conflict when it isn't on."""
    require_admin(actor, signed_in=True)
    sessions.require_recent_auth(actor)
    with db.unit_of_work() as s:
        user = _load_user(s, user_id, for_update=True)
        if not mfa.remove(s, user_id=user_id):
            raise Conflict(mfa.NOT_ENABLED)
        auth.revoke_all(s, user_id=user_id, actor_id=actor.id, reason="mfa_reset")
        outbox.enqueue(
            s, channel="email", to=user.email, template="mfa_reset", locale=user.locale,
            context={"username": user.username, "name": user.full_name or user.username,
                     "account_url": f"{get_settings().public_url.rstrip('/')}/account"},
            dedupe_key=f"mfa_reset:{user_id}:{utcnow().isoformat()}", user_id=user_id,
        )
        audit.record(s, actor_id=actor.id, action="user.mfa_reset", entity="user", entity_id=user_id)


def user_audit(*, actor: Actor, user_id: int, limit: int = 50, offset: int = 0) -> tuple[list[AuditEvent], int]:
    """The audit trail of one user: what they did and what was done to their account."""
    require_admin(actor, signed_in=True)
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    with db.read_session() as s:
        _load_user(s, user_id)
    page = audit.list_events(actor=actor, filters=audit.AuditFilters(user_id=user_id), limit=limit, offset=offset)
    return page.items, page.total
