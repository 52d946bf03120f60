"""An audit trail an admin can search (issue 23, point 5).

- `audit_events.ip`: the client address of the audited action when it had one, indexed
  with the time for the admin's IP filter.
- PostgreSQL: a trigger refuses UPDATE and DELETE on `audit_events` — the trail is
  append-only. (TRUNCATE, a table owner's maintenance statement, is not a row change and
  stays possible.) Users are never deleted, only anonymised in place (account deletion
  keeps a tombstone row), so the `actor_id` foreign key's ON DELETE SET NULL never fires.

The column is added in place (no table rebuild on SQLite).

Revision ID: 0006
Revises: 0005
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
_TRIGGER = """
CREATE TRIGGER audit_events_append_only
BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
"""


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("ip", sa.String(length=45), nullable=True))
    op.create_index("ix_audit_events_ip_at", "audit_events", ["ip", "at"],
                    sqlite_where=sa.text("ip IS NOT NULL"), postgresql_where=sa.text("ip IS NOT NULL"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_index("ix_audit_events_ip_at", table_name="audit_events")
    op.drop_column("audit_events", "ip")
