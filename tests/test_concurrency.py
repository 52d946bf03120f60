"""No double booking under concurrency, on SQLite and PostgreSQL.

Threads race through the real booking service (own connections from the pool). Every
attempt must end as a success, NotAvailable or Busy — never another exception — and the
database must never hold more active seats than the capacity.
"""
from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Booking
from booking_app.services import booking_queries, bookings, capacity, catalog
from booking_app.services.actors import Actor
from booking_app.services.errors import Busy, NotAvailable
from tests.factories import ALL_WEEK, actor_for, make_bookable, make_event, make_provider, next_day_at

UTC = dt.timezone.utc


def race(n: int, attempt, *, timeout: float = 60.0):
    """Run attempt(i) in n threads released together; → (outcomes Counter, results, elapsed s)."""
    barrier = threading.Barrier(n)
    outcomes: list[str] = [""] * n
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = attempt(i)
            outcomes[i] = "ok"
        except NotAvailable:
            outcomes[i] = "not_available"
        except Busy:
            outcomes[i] = "busy"
        except Exception as exc:  # noqa: BLE001 - the test reports any other kind
            outcomes[i] = f"error:{type(exc).__name__}:{exc}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    elapsed = time.perf_counter() - t0
    assert not any(t.is_alive() for t in threads), "a booking attempt hung"
    return Counter(o.split(":")[0] if o.startswith("error") else o for o in outcomes), results, outcomes, elapsed


def unexpected(outcomes: list[str]):
    """For an assertion's message: the attempts that ended in another exception, in full (a
    list of 40 outcomes is cut short), else how they ended."""
    return [o for o in outcomes if o.startswith("error")] or Counter(outcomes)


def guest_book(bookable_id: int, start: dt.datetime, quantity: int = 1):
    def attempt(i: int):
        return bookings.book(actor=Actor.guest(), service_id=bookable_id, start=start, quantity=quantity,
                             guest={"name": f"Guest {i}", "email": f"guest{i}-{random.random():.6f}@example.com"})
    return attempt


def active_rows(bookable_id: int) -> list[Booking]:
    with db.read_session() as s:
        return list(s.exec(select(Booking).where(Booking.bookable_id == bookable_id,
                                                 Booking.status.in_(("pending", "confirmed")))).all())


def report(capsys, label: str, db_url: str, n: int, elapsed: float, counts: Counter) -> None:
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    with capsys.disabled():
        print(f"\n[figure] {label} on {kind}: {n} attempts in {elapsed * 1000:.0f} ms = {n / elapsed:.0f} "
              f"booking attempts/s ({dict(counts)})")


def test_50_threads_one_capacity_1_slot(db_url, capsys):
    room = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(10)
    counts, results, outcomes, elapsed = race(50, guest_book(room.id, start))
    assert counts["ok"] == 1, unexpected(outcomes)
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 50, unexpected(outcomes)
    rows = active_rows(room.id)
    assert len(rows) == 1 and rows[0].id == next(r for r in results if r is not None).id
    report(capsys, "50-way race for one capacity-1 slot", db_url, 50, elapsed, counts)


def test_50_threads_for_a_5_seat_session(db_url, capsys):
    start = next_day_at(18)
    event, _ = make_event(sessions=[start], capacity=5)
    counts, _results, outcomes, elapsed = race(50, guest_book(event.id, start))
    assert counts["ok"] == 5, unexpected(outcomes)
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 50, unexpected(outcomes)
    assert sum(r.quantity for r in active_rows(event.id)) == 5
    report(capsys, "50-way race for a 5-seat session", db_url, 50, elapsed, counts)


def test_mixed_quantities_never_exceed_capacity(db_url):
    start = next_day_at(18)
    event, _ = make_event(sessions=[start], capacity=12)
    rnd = random.Random(7)
    quantities = [rnd.randint(1, 4) for _ in range(30)]

    def attempt(i: int):
        return bookings.book(actor=Actor.guest(), service_id=event.id, start=start, quantity=quantities[i],
                             guest={"name": "G", "email": f"mixed{i}@example.com"})

    counts, results, outcomes, _ = race(30, attempt)
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 30, unexpected(outcomes)
    sold = sum(r.quantity for r in results if r is not None)
    assert sold == sum(r.quantity for r in active_rows(event.id))
    assert 12 - 3 <= sold <= 12  # someone always fits until fewer than 4 seats are left... or busy
    # whatever is left can still be sold exactly
    left = 12 - sold
    if left:
        bookings.book(actor=Actor.guest(), service_id=event.id, start=start, quantity=left,
                      guest={"name": "G", "email": "last@example.com"})
    assert sum(r.quantity for r in active_rows(event.id)) == 12


