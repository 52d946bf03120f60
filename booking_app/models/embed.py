"""Origins allowed to frame a provider's booking widget (issue 25, point 3; docs/embed.md).

One row per (provider, origin); the security middleware reads them for the /embed pages'
`Content-Security-Policy: frame-ancestors` (services/embed.py)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from booking_app.models.base import UTCDateTime, utcnow


class EmbedOrigin(SQLModel, table=True):
    """`origin`: a normalised `scheme://host[:port]` (services/embed.normalise_origin)."""

    __tablename__ = "embed_origins"
    __table_args__ = (UniqueConstraint("provider_id", "origin", name="uq_embed_origins_provider_origin"),)

    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    origin: str = Field(max_length=300)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
