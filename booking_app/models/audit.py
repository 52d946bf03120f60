"""Audit trail and API idempotency records."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    """One audited action. Append-only: no code path updates or deletes a row, and on
    PostgreSQL a trigger refuses it (migration 0006). `actor_id` keeps pointing at an
    anonymised user: accounts are never deleted, only turned into tombstones."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity", "entity", "entity_id"),
        # by action and time, covering the actor: sign-ins per period (active users report)
        Index("ix_audit_events_action_at", "action", "at", "actor_id"),
        # the admin's IP filter (audit trail page, GET /api/admin/audit)
        Index("ix_audit_events_ip_at", "ip", "at", sqlite_where=text("ip IS NOT NULL"),
              postgresql_where=text("ip IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    action: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))
    #: the client address of the action, when it came from a request (IPv6 fits in 45)
    ip: str | None = Field(default=None, max_length=45)


class IdempotencyRecord(SQLModel, table=True):
    """First result of a request made with an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=100)  # e.g. "booking:user:12" or "booking:guest:<email>"
    key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    resource_id: int | None = None
    response: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status_code: int | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