def _assert_no_overlap(rows: list[Booking]) -> None:
    rows = sorted(rows, key=lambda r: r.block_start_at)
    for a, b in zip(rows, rows[1:]):
        assert a.block_end_at <= b.block_start_at, (a.start_at, a.end_at, b.start_at, b.end_at)


def test_overlapping_different_length_bookings_on_one_room_never_overlap(db_url):
    provider = make_provider()
    room = make_bookable(provider, weekly=ALL_WEEK, duration_minutes=90, buffer_after_minutes=10)
    day_start = next_day_at(0)
    # some 90-minute bookings first ...
    for h in (1, 6, 13):
        bookings.book(actor=Actor.guest(), service_id=room.id, start=day_start + dt.timedelta(minutes=90 * h),
                      guest={"name": "G", "email": f"long{h}@example.com"})
    # ... then the room is re-cut into 25-minute slots and 40 clients race for random ones
    catalog.update_bookable(actor=actor_for(provider), bookable_id=room.id, duration_minutes=25)
    rnd = random.Random(3)
    starts = [day_start + dt.timedelta(minutes=25 * rnd.randint(0, 57)) for _ in range(40)]
    counts, _r, outcomes, _ = race(40, lambda i: bookings.book(
        actor=Actor.guest(), service_id=room.id, start=starts[i], guest={"name": "G", "email": f"s{i}@example.com"}))
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 40, unexpected(outcomes)
    assert counts["ok"] >= 1
    _assert_no_overlap(active_rows(room.id))


def test_one_provider_two_services_of_different_lengths_never_overlap(db_url):
    provider = make_provider()
    short = make_bookable(provider, kind="service", weekly=ALL_WEEK, duration_minutes=30)
    long = make_bookable(provider, kind="service", weekly=ALL_WEEK, duration_minutes=75)
    day_start = next_day_at(0)
    rnd = random.Random(11)
    plan = [(short.id, day_start + dt.timedelta(minutes=30 * rnd.randint(0, 20))) if i % 2 else
            (long.id, day_start + dt.timedelta(minutes=75 * rnd.randint(0, 8))) for i in range(40)]
    counts, _r, outcomes, _ = race(40, lambda i: bookings.book(
        actor=Actor.guest(), service_id=plan[i][0], start=plan[i][1], guest={"name": "G", "email": f"p{i}@example.com"}))
    assert counts["ok"] + counts["not_available"] + counts["busy"] == 40, unexpected(outcomes)
    with db.read_session() as s:
        rows = list(s.exec(select(Booking).where(Booking.provider_id == provider.id,
                                                 Booking.status.in_(("pending", "confirmed")))).all())
    assert len(rows) >= 2
    _assert_no_overlap(rows)


def hold_racers(monkeypatch, n: int) -> None:
    """Hold every transaction at capacity.RACE_HOOK (between its insert and its re-count)
    until `n` racers are there: a deterministic interleaving for the control tests (after
    5 s the barrier breaks and lets them go)."""
    barrier = threading.Barrier(n, timeout=5)

    def hook() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass

    monkeypatch.setattr(capacity, "RACE_HOOK", hook)


@pytest.fixture
def no_lock(monkeypatch):
    """The control: skip the advisory lock, and hold every transaction between its insert
    and its re-count until all racers have inserted (deterministic interleaving)."""
    def install(n: int, locking: bool) -> None:
        monkeypatch.setattr(capacity, "LOCKING", locking)
        hold_racers(monkeypatch, n)
    return install


@pytest.mark.postgres
def test_control_without_the_lock_the_race_oversells(pg_db, no_lock):
    """Proves the concurrency tests can fail: with the lock switched off the same race sells
    more seats than exist. (A room with 5 places, so the exclusion constraint, which only
    covers capacity-1 bookables, is not involved. SQLite can't be shown racing: its
    BEGIN IMMEDIATE is the lock, one writer at a time.)"""
    n = 10  # below the pool size so that every racer holds a connection at the barrier
    start = next_day_at(15)
    room = make_bookable(weekly=ALL_WEEK, capacity=5)
    no_lock(n, locking=False)
    counts, _r, outcomes, _ = race(n, guest_book(room.id, start))
    assert counts["ok"] > 5, outcomes  # oversold
    assert sum(r.quantity for r in active_rows(room.id)) > 5


@pytest.mark.postgres
def test_control_with_the_lock_same_interleaving_sells_exactly_capacity(pg_db, no_lock):
    n = 10
    start = next_day_at(15)
    room = make_bookable(weekly=ALL_WEEK, capacity=5)
    no_lock(n, locking=True)
    counts, _r, outcomes, _ = race(n, guest_book(room.id, start))
    assert counts["ok"] == 5, unexpected(outcomes)
    assert sum(r.quantity for r in active_rows(room.id)) == 5


