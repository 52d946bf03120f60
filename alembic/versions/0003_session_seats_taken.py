"""Seats taken per event session, kept by the database.

`event_sessions.seats_taken` is the sum of `quantity` over the session's bookings whose
status is pending or confirmed, maintained by triggers on `bookings` (inserts, deletes,
and updates of status, quantity or session) in the same transaction as the change: it is
never out of step with the rows it counts, whatever code path — or hand-written SQL —
changes them. A pending booking whose hold has expired but is not yet swept is still in
it, so the counter can only over-state what is in use: a booking that fits by the counter
fits; one that does not is checked against the bookings themselves (services/bookings.py).
The counter row is also where bookings of one session queue (its row lock, taken by the
trigger and held to COMMIT): the re-count of a session costs the same with 5 or 50,000
bookings sold.

Revision ID: 0003
Revises: 0002
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ACTIVE = "('pending', 'confirmed')"

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION bookings_session_seats() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_sid integer;
    new_sid integer;
    old_q integer := 0;
    new_q integer := 0;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.session_id IS NOT NULL AND OLD.status IN {ACTIVE} THEN
        old_sid := OLD.session_id;
        old_q := OLD.quantity;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.session_id IS NOT NULL AND NEW.status IN {ACTIVE} THEN
        new_sid := NEW.session_id;
        new_q := NEW.quantity;
    END IF;
    IF old_sid IS NOT NULL AND old_sid = new_sid THEN
        IF new_q <> old_q THEN
            UPDATE event_sessions SET seats_taken = seats_taken + new_q - old_q WHERE id = new_sid;
        END IF;
    ELSIF old_sid IS NOT NULL AND new_sid IS NOT NULL THEN
        -- moved between sessions: both rows, locked in id order (two such moves in
        -- opposite directions must not wait on each other)
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

# three triggers, so that their WHEN (checked without calling the function) lets the
# bookings of rooms and services through at no cost
PG_TRIGGERS = {
    "trg_bookings_session_seats_ins": "AFTER INSERT ON bookings FOR EACH ROW WHEN (NEW.session_id IS NOT NULL)",
    "trg_bookings_session_seats_upd": ("AFTER UPDATE OF status, quantity, session_id ON bookings FOR EACH ROW "
                                       "WHEN (OLD.session_id IS NOT NULL OR NEW.session_id IS NOT NULL)"),
    "trg_bookings_session_seats_del": "AFTER DELETE ON bookings FOR EACH ROW WHEN (OLD.session_id IS NOT NULL)",
}

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER trg_bookings_session_seats_ins AFTER INSERT ON bookings
        WHEN NEW.session_id IS NOT NULL AND NEW.status IN {ACTIVE}
        BEGIN UPDATE event_sessions SET seats_taken = seats_taken + NEW.quantity WHERE id = NEW.session_id; END""",
    f"""CREATE TRIGGER trg_bookings_session_seats_del AFTER DELETE ON bookings
        WHEN OLD.session_id IS NOT NULL AND OLD.status IN {ACTIVE}
        BEGIN UPDATE event_sessions SET seats_taken = seats_taken - OLD.quantity WHERE id = OLD.session_id; END""",
    f"""CREATE TRIGGER trg_bookings_session_seats_upd AFTER UPDATE OF status, quantity, session_id ON bookings
        BEGIN
            UPDATE event_sessions SET seats_taken = seats_taken - OLD.quantity
                WHERE id = OLD.session_id AND OLD.status IN {ACTIVE};
            UPDATE event_sessions SET seats_taken = seats_taken + NEW.quantity
                WHERE id = NEW.session_id AND NEW.status IN {ACTIVE};
        END""",
]


def upgrade() -> None:
    with op.batch_alter_table("event_sessions") as batch:
        batch.add_column(sa.Column("seats_taken", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE event_sessions SET seats_taken = coalesce((SELECT sum(b.quantity) FROM bookings b "
        f"WHERE b.session_id = event_sessions.id AND b.status IN {ACTIVE}), 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for name, spec in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {spec} EXECUTE FUNCTION bookings_session_seats()")
    else:
        for sql in SQLITE_TRIGGERS:
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON bookings")
        op.execute("DROP FUNCTION IF EXISTS bookings_session_seats()")
    else:
        for name in ("ins", "del", "upd"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_bookings_session_seats_{name}")
    with op.batch_alter_table("event_sessions") as batch:
        batch.drop_column("seats_taken")
