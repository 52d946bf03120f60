"""Browser sign-in hand-offs: the single-use codes a browser trades for its HttpOnly
session cookie (services/browser_sessions.py).

Revision ID: 0004
Revises: 0003
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "browser_session_handoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sealed_token", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("browser_session_handoffs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_browser_session_handoffs_code_hash"), ["code_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_browser_session_handoffs_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_browser_session_handoffs_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("browser_session_handoffs")