@pytest.fixture
def session_counter(pg_db):
    """Switch the session counter's trigger (migration 0003) off or on for a control."""
    import psycopg

    def switch(on: bool) -> None:
        with psycopg.connect(pg_db.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            for name in ("ins", "upd", "del"):
                conn.execute(f"ALTER TABLE bookings {'ENABLE' if on else 'DISABLE'} TRIGGER trg_bookings_session_seats_{name}")
    yield switch
    switch(True)


@pytest.mark.postgres
def test_control_without_the_session_counter_the_race_oversells(pg_db, no_lock, session_counter):
    """An event session's bookings queue on its counter row, which the trigger locks when
    it adds their seats (no advisory lock): with the trigger off, the same race oversells."""
    n = 10
    start = next_day_at(18)
    event, _ = make_event(sessions=[start], capacity=5)
    session_counter(False)
    no_lock(n, locking=True)
    counts, _r, outcomes, _ = race(n, guest_book(event.id, start))
    assert counts["ok"] > 5, outcomes  # oversold
    assert sum(r.quantity for r in active_rows(event.id)) > 5


@pytest.mark.postgres
def test_control_with_the_session_counter_same_interleaving_sells_exactly_capacity(pg_db, no_lock, session_counter):
    n = 10
    start = next_day_at(18)
    event, _ = make_event(sessions=[start], capacity=5)
    no_lock(n, locking=True)
    counts, _r, outcomes, _ = race(n, guest_book(event.id, start))
    assert counts["ok"] == 5, unexpected(outcomes)
    assert sum(r.quantity for r in active_rows(event.id)) == 5


@pytest.mark.postgres
def test_exclusion_constraint_rejects_an_overlap_inserted_behind_the_service(pg_db):
    import psycopg

    room = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(10)
    bk = bookings.book(actor=Actor.guest(), service_id=room.id, start=start, guest={"name": "G", "email": "g@example.com"})
    raw = pg_db.replace("postgresql+psycopg://", "postgresql://")
    sql = ("INSERT INTO bookings (reference, bookable_id, provider_id, locale, start_at, end_at, block_start_at, "
           "block_end_at, exclusive, quantity, status, price_cents, currency, notes, refund_due_cents, created_at, "
           "updated_at, version, sequence) VALUES (%s, %s, %s, 'en', %s, %s, %s, %s, %s, 1, %s, 0, 'EUR', '', 0, "
           "now(), now(), 1, 0)")
    with psycopg.connect(raw, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ExclusionViolation):
            conn.execute(sql, ("RAWOVER1", room.id, bk.provider_id, start + dt.timedelta(minutes=30),
                               start + dt.timedelta(minutes=90), start + dt.timedelta(minutes=30),
                               start + dt.timedelta(minutes=90), True, "confirmed"))
        # not overlapping, or cancelled: accepted
        conn.execute(sql, ("RAWOK001", room.id, bk.provider_id, start + dt.timedelta(hours=1),
                           start + dt.timedelta(hours=2), start + dt.timedelta(hours=1),
                           start + dt.timedelta(hours=2), True, "confirmed"))
        conn.execute(sql, ("RAWOK002", room.id, bk.provider_id, start, start + dt.timedelta(hours=1), start,
                           start + dt.timedelta(hours=1), True, "cancelled"))


def _room_with_a_lapsed_hold(monkeypatch, **env: str):
    """A paid room whose slot tomorrow at 10:00 has a card payment's hold, lapsed by `later`
    but not yet swept → (room, start, the hold, later). `env`: more settings."""
    from booking_app.config import reset_settings_cache

    for name, value in {"STRIPE_SECRET_KEY": "sk_test_x", **env}.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    room = make_bookable(weekly=ALL_WEEK, price_cents=1000)
    start = next_day_at(10)
    now = dt.datetime.now(UTC)
    held = bookings.book(actor=Actor.guest(), service_id=room.id, start=start, payment_method="card",
                         guest={"name": "G", "email": "held@example.com"}, now=now)
    assert held.status == "pending"
    return room, start, held, now + dt.timedelta(minutes=16)


def test_expired_unswept_hold_does_not_block_a_new_booking(db_url, monkeypatch):
    room, start, held, later = _room_with_a_lapsed_hold(monkeypatch)
    taken = bookings.book(actor=Actor.guest(), service_id=room.id, start=start, payment_method="on_site",
                          guest={"name": "H", "email": "new@example.com"}, now=later)
    assert taken.status == "confirmed"
    assert booking_queries.get_booking(actor=Actor.system(), booking_id=held.id).status == "cancelled"
    # the late payment of the expired hold can't take the resold seat back
    assert bookings.confirm_payment(booking_id=held.id, now=later) is False


@pytest.mark.postgres
@pytest.mark.parametrize("together", [True, False], ids=["one-transaction", "control-sweep-alone"])
def test_a_booking_that_fails_after_expiring_holds_leaves_them_as_they_were(pg_db, monkeypatch, together):
    """A new booking expires the lapsed holds in its way in its own transaction: when it
    then fails (here its lock wait times out: Busy), the holds are as they were — pending,
    no audit event, no cancellation message — for the sweep job to release, and nothing of
    the booking is written. The control runs the expiry outside that transaction (the
    connection left in autocommit, as the rest of a new booking is): the holds are
    cancelled and their customers told, though the booking that needed the seat failed."""
    import psycopg

    from booking_app.models import AuditEvent, Notification

    if not together:
        monkeypatch.setattr(capacity, "explicit_transaction", lambda s: None)
    room, start, held, later = _room_with_a_lapsed_hold(monkeypatch, DB_LOCK_TIMEOUT_MS="300")

    def book_now():
        return bookings.book(actor=Actor.guest(), service_id=room.id, start=start, payment_method="on_site",
                             guest={"name": "H", "email": "new@example.com"}, now=later)

    def state() -> tuple[list[tuple[int, str]], int, int]:
        with db.read_session() as s:
            rows = sorted((b.id, b.status) for b in s.exec(select(Booking).where(Booking.bookable_id == room.id)))
            expired = len(s.exec(select(AuditEvent).where(AuditEvent.action == "booking.hold_expired")).all())
            told = len(s.exec(select(Notification).where(Notification.booking_id == held.id,
                                                         Notification.template == "booking_cancelled")).all())
        return rows, expired, told

    raw = pg_db.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", capacity.lock_key(room))  # the room's capacity lock
        with pytest.raises(Busy):
            book_now()
        if together:
            assert state() == ([(held.id, "pending")], 0, 0)
        else:
            rows, expired, told = state()
            assert rows == [(held.id, "cancelled")] and expired == 1 and told >= 1
    if together:  # the lock free again, the same booking goes through and expires the hold with it
        taken = book_now()
        rows, expired, told = state()
        assert rows == [(held.id, "cancelled"), (taken.id, "confirmed")] and expired == 1 and told >= 1


def _session_counters(event_id: int) -> dict[int, tuple[int, int]]:
    """session id → (its counter, the seats of its pending and confirmed bookings)."""
    from booking_app.models import EventSession

    with db.read_session() as s:
        rows = s.exec(select(Booking).where(Booking.bookable_id == event_id)).all()
        return {sess.id: (sess.seats_taken, sum(r.quantity for r in rows if r.session_id == sess.id
                                                and r.status in ("pending", "confirmed")))
                for sess in s.exec(select(EventSession).where(EventSession.bookable_id == event_id)).all()}


def test_expired_unswept_holds_in_a_full_session_counter_do_not_block_new_bookings(db_url, monkeypatch):
    """The session's counter still holds expired holds until the sweep: a booking that does
    not fit by the counter is decided by counting the bookings themselves."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    start = next_day_at(18)
    event, (sess,) = make_event(sessions=[start], capacity=3, price_cents=1000)
    now = dt.datetime.now(UTC)
    held = [bookings.book(actor=Actor.guest(), service_id=event.id, start=start, quantity=q, payment_method="card",
                          guest={"name": "G", "email": f"held{q}@example.com"}, now=now) for q in (1, 2)]
    assert [h.status for h in held] == ["pending", "pending"]
    with pytest.raises(NotAvailable):  # full while the holds are valid
        bookings.book(actor=Actor.guest(), service_id=event.id, start=start, payment_method="on_site",
                      guest={"name": "X", "email": "x@example.com"}, now=now)
    later = now + dt.timedelta(minutes=16)

    def book(q: int, who: str):
        return bookings.book(actor=Actor.guest(), service_id=event.id, start=start, quantity=q,
                             payment_method="on_site", guest={"name": who, "email": f"{who}@example.com"}, now=later)

    assert book(2, "two").status == "confirmed"  # counter 3 of 3, but the 3 seats are expired holds
    assert book(1, "one").status == "confirmed"
    with pytest.raises(NotAvailable):
        book(1, "late")
    assert _session_counters(event.id)[sess.id] == (6, 6)  # the expired holds are still pending
    bookings.release_expired_holds(now=later)
    assert _session_counters(event.id)[sess.id] == (3, 3)
    # the late payment of an expired hold can't take the resold seats back
    assert bookings.confirm_payment(booking_id=held[0].id, now=later) is False
    assert _session_counters(event.id)[sess.id] == (3, 3)


def test_moves_between_two_sessions_both_ways_race_new_bookings_without_deadlock_or_oversell(db_url):
    """Bookings moved S1 → S2 and S2 → S1 while new ones pour into both: each move locks both
    counter rows (in id order), each new booking one; nobody waits for the lock timeout, no
    session is oversold, and every counter equals its bookings' seats."""
    first, second = next_day_at(18), next_day_at(18, days=2)
    event, sessions = make_event(sessions=[first, second], capacity=6)
    placed = [bookings.book(actor=Actor.guest(), service_id=event.id, start=start,
                            guest={"name": "P", "email": f"placed{i}@example.com"})
              for i, start in enumerate([first] * 3 + [second] * 3)]
    moves = len(placed)

    def attempt(i: int):
        if i < moves:
            target = second if placed[i].start == first else first
            return bookings.reschedule(actor=Actor.system(), booking_id=placed[i].id, start=target)
        return guest_book(event.id, first if i % 2 else second)(i)

    counts, _r, outcomes, _ = race(moves + 10, attempt)
    assert set(counts) <= {"ok", "not_available"}, unexpected(outcomes)
    counters = _session_counters(event.id)
    for taken, exact in counters.values():
        assert taken == exact <= 6
    sold = sum(1 for o in outcomes[moves:] if o == "ok")
    assert sold >= 1
    assert sum(exact for _t, exact in counters.values()) == moves + sold  # nothing lost, nothing twice


def test_lock_wait_beyond_the_timeout_is_busy_and_changes_nothing(db_url, monkeypatch):
    """Another transaction holds the capacity lock (PostgreSQL: the advisory lock; SQLite:
    the write lock): the booking gives up after the lock timeout with Busy, writes nothing."""
    from booking_app.config import reset_settings_cache

    room = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(10)
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "200")
    monkeypatch.setenv("SQLITE_BUSY_TIMEOUT_MS", "200")
    reset_settings_cache()
    db.dispose_engines()
    if db_url.startswith("postgresql"):
        import psycopg

        holder = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", capacity.lock_key(catalog_bookable(room.id)))
    else:
        import sqlite3

        holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.perf_counter()
        with pytest.raises(Busy) as exc:
            bookings.book(actor=Actor.guest(), service_id=room.id, start=start,
                          guest={"name": "G", "email": "busy@example.com"})
        assert exc.value.retry_after == 1 and time.perf_counter() - t0 < 5
    finally:
        holder.rollback()
        holder.close()
    assert active_rows(room.id) == []
    assert bookings.book(actor=Actor.guest(), service_id=room.id, start=start,
                         guest={"name": "G", "email": "busy@example.com"}).status == "confirmed"


