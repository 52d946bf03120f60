"""Who may see and manage a bookable: the one rule the catalog, the slot queries and the
booking service share (kept below all three, so none of them imports another for it)."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session

from booking_app.i18n import N_
from booking_app.models import Bookable
from booking_app.services.actors import Actor
from booking_app.services.errors import Forbidden, NotFound


def can_manage(actor: Actor, bookable: Any) -> bool:
    """Admins manage every bookable, providers their own (`bookable` needs a provider_id)."""
    return actor.is_admin or (actor.is_provider and actor.id is not None and actor.id == bookable.provider_id)


def load_bookable(session: Session, bookable_id: Any, actor: Actor | None = None, *, manage: bool = False) -> Bookable:
    """The bookable, or NotFound (inactive ones are visible only to who may manage them);
    with `manage`, Forbidden unless the actor may manage it."""
    if isinstance(bookable_id, bool) or not isinstance(bookable_id, int):
        raise NotFound(N_("This service does not exist."))
    bookable = session.get(Bookable, bookable_id)
    if bookable is None:
        raise NotFound(N_("This service does not exist."))
    manager = actor is not None and can_manage(actor, bookable)
    if not bookable.is_active and not manager:
        raise NotFound(N_("This service does not exist."))
    if manage and not manager:
        if actor is not None and (actor.is_admin or actor.is_provider):
            raise Forbidden(N_("Only the provider of this service can change it."))
        raise Forbidden(N_("You are not allowed to do that."))
    return bookable
