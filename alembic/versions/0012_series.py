"""Recurring series (issue 24, point 3).

- `booking_series`: the rule a series was booked with (frequency, interval, count | until,
  by, mode), who booked it and how many seats each occurrence takes.
- `bookings.series_id`: the series a booking is an occurrence of (nullable, indexed, no
  foreign key: added and dropped in place, no table rebuild on SQLite, which would drop the
  triggers of 0003).

Revision ID: 0012
Revises: 0011
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: Union[str, None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "booking_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bookable_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("guest_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("frequency", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bookable_id"], ["bookables.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_booking_series_bookable_id", "booking_series", ["bookable_id"])
    op.create_index("ix_booking_series_user_id", "booking_series", ["user_id"])
    op.add_column("bookings", sa.Column("series_id", sa.Integer(), nullable=True))
    op.create_index("ix_bookings_series_id", "bookings", ["series_id"])


def downgrade() -> None:
    op.drop_index("ix_bookings_series_id", table_name="bookings")
    op.drop_column("bookings", "series_id")
    op.drop_index("ix_booking_series_user_id", table_name="booking_series")
    op.drop_index("ix_booking_series_bookable_id", table_name="booking_series")
    op.drop_table("booking_series")