@pytest.mark.postgres
def test_a_held_session_counter_is_busy_after_the_lock_timeout_and_changes_nothing(pg_db, monkeypatch):
    """The booking's last statement sets the lock timeout before any of its inserts can
    wait: with another transaction holding the event session's counter row, booking a seat
    there gives up with Busy after the timeout (the trigger's wait for the row), writes
    nothing, and books once the row is free."""
    import psycopg

    from booking_app.config import reset_settings_cache

    start = next_day_at(15)
    event, (session,) = make_event(sessions=[start], capacity=5)
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "200")
    reset_settings_cache()
    db.dispose_engines()
    holder = psycopg.connect(pg_db.replace("postgresql+psycopg://", "postgresql://"))
    holder.execute("SELECT id FROM event_sessions WHERE id = %s FOR NO KEY UPDATE", (session.id,))
    outcome: list[object] = []
    try:
        t0 = time.perf_counter()
        worker = threading.Thread(target=lambda: outcome.append(_outcome(guest_book(event.id, start))))
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the booking waited for the counter row without a timeout"
        assert outcome == ["busy"] and time.perf_counter() - t0 < 5
    finally:
        holder.rollback()
        holder.close()
    assert active_rows(event.id) == []
    assert guest_book(event.id, start)(1).status == "confirmed"


