"""Audit trail: one row per state change, written in the same transaction."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session

from booking_app.models import AuditEvent


def record(session: Session, *, actor_id: int | None, action: str, entity: str, entity_id: Any,
           data: dict[str, Any] | None = None) -> None:
    session.add(AuditEvent(actor_id=actor_id, action=action, entity=entity, entity_id=str(entity_id), data=data or {}))
