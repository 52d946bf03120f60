"""Bookings that need the provider's approval (issue 24, point 2).

- bookables: `requires_approval`, `approval_expiry_hours` (None: APPROVAL_EXPIRY_HOURS).
- bookings: `approval_expires_at`, `approval_method`; `status` widened to 24 characters
  ("awaiting_approval" is 17).
- The new status holds capacity (models.booking.ACTIVE_STATUSES), so the two places the
  database counts active bookings itself learn it: the session counters' triggers
  (migration 0003) and the PostgreSQL exclusion backstop (migration 0002).

Revision ID: 0011
Revises: 0010
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CONSTRAINT = "ex_bookings_exclusive_no_overlap"
PG_UPDATE_TRIGGER = "trg_bookings_session_seats_upd"  # (migration 0003)
BEFORE = "('pending', 'confirmed')"
AFTER = "('pending', 'confirmed', 'awaiting_approval')"


def _pg_function(active: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION bookings_session_seats() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_sid integer;
    new_sid integer;
    old_q integer := 0;
    new_q integer := 0;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.session_id IS NOT NULL AND OLD.status IN {active} THEN
        old_sid := OLD.session_id;
        old_q := OLD.quantity;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.session_id IS NOT NULL AND NEW.status IN {active} THEN
        new_sid := NEW.session_id;
        new_q := NEW.quantity;
    END IF;
    IF old_sid IS NOT NULL AND old_sid = new_sid THEN
        IF new_q <> old_q THEN
            UPDATE event_sessions SET seats_taken = seats_taken + new_q - old_q WHERE id = new_sid;
        END IF;
    ELSIF old_sid IS NOT NULL AND new_sid IS NOT NULL THEN
        IF old_sid < new_sid THEN
            UPDATE event_sessions SET seats_taken = seats_taken - old_q WHERE id = old_sid;
            UPDATE event_sessions SET seats_taken = seats_taken + new_q WHERE id = new_sid;
        ELSE
            UPDATE event_sessions SET seats_taken = seats_taken + new_q WHERE id = new_sid;
            UPDATE event_sessions SET seats_taken = seats_taken - old_q WHERE id = old_sid;
        END IF;
    ELSIF old_sid IS NOT NULL THEN
        UPDATE event_sessions SET seats_taken = seats_taken - old_q WHERE id = old_sid;
    ELSIF new_sid IS NOT NULL THEN
        UPDATE event_sessions SET seats_taken = seats_taken + new_q WHERE id = new_sid;
    END IF;
    RETURN NULL;
END
$$
"""


def _sqlite_triggers(active: str) -> list[str]:
    return [
        f"""CREATE TRIGGER trg_bookings_session_seats_ins AFTER INSERT ON bookings
            WHEN NEW.session_id IS NOT NULL AND NEW.status IN {active}
            BEGIN UPDATE event_sessions SET seats_taken = seats_taken + NEW.quantity WHERE id = NEW.session_id; END""",
        f"""CREATE TRIGGER trg_bookings_session_seats_del AFTER DELETE ON bookings
            WHEN OLD.session_id IS NOT NULL AND OLD.status IN {active}
            BEGIN UPDATE event_sessions SET seats_taken = seats_taken - OLD.quantity WHERE id = OLD.session_id; END""",
        f"""CREATE TRIGGER trg_bookings_session_seats_upd AFTER UPDATE OF status, quantity, session_id ON bookings
            BEGIN
                UPDATE event_sessions SET seats_taken = seats_taken - OLD.quantity
                    WHERE id = OLD.session_id AND OLD.status IN {active};
                UPDATE event_sessions SET seats_taken = seats_taken + NEW.quantity
                    WHERE id = NEW.session_id AND NEW.status IN {active};
            END""",
    ]


def _sqlite_status_length(length: int) -> None:
    """SQLite: the declared length of bookings.status, in the stored schema text. SQLite
    never checks a VARCHAR's length (both are TEXT affinity), so the rows are untouched; a
    batch copy of the table instead would drop its triggers and partial indexes."""
    conn = op.get_bind()
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(replace(sql, 'status VARCHAR(16)', 'status VARCHAR(24)'), "
        "'status VARCHAR(24)', 'status VARCHAR(" + str(int(length)) + ")') WHERE type = 'table' AND name = 'bookings'")
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _count_as(active: str, status_length: int) -> None:
    """The database's own counts (session triggers, exclusion backstop) over `active`."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE bookings DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
        # (a column named in a trigger's UPDATE OF can't change type: the trigger goes and comes back)
        op.execute(f"DROP TRIGGER IF EXISTS {PG_UPDATE_TRIGGER} ON bookings")
        op.execute(f"ALTER TABLE bookings ALTER COLUMN status TYPE VARCHAR({status_length})")
        op.execute(f"CREATE TRIGGER {PG_UPDATE_TRIGGER} AFTER UPDATE OF status, quantity, session_id ON bookings "
                   "FOR EACH ROW WHEN (OLD.session_id IS NOT NULL OR NEW.session_id IS NOT NULL) "
                   "EXECUTE FUNCTION bookings_session_seats()")
        op.execute(f"ALTER TABLE bookings ADD CONSTRAINT {CONSTRAINT} "
                   "EXCLUDE USING gist (bookable_id WITH =, tstzrange(block_start_at, block_end_at, '[)') WITH &&) "
                   f"WHERE (exclusive AND status IN {active})")
        op.execute(_pg_function(active))
    else:
        _sqlite_status_length(status_length)
        for name in ("ins", "del", "upd"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_bookings_session_seats_{name}")
        for sql in _sqlite_triggers(active):
            op.execute(sql)


def upgrade() -> None:
    op.add_column("bookables", sa.Column("requires_approval", sa.Boolean(), nullable=False, server_default="0"))
    op.add_column("bookables", sa.Column("approval_expiry_hours", sa.Integer(), nullable=True))
    op.add_column("bookings", sa.Column("approval_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("bookings", sa.Column("approval_method", sa.String(length=16), nullable=True))
    _count_as(AFTER, 24)


def downgrade() -> None:
    # requests still waiting lapse: the older schema has no such status
    op.execute("UPDATE bookings SET status = 'cancelled', cancel_reason = 'approval_expired' "
               "WHERE status = 'awaiting_approval'")
    _count_as(BEFORE, 16)
    for table, column in (("bookings", "approval_method"), ("bookings", "approval_expires_at"),
                          ("bookables", "approval_expiry_hours"), ("bookables", "requires_approval")):
        # (SQLite ≥ 3.35 drops a column in place; a batch copy would lose the triggers)
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