def _outcome(attempt) -> str:
    try:
        attempt(0)
        return "ok"
    except Busy:
        return "busy"
    except NotAvailable:
        return "not_available"


@pytest.mark.postgres
def test_a_booking_hands_its_connection_back_in_transactions(pg_db, monkeypatch):
    """A new booking runs on its connection in autocommit (implicit transactions up to each
    Sync); whether it succeeds, is not available or is busy, the connection goes back to the
    pool transactional again: a unit of work on it that fails still rolls back."""
    from booking_app.config import reset_settings_cache
    from booking_app.models import AuditEvent

    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "200")
    reset_settings_cache()
    db.dispose_engines()
    room = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(12)

    def rolls_back(tag: str) -> None:
        with pytest.raises(RuntimeError):
            with db.unit_of_work() as s:
                assert not s.connection().connection.driver_connection.autocommit
                s.add(AuditEvent(action="test.rollback", entity="test", entity_id=tag, data={}))
                s.flush()
                raise RuntimeError("roll back")
        with db.read_session() as s:
            assert s.exec(select(AuditEvent).where(AuditEvent.entity_id == tag)).all() == []

    assert guest_book(room.id, start)(0).status == "confirmed"
    rolls_back("after-success")
    with pytest.raises(NotAvailable):
        guest_book(room.id, start)(1)
    rolls_back("after-not-available")
    import psycopg

    holder = psycopg.connect(pg_db.replace("postgresql+psycopg://", "postgresql://"))
    holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", capacity.lock_key(catalog_bookable(room.id)))
    try:
        with pytest.raises(Busy):
            guest_book(room.id, start + dt.timedelta(hours=2))(2)
    finally:
        holder.rollback()
        holder.close()
    rolls_back("after-busy")


