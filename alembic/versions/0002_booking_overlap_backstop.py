"""PostgreSQL backstop against double booking: btree_gist + exclusion constraint.

Active (pending/confirmed) bookings of a capacity-1 room/service (`exclusive`) may not
overlap on their buffered block. The booking service already guarantees this under its
advisory lock; the constraint catches any write that goes behind its back. SQLite: no-op
(SQLite serialises writers with BEGIN IMMEDIATE).

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CONSTRAINT = "ex_bookings_exclusive_no_overlap"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute(
        f"ALTER TABLE bookings ADD CONSTRAINT {CONSTRAINT} "
        "EXCLUDE USING gist (bookable_id WITH =, tstzrange(block_start_at, block_end_at, '[)') WITH &&) "
        "WHERE (exclusive AND status IN ('pending', 'confirmed'))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE bookings DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
