"""Origins allowed to frame the booking widget (issue 25, point 3): `embed_origins`, one row
per (provider, origin) (models/embed.py).

Revision ID: 0016
Revises: 0015
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: Union[str, None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "embed_origins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_id", "origin", name="uq_embed_origins_provider_origin"),
    )
    op.create_index("ix_embed_origins_provider_id", "embed_origins", ["provider_id"])


def downgrade() -> None:
    op.drop_index("ix_embed_origins_provider_id", table_name="embed_origins")
    op.drop_table("embed_origins")