def _one_pooled_connection(monkeypatch, url: str) -> str:
    """The app's pool reduced to one connection (every unit of work on the same one) →
    `url` for plain psycopg."""
    from booking_app.config import reset_settings_cache

    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    reset_settings_cache()
    db.dispose_engines()
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.mark.postgres
def test_bookings_refused_by_their_writes_leave_the_connection_usable(pg_db, monkeypatch):
    """psycopg prepares a statement at its sixth run on a connection (prepare_threshold: 5
    runs counted from its first success) and, in a pipeline, takes it as prepared once it is
    sent. When the booking's writes fail on that run (here: the exclusion constraint, a booking slipped in before them), the server
    skips the re-count queued behind them, its preparation included: psycopg 3.3 still took
    the re-count for prepared, and every later booking on that connection failed with
    "prepared statement … does not exist" — a 500, until the connection was closed. The
    booking's pipeline prepares its statements from their first run instead, so an aborted
    run leaves psycopg nothing it believes prepared."""
    import psycopg

    raw = _one_pooled_connection(monkeypatch, pg_db)  # every booking on the same connection
    room = make_bookable(weekly=ALL_WEEK)
    taken: list[dt.datetime] = []
    committers: list[threading.Timer] = []

    def slip_in() -> None:
        """Another process's booking of the same slot, written between our check and our writes
        and committed while our writes wait for it (as in a race: so that the re-count is on
        its way to the server before our writes fail)."""
        start = taken[-1]
        conn = psycopg.connect(raw)
        conn.execute(
            "INSERT INTO bookings (reference, bookable_id, provider_id, locale, start_at, end_at, block_start_at,"
            " block_end_at, exclusive, quantity, status, price_cents, currency, notes, refund_due_cents,"
            " created_at, updated_at, version, sequence) VALUES (%s, %s, %s, 'en', %s, %s, %s, %s, true,"
            " 1, 'confirmed', 0, 'EUR', '', 0, now(), now(), 1, 0)",
            (f"SLIPIN{len(taken):02d}", room.id, room.provider_id, start, start + dt.timedelta(hours=1), start,
             start + dt.timedelta(hours=1)))

        def commit() -> None:
            conn.commit()
            conn.close()
        later = threading.Timer(0.3, commit)
        later.start()
        committers.append(later)

    # psycopg counts a statement's runs from its first success on (a failed first run is forgotten)
    assert guest_book(room.id, next_day_at(7))(7).status == "confirmed"
    monkeypatch.setattr(capacity, "RACE_HOOK", slip_in)
    for hour in range(8, 15):  # runs 2 to 8: past any prepare threshold up to 7
        taken.append(next_day_at(hour))
        with pytest.raises(NotAvailable):
            guest_book(room.id, taken[-1])(hour)
        committers[-1].join()
    monkeypatch.setattr(capacity, "RACE_HOOK", None)
    for hour in (17, 18):
        assert guest_book(room.id, next_day_at(hour))(hour).status == "confirmed"



