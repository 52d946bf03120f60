"""Who may see and manage a bookable: the one rule the catalog, the slot queries and the
booking service share (kept below all three, so none of them imports another for it); and
the same rule for the other rows a provider owns (webhook endpoints, discount codes,
outside calendars): `load_owned`."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from booking_app import db
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


def load_owned(session: Session, model: Any, row_id: Any, actor: Actor, *, owner: str, not_found: str,
               lock: bool = False) -> Any:
    """The `model` row `row_id` for its owner (its `owner` column holds the actor's id) or an
    admin; NotFound(`not_found`) for anyone else, for an id that is no int and for no such row
    (no hint that someone else's exists). `lock`: FOR UPDATE on PostgreSQL."""
    if isinstance(row_id, bool) or not isinstance(row_id, int) or actor.id is None:
        raise NotFound(not_found)
    stmt = select(model).where(model.id == row_id)
    if lock and db.is_postgres(session):
        stmt = stmt.with_for_update()
    row = session.exec(stmt).first()
    if row is None or not (actor.is_admin or getattr(row, owner) == actor.id):
        raise NotFound(not_found)
    return row
