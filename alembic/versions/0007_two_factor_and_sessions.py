"""Two-factor sign-in and staff sessions (issue 23, points 1-4).

- `auth_tokens` gains what a sessions list and the staff timeouts need: `last_seen_at`,
  `reauth_at` (last password or code proven again), the device (`user_agent`) and `ip` it
  signed in from, and `scope` ("mfa_enrol": a token that may only enrol in two-factor sign-in).
- `user_mfa`: one sealed TOTP secret per user and the last time step accepted.
- `mfa_recovery_codes`: hashed single-use recovery codes.
- `mfa_challenges`: sign-ins waiting for their code (hashed challenge, minutes long).

Columns are added in place (no table rebuild on SQLite); existing tokens keep working.

Revision ID: 0007
Revises: 0006
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: Union[str, None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("auth_tokens", sa.Column("reauth_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("auth_tokens", sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=300),
                                           nullable=False, server_default=""))
    op.add_column("auth_tokens", sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True))
    op.add_column("auth_tokens", sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.create_table(
        "user_mfa",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_sealed", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mfa_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mfa_recovery_codes_user_id"), ["user_id"], unique=False)
    op.create_table(
        "mfa_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("challenge_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mfa_challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mfa_challenges_challenge_hash"), ["challenge_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_mfa_challenges_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mfa_challenges_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("mfa_challenges")
    op.drop_table("mfa_recovery_codes")
    op.drop_table("user_mfa")
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        for column in ("scope", "ip", "user_agent", "reauth_at", "last_seen_at"):
            batch_op.drop_column(column)