@pytest.mark.postgres
def test_a_slot_check_cut_short_leaves_the_connection_usable(pg_db, monkeypatch):
    """The slot check's pipeline (the bookable's hours, then the seats its bookings take)
    prepares its statements from their first run, as the booking's does (see the test
    above): when the hours' statement fails — here it waits for a table lock past the lock
    timeout — on the run at which psycopg would otherwise prepare the usage statement behind
    it, the server skips that preparation, and psycopg must not take it as done. Later slot
    checks on the same connection work."""
    import psycopg

    from booking_app.models import Bookable
    from booking_app.services import availability

    raw = _one_pooled_connection(monkeypatch, pg_db)  # every check on the same connection
    room = make_bookable(weekly=ALL_WEEK)

    def check(hour: int):
        with db.read_session() as s:
            s.connection().exec_driver_sql("SET lock_timeout = '300ms'")
            b = s.get(Bookable, room.id)
            return availability.resolve_start_with_usage(s, b, next_day_at(hour), dt.datetime.now(dt.timezone.utc))

    for run in range(8):  # from the second run on (past psycopg's own threshold of 5 runs),
        if run >= 1:  # the check fails once, then works on the same connection
            with psycopg.connect(raw) as holder:
                holder.execute("LOCK TABLE availability_rules IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    check(9)
                holder.rollback()
        shape, used, _expired = check(10 + run)
        assert (shape.start, used) == (next_day_at(10 + run), 0)


def catalog_bookable(bookable_id: int):
    from booking_app.models import Bookable

    with db.read_session() as s:
        return s.get(Bookable, bookable_id)


def test_the_same_idempotency_key_raced_books_once_and_every_caller_gets_that_booking(db_url):
    """A client retrying before its first request answered: 20 requests with one key and
    one body at the same moment → one booking; the others wait for it and replay it (or,
    while it is still running, get Busy to retry), never a second booking or an error."""
    event, _ = make_event(sessions=[next_day_at(15)], capacity=100)
    start = next_day_at(15)
    key = f"retry-{random.random():.9f}"

    def attempt(i: int):
        return bookings.book(actor=Actor.guest(), service_id=event.id, start=start, idempotency_key=key,
                             guest={"name": "Same Guest", "email": "same-guest@example.com"})

    counts, results, outcomes, _ = race(20, attempt)
    assert set(counts) <= {"ok", "busy"}, unexpected(outcomes)
    assert counts["ok"] >= 1, unexpected(outcomes)
    assert len({r.id for r in results if r is not None}) == 1
    rows = active_rows(event.id)
    assert len(rows) == 1 and rows[0].id == next(r.id for r in results if r is not None)


@pytest.mark.postgres
def test_the_backstop_firing_inside_the_booking_pipeline_is_not_available_and_writes_nothing(pg_db, monkeypatch):
    """An overlapping booking committed behind the service's back between its slot check and
    its writes: the exclusion constraint stops the INSERT in the pipelined round trip →
    NotAvailable (409), and none of the transaction's rows (booking, outbox, audit) is left."""
    import psycopg

    from booking_app.models import AuditEvent, Notification

    room = make_bookable(weekly=ALL_WEEK)
    start = next_day_at(11)
    raw = pg_db.replace("postgresql+psycopg://", "postgresql://")

    def sneak_in() -> None:
        with psycopg.connect(raw, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO bookings (reference, bookable_id, provider_id, locale, start_at, end_at, block_start_at,"
                " block_end_at, exclusive, quantity, status, price_cents, currency, notes, refund_due_cents,"
                " created_at, updated_at, version, sequence) VALUES ('SNEAKIN1', %s, %s, 'en', %s, %s, %s, %s, true,"
                " 1, 'confirmed', 0, 'EUR', '', 0, now(), now(), 1, 0)",
                (room.id, room.provider_id, start, start + dt.timedelta(hours=1), start, start + dt.timedelta(hours=1)))

    monkeypatch.setattr(capacity, "RACE_HOOK", sneak_in)
    with pytest.raises(NotAvailable):
        guest_book(room.id, start)(0)
    assert [r.reference for r in active_rows(room.id)] == ["SNEAKIN1"]
    with db.read_session() as s:
        assert s.exec(select(Notification)).all() == []
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "booking.created")).all() == []


