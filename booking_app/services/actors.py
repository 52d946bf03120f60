"""Who is acting: passed by the API and the UI into every service call that checks rights."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """A signed-in user (id + role), or a guest (id None, role "guest")."""

    id: int | None
    role: str  # "admin" | "provider" | "customer" | "guest"
    locale: str = "en"
    timezone: str = "UTC"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_provider(self) -> bool:
        return self.role == "provider"

    @property
    def is_guest(self) -> bool:
        return self.id is None

    @classmethod
    def guest(cls, locale: str = "en", timezone: str = "UTC") -> "Actor":
        return cls(id=None, role="guest", locale=locale, timezone=timezone)

    @classmethod
    def system(cls) -> "Actor":
        """Background jobs and the CLI: may do what an admin may."""
        return cls(id=None, role="admin")
