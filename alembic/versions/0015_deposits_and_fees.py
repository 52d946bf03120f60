"""Deposits, no-show and late-cancel fees (issue 26, points 2-3).

- `bookables`: the deposit asked (deposit_percent | deposit_cents) and the no-show and
  late-cancel fees.
- `bookings`: the deposit, the balance left after it, the fees, the Stripe customer whose card
  was saved with consent.
- `payments.purpose`: booking (the price or its deposit) | balance.
- `booking_fees`: one row per fee charged or due (services/fees.py).

Revision ID: 0015
Revises: 0014
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: Union[str, None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("bookables", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deposit_percent", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deposit_cents", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("no_show_fee_cents", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("late_cancel_fee_cents", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deposit_cents", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("balance_due_cents", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("fees_cents", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("stripe_customer_ref", sqlmodel.sql.sqltypes.AutoString(length=255),
                                      nullable=True))
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16),
                                      server_default="booking", nullable=False))
    op.create_table(
        "booking_fees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("payment_intent_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("checkout_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("checkout_url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id", "kind", name="uq_booking_fees_booking_kind"),
    )
    with op.batch_alter_table("booking_fees", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_fees_booking_id"), ["booking_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_fees_checkout_ref"), ["checkout_ref"], unique=False)
        batch_op.create_index("ix_booking_fees_created_status", ["created_at", "status", "currency", "amount_cents"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("booking_fees", schema=None) as batch_op:
        batch_op.drop_index("ix_booking_fees_created_status")
        batch_op.drop_index(batch_op.f("ix_booking_fees_checkout_ref"))
        batch_op.drop_index(batch_op.f("ix_booking_fees_booking_id"))
    op.drop_table("booking_fees")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("purpose")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("stripe_customer_ref")
        batch_op.drop_column("fees_cents")
        batch_op.drop_column("balance_due_cents")
        batch_op.drop_column("deposit_cents")
    with op.batch_alter_table("bookables", schema=None) as batch_op:
        batch_op.drop_column("late_cancel_fee_cents")
        batch_op.drop_column("no_show_fee_cents")
        batch_op.drop_column("deposit_cents")
        batch_op.drop_column("deposit_percent")