@pytest.mark.postgres
def test_the_write_statement_refuses_a_too_long_value_instead_of_cutting_it(pg_db):
    """The booking's write statement types its VALUES by casts; they carry no length, so a
    value too long for its column is refused by the insert (nothing written), never cut to
    fit as an explicit cast to varchar(n) would."""
    import psycopg

    from booking_app.models import AuditEvent

    table = AuditEvent.__table__
    columns = ("action", "entity", "entity_id", "data", "at")
    spec = ((table.name, columns, capacity.pg_types(table, columns), None, 1),)
    assert all("(" not in t for t in spec[0][2])
    sql = capacity.pg_writes_then_lock_sql(spec, lock=False)
    row = ["booking.created", "booking", "x" * 65, psycopg.types.json.Json({}), dt.datetime.now(UTC)]
    with psycopg.connect(pg_db.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            psycopg.RawCursor(conn).execute(sql, [*row, "1000ms"])
        assert conn.execute("SELECT count(*) FROM audit_events WHERE length(entity_id) > 64").fetchone() == (0,)
        psycopg.RawCursor(conn).execute(sql, [*row[:2], "x" * 64, *row[3:], "1000ms"])
        assert conn.execute("SELECT length(entity_id) FROM audit_events WHERE action = 'booking.created'"
                            ).fetchall() == [(64,)]


@pytest.mark.postgres
def test_the_session_check_fits_by_its_counter_and_counts_a_missing_session_as_full(pg_db):
    """_PG_CHECK_SESSION on its own: seats that fit by the counter pass; one over fails (the
    division by zero that aborts the booking's transaction); a session row that is gone
    (deleted behind the service) has capacity 0."""
    import psycopg

    start = next_day_at(18)
    event, (session,) = make_event(sessions=[start], capacity=2)
    now = dt.datetime.now(UTC)
    params = {"sid": session.id, "excl": 0, "now": now}
    with psycopg.connect(pg_db.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("UPDATE event_sessions SET seats_taken = 2 WHERE id = %s", (session.id,))  # ours included
        assert conn.execute(capacity.PG_CHECK_SESSION, {**params, "q": 1}).fetchone()[0] == 1
        # over the capacity by the counter: the bookings themselves are counted (there are none)
        conn.execute("UPDATE event_sessions SET seats_taken = 3 WHERE id = %s", (session.id,))
        assert conn.execute(capacity.PG_CHECK_SESSION, {**params, "q": 1}).fetchone()[0] == 0
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute(capacity.PG_CHECK_SESSION, {**params, "q": 3}).fetchone()
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute(capacity.PG_CHECK_SESSION, {**params, "sid": session.id + 1000, "q": 1}).fetchone()


@pytest.mark.postgres
def test_a_capacity_lowered_during_a_booking_is_the_one_counted(pg_db, monkeypatch):
    """A provider lowers a session's capacity after a booking's slot check read the old one,
    before its re-count: the re-count, under the lock, counts against the new capacity (the
    booking is refused, nothing written). Without reading it there, the old capacity sells
    a seat the session no longer has."""
    import psycopg

    start = next_day_at(18)
    event, (session,) = make_event(sessions=[start], capacity=3)
    for i in range(2):
        guest_book(event.id, start)(i)
    raw = pg_db.replace("postgresql+psycopg://", "postgresql://")

    def lower_it() -> None:
        with psycopg.connect(raw, autocommit=True) as conn:
            conn.execute("UPDATE event_sessions SET capacity = 2 WHERE id = %s", (session.id,))

    monkeypatch.setattr(capacity, "RACE_HOOK", lower_it)
    with pytest.raises(NotAvailable):
        guest_book(event.id, start)(9)
    assert sum(r.quantity for r in active_rows(event.id)) == 2


@pytest.mark.parametrize("ordered", [True, False], ids=["sweep", "control-bookings-order"])
def test_the_hold_sweep_takes_session_counters_in_id_order(pg_db, monkeypatch, ordered):
    """The hold sweep locks the counter rows of the sessions it releases seats in, lowest id
    first, before changing a booking — the order a booking moved between two sessions locks
    them in (its trigger), so a sweep and a move can't each hold the row the other wants.

    Seen directly: the lower session's row is held by another transaction (as a move from
    it would hold it, wanting the higher row next), the sweep's holds span both sessions
    with the higher session's hold first in booking order. While the sweep waits, the
    higher row must still be free. The control releases in booking order without the
    counter locks (what the trigger alone would do): the sweep then sits on the higher row
    while it waits — half of a deadlock with that move."""
    import psycopg

    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    if not ordered:
        monkeypatch.setattr(capacity, "lock_session_counters", lambda s, ids: None)
    low_start, high_start = next_day_at(18), next_day_at(18, days=2)
    event, (low, high) = make_event(sessions=[low_start, high_start], capacity=5, price_cents=1000)
    assert low.id < high.id
    now = dt.datetime.now(UTC)
    for start, who in ((high_start, "first"), (low_start, "second")):  # booking order: the high session first
        held = bookings.book(actor=Actor.guest(), service_id=event.id, start=start, payment_method="card",
                             guest={"name": who, "email": f"{who}@example.com"}, now=now)
        assert held.status == "pending"
    raw = pg_db.replace("postgresql+psycopg://", "postgresql://")
    released: list = []
    with psycopg.connect(raw) as mover, psycopg.connect(raw, autocommit=True) as probe:
        mover.execute("SELECT id FROM event_sessions WHERE id = %s FOR NO KEY UPDATE", (low.id,))
        sweep = threading.Thread(target=lambda: released.append(
            bookings.release_expired_holds(now=now + dt.timedelta(minutes=16))))
        sweep.start()
        deadline = time.monotonic() + 5
        while not probe.execute("SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                "WHERE NOT l.granted AND a.datname = current_database() AND a.pid <> %s",
                                (mover.info.backend_pid,)).fetchone():
            assert time.monotonic() < deadline, "the sweep never waited for the lower session's row"
            time.sleep(0.02)
        try:
            probe.execute("SELECT id FROM event_sessions WHERE id = %s FOR NO KEY UPDATE NOWAIT", (high.id,))
            higher_row_free = True
        except psycopg.errors.LockNotAvailable:
            higher_row_free = False
        mover.rollback()  # the "move" gives up: the sweep goes on
        sweep.join(timeout=30)
    assert released == [2]
    assert _session_counters(event.id) == {low.id: (0, 0), high.id: (0, 0)}
    assert higher_row_free is ordered
