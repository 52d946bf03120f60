"""`python -m booking_app backup` / `restore` on both databases: bookings, payments and outbox
rows made → backup → restore into an EMPTY database → every row is there, and the app serves
from it (a signed-in read and a new booking through the API). A restore refuses a database
that isn't empty unless --force; clear messages when something is missing."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import text

from booking_app import backup, cli, db
from booking_app.services import bookings, payments
from booking_app.services.actors import Actor
from tests.api.conftest import make_account
from tests.conftest import point_app_at
from tests.factories import actor_for, make_bookable, make_event, make_provider, next_day_at

#: every column of every row of these tables must come back
SNAPSHOT = ("bookings", "payments", "notifications", "users", "bookables", "audit_events")


def _snapshot() -> dict[str, list[tuple]]:
    with db.get_engine().connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {name} ORDER BY id")).all()]
                for name in SNAPSHOT}


def _make_data():
    """Bookings (paid on site, confirmed, a guest's), payments and their outbox rows."""
    provider = make_provider()
    customer = make_account("customer")
    who = Actor(id=customer.id, role="customer")
    room = make_bookable(provider, price_cents=2500)
    booked = []
    for hour in (10, 12, 14):
        bk = bookings.book(actor=who, service_id=room.id, start=next_day_at(hour, days=2), payment_method="on_site")
        payments.process(actor=who, booking_id=bk.id, method="on_site")
        booked.append(bk)
    payments.mark_paid(actor=actor_for(provider), booking_id=booked[0].id)
    event, _ = make_event(provider, sessions=[next_day_at(18, days=3)], capacity=20)
    guest = bookings.book(actor=Actor.guest(),
                          service_id=event.id, start=next_day_at(18, days=3), quantity=2,
                          guest={"name": "Gia Guest", "email": "gia@example.com"})
    booked.append(guest)
    return customer, room, booked


@pytest.fixture
def empty_target(db_url, tmp_path, request):
    """An empty database of the same kind as `db_url` (nothing migrated into it)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    from sqlalchemy.engine import make_url

    from tests.conftest import _admin_exec

    server = request.getfixturevalue("pg_server_url")
    name = f"booking_restore_{uuid.uuid4().hex[:8]}"
    _admin_exec(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        db.dispose_engines()
        _admin_exec(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_then_restore_into_an_empty_database_keeps_every_row_and_serves(db_url, empty_target, tmp_path,
                                                                              capsys):
    from fastapi.testclient import TestClient

    from booking_app.api import create_api

    customer, room, booked = _make_data()
    before = _snapshot()
    assert len(before["bookings"]) == 4 and len(before["payments"]) == 3 and len(before["notifications"]) >= 8
    file = tmp_path / "nightly.backup"
    assert cli.main(["backup", "--output", str(file)]) == 0
    out = capsys.readouterr().out
    assert f"to {file}" in out and ("postgresql" in out) == db_url.startswith("postgresql")
    # the source goes on (a new booking after the backup is not in it)
    bookings.book(actor=Actor(id=customer.id, role="customer"), service_id=room.id, start=next_day_at(16, days=2),
                  payment_method="on_site")

    point_app_at(empty_target)
    assert cli.main(["restore", str(file)]) == 0
    assert "restored" in capsys.readouterr().out
    after = _snapshot()
    for table, rows in before.items():
        assert after[table] == rows, table

    # the app serves from the restored database: the customer's token still works, and a new
    # booking gets a fresh id (the sequences came along)
    with TestClient(create_api(), raise_server_exceptions=False) as c:
        assert c.get("/api/ready").status_code == 200
        r = c.get("/api/bookings", headers=customer.headers)
        assert r.status_code == 200, r.text
        assert sorted(b["id"] for b in r.json()["items"]) == sorted(b.id for b in booked[:3])
        start = next_day_at(16, days=2).isoformat().replace("+00:00", "Z")
        r = c.post("/api/bookings", json={"service_id": room.id, "start": start, "payment_method": "on_site"},
                   headers=customer.headers)
        assert r.status_code == 201, r.text
        assert r.json()["id"] > max(row[0] for row in before["bookings"])

    # a second restore into what is now a full database is refused …
    assert cli.main(["restore", str(file)]) == 2
    assert "not empty" in capsys.readouterr().err
    # … unless forced: then the database is the backup again (the booking just made is gone)
    assert cli.main(["restore", str(file), "--force"]) == 0
    assert _snapshot() == before


def test_backup_and_restore_say_what_is_wrong(sqlite_db, tmp_path, capsys, monkeypatch):
    from booking_app.config import reset_settings_cache

    missing = tmp_path / "none.backup"
    assert cli.main(["restore", str(missing)]) == 2
    assert "no such backup file" in capsys.readouterr().err
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all")
    assert cli.main(["restore", str(junk)]) == 2
    assert "neither a pg_dump custom-format archive nor an SQLite database" in capsys.readouterr().err
    file = tmp_path / "a.sqlite3"
    assert cli.main(["backup", "-o", str(file)]) == 0
    assert cli.main(["backup", "-o", str(file)]) == 2  # never overwritten
    assert "exists already" in capsys.readouterr().err
    # a PostgreSQL target for an SQLite backup
    point_app_at("postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert cli.main(["restore", str(file)]) == 2
    assert "is a sqlite backup but DATABASE_URL is a postgresql database" in capsys.readouterr().err
    # no client tools where PG_BIN_DIR points
    monkeypatch.setenv("PG_BIN_DIR", str(tmp_path / "no-bin"))
    reset_settings_cache()
    with pytest.raises(backup.BackupError, match="pg_dump not found in PG_BIN_DIR"):
        backup.find_tool("pg_dump", 15)


def test_default_backup_name_says_database_and_time():
    when = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.timezone.utc)
    assert str(backup.default_output("sqlite:///data/booking.db", now=when)) == "booking-booking-20260301T023000Z.sqlite3"
    assert str(backup.default_output("postgresql+psycopg://u:p@h/shop", now=when)) == "booking-shop-20260301T023000Z.dump"
