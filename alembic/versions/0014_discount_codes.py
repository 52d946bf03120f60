"""Discount codes (issue 26, point 1).

- `discount_codes`: the codes (normalised, unique), percent or fixed amount, validity,
  limits (total uses, uses per customer, minimum price, bookables, kinds), owner.
- `bookings`: `list_price_cents`, `discount_cents`, `discount_code_id` (indexed: a code's
  uses are counted from its bookings under the code row's lock, services/discounts.py).
- `guest_booking_requests.discount_code`: a guest's code waiting for the emailed link.

Revision ID: 0014
Revises: 0013
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0014"
down_revision: Union[str, None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "discount_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("percent_off", sa.Integer(), nullable=True),
        sa.Column("amount_off_cents", sa.Integer(), nullable=True),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("max_uses_per_customer", sa.Integer(), nullable=True),
        sa.Column("min_price_cents", sa.Integer(), nullable=False),
        sa.Column("service_ids", sa.JSON(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("percent_off IS NULL OR (percent_off >= 1 AND percent_off <= 100)",
                           name="ck_discount_codes_percent"),
        sa.CheckConstraint("amount_off_cents IS NULL OR amount_off_cents >= 1", name="ck_discount_codes_amount"),
        sa.CheckConstraint("(percent_off IS NULL) <> (amount_off_cents IS NULL)", name="ck_discount_codes_kind"),
        sa.ForeignKeyConstraint(["provider_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("discount_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discount_codes_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_discount_codes_provider_id"), ["provider_id"], unique=False)
    op.add_column("bookings", sa.Column("list_price_cents", sa.Integer(), nullable=True))
    op.add_column("bookings", sa.Column("discount_cents", sa.Integer(), server_default="0", nullable=False))
    op.add_column("bookings", sa.Column("discount_code_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_bookings_discount_code_id"), "bookings", ["discount_code_id"], unique=False)
    op.add_column("guest_booking_requests",
                  sa.Column("discount_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("guest_booking_requests", "discount_code")
    op.drop_index(op.f("ix_bookings_discount_code_id"), table_name="bookings")
    op.drop_column("bookings", "discount_code_id")
    op.drop_column("bookings", "discount_cents")
    op.drop_column("bookings", "list_price_cents")
    with op.batch_alter_table("discount_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discount_codes_provider_id"))
        batch_op.drop_index(batch_op.f("ix_discount_codes_code"))
    op.drop_table("discount_codes")
