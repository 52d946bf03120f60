"""Who is acting (passed by the API and the UI into every service call that checks rights),
the one home of who may manage or see a booking (`is_manager`, `is_viewer`) and of the
admin-only check (`require_admin`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from booking_app.services.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Actor:
    """A signed-in user (id + role), or a guest (id None, role "guest")."""

    id: int | None
    role: str  # "admin" | "provider" | "customer" | "guest"
    locale: str = "en"
    timezone: str = "UTC"
    #: SHA-256 of the session token this actor came with (None: a job, the CLI, a direct
    #: service call); re-authentication is checked against that session (services/sessions.py)
    token_hash: str | None = field(default=None, compare=False, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_provider(self) -> bool:
        return self.role == "provider"

    @property
    def is_guest(self) -> bool:
        return self.id is None

    @property
    def is_system(self) -> bool:
        """A job, a webhook handler or the CLI (Actor.system()): no person, so the machine
        reason codes it writes are its own (validation.reason)."""
        return self.id is None and self.role == "admin"

    @classmethod
    def guest(cls, locale: str = "en", timezone: str = "UTC") -> "Actor":
        return cls(id=None, role="guest", locale=locale, timezone=timezone)

    @classmethod
    def system(cls) -> "Actor":
        """Background jobs and the CLI: may do what an admin may."""
        return cls(id=None, role="admin")


def is_manager(actor: Actor, booking: Any) -> bool:
    """May manage `booking` (cancel at any time with a full refund, mark paid, refund):
    an admin, or the provider whose booking it is."""
    return actor.is_admin or (actor.is_provider and actor.id is not None and actor.id == booking.provider_id)


def is_viewer(actor: Actor, booking: Any) -> bool:
    """May see `booking` as a signed-in user: an admin, its customer or its provider
    (guests with a manage link are checked by the booking service)."""
    if actor.is_admin:
        return True
    return actor.id is not None and actor.id in (booking.user_id, booking.provider_id)


def require_admin(actor: Actor | None, message: str | None = None, *, signed_in: bool = False) -> None:
    """Raise Forbidden (with `message`, else the default text) unless `actor` is an admin.
    `signed_in`: a guest or an actor without a user id (a job) gets Unauthorized first, for
    services that answer "please sign in" before "not allowed" (the audit trail)."""
    if signed_in and (actor is None or actor.is_guest):
        raise Unauthorized()
    if actor is None or not actor.is_admin:
        raise Forbidden(message)


def require_staff(actor: Actor, message: str | None = None) -> int:
    """The id of a signed-in provider or admin (who manage their own webhook endpoints and
    discount codes; an admin everyone's); Forbidden (with `message`) for anyone else."""
    if actor.id is None or not (actor.is_admin or actor.is_provider):
        raise Forbidden(message)
    return actor.id
