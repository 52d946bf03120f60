"""The claim step the sweeps share (relay's outbox, webhook deliveries, calendar syncs): take
due rows for this process so that no two processes ever work on the same row.

`claim_rows` picks the ids first (on PostgreSQL with `FOR UPDATE SKIP LOCKED`: rows another
process is claiming are skipped, never waited for), then takes them with one conditional
UPDATE … RETURNING that re-checks the condition (on SQLite the writer lock serialises
claims). The caller's unit of work commits it; the caller sets the lease in `values`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from booking_app import db


def claim_rows(s: Session, model: Any, due: Any, *, order_by: Sequence[Any], limit: int,
               values: dict[str, Any], returning: Sequence[Any], pick_only: Any = None) -> list[Any]:
    """Claim up to `limit` rows of `model` matching `due` (in `order_by` order): set `values`
    on them and return their `returning` columns. `pick_only`: a further condition for the
    pick alone (the update re-checks only `due`). No due rows: []."""
    pick = select(model.id).where(due)
    if pick_only is not None:
        pick = pick.where(pick_only)
    pick = pick.order_by(*order_by).limit(limit)
    if db.is_postgres(s):
        pick = pick.with_for_update(skip_locked=True)
    ids = list(s.exec(pick).all())
    if not ids:
        return []
    result = s.exec(  # type: ignore[call-overload]
        update(model).where(model.id.in_(ids), due).values(**values).returning(*returning))
    return list(result.all())
