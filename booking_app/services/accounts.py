"""User Service: accounts, authentication, roles."""
from __future__ import annotations

from sqlmodel import func, select

from booking_app import db
from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.models import Role, User
from booking_app.services import audit, validation
from booking_app.services.errors import Conflict, InvalidInput
from booking_app.services.passwords import hash_password

MIN_PASSWORD = 8
MAX_PASSWORD = 128


def check_password_strength(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(N_("Password must be at least {min} characters."), field="password", min=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(N_("Password must be at most {max} characters."), field="password", max=MAX_PASSWORD)
    from booking_app.services.common_passwords import is_common

    if is_common(password):
        raise InvalidInput(N_("This password is too common. Choose another one."), field="password")


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
) -> User:
    username = validation.username(username)
    email = validation.email(email)
    if role not in {r.value for r in Role}:
        raise InvalidInput(N_("Unknown role."), field="role")
    check_password_strength(password)
    full_name = validation.text(full_name, field="full_name", max_length=200)
    phone = validation.phone(phone)
    locale = validation.locale(locale) or get_settings().default_locale
    timezone = validation.timezone(timezone) or get_settings().default_timezone
    password_hash = hash_password(password)
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
