"""The booking checks read only the bookings that compete, whatever the planner believes.

A new PostgreSQL table fills up faster than autovacuum analyses it (a sale opening on a
fresh install, or our own benchmark): the planner then thinks `bookings` tiny, and a
plan made then (psycopg prepares a statement after a few executions; PostgreSQL may keep
a generic plan for it) once read every booking of the whole day through the reports'
start_at index for each booking check — 2,500 rows filtered per check, 1.8 ms of
PostgreSQL instead of 0.05. These tests fill the table behind stale statistics and count
the booking rows each check reads (auto_explain, sent to this connection as notices).
"""
from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from booking_app.services import availability, booking_rows, bookings, capacity, slots
from tests.factories import ALL_WEEK, make_bookable, make_event, make_provider, next_day_at

pytestmark = pytest.mark.postgres

FILLER = 2000


def _fill(conn, *, bookable_id: int, provider_id: int, day: dt.datetime, session_id: int | None = None) -> None:
    """FILLER active bookings of `bookable_id` (session `session_id`) spread over `day`,
    inserted behind the statistics (ANALYZE ran on the empty table)."""
    conn.execute("ANALYZE bookings")
    conn.execute(
        "INSERT INTO bookings (reference, bookable_id, provider_id, session_id, locale, start_at, end_at,"
        " block_start_at, block_end_at, exclusive, quantity, status, price_cents, currency, notes,"
        " refund_due_cents, created_at, updated_at, version, sequence)"
        " SELECT 'F' || lpad(g::text, 12, '0'), %(b)s, %(p)s, %(s)s, 'en', t, t + interval '1 minute',"
        " t, t + interval '1 minute', false, 1, 'confirmed', 0, 'EUR', '', 0, now(), now(), 1, 0"
        " FROM generate_series(1, %(n)s) g, LATERAL (SELECT %(day)s::timestamptz + g * interval '40 seconds' AS t) x",
        {"b": bookable_id, "p": provider_id, "s": session_id, "n": FILLER, "day": day})


def _booking_rows_read(conn, sql: str, params: dict) -> int:
    """Booking rows the statement reads (returned or filtered by its scans), under a
    generic plan as a prepared statement gets; the most of two executions."""
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting, value in (("auto_explain.log_min_duration", "0"), ("auto_explain.log_analyze", "on"),
                           ("auto_explain.log_format", "json"), ("auto_explain.log_level", "notice"),
                           ("plan_cache_mode", "force_generic_plan")):
        conn.execute(f"SET {setting} = '{value}'")
    most = 0
    for _ in range(2):
        notices.clear()
        conn.execute(sql, params, prepare=True).fetchall()
        plans = [json.loads(n[n.index("{"):]) for n in notices if "{" in n]
        assert plans, notices

        def walk(node) -> int:
            own = 0
            if node.get("Relation Name") == "bookings":
                own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
            return own + sum(walk(child) for child in node.get("Plans", []))

        most = max(most, sum(walk(p["Plan"]) for p in plans))
    return most


def _raw(url: str):
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _check_params(b, shape, now: dt.datetime) -> dict:
    return {"bid": b.id, "pid": b.provider_id, "sid": shape.session_id, "excl": 0, "now": now,
            "lo": shape.block_start - slots.LOOKBACK, "hi": shape.block_end + slots.LOOKAHEAD,
            "a": shape.block_start, "z": shape.block_end, "q": 1}


@pytest.mark.parametrize("kind", ["room", "service"])
def test_a_slot_check_reads_only_its_own_bookings_behind_stale_statistics(pg_db, kind):
    provider = make_provider()
    ours = make_bookable(provider, kind=kind, weekly=ALL_WEEK)
    # the busy one: another provider's room, booked all day long (for a service, the busy
    # bookings belong to another provider: they don't compete with ours)
    busy = make_bookable(make_provider(), kind="room", weekly=ALL_WEEK)
    start = next_day_at(10)
    day = start.replace(hour=0)
    now = dt.datetime.now(dt.timezone.utc)
    with _raw(pg_db) as conn:
        _fill(conn, bookable_id=busy.id, provider_id=busy.provider_id, day=day)
        shape = slots.SlotShape(start, start + dt.timedelta(hours=1), start, start + dt.timedelta(hours=1), 1, None)
        # the first statement of a booking, with the slot check riding along
        first = booking_rows.people_query(ours.id, None, availability.slot_queries_pg(ours, start, now))
        recount_sql = capacity.PG_CHECK_SERVICE if kind == "service" else capacity.PG_CHECK_ROOM
        assert _booking_rows_read(conn, *first) <= 5
        assert _booking_rows_read(conn, recount_sql, _check_params(ours, shape, now)) <= 5


def test_a_session_recount_reads_only_that_sessions_bookings_behind_stale_statistics(pg_db):
    start = next_day_at(10)
    event, (ours, busy) = make_event(sessions=[start, start + dt.timedelta(days=1)], capacity=5000)
    now = dt.datetime.now(dt.timezone.utc)
    with _raw(pg_db) as conn:
        _fill(conn, bookable_id=event.id, provider_id=event.provider_id, day=start + dt.timedelta(days=1), session_id=busy.id)
        shape = slots.SlotShape(start, start + dt.timedelta(hours=1), start, start + dt.timedelta(hours=1),
                                       5000, ours.id)
        assert _booking_rows_read(conn, *booking_rows.people_query(event.id, None,
                                                                 availability.slot_queries_pg(event, start, now))) <= 5
        assert _booking_rows_read(conn, capacity.PG_CHECK_SESSION, _check_params(event, shape, now)) <= 5


def test_the_first_statement_reads_the_slot_check_rows_the_separate_queries_would(pg_db):
    """The slot check rides along in a booking's first statement (a lateral join for one
    row, a JSON array for several): what it hands back is what the slot statements return
    run one by one — for rooms with hours and an exception, a service, an event with and
    without its session, booked or not — so the check decides the same."""
    from booking_app import db
    from booking_app.services import bookings as svc
    from tests.factories import actor_for, make_customer

    start = next_day_at(10)
    day = start.date().isoformat()
    room = make_bookable(kind="room", capacity=3, exceptions=[{"date": day, "start": "09:00", "end": "12:00"}])
    closed = make_bookable(kind="room", exceptions=[{"date": day, "closed": True}])
    service = make_bookable(kind="service", buffer_before_minutes=15)
    event, _ = make_event(sessions=[start], capacity=4)
    customer = make_customer()
    svc.book(actor=actor_for(customer), service_id=room.id, start=start, quantity=2)
    svc.book(actor=actor_for(customer), service_id=event.id, start=start)
    now = dt.datetime.now(dt.timezone.utc)
    cases = [(room, start), (closed, start), (service, start), (event, start), (event, start + dt.timedelta(hours=1))]
    for b, at in cases:
        with db.unit_of_work() as s:
            ahead = availability.slot_queries_pg(b, at, now, 2)
            block, _day, statements = availability._slot_queries(b, at, now, 2)
            separately = availability._pg_pipeline(s, statements)
            pg = s.connection().connection.driver_connection
            row = pg.execute(*booking_rows.people_query(b.id, None, ahead), binary=True).fetchone()
            together = booking_rows.slot_rows(row, ahead)
            # (times come back as text from the JSON array: the slot check parses either)
            normal = [[tuple(availability._as_time(v) if isinstance(v, str) else v for v in r) for r in rows]
                      for rows in together]
            assert [sorted(rows, key=str) for rows in normal] == \
                [sorted(map(tuple, rows), key=str) for rows in separately], (b.kind, at)
            assert separately[0] or b.kind == "event", b.kind  # (the hours were read)
