"""Busy times from outside calendars (issue 25, point 2).

- `calendar_subscriptions`: a provider's iCalendar feed URL (optionally for one bookable),
  sealed basic-auth credentials, the conditional GET's validators (ETag, Last-Modified), the
  last sync's time and error, and the sync job's queue (`next_sync_at`, `claimed_until`).
- `calendar_busy_intervals`: the busy pieces (UTC, at most a day each) of the last good sync.

Revision ID: 0009
Revises: 0008
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: Union[str, None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "calendar_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("credentials_sealed", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("etag", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("last_modified", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("expanded_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["service_id"], ["bookables.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calendar_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_subscriptions_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_calendar_subscriptions_next_sync_at", ["next_sync_at"], unique=False)
    op.create_table(
        "calendar_busy_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("bookable_id", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["calendar_subscriptions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["provider_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["bookable_id"], ["bookables.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calendar_busy_intervals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_busy_intervals_subscription_id"), ["subscription_id"],
                              unique=False)
        batch_op.create_index("ix_calendar_busy_intervals_provider_start", ["provider_id", "start_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calendar_busy_intervals", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_busy_intervals_provider_start")
        batch_op.drop_index(batch_op.f("ix_calendar_busy_intervals_subscription_id"))
    op.drop_table("calendar_busy_intervals")
    with op.batch_alter_table("calendar_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_subscriptions_next_sync_at")
        batch_op.drop_index(batch_op.f("ix_calendar_subscriptions_owner_id"))
    op.drop_table("calendar_subscriptions")
