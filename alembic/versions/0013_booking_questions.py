"""Booking questions and answers (issue 24, point 4).

- bookables: `questions` (JSON, null when none): the typed questions asked when booking.
- bookings: `answers` (JSON, null when none): a snapshot of the questions answered (id,
  type, label(s) at the time, value), so later edits of the questions never touch it.
- guest_booking_requests: `answers` (JSON): the checked answers, booked with the request.
See services/booking_questions.py and docs/booking-questions.md.

Revision ID: 0013
Revises: 0012
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = (("bookables", "questions"), ("bookings", "answers"), ("guest_booking_requests", "answers"))


def upgrade() -> None:
    for table, column in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
