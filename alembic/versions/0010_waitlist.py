"""Waitlist with held offers (issue 24, point 1).

- `waitlist_entries`: who waits for a full slot or session, in order; an offer holds the
  freed seats as a pending booking (`booking_id`) until `offer_expires_at`; `answers`: the
  booking questions' answers given at join (the held booking takes them).
- `bookables.waitlist_offer_minutes` (override of WAITLIST_OFFER_MINUTES) and
  `bookables.waitlist_closed`.

Revision ID: 0010
Revises: 0009
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: Union[str, None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bookable_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("guest_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("guest_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("guest_phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.JSON(none_as_null=True), nullable=True),
        sa.CheckConstraint("quantity >= 1", name="ck_waitlist_entries_quantity"),
        sa.ForeignKeyConstraint(["bookable_id"], ["bookables.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["event_sessions.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.create_index("ix_waitlist_entries_slot", ["bookable_id", "start_at", "status", "id"], unique=False)
        batch_op.create_index("ix_waitlist_entries_provider", ["provider_id", "status", "start_at"], unique=False)
        batch_op.create_index("ix_waitlist_entries_user", ["user_id", "status"], unique=False)
        batch_op.create_index("ix_waitlist_entries_booking", ["booking_id"], unique=False)
        batch_op.create_index("ix_waitlist_entries_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("bookables", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waitlist_offer_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("waitlist_closed", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("bookables", schema=None) as batch_op:
        batch_op.drop_column("waitlist_closed")
        batch_op.drop_column("waitlist_offer_minutes")
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_waitlist_entries_created_at")
        batch_op.drop_index("ix_waitlist_entries_booking")
        batch_op.drop_index("ix_waitlist_entries_user")
        batch_op.drop_index("ix_waitlist_entries_provider")
        batch_op.drop_index("ix_waitlist_entries_slot")
    op.drop_table("waitlist_entries")
