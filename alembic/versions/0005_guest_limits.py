"""Guest bookings can't hoard; guest manage links can be revoked (issue 20).

- `bookings.guest_ip`: a guest booking's client IP as a keyed hash, and indexes on the
  guests' email / IP, for the caps on active unpaid guest bookings.
- `bookings.manage_link_version`: bumped when a guest's manage link is re-issued; links
  signed for an older version stop working.
- `guest_booking_requests`: a guest's booking waiting for the email-address confirmation
  (GUEST_EMAIL_CONFIRMATION); it holds no capacity.

Columns are added in place (no table rebuild on SQLite, which would drop the triggers of
0003).

Revision ID: 0005
Revises: 0004
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("guest_ip", sa.String(length=32), nullable=True))
    op.add_column("bookings", sa.Column("manage_link_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_bookings_guest_email", "bookings", ["guest_email", "end_at"],
                    sqlite_where=sa.text("user_id IS NULL"), postgresql_where=sa.text("user_id IS NULL"))
    op.create_index("ix_bookings_guest_ip", "bookings", ["guest_ip", "end_at"],
                    sqlite_where=sa.text("guest_ip IS NOT NULL"), postgresql_where=sa.text("guest_ip IS NOT NULL"))
    op.create_table(
        "guest_booking_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bookable_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("guest_name", sa.String(length=200), nullable=False),
        sa.Column("guest_email", sa.String(length=254), nullable=False),
        sa.Column("guest_phone", sa.String(length=20), nullable=True),
        sa.Column("guest_ip", sa.String(length=32), nullable=True),
        sa.Column("notes", sa.String(length=2000), nullable=False),
        sa.Column("payment_method", sa.String(length=16), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["bookable_id"], ["bookables.id"]),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_guest_booking_requests_bookable_id", "guest_booking_requests", ["bookable_id"])
    op.create_index("ix_guest_booking_requests_email", "guest_booking_requests", ["guest_email", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_guest_booking_requests_email", table_name="guest_booking_requests")
    op.drop_index("ix_guest_booking_requests_bookable_id", table_name="guest_booking_requests")
    op.drop_table("guest_booking_requests")
    op.drop_index("ix_bookings_guest_ip", table_name="bookings")
    op.drop_index("ix_bookings_guest_email", table_name="bookings")
    op.drop_column("bookings", "manage_link_version")
    op.drop_column("bookings", "guest_ip")
